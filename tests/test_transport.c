/*
 * test_transport.c - the event transport: per-sender order and exactly-once
 * delivery under many producers and loops (D4), and its allocation
 * promises (DESIGN.md F), counted through relay's allocator hook, never
 * timed.
 */
#include "support.h"

/* ---- a counting allocator, installed before any other relay call ---- */

static atomic_long g_allocs, g_frees;

static void *count_alloc(size_t size, void *user)
{
	(void)user;
	atomic_fetch_add_explicit(&g_allocs, 1, memory_order_relaxed);
	return malloc(size);
}

static void count_release(void *p, void *user)
{
	(void)user;
	if (p)
		atomic_fetch_add_explicit(&g_frees, 1, memory_order_relaxed);
	free(p);
}

static long allocs(void)
{
	return atomic_load(&g_allocs);
}

/* ---- payloads of several sizes, across the 64-byte inline limit ---- */

typedef struct p8 { int32_t producer, seq; } p8;
typedef struct p24 { int32_t producer, seq; uint64_t check[2]; } p24;
typedef struct p64 { int32_t producer, seq; uint64_t check[7]; } p64;
typedef struct p72 { int32_t producer, seq; uint64_t check[8]; } p72;
typedef struct p200 { int32_t producer, seq; uint64_t check[24]; } p200;

enum { MAX_PRODUCERS = 16, MAX_LOOPS = 8 };

typedef struct sender {
	relay_object base;
	RELAY_SIGNAL(s8, p8);
	RELAY_SIGNAL(s24, p24);
	RELAY_SIGNAL(s64, p64);
	RELAY_SIGNAL(s72, p72);
	RELAY_SIGNAL(s200, p200);
} sender;

typedef struct receiver {
	relay_object base;
	relay_thread *home;
	int next[MAX_PRODUCERS];          /* owner thread only */
	atomic_long got;
	atomic_long out_of_order, bad_payload, wrong_thread;
} receiver;

static const relay_class sender_class = { .name = "sender" };
static const relay_class receiver_class = { .name = "receiver" };

static uint64_t check_word(int producer, int seq, int i)
{
	return ((uint64_t)(uint32_t)producer << 40) ^ ((uint64_t)(uint32_t)seq << 8) ^ (uint64_t)i;
}

static void take(receiver *self, int producer, int seq, const uint64_t *check, int n)
{
	if (relay_thread_current() != self->home)
		atomic_fetch_add(&self->wrong_thread, 1);
	for (int i = 0; i < n; i++)
		if (check[i] != check_word(producer, seq, i))
			atomic_fetch_add(&self->bad_payload, 1);
	if (producer < 0 || producer >= MAX_PRODUCERS) {
		atomic_fetch_add(&self->bad_payload, 1);
		return;
	}
	if (seq != self->next[producer])
		atomic_fetch_add(&self->out_of_order, 1);
	self->next[producer] = seq + 1;
	atomic_fetch_add(&self->got, 1);
}

static void on8(receiver *r, const p8 *p) { take(r, p->producer, p->seq, NULL, 0); }
static void on24(receiver *r, const p24 *p) { take(r, p->producer, p->seq, p->check, 2); }
static void on64(receiver *r, const p64 *p) { take(r, p->producer, p->seq, p->check, 7); }
static void on72(receiver *r, const p72 *p) { take(r, p->producer, p->seq, p->check, 8); }
static void on200(receiver *r, const p200 *p) { take(r, p->producer, p->seq, p->check, 24); }

#define FILL(v, prod, s, n)                                            \
	do {                                                           \
		(v).producer = (prod);                                 \
		(v).seq = (s);                                         \
		for (int i_ = 0; i_ < (n); i_++)                       \
			(v).check[i_] = check_word((prod), (s), i_);   \
	} while (0)

/* Emits one event of a pseudo-random size; returns the emit's result. */
static int emit_random(sender *s, int producer, int seq, unsigned *rnd)
{
	*rnd = *rnd * 1103515245u + 12345u;
	switch ((*rnd >> 16) % 5) {
	case 0: { p8 v = { producer, seq }; return relay_emit(s, s8, &v); }
	case 1: { p24 v; FILL(v, producer, seq, 2); return relay_emit(s, s24, &v); }
	case 2: { p64 v; FILL(v, producer, seq, 7); return relay_emit(s, s64, &v); }
	case 3: { p72 v; FILL(v, producer, seq, 8); return relay_emit(s, s72, &v); }
	default: { p200 v; FILL(v, producer, seq, 24); return relay_emit(s, s200, &v); }
	}
}

static void connect_all(sender *s, receiver *r)
{
	assert_int_equal(relay_connect(s, s8, r, on8), 0);
	assert_int_equal(relay_connect(s, s24, r, on24), 0);
	assert_int_equal(relay_connect(s, s64, r, on64), 0);
	assert_int_equal(relay_connect(s, s72, r, on72), 0);
	assert_int_equal(relay_connect(s, s200, r, on200), 0);
}

