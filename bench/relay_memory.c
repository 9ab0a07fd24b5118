/*
 * relay_memory.c - case F for relay: what relay allocates and locks.
 *
 *   allocs-per-emit   heap allocations per queued emit in steady state,
 *                     counted with relay_set_allocator, for an int64_t
 *                     payload and a 64-byte one (target: 0)
 *   bytes-per-emit    bytes those allocations asked for, per emit
 *   object-size       sizeof(relay_object) (target: <= 64 plus signals)
 *   signal-size       sizeof one RELAY_SIGNAL member
 *   object-heap       heap bytes per relay_object_new(sizeof(relay_object))
 *   conn-bytes-first  live heap bytes per connection between fresh
 *                     objects (includes what an object needs once it has
 *                     a connection at all)
 *   conn-bytes-more   live heap bytes per further connection of a signal
 *   locks-per-emit    pthread_mutex_lock calls per emit with only a
 *                     direct connection (target: 0), and per queued emit
 *
 * Locks are counted by defining pthread_mutex_lock here: relay is linked
 * statically, so its calls bind to this definition, which counts and
 * forwards to the C library's (dlsym RTLD_NEXT).
 */
#include <relay.h>

#include <dlfcn.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

/* ---- counting allocator --------------------------------------------------- */

/* Each block is prefixed with its size, in a header that keeps the
 * user's pointer aligned for any type. */
typedef union { size_t size; max_align_t align; } block_header;

static atomic_long n_allocs, n_frees;
static atomic_llong bytes_asked, bytes_live;

static void *count_alloc(size_t size, void *user)
{
	(void)user;
	block_header *h = malloc(sizeof *h + size);
	if (!h)
		return NULL;
	h->size = size;
	atomic_fetch_add(&n_allocs, 1);
	atomic_fetch_add(&bytes_asked, (long long)size);
	atomic_fetch_add(&bytes_live, (long long)size);
	return h + 1;
}

static void count_release(void *ptr, void *user)
{
	(void)user;
	if (!ptr)
		return;
	block_header *h = (block_header *)ptr - 1;
	atomic_fetch_add(&n_frees, 1);
	atomic_fetch_sub(&bytes_live, (long long)h->size);
	free(h);
}

/* ---- counting pthread_mutex_lock ------------------------------------------ */

static int (*real_lock)(pthread_mutex_t *);
static _Thread_local bool counting;   /* count the calling thread's locks */
static long n_locks;                  /* main thread only */

int pthread_mutex_lock(pthread_mutex_t *m)
{
	if (counting)
		n_locks++;
	return real_lock(m);
}

static void resolve_real_lock(void)
{
	*(void **)&real_lock = dlsym(RTLD_NEXT, "pthread_mutex_lock");
	if (!real_lock)
		bench_fail("dlsym(pthread_mutex_lock) failed");
}

/* ---- objects ----------------------------------------------------------------- */

typedef struct { char bytes[64]; } blob64;

typedef struct sender {
	relay_object base;
	RELAY_SIGNAL(small, int64_t);
	RELAY_SIGNAL(big, blob64);
} sender;

typedef struct receiver {
	relay_object base;
	atomic_long got;
} receiver;

static const relay_class sender_class = { .name = "sender" };
static const relay_class receiver_class = { .name = "receiver" };
static const relay_class plain_class = { .name = "plain" };

static void must(int rc, const char *what)
{
	if (rc < 0)
		bench_fail("%s: %s", what, relay_strerror(rc));
}

static void on_small(receiver *self, const int64_t *v)
{
	(void)v;
	atomic_fetch_add_explicit(&self->got, 1, memory_order_release);
}

static void on_big(receiver *self, const blob64 *v)
{
	(void)v;
	atomic_fetch_add_explicit(&self->got, 1, memory_order_release);
}

/* Waits (without calling relay, which would allocate) until r has
 * received `n` calls. */
static void await_delivery(receiver *r, long n)
{
	uint64_t t0 = bench_now_ns();

	while (atomic_load_explicit(&r->got, memory_order_acquire) < n) {
		if (bench_now_ns() - t0 > 20000000000ull)
			bench_fail("relay: deliveries stalled at %ld of %ld",
				   atomic_load(&r->got), n);
		sched_yield();
	}
}

/* Emits `batches` bursts of 100 queued calls, each burst delivered
 * before the next: a steady state, not a flood. */
static void emit_bursts(sender *s, receiver *r, bool big, long batches)
{
	blob64 b = { { 1 } };
	long base = atomic_load(&r->got);

	for (long i = 0; i < batches; i++) {
		for (int j = 0; j < 100; j++) {
			int64_t v = j;
			if (big)
				must(relay_emit(s, big, &b), "emit");
			else
				must(relay_emit(s, small, &v), "emit");
		}
		await_delivery(r, base + (i + 1) * 100);
	}
}

static void measure_queued(sender *s, receiver *r, bool big, long emits)
{
	long batches = emits / 100 > 0 ? emits / 100 : 1;
	const char *variant = big ? "payload64" : "payload8";

	emit_bursts(s, r, big, batches / 10 + 1);   /* warm up: caches fill */
	long a0 = atomic_load(&n_allocs);
	long long b0 = atomic_load(&bytes_asked);
	emit_bursts(s, r, big, batches);
	double n = (double)batches * 100;
	bench_result("F", "relay", (double)(atomic_load(&n_allocs) - a0) / n, "allocs",
		     "variant=%s metric=allocs-per-emit count=%.0f", variant, n);
	bench_result("F", "relay", (double)(atomic_load(&bytes_asked) - b0) / n, "bytes",
		     "variant=%s metric=bytes-per-emit count=%.0f", variant, n);
}

