/*
 * glib_gmain.c - case G for GLib: the main thread runs a GMainLoop on the
 * default context; a worker thread (a GThread) sends to it
 * (gmain_common.h says what each variant measures):
 *
 *   throughput, ticks  g_main_context_invoke_full(NULL, G_PRIORITY_DEFAULT,
 *                      fn, value, NULL): fn adds the value (carried in the
 *                      data pointer) to a sum in the main thread
 *   roundtrip          g_main_context_invoke(NULL, fn, request), then a wait
 *                      on a GCond/GMutex until fn has replied v + 1
 *
 * The context is the default one, which the worker does not own: while
 * g_main_loop_run holds it in the main thread, each invoke attaches an
 * idle source (at G_PRIORITY_DEFAULT) that runs fn there.
 *
 *   ticks-busy         the raw limit of the ticks case, reported as
 *                      lib=raw: no worker, no queue; one GLib idle source
 *                      at 200 (relay-glib's priority) does the flood's work
 *                      itself (the same --calls, sum and --work-ns per
 *                      call) in slices of RELAY_GLIB_BUDGET_MS (2 ms), the
 *                      best a source at 200 with that budget can leave the
 *                      timeout on this machine
 */
#include <glib.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "gmain_common.h"

static struct bench_args args;
static GMainLoop *loop;
static bool roundtrip;
static struct bench_done go;     /* the kick: the worker may start */
static int64_t sum;              /* main thread only */
static long count, expected;
static uint64_t start_ns;        /* worker; read after the join */
static uint64_t done_ns;         /* the last delivery (main thread) */
static struct bench_lat lat;     /* worker; read after the join */
static int64_t rt_bad = -1;

/* One round trip's request and reply, under its lock. */
static struct {
	GMutex lock;
	GCond cond;
	int64_t v, reply;
	bool replied;
} req;

/* ---- main thread ---- */

static gboolean on_value(gpointer data)
{
	gmain_work();
	sum += (int64_t)(intptr_t)data;
	if (++count == expected) {
		done_ns = bench_now_ns();
		gmain_flood_done(done_ns);
		g_main_loop_quit(loop);
	}
	return G_SOURCE_REMOVE;
}

static gboolean on_request(gpointer data)
{
	(void)data;
	gmain_work();
	g_mutex_lock(&req.lock);
	sum += req.v;
	count++;
	req.reply = req.v + 1;
	req.replied = true;
	g_cond_signal(&req.cond);
	g_mutex_unlock(&req.lock);
	return G_SOURCE_REMOVE;
}

static gboolean quit_main(gpointer data)
{
	(void)data;
	g_main_loop_quit(loop);
	return G_SOURCE_REMOVE;
}

/* ticks-busy: the flood's work in 2 ms slices, the clock read every 32
 * calls (as relay_loop_dispatch does). */
#define BUSY_PRIORITY G_PRIORITY_DEFAULT_IDLE
#define BUSY_SLICE_NS 2000000u   /* RELAY_GLIB_BUDGET_MS */

static gboolean busy_slice(gpointer data)
{
	uint64_t until = bench_now_ns() + BUSY_SLICE_NS;

	(void)data;
	for (;;) {
		for (int i = 0; i < 32; i++) {
			on_value((gpointer)(intptr_t)(count + 1));
			if (count == expected)
				return G_SOURCE_REMOVE;
		}
		if (bench_now_ns() >= until)
			return G_SOURCE_CONTINUE;
	}
}

static bool busy;

static void kick(void)
{
	if (busy)
		g_idle_add_full(BUSY_PRIORITY, busy_slice, NULL, NULL);
	else
		bench_done_mark(&go);
}

/* ---- worker thread ---- */

static void flood(void)
{
	start_ns = bench_now_ns();
	for (int64_t v = 1; v <= args.count; v++)
		g_main_context_invoke_full(NULL, G_PRIORITY_DEFAULT, on_value,
					   (gpointer)(intptr_t)v, NULL);
}

static void roundtrips(void)
{
	long warm = gmain_warmup(args.count);

	for (int64_t v = 1; v <= warm + args.count; v++) {
		uint64_t t = bench_now_ns();
		g_mutex_lock(&req.lock);
		req.v = v;
		req.replied = false;
		g_mutex_unlock(&req.lock);
		g_main_context_invoke(NULL, on_request, NULL);
		g_mutex_lock(&req.lock);
		while (!req.replied)
			g_cond_wait(&req.cond, &req.lock);
		int64_t reply = req.reply;
		g_mutex_unlock(&req.lock);
		uint64_t dt = bench_now_ns() - t;
		if (reply != v + 1 && rt_bad < 0)
			rt_bad = v;
		if (v > warm)
			bench_lat_add(&lat, dt);
	}
	g_main_context_invoke(NULL, quit_main, NULL);
}

static gpointer worker_main(gpointer data)
{
	(void)data;
	bench_done_wait(&go, 30000, "glib kick");
	if (roundtrip)
		roundtrips();
	else
		flood();
	return NULL;
}

int main(int argc, char **argv)
{
	gmain_parse(&argc, argv, &args, GMAIN_VARIANTS "|ticks-busy");
	roundtrip = !strcmp(args.variant, "roundtrip");
	busy = !strcmp(args.variant, "ticks-busy");
	const char *lib = busy ? "raw" : "glib";
	const char *mech = roundtrip ? "invoke-cond" : busy ? "idle-2ms" : "invoke";
	const int priority = busy ? BUSY_PRIORITY : G_PRIORITY_DEFAULT;

	loop = g_main_loop_new(NULL, FALSE);
	g_mutex_init(&req.lock);
	g_cond_init(&req.cond);
	bench_done_init(&go);
	expected = roundtrip ? gmain_warmup(args.count) + args.count : args.count;
	if (roundtrip)
		bench_lat_init(&lat, args.count);
	GThread *worker = busy ? NULL : g_thread_new("worker", worker_main, NULL);

	gmain_setup(args.variant, kick);
	g_main_loop_run(loop);
	gmain_teardown();
	if (worker)
		g_thread_join(worker);

	if (roundtrip) {
		if (rt_bad >= 0)
			bench_fail("glib: round trip %lld got a wrong reply", (long long)rt_bad);
		bench_check_flood(lib, count, expected, sum);
		gmain_report_roundtrip(&lat, &args, lib, mech, priority);
		free(lat.ns);
	} else {
		bench_check_flood(lib, count, args.count, sum);
		if (gmain.ticks_variant)
			gmain_report_ticks(lib, mech, priority, args.count);
		else
			gmain_report_throughput(lib, mech, priority, args.count, start_ns,
						done_ns);
	}
	g_main_loop_unref(loop);
	return 0;
}
