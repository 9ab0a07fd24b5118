/*
 * test_stress.c - bounded stress tests of the signal machinery.
 *
 * Each test runs for at most STRESS_MS milliseconds of activity (default
 * 2000) and at most the iteration counts below; every count can be
 * overridden from argv ("NAME=value") or the environment, e.g.
 *     ./test_stress STRESS_MS=10000 STRESS_PRODUCERS=8
 * The assertions are about counts and identities, checked after every
 * thread has stopped; the time limit only bounds the work, nothing
 * asserts on speed. Shared counters are C11 atomics (TSan-clean); helper
 * threads never call cmocka asserts (they count errors; main asserts).
 *
 * test_D6_D7_stress_connect_cut_destroy checks D6 soundly with markers:
 * after relay_disconnect(c) returns, the cutter posts a marker with
 * relay_invoke to an anchor object living in c's receiver thread; the
 * marker sets c's "confirmed" flag in that thread. A slot call for c that
 * runs in that thread after the marker ran necessarily started after
 * relay_disconnect returned, so the slot counts it as a violation. (A
 * plain "cut" flag set by the cutter would be racy: a call may have
 * started before disconnect returned and still be entering the slot.)
 * Receivers' finalizers set a "dead" flag in their own thread, checked by
 * the slot the same way (D7).
 */
#include "support.h"

#include <sched.h>

/* ----------------------------------------------------------------------
 * Parameters
 * ---------------------------------------------------------------------- */

static long p_ms(void) { return support_param("STRESS_MS", 2000); }
static long p_producers(void) { return support_param("STRESS_PRODUCERS", 3); }
static long p_emits(void) { return support_param("STRESS_EMITS", 5000000); }
static long p_threads(void) { return support_param("STRESS_THREADS", 3); }
static long p_receivers(void) { return support_param("STRESS_RECEIVERS", 2); }
static long p_calls(void) { return support_param("STRESS_CALLS", 20000); }
static long p_rounds(void) { return support_param("STRESS_ROUNDS", 200000); }
/* manager iterations between 1 ms naps (larger: more churn) */
static long p_pace(void) { return support_param("STRESS_PACE", 32); }

/* Safety net for liveness waits (a lost wake-up shows as a hang). */
#define STRESS_WAIT_MS 60000

/* ======================================================================
 * Connect / cut / destroy under emission
 * ====================================================================== */

enum {
	MAX_THREADS = 8,
	MAX_SLOTS = 32,
	MAX_PRODUCERS = 16,
	MAX_SENDERS = 2,
	MAX_ACTIVE = 64,
	MAX_RECS = 1 << 17,
	MAX_LIVES = 1 << 14,
	MAX_OUTSTANDING = 20000   /* producers throttle above this many live copies */
};

/* One per copy made by the copy hook; records whether it was delivered. */
typedef struct token {
	atomic_int delivered;
} token;

typedef struct spay {
	int producer;
	int seq;
	char *text;      /* "p<producer>:<seq>"; owned by the copy */
	token *tok;      /* NULL in the emitter's own value */
} spay;

/* One per receiver incarnation. */
typedef struct slife {
	atomic_int dead;   /* set by the finalizer, in the receiver's thread */
} slife;

/* One per connection ever made (never reused). */
typedef struct srec {
	slife *life;
	relay_thread *thread;           /* the receiver's thread */
	bool single;
	atomic_int confirmed;           /* set by the marker, in that thread */
	atomic_long calls;
	atomic_int last_seq[MAX_PRODUCERS];
} srec;

typedef struct rcv {
	relay_object base;
	slife *life;
} rcv;

typedef struct snd {
	relay_object base;
	RELAY_SIGNAL(data, spay);
} snd;

static struct {
	atomic_long copies, copy_failures, frees;
	atomic_long freed_delivered, freed_dropped;
	atomic_long calls;
	atomic_long v_after_cut;      /* D6 violations (sound) */
	atomic_long v_after_dead;     /* D7 violations */
	atomic_long v_wrong_thread;
	atomic_long v_double_delivery;
	atomic_long v_bad_payload;
	atomic_long v_order;
	atomic_long v_single;
	atomic_long errors;           /* unexpected return codes in helpers */
	atomic_long connects, cuts, recycles, receiver_cuts, markers;
	atomic_long emits;
	atomic_int stop;
} g;

static srec g_recs[MAX_RECS];
static slife g_lives[MAX_LIVES];

static void text_of(char *buf, size_t n, int producer, int seq)
{
	snprintf(buf, n, "p%d:%d", producer, seq);
}

static int spay_copy(void *dst, const void *src)
{
	const spay *s = src;
	spay *d = dst;
	token *t = calloc(1, sizeof *t);
	char *text = s->text ? strdup(s->text) : NULL;
	if (!t || !text) {
		free(t);
		free(text);
		atomic_fetch_add(&g.copy_failures, 1);
		return -ENOMEM;
	}
	d->producer = s->producer;
	d->seq = s->seq;
	d->text = text;
	d->tok = t;
	atomic_fetch_add(&g.copies, 1);
	return 0;
}

