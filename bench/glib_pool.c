/*
 * glib_pool.c - case H for GLib (pool_common.h says what each metric
 * measures): the main thread iterates the default GMainContext
 * (g_main_context_iteration) until the last report.
 *
 * Variants:
 *   gthreadpool  a GThreadPool of the program's own, max_threads = the
 *                CPUs online, exclusive FALSE (its threads come from and
 *                go back to GLib's shared idle threads); each task reports
 *                with g_main_context_invoke(main context): an idle source
 *                per report
 *   gtask        g_task_new + g_task_run_in_thread, the task returning its
 *                number (g_task_return_pointer); its GAsyncReadyCallback,
 *                which GLib runs in the main context, counts it. GTask's
 *                pool is GLib's own and so is its size (GIO's shared pool
 *                of 10 threads in 2.74, with more, up to 330, only while
 *                all of them stay busy for 100 ms and longer): the
 *                program cannot set it, threads= says what it used.
 *                cancel: a GCancellable polled with
 *                g_cancellable_is_cancelled in the thread function;
 *                g_cancellable_cancel, then a GCond the function signals
 *                as its last statement (GLib has no wait for a task: its
 *                only completion is the callback, which goes through the
 *                loop)
 *
 * A GThreadPool task cannot be cancelled (no per-task cancel; freeing the
 * pool with immediate TRUE drops only queued tasks): gthreadpool's cancel
 * prints a SKIP line.
 *
 * The main thread owns (acquires) the default context for the whole run:
 * g_main_context_invoke called in a thread while nobody owns the context
 * acquires it and runs the function right there (documented), so a
 * report would run in the pool thread whenever the main thread is
 * between two iterations, submitting.
 */
#include <gio/gio.h>
#include <glib.h>
#include <stdint.h>
#include <string.h>

#include "bench.h"
#include "pool_common.h"

static struct bench_args args;
static GMainContext *main_ctx;
static GThreadPool *pool;
static bool use_gtask;

/* Main thread only: the current batch's reports. */
static int64_t sum;
static long count, expected;
static uint64_t last_ns;

static void take(int64_t v)
{
	sum += v;
	if (++count == expected)
		last_ns = bench_now_ns();
}

/* The task's body: empty for throughput, POOL_SPIN_NS for fanout. */
static uint64_t spin_ns;

static void task_body(void)
{
	pool_note_thread();
	if (spin_ns)
		pool_spin(spin_ns);
}

/* ---- gthreadpool ---- */

static gboolean on_report(gpointer data)
{
	take((int64_t)(intptr_t)data);
	return G_SOURCE_REMOVE;
}

/* A pool thread; data is the task's number (never NULL: GThreadPool
 * refuses NULL data). */
static void pool_func(gpointer data, gpointer user_data)
{
	(void)user_data;
	task_body();
	g_main_context_invoke(main_ctx, on_report, data);
}

/* ---- gtask ---- */

static void gtask_func(GTask *task, gpointer source, gpointer data, GCancellable *c)
{
	(void)source;
	(void)c;
	task_body();
	g_task_return_pointer(task, data, NULL);
}

static void gtask_ready(GObject *source, GAsyncResult *res, gpointer user_data)
{
	GError *err = NULL;

	(void)source;
	(void)user_data;
	gpointer v = g_task_propagate_pointer(G_TASK(res), &err);
	if (err)
		bench_fail("glib: task failed: %s", err->message);
	take((int64_t)(intptr_t)v);
}

static void submit(int64_t v)
{
	if (!use_gtask) {
		GError *err = NULL;
		if (!g_thread_pool_push(pool, (gpointer)(intptr_t)v, &err))
			bench_fail("glib: g_thread_pool_push: %s", err->message);
		return;
	}
	/* In the main thread, whose thread-default context is the default
	 * one: the callback runs there. The task holds itself while it runs. */
	GTask *t = g_task_new(NULL, NULL, gtask_ready, NULL);
	g_task_set_task_data(t, (gpointer)(intptr_t)v, NULL);
	g_task_run_in_thread(t, gtask_func);
	g_object_unref(t);
}

/* n tasks numbered 1..n, then the loop until their n reports; returns the
 * time from the first submit to the last report. */
