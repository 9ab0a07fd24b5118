/*
 * uv_throughput.c - case A for libuv: producer threads append calls
 * carrying one int64_t to a mutex-protected list and uv_async_send the
 * consumer's loop, whose async callback drains the whole list and adds
 * each value to a sum (uv_common.h).
 */
#include <stdint.h>
#include <string.h>

#include "bench.h"
#include "uv_common.h"

static struct bench_args args;
static struct bench_producers prods;
static struct bench_done done;
static struct uv_loop_thread consumer;
static int64_t sum;   /* consumer thread only */
static long count;

static void on_value(struct uv_loop_thread *t, int64_t v)
{
	(void)t;
	sum += v;
	if (++count == args.count)
		bench_done_mark(&done);
}

static void send_value(int64_t v)
{
	uv_mailbox_send(&consumer.mb, v);
}

static void *producer_main(void *arg)
{
	bench_producer_loop(&prods, (int)(intptr_t)arg, args.count, send_value);
	return NULL;
}

int main(int argc, char **argv)
{
	bench_parse(argc, argv, &args, "messages", 2000000, "list-async");
	const char *variant = args.variant;
	uv_loop_thread_start(&consumer, -1, on_value);
	uv_loop_thread_sync(&consumer);

	bench_done_init(&done);
	bench_producers_start(&prods, args.producers, producer_main);
	bench_producers_go(&prods);
	uint64_t end = bench_done_wait(&done, 50000, "uv consumer");
	uint64_t start = bench_producers_join(&prods);

	uv_loop_thread_sync(&consumer);
	bench_check_flood("uv", count, args.count, sum);
	bench_result("A", "uv", (double)args.count / (double)(end - start) * 1e3, "Mcalls/s",
		     "variant=%s producers=%d rss_kib=%ld count=%ld", variant, args.producers,
		     bench_peak_rss_kib(), args.count);
	uv_loop_thread_stop(&consumer);
	return 0;
}