static void spay_free(void *p)
{
	spay *s = p;
	if (s->tok) {
		if (atomic_load(&s->tok->delivered))
			atomic_fetch_add(&g.freed_delivered, 1);
		else
			atomic_fetch_add(&g.freed_dropped, 1);
	}
	free(s->tok);
	free(s->text);
	s->tok = NULL;
	s->text = NULL;
	atomic_fetch_add(&g.frees, 1);
}

static const relay_payload_ops spay_ops = { spay_copy, spay_free };

static void rcv_finalize(relay_object *o)
{
	rcv *r = (rcv *)o;
	atomic_store(&r->life->dead, 1);
}

static const relay_class rcv_class = { .name = "stress_rcv", .finalize = rcv_finalize };
static const relay_class snd_class = { .name = "stress_snd" };
static const relay_class anchor_class = { .name = "stress_anchor" };

/* The slot: runs in the receiver's thread (every connection is queued:
 * emitters are plain pthreads, receivers live in relay_threads). */
static void s_fn(void *data, const spay *p)
{
	srec *rec = data;
	atomic_fetch_add(&g.calls, 1);
	if (atomic_load_explicit(&rec->confirmed, memory_order_relaxed))
		atomic_fetch_add(&g.v_after_cut, 1);
	if (atomic_load_explicit(&rec->life->dead, memory_order_relaxed))
		atomic_fetch_add(&g.v_after_dead, 1);
	if (relay_thread_current() != rec->thread)
		atomic_fetch_add(&g.v_wrong_thread, 1);
	if (!p->tok) {
		atomic_fetch_add(&g.v_bad_payload, 1);   /* not a copy */
	} else if (atomic_exchange(&p->tok->delivered, 1)) {
		atomic_fetch_add(&g.v_double_delivery, 1);
	}
	char want[32];
	text_of(want, sizeof want, p->producer, p->seq);
	if (!p->text || strcmp(p->text, want) != 0)
		atomic_fetch_add(&g.v_bad_payload, 1);
	if (p->producer >= 0 && p->producer < MAX_PRODUCERS) {
		int last = atomic_load_explicit(&rec->last_seq[p->producer], memory_order_relaxed);
		if (p->seq <= last)
			atomic_fetch_add(&g.v_order, 1);
		atomic_store_explicit(&rec->last_seq[p->producer], p->seq, memory_order_relaxed);
	}
	if (atomic_fetch_add(&rec->calls, 1) >= 1 && rec->single)
		atomic_fetch_add(&g.v_single, 1);
}

/* Runs in the receiver's thread after relay_disconnect returned. */
static void mark_confirmed(void *data)
{
	srec *rec = data;
	atomic_store_explicit(&rec->confirmed, 1, memory_order_relaxed);
	atomic_fetch_add(&g.markers, 1);
}

/* ---- producers ---- */

typedef struct producer {
	int id;
	long emits;
	int64_t deadline;
	snd **senders;
	int nsenders;
} producer;

static void *producer_main(void *arg)
{
	producer *p = arg;
	char text[32];
	for (int seq = 0; seq < p->emits; seq++) {
		if (atomic_load(&g.stop) || ((seq & 255) == 0 && support_now_ms() > p->deadline))
			break;
		while (atomic_load(&g.copies) - atomic_load(&g.frees) > MAX_OUTSTANDING &&
		       !atomic_load(&g.stop))
			support_sleep_ms(1);
		text_of(text, sizeof text, p->id, seq);
		spay v = { p->id, seq, text, NULL };
		int rc = relay_emit(p->senders[seq % p->nsenders], data, &v);
		if (rc != 0)
			atomic_fetch_add(&g.errors, 1);
		atomic_fetch_add(&g.emits, 1);
	}
	return NULL;
}

/* ---- the manager: connects, cuts, destroys and recreates receivers ---- */

typedef struct rslot {
	rcv *obj;
	int tidx;
} rslot;

typedef struct active {
	relay_connection id;
	srec *rec;
	int slot;
} active;

typedef struct manager {
	relay_thread **threads;
	rcv **anchors;
	int nthreads;
	snd **senders;
	int nsenders;
	rslot slots[MAX_SLOTS];
	int nslots;
	active act[MAX_ACTIVE];
	int nact;
	int nrecs;
	int nlives;
	unsigned seed;
	int64_t deadline;
} manager;

static slife *new_life(manager *m)
{
	if (m->nlives >= MAX_LIVES)
		return NULL;
	return &g_lives[m->nlives++];
}

