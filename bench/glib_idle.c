/*
 * glib_idle.c - case D for GLib: a GMainLoop thread with nothing to do
 * for --ms milliseconds; its context switches and CPU time.
 */
#include <glib.h>
#include <string.h>

#include "bench.h"
#include "glib_common.h"

static struct bench_probe probe;
static struct bench_done probed;

static gboolean probe_here(gpointer data)
{
	(void)data;
	bench_probe_self(&probe);
	bench_done_mark(&probed);
	return G_SOURCE_REMOVE;
}

int main(int argc, char **argv)
{
	struct bench_args args;
	struct glib_loop_thread t;

	bench_parse(argc, argv, &args, "ms", 2000, "mainloop");
	const char *variant = args.variant;
	glib_loop_thread_start(&t, "idle", -1);
	bench_done_init(&probed);
	g_main_context_invoke(t.ctx, probe_here, NULL);
	bench_done_wait(&probed, 10000, "glib probe");

	bench_idle_measure(&probe, args.count, "glib", variant);
	glib_loop_thread_stop(&t);
	return 0;
}
