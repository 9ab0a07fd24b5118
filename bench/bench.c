/*
 * bench.c - the helpers of bench.h. Linux only (pthread_setaffinity_np,
 * /proc/self/task/TID/status, gettid).
 */
#include "bench.h"

#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static const char *usage_variants;
static const char *usage_metrics;        /* NULL: no --metric (bench_parse) */
static const long *usage_defaults;       /* one count default per metric */
static const char *watchdog_prog;

/* SIGALRM after 60 s: say so, then die of the signal, so the runner
 * sees a failed program (status 142) with a reason. */
static void watchdog(int sig)
{
	static const char msg[] = "FAIL watchdog: still running after 60 s: ";
	ssize_t rc = write(2, msg, sizeof msg - 1);
	rc = write(2, watchdog_prog, strlen(watchdog_prog));
	rc = write(2, "\n", 1);
	(void)rc;
	signal(sig, SIG_DFL);
	raise(sig);
}

static void usage(const char *prog, const char *count_flag, long count_default)
{
	fprintf(stderr,
		"usage: %s [--%s N] [--quick] [--variant %s] [--producers N]\n"
		"          [--slots N] [--pin same|diff|none] [--histogram FILE]\n",
		prog, count_flag, usage_variants);
	if (!usage_metrics) {
		fprintf(stderr, "  --%s N   default %ld (--quick: %ld)\n", count_flag,
			count_default, count_default / 20);
		exit(2);
	}
	fprintf(stderr, "          [--metric %s]\n", usage_metrics);
	/* The count's default for each metric, in the order of usage_metrics. */
	const char *m = usage_metrics;
	for (int i = 0; m; i++) {
		int n = (int)strcspn(m, "|");
		fprintf(stderr, "  --%s N   with --metric %.*s: default %ld (--quick: %ld)\n",
			count_flag, n, m, usage_defaults[i], usage_defaults[i] / 20);
		m = m[n] ? m + n + 1 : NULL;
	}
	exit(2);
}

/* The index of v in names ("a|b|c"), or -1. */
static int name_index(const char *names, const char *v)
{
	size_t n = strlen(v);
	int i = 0;

	for (const char *p = names; p; p = strchr(p, '|') ? strchr(p, '|') + 1 : NULL, i++)
		if (!strncmp(p, v, n) && (p[n] == '|' || p[n] == '\0'))
			return i;
	return -1;
}

/* The variant named v if variants ("a|b|c") has it, else NULL. */
static const char *find_variant(const char *variants, const char *v)
{
	return name_index(variants, v) >= 0 ? v : NULL;
}

/* The first of variants, in static storage. */
static const char *first_variant(const char *variants)
{
	static char buf[64];
	size_t n = strcspn(variants, "|");

	snprintf(buf, sizeof buf, "%.*s", (int)n, variants);
	return buf;
}

/* The first of metrics, in static storage of its own. */
static const char *first_metric(const char *metrics)
{
	static char buf[64];
	size_t n = strcspn(metrics, "|");

	snprintf(buf, sizeof buf, "%.*s", (int)n, metrics);
	return buf;
}

static long parse_long(const char *s, const char *prog, const char *flag, long def)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || *end || v < 0)
		usage(prog, flag, def);
	return v;
}

/* Both entry points: metrics NULL refuses --metric and takes the one
 * default *count_defaults. */