/* Create a receiver in the calling thread and move it to its thread. */
static rcv *make_receiver(manager *m, int tidx)
{
	slife *life = new_life(m);
	if (!life)
		return NULL;
	rcv *r = NULL;
	if (relay_object_new(&r, &rcv_class, NULL) != 0) {
		atomic_fetch_add(&g.errors, 1);
		return NULL;
	}
	r->life = life;
	if (relay_object_move_to_thread(&r->base, m->threads[tidx]) != 0)
		atomic_fetch_add(&g.errors, 1);
	return r;
}

static void drop_active(manager *m, int i)
{
	m->act[i] = m->act[--m->nact];
}

static void do_connect(manager *m)
{
	if (m->nact >= MAX_ACTIVE || m->nrecs >= MAX_RECS)
		return;
	int si = (int)(rand_r(&m->seed) % (unsigned)m->nslots);
	rslot *sl = &m->slots[si];
	if (!sl->obj)
		return;
	srec *rec = &g_recs[m->nrecs++];
	rec->life = sl->obj->life;
	rec->thread = m->threads[sl->tidx];
	rec->single = rand_r(&m->seed) % 10 == 0;
	for (int k = 0; k < MAX_PRODUCERS; k++)
		atomic_store_explicit(&rec->last_seq[k], -1, memory_order_relaxed);
	snd *s = m->senders[rand_r(&m->seed) % (unsigned)m->nsenders];
	relay_connection id = 0;
	int rc = relay_connect_func_ex(s, data, &sl->obj->base, s_fn, rec, RELAY_AUTO,
				       rec->single ? RELAY_SINGLE_SHOT : 0u, &id);
	if (rc != 0 || id == 0) {
		atomic_fetch_add(&g.errors, 1);
		return;
	}
	m->act[m->nact++] = (active){ id, rec, si };
	atomic_fetch_add(&g.connects, 1);
}

static void post_marker(manager *m, active *a)
{
	int tidx = m->slots[a->slot].tidx;
	if (relay_invoke(&m->anchors[tidx]->base, mark_confirmed, a->rec, NULL) != 0)
		atomic_fetch_add(&g.errors, 1);
}

static void do_cut(manager *m)
{
	if (m->nact == 0)
		return;
	int i = (int)(rand_r(&m->seed) % (unsigned)m->nact);
	active a = m->act[i];
	int rc = relay_disconnect(a.id);
	if (rc == 0) {
		post_marker(m, &a);
	} else if (!(rc == -ENOENT && a.rec->single)) {
		/* Only a taken single-shot may already be gone: connections
		 * whose receiver was destroyed left the active list then. */
		atomic_fetch_add(&g.errors, 1);
	}
	drop_active(m, i);
	atomic_fetch_add(&g.cuts, 1);
}

static void do_recycle(manager *m)
{
	int si = (int)(rand_r(&m->seed) % (unsigned)m->nslots);
	rslot *sl = &m->slots[si];
	if (!sl->obj)
		return;
	rcv *fresh = make_receiver(m, sl->tidx);
	if (!fresh)
		return;
	if (relay_object_delete_later(&sl->obj->base) != 0)
		atomic_fetch_add(&g.errors, 1);
	sl->obj = fresh;   /* the old pointer is never used again */
	for (int i = m->nact - 1; i >= 0; i--)
		if (m->act[i].slot == si)
			drop_active(m, i);
	atomic_fetch_add(&g.recycles, 1);
}

static void do_cut_receiver(manager *m)
{
	int si = (int)(rand_r(&m->seed) % (unsigned)m->nslots);
	rslot *sl = &m->slots[si];
	if (!sl->obj)
		return;
	if (relay_disconnect_receiver(&sl->obj->base) != 0) {
		atomic_fetch_add(&g.errors, 1);
		return;
	}
	for (int i = m->nact - 1; i >= 0; i--) {
		if (m->act[i].slot == si) {
			/* A single-shot may have been taken already: its taken
			 * event is no longer this connection's to drop, so no
			 * marker (relay_disconnect_receiver cannot say). */
			if (!m->act[i].rec->single)
				post_marker(m, &m->act[i]);
			drop_active(m, i);
		}
	}
	atomic_fetch_add(&g.receiver_cuts, 1);
}

static void *manager_main(void *arg)
{
	manager *m = arg;
	long iter = 0, pace = p_pace();
	if (pace < 1)
		pace = 1;
	while (!atomic_load(&g.stop)) {
		if ((iter & 63) == 0 && support_now_ms() > m->deadline)
			break;
		unsigned r = rand_r(&m->seed) % 100;
		if (r < 50)
			do_connect(m);
		else if (r < 88)
			do_cut(m);
		else if (r < 97)
			do_recycle(m);
		else
			do_cut_receiver(m);
		/* Pace the manager so that the connection records last the
		 * run (not a timing assumption: only the mix of work). */
		if (++iter % pace == 0)
			support_sleep_ms(1);
		else
			sched_yield();
	}
	return NULL;
}

