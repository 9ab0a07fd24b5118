/*
 * raw_throughput.c - case A's limits, plain C11 + pthreads: how fast one
 * int64_t can travel from producer threads to a consumer that sums it,
 * without any library.
 *
 * Variants:
 *   spsc-spin      one single-producer single-consumer ring per producer,
 *                  both sides spinning (an upper bound no blocking design
 *                  reaches): Lamport's ring as usually written, each push
 *                  reading the consumer's index, each pop the producer's
 *                  and publishing its own - PERFORMANCE.md's reference
 *   spsc-spin-batched  the same ring with cached indices (the producer
 *                  rereads head only when the ring looks full) and a
 *                  consumer that takes everything visible at once: what
 *                  the hardware allows, one cache-line transfer per batch
 *   mutex-condvar  one bounded ring under a mutex; the consumer sleeps on
 *                  a condvar when it is empty, producers when it is full,
 *                  and the consumer takes everything there in one go
 *
 * Both carry what a library's event minimally is, 16 bytes: the slot to
 * call and the value, and the consumer calls the slot through the
 * pointer, as a loop would. (With a bare int64_t and an inlined sum the
 * ring reaches ~300 M/s here, which bounds nothing a loop can do.)
 */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

#define RING_SIZE 4096u          /* power of two; 32 KiB of payloads */
#define SPINS_BEFORE_YIELD 64    /* with 8 producers on 2 cores, spinning
				  * without yielding burns whole slices */

static struct bench_args args;
static struct bench_producers prods;

/* One queued call: 16 bytes. */
struct call {
	void (*slot)(int64_t *sum, int64_t v);
	int64_t v;
};

/* Never inlined, and reached through a volatile pointer, so the call is
 * a real indirect call like a library's dispatch. */
__attribute__((noinline)) static void slot_add(int64_t *sum, int64_t v)
{
	*sum += v;
}

static void (*volatile the_slot)(int64_t *, int64_t) = slot_add;

/* ---- spsc-spin ----------------------------------------------------------- */

struct spsc {
	_Alignas(64) _Atomic uint64_t head;   /* written by the consumer */
	_Alignas(64) _Atomic uint64_t tail;   /* written by the producer */
	uint64_t head_cache;                  /* producer's view of head */
	_Alignas(64) struct call slot[RING_SIZE];
};

static struct spsc *rings;
static bool batched;   /* spsc-spin-batched */

static void relax(unsigned *spins)
{
	if (++*spins % SPINS_BEFORE_YIELD == 0)
		sched_yield();
}

static void spsc_push(struct spsc *r, struct call c)
{
	uint64_t t = atomic_load_explicit(&r->tail, memory_order_relaxed);
	unsigned spins = 0;

	if (!batched)
		r->head_cache = atomic_load_explicit(&r->head, memory_order_acquire);
	while (t - r->head_cache == RING_SIZE) {
		/* acquire pairs with the consumer's release of head: the slot
		 * is free only once the consumer has read it. */
		r->head_cache = atomic_load_explicit(&r->head, memory_order_acquire);
		if (t - r->head_cache == RING_SIZE)
			relax(&spins);
	}
	r->slot[t % RING_SIZE] = c;
	/* release: the slot's value is visible before the new tail. */
	atomic_store_explicit(&r->tail, t + 1, memory_order_release);
}

/* Takes what ring r holds, one element at a time: every pop reads the
 * producer's index and publishes the consumer's. Returns how many. */
static long spsc_drain_each(struct spsc *r, int64_t *sum)
{
	uint64_t h = atomic_load_explicit(&r->head, memory_order_relaxed);
	long n = 0;

	while (h != atomic_load_explicit(&r->tail, memory_order_acquire)) {
		struct call *c = &r->slot[h % RING_SIZE];
		c->slot(sum, c->v);
		atomic_store_explicit(&r->head, ++h, memory_order_release);
		n++;
	}
	return n;
}

/* Takes what ring r holds in one batch; returns how many. */
static long spsc_drain(struct spsc *r, int64_t *sum)
{
	if (!batched)
		return spsc_drain_each(r, sum);

	uint64_t h = atomic_load_explicit(&r->head, memory_order_relaxed);
	uint64_t t = atomic_load_explicit(&r->tail, memory_order_acquire);
	for (uint64_t i = h; i < t; i++) {
		struct call *c = &r->slot[i % RING_SIZE];
		c->slot(sum, c->v);
	}
	atomic_store_explicit(&r->head, t, memory_order_release);
	return (long)(t - h);
}

