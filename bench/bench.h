/*
 * bench.h - what every benchmark program shares, whatever library it
 * measures: option parsing, the clock, a watchdog, CPU pinning, a "done"
 * rendezvous, latency statistics and the one RESULT line format that
 * bench/report.py reads.
 *
 * Plain C11 + pthreads so that the Qt programs (C++) link the same code:
 * every program measures with the same clock and prints the same way.
 *
 * RESULT line: "RESULT case=X lib=L key=val ... value=V unit=U". The keys
 * case, lib, variant, producers, slots, pin, priority and metric name the
 * measurement; any other key (rss_kib, count, threads) is extra data.
 */
#ifndef RELAY_BENCH_H
#define RELAY_BENCH_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Command line shared by all programs. Each program names its count flag
 * (--messages, --roundtrips, --emits, --iterations, --ms, --calls,
 * --count) and its default; --quick divides that default by 20 unless the
 * count was given. */
struct bench_args {
	const char *variant;     /* --variant NAME, one of the program's */
	const char *pin;         /* --pin same|diff|none (default "none") */
	const char *histogram;   /* --histogram FILE: latencies, one ns value a line */
	const char *metric;      /* --metric NAME (bench_parse_metric), else NULL */
	long count;              /* the program's count flag */
	int producers;           /* --producers N (default 1) */
	int nslots;              /* --slots N (default 1); "slots" is a Qt macro */
	bool quick;
};

/* Parses argv; prints usage and exits 2 on anything unknown. variants
 * lists the program's variants separated by '|', the first being the
 * default. Also arms the watchdog: SIGALRM ends the process after 60 s,
 * so no program can hang the runner, whatever the library under test
 * does. */
void bench_parse(int argc, char **argv, struct bench_args *a,
		 const char *count_flag, long count_default, const char *variants);

/* bench_parse for a program that measures one of several metrics per
 * process (case H): also takes --metric NAME, one of metrics ("a|b|c",
 * the first the default), and the count's default is per metric:
 * count_defaults[i] for the i-th name of metrics (--quick divides it by
 * 20 as above). bench_parse itself refuses --metric, so the programs
 * without metrics stay as strict as they were. */
void bench_parse_metric(int argc, char **argv, struct bench_args *a,
			const char *count_flag, const long *count_defaults,
			const char *variants, const char *metrics);

/* CLOCK_MONOTONIC in nanoseconds. */
uint64_t bench_now_ns(void);

/* Pins the calling thread to `cpu` (modulo the CPUs online). Returns 0 or
 * an errno. */
int bench_pin_self(int cpu);
/* The CPU for thread `index` (0 or 1) of a pair placed by --pin: "same"
 * puts both on CPU 0, "diff" on CPUs 0 and 1, "none" returns -1. */
int bench_pin_cpu(const char *pin, int index);
/* Pins the calling thread for --pin, a no-op for "none". */
void bench_pin_apply(const char *pin, int index);

/* Peak resident set of the process so far, KiB (getrusage ru_maxrss). */
long bench_peak_rss_kib(void);

/* Prints one RESULT line: keys is a printf format for the identifying
 * and extra keys ("variant=%s producers=%d"), value and unit follow. */
void bench_result(const char *case_id, const char *lib, double value, const char *unit,
		  const char *keys, ...)
#if defined(__GNUC__)
	__attribute__((format(printf, 5, 6)))
#endif
	;

/* Prints "FAIL ..." to stderr and exits 1: a verification mismatch. */
void bench_fail(const char *fmt, ...)
#if defined(__GNUC__)
	__attribute__((format(printf, 1, 2), noreturn))
#endif
	;

/* The expected sum when `total` messages carry the values 1..total. */
int64_t bench_expected_sum(long total);

/* Checks a throughput run: count and sum as expected, else bench_fail. */
void bench_check_flood(const char *lib, long count, long total, int64_t sum);

/* The range of values producer p of n sends so that all of them together
 * send 1..total exactly once: [*first, *first + *len). */
void bench_producer_share(long total, int n, int p, long *first, long *len);

/* A one-shot rendezvous: a consumer marks it done (with a timestamp),
 * the main thread waits with a deadline. */
