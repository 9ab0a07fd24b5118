/*
 * glib_roundtrip.c - case B for GLib: two GMainLoop threads, each with
 * its own GMainContext, ping-pong with g_main_context_invoke_full; each
 * round trip is timed in the pinging thread. --pin same|diff.
 */
#include <glib.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "bench.h"
#include "glib_common.h"

static struct bench_args args;
static struct bench_done done;
static struct glib_loop_thread ta, tb;
/* pinger thread only: */
static long warmup, left;
static int64_t expect;
static uint64_t sent_ns;
static struct bench_lat lat;

static gboolean on_ping(gpointer data);

static void send_ping(void)
{
	sent_ns = bench_now_ns();
	g_main_context_invoke_full(tb.ctx, G_PRIORITY_DEFAULT, on_ping,
				   (gpointer)(intptr_t)expect, NULL);
}

static gboolean on_pong(gpointer data)
{
	uint64_t now = bench_now_ns();
	int64_t v = (int64_t)(intptr_t)data;

	if (v != expect + 1)
		bench_fail("glib: pong carried %lld, expected %lld", (long long)v,
			   (long long)expect + 1);
	expect = v + 1;
	if (warmup) {
		warmup--;
	} else {
		bench_lat_add(&lat, now - sent_ns);
		left--;
	}
	if (left)
		send_ping();
	else
		bench_done_mark(&done);
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
	bench_parse(argc, argv, &args, "roundtrips", 100000);
	bench_watchdog(60);
	const char *variant = args.variant ? args.variant : "invoke";
	if (strcmp(variant, "invoke"))
		bench_fail("unknown variant %s", variant);

	left = args.count;
	warmup = args.count / 100 + 10;
	bench_lat_init(&lat, args.count);
	glib_loop_thread_start(&ta, "pinger", bench_pin_cpu(args.pin, 0));
	glib_loop_thread_start(&tb, "ponger", bench_pin_cpu(args.pin, 1));

	bench_done_init(&done);
	g_main_context_invoke(ta.ctx, kick, NULL);
	bench_done_wait(&done, 50000, "glib ping-pong");

	char keys[64];
	snprintf(keys, sizeof keys, "variant=%s pin=%s", variant, args.pin);
	bench_lat_report(&lat, &args, "B", "glib", keys);
	glib_loop_thread_stop(&ta);
	glib_loop_thread_stop(&tb);
	return 0;
}
