/*
 * glib_start.c - case E for GLib: from g_thread_new to the new thread's
 * notification (g_main_context_invoke to the main context) running in
 * the main thread's loop. The new thread makes its own GMainContext and
 * GMainLoop and runs it, as a loop thread does; it is quit and joined
 * after the notification. --pin same|none.
 */
#include <glib.h>
#include <string.h>

#include "bench.h"

struct started {
	GMainContext *ctx;        /* the new thread's, set before notifying */
	GMainLoop *loop;
	bool got;                 /* main thread only */
	uint64_t at_ns;
};

static gboolean on_started(gpointer data)
{
	struct started *s = data;
	s->at_ns = bench_now_ns();
	s->got = true;
	return G_SOURCE_REMOVE;
}

static gboolean quit_loop(gpointer data)
{
	g_main_loop_quit(data);
	return G_SOURCE_REMOVE;
}

static gpointer thread_main(gpointer data)
{
	struct started *s = data;
	GMainContext *ctx = g_main_context_new();
	GMainLoop *loop = g_main_loop_new(ctx, FALSE);

	g_main_context_push_thread_default(ctx);
	s->ctx = ctx;
	s->loop = loop;
	g_main_context_invoke(NULL, on_started, s);   /* NULL: the main context */
	g_main_loop_run(loop);
	g_main_context_pop_thread_default(ctx);
	g_main_loop_unref(loop);
	g_main_context_unref(ctx);
	return NULL;
}

static uint64_t start_once(void *ctx)
{
	struct started s = { 0 };

	(void)ctx;
	uint64_t t0 = bench_now_ns();
	GThread *t = g_thread_new("started", thread_main, &s);
	while (!s.got) {
		if (bench_now_ns() - t0 > 10000000000ull)
			bench_fail("glib: not notified within 10 s");
		g_main_context_iteration(NULL, TRUE);
	}
	/* The notification ran after s.ctx was set: it is visible here. Hold
	 * a reference: the thread may quit and unref its context while the
	 * invoke below is still returning. */
	GMainContext *thread_ctx = g_main_context_ref(s.ctx);
	g_main_context_invoke(thread_ctx, quit_loop, s.loop);
	g_thread_join(t);
	g_main_context_unref(thread_ctx);
	return s.at_ns - t0;
}

int main(int argc, char **argv)
{
	struct bench_args args;

	bench_parse(argc, argv, &args, "iterations", 1000, "gthread-loop");
	const char *variant = args.variant;
	bench_pin_apply(args.pin, 0);
	g_main_context_acquire(g_main_context_default());
	bench_repeat(&args, "E", "glib", variant, start_once, NULL);
	return 0;
}