static void stress_reset(void)
{
	memset(&g, 0, sizeof g);
	memset(g_recs, 0, sizeof g_recs);
	memset(g_lives, 0, sizeof g_lives);
}

static void test_D6_D7_stress_connect_cut_destroy(void **state)
{
	(void)state;
	stress_reset();
	int nthreads = (int)p_threads(), nper = (int)p_receivers();
	int nprod = (int)p_producers();
	if (nthreads < 1) nthreads = 1;
	if (nthreads > MAX_THREADS) nthreads = MAX_THREADS;
	if (nper < 1) nper = 1;
	if (nthreads * nper > MAX_SLOTS) nper = MAX_SLOTS / nthreads;
	if (nprod < 1) nprod = 1;
	if (nprod > MAX_PRODUCERS) nprod = MAX_PRODUCERS;

	relay_thread *threads[MAX_THREADS];
	rcv *anchors[MAX_THREADS];
	for (int i = 0; i < nthreads; i++) {
		char name[32];
		snprintf(name, sizeof name, "stress-%d", i);
		threads[i] = support_thread_start(name);
		assert_int_equal(relay_object_new(&anchors[i], &anchor_class, NULL), 0);
		assert_int_equal(relay_object_move_to_thread(&anchors[i]->base, threads[i]), 0);
	}
	snd *senders[MAX_SENDERS];
	for (int i = 0; i < MAX_SENDERS; i++) {
		assert_int_equal(relay_object_new(&senders[i], &snd_class, NULL), 0);
		assert_int_equal(relay_signal_set_ops(senders[i], data, &spay_ops), 0);
	}

	int64_t deadline = support_now_ms() + p_ms();
	static manager m;
	memset(&m, 0, sizeof m);
	m.threads = threads;
	m.anchors = anchors;
	m.nthreads = nthreads;
	m.senders = senders;
	m.nsenders = MAX_SENDERS;
	m.seed = 12345u;
	m.deadline = deadline;
	m.nslots = nthreads * nper;
	for (int i = 0; i < m.nslots; i++) {
		m.slots[i].tidx = i % nthreads;
		m.slots[i].obj = make_receiver(&m, m.slots[i].tidx);
		assert_non_null(m.slots[i].obj);
	}

	pthread_t mth, pth[MAX_PRODUCERS];
	producer prods[MAX_PRODUCERS];
	assert_int_equal(pthread_create(&mth, NULL, manager_main, &m), 0);
	for (int i = 0; i < nprod; i++) {
		prods[i] = (producer){ i, p_emits(), deadline, senders, MAX_SENDERS };
		assert_int_equal(pthread_create(&pth[i], NULL, producer_main, &prods[i]), 0);
	}
	for (int i = 0; i < nprod; i++)
		assert_int_equal(pthread_join(pth[i], NULL), 0);
	atomic_store(&g.stop, 1);
	assert_int_equal(pthread_join(mth, NULL), 0);

	/* Tear down: senders first (queued events still arrive, D7), then
	 * every receiver and anchor, then the threads. */
	for (int i = 0; i < MAX_SENDERS; i++)
		assert_int_equal(relay_object_destroy(&senders[i]->base), 0);
	for (int i = 0; i < m.nslots; i++)
		assert_int_equal(relay_object_delete_later(&m.slots[i].obj->base), 0);
	for (int i = 0; i < nthreads; i++)
		assert_int_equal(relay_object_delete_later(&anchors[i]->base), 0);
	uint64_t dropped = 0, delivered = 0;
	for (int i = 0; i < nthreads; i++) {
		relay_loop_stats st;
		assert_int_equal(relay_thread_stop(threads[i], SUPPORT_TIMEOUT_MS * 3), 0);
		assert_int_equal(relay_thread_stats(threads[i], &st), 0);
		dropped += st.dropped;
		delivered += st.delivered;
		assert_int_equal(relay_thread_destroy(threads[i]), 0);
	}
	support_drain(10);

	long copies = atomic_load(&g.copies), frees = atomic_load(&g.frees);
	long fdel = atomic_load(&g.freed_delivered), fdrop = atomic_load(&g.freed_dropped);
	long calls = atomic_load(&g.calls);
	print_message("stress: emits=%ld copies=%ld delivered=%ld dropped=%ld connects=%ld "
		      "cuts=%ld recycles=%ld receiver_cuts=%ld markers=%ld "
		      "(loops: delivered=%llu dropped=%llu)\n",
		      atomic_load(&g.emits), copies, fdel, fdrop, atomic_load(&g.connects),
		      atomic_load(&g.cuts), atomic_load(&g.recycles),
		      atomic_load(&g.receiver_cuts), atomic_load(&g.markers),
		      (unsigned long long)delivered, (unsigned long long)dropped);

	assert_int_equal(atomic_load(&g.errors), 0);
	assert_int_equal(atomic_load(&g.copy_failures), 0);
	/* D3: every copy freed exactly once, delivered or dropped. */
	assert_int_equal(frees, copies);
	assert_int_equal(fdel + fdrop, copies);
	assert_int_equal(calls, fdel);
	assert_true((long)delivered >= fdel);
	/* D6, D7, D1, D4 */
	assert_int_equal(atomic_load(&g.v_after_cut), 0);
	assert_int_equal(atomic_load(&g.v_after_dead), 0);
	assert_int_equal(atomic_load(&g.v_wrong_thread), 0);
	assert_int_equal(atomic_load(&g.v_double_delivery), 0);
	assert_int_equal(atomic_load(&g.v_bad_payload), 0);
	assert_int_equal(atomic_load(&g.v_order), 0);
	assert_int_equal(atomic_load(&g.v_single), 0);
	/* the run did something */
	assert_true(atomic_load(&g.emits) > 0);
	assert_true(atomic_load(&g.connects) > 0);
	/* T5 / relay_loop_stats: every copy freed undelivered was counted as
	 * dropped by the receiving loop (the loops also count other drops,
	 * hence >=). */
	if ((long)dropped < fdrop)
		print_message("stress: %ld payload copies freed undelivered were not counted "
			      "in any loop's dropped counter\n", fdrop - (long)dropped);
	assert_true((long)dropped >= fdrop);
}

