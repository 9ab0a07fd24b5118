/*
 * glib_throughput.c - case A for GLib: producer threads send calls
 * carrying one gint64 to a GMainContext run by a GMainLoop thread, with
 * g_main_context_invoke_full; the callback adds the value to a sum.
 *
 * The value travels in the callback's data pointer (64-bit pointers), so
 * GLib allocates only what it needs for the call itself (an idle source).
 */
#include <glib.h>
#include <stdint.h>
#include <string.h>

#include "bench.h"
#include "glib_common.h"

static struct bench_args args;
static struct bench_producers prods;
static struct bench_done done;
static struct glib_loop_thread consumer;
static int64_t sum;   /* consumer thread only */
static long count;

static gboolean on_value(gpointer data)
{
	sum += (int64_t)(intptr_t)data;
	if (++count == args.count)
		bench_done_mark(&done);
	return G_SOURCE_REMOVE;
}

static void send_value(int64_t v)
{
	g_main_context_invoke_full(consumer.ctx, G_PRIORITY_DEFAULT, on_value,
				   (gpointer)(intptr_t)v, NULL);
}

static void *producer_main(void *arg)
{
	bench_producer_loop(&prods, (int)(intptr_t)arg, args.count, send_value);
	return NULL;
}

static gboolean noop(gpointer data)
{
	bench_done_mark(data);
	return G_SOURCE_REMOVE;
}

int main(int argc, char **argv)
{
	struct bench_done synced;

	bench_parse(argc, argv, &args, "messages", 2000000, "invoke");
	const char *variant = args.variant;
	glib_loop_thread_start(&consumer, "consumer", -1);

	bench_done_init(&done);
	bench_producers_start(&prods, args.producers, producer_main);
	bench_producers_go(&prods);
	uint64_t end = bench_done_wait(&done, 50000, "glib consumer");
	uint64_t start = bench_producers_join(&prods);

	/* A round trip through the loop orders its writes before our reads. */
	bench_done_init(&synced);
	g_main_context_invoke(consumer.ctx, noop, &synced);
	bench_done_wait(&synced, 10000, "glib sync");
	bench_check_flood("glib", count, args.count, sum);
	bench_result("A", "glib", (double)args.count / (double)(end - start) * 1e3, "Mcalls/s",
		     "variant=%s producers=%d rss_kib=%ld count=%ld", variant, args.producers,
		     bench_peak_rss_kib(), args.count);
	glib_loop_thread_stop(&consumer);
	return 0;
}
