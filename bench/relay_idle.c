/*
 * relay_idle.c - case D for relay: a started relay_thread whose loop has
 * nothing to do for --ms milliseconds (default 2000). Its context
 * switches (/proc/self/task/TID/status) and CPU time over that window
 * must both be zero: a loop never wakes with nothing to do. The loop's
 * own wake-up counter (relay_thread_stats) is printed as well.
 */
#include <relay.h>

#include <string.h>

#include "bench.h"

static const relay_class idler_class = { .name = "idler" };

static void must(int rc, const char *what)
{
	if (rc < 0)
		bench_fail("%s: %s", what, relay_strerror(rc));
}

static int probe_here(void *data)
{
	bench_probe_self(data);
	return 0;
}

int main(int argc, char **argv)
{
	struct bench_args args;
	struct bench_probe probe;
	relay_loop_stats s0, s1;
	relay_thread *t;
	relay_object *idler;

	bench_parse(argc, argv, &args, "ms", 2000, "loop");
	const char *variant = args.variant;
	must(relay_thread_create("idle", NULL, &t), "thread_create");
	must(relay_object_new(&idler, &idler_class, NULL), "object");
	must(relay_object_move_to_thread(idler, t), "move_to_thread");
	must(relay_thread_start(t), "thread_start");
	must(relay_invoke_blocking(idler, probe_here, &probe, NULL), "invoke_blocking");

	must(relay_thread_stats(t, &s0), "stats");
	bench_idle_measure(&probe, args.count, "relay", variant);
	must(relay_thread_stats(t, &s1), "stats");
	/* The settle time is inside s0..s1: a loop wake-up there shows too. */
	bench_result("D", "relay", (double)(s1.wakeups - s0.wakeups), "wakeups",
		     "variant=%s metric=loop-wakeups ms=%ld", variant, args.count);

	relay_object_delete_later(idler);
	must(relay_thread_stop(t, 5000), "thread_stop");
	must(relay_thread_destroy(t), "thread_destroy");
	return 0;
}
