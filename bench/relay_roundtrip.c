/*
 * relay_roundtrip.c - case B for relay: a pinger object in one
 * relay_thread and a ponger in another exchange queued signals; each
 * round trip (ping emitted -> pong's slot ran in the pinger's thread) is
 * timed. --pin same|diff places both threads on one CPU or on two.
 * Median and p99 in µs; --histogram FILE writes every round trip (ns).
 */
#include <relay.h>

#include <stdint.h>
#include <string.h>

#include "bench.h"

typedef struct pinger {
	relay_object base;
	RELAY_SIGNAL(ping, int64_t);
	struct bench_pingpong pp;   /* pinger thread only */
} pinger;

typedef struct ponger {
	relay_object base;
	RELAY_SIGNAL(pong, int64_t);
} ponger;

static const relay_class pinger_class = { .name = "pinger" };
static const relay_class ponger_class = { .name = "ponger" };

static struct bench_args args;

static void must(int rc, const char *what)
{
	if (rc < 0)
		bench_fail("%s: %s", what, relay_strerror(rc));
}

static void pinger_send(pinger *self)
{
	int64_t v = bench_pp_ping(&self->pp);
	must(relay_emit(self, ping, &v), "emit ping");
}

static void ponger_on_ping(ponger *self, const int64_t *v)
{
	int64_t back = *v + 1;
	must(relay_emit(self, pong, &back), "emit pong");
}

static void pinger_on_pong(pinger *self, const int64_t *v)
{
	if (bench_pp_pong(&self->pp, "relay", *v))
		pinger_send(self);
}

static void kick(void *data)
{
	pinger_send(data);
}

static int pin_first(void *data)
{
	bench_pin_apply(args.pin, (int)(intptr_t)data);
	return 0;
}

static relay_thread *start_thread(const char *name, relay_object *obj, int index)
{
	relay_thread *t;

	must(relay_thread_create(name, NULL, &t), "thread_create");
	must(relay_object_move_to_thread(obj, t), "move_to_thread");
	must(relay_thread_start(t), "thread_start");
	must(relay_invoke_blocking(obj, pin_first, (void *)(intptr_t)index, NULL), "pin");
	return t;
}

static void stop_thread(relay_thread *t)
{
	must(relay_thread_stop(t, 5000), "thread_stop");
	must(relay_thread_destroy(t), "thread_destroy");
}

int main(int argc, char **argv)
{
	pinger *a;
	ponger *b;

	bench_parse(argc, argv, &args, "roundtrips", 100000, "signal");
	const char *variant = args.variant;

	must(relay_object_new(&a, &pinger_class, NULL), "pinger");
	must(relay_object_new(&b, &ponger_class, NULL), "ponger");
	bench_pp_init(&a->pp, args.count);
	must(relay_connect_ex(a, ping, b, ponger_on_ping, RELAY_QUEUED, 0u, NULL), "connect");
	must(relay_connect_ex(b, pong, a, pinger_on_pong, RELAY_QUEUED, 0u, NULL), "connect");
	relay_thread *ta = start_thread("pinger", &a->base, 0);
	relay_thread *tb = start_thread("ponger", &b->base, 1);

	must(relay_invoke(&a->base, kick, a, NULL), "invoke");
	bench_done_wait(&a->pp.done, 50000, "relay ping-pong");
	bench_lat_report(&a->pp.lat, &args, "B", "relay", variant);

	relay_object_delete_later(&a->base);
	relay_object_delete_later(&b->base);
	stop_thread(ta);
	stop_thread(tb);
	return 0;
}