/* ======================================================================
 * D6 for direct calls in other threads: a generation scheme
 *
 * Emitter i publishes its emit number k in started[i] BEFORE calling
 * relay_emit and passes k in the payload. After relay_disconnect(c)
 * returns, the cutter reads every started[i] into c's cut_gen[i], then
 * sets c's cut flag. A call of c's slot from emit k > cut_gen[i] is a
 * violation: that emit began after the cutter read started[i], hence
 * after relay_disconnect returned. (A call from an emit that began
 * earlier may legitimately still be running or about to run.)
 * ====================================================================== */

enum { GEN_MAX_RECS = 1 << 16, GEN_BATCH = 8 };

typedef struct gpay {
	int emitter;
	long gen;
} gpay;

typedef struct grec {
	atomic_int cut_set;
	atomic_long cut_gen[MAX_PRODUCERS];
	atomic_long calls;
} grec;

typedef struct gsnd {
	relay_object base;
	RELAY_SIGNAL(data, gpay);
} gsnd;

static grec g_grecs[GEN_MAX_RECS];
static atomic_long g_started[MAX_PRODUCERS];
static atomic_long g_gen_violations, g_gen_calls, g_gen_errors;
static atomic_int g_gen_stop;

static void gen_fn(void *data, const gpay *p)
{
	grec *r = data;
	atomic_fetch_add(&g_gen_calls, 1);
	atomic_fetch_add(&r->calls, 1);
	if (atomic_load_explicit(&r->cut_set, memory_order_acquire) &&
	    p->gen > atomic_load_explicit(&r->cut_gen[p->emitter], memory_order_relaxed))
		atomic_fetch_add(&g_gen_violations, 1);
}

typedef struct gemitter {
	gsnd *s;
	int id;
} gemitter;

static void *gen_emitter_main(void *arg)
{
	gemitter *e = arg;
	long k = 0;
	while (!atomic_load(&g_gen_stop)) {
		k++;
		/* published before the emit begins (seq_cst store) */
		atomic_store(&g_started[e->id], k);
		gpay v = { e->id, k };
		if (relay_emit(e->s, data, &v) != 0)
			atomic_fetch_add(&g_gen_errors, 1);
	}
	return NULL;
}