static void parse(int argc, char **argv, struct bench_args *a, const char *count_flag,
		  const long *count_defaults, const char *variants, const char *metrics)
{
	bool counted = false;
	long count_default = count_defaults[0];

	usage_variants = variants;
	usage_metrics = metrics;
	usage_defaults = metrics ? count_defaults : NULL;
	memset(a, 0, sizeof *a);
	a->variant = first_variant(variants);
	a->metric = metrics ? first_metric(metrics) : NULL;
	a->pin = "none";
	a->producers = 1;
	a->nslots = 1;
	for (int i = 1; i < argc; i++) {
		const char *o = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(o, "--quick")) {
			a->quick = true;
			continue;
		}
		if (!v || strncmp(o, "--", 2))
			usage(argv[0], count_flag, count_default);
		i++;
		if (!strcmp(o + 2, count_flag)) {
			a->count = parse_long(v, argv[0], count_flag, count_default);
			counted = true;
		} else if (!strcmp(o, "--variant")) {
			if (!find_variant(variants, v))
				usage(argv[0], count_flag, count_default);
			a->variant = v;
		} else if (metrics && !strcmp(o, "--metric")) {
			if (name_index(metrics, v) < 0)
				usage(argv[0], count_flag, count_default);
			a->metric = v;
		} else if (!strcmp(o, "--pin")) {
			if (strcmp(v, "same") && strcmp(v, "diff") && strcmp(v, "none"))
				usage(argv[0], count_flag, count_default);
			a->pin = v;
		} else if (!strcmp(o, "--histogram")) {
			a->histogram = v;
		} else if (!strcmp(o, "--producers")) {
			a->producers = (int)parse_long(v, argv[0], count_flag, count_default);
		} else if (!strcmp(o, "--slots")) {
			a->nslots = (int)parse_long(v, argv[0], count_flag, count_default);
		} else {
			usage(argv[0], count_flag, count_default);
		}
	}
	/* The metric, wherever it stood on the line, picks the default. */
	if (metrics)
		count_default = count_defaults[name_index(metrics, a->metric)];
	if (!counted)
		a->count = count_default;
	if (a->count <= 0 || a->producers <= 0)
		usage(argv[0], count_flag, count_default);
	if (a->quick && !counted)
		a->count = count_default / 20 > 0 ? count_default / 20 : 1;
	watchdog_prog = argv[0];
	signal(SIGALRM, watchdog);
	alarm(60);
}

void bench_parse(int argc, char **argv, struct bench_args *a,
		 const char *count_flag, long count_default, const char *variants)
{
	parse(argc, argv, a, count_flag, &count_default, variants, NULL);
}

void bench_parse_metric(int argc, char **argv, struct bench_args *a,
			const char *count_flag, const long *count_defaults,
			const char *variants, const char *metrics)
{
	parse(argc, argv, a, count_flag, count_defaults, variants, metrics);
}

uint64_t bench_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int bench_pin_self(int cpu)
{
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(ncpu > 0 ? cpu % ncpu : 0, &set);
	return pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}

int bench_pin_cpu(const char *pin, int index)
{
	if (!strcmp(pin, "same"))
		return 0;
	if (!strcmp(pin, "diff"))
		return index;
	return -1;
}

void bench_pin_apply(const char *pin, int index)
{
	int cpu = bench_pin_cpu(pin, index);
	if (cpu < 0)
		return;
	int rc = bench_pin_self(cpu);
	if (rc)
		bench_fail("pthread_setaffinity_np(cpu %d): %s", cpu, strerror(rc));
}

long bench_peak_rss_kib(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_maxrss;   /* Linux: KiB */
}

void bench_result(const char *case_id, const char *lib, double value, const char *unit,
		  const char *keys, ...)
{
	char buf[512];
	va_list ap;

	va_start(ap, keys);
	vsnprintf(buf, sizeof buf, keys, ap);
	va_end(ap);
	/* One write per line: the runner may interleave nothing else, but a
	 * partial line must never reach report.py. */
	printf("RESULT case=%s lib=%s %s value=%.6g unit=%s\n", case_id, lib, buf, value, unit);
	fflush(stdout);
}

