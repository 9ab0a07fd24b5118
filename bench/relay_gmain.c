/*
 * relay_gmain.c - case G for relay: the main thread's relay loop runs
 * inside a GMainLoop through relay-glib (relay_glib_attach(NULL, priority,
 * NULL), then g_main_loop_run on the default context); a worker object in
 * a started relay_thread sends to a sink object living in the main thread
 * (gmain_common.h says what each variant measures):
 *
 *   throughput, ticks  the worker's RELAY_SIGNAL(value, int64_t) connected
 *                      RELAY_QUEUED to the sink's slot, which adds the
 *                      value to a sum
 *   roundtrip          relay_invoke_blocking(sink, fn, v, &result): fn runs
 *                      in the main thread and returns v + 1
 *
 * --priority idle|default: relay-glib's source at RELAY_GLIB_PRIORITY
 * (G_PRIORITY_DEFAULT_IDLE, 200: the default) or at G_PRIORITY_DEFAULT (0,
 * where Qt's GLib dispatcher puts its posted events).
 *
 * relay is linked statically (relay_static, as every bench program), so
 * relay-glib's source (glib/relay_glib.c) is compiled into this program:
 * librelay-glib.so links the shared librelay, and two copies of relay in
 * one process would not share their thread state.
 */
#include <relay.h>
#include <relay_glib.h>

#include <glib.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "gmain_common.h"

typedef struct sink {
	relay_object base;
	int64_t sum;     /* main thread only */
	long count;
	long expected;
} sink;

typedef struct worker {
	relay_object base;
	RELAY_SIGNAL(value, int64_t);
} worker;

static const relay_class sink_class = { .name = "sink" };
static const relay_class worker_class = { .name = "worker" };

static struct bench_args args;
static GMainLoop *loop;
static sink *snk;
static worker *wrk;
static bool roundtrip;
/* Written by the worker, read by the main thread after the worker's
 * thread has stopped (relay_thread_stop joins it). */
static uint64_t start_ns;
static uint64_t done_ns;      /* the last delivery (main thread) */
static struct bench_lat lat;
static int64_t rt_bad = -1;   /* first wrong reply, or -1 */

static void must(int rc, const char *what)
{
	if (rc < 0)
		bench_fail("%s: %s", what, relay_strerror(rc));
}

/* ---- main thread ---- */

static void sink_on_value(sink *self, const int64_t *v)
{
	gmain_work();
	self->sum += *v;
	if (++self->count == self->expected) {
		done_ns = bench_now_ns();
		gmain_flood_done(done_ns);
		g_main_loop_quit(loop);
	}
}

static int sink_answer(void *data)
{
	int64_t v = (int64_t)(intptr_t)data;

	gmain_work();
	snk->sum += v;
	snk->count++;
	return (int)(v + 1);
}

static void quit_main(void *data)
{
	(void)data;
	g_main_loop_quit(loop);
}

/* ---- worker thread ---- */

static void flood(void *data)
{
	(void)data;
	start_ns = bench_now_ns();
	for (int64_t v = 1; v <= args.count; v++)
		must(relay_emit(wrk, value, &v), "emit");
}

static void roundtrips(void *data)
{
	long warm = gmain_warmup(args.count);

	(void)data;
	for (int64_t v = 1; v <= warm + args.count; v++) {
		int result = 0;
		uint64_t t = bench_now_ns();
		must(relay_invoke_blocking(&snk->base, sink_answer, (void *)(intptr_t)v, &result),
		     "invoke_blocking");
		uint64_t dt = bench_now_ns() - t;
		if (result != (int)(v + 1) && rt_bad < 0)
			rt_bad = v;
		if (v > warm)
			bench_lat_add(&lat, dt);
	}
	must(relay_invoke(&snk->base, quit_main, NULL, NULL), "invoke quit");
}

/* From inside the running GMainLoop (gmain_common.h). */
static void kick(void)
{
	must(relay_invoke(&wrk->base, roundtrip ? roundtrips : flood, NULL, NULL), "invoke kick");
}

static int noop(void *data)
{
	(void)data;
	return 0;
}

int main(int argc, char **argv)
{
	const char *prio_name = gmain_take_option(&argc, argv, "--priority");
	int priority = RELAY_GLIB_PRIORITY;
	relay_thread *t;

	if (prio_name && !strcmp(prio_name, "default"))
		priority = G_PRIORITY_DEFAULT;
	else if (prio_name && strcmp(prio_name, "idle")) {
		fprintf(stderr, "%s: --priority idle|default\n", argv[0]);
		return 2;
	}
	gmain_parse(&argc, argv, &args, GMAIN_VARIANTS);
	roundtrip = !strcmp(args.variant, "roundtrip");
	const char *mech = roundtrip ? "invoke-blocking" : "queued";

	loop = g_main_loop_new(NULL, FALSE);
	must(relay_glib_attach(NULL, priority, NULL), "relay_glib_attach");
	must(relay_object_new(&snk, &sink_class, NULL), "sink");
	snk->expected = roundtrip ? gmain_warmup(args.count) + args.count : args.count;
	must(relay_thread_create("worker", NULL, &t), "thread_create");
	must(relay_object_new(&wrk, &worker_class, NULL), "worker");
	must(relay_connect_ex(wrk, value, snk, sink_on_value, RELAY_QUEUED, 0u, NULL), "connect");
	must(relay_object_move_to_thread(&wrk->base, t), "move_to_thread");
	must(relay_thread_start(t), "thread_start");
	/* The worker's loop runs before anything is measured. */
	must(relay_invoke_blocking(&wrk->base, noop, NULL, NULL), "invoke_blocking");
	if (roundtrip)
		bench_lat_init(&lat, args.count);

	gmain_setup(args.variant, kick);
	g_main_loop_run(loop);
	gmain_teardown();

	relay_object_delete_later(&wrk->base);
	must(relay_thread_stop(t, 5000), "thread_stop");
	must(relay_thread_destroy(t), "thread_destroy");

	if (roundtrip) {
		if (rt_bad >= 0)
			bench_fail("relay: round trip %lld got a wrong reply", (long long)rt_bad);
		bench_check_flood("relay", snk->count, snk->expected, snk->sum);
		gmain_report_roundtrip(&lat, &args, "relay", mech, priority);
		free(lat.ns);
	} else {
		bench_check_flood("relay", snk->count, args.count, snk->sum);
		if (gmain.ticks_variant)
			gmain_report_ticks("relay", mech, priority, args.count);
		else
			gmain_report_throughput("relay", mech, priority, args.count, start_ns,
						done_ns);
	}

	relay_object_destroy(&snk->base);
	must(relay_main_shutdown(-1), "main_shutdown");
	must(relay_glib_detach(), "relay_glib_detach");
	g_main_loop_unref(loop);
	return 0;
}