static void test_D6_stress_direct_disconnect_generations(void **state)
{
	(void)state;
	static const relay_class gsnd_class = { .name = "gsnd" };
	int ne = (int)p_producers();
	if (ne < 1) ne = 1;
	if (ne > MAX_PRODUCERS) ne = MAX_PRODUCERS;
	memset(g_grecs, 0, sizeof g_grecs);
	for (int i = 0; i < MAX_PRODUCERS; i++)
		atomic_store(&g_started[i], 0);
	atomic_store(&g_gen_violations, 0);
	atomic_store(&g_gen_calls, 0);
	atomic_store(&g_gen_errors, 0);
	atomic_store(&g_gen_stop, 0);

	gsnd *s = NULL;
	assert_int_equal(relay_object_new(&s, &gsnd_class, NULL), 0);
	gemitter em[MAX_PRODUCERS];
	pthread_t th[MAX_PRODUCERS];
	for (int i = 0; i < ne; i++) {
		em[i] = (gemitter){ s, i };
		assert_int_equal(pthread_create(&th[i], NULL, gen_emitter_main, &em[i]), 0);
	}
	int64_t deadline = support_now_ms() + p_ms();
	int nrec = 0;
	long cuts = 0;
	while (support_now_ms() < deadline && nrec + GEN_BATCH <= GEN_MAX_RECS) {
		relay_connection ids[GEN_BATCH];
		grec *recs[GEN_BATCH];
		for (int b = 0; b < GEN_BATCH; b++) {
			recs[b] = &g_grecs[nrec++];
			assert_int_equal(relay_connect_func_ex(s, data, NULL, gen_fn, recs[b], RELAY_DIRECT,
							       0u, &ids[b]), 0);
		}
		sched_yield();
		for (int b = 0; b < GEN_BATCH; b++) {
			assert_int_equal(relay_disconnect(ids[b]), 0);
			for (int i = 0; i < ne; i++)
				atomic_store_explicit(&recs[b]->cut_gen[i], atomic_load(&g_started[i]),
						      memory_order_relaxed);
			atomic_store_explicit(&recs[b]->cut_set, 1, memory_order_release);
			cuts++;
		}
	}
	atomic_store(&g_gen_stop, 1);
	for (int i = 0; i < ne; i++)
		assert_int_equal(pthread_join(th[i], NULL), 0);
	print_message("direct generations: %ld cuts, %ld slot calls\n", cuts,
		      atomic_load(&g_gen_calls));
	assert_int_equal(atomic_load(&g_gen_errors), 0);
	assert_int_equal(atomic_load(&g_gen_violations), 0);
	assert_true(cuts > 0);
	assert_int_equal(relay_object_destroy(&s->base), 0);
}

/* ======================================================================
 * Thread churn: many short-lived emitting threads (D4, D3)
 * ====================================================================== */

enum { CHURN_MAX_IDS = 1 << 16, CHURN_PER = 64, CHURN_BATCH = 8 };

typedef struct cpay {
	int id;
	int seq;
	char *text;
} cpay;

static int g_churn_next[CHURN_MAX_IDS];   /* receiver thread only */
static atomic_long g_churn_calls, g_churn_errors, g_churn_copies, g_churn_frees;

static int cpay_copy(void *dst, const void *src)
{
	const cpay *s = src;
	cpay *d = dst;
	*d = *s;
	d->text = strdup(s->text);
	if (!d->text)
		return -ENOMEM;
	atomic_fetch_add(&g_churn_copies, 1);
	return 0;
}

static void cpay_free(void *p)
{
	cpay *c = p;
	free(c->text);
	c->text = NULL;
	atomic_fetch_add(&g_churn_frees, 1);
}

static const relay_payload_ops cpay_ops = { cpay_copy, cpay_free };

typedef struct csnd {
	relay_object base;
	RELAY_SIGNAL(data, cpay);
} csnd;

static void churn_fn(void *data, const cpay *p)
{
	(void)data;
	char want[32];
	snprintf(want, sizeof want, "c%d:%d", p->id, p->seq);
	if (p->id < 0 || p->id >= CHURN_MAX_IDS || g_churn_next[p->id] != p->seq ||
	    !p->text || strcmp(p->text, want) != 0)
		atomic_fetch_add(&g_churn_errors, 1);
	else
		g_churn_next[p->id]++;
	atomic_fetch_add(&g_churn_calls, 1);
}

typedef struct cthread {
	csnd *s;
	int id;
	int rc;
} cthread;

static void *churn_main(void *arg)
{
	cthread *c = arg;
	char text[32];
	for (int i = 0; i < CHURN_PER; i++) {
		snprintf(text, sizeof text, "c%d:%d", c->id, i);
		cpay v = { c->id, i, text };
		int rc = relay_emit(c->s, data, &v);
		if (rc != 0 && c->rc == 0)
			c->rc = rc;
	}
	return NULL;
}