void bench_fail(const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	fputs("FAIL ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

int64_t bench_expected_sum(long total)
{
	return (int64_t)total * ((int64_t)total + 1) / 2;
}

void bench_check_flood(const char *lib, long count, long total, int64_t sum)
{
	if (count != total || sum != bench_expected_sum(total))
		bench_fail("%s: delivered %ld of %ld calls, sum %lld, expected %lld", lib,
			   count, total, (long long)sum, (long long)bench_expected_sum(total));
}

void bench_producer_share(long total, int n, int p, long *first, long *len)
{
	long base = total / n, extra = total % n;

	/* The first `extra` producers send one more value each. */
	*len = base + (p < extra);
	*first = 1 + (long)p * base + (p < extra ? p : extra);
}

/* ---- done rendezvous -------------------------------------------------- */

void bench_done_init(struct bench_done *d)
{
	pthread_mutex_init(&d->lock, NULL);
	pthread_cond_init(&d->cond, NULL);
	d->done = false;
	d->at_ns = 0;
}

void bench_done_mark(struct bench_done *d)
{
	uint64_t now = bench_now_ns();   /* before the lock: the delivery time */

	pthread_mutex_lock(&d->lock);
	d->at_ns = now;
	d->done = true;
	pthread_cond_signal(&d->cond);
	pthread_mutex_unlock(&d->lock);
}

uint64_t bench_done_wait(struct bench_done *d, int timeout_ms, const char *what)
{
	struct timespec deadline;
	int rc = 0;

	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += timeout_ms / 1000;
	deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
	if (deadline.tv_nsec >= 1000000000) {
		deadline.tv_sec++;
		deadline.tv_nsec -= 1000000000;
	}
	pthread_mutex_lock(&d->lock);
	while (!d->done && rc != ETIMEDOUT)
		rc = pthread_cond_timedwait(&d->cond, &d->lock, &deadline);
	bool done = d->done;
	uint64_t at = d->at_ns;
	pthread_mutex_unlock(&d->lock);
	if (!done)
		bench_fail("%s: not done after %d ms", what, timeout_ms);
	return at;
}

/* ---- producers ---------------------------------------------------------- */

void bench_producers_start(struct bench_producers *p, int n, void *(*fn)(void *))
{
	p->n = n;
	p->threads = calloc((size_t)n, sizeof *p->threads);
	p->start_ns = calloc((size_t)n, sizeof *p->start_ns);
	if (!p->threads || !p->start_ns)
		bench_fail("out of memory");
	/* n producers + the main thread that says go. */
	pthread_barrier_init(&p->gate, NULL, (unsigned)n + 1);
	for (int i = 0; i < n; i++) {
		int rc = pthread_create(&p->threads[i], NULL, fn, (void *)(intptr_t)i);
		if (rc)
			bench_fail("pthread_create: %s", strerror(rc));
	}
}

void bench_producers_gate(struct bench_producers *p, int i)
{
	pthread_barrier_wait(&p->gate);
	p->start_ns[i] = bench_now_ns();
}

void bench_producer_loop(struct bench_producers *p, int index, long total,
			 void (*send)(int64_t v))
{
	long first, len;

	bench_producer_share(total, p->n, index, &first, &len);
	bench_producers_gate(p, index);
	for (long v = first; v < first + len; v++)
		send(v);
}

void bench_producers_go(struct bench_producers *p)
{
	pthread_barrier_wait(&p->gate);
}

uint64_t bench_producers_join(struct bench_producers *p)
{
	uint64_t first = UINT64_MAX;

	for (int i = 0; i < p->n; i++) {
		pthread_join(p->threads[i], NULL);
		if (p->start_ns[i] < first)
			first = p->start_ns[i];
	}
	pthread_barrier_destroy(&p->gate);
	free(p->threads);
	free(p->start_ns);
	return first;
}

/* ---- latencies ---------------------------------------------------------- */

void bench_lat_init(struct bench_lat *l, long cap)
{
	l->n = 0;
	l->cap = cap;
	l->ns = calloc((size_t)cap, sizeof *l->ns);
	if (!l->ns)
		bench_fail("out of memory");
}

void bench_lat_add(struct bench_lat *l, uint64_t ns)
{
	if (l->n < l->cap)
		l->ns[l->n++] = ns;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return (x > y) - (x < y);
}

/* Nearest-rank percentile of sorted samples. */
static double percentile_us(const struct bench_lat *l, double pct)
{
	long i = (long)(pct / 100.0 * (double)l->n + 0.5) - 1;
	if (i < 0)
		i = 0;
	if (i >= l->n)
		i = l->n - 1;
	return (double)l->ns[i] / 1000.0;
}

static void write_histogram(const struct bench_lat *l, const char *path)
{
	FILE *f = fopen(path, "w");
	if (!f)
		bench_fail("%s: %s", path, strerror(errno));
	for (long i = 0; i < l->n; i++)
		fprintf(f, "%llu\n", (unsigned long long)l->ns[i]);
	if (fclose(f))
		bench_fail("%s: %s", path, strerror(errno));
}

void bench_lat_sort(struct bench_lat *l, const struct bench_args *a)
{
	if (l->n == 0)
		bench_fail("no latency samples");
	qsort(l->ns, (size_t)l->n, sizeof *l->ns, cmp_u64);
	if (a->histogram)
		write_histogram(l, a->histogram);
}

double bench_lat_us(const struct bench_lat *l, double pct)
{
	return percentile_us(l, pct);
}

void bench_lat_report(struct bench_lat *l, const struct bench_args *a,
		      const char *case_id, const char *lib, const char *variant)
{
	if (l->n == 0)
		bench_fail("%s: no latency samples", lib);
	bench_lat_sort(l, a);
	bench_result(case_id, lib, percentile_us(l, 50), "us",
		     "variant=%s pin=%s metric=median count=%ld", variant, a->pin, l->n);
	bench_result(case_id, lib, percentile_us(l, 99), "us",
		     "variant=%s pin=%s metric=p99 count=%ld", variant, a->pin, l->n);
	free(l->ns);
	l->ns = NULL;
}

void bench_repeat(const struct bench_args *a, const char *case_id, const char *lib,
		  const char *variant, uint64_t (*once)(void *ctx), void *ctx)
{
	struct bench_lat lat;

	bench_lat_init(&lat, a->count);
	for (int i = 0; i < 10; i++)
		once(ctx);
	for (long i = 0; i < a->count; i++)
		bench_lat_add(&lat, once(ctx));
	bench_lat_report(&lat, a, case_id, lib, variant);
}

/* ---- ping-pong ------------------------------------------------------------ */

void bench_pp_init(struct bench_pingpong *pp, long count)
{
	pp->left = count;
	pp->warmup = count / 100 + 10;   /* the first wake-ups fault pages in */
	pp->expect = 0;
	pp->sent_ns = 0;
	bench_lat_init(&pp->lat, count);
	bench_done_init(&pp->done);
}

int64_t bench_pp_ping(struct bench_pingpong *pp)
{
	pp->sent_ns = bench_now_ns();
	return pp->expect;
}

bool bench_pp_pong(struct bench_pingpong *pp, const char *lib, int64_t v)
{
	uint64_t now = bench_now_ns();

	if (v != pp->expect + 1)
		bench_fail("%s: pong carried %lld, expected %lld", lib, (long long)v,
			   (long long)pp->expect + 1);
	pp->expect = v + 1;
	if (pp->warmup) {
		pp->warmup--;
	} else {
		bench_lat_add(&pp->lat, now - pp->sent_ns);
		pp->left--;
	}
	if (pp->left)
		return true;
	bench_done_mark(&pp->done);
	return false;
}

/* ---- idle probe ------------------------------------------------------------ */

void bench_probe_self(struct bench_probe *p)
{
	p->tid = (pid_t)syscall(SYS_gettid);
	if (pthread_getcpuclockid(pthread_self(), &p->clock))
		bench_fail("pthread_getcpuclockid failed");
}

void bench_probe_read(const struct bench_probe *p, long *switches, uint64_t *cpu_ns)
{
	char path[64], line[256];
	struct timespec ts;
	long vol = -1, invol = -1;

	snprintf(path, sizeof path, "/proc/self/task/%d/status", (int)p->tid);
	FILE *f = fopen(path, "r");
	if (!f)
		bench_fail("%s: %s", path, strerror(errno));
	while (fgets(line, sizeof line, f)) {
		sscanf(line, "voluntary_ctxt_switches: %ld", &vol);
		sscanf(line, "nonvoluntary_ctxt_switches: %ld", &invol);
	}
	fclose(f);
	if (vol < 0 || invol < 0)
		bench_fail("%s: no ctxt_switches lines", path);
	*switches = vol + invol;
	if (clock_gettime(p->clock, &ts))
		bench_fail("clock_gettime(thread cpu clock): %s", strerror(errno));
	*cpu_ns = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void bench_idle_measure(const struct bench_probe *p, long ms, const char *lib,
			const char *variant)
{
	struct timespec settle = { 0, 100 * 1000000L };
	struct timespec window = { ms / 1000, (ms % 1000) * 1000000L };
	long sw0, sw1;
	uint64_t cpu0, cpu1;

	/* Whatever the probe's own delivery cost (the thread going back to
	 * sleep) happens before the window opens. */
	nanosleep(&settle, NULL);
	bench_probe_read(p, &sw0, &cpu0);
	nanosleep(&window, NULL);
	bench_probe_read(p, &sw1, &cpu1);
	bench_result("D", lib, (double)(sw1 - sw0), "switches",
		     "variant=%s metric=wakeups ms=%ld", variant, ms);
	bench_result("D", lib, (double)(cpu1 - cpu0) / 1000.0, "us",
		     "variant=%s metric=cpu ms=%ld", variant, ms);
}
