/*
 * relay_throughput.c - case A for relay: producer threads send calls
 * carrying one int64_t to a consumer object living in a started
 * relay_thread; its slot adds the value to a sum. Calls per second from
 * the first send to the last delivery; sum and count are checked.
 *
 * Variants:
 *   queued  each producer (a plain pthread, adopted by relay) owns an
 *           object whose RELAY_SIGNAL(value, int64_t) is connected
 *           RELAY_QUEUED to the consumer's slot
 *   invoke  relay_invoke(consumer, fn, value) - the functor path
 *
 * Only the public API (relay.h) is used.
 */
#include <relay.h>

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "bench.h"

typedef struct consumer {
	relay_object base;
	int64_t sum;     /* consumer thread only */
	long count;
	long expected;
} consumer;

typedef struct producer {
	relay_object base;
	RELAY_SIGNAL(value, int64_t);
} producer;

static const relay_class consumer_class = { .name = "consumer" };
static const relay_class producer_class = { .name = "producer" };

static struct bench_args args;
static struct bench_producers prods;
static struct bench_done done;
static consumer *sink;
static bool use_invoke;

static void must(int rc, const char *what)
{
	if (rc < 0)
		bench_fail("%s: %s", what, relay_strerror(rc));
}

static void consumer_take(consumer *self, int64_t v)
{
	self->sum += v;
	if (++self->count == self->expected)
		bench_done_mark(&done);
}

static void consumer_on_value(consumer *self, const int64_t *v)
{
	consumer_take(self, *v);
}

static void invoked(void *data)
{
	consumer_take(sink, (int64_t)(intptr_t)data);
}

static _Thread_local producer *mine;

static void send_signal(int64_t v)
{
	must(relay_emit(mine, value, &v), "emit");
}

static void send_invoke(int64_t v)
{
	must(relay_invoke(&sink->base, invoked, (void *)(intptr_t)v, NULL), "invoke");
}

static void *producer_main(void *arg)
{
	int index = (int)(intptr_t)arg;

	if (use_invoke) {
		bench_producer_loop(&prods, index, args.count, send_invoke);
		return NULL;
	}
	must(relay_object_new(&mine, &producer_class, NULL), "producer");
	must(relay_connect_ex(mine, value, sink, consumer_on_value, RELAY_QUEUED, 0u, NULL),
	     "connect");
	bench_producer_loop(&prods, index, args.count, send_signal);
	/* Queued events hold their own copy: destroying the sender now is
	 * allowed and does not lose them (D7). */
	relay_object_destroy(&mine->base);
	return NULL;
}

static int noop(void *data)
{
	(void)data;
	return 0;
}

int main(int argc, char **argv)
{
	relay_thread *t;

	bench_parse(argc, argv, &args, "messages", 2000000, "queued|invoke");
	const char *variant = args.variant;
	use_invoke = !strcmp(variant, "invoke");

	must(relay_thread_create("consumer", NULL, &t), "thread_create");
	must(relay_object_new(&sink, &consumer_class, NULL), "consumer");
	sink->expected = args.count;
	must(relay_object_move_to_thread(&sink->base, t), "move_to_thread");
	must(relay_thread_start(t), "thread_start");
	/* The consumer's loop runs before the clock starts. */
	must(relay_invoke_blocking(&sink->base, noop, NULL, NULL), "invoke_blocking");

	bench_done_init(&done);
	bench_producers_start(&prods, args.producers, producer_main);
	bench_producers_go(&prods);
	uint64_t end = bench_done_wait(&done, 50000, "relay consumer");
	uint64_t start = bench_producers_join(&prods);

	must(relay_invoke_blocking(&sink->base, noop, NULL, NULL), "invoke_blocking");
	bench_check_flood("relay", sink->count, args.count, sink->sum);
	bench_result("A", "relay", (double)args.count / (double)(end - start) * 1e3, "Mcalls/s",
		     "variant=%s producers=%d rss_kib=%ld count=%ld", variant, args.producers,
		     bench_peak_rss_kib(), args.count);

	relay_object_delete_later(&sink->base);
	must(relay_thread_stop(t, 5000), "thread_stop");
	must(relay_thread_destroy(t), "thread_destroy");
	return 0;
}