static void test_D4_stress_short_lived_emitters(void **state)
{
	(void)state;
	static const relay_class csnd_class = { .name = "csnd" };
	memset(g_churn_next, 0, sizeof g_churn_next);
	atomic_store(&g_churn_calls, 0);
	atomic_store(&g_churn_errors, 0);
	atomic_store(&g_churn_copies, 0);
	atomic_store(&g_churn_frees, 0);
	relay_thread *w = support_thread_start("churn");
	rcv *ctx = NULL;
	assert_int_equal(relay_object_new(&ctx, &anchor_class, NULL), 0);
	assert_int_equal(relay_object_move_to_thread(&ctx->base, w), 0);
	csnd *s = NULL;
	assert_int_equal(relay_object_new(&s, &csnd_class, NULL), 0);
	assert_int_equal(relay_signal_set_ops(s, data, &cpay_ops), 0);
	assert_int_equal(relay_connect_func_ex(s, data, &ctx->base, churn_fn, NULL, RELAY_AUTO, 0u, NULL), 0);

	int64_t deadline = support_now_ms() + p_ms();
	int next_id = 0, bad_rc = 0;
	while (support_now_ms() < deadline && next_id + CHURN_BATCH <= CHURN_MAX_IDS) {
		cthread c[CHURN_BATCH];
		pthread_t th[CHURN_BATCH];
		for (int i = 0; i < CHURN_BATCH; i++) {
			c[i] = (cthread){ s, next_id++, 0 };
			assert_int_equal(pthread_create(&th[i], NULL, churn_main, &c[i]), 0);
		}
		for (int i = 0; i < CHURN_BATCH; i++) {
			assert_int_equal(pthread_join(th[i], NULL), 0);
			if (c[i].rc != 0)
				bad_rc++;
		}
	}
	long expect = (long)next_id * CHURN_PER;
	assert_true(support_wait_count(&g_churn_calls, expect, STRESS_WAIT_MS));
	print_message("thread churn: %d threads, %ld events\n", next_id, expect);
	assert_int_equal(bad_rc, 0);
	assert_int_equal(relay_object_delete_later(&ctx->base), 0);
	support_thread_stop(w);
	assert_int_equal(relay_object_destroy(&s->base), 0);
	assert_int_equal(atomic_load(&g_churn_errors), 0);
	assert_int_equal(atomic_load(&g_churn_calls), expect);
	assert_int_equal(atomic_load(&g_churn_copies), expect);
	assert_int_equal(atomic_load(&g_churn_frees), expect);
}

/* ======================================================================
 * Wake-ups: ping-pong between two loops (a lost wake-up is a hang)
 * ====================================================================== */

typedef struct player {
	relay_object base;
	RELAY_SIGNAL(ball, int);
	struct player *peer;
	atomic_long *hits;
	atomic_int *stopped;
	long max;
	int64_t deadline;
	atomic_long *order_errors;
	int expect;
} player;

static const relay_class player_class = { .name = "player" };

static void player_on_ball(player *self, const int *n)
{
	long h = atomic_fetch_add(self->hits, 1) + 1;
	if (*n != self->expect)
		atomic_fetch_add(self->order_errors, 1);
	self->expect = *n + 2;
	if (h >= self->max || ((h & 127) == 0 && support_now_ms() > self->deadline)) {
		atomic_store(self->stopped, 1);
		return;
	}
	int next = *n + 1;
	(void)relay_emit(self, ball, &next);   /* to the peer, queued */
}

static void test_D4_stress_ping_pong_wakeups(void **state)
{
	(void)state;
	atomic_long hits = 0, order_errors = 0;
	atomic_int stopped = 0;
	relay_thread *a = support_thread_start("pp-a");
	relay_thread *b = support_thread_start("pp-b");
	player *pa = NULL, *pb = NULL;
	assert_int_equal(relay_object_new(&pa, &player_class, NULL), 0);
	assert_int_equal(relay_object_new(&pb, &player_class, NULL), 0);
	int64_t deadline = support_now_ms() + p_ms();
	player *ps[2] = { pa, pb };
	for (int i = 0; i < 2; i++) {
		ps[i]->peer = ps[1 - i];
		ps[i]->hits = &hits;
		ps[i]->stopped = &stopped;
		ps[i]->max = p_rounds();
		ps[i]->deadline = deadline;
		ps[i]->order_errors = &order_errors;
		ps[i]->expect = i;
	}
	assert_int_equal(relay_connect(pa, ball, pb, player_on_ball), 0);
	assert_int_equal(relay_connect(pb, ball, pa, player_on_ball), 0);
	assert_int_equal(relay_object_move_to_thread(&pa->base, a), 0);
	assert_int_equal(relay_object_move_to_thread(&pb->base, b), 0);
	/* Serve: from main, pb emits 0 to pa. */
	int zero = 0;
	assert_int_equal(relay_emit(pb, ball, &zero), 0);
	/* Liveness only: the game ends by itself (count or deadline). */
	assert_true(support_wait_flag(&stopped, 1, STRESS_WAIT_MS));
	print_message("ping-pong: %ld hits\n", atomic_load(&hits));
	assert_true(atomic_load(&hits) >= 1);
	assert_int_equal(atomic_load(&order_errors), 0);
	assert_int_equal(relay_object_delete_later(&pa->base), 0);
	assert_int_equal(relay_object_delete_later(&pb->base), 0);
	support_thread_stop(a);
	support_thread_stop(b);
}

/* ======================================================================
 * Many blocking invokes from many threads (wake-ups both ways, D1/D8)
 * ====================================================================== */

typedef struct bctx {
	relay_object base;
	relay_thread *home;
	atomic_long runs;
	atomic_long wrong_thread;
} bctx;

static const relay_class bctx_class = { .name = "bctx" };

typedef struct bcall {
	bctx *ctx;
	int value;
} bcall;

