/*
 * glib_roundtrip.c - case B for GLib: two GMainLoop threads, each with
 * its own GMainContext, ping-pong with g_main_context_invoke_full; each
 * round trip is timed in the pinging thread. --pin same|diff.
 */
#include <glib.h>
#include <stdint.h>
#include <string.h>

#include "bench.h"
#include "glib_common.h"

static struct bench_args args;
static struct glib_loop_thread ta, tb;
static struct bench_pingpong pp;   /* pinger thread only */

static gboolean on_ping(gpointer data);

static void send_ping(void)
{
	int64_t v = bench_pp_ping(&pp);
	g_main_context_invoke_full(tb.ctx, G_PRIORITY_DEFAULT, on_ping, (gpointer)(intptr_t)v,
				   NULL);
}

static gboolean on_pong(gpointer data)
{
	if (bench_pp_pong(&pp, "glib", (int64_t)(intptr_t)data))
		send_ping();
	return G_SOURCE_REMOVE;
}

static gboolean on_ping(gpointer data)
{
	int64_t v = (int64_t)(intptr_t)data + 1;

	g_main_context_invoke_full(ta.ctx, G_PRIORITY_DEFAULT, on_pong, (gpointer)(intptr_t)v,
				   NULL);
	return G_SOURCE_REMOVE;
}

static gboolean kick(gpointer data)
{
	(void)data;
	send_ping();
	return G_SOURCE_REMOVE;
}

int main(int argc, char **argv)
{
	bench_parse(argc, argv, &args, "roundtrips", 100000, "invoke");
	const char *variant = args.variant;

	bench_pp_init(&pp, args.count);
	glib_loop_thread_start(&ta, "pinger", bench_pin_cpu(args.pin, 0));
	glib_loop_thread_start(&tb, "ponger", bench_pin_cpu(args.pin, 1));

	g_main_context_invoke(ta.ctx, kick, NULL);
	bench_done_wait(&pp.done, 50000, "glib ping-pong");
	bench_lat_report(&pp.lat, &args, "B", "glib", variant);
	glib_loop_thread_stop(&ta);
	glib_loop_thread_stop(&tb);
	return 0;
}