static receiver *receiver_in(relay_thread *t)
{
	receiver *r = NULL;
	assert_int_equal(relay_object_new(&r, &receiver_class, NULL), 0);
	r->home = t;
	assert_int_equal(relay_object_move_to_thread(&r->base, t), 0);
	return r;
}

/* ---- D4 under load: producers x loops ---- */

typedef struct producer {
	sender *s;
	int id, n;
	atomic_long errors;
} producer;

static void *producer_main(void *arg)
{
	producer *p = arg;
	unsigned rnd = 0x9e3779b9u * (unsigned)(p->id + 1);
	for (int seq = 0; seq < p->n; seq++)
		if (emit_random(p->s, p->id, seq, &rnd) != 0)
			atomic_fetch_add(&p->errors, 1);
	return NULL;
}

static void test_D4_transport_stress_producers_x_loops(void **state)
{
	(void)state;
	int np = (int)support_param("TRANSPORT_PRODUCERS", 8);
	int nl = (int)support_param("TRANSPORT_LOOPS", 4);
	int n = (int)support_param("TRANSPORT_EMITS", 4000);
	assert_true(np > 0 && np <= MAX_PRODUCERS && nl > 0 && nl <= MAX_LOOPS);

	relay_thread *loops[MAX_LOOPS];
	receiver *recv[MAX_LOOPS];
	for (int i = 0; i < nl; i++) {
		char name[16];
		snprintf(name, sizeof name, "sink-%d", i);
		loops[i] = support_thread_start(name);
		recv[i] = receiver_in(loops[i]);
	}
	producer prod[MAX_PRODUCERS];
	pthread_t th[MAX_PRODUCERS];
	for (int p = 0; p < np; p++) {
		prod[p] = (producer){ .id = p, .n = n };
		assert_int_equal(relay_object_new(&prod[p].s, &sender_class, NULL),
				 0);
		for (int i = 0; i < nl; i++)
			connect_all(prod[p].s, recv[i]);
	}
	for (int p = 0; p < np; p++)
		assert_int_equal(pthread_create(&th[p], NULL, producer_main, &prod[p]), 0);
	for (int p = 0; p < np; p++)
		assert_int_equal(pthread_join(th[p], NULL), 0);

	long want = (long)np * n;
	for (int i = 0; i < nl; i++)
		assert_true(support_wait_count(&recv[i]->got, want, SUPPORT_TIMEOUT_MS * 3));
	for (int i = 0; i < nl; i++) {
		assert_int_equal(relay_thread_stop(loops[i], SUPPORT_TIMEOUT_MS), 0);
		/* exactly once: nothing more arrived while stopping */
		assert_int_equal(atomic_load(&recv[i]->got), want);
		assert_int_equal(atomic_load(&recv[i]->out_of_order), 0);
		assert_int_equal(atomic_load(&recv[i]->bad_payload), 0);
		assert_int_equal(atomic_load(&recv[i]->wrong_thread), 0);
		for (int p = 0; p < np; p++)
			assert_int_equal(recv[i]->next[p], n);
		relay_loop_stats st;
		assert_int_equal(relay_thread_stats(loops[i], &st), 0);
		assert_int_equal(st.dropped, 0);
	}
	for (int p = 0; p < np; p++) {
		assert_int_equal(atomic_load(&prod[p].errors), 0);
		assert_int_equal(relay_object_destroy(&prod[p].s->base), 0);
	}
	for (int i = 0; i < nl; i++) {
		assert_int_equal(relay_object_delete_later(&recv[i]->base), 0);
		assert_int_equal(relay_thread_destroy(loops[i]), 0);
	}
}

/* ---- D4: the spare chunk changes hands while both ends run ---- */

/* A producer that keeps posting while its consumer drains a backlog
 * crosses chunk boundaries exactly when the consumer retires drained
 * chunks into the ring's spare slot (freeing the one they replace): the
 * producer must not read a spare it has not taken (TSan saw it read the
 * size of a chunk the consumer was freeing). Bursts of large records grow
 * the chunks, small ones follow, pauses let the consumer catch up. */
static void test_D4_spare_chunk_handover_while_draining(void **state)
{
	(void)state;
	int rounds = (int)support_param("SPARE_ROUNDS", 40);
	relay_thread *t = support_thread_start("spare-sink");
	receiver *r = receiver_in(t);
	sender *s = NULL;
	assert_int_equal(relay_object_new(&s, &sender_class, NULL), 0);
	connect_all(s, r);
	unsigned rnd = 12345;
	int seq = 0;
	for (int i = 0; i < rounds; i++) {
		int burst = 500 + (int)(rnd % 3000);
		for (int k = 0; k < burst; k++, seq++) {
			if (i & 1) {
				p200 v;
				FILL(v, 0, seq, 24);
				assert_int_equal(relay_emit(s, s200, &v), 0);
			} else {
				assert_int_equal(emit_random(s, 0, seq, &rnd), 0);
			}
		}
		if (i % 4 == 3)
			assert_true(support_wait_count(&r->got, seq, SUPPORT_TIMEOUT_MS));
	}
	assert_true(support_wait_count(&r->got, seq, SUPPORT_TIMEOUT_MS));
	assert_int_equal(atomic_load(&r->out_of_order), 0);
	assert_int_equal(atomic_load(&r->bad_payload), 0);
	assert_int_equal(relay_thread_stop(t, SUPPORT_TIMEOUT_MS), 0);
	assert_int_equal(relay_object_destroy(s), 0);
	assert_int_equal(relay_object_delete_later(r), 0);
	assert_int_equal(relay_thread_destroy(t), 0);
}

