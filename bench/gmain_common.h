/*
 * gmain_common.h - case G, "relay embedded in a GMainLoop": what its three
 * programs (relay_gmain.c, qt_gmain.cpp, glib_gmain.c) share. In each the
 * MAIN thread's loop iterates GLib's default GMainContext (g_main_loop_run,
 * or Qt's GLib event dispatcher under QCoreApplication::exec) and one
 * worker thread sends to it. Plain C, included by the C++ program too.
 *
 * Variants (--variant), one process each; --calls N counts:
 *   throughput  the worker sends N calls carrying an int64 to the main
 *               thread, one way; Mcalls/s from the first send to the last
 *               delivery (default 2,000,000, as case A)
 *   roundtrip   the worker makes N blocking calls into the main thread,
 *               each timed after warm-up; median and p99 in µs
 *               (default 100,000, as case B)
 *   ticks       a 60 Hz GLib timeout at GDK_PRIORITY_REDRAW (120, where
 *               GTK paints) counts its ticks while the worker floods the
 *               main thread with N unthrottled sends (default 1,000,000):
 *               ticks/s from the start of the flood until the main thread
 *               has handled all of it, that duration, and the longest gap
 *               between two ticks (or a window edge and a tick) in it
 *
 * --work-ns W: each call delivered in the main thread also spins W ns on
 * the clock, as a slot that does something (default 2000 for ticks, as
 * relay-glib's test G7, 0 otherwise). Without it the main thread drains
 * relay's queue faster than one worker fills it, so there is no backlog
 * and nothing to starve the timeout with: 2 µs a call makes the main
 * thread the bottleneck for every library, and 10^6 calls a ~2 s flood.
 *
 * The worker is started from inside the running loop (the "kick"), so
 * the loop serves before the clock starts. For ticks the timeout ticks
 * four times first and the kick comes half a period after a tick, so the
 * window's edges fall between ticks: a perfect loop counts round(W / T).
 *
 * RESULT lines: case=G lib=L variant=<mechanism> priority=<the GLib
 * priority the main thread's receiving source runs at: relay-glib's, 0
 * for Qt's post-event source and for g_main_context_invoke's idle
 * sources> metric=throughput|roundtrip-median|roundtrip-p99|ticks|
 * flood-ms|max-gap.
 */
#ifndef RELAY_BENCH_GMAIN_COMMON_H
#define RELAY_BENCH_GMAIN_COMMON_H

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

/* GDK_PRIORITY_REDRAW (gdk/gdkevents.h), without GTK. */
#define GMAIN_REDRAW_PRIORITY (G_PRIORITY_HIGH_IDLE + 20)
/* A 60 Hz frame clock as g_timeout_add sees it: 16 ms, re-armed from each
 * dispatch, so an idle loop ticks ~60-62 times a second. */
#define GMAIN_TICK_MS 16

#define GMAIN_VARIANTS "throughput|roundtrip|ticks"

static inline bool gmain_is_ticks(const char *variant)
{
	return !strncmp(variant, "ticks", 5);
}

/* The count --calls defaults to for the variant on the command line
 * (before bench_parse, which takes one default). */
static inline long gmain_default_count(int argc, char **argv)
{
	const char *v = "throughput";

	for (int i = 1; i + 1 < argc; i++)
		if (!strcmp(argv[i], "--variant"))
			v = argv[i + 1];
	if (!strcmp(v, "roundtrip"))
		return 100000;
	if (gmain_is_ticks(v))
		return 1000000;
	return 2000000;
}

/* --work-ns (see above); set by gmain_parse. */
static long gmain_work_ns;

/* Removes "--name VALUE" from argv (bench_parse knows only the shared
 * options) and returns VALUE, or NULL when absent. */
static inline const char *gmain_take_option(int *argc, char **argv, const char *name)
{
	const char *value = NULL;
	int out = 1;

	for (int i = 1; i < *argc; i++) {
		if (!strcmp(argv[i], name) && i + 1 < *argc) {
			value = argv[++i];
			continue;
		}
		argv[out++] = argv[i];
	}
	*argc = out;
	argv[out] = NULL;
	return value;
}

/* bench_parse with --calls (its default by variant) and --work-ns;
 * variants: GMAIN_VARIANTS or more. */
static inline void gmain_parse(int *argc, char **argv, struct bench_args *a,
			       const char *variants)
{
	const char *work = gmain_take_option(argc, argv, "--work-ns");
	char *end = NULL;

	bench_parse(*argc, argv, a, "calls", gmain_default_count(*argc, argv), variants);
	gmain_work_ns = gmain_is_ticks(a->variant) ? 2000 : 0;
	if (work) {
		gmain_work_ns = strtol(work, &end, 10);
		if (!*work || *end || gmain_work_ns < 0)
			bench_fail("--work-ns %s: not a count of nanoseconds", work);
	}
}