struct bench_done {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool done;
	uint64_t at_ns;          /* when bench_done_mark was called */
};
void bench_done_init(struct bench_done *d);
void bench_done_mark(struct bench_done *d);
/* Waits up to timeout_ms; bench_fail on timeout. Returns at_ns. */
uint64_t bench_done_wait(struct bench_done *d, int timeout_ms, const char *what);

/* Producer threads released together; each records when it started, the
 * run's start is the earliest of them (the first send). */
struct bench_producers {
	pthread_t *threads;
	uint64_t *start_ns;
	pthread_barrier_t gate;
	int n;
};
/* Starts n threads running fn((void *)(intptr_t)index); they block in
 * bench_producers_gate until the main thread calls bench_producers_go. */
void bench_producers_start(struct bench_producers *p, int n, void *(*fn)(void *));
/* Producer side: waits for the go, stamps the start of producer i. */
void bench_producers_gate(struct bench_producers *p, int i);
/* A whole producer: waits for the go, then send(v) for each value of its
 * share of 1..total (bench_producer_share). */
void bench_producer_loop(struct bench_producers *p, int index, long total,
			 void (*send)(int64_t v));
void bench_producers_go(struct bench_producers *p);
/* Joins them all; returns the earliest start. */
uint64_t bench_producers_join(struct bench_producers *p);

/* Latency samples, in ns, reported as median and p99 in µs. */
struct bench_lat {
	uint64_t *ns;
	long n, cap;
};
void bench_lat_init(struct bench_lat *l, long cap);
void bench_lat_add(struct bench_lat *l, uint64_t ns);
/* Sorts, writes --histogram if asked, prints median and p99 as RESULT
 * lines keyed "variant=<variant> pin=<--pin>", and frees the samples. */
void bench_lat_report(struct bench_lat *l, const struct bench_args *a,
		      const char *case_id, const char *lib, const char *variant);

/* What bench_lat_report does, for a program that prints its own keys
 * (case G): sorts the samples and writes --histogram if asked; then
 * bench_lat_us gives a percentile (nearest rank) in µs. */
void bench_lat_sort(struct bench_lat *l, const struct bench_args *a);
double bench_lat_us(const struct bench_lat *l, double pct);

/* Times once(ctx) --count times after 10 untimed warm-ups and reports
 * the distribution as bench_lat_report does. once returns ns. */
void bench_repeat(const struct bench_args *a, const char *case_id, const char *lib,
		  const char *variant, uint64_t (*once)(void *ctx), void *ctx);

/* The pinging side of a round trip (case B), kept in the pinging
 * thread: values grow by one per hop, so a lost or reordered message is
 * caught; warm-up round trips are not recorded. */
struct bench_pingpong {
	long warmup, left;
	int64_t expect;          /* the value the next pong must carry */
	uint64_t sent_ns;
	struct bench_lat lat;
	struct bench_done done;  /* marked after the last round trip */
};
void bench_pp_init(struct bench_pingpong *pp, long count);
/* Stamps the send time; returns the value the ping carries. */
int64_t bench_pp_ping(struct bench_pingpong *pp);
/* A pong carrying v arrived: checks it, records the round trip. Returns
 * true when another ping is due, false (and marks done) at the end. */
bool bench_pp_pong(struct bench_pingpong *pp, const char *lib, int64_t v);

/* Per-thread counters for the idle case: context switches from
 * /proc/self/task/TID/status and the thread's CPU clock. Fill with
 * bench_probe_self in the thread itself; read from any thread. */
struct bench_probe {
	pid_t tid;
	clockid_t clock;
};
void bench_probe_self(struct bench_probe *p);
/* Voluntary + involuntary switches so far, and CPU time in ns. */
void bench_probe_read(const struct bench_probe *p, long *switches, uint64_t *cpu_ns);
/* The idle measurement itself: settles, waits ms, reports switches and
 * CPU time of the probed thread as two RESULT lines. */
void bench_idle_measure(const struct bench_probe *p, long ms, const char *lib,
			const char *variant);

#ifdef __cplusplus
}
#endif
#endif