static int noop(void *data)
{
	(void)data;
	return 0;
}

static void case_queued(long emits)
{
	relay_thread *t;
	sender *s;
	receiver *r;

	must(relay_thread_create("consumer", NULL, &t), "thread_create");
	must(relay_object_new(&s, &sender_class, NULL), "sender");
	must(relay_object_new(&r, &receiver_class, NULL), "receiver");
	must(relay_object_move_to_thread(&r->base, t), "move_to_thread");
	must(relay_connect(s, small, r, on_small), "connect");
	must(relay_connect(s, big, r, on_big), "connect");
	must(relay_thread_start(t), "thread_start");
	must(relay_invoke_blocking(&r->base, noop, NULL, NULL), "invoke_blocking");

	measure_queued(s, r, false, emits);
	measure_queued(s, r, true, emits);

	/* Locks per queued emit, taken by the emitting thread. */
	long base = atomic_load(&r->got);
	n_locks = 0;
	counting = true;
	emit_bursts(s, r, false, 10);
	counting = false;
	if (atomic_load(&r->got) != base + 1000)
		bench_fail("relay: queued calls lost");
	bench_result("F", "relay", (double)n_locks / 1000.0, "locks",
		     "variant=queued metric=locks-per-emit count=1000");

	relay_object_delete_later(&r->base);
	must(relay_thread_stop(t, 5000), "thread_stop");
	must(relay_thread_destroy(t), "thread_destroy");
	relay_object_destroy(&s->base);
}

static void case_direct(void)
{
	sender *s;
	receiver *r;

	must(relay_object_new(&s, &sender_class, NULL), "sender");
	must(relay_object_new(&r, &receiver_class, NULL), "receiver");
	must(relay_connect(s, small, r, on_small), "connect");   /* same thread: direct */
	/* Steady state: the first emits may set up per-thread state. */
	for (int64_t v = 0; v < 100; v++)
		must(relay_emit(s, small, &v), "emit");
	long a0 = atomic_load(&n_allocs);
	n_locks = 0;
	counting = true;
	for (int64_t v = 0; v < 1000; v++)
		must(relay_emit(s, small, &v), "emit");
	counting = false;
	if (atomic_load(&r->got) != 1100)
		bench_fail("relay: direct calls lost");
	bench_result("F", "relay", (double)n_locks / 1000.0, "locks",
		     "variant=direct metric=locks-per-emit count=1000");
	bench_result("F", "relay", (double)(atomic_load(&n_allocs) - a0) / 1000.0, "allocs",
		     "variant=direct metric=allocs-per-emit count=1000");
	relay_object_destroy(&r->base);
	relay_object_destroy(&s->base);
}

/* ---- sizes ------------------------------------------------------------------- */

#define N_OBJECTS 1000

static void case_sizes(void)
{
	static relay_object *objs[N_OBJECTS];
	static sender *snd[N_OBJECTS];
	static receiver *rcv[N_OBJECTS];

	bench_result("F", "relay", (double)sizeof(relay_object), "bytes",
		     "variant=struct metric=object-size");
	bench_result("F", "relay", (double)sizeof(relay_signal), "bytes",
		     "variant=struct metric=signal-size");

	long long live0 = atomic_load(&bytes_live);
	for (int i = 0; i < N_OBJECTS; i++)
		must(relay_object_new(&objs[i], &plain_class, NULL),
		     "object");
	bench_result("F", "relay", (double)(atomic_load(&bytes_live) - live0) / N_OBJECTS,
		     "bytes", "variant=heap metric=object-heap count=%d", N_OBJECTS);

	for (int i = 0; i < N_OBJECTS; i++) {
		must(relay_object_new(&snd[i], &sender_class, NULL), "sender");
		must(relay_object_new(&rcv[i], &receiver_class, NULL), "receiver");
	}
	live0 = atomic_load(&bytes_live);
	for (int i = 0; i < N_OBJECTS; i++)
		must(relay_connect(snd[i], small, rcv[i], on_small), "connect");
	bench_result("F", "relay", (double)(atomic_load(&bytes_live) - live0) / N_OBJECTS,
		     "bytes", "variant=heap metric=conn-bytes-first count=%d", N_OBJECTS);

	live0 = atomic_load(&bytes_live);
	for (int i = 1; i < N_OBJECTS; i++)
		must(relay_connect(snd[0], small, rcv[i], on_small), "connect");
	bench_result("F", "relay", (double)(atomic_load(&bytes_live) - live0) / (N_OBJECTS - 1),
		     "bytes", "variant=heap metric=conn-bytes-more count=%d", N_OBJECTS - 1);

	for (int i = 0; i < N_OBJECTS; i++) {
		relay_object_destroy(objs[i]);
		relay_object_destroy(&snd[i]->base);
		relay_object_destroy(&rcv[i]->base);
	}
}

int main(int argc, char **argv)
{
	struct bench_args args;
	const relay_allocator counter = { count_alloc, count_release, NULL };

	bench_parse(argc, argv, &args, "emits", 200000, "all");
	resolve_real_lock();
	/* Before any other relay call, as relay_set_allocator requires. */
	must(relay_set_allocator(&counter), "set_allocator");

	case_queued(args.count);
	case_direct();
	case_sizes();
	return 0;
}