static uint64_t batch(long n)
{
	sum = 0;
	count = 0;
	expected = n;
	uint64_t t0 = bench_now_ns();
	for (int64_t v = 1; v <= n; v++)
		submit(v);
	while (count < n)
		g_main_context_iteration(main_ctx, TRUE);
	bench_check_flood("glib", count, n, sum);
	return last_ns - t0;
}

static uint64_t fanout_once(void *ctx)
{
	(void)ctx;
	return batch(POOL_FANOUT_TASKS);
}

/* ---- cancel (gtask) ---- */

static int started;
static GMutex ret_lock;
static GCond ret_cond;
static bool returned;         /* guarded by ret_lock */
static bool cancel_reported;  /* main thread only */

static void cancel_func(GTask *task, gpointer source, gpointer data, GCancellable *c)
{
	(void)source;
	(void)data;
	pool_note_thread();
	pool_flag_set(&started);
	while (!g_cancellable_is_cancelled(c))
		;
	g_task_return_error_if_cancelled(task);
	g_mutex_lock(&ret_lock);
	returned = true;
	g_cond_signal(&ret_cond);
	g_mutex_unlock(&ret_lock);
}

static void cancel_ready(GObject *source, GAsyncResult *res, gpointer user_data)
{
	GError *err = NULL;

	(void)source;
	(void)user_data;
	if (g_task_propagate_boolean(G_TASK(res), &err) ||
	    !g_error_matches(err, G_IO_ERROR, G_IO_ERROR_CANCELLED))
		bench_fail("glib: the cancelled task did not report G_IO_ERROR_CANCELLED");
	g_error_free(err);
	cancel_reported = true;
}

static uint64_t cancel_once(void *ctx)
{
	(void)ctx;
	__atomic_store_n(&started, 0, __ATOMIC_RELAXED);
	returned = false;
	cancel_reported = false;
	GCancellable *c = g_cancellable_new();
	GTask *t = g_task_new(NULL, c, cancel_ready, NULL);
	g_task_run_in_thread(t, cancel_func);
	g_object_unref(t);

	pool_flag_wait(&started, "glib: cancel task started");
	uint64_t t0 = bench_now_ns();
	g_cancellable_cancel(c);
	g_mutex_lock(&ret_lock);
	while (!returned)
		g_cond_wait(&ret_cond, &ret_lock);
	g_mutex_unlock(&ret_lock);
	uint64_t t1 = bench_now_ns();

	/* Untimed: the callback (after the function returned, GLib's order)
	 * says the task ended cancelled; the next one starts after it. */
	while (!cancel_reported)
		g_main_context_iteration(main_ctx, TRUE);
	g_object_unref(c);
	return t1 - t0;
}

int main(int argc, char **argv)
{
	pool_parse(argc, argv, &args, "gthreadpool|gtask");
	use_gtask = !strcmp(args.variant, "gtask");
	if (!use_gtask && pool_metric_is(&args, "cancel")) {
		pool_skip("glib_pool", args.variant, args.metric,
			  "a GThreadPool task cannot be cancelled (no per-task cancel; "
			  "g_thread_pool_free(pool, TRUE, ...) drops only queued ones); "
			  "see --variant gtask");
		return 0;
	}
	main_ctx = g_main_context_default();
	if (!g_main_context_acquire(main_ctx))
		bench_fail("glib: cannot acquire the default context");
	if (!use_gtask) {
		GError *err = NULL;
		pool = g_thread_pool_new(pool_func, NULL, pool_cpus(), FALSE, &err);
		if (!pool)
			bench_fail("glib: g_thread_pool_new: %s", err->message);
	}

	if (pool_metric_is(&args, "throughput")) {
		pool_report_throughput(&args, "glib", batch(args.count));
	} else if (pool_metric_is(&args, "fanout")) {
		spin_ns = POOL_SPIN_NS;
		pool_repeat(&args, "glib", fanout_once, NULL);
	} else {
		pool_repeat(&args, "glib", cancel_once, NULL);
	}
	if (pool)
		g_thread_pool_free(pool, FALSE, TRUE);
	g_main_context_release(main_ctx);
	return 0;
}
