/*
 * glib_common.h - a thread that runs a GMainLoop on a GMainContext of its
 * own, as a GLib user writes a worker with a loop; shared by the GLib
 * programs.
 */
#ifndef RELAY_BENCH_GLIB_COMMON_H
#define RELAY_BENCH_GLIB_COMMON_H

#include <glib.h>

#include "bench.h"

struct glib_loop_thread {
	GMainContext *ctx;
	GMainLoop *loop;
	GThread *thread;
	int cpu;                 /* pin to this CPU first, -1: no pinning */
	struct bench_done ready; /* the loop is running */
};

static gboolean glib_mark_ready(gpointer data)
{
	bench_done_mark(&((struct glib_loop_thread *)data)->ready);
	return G_SOURCE_REMOVE;
}

static gpointer glib_loop_main(gpointer data)
{
	struct glib_loop_thread *t = data;

	if (t->cpu >= 0 && bench_pin_self(t->cpu))
		bench_fail("glib: pinning failed");
	g_main_context_push_thread_default(t->ctx);
	/* Runs inside the loop: "ready" means the loop serves. */
	g_main_context_invoke(t->ctx, glib_mark_ready, t);
	g_main_loop_run(t->loop);
	g_main_context_pop_thread_default(t->ctx);
	return NULL;
}

/* Starts the thread and returns once its loop runs. */
static inline void glib_loop_thread_start(struct glib_loop_thread *t, const char *name, int cpu)
{
	t->ctx = g_main_context_new();
	t->loop = g_main_loop_new(t->ctx, FALSE);
	t->cpu = cpu;
	bench_done_init(&t->ready);
	t->thread = g_thread_new(name, glib_loop_main, t);
	bench_done_wait(&t->ready, 10000, "glib loop thread");
}

static gboolean glib_quit_loop(gpointer data)
{
	g_main_loop_quit(data);
	return G_SOURCE_REMOVE;
}

static inline void glib_loop_thread_stop(struct glib_loop_thread *t)
{
	g_main_context_invoke(t->ctx, glib_quit_loop, t->loop);
	g_thread_join(t->thread);
	g_main_loop_unref(t->loop);
	g_main_context_unref(t->ctx);
}

#endif
