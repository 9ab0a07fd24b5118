/*
 * pool_common.h - case H, "a thread pool whose tasks report back to the
 * submitter's loop": what its programs (relay_pool.c, qt_pool.cpp,
 * glib_pool.c, uv_pool.c) share. In each the MAIN thread submits tasks to
 * the library's pool, each task reports its result to the main thread's
 * event loop, and the main thread runs that loop until every report has
 * arrived. Plain C, included by the C++ program too.
 *
 * Metrics (--metric, one process each); --count N counts:
 *   throughput  N empty tasks (default 1,000,000) submitted from the main
 *               thread in a loop, each carrying its number 1..N and
 *               reporting it back; the main thread runs its loop only once
 *               all are submitted, until all N reports arrived (their sum
 *               is checked). tasks/s from the first submit to the last
 *               report, and the peak RSS: everything submitted is queued
 *               at once
 *   fanout      64 tasks that each spin 10 µs on the clock, submitted at
 *               once, from the first submit to the last of the 64 reports
 *               handled by the main thread; N repetitions (default 2,000)
 *               after 10 untimed ones, median and p99 in µs. With 2 CPUs
 *               the spinning alone is 64 x 10 µs / 2 = 320 µs: the rest is
 *               the pool's queueing, wake-ups and reporting
 *   cancel      one task that polls its cancellation flag in a loop; once
 *               it runs (it sets a started flag the main thread waits
 *               for), the main thread cancels it and waits until the task
 *               function has returned: from the cancel call to that point
 *               as seen by the main thread; N repetitions (default 2,000)
 *               after 10 untimed ones, median and p99 in µs. A pool that
 *               cannot cancel a running task prints a SKIP line instead
 *
 * --quick divides the default by 20, as everywhere. The pool gets one
 * thread per CPU online (pool_cpus) wherever the library lets the program
 * choose; every report says how many distinct threads really ran tasks
 * (threads=, pool_note_thread), the pool's own choice included.
 *
 * relay_pool.c does the same with relay's pool: pool_parse, a
 * pool_note_thread() first in every task, the reports through
 * pool_report_throughput and pool_repeat (lib=relay).
 *
 * RESULT lines: case=H lib=L variant=<the library's pool API>
 * metric=throughput|fanout-median|fanout-p99|cancel-median|cancel-p99,
 * extra keys threads=, count=, and rss_kib= for throughput; unit tasks/s
 * for throughput, us for the others.
 */
#ifndef RELAY_BENCH_POOL_COMMON_H
#define RELAY_BENCH_POOL_COMMON_H

#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"

#define POOL_METRICS "throughput|fanout|cancel"
#define POOL_FANOUT_TASKS 64
#define POOL_SPIN_NS 10000
/* Untimed repetitions before the timed ones (bench_repeat's 10): the
 * pool's threads exist and the allocator is warm when timing starts. */
#define POOL_WARMUP 10

/* The count's default per metric, in POOL_METRICS order. */
static const long pool_count_defaults[] = { 1000000, 2000, 2000 };

/* bench_parse_metric with --count and POOL_METRICS. */
static inline void pool_parse(int argc, char **argv, struct bench_args *a,
			      const char *variants)
{
	bench_parse_metric(argc, argv, a, "count", pool_count_defaults, variants, POOL_METRICS);
}

static inline bool pool_metric_is(const struct bench_args *a, const char *m)
{
	return !strcmp(a->metric, m);
}

static inline int pool_cpus(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	return n > 0 ? (int)n : 1;
}

/* What a fanout task does: spins ns on the clock (bench_now_ns). */
static inline void pool_spin(uint64_t ns)
{
	uint64_t until = bench_now_ns() + ns;
	while (bench_now_ns() < until)
		;
}

/* ---- which threads ran tasks ---------------------------------------- */

#ifdef __cplusplus
#define POOL_THREAD_LOCAL thread_local
#else
#define POOL_THREAD_LOCAL _Thread_local
#endif
/* GCC/Clang __atomic builtins: the same code in C11 and C++17 (no
 * <stdatomic.h> in C++17). */
static POOL_THREAD_LOCAL bool pool_thread_seen;
static int pool_thread_count;

/* Called by every task first: counts each thread once. */
static inline void pool_note_thread(void)
{
	if (pool_thread_seen)
		return;
	pool_thread_seen = true;
	__atomic_fetch_add(&pool_thread_count, 1, __ATOMIC_RELAXED);
}

static inline int pool_threads(void)
{
	return __atomic_load_n(&pool_thread_count, __ATOMIC_RELAXED);
}

/* ---- flags between a task and the main thread --------------------- */

static inline void pool_flag_set(int *flag)
{
	__atomic_store_n(flag, 1, __ATOMIC_RELEASE);
}

static inline bool pool_flag_get(int *flag)
{
	return __atomic_load_n(flag, __ATOMIC_ACQUIRE) != 0;
}

/* Waits for a task to set *flag; yields meanwhile, so that on a loaded
 * machine the task's thread gets the CPU it needs to get there. */
static inline void pool_flag_wait(int *flag, const char *what)
{
	uint64_t t0 = bench_now_ns();

	while (!pool_flag_get(flag)) {
		if (bench_now_ns() - t0 > 10000000000ull)
			bench_fail("%s: not set within 10 s", what);
		sched_yield();
	}
}

/* ---- reports ------------------------------------------------------- */

/* A program's "cannot measure this here" line (bench/run records it as
 * SKIPPED, not as a failure); the program then exits 0. */
static inline void pool_skip(const char *prog, const char *variant, const char *metric,
			     const char *why)
{
	printf("SKIP %s --variant %s --metric %s: %s\n", prog, variant, metric, why);
	fflush(stdout);
}

/* throughput: --count tasks in elapsed_ns (first submit to last
 * report), with the peak RSS. */
static inline void pool_report_throughput(const struct bench_args *a, const char *lib,
					  uint64_t elapsed_ns)
{
	bench_result("H", lib, (double)a->count / (double)elapsed_ns * 1e9, "tasks/s",
		     "variant=%s metric=throughput threads=%d rss_kib=%ld count=%ld", a->variant,
		     pool_threads(), bench_peak_rss_kib(), a->count);
}

/* POOL_WARMUP untimed calls of once(ctx), then --count timed ones (ns),
 * reported as <metric>-median and <metric>-p99 in µs. */
static inline void pool_repeat(const struct bench_args *a, const char *lib,
			       uint64_t (*once)(void *ctx), void *ctx)
{
	struct bench_lat lat;

	bench_lat_init(&lat, a->count);
	for (int i = 0; i < POOL_WARMUP; i++)
		once(ctx);
	for (long i = 0; i < a->count; i++)
		bench_lat_add(&lat, once(ctx));
	bench_lat_sort(&lat, a);
	bench_result("H", lib, bench_lat_us(&lat, 50), "us",
		     "variant=%s metric=%s-median threads=%d count=%ld", a->variant, a->metric,
		     pool_threads(), lat.n);
	bench_result("H", lib, bench_lat_us(&lat, 99), "us",
		     "variant=%s metric=%s-p99 threads=%d count=%ld", a->variant, a->metric,
		     pool_threads(), lat.n);
	free(lat.ns);
}

#endif
