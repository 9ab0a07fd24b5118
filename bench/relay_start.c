/*
 * relay_start.c - case E for relay: from relay_thread_start to the
 * thread's `started` signal arriving (queued) at an object living in the
 * main thread, whose loop runs. Each iteration creates, starts, stops
 * and destroys one relay_thread. --pin same pins the process to one CPU
 * first (new threads inherit it), --pin none leaves it free.
 */
#include <relay.h>

#include <string.h>

#include "bench.h"

typedef struct receiver {
	relay_object base;
	bool got;
	uint64_t at_ns;
} receiver;

static const relay_class receiver_class = { .name = "receiver" };

static void must(int rc, const char *what)
{
	if (rc < 0)
		bench_fail("%s: %s", what, relay_strerror(rc));
}

static void on_started(receiver *self)
{
	self->at_ns = bench_now_ns();
	self->got = true;
}

/* One start; returns ns from start to the notification's delivery. */
static uint64_t start_once(void *ctx)
{
	receiver *r = ctx;
	relay_thread *t;

	must(relay_thread_create("started", NULL, &t), "thread_create");
	/* AUTO: emitted in the new thread, r lives here, so queued. */
	must(relay_connect(t, started, r, on_started), "connect");
	r->got = false;
	uint64_t t0 = bench_now_ns();
	must(relay_thread_start(t), "thread_start");
	while (!r->got) {
		if (bench_now_ns() - t0 > 10000000000ull)
			bench_fail("relay: started not delivered within 10 s");
		must(relay_loop_run_once(1000), "loop_run_once");
	}
	must(relay_thread_stop(t, 5000), "thread_stop");
	must(relay_thread_destroy(t), "thread_destroy");
	return r->at_ns - t0;
}

int main(int argc, char **argv)
{
	struct bench_args args;
	receiver *r;

	bench_parse(argc, argv, &args, "iterations", 1000, "thread");
	const char *variant = args.variant;
	bench_pin_apply(args.pin, 0);
	must(relay_object_new(&r, &receiver_class, NULL), "receiver");
	bench_repeat(&args, "E", "relay", variant, start_once, r);
	relay_object_destroy(&r->base);
	return 0;
}
