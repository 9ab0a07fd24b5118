/*
 * relay_pool.c - case H for relay (pool_common.h says what each metric
 * measures): tasks on a relay_pool of one thread per CPU, each reporting
 * its end to an object living in the main thread, whose loop runs until
 * every report has arrived.
 *
 * Variants: `task` (relay_pool_submit with a finished callback: the
 * QThreadPool + invokeMethod shape), `run` (relay_run: fn's value to
 * then, QtConcurrent::run + a watcher's shape). cancel: a task polling
 * relay_task_cancelled; relay_task_cancel_and_wait returns once its run
 * has returned, which the task's last store shows.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <relay.h>

#include "bench.h"
#include "pool_common.h"

typedef struct sink {
	relay_object base;
} sink;
static const relay_class sink_class = { .name = "sink", .size = sizeof(sink) };

static struct bench_args args;
static relay_pool *pool;
static sink *s;

/* Main thread only: the current batch's reports. */
static int64_t sum;
static long count, expected;
static uint64_t last_ns;
static uint64_t spin_ns;

static void report(int64_t v)
{
	sum += v;
	if (++count == expected) {
		last_ns = bench_now_ns();
		relay_loop_quit();
	}
}

/* ---- variant task ---- */

static int task_run(relay_task *task, void *data)
{
	(void)task, (void)data;
	pool_note_thread();
	if (spin_ns)
		pool_spin(spin_ns);
	return 0;
}

static void task_finished(relay_object *ctx, void *data, int status, const void *result)
{
	(void)ctx, (void)result;
	if (status != 0)
		bench_fail("relay: a task ended with %s", relay_strerror(status));
	report((int64_t)(intptr_t)data);
}

static const relay_task_ops task_ops = { .run = task_run, .finished = task_finished };

/* ---- variant run ---- */

static int run_fn(void *data)
{
	(void)data;
	pool_note_thread();
	if (spin_ns)
		pool_spin(spin_ns);
	return 0;
}

static void run_then(sink *ctx, void *data, int r)
{
	(void)ctx;
	if (r != 0)
		bench_fail("relay: relay_run ended with %s", relay_strerror(r));
	report((int64_t)(intptr_t)data);
}

static int submit(int64_t v)
{
	if (args.variant[0] == 't')
		return relay_pool_submit(pool, &task_ops, &s->base, (void *)(intptr_t)v, 0, NULL);
	return relay_run(pool, s, run_fn, (void *)(intptr_t)v, run_then, NULL, NULL);
}

/* n tasks numbered 1..n, then the loop until their n reports; returns the
 * time from the first submit to the last report. */
static uint64_t batch(long n)
{
	sum = 0;
	count = 0;
	expected = n;
	uint64_t t0 = bench_now_ns();
	for (int64_t v = 1; v <= n; v++) {
		int rc = submit(v);
		if (rc < 0)
			bench_fail("relay_pool_submit: %s", relay_strerror(rc));
	}
	relay_loop_run();
	bench_check_flood("relay", count, n, sum);
	return last_ns - t0;
}

static uint64_t fanout_once(void *ctx)
{
	(void)ctx;
	return batch(POOL_FANOUT_TASKS);
}

/* ---- cancel ---- */

struct cancel_state {
	int started, returned;
};

static int cancel_run(relay_task *task, void *data)
{
	struct cancel_state *c = data;
	pool_note_thread();
	pool_flag_set(&c->started);
	while (!relay_task_cancelled(task))
		;
	pool_flag_set(&c->returned);   /* its last store */
	return 0;
}

static const relay_task_ops cancel_ops = { .run = cancel_run };

static uint64_t cancel_once(void *ctx)
{
	(void)ctx;
	struct cancel_state c = { 0, 0 };
	relay_task *t;
	int rc = relay_pool_submit(pool, &cancel_ops, NULL, &c, 0, &t);
	if (rc < 0)
		bench_fail("relay_pool_submit: %s", relay_strerror(rc));
	pool_flag_wait(&c.started, "the task's started flag");
	uint64_t t0 = bench_now_ns();
	rc = relay_task_cancel_and_wait(t, -1);
	uint64_t t1 = bench_now_ns();
	if (rc != 0 || !pool_flag_get(&c.returned))
		bench_fail("relay_task_cancel_and_wait returned %d before run returned", rc);
	relay_task_release(t);
	return t1 - t0;
}

int main(int argc, char **argv)
{
	pool_parse(argc, argv, &args, "task|run");
	relay_pool_config cfg = { .name = "bench", .max_threads = pool_cpus() };
	if (relay_pool_create(&cfg, &pool) < 0 || relay_object_new(&s, &sink_class, NULL) < 0)
		bench_fail("relay: out of memory");
	if (pool_metric_is(&args, "throughput")) {
		pool_report_throughput(&args, "relay", batch(args.count));
	} else if (pool_metric_is(&args, "fanout")) {
		spin_ns = POOL_SPIN_NS;
		pool_repeat(&args, "relay", fanout_once, NULL);
	} else {
		pool_repeat(&args, "relay", cancel_once, NULL);
	}
	relay_pool_destroy(pool);
	relay_object_destroy(s);
	return 0;
}