static long spsc_consume(long total, int64_t *sum)
{
	long got = 0;
	unsigned spins = 0;

	while (got < total) {
		long n = 0;
		for (int p = 0; p < args.producers; p++)
			n += spsc_drain(&rings[p], sum);
		got += n;
		if (!n)
			relax(&spins);
	}
	return got;
}

/* ---- mutex-condvar --------------------------------------------------------- */

static struct {
	pthread_mutex_t lock;
	pthread_cond_t not_empty, not_full;
	uint64_t head, tail;                   /* guarded by lock */
	int consumer_waits, producers_wait;    /* guarded by lock */
	struct call slot[RING_SIZE];
} mq = { .lock = PTHREAD_MUTEX_INITIALIZER, .not_empty = PTHREAD_COND_INITIALIZER,
	 .not_full = PTHREAD_COND_INITIALIZER };

static void mq_push(struct call c)
{
	pthread_mutex_lock(&mq.lock);
	while (mq.tail - mq.head == RING_SIZE) {
		mq.producers_wait++;
		pthread_cond_wait(&mq.not_full, &mq.lock);
		mq.producers_wait--;
	}
	mq.slot[mq.tail++ % RING_SIZE] = c;
	/* Signal only a consumer that sleeps: a burst costs one wake-up. */
	if (mq.consumer_waits)
		pthread_cond_signal(&mq.not_empty);
	pthread_mutex_unlock(&mq.lock);
}

static long mq_consume(long total, int64_t *sum)
{
	static struct call batch[RING_SIZE];
	long got = 0;

	while (got < total) {
		pthread_mutex_lock(&mq.lock);
		while (mq.head == mq.tail) {
			mq.consumer_waits = 1;
			pthread_cond_wait(&mq.not_empty, &mq.lock);
			mq.consumer_waits = 0;
		}
		long n = (long)(mq.tail - mq.head);
		for (long i = 0; i < n; i++)
			batch[i] = mq.slot[(mq.head + (uint64_t)i) % RING_SIZE];
		mq.head = mq.tail;
		if (mq.producers_wait)
			pthread_cond_broadcast(&mq.not_full);
		pthread_mutex_unlock(&mq.lock);
		/* The "slot" runs outside the lock, as a loop's would. */
		for (long i = 0; i < n; i++)
			batch[i].slot(sum, batch[i].v);
		got += n;
	}
	return got;
}

/* ---- driver ------------------------------------------------------------------ */

static bool use_spsc;

static _Thread_local struct spsc *my_ring;

static void send_spsc(int64_t v)
{
	spsc_push(my_ring, (struct call){ the_slot, v });
}

static void send_mq(int64_t v)
{
	mq_push((struct call){ the_slot, v });
}

static void *producer_main(void *arg)
{
	int index = (int)(intptr_t)arg;

	my_ring = &rings[index];
	bench_producer_loop(&prods, index, args.count, use_spsc ? send_spsc : send_mq);
	return NULL;
}

int main(int argc, char **argv)
{
	int64_t sum = 0;
	long got;

	bench_parse(argc, argv, &args, "messages", 2000000,
		    "spsc-spin|spsc-spin-batched|mutex-condvar");
	const char *variant = args.variant;
	batched = !strcmp(variant, "spsc-spin-batched");
	use_spsc = batched || !strcmp(variant, "spsc-spin");
	rings = aligned_alloc(64, sizeof *rings * (size_t)args.producers);
	if (!rings)
		bench_fail("out of memory");
	memset(rings, 0, sizeof *rings * (size_t)args.producers);

	/* The main thread is the consumer: it is running before the go. */
	bench_producers_start(&prods, args.producers, producer_main);
	bench_producers_go(&prods);
	if (use_spsc)
		got = spsc_consume(args.count, &sum);
	else
		got = mq_consume(args.count, &sum);
	uint64_t end = bench_now_ns();
	uint64_t start = bench_producers_join(&prods);

	bench_check_flood("raw", got, args.count, sum);
	bench_result("A", "raw", (double)args.count / (double)(end - start) * 1e3, "Mcalls/s",
		     "variant=%s producers=%d rss_kib=%ld count=%ld", variant, args.producers,
		     bench_peak_rss_kib(), args.count);
	free(rings);
	return 0;
}