/* What every delivered call does besides adding to the sum. */
static inline void gmain_work(void)
{
	if (gmain_work_ns <= 0)
		return;
	uint64_t until = bench_now_ns() + (uint64_t)gmain_work_ns;
	while (bench_now_ns() < until)
		;
}

/* Main thread only, apart from kick(), which the program supplies. */
struct gmain_state {
	bool ticks_variant;
	void (*kick)(void);     /* starts the worker, from inside the loop */
	guint tick_id;
	long ticks_total;       /* every tick */
	long ticks;             /* ticks inside the flood's window */
	bool counting;
	uint64_t t0, t_end, last, max_gap;
};
static struct gmain_state gmain;

static gboolean gmain_kick_cb(gpointer data)
{
	(void)data;
	if (gmain.ticks_variant) {
		gmain.counting = true;
		gmain.t0 = gmain.last = bench_now_ns();
	}
	gmain.kick();
	return G_SOURCE_REMOVE;
}

static gboolean gmain_tick_cb(gpointer data)
{
	uint64_t now = bench_now_ns();

	(void)data;
	if (++gmain.ticks_total == 4)
		g_timeout_add_full(G_PRIORITY_HIGH, GMAIN_TICK_MS / 2, gmain_kick_cb, NULL, NULL);
	if (gmain.counting) {
		gmain.ticks++;
		if (now - gmain.last > gmain.max_gap)
			gmain.max_gap = now - gmain.last;
		gmain.last = now;
	}
	return G_SOURCE_CONTINUE;
}

/* Before the loop runs: arranges the kick (and the ticking timeout for
 * the ticks variant) on the default context. */
static inline void gmain_setup(const char *variant, void (*kick)(void))
{
	memset(&gmain, 0, sizeof gmain);
	gmain.kick = kick;
	gmain.ticks_variant = gmain_is_ticks(variant);
	if (gmain.ticks_variant)
		gmain.tick_id = g_timeout_add_full(GMAIN_REDRAW_PRIORITY, GMAIN_TICK_MS,
						   gmain_tick_cb, NULL, NULL);
	else
		g_idle_add_full(G_PRIORITY_HIGH, gmain_kick_cb, NULL, NULL);
}

/* Main thread, at the flood's last delivery: closes the ticks window. */
static inline void gmain_flood_done(uint64_t end_ns)
{
	if (!gmain.counting)
		return;
	gmain.counting = false;
	gmain.t_end = end_ns;
	if (end_ns - gmain.last > gmain.max_gap)
		gmain.max_gap = end_ns - gmain.last;
}

/* After the loop: removes the ticking timeout. */
static inline void gmain_teardown(void)
{
	if (gmain.tick_id)
		g_source_remove(gmain.tick_id);
	gmain.tick_id = 0;
}

static inline void gmain_report_throughput(const char *lib, const char *variant, int priority,
					   long count, uint64_t start_ns, uint64_t end_ns)
{
	bench_result("G", lib, (double)count / (double)(end_ns - start_ns) * 1e3, "Mcalls/s",
		     "variant=%s priority=%d metric=throughput rss_kib=%ld work_ns=%ld count=%ld",
		     variant, priority, bench_peak_rss_kib(), gmain_work_ns, count);
}

static inline void gmain_report_ticks(const char *lib, const char *variant, int priority,
				      long count)
{
	double secs = (double)(gmain.t_end - gmain.t0) / 1e9;

	if (gmain.t_end <= gmain.t0)
		bench_fail("%s: the flood's window was never closed", lib);
	bench_result("G", lib, (double)gmain.ticks / secs, "ticks/s",
		     "variant=%s priority=%d metric=ticks ticks=%ld work_ns=%ld count=%ld", variant,
		     priority, gmain.ticks, gmain_work_ns, count);
	bench_result("G", lib, secs * 1e3, "ms",
		     "variant=%s priority=%d metric=flood-ms work_ns=%ld count=%ld", variant,
		     priority, gmain_work_ns, count);
	bench_result("G", lib, (double)gmain.max_gap / 1e6, "ms",
		     "variant=%s priority=%d metric=max-gap work_ns=%ld count=%ld", variant,
		     priority, gmain_work_ns, count);
}

/* Sorts the round trips and prints median and p99. */
static inline void gmain_report_roundtrip(struct bench_lat *lat, const struct bench_args *a,
					  const char *lib, const char *variant, int priority)
{
	bench_lat_sort(lat, a);
	bench_result("G", lib, bench_lat_us(lat, 50), "us",
		     "variant=%s priority=%d metric=roundtrip-median count=%ld", variant, priority,
		     lat->n);
	bench_result("G", lib, bench_lat_us(lat, 99), "us",
		     "variant=%s priority=%d metric=roundtrip-p99 count=%ld", variant, priority,
		     lat->n);
}

/* Warm-up round trips, not recorded (the first wake-ups fault pages in). */
static inline long gmain_warmup(long count)
{
	return count / 100 + 10;
}

#endif