static int b_fn(void *data)
{
	bcall *c = data;
	if (relay_thread_current() != c->ctx->home)
		atomic_fetch_add(&c->ctx->wrong_thread, 1);
	atomic_fetch_add(&c->ctx->runs, 1);
	return c->value * 2 + 1;
}

typedef struct bthread {
	bctx **ctxs;
	int nctx;
	long calls;
	int64_t deadline;
	atomic_long *bad;
	atomic_long *done_calls;
	int id;
} bthread;

static void *bthread_main(void *arg)
{
	bthread *b = arg;
	for (long i = 0; i < b->calls; i++) {
		if ((i & 63) == 0 && support_now_ms() > b->deadline)
			break;
		bcall c = { b->ctxs[(i + b->id) % b->nctx], (int)(i & 0xffff) };
		int result = -1;
		int rc = relay_invoke_blocking(&c.ctx->base, b_fn, &c, &result);
		if (rc != 0 || result != c.value * 2 + 1)
			atomic_fetch_add(b->bad, 1);
		atomic_fetch_add(b->done_calls, 1);
	}
	return NULL;
}

/* From inside worker 0, blocking calls into worker 1 (one direction
 * only: no cycle). */
typedef struct relay_chain {
	bctx *target;
	long n;
	atomic_long *bad;
} relay_chain;

static void chain_fn(void *data)
{
	relay_chain *ch = data;
	for (long i = 0; i < ch->n; i++) {
		bcall c = { ch->target, (int)i };
		int result = -1;
		if (relay_invoke_blocking(&ch->target->base, b_fn, &c, &result) != 0 ||
		    result != (int)i * 2 + 1)
			atomic_fetch_add(ch->bad, 1);
	}
}

static void test_D1_stress_concurrent_blocking_invokes(void **state)
{
	(void)state;
	enum { W = 2 };
	atomic_long bad = 0, done_calls = 0;
	relay_thread *w[W];
	bctx *ctx[W];
	for (int i = 0; i < W; i++) {
		w[i] = support_thread_start(i ? "blk-1" : "blk-0");
		assert_int_equal(relay_object_new(&ctx[i], &bctx_class, NULL), 0);
		ctx[i]->home = w[i];
		assert_int_equal(relay_object_move_to_thread(&ctx[i]->base, w[i]), 0);
	}
	int nprod = (int)p_producers() + 1;
	if (nprod > MAX_PRODUCERS)
		nprod = MAX_PRODUCERS;
	int64_t deadline = support_now_ms() + p_ms();
	bthread bt[MAX_PRODUCERS];
	pthread_t th[MAX_PRODUCERS];
	for (int i = 0; i < nprod; i++) {
		bt[i] = (bthread){ ctx, W, p_calls(), deadline, &bad, &done_calls, i };
		assert_int_equal(pthread_create(&th[i], NULL, bthread_main, &bt[i]), 0);
	}
	/* Meanwhile worker 0 makes blocking calls into worker 1. */
	relay_chain ch = { ctx[1], 2000, &bad };
	assert_int_equal(relay_invoke(&ctx[0]->base, chain_fn, &ch, NULL), 0);
	for (int i = 0; i < nprod; i++)
		assert_int_equal(pthread_join(th[i], NULL), 0);
	/* The chain finishes too (liveness): a blocking no-op behind it. */
	bcall sync = { ctx[0], 1 };
	int result = 0;
	assert_int_equal(relay_invoke_blocking(&ctx[0]->base, b_fn, &sync, &result), 0);
	assert_int_equal(result, 3);
	print_message("blocking invokes: %ld from pthreads, runs %ld + %ld\n",
		      atomic_load(&done_calls), atomic_load(&ctx[0]->runs),
		      atomic_load(&ctx[1]->runs));
	assert_int_equal(atomic_load(&bad), 0);
	assert_int_equal(atomic_load(&ctx[0]->wrong_thread), 0);
	assert_int_equal(atomic_load(&ctx[1]->wrong_thread), 0);
	/* every call ran exactly once: pthread calls + chain + the sync */
	assert_int_equal(atomic_load(&ctx[0]->runs) + atomic_load(&ctx[1]->runs),
			 atomic_load(&done_calls) + 2000 + 1);
	for (int i = 0; i < W; i++) {
		assert_int_equal(relay_object_delete_later(&ctx[i]->base), 0);
		support_thread_stop(w[i]);
	}
}

int main(int argc, char **argv)
{
	support_set_args(argc, argv);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_D6_D7_stress_connect_cut_destroy),
		cmocka_unit_test(test_D6_stress_direct_disconnect_generations),
		cmocka_unit_test(test_D4_stress_short_lived_emitters),
		cmocka_unit_test(test_D4_stress_ping_pong_wakeups),
		cmocka_unit_test(test_D1_stress_concurrent_blocking_invokes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
