/*
 * uv_pool.c - case H for libuv (pool_common.h says what each metric
 * measures): uv_queue_work on the default loop, one malloc'd request per
 * task as libuv users write it; the after_work_cb, which libuv runs in
 * the loop's thread (the main one), counts the report and frees the
 * request. The main thread runs uv_run(UV_RUN_DEFAULT), which returns
 * once no request is left.
 *
 * libuv's pool is process-wide, sized once from UV_THREADPOOL_SIZE when
 * it starts (at the first uv_queue_work; default 4): the program sets it
 * to the CPUs online before its first uv call.
 *
 * uv_cancel cancels only a request still queued (a running one gets
 * UV_EBUSY), so the cancel metric prints a SKIP line.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "bench.h"
#include "pool_common.h"

struct task {
	uv_work_t req;
	int64_t v;
};

static struct bench_args args;
static uv_loop_t *loop;

/* Main thread only: the current batch's reports. */
static int64_t sum;
static long count, expected;
static uint64_t last_ns;

/* The task's body: empty for throughput, POOL_SPIN_NS for fanout. */
static uint64_t spin_ns;

static void work_cb(uv_work_t *req)
{
	(void)req;
	pool_note_thread();
	if (spin_ns)
		pool_spin(spin_ns);
}

static void after_work_cb(uv_work_t *req, int status)
{
	struct task *t = (struct task *)req;

	if (status)
		bench_fail("uv: work request ended with %s", uv_strerror(status));
	sum += t->v;
	if (++count == expected)
		last_ns = bench_now_ns();
	free(t);
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
		struct task *t = malloc(sizeof *t);
		if (!t)
			bench_fail("out of memory");
		t->v = v;
		int rc = uv_queue_work(loop, &t->req, work_cb, after_work_cb);
		if (rc)
			bench_fail("uv_queue_work: %s", uv_strerror(rc));
	}
	uv_run(loop, UV_RUN_DEFAULT);
	bench_check_flood("uv", count, n, sum);
	return last_ns - t0;
}

static uint64_t fanout_once(void *ctx)
{
	(void)ctx;
	return batch(POOL_FANOUT_TASKS);
}

int main(int argc, char **argv)
{
	char size[16];

	pool_parse(argc, argv, &args, "queue-work");
	if (pool_metric_is(&args, "cancel")) {
		pool_skip("uv_pool", args.variant, args.metric,
			  "uv_cancel cancels only a work request still queued; a running one "
			  "cannot be (UV_EBUSY)");
		return 0;
	}
	/* Before any uv call: libuv reads it once, when its pool starts. */
	snprintf(size, sizeof size, "%d", pool_cpus());
	if (setenv("UV_THREADPOOL_SIZE", size, 1))
		bench_fail("setenv UV_THREADPOOL_SIZE failed");
	loop = uv_default_loop();

	if (pool_metric_is(&args, "throughput")) {
		pool_report_throughput(&args, "uv", batch(args.count));
	} else {
		spin_ns = POOL_SPIN_NS;
		pool_repeat(&args, "uv", fanout_once, NULL);
	}
	uv_loop_close(loop);
	return 0;
}