/* ---- F: allocations ---- */

/* Emits `batch` queued events and waits for their delivery. */
static void one_batch(sender *s, receiver *r, int batch, int *seq)
{
	long target = atomic_load(&r->got) + batch;
	for (int i = 0; i < batch; i++) {
		if (i & 1) {
			p64 v;
			FILL(v, 0, *seq, 7);
			assert_int_equal(relay_emit(s, s64, &v), 0);
		} else {
			p8 v = { 0, *seq };
			assert_int_equal(relay_emit(s, s8, &v), 0);
		}
		(*seq)++;
	}
	assert_true(support_wait_count(&r->got, target, SUPPORT_TIMEOUT_MS));
}

/* A steady flow of queued emits (payloads of 8 and 64 bytes) to another
 * thread allocates nothing once its ring has reached its working size,
 * even with the consumer going idle between bursts. */
static void test_F_zero_allocations_per_queued_emit_steady_state(void **state)
{
	(void)state;
	relay_thread *t = support_thread_start("alloc-sink");
	receiver *r = receiver_in(t);
	sender *s = NULL;
	assert_int_equal(relay_object_new(&s, &sender_class, NULL), 0);
	assert_int_equal(relay_connect(s, s8, r, on8), 0);
	assert_int_equal(relay_connect(s, s64, r, on64), 0);
	int seq = 0;
	/* Warm-up: a flood grows the ring's chunks to their full size (they
	 * double while a backlog forms), then the flow settles in batches
	 * that never lag a whole chunk behind. */
	one_batch(s, r, 20000, &seq);
	for (int i = 0; i < 50; i++)
		one_batch(s, r, 64, &seq);
	long a0 = allocs();
	for (int i = 0; i < 500; i++)
		one_batch(s, r, 64, &seq);
	long a1 = allocs();
	if (a1 != a0)
		fail_msg("%ld allocations for %d queued emits in steady state", a1 - a0, 500 * 64);
	assert_int_equal(atomic_load(&r->out_of_order), 0);
	assert_int_equal(relay_thread_stop(t, SUPPORT_TIMEOUT_MS), 0);
	assert_int_equal(relay_object_destroy(&s->base), 0);
	assert_int_equal(relay_object_delete_later(&r->base), 0);
	assert_int_equal(relay_thread_destroy(t), 0);
}

typedef struct local {
	relay_object base;
	RELAY_SIGNAL(v, p8);
	long sum;
} local;

static const relay_class local_class = { .name = "local" };

static void local_add(local *self, const p8 *p)
{
	self->sum += p->seq;
}

/* Direct and unconnected emits allocate nothing, ever. */
static void test_F_zero_allocations_direct_and_unconnected(void **state)
{
	(void)state;
	local *a = NULL, *b = NULL;
	assert_int_equal(relay_object_new(&a, &local_class, NULL), 0);
	assert_int_equal(relay_object_new(&b, &local_class, NULL), 0);
	p8 v = { 0, 1 };
	assert_int_equal(relay_emit(a, v, &v), 0);     /* unconnected */
	assert_int_equal(relay_connect(b, v, a, local_add), 0);
	assert_int_equal(relay_emit(b, v, &v), 0);     /* warm: the emit cache */
	long a0 = allocs();
	for (int i = 0; i < 10000; i++) {
		assert_int_equal(relay_emit(a, v, &v), 0);
		assert_int_equal(relay_emit(b, v, &v), 0);
	}
	assert_int_equal(allocs(), a0);
	assert_int_equal(a->sum, 10001);
	assert_int_equal(relay_object_destroy(&a->base), 0);
	assert_int_equal(relay_object_destroy(&b->base), 0);
}

/* An object costs at most 64 bytes plus its signals (16 bytes each). */
static void test_F_object_size(void **state)
{
	(void)state;
	assert_true(sizeof(relay_object) - sizeof(relay_signal) <= 64);
	assert_true(sizeof(relay_signal) <= 16);
	assert_true(sizeof(((sender *)0)->s8) == sizeof(relay_signal));
}

int main(int argc, char **argv)
{
	static const relay_allocator counting = { count_alloc, count_release, NULL };
	support_set_args(argc, argv);
	/* Before any other relay call, as the header requires. */
	if (relay_set_allocator(&counting) != 0)
		return 1;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_F_object_size),
		cmocka_unit_test(test_F_zero_allocations_direct_and_unconnected),
		cmocka_unit_test(test_F_zero_allocations_per_queued_emit_steady_state),
		cmocka_unit_test(test_D4_transport_stress_producers_x_loops),
		cmocka_unit_test(test_D4_spare_chunk_handover_while_draining),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
