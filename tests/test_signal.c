/*
 * test_signal.c - signals and slots: connection types, payload copies,
 * order, disconnection, destruction, re-entrancy (promises D1-D9 of
 * DESIGN.md; test names carry the tag).
 *
 * Every wait is a predicate with a generous safety-net timeout; nothing
 * asserts on speed. Counters shared with other threads are atomics.
 * Counters that must survive a receiver's destruction live in a "tally"
 * outside the object.
 */
#include "support.h"
#include "internal.h"   /* RELAY__CACHE_SLOTS: the emit cache test */

/* Checks made in helper threads (never a cmocka assert there: it would
 * longjmp across threads); each test's teardown asserts none failed. */

/* ----------------------------------------------------------------------
 * Payload types and copy/free hooks
 * ---------------------------------------------------------------------- */

typedef struct pair {
	int who;
	int seq;
} pair;

typedef struct blob {
	int seq;
	char text[40];
	double d[8];
} blob;

typedef struct msg {
	char *s;   /* malloc'd, owned by the payload */
	int id;
} msg;

static atomic_long g_copies;     /* successful msg copies */
static atomic_long g_frees;      /* msg frees */
static atomic_int g_fail_copy;   /* the next this many msg_copy calls fail */

static int msg_copy(void *dst, const void *src)
{
	const msg *s = src;
	msg *d = dst;
	/* a countdown: that many next copies fail */
	int f = atomic_load(&g_fail_copy);
	while (f > 0 && !atomic_compare_exchange_weak(&g_fail_copy, &f, f - 1)) {
	}
	if (f > 0)
		return -ENOMEM;
	d->id = s->id;
	d->s = strdup(s->s);
	if (!d->s)
		return -ENOMEM;
	atomic_fetch_add(&g_copies, 1);
	return 0;
}

static void msg_free(void *p)
{
	msg *m = p;
	free(m->s);
	m->s = NULL;
	atomic_fetch_add(&g_frees, 1);
}

static const relay_payload_ops msg_ops = { msg_copy, msg_free };

/* ----------------------------------------------------------------------
 * Receiver / sender type
 * ---------------------------------------------------------------------- */

/* What a receiver's slots record; lives outside the object so that it can
 * be read after the object is destroyed. */
typedef struct tally {
	atomic_long calls;
	atomic_int last;
	_Atomic(relay_thread *) thread;      /* thread of the last call */
	_Atomic(relay_object *) sender;      /* relay_sender() in the last call */
	atomic_long order_errors;
	atomic_int expect;
	atomic_long finalized;
	atomic_long bad_payload;
	_Atomic(const char *) last_str;      /* msg.s pointer seen by the slot */
} tally;

typedef struct recv {
	relay_object base;
	RELAY_SIGNAL(sig, int);
	RELAY_SIGNAL(other, int);
	RELAY_SIGNAL(ping);
	RELAY_SIGNAL(pairsig, pair);
	RELAY_SIGNAL(blobsig, blob);
	RELAY_SIGNAL(msgsig, msg);
	tally *t;
	int id;
	void *user;
} recv;

static void recv_finalize(relay_object *o)
{
	recv *r = (recv *)o;
	if (r->t)
		atomic_fetch_add(&r->t->finalized, 1);
}

static const relay_class recv_class = { .name = "recv", .finalize = recv_finalize };

static recv *recv_new(tally *t, int id)
{
	recv *r = NULL;
	assert_int_equal(relay_object_new(&r, &recv_class, NULL), 0);
	assert_non_null(r);
	r->t = t;
	r->id = id;
	return r;
}

static void recv_destroy(recv *r)
{
	assert_int_equal(relay_object_destroy(&r->base), 0);
}

static void tally_note(tally *t)
{
	atomic_store(&t->thread, relay_thread_current());
	atomic_store(&t->sender, relay_sender());
	atomic_fetch_add(&t->calls, 1);
}

static void on_sig(recv *self, const int *v)
{
	atomic_store(&self->t->last, *v);
	tally_note(self->t);
}

/* Checks that values arrive as 0, 1, 2, ... */
static void on_sig_ordered(recv *self, const int *v)
{
	int want = atomic_load(&self->t->expect);
	if (*v != want)
		atomic_fetch_add(&self->t->order_errors, 1);
	atomic_store(&self->t->expect, *v + 1);
	atomic_store(&self->t->last, *v);
	atomic_fetch_add(&self->t->calls, 1);
}

static void on_ping(recv *self)
{
	tally_note(self->t);
}

static void on_blob(recv *self, const blob *b)
{
	bool ok = true;
	char want[40];
	snprintf(want, sizeof want, "blob-%d", b->seq);
	if (strcmp(b->text, want) != 0)
		ok = false;
	for (int i = 0; i < 8; i++)
		if (b->d[i] != b->seq * 10.0 + i)
			ok = false;
	if (!ok)
		atomic_fetch_add(&self->t->bad_payload, 1);
	atomic_store(&self->t->last, b->seq);
	tally_note(self->t);
}

static void on_msg(recv *self, const msg *m)
{
	char want[32];
	snprintf(want, sizeof want, "msg-%d", m->id);
	if (!m->s || strcmp(m->s, want) != 0)
		atomic_fetch_add(&self->t->bad_payload, 1);
	atomic_store(&self->t->last_str, m->s);
	atomic_store(&self->t->last, m->id);
	tally_note(self->t);
}

static msg msg_make(int id)
{
	msg m;
	char buf[32];
	snprintf(buf, sizeof buf, "msg-%d", id);
	m.s = strdup(buf);
	assert_non_null(m.s);
	m.id = id;
	return m;
}

static void reset_globals(void)
{
	atomic_store(&g_copies, 0);
	atomic_store(&g_frees, 0);
	atomic_store(&g_fail_copy, 0);
}

/* ----------------------------------------------------------------------
 * A gate: an object living in a worker whose slot holds the worker's
 * loop busy until opened, then optionally runs a callback in the worker.
 * Used to queue events to a thread that provably has not delivered them
 * yet, and as a FIFO sync point (gate_sync).
 * ---------------------------------------------------------------------- */

typedef struct gate {
	relay_object base;
	RELAY_SIGNAL(hold);
	atomic_int entered;
	atomic_int go;
	atomic_long passes;   /* completed runs of gate_on_hold */
	long closing;         /* passes once the closing run completes (main only) */
	void (*_Atomic then)(void *arg);
	void *_Atomic arg;
} gate;

static const relay_class gate_class = { .name = "gate" };

static void gate_on_hold(gate *g)
{
	atomic_store(&g->entered, 1);
	(void)support_wait_flag(&g->go, 1, SUPPORT_TIMEOUT_MS);
	void (*fn)(void *) = atomic_exchange(&g->then, NULL);
	if (fn)
		fn(atomic_load(&g->arg));
	atomic_fetch_add(&g->passes, 1);
}

static gate *gate_new(relay_thread *t)
{
	gate *g = NULL;
	assert_int_equal(relay_object_new(&g, &gate_class, NULL), 0);
	assert_int_equal(relay_connect(g, hold, g, gate_on_hold), 0);
	assert_int_equal(relay_object_move_to_thread(&g->base, t), 0);
	return g;
}

/* Make the gate's thread busy in the gate's slot (returns once it is). */
static void gate_close(gate *g, void (*then)(void *), void *arg)
{
	atomic_store(&g->go, 0);
	atomic_store(&g->entered, 0);
	atomic_store(&g->arg, arg);
	atomic_store(&g->then, then);
	g->closing = atomic_load(&g->passes) + 1;
	assert_int_equal(relay_emit(g, hold), 0);
	assert_true(support_wait_flag(&g->entered, 1, SUPPORT_TIMEOUT_MS));
}

/* Let the held slot go on (running its callback), and wait until it has
 * returned, so a later gate_sync counts only its own run. */
static void gate_open(gate *g)
{
	atomic_store(&g->go, 1);
	assert_true(support_wait_count(&g->passes, g->closing, SUPPORT_TIMEOUT_MS));
}

/* Wait until the gate's thread has handled everything the calling thread
 * posted to it before this call (FIFO from one thread to one thread).
 * The gate must not be held (open it first). */
static void gate_sync(gate *g)
{
	atomic_store(&g->go, 1);
	long n = atomic_load(&g->passes);
	assert_int_equal(relay_emit(g, hold), 0);
	assert_true(support_wait_count(&g->passes, n + 1, SUPPORT_TIMEOUT_MS));
}

static void gate_free(gate *g)
{
	assert_int_equal(relay_object_delete_later(&g->base), 0);
}

/* An object that lives in thread t (created here, moved there). */
static recv *recv_in(relay_thread *t, tally *tl, int id)
{
	recv *r = recv_new(tl, id);
	assert_int_equal(relay_object_move_to_thread(&r->base, t), 0);
	assert_ptr_equal(relay_object_thread(&r->base), t);
	return r;
}

/* ----------------------------------------------------------------------
 * Emitting from a plain pthread (adopted by relay)
 * ---------------------------------------------------------------------- */

typedef struct pemit {
	recv *s;
	int from, count;   /* emit sig with from .. from+count-1 */
	int rc;            /* first non-zero emit result */
	relay_thread *self;
	int who;           /* for pairsig */
	bool pairs;
} pemit;

static void *pemit_main(void *arg)
{
	pemit *p = arg;
	p->self = relay_thread_current();
	p->rc = 0;
	for (int i = 0; i < p->count; i++) {
		int rc;
		if (p->pairs) {
			pair v = { p->who, p->from + i };
			rc = relay_emit(p->s, pairsig, &v);
		} else {
			int v = p->from + i;
			rc = relay_emit(p->s, sig, &v);
		}
		if (rc != 0 && p->rc == 0)
			p->rc = rc;
	}
	return NULL;
}

static void pemit_run(pemit *p, pthread_t *th)
{
	assert_int_equal(pthread_create(th, NULL, pemit_main, p), 0);
}

/* ======================================================================
 * D1: connection types
 * ====================================================================== */

static void test_D1_auto_direct_same_thread(void **state)
{
	(void)state;
	tally t = { 0 };
	recv *s = recv_new(&t, 0), *r = recv_new(&t, 1);
	assert_int_equal(relay_connect(s, sig, r, on_sig), 0);
	int v = 5;
	assert_int_equal(relay_emit(s, sig, &v), 0);
	/* Direct: ran inside the emit, in this thread. */
	assert_int_equal(atomic_load(&t.calls), 1);
	assert_int_equal(atomic_load(&t.last), 5);
	assert_ptr_equal(atomic_load(&t.thread), relay_thread_main());
	recv_destroy(s);
	recv_destroy(r);
}

static void test_D1_auto_queued_to_other_thread(void **state)
{
	(void)state;
	tally t = { 0 };
	relay_thread *w = support_thread_start("d1-auto");
	recv *s = recv_new(&t, 0);
	recv *r = recv_in(w, &t, 1);
	assert_int_equal(relay_connect(s, sig, r, on_sig), 0);
	int v = 7;
	assert_int_equal(relay_emit(s, sig, &v), 0);
	assert_true(support_wait_count(&t.calls, 1, SUPPORT_TIMEOUT_MS));
	assert_int_equal(atomic_load(&t.last), 7);
	assert_ptr_equal(atomic_load(&t.thread), w);
	assert_int_equal(relay_object_delete_later(&r->base), 0);
	support_thread_stop(w);
	assert_int_equal(atomic_load(&t.finalized), 1);
	assert_int_equal(atomic_load(&t.calls), 1);
	recv_destroy(s);
}

/* Runs in the worker (gate callback): moves the receiver back to main. */
static void move_to_main_cb(void *arg)
{
	recv *r = arg;
	WCHECK(relay_object_move_to_thread(&r->base, relay_thread_main()) == 0);
}

static void test_D1_auto_follows_receiver_moved_after_connect(void **state)
{
	(void)state;
	tally t = { 0 };
	relay_thread *w = support_thread_start("d1-move");
	gate *g = gate_new(w);
	recv *s = recv_new(&t, 0), *r = recv_new(&t, 1);
	assert_int_equal(relay_connect(s, sig, r, on_sig), 0);

	int v = 1;
	assert_int_equal(relay_emit(s, sig, &v), 0);
	assert_int_equal(atomic_load(&t.calls), 1);                /* direct */
	assert_ptr_equal(atomic_load(&t.thread), relay_thread_main());

	assert_int_equal(relay_object_move_to_thread(&r->base, w), 0);
	v = 2;
	assert_int_equal(relay_emit(s, sig, &v), 0);
	assert_true(support_wait_count(&t.calls, 2, SUPPORT_TIMEOUT_MS));
	assert_ptr_equal(atomic_load(&t.thread), w);               /* queued */
	assert_int_equal(atomic_load(&t.last), 2);

	/* Move it back from its own thread; auto is direct again. */
	gate_close(g, move_to_main_cb, r);
	gate_open(g);
	gate_sync(g);
	assert_ptr_equal(relay_object_thread(&r->base), relay_thread_main());
	v = 3;
	assert_int_equal(relay_emit(s, sig, &v), 0);
	assert_int_equal(atomic_load(&t.calls), 3);                /* direct */
	assert_ptr_equal(atomic_load(&t.thread), relay_thread_main());

	gate_free(g);
	support_thread_stop(w);
	recv_destroy(s);
	recv_destroy(r);
}

static void test_D1_auto_ignores_sender_thread(void **state)
{
	(void)state;
	tally t = { 0 };
	relay_thread *w = support_thread_start("d1-sender");
	recv *s = recv_in(w, &t, 0);   /* sender lives in the worker */
	recv *r = recv_new(&t, 1);     /* receiver lives in main */
	assert_int_equal(relay_connect(s, sig, r, on_sig), 0);

	/* Emitted from main, receiver in main: direct, whatever s's thread. */
	int v = 11;
	assert_int_equal(relay_emit(s, sig, &v), 0);
	assert_int_equal(atomic_load(&t.calls), 1);
	assert_ptr_equal(atomic_load(&t.thread), relay_thread_main());

	/* Emitted from a foreign pthread: queued to main, runs only when main
	 * runs its loop. */
	pemit p = { .s = s, .from = 12, .count = 1 };
	pthread_t th;
	pemit_run(&p, &th);
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_int_equal(p.rc, 0);
	assert_int_equal(atomic_load(&t.calls), 1);
	assert_true(support_run_until_count(&t.calls, 2, SUPPORT_TIMEOUT_MS));
	assert_int_equal(atomic_load(&t.last), 12);
	assert_ptr_equal(atomic_load(&t.thread), relay_thread_main());

	assert_int_equal(relay_object_delete_later(&s->base), 0);
	support_thread_stop(w);
	recv_destroy(r);
}

/* Gate callback in the worker: emit to a receiver of that worker (direct)
 * and to one in main (queued). */
typedef struct d1w {
	recv *s;
	tally *tw;
	long during;   /* worker tally calls right after the emit */
} d1w;

static void d1_emit_in_worker(void *arg)
{
	d1w *x = arg;
	int v = 21;
	WCHECK(relay_emit(x->s, sig, &v) == 0);
	x->during = atomic_load(&x->tw->calls);
}

static void test_D1_auto_direct_in_worker_queued_to_main(void **state)
{
	(void)state;
	tally tw = { 0 }, tm = { 0 };
	relay_thread *w = support_thread_start("d1-w");
	gate *g = gate_new(w);
	recv *s = recv_new(&tw, 0);
	recv *rw = recv_in(w, &tw, 1);
	recv *rm = recv_new(&tm, 2);
	assert_int_equal(relay_connect(s, sig, rw, on_sig), 0);
	assert_int_equal(relay_connect(s, sig, rm, on_sig), 0);

	d1w x = { s, &tw, -1 };
	gate_close(g, d1_emit_in_worker, &x);
	gate_open(g);
	gate_sync(g);
	assert_int_equal(x.during, 1);                    /* direct in worker */
	assert_ptr_equal(atomic_load(&tw.thread), w);
	assert_int_equal(atomic_load(&tm.calls), 0);      /* queued to main */
	assert_true(support_run_until_count(&tm.calls, 1, SUPPORT_TIMEOUT_MS));
	assert_ptr_equal(atomic_load(&tm.thread), relay_thread_main());
	assert_int_equal(atomic_load(&tm.last), 21);

	assert_int_equal(relay_object_delete_later(&rw->base), 0);
	gate_free(g);
	support_thread_stop(w);
	recv_destroy(s);
	recv_destroy(rm);
}

/* A receiver that is the child of a moved parent moves with it, and auto
 * connections to the child follow (D1 with O1). */
static void test_D1_auto_follows_child_moved_with_parent(void **state)
{
	(void)state;
	tally t = { 0 };
	relay_thread *w = support_thread_start("d1-child");
	recv *s = recv_new(&t, 0);
	recv *parent = recv_new(&t, 1);
	recv *child = NULL;
	assert_int_equal(relay_object_new(&child, &recv_class, &parent->base), 0);
	child->t = &t;
	assert_int_equal(relay_connect(s, sig, child, on_sig), 0);
	int v = 1;
	assert_int_equal(relay_emit(s, sig, &v), 0);
	assert_int_equal(atomic_load(&t.calls), 1);                 /* direct */
	assert_int_equal(relay_object_move_to_thread(&parent->base, w), 0);
	assert_ptr_equal(relay_object_thread(&child->base), w);
	v = 2;
	assert_int_equal(relay_emit(s, sig, &v), 0);
	assert_true(support_wait_count(&t.calls, 2, SUPPORT_TIMEOUT_MS));
	assert_ptr_equal(atomic_load(&t.thread), w);                /* queued */
	assert_int_equal(relay_object_delete_later(&parent->base), 0);
	support_thread_stop(w);
	assert_int_equal(atomic_load(&t.finalized), 2);             /* parent + child */
	assert_int_equal(atomic_load(&t.calls), 2);
	recv_destroy(s);
}

/* Queued to a thread that has not started: kept, delivered once it runs. */
static void test_D1_queued_before_thread_starts_delivered_after(void **state)
{
	(void)state;
	tally t = { 0 };
	relay_thread *w = NULL;
	assert_int_equal(relay_thread_create("d1-late", NULL, &w), 0);
	recv *s = recv_new(&t, 0);
	recv *r = recv_in(w, &t, 1);
	assert_int_equal(relay_connect(s, sig, r, on_sig_ordered), 0);
	for (int i = 0; i < 3; i++)
		assert_int_equal(relay_emit(s, sig, &i), 0);
	assert_int_equal(atomic_load(&t.calls), 0);
	assert_int_equal(relay_thread_start(w), 0);
	assert_true(support_wait_count(&t.calls, 3, SUPPORT_TIMEOUT_MS));
	assert_int_equal(atomic_load(&t.order_errors), 0);
	assert_int_equal(relay_object_delete_later(&r->base), 0);
	support_thread_stop(w);
	recv_destroy(s);
}

static void test_D1_forced_direct_runs_in_emitter(void **state)
{
	(void)state;
	tally t = { 0 };
	relay_thread *w = support_thread_start("d1-direct");
	recv *s = recv_new(&t, 0);
	recv *r = recv_in(w, &t, 1);
	assert_int_equal(relay_connect_ex(s, sig, r, on_sig, RELAY_DIRECT, 0u, NULL), 0);
	int v = 3;
	assert_int_equal(relay_emit(s, sig, &v), 0);
	assert_int_equal(atomic_load(&t.calls), 1);
	assert_ptr_equal(atomic_load(&t.thread), relay_thread_main());
	assert_int_equal(relay_object_delete_later(&r->base), 0);
	support_thread_stop(w);
	assert_int_equal(atomic_load(&t.calls), 1);
	recv_destroy(s);
}

static void test_D1_forced_queued_same_thread(void **state)
{
	(void)state;
	tally t = { 0 };
	recv *s = recv_new(&t, 0), *r = recv_new(&t, 1);
	assert_int_equal(relay_connect_ex(s, sig, r, on_sig, RELAY_QUEUED, 0u, NULL), 0);
	int v = 4;
	assert_int_equal(relay_emit(s, sig, &v), 0);
	assert_int_equal(atomic_load(&t.calls), 0);        /* not inside emit */
	assert_true(support_run_until_count(&t.calls, 1, SUPPORT_TIMEOUT_MS));
	assert_int_equal(atomic_load(&t.last), 4);
	assert_ptr_equal(atomic_load(&t.thread), relay_thread_main());
	recv_destroy(s);
	recv_destroy(r);
}

static void test_D1_forced_blocking_waits_for_slot(void **state)
{
	(void)state;
	tally t = { 0 };
	relay_thread *w = support_thread_start("d1-block");
	recv *s = recv_new(&t, 0);
	recv *r = recv_in(w, &t, 1);
	assert_int_equal(relay_connect_ex(s, sig, r, on_sig, RELAY_BLOCKING, 0u, NULL), 0);
	for (int i = 1; i <= 3; i++) {
		int v = 100 + i;
		assert_int_equal(relay_emit(s, sig, &v), 0);
		/* The slot has run when emit returns. */
		assert_int_equal(atomic_load(&t.calls), i);
		assert_int_equal(atomic_load(&t.last), 100 + i);
		assert_ptr_equal(atomic_load(&t.thread), w);
		assert_ptr_equal(atomic_load(&t.sender), &s->base);
	}
	assert_int_equal(relay_object_delete_later(&r->base), 0);
	support_thread_stop(w);
	recv_destroy(s);
}

static void test_D1_unique_refuses_duplicate(void **state)
{
	(void)state;
	tally t = { 0 };
	recv *s = recv_new(&t, 0), *r = recv_new(&t, 1);
	relay_connection c1 = 0, c2 = 0;
	assert_int_equal(relay_connect_ex(s, sig, r, on_sig, RELAY_AUTO, RELAY_UNIQUE, &c1), 0);
	assert_true(c1 != 0);
	assert_int_equal(relay_connect_ex(s, sig, r, on_sig, RELAY_AUTO, RELAY_UNIQUE, &c2), -EEXIST);
	/* A plain duplicate is also refused by a later unique connect. */
	assert_int_equal(relay_connect_ex(s, sig, r, on_sig, RELAY_DIRECT, RELAY_UNIQUE, NULL), -EEXIST);
	int v = 1;
	assert_int_equal(relay_emit(s, sig, &v), 0);
	assert_int_equal(atomic_load(&t.calls), 1);

	/* Another slot, or another signal, is not a duplicate. */
	assert_int_equal(relay_connect_ex(s, sig, r, on_sig_ordered, RELAY_AUTO, RELAY_UNIQUE, NULL), 0);
	assert_int_equal(relay_connect_ex(s, other, r, on_sig, RELAY_AUTO, RELAY_UNIQUE, NULL), 0);
	/* Without RELAY_UNIQUE duplicates are allowed and each is called. */
	assert_int_equal(relay_connect(s, ping, r, on_ping), 0);
	assert_int_equal(relay_connect(s, ping, r, on_ping), 0);
	atomic_store(&t.calls, 0);
	assert_int_equal(relay_emit(s, ping), 0);
	assert_int_equal(atomic_load(&t.calls), 2);

	/* Once the unique one is disconnected, it may be made again. */
	assert_int_equal(relay_disconnect(c1), 0);
	assert_int_equal(relay_connect_ex(s, sig, r, on_sig, RELAY_AUTO, RELAY_UNIQUE, NULL), 0);
	recv_destroy(s);
	recv_destroy(r);
}

static void test_D1_single_shot_fires_once(void **state)
{
	(void)state;
	tally t = { 0 };
	recv *s = recv_new(&t, 0), *r = recv_new(&t, 1);
	relay_connection c = 0;
	assert_int_equal(relay_connect_ex(s, sig, r, on_sig, RELAY_AUTO, RELAY_SINGLE_SHOT, &c), 0);
	assert_true(c != 0);
	int v = 1;
	assert_int_equal(relay_emit(s, sig, &v), 0);
	v = 2;
	assert_int_equal(relay_emit(s, sig, &v), 0);
	assert_int_equal(atomic_load(&t.calls), 1);
	assert_int_equal(atomic_load(&t.last), 1);
	assert_int_equal(relay_disconnect(c), -ENOENT);
	recv_destroy(s);
	recv_destroy(r);
}

static void test_D1_single_shot_queued_fires_once(void **state)
{
	(void)state;
	tally t = { 0 };
	relay_thread *w = support_thread_start("d1-ss");
	gate *g = gate_new(w);
	recv *s = recv_new(&t, 0);
	recv *r = recv_in(w, &t, 1);
	relay_connection c = 0;
	assert_int_equal(relay_connect_ex(s, sig, r, on_sig, RELAY_QUEUED, RELAY_SINGLE_SHOT, &c), 0);
	gate_close(g, NULL, NULL);
	for (int i = 0; i < 5; i++)
		assert_int_equal(relay_emit(s, sig, &i), 0);
	/* Taken by the first emit: already gone, before any delivery. */
	assert_int_equal(relay_disconnect(c), -ENOENT);
	gate_open(g);
	gate_sync(g);
	assert_int_equal(atomic_load(&t.calls), 1);
	assert_int_equal(atomic_load(&t.last), 0);
	assert_int_equal(relay_object_delete_later(&r->base), 0);
	gate_free(g);
	support_thread_stop(w);
	recv_destroy(s);
}

/* The single-shot connection is taken before its slot runs: an emit from
 * inside that slot does not call it again. */
static void on_sig_reemit(recv *self, const int *v)
{
	on_sig(self, v);
	recv *s = self->user;
	int nv = *v + 1;
	if (*v < 3)
		assert_int_equal(relay_emit(s, sig, &nv), 0);
}

static void test_D1_single_shot_taken_before_slot_runs(void **state)
{
	(void)state;
	tally t = { 0 };
	recv *s = recv_new(&t, 0), *r = recv_new(&t, 1);
	r->user = s;
	assert_int_equal(relay_connect_ex(s, sig, r, on_sig_reemit, RELAY_DIRECT, RELAY_SINGLE_SHOT, NULL), 0);
	int v = 0;
	assert_int_equal(relay_emit(s, sig, &v), 0);
	assert_int_equal(atomic_load(&t.calls), 1);
	recv_destroy(s);
	recv_destroy(r);
}

/* Several threads race to emit a single-shot direct connection: exactly
 * one of them takes it. */
static atomic_long g_ss_calls;
static void ss_fn(void *data, const int *v)
{
	(void)data;
	(void)v;
	atomic_fetch_add(&g_ss_calls, 1);
}

typedef struct ss_race {
	recv *s;
	atomic_int *go;
} ss_race;

static void *ss_race_main(void *arg)
{
	ss_race *x = arg;
	while (!atomic_load(x->go)) {
	}
	for (int i = 0; i < 100; i++)
		(void)relay_emit(x->s, sig, &i);
	return NULL;
}

static void test_D1_single_shot_concurrent_emitters_once(void **state)
{
	(void)state;
	tally t = { 0 };
	recv *s = recv_new(&t, 0);
	enum { N = 4, ROUNDS = 50 };
	for (int round = 0; round < ROUNDS; round++) {
		atomic_store(&g_ss_calls, 0);
		relay_connection c = 0;
		assert_int_equal(relay_connect_func_ex(s, sig, NULL, ss_fn, NULL, RELAY_DIRECT,
						       RELAY_SINGLE_SHOT, &c), 0);
		atomic_int go = 0;
		ss_race x = { s, &go };
		pthread_t th[N];
		for (int i = 0; i < N; i++)
			assert_int_equal(pthread_create(&th[i], NULL, ss_race_main, &x), 0);
		atomic_store(&go, 1);
		for (int i = 0; i < N; i++)
			assert_int_equal(pthread_join(th[i], NULL), 0);
		assert_int_equal(atomic_load(&g_ss_calls), 1);
		assert_int_equal(relay_disconnect(c), -ENOENT);
	}
	recv_destroy(s);
}

/* Connecting single-shot connections while other threads emit: each is
 * taken exactly once, and relay_connect must not touch the connection
 * after publishing it (another thread may take, run and free it at once;
 * ASan/TSan builds see a use-after-free if it does). */
static atomic_long g_ssc_calls;
static void ssc_fn(void *data, const int *v)
{
	(void)data;
	(void)v;
	atomic_fetch_add(&g_ssc_calls, 1);
}

typedef struct ssc_emitter {
	recv *s;
	atomic_int *stop;
} ssc_emitter;

static void *ssc_emitter_main(void *arg)
{
	ssc_emitter *e = arg;
	int i = 0;
	while (!atomic_load(e->stop)) {
		(void)relay_emit(e->s, sig, &i);
		i++;
	}
	return NULL;
}

static void test_D1_single_shot_connect_while_emitting(void **state)
{
	(void)state;
	enum { N = 2 };
	long rounds = support_param("SIGNAL_RACE_ROUNDS", 20000);
	tally t = { 0 };
	recv *s = recv_new(&t, 0);
	atomic_store(&g_ssc_calls, 0);
	atomic_int stop = 0;
	ssc_emitter e = { s, &stop };
	pthread_t th[N];
	for (int i = 0; i < N; i++)
		assert_int_equal(pthread_create(&th[i], NULL, ssc_emitter_main, &e), 0);
	long made = 0;
	for (long r = 0; r < rounds; r++) {
		relay_connection c = 0;
		assert_int_equal(relay_connect_func_ex(s, sig, NULL, ssc_fn, NULL, RELAY_DIRECT,
						       RELAY_SINGLE_SHOT, &c), 0);
		assert_true(c != 0);
		made++;
	}
	atomic_store(&stop, 1);
	for (int i = 0; i < N; i++)
		assert_int_equal(pthread_join(th[i], NULL), 0);
	int v = 0;
	assert_int_equal(relay_emit(s, sig, &v), 0);   /* takes any left */
	assert_int_equal(atomic_load(&g_ssc_calls), made);
	assert_int_equal(relay_emit(s, sig, &v), 0);
	assert_int_equal(atomic_load(&g_ssc_calls), made);
	recv_destroy(s);
}

static void test_D1_bad_connection_type_einval(void **state)
{
	(void)state;
	tally t = { 0 };
	recv *s = recv_new(&t, 0), *r = recv_new(&t, 1);
	assert_int_equal(relay_connect_ex(s, sig, r, on_sig, (relay_connection_type)99, 0u, NULL), -EINVAL);
	int v = 1;
	assert_int_equal(relay_emit(s, sig, &v), 0);
	assert_int_equal(atomic_load(&t.calls), 0);
	recv_destroy(s);
	recv_destroy(r);
}

/* ======================================================================
 * D8 (blocking emit refused, never hangs)
 * ====================================================================== */

static void test_D8_blocking_emit_own_thread_refused(void **state)
{
	(void)state;
	tally t = { 0 };
	support_diag d;
	recv *s = recv_new(&t, 0), *r = recv_new(&t, 1);
	assert_int_equal(relay_connect_ex(s, sig, r, on_sig, RELAY_BLOCKING, 0u, NULL), 0);
	support_diag_begin(&d);
	int v = 1;
	assert_int_equal(relay_emit(s, sig, &v), RELAY_EDEADLOCK);
	assert_true(support_diag_count(&d) >= 1);
	assert_int_equal(support_diag_last_code(&d), RELAY_EDEADLOCK);
	support_diag_end(&d);
	support_drain(10);
	assert_int_equal(atomic_load(&t.calls), 0);
	recv_destroy(s);
	recv_destroy(r);
}

static void test_D8_blocking_emit_thread_not_started_refused(void **state)
{
	(void)state;
	tally t = { 0 };
	relay_thread *w = NULL;
	assert_int_equal(relay_thread_create("d8-ns", NULL, &w), 0);
	recv *s = recv_new(&t, 0);
	recv *r = recv_in(w, &t, 1);
	assert_int_equal(relay_connect_ex(s, sig, r, on_sig, RELAY_BLOCKING, 0u, NULL), 0);
	reset_globals();
	assert_int_equal(relay_signal_set_ops(s, msgsig, &msg_ops), 0);
	assert_int_equal(relay_connect_ex(s, msgsig, r, on_msg, RELAY_BLOCKING, 0u, NULL), 0);
	int v = 1;
	assert_int_equal(relay_emit(s, sig, &v), RELAY_ENOTRUNNING);
	msg m = msg_make(1);
	assert_int_equal(relay_emit(s, msgsig, &m), RELAY_ENOTRUNNING);
	free(m.s);
	assert_int_equal(atomic_load(&g_frees), atomic_load(&g_copies));
	/* Start it now: the refused emit left nothing behind. */
	assert_int_equal(relay_thread_start(w), 0);
	assert_int_equal(relay_object_delete_later(&r->base), 0);
	support_thread_stop(w);
	assert_int_equal(atomic_load(&t.finalized), 1);
	assert_int_equal(atomic_load(&t.calls), 0);
	recv_destroy(s);
}

static void test_D8_blocking_emit_thread_finished_refused(void **state)
{
	(void)state;
	tally t = { 0 };
	relay_thread *w = support_thread_start("d8-fin");
	assert_int_equal(relay_thread_stop(w, SUPPORT_TIMEOUT_MS), 0);
	assert_true(relay_thread_is_finished(w));
	recv *s = recv_new(&t, 0);
	recv *r = recv_in(w, &t, 1);
	assert_int_equal(relay_connect_ex(s, sig, r, on_sig, RELAY_BLOCKING, 0u, NULL), 0);
	int v = 1;
	assert_int_equal(relay_emit(s, sig, &v), RELAY_ENOTRUNNING);
	assert_int_equal(relay_thread_start(w), 0);      /* restartable */
	assert_int_equal(relay_object_delete_later(&r->base), 0);
	support_thread_stop(w);
	assert_int_equal(atomic_load(&t.finalized), 1);
	assert_int_equal(atomic_load(&t.calls), 0);
	recv_destroy(s);
}

/* One blocking connection is refused: the emit returns its error, and
 * the other connections are still called ("calls or queues every
 * connection"). */
static void test_D8_blocking_error_other_connections_still_called(void **state)
{
	(void)state;
	tally tm = { 0 }, tw = { 0 }, td = { 0 };
	relay_thread *w = support_thread_start("d8-mix");
	recv *s = recv_new(&tm, 0);
	recv *rm = recv_new(&tm, 1);
	recv *rw = recv_in(w, &tw, 2);
	recv *rd = recv_new(&td, 3);
	assert_int_equal(relay_connect_ex(s, sig, rm, on_sig, RELAY_BLOCKING, 0u, NULL), 0);
	assert_int_equal(relay_connect_ex(s, sig, rw, on_sig, RELAY_BLOCKING, 0u, NULL), 0);
	assert_int_equal(relay_connect(s, sig, rd, on_sig), 0);
	int v = 3;
	assert_int_equal(relay_emit(s, sig, &v), RELAY_EDEADLOCK);
	assert_int_equal(atomic_load(&tw.calls), 1);    /* blocking: already ran */
	assert_int_equal(atomic_load(&td.calls), 1);    /* direct */
	support_drain(10);
	assert_int_equal(atomic_load(&tm.calls), 0);
	assert_int_equal(relay_object_delete_later(&rw->base), 0);
	support_thread_stop(w);
	recv_destroy(s);
	recv_destroy(rm);
	recv_destroy(rd);
}

/* ======================================================================
 * D2: plain functions, with and without a context
 * ====================================================================== */

typedef struct fnrec {
	atomic_long calls;
	atomic_int last;
	_Atomic(relay_thread *) thread;
	_Atomic(relay_object *) sender;
} fnrec;

static void fn_rec(void *data, const int *v)
{
	fnrec *f = data;
	atomic_store(&f->last, *v);
	atomic_store(&f->thread, relay_thread_current());
	atomic_store(&f->sender, relay_sender());
	atomic_fetch_add(&f->calls, 1);
}

static void test_D2_func_without_context_runs_in_emitter(void **state)
{
	(void)state;
	tally t = { 0 };
	fnrec f = { 0 };
	recv *s = recv_new(&t, 0);
	assert_int_equal(relay_connect_func(s, sig, fn_rec, &f), 0);
	int v = 9;
	assert_int_equal(relay_emit(s, sig, &v), 0);
	assert_int_equal(atomic_load(&f.calls), 1);           /* inside emit */
	assert_ptr_equal(atomic_load(&f.thread), relay_thread_main());
	assert_ptr_equal(atomic_load(&f.sender), &s->base);

	/* From a foreign thread: runs there, in the emit. */
	pemit p = { .s = s, .from = 10, .count = 1 };
	pthread_t th;
	pemit_run(&p, &th);
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_int_equal(p.rc, 0);
	assert_int_equal(atomic_load(&f.calls), 2);
	assert_int_equal(atomic_load(&f.last), 10);
	assert_ptr_equal(atomic_load(&f.thread), p.self);

	/* No context: only direct is possible. */
	assert_int_equal(relay_connect_func_ex(s, sig, NULL, fn_rec, &f, RELAY_QUEUED, 0u, NULL), -EINVAL);
	assert_int_equal(relay_connect_func_ex(s, sig, NULL, fn_rec, &f, RELAY_BLOCKING, 0u, NULL), -EINVAL);
	assert_int_equal(relay_connect_func_ex(s, sig, NULL, fn_rec, &f, RELAY_DIRECT, 0u, NULL), 0);
	recv_destroy(s);
}

static void test_D2_func_with_context_runs_in_context_thread(void **state)
{
	(void)state;
	tally t = { 0 };
	fnrec f = { 0 };
	relay_thread *w = support_thread_start("d2-ctx");
	recv *s = recv_new(&t, 0);
	recv *ctx = recv_in(w, &t, 1);
	assert_int_equal(relay_connect_func_ex(s, sig, ctx, fn_rec, &f, RELAY_AUTO, 0u, NULL), 0);
	int v = 33;
	assert_int_equal(relay_emit(s, sig, &v), 0);
	assert_true(support_wait_count(&f.calls, 1, SUPPORT_TIMEOUT_MS));
	assert_ptr_equal(atomic_load(&f.thread), w);
	assert_int_equal(atomic_load(&f.last), 33);
	assert_ptr_equal(atomic_load(&f.sender), &s->base);

	/* Context in main, queued: runs on main's loop, not in the emit. */
	recv *ctxm = recv_new(&t, 2);
	fnrec fm = { 0 };
	assert_int_equal(relay_connect_func_ex(s, other, ctxm, fn_rec, &fm, RELAY_QUEUED, 0u, NULL), 0);
	assert_int_equal(relay_emit(s, other, &v), 0);
	assert_int_equal(atomic_load(&fm.calls), 0);
	assert_true(support_run_until_count(&fm.calls, 1, SUPPORT_TIMEOUT_MS));
	assert_ptr_equal(atomic_load(&fm.thread), relay_thread_main());

	assert_int_equal(relay_object_delete_later(&ctx->base), 0);
	support_thread_stop(w);
	recv_destroy(ctxm);
	recv_destroy(s);
}

/* The context moves: the function follows it to its new thread. */
static void test_D2_func_follows_moved_context(void **state)
{
	(void)state;
	tally t = { 0 };
	fnrec f = { 0 };
	relay_thread *w = support_thread_start("d2-move");
	recv *s = recv_new(&t, 0);
	recv *ctx = recv_new(&t, 1);
	assert_int_equal(relay_connect_func_ex(s, sig, ctx, fn_rec, &f, RELAY_AUTO, 0u, NULL), 0);
	int v = 1;
	assert_int_equal(relay_emit(s, sig, &v), 0);
	assert_int_equal(atomic_load(&f.calls), 1);
	assert_ptr_equal(atomic_load(&f.thread), relay_thread_main());
	assert_int_equal(relay_object_move_to_thread(&ctx->base, w), 0);
	assert_int_equal(relay_emit(s, sig, &v), 0);
	assert_true(support_wait_count(&f.calls, 2, SUPPORT_TIMEOUT_MS));
	assert_ptr_equal(atomic_load(&f.thread), w);
	assert_int_equal(relay_object_delete_later(&ctx->base), 0);
	support_thread_stop(w);
	recv_destroy(s);
}

static void test_D2_func_connection_dies_with_context(void **state)
{
	(void)state;
	tally t = { 0 };
	fnrec f = { 0 };
	recv *s = recv_new(&t, 0);
	recv *ctx = recv_new(&t, 1);
	relay_connection c = 0;
	assert_int_equal(relay_connect_func_ex(s, sig, ctx, fn_rec, &f, RELAY_AUTO, 0u, &c), 0);
	int v = 1;
	assert_int_equal(relay_emit(s, sig, &v), 0);
	assert_int_equal(atomic_load(&f.calls), 1);
	recv_destroy(ctx);
	assert_int_equal(relay_emit(s, sig, &v), 0);
	support_drain(10);
	assert_int_equal(atomic_load(&f.calls), 1);
	assert_int_equal(relay_disconnect(c), -ENOENT);
	recv_destroy(s);
}

/* The context lives in a worker and is destroyed there while events for
 * the function are queued: they are dropped. */
static void destroy_cb(void *arg)
{
	WCHECK(relay_object_destroy((relay_object *)arg) == 0);
}

static void test_D2_func_context_destroyed_drops_queued(void **state)
{
	(void)state;
	tally t = { 0 };
	fnrec f = { 0 };
	relay_thread *w = support_thread_start("d2-die");
	gate *g = gate_new(w);
	recv *s = recv_new(&t, 0);
	recv *ctx = recv_in(w, &t, 1);
	assert_int_equal(relay_connect_func_ex(s, sig, ctx, fn_rec, &f, RELAY_AUTO, 0u, NULL), 0);
	gate_close(g, destroy_cb, &ctx->base);
	int v = 1;
	assert_int_equal(relay_emit(s, sig, &v), 0);
	gate_open(g);
	gate_sync(g);
	assert_int_equal(atomic_load(&t.finalized), 1);
	assert_int_equal(atomic_load(&f.calls), 0);
	assert_int_equal(relay_emit(s, sig, &v), 0);
	gate_sync(g);
	assert_int_equal(atomic_load(&f.calls), 0);
	gate_free(g);
	support_thread_stop(w);
	recv_destroy(s);
}

/* ======================================================================
 * D3: payloads copied by value; copy/free hooks
 * ====================================================================== */

static void test_D3_payload_copied_at_emit(void **state)
{
	(void)state;
	tally t = { 0 };
	recv *s = recv_new(&t, 0), *r = recv_new(&t, 1);
	assert_int_equal(relay_connect_ex(s, sig, r, on_sig, RELAY_QUEUED, 0u, NULL), 0);
	int v = 1;
	assert_int_equal(relay_emit(s, sig, &v), 0);
	v = 2;
	assert_true(support_run_until_count(&t.calls, 1, SUPPORT_TIMEOUT_MS));
	assert_int_equal(atomic_load(&t.last), 1);
	recv_destroy(s);
	recv_destroy(r);
}

static blob blob_make(int seq)
{
	blob b;
	memset(&b, 0, sizeof b);
	b.seq = seq;
	snprintf(b.text, sizeof b.text, "blob-%d", seq);
	for (int i = 0; i < 8; i++)
		b.d[i] = seq * 10.0 + i;
	return b;
}

static void test_D3_struct_payload_copied_cross_thread(void **state)
{
	(void)state;
	tally t = { 0 };
	relay_thread *w = support_thread_start("d3-blob");
	gate *g = gate_new(w);
	recv *s = recv_new(&t, 0);
	recv *r = recv_in(w, &t, 1);
	assert_int_equal(relay_connect(s, blobsig, r, on_blob), 0);
	gate_close(g, NULL, NULL);
	blob b;
	for (int i = 0; i < 10; i++) {
		b = blob_make(i);
		assert_int_equal(relay_emit(s, blobsig, &b), 0);
		memset(&b, 0xAB, sizeof b);     /* scribble over the source */
	}
	gate_open(g);
	gate_sync(g);
	assert_int_equal(atomic_load(&t.calls), 10);
	assert_int_equal(atomic_load(&t.bad_payload), 0);
	assert_int_equal(atomic_load(&t.last), 9);
	assert_int_equal(relay_object_delete_later(&r->base), 0);
	gate_free(g);
	support_thread_stop(w);
	recv_destroy(s);
}

/* A slot may ignore the payload: queued and direct both work. */
static void on_sig_ignoring(recv *self)
{
	tally_note(self->t);
}

static void test_D3_slot_ignoring_payload(void **state)
{
	(void)state;
	tally t = { 0 };
	relay_thread *w = support_thread_start("d3-ign");
	recv *s = recv_new(&t, 0);
	recv *r = recv_new(&t, 1);
	recv *rw = recv_in(w, &t, 2);
	assert_int_equal(relay_connect(s, blobsig, r, on_sig_ignoring), 0);
	assert_int_equal(relay_connect(s, blobsig, rw, on_sig_ignoring), 0);
	assert_int_equal(relay_connect_ex(s, blobsig, r, on_sig_ignoring, RELAY_QUEUED, 0u, NULL), 0);
	blob b = blob_make(3);
	assert_int_equal(relay_emit(s, blobsig, &b), 0);
	assert_int_equal(atomic_load(&t.calls) >= 1, 1);
	assert_true(support_run_until_count(&t.calls, 3, SUPPORT_TIMEOUT_MS));
	assert_int_equal(relay_object_delete_later(&rw->base), 0);
	support_thread_stop(w);
	assert_int_equal(atomic_load(&t.calls), 3);
	recv_destroy(s);
	recv_destroy(r);
}

static void test_D3_copy_hooks_delivered_each_copy_freed_once(void **state)
{
	(void)state;
	reset_globals();
	tally t = { 0 };
	relay_thread *w = support_thread_start("d3-ops");
	gate *g = gate_new(w);
	recv *s = recv_new(&t, 0);
	recv *r1 = recv_new(&t, 1);
	recv *r2 = recv_in(w, &t, 2);
	assert_int_equal(relay_signal_set_ops(s, msgsig, &msg_ops), 0);
	assert_int_equal(relay_connect_ex(s, msgsig, r1, on_msg, RELAY_QUEUED, 0u, NULL), 0);
	assert_int_equal(relay_connect(s, msgsig, r2, on_msg), 0);

	for (int i = 0; i < 20; i++) {
		msg m = msg_make(i);
		assert_int_equal(relay_emit(s, msgsig, &m), 0);
		free(m.s);                 /* the emitter's own copy is its own */
	}
	gate_sync(g);
	assert_true(support_run_until_count(&t.calls, 40, SUPPORT_TIMEOUT_MS));
	assert_int_equal(atomic_load(&t.bad_payload), 0);
	assert_true(atomic_load(&g_copies) >= 1);
	assert_int_equal(atomic_load(&g_frees), atomic_load(&g_copies));

	assert_int_equal(relay_object_delete_later(&r2->base), 0);
	gate_free(g);
	support_thread_stop(w);
	recv_destroy(r1);
	recv_destroy(s);
	assert_int_equal(atomic_load(&g_frees), atomic_load(&g_copies));
}

static void test_D3_direct_passes_emitter_value_no_copy(void **state)
{
	(void)state;
	reset_globals();
	tally t = { 0 };
	recv *s = recv_new(&t, 0), *r = recv_new(&t, 1);
	assert_int_equal(relay_signal_set_ops(s, msgsig, &msg_ops), 0);
	assert_int_equal(relay_connect_ex(s, msgsig, r, on_msg, RELAY_DIRECT, 0u, NULL), 0);
	msg m = msg_make(5);
	assert_int_equal(relay_emit(s, msgsig, &m), 0);
	assert_int_equal(atomic_load(&t.calls), 1);
	assert_ptr_equal(atomic_load(&t.last_str), m.s);
	assert_int_equal(atomic_load(&g_copies), 0);
	assert_int_equal(atomic_load(&g_frees), 0);
	free(m.s);
	recv_destroy(s);
	recv_destroy(r);
}

static void test_D3_copy_hooks_queued_slot_sees_deep_copy(void **state)
{
	(void)state;
	reset_globals();
	tally t = { 0 };
	recv *s = recv_new(&t, 0), *r = recv_new(&t, 1);
	assert_int_equal(relay_signal_set_ops(s, msgsig, &msg_ops), 0);
	assert_int_equal(relay_connect_ex(s, msgsig, r, on_msg, RELAY_QUEUED, 0u, NULL), 0);
	msg m = msg_make(6);
	assert_int_equal(relay_emit(s, msgsig, &m), 0);
	m.s[0] = 'X';                       /* change the source after emit */
	assert_true(support_run_until_count(&t.calls, 1, SUPPORT_TIMEOUT_MS));
	assert_int_equal(atomic_load(&t.bad_payload), 0);   /* saw "msg-6" */
	assert_ptr_not_equal(atomic_load(&t.last_str), m.s);
	assert_int_equal(atomic_load(&g_copies), 1);
	assert_int_equal(atomic_load(&g_frees), 1);
	free(m.s);
	recv_destroy(s);
	recv_destroy(r);
}

static void test_D3_copy_hooks_dropped_each_copy_freed_once(void **state)
{
	(void)state;
	reset_globals();
	tally t = { 0 };
	recv *s = recv_new(&t, 0);
	recv *r1 = recv_new(&t, 1), *r2 = recv_new(&t, 2);
	relay_connection c1 = 0;
	assert_int_equal(relay_signal_set_ops(s, msgsig, &msg_ops), 0);
	assert_int_equal(relay_connect_ex(s, msgsig, r1, on_msg, RELAY_QUEUED, 0u, &c1), 0);
	assert_int_equal(relay_connect_ex(s, msgsig, r2, on_msg, RELAY_QUEUED, 0u, NULL), 0);
	for (int i = 0; i < 5; i++) {
		msg m = msg_make(i);
		assert_int_equal(relay_emit(s, msgsig, &m), 0);
		free(m.s);
	}
	long copies = atomic_load(&g_copies);
	assert_true(copies >= 1);
	assert_int_equal(atomic_load(&g_frees), 0);    /* nothing delivered yet */
	assert_int_equal(relay_disconnect(c1), 0);      /* r1's: dropped */
	recv_destroy(r2);                                /* r2's: dropped */
	support_drain(10);
	assert_int_equal(atomic_load(&t.calls), 0);
	assert_int_equal(atomic_load(&g_frees), atomic_load(&g_copies));
	recv_destroy(r1);
	recv_destroy(s);
	assert_int_equal(atomic_load(&g_frees), atomic_load(&g_copies));
}

/* Events still queued to a thread whose loop ends are freed too. */
static void test_D3_copy_hooks_thread_ends_with_queued(void **state)
{
	(void)state;
	reset_globals();
	tally t = { 0 };
	relay_thread *w = support_thread_start("d3-end");
	gate *g = gate_new(w);
	recv *s = recv_new(&t, 0);
	recv *r = recv_in(w, &t, 1);
	assert_int_equal(relay_signal_set_ops(s, msgsig, &msg_ops), 0);
	assert_int_equal(relay_connect(s, msgsig, r, on_msg), 0);
	gate_close(g, NULL, NULL);
	assert_int_equal(relay_thread_quit(w), 0);   /* ends after this pass */
	for (int i = 0; i < 5; i++) {
		msg m = msg_make(i);
		assert_int_equal(relay_emit(s, msgsig, &m), 0);
		free(m.s);
	}
	assert_int_equal(relay_object_delete_later(&r->base), 0);
	assert_int_equal(relay_object_delete_later(&g->base), 0);
	atomic_store(&g->go, 1);   /* not gate_open: g is freed as the thread ends */
	assert_int_equal(relay_thread_wait(w, SUPPORT_TIMEOUT_MS), 0);
	/* Delivered or dropped, each copy freed exactly once. */
	assert_int_equal(atomic_load(&g_frees), atomic_load(&g_copies));
	assert_true(atomic_load(&t.calls) <= 5);
	assert_int_equal(relay_thread_destroy(w), 0);
	recv_destroy(s);
	assert_int_equal(atomic_load(&g_frees), atomic_load(&g_copies));
}

/* Blocking connections copy too; each copy freed once. */
static void test_D3_copy_hooks_blocking(void **state)
{
	(void)state;
	reset_globals();
	tally t = { 0 };
	relay_thread *w = support_thread_start("d3-blk");
	recv *s = recv_new(&t, 0);
	recv *r = recv_in(w, &t, 1);
	assert_int_equal(relay_signal_set_ops(s, msgsig, &msg_ops), 0);
	assert_int_equal(relay_connect_ex(s, msgsig, r, on_msg, RELAY_BLOCKING, 0u, NULL), 0);
	for (int i = 0; i < 10; i++) {
		msg m = msg_make(i);
		assert_int_equal(relay_emit(s, msgsig, &m), 0);
		assert_int_equal(atomic_load(&t.calls), i + 1);
		assert_ptr_not_equal(atomic_load(&t.last_str), m.s);
		free(m.s);
	}
	assert_int_equal(atomic_load(&t.bad_payload), 0);
	assert_int_equal(relay_object_delete_later(&r->base), 0);
	support_thread_stop(w);
	recv_destroy(s);
	assert_int_equal(atomic_load(&g_copies), 10);
	assert_int_equal(atomic_load(&g_frees), 10);
}

static void test_D3_copy_failure_enomem_skips_and_counts_dropped(void **state)
{
	(void)state;
	reset_globals();
	tally t = { 0 };
	recv *s = recv_new(&t, 0), *r = recv_new(&t, 1);
	assert_int_equal(relay_signal_set_ops(s, msgsig, &msg_ops), 0);
	assert_int_equal(relay_connect_ex(s, msgsig, r, on_msg, RELAY_QUEUED, 0u, NULL), 0);
	relay_loop_stats before, after;
	assert_int_equal(relay_thread_stats(relay_thread_main(), &before), 0);
	atomic_store(&g_fail_copy, 1);
	msg m = msg_make(1);
	assert_int_equal(relay_emit(s, msgsig, &m), -ENOMEM);
	atomic_store(&g_fail_copy, 0);
	support_drain(10);
	assert_int_equal(atomic_load(&t.calls), 0);
	assert_int_equal(atomic_load(&g_copies), 0);
	assert_int_equal(atomic_load(&g_frees), 0);
	assert_int_equal(relay_thread_stats(relay_thread_main(), &after), 0);
	assert_true(after.dropped >= before.dropped + 1);
	/* The connection is still there. */
	assert_int_equal(relay_emit(s, msgsig, &m), 0);
	assert_true(support_run_until_count(&t.calls, 1, SUPPORT_TIMEOUT_MS));
	free(m.s);
	recv_destroy(s);
	recv_destroy(r);
	assert_int_equal(atomic_load(&g_frees), atomic_load(&g_copies));
}

/* One queued copy fails: the emit reports -ENOMEM, that connection is
 * skipped, the others still get theirs. */
static void test_D3_copy_failure_other_connections_still_served(void **state)
{
	(void)state;
	reset_globals();
	tally t1 = { 0 }, t2 = { 0 };
	recv *s = recv_new(&t1, 0);
	recv *r1 = recv_new(&t1, 1), *r2 = recv_new(&t2, 2);
	assert_int_equal(relay_signal_set_ops(s, msgsig, &msg_ops), 0);
	assert_int_equal(relay_connect_ex(s, msgsig, r1, on_msg, RELAY_QUEUED, 0u, NULL), 0);
	assert_int_equal(relay_connect_ex(s, msgsig, r2, on_msg, RELAY_QUEUED, 0u, NULL), 0);
	atomic_store(&g_fail_copy, 1);
	msg m = msg_make(7);
	assert_int_equal(relay_emit(s, msgsig, &m), -ENOMEM);
	free(m.s);
	support_drain(10);
	assert_int_equal(atomic_load(&t1.calls) + atomic_load(&t2.calls), 1);
	assert_int_equal(atomic_load(&g_copies), 1);
	assert_int_equal(atomic_load(&g_frees), 1);
	recv_destroy(s);
	recv_destroy(r1);
	recv_destroy(r2);
}

/* ======================================================================
 * D4: order; events posted during delivery wait for the next pass
 * ====================================================================== */

enum { ORDER_N = 100000 };

static void test_D4_order_main_to_worker_100k(void **state)
{
	(void)state;
	tally t = { 0 };
	relay_thread *w = support_thread_start("d4-order");
	recv *s = recv_new(&t, 0);
	recv *r = recv_in(w, &t, 1);
	assert_int_equal(relay_connect(s, sig, r, on_sig_ordered), 0);
	for (int i = 0; i < ORDER_N; i++)
		assert_int_equal(relay_emit(s, sig, &i), 0);
	assert_true(support_wait_count(&t.calls, ORDER_N, 60000));
	assert_int_equal(atomic_load(&t.order_errors), 0);
	assert_int_equal(atomic_load(&t.last), ORDER_N - 1);
	assert_int_equal(relay_object_delete_later(&r->base), 0);
	support_thread_stop(w);
	recv_destroy(s);
}

static int g_pair_next[4];
static atomic_long g_pair_errors;
static void on_pair(recv *self, const pair *p)
{
	if (p->who < 0 || p->who >= 4 || g_pair_next[p->who] != p->seq)
		atomic_fetch_add(&g_pair_errors, 1);
	else
		g_pair_next[p->who]++;
	atomic_fetch_add(&self->t->calls, 1);
}

static void test_D4_order_per_emitting_thread_to_main(void **state)
{
	(void)state;
	tally t = { 0 };
	enum { P = 3, PER = 30000 };
	memset(g_pair_next, 0, sizeof g_pair_next);
	atomic_store(&g_pair_errors, 0);
	recv *s = recv_new(&t, 0), *r = recv_new(&t, 1);
	assert_int_equal(relay_connect(s, pairsig, r, on_pair), 0);
	pemit p[P];
	pthread_t th[P];
	for (int i = 0; i < P; i++) {
		p[i] = (pemit){ .s = s, .from = 0, .count = PER, .who = i, .pairs = true };
		pemit_run(&p[i], &th[i]);
	}
	assert_true(support_run_until_count(&t.calls, (long)P * PER, 60000));
	for (int i = 0; i < P; i++) {
		assert_int_equal(pthread_join(th[i], NULL), 0);
		assert_int_equal(p[i].rc, 0);
	}
	assert_int_equal(atomic_load(&g_pair_errors), 0);
	for (int i = 0; i < P; i++)
		assert_int_equal(g_pair_next[i], PER);
	recv_destroy(s);
	recv_destroy(r);
}

/* Emitting threads that have exited before the receiver's loop runs:
 * their events still arrive, in order, and nothing leaks (the transport
 * may keep per-thread state: it must outlive the thread or be handed
 * over). */
static void test_D4_emitters_exit_before_delivery(void **state)
{
	(void)state;
	enum { P = 4, PER = 2000, WAVES = 3 };
	tally t = { 0 };
	relay_thread *w = support_thread_start("d4-exit");
	gate *g = gate_new(w);
	recv *s = recv_new(&t, 0);
	recv *r = recv_in(w, &t, 1);
	assert_int_equal(relay_connect(s, pairsig, r, on_pair), 0);
	for (int wave = 0; wave < WAVES; wave++) {
		memset(g_pair_next, 0, sizeof g_pair_next);
		atomic_store(&g_pair_errors, 0);
		atomic_store(&t.calls, 0);
		gate_close(g, NULL, NULL);
		pemit p[P];
		pthread_t th[P];
		for (int i = 0; i < P; i++) {
			p[i] = (pemit){ .s = s, .from = 0, .count = PER, .who = i, .pairs = true };
			pemit_run(&p[i], &th[i]);
		}
		for (int i = 0; i < P; i++) {
			assert_int_equal(pthread_join(th[i], NULL), 0);   /* gone */
			assert_int_equal(p[i].rc, 0);
		}
		assert_int_equal(atomic_load(&t.calls), 0);
		gate_open(g);
		assert_true(support_wait_count(&t.calls, (long)P * PER, 60000));
		gate_sync(g);
		assert_int_equal(atomic_load(&t.calls), (long)P * PER);
		assert_int_equal(atomic_load(&g_pair_errors), 0);
		for (int i = 0; i < P; i++)
			assert_int_equal(g_pair_next[i], PER);
	}
	assert_int_equal(relay_object_delete_later(&r->base), 0);
	gate_free(g);
	support_thread_stop(w);
	recv_destroy(s);
}

/* Emitting threads that exit while their events are still queued to a
 * thread that then stops: every copy is freed exactly once. */
typedef struct mpemit {
	recv *s;
	int count;
	int rc;
} mpemit;

static void *mpemit_main(void *arg)
{
	mpemit *p = arg;
	for (int i = 0; i < p->count; i++) {
		msg m = msg_make(i);
		int rc = relay_emit(p->s, msgsig, &m);
		free(m.s);
		if (rc != 0 && p->rc == 0)
			p->rc = rc;
	}
	return NULL;
}

static void test_D3_emitters_exit_thread_stops_copies_freed(void **state)
{
	(void)state;
	enum { P = 4, PER = 500 };
	reset_globals();
	tally t = { 0 };
	relay_thread *w = support_thread_start("d3-exit");
	gate *g = gate_new(w);
	recv *s = recv_new(&t, 0);
	recv *r = recv_in(w, &t, 1);
	assert_int_equal(relay_signal_set_ops(s, msgsig, &msg_ops), 0);
	assert_int_equal(relay_connect(s, msgsig, r, on_msg), 0);
	gate_close(g, NULL, NULL);
	assert_int_equal(relay_thread_quit(w), 0);
	mpemit p[P];
	pthread_t th[P];
	for (int i = 0; i < P; i++) {
		p[i] = (mpemit){ s, PER, 0 };
		assert_int_equal(pthread_create(&th[i], NULL, mpemit_main, &p[i]), 0);
	}
	for (int i = 0; i < P; i++) {
		assert_int_equal(pthread_join(th[i], NULL), 0);
		assert_int_equal(p[i].rc, 0);
	}
	assert_int_equal(relay_object_delete_later(&r->base), 0);
	assert_int_equal(relay_object_delete_later(&g->base), 0);
	atomic_store(&g->go, 1);   /* g is freed as the thread ends */
	assert_int_equal(relay_thread_wait(w, SUPPORT_TIMEOUT_MS), 0);
	assert_int_equal(atomic_load(&g_copies), (long)P * PER);
	assert_int_equal(atomic_load(&g_frees), atomic_load(&g_copies));
	assert_int_equal(atomic_load(&t.bad_payload), 0);
	assert_int_equal(relay_thread_destroy(w), 0);
	recv_destroy(s);
}

/* Slot posting to itself: value 0 re-posts 1. */
static void on_sig_repost(recv *self, const int *v)
{
	on_sig(self, v);
	if (*v == 0) {
		int one = 1;
		assert_int_equal(relay_emit(self, sig, &one), 0);
	}
}

static void test_D4_posted_during_delivery_waits_next_pass(void **state)
{
	(void)state;
	tally t = { 0 };
	recv *r = recv_new(&t, 1);
	assert_int_equal(relay_connect_ex(r, sig, r, on_sig_repost, RELAY_QUEUED, 0u, NULL), 0);
	support_drain(100);          /* nothing left over from earlier tests */
	int v0 = 0, v10 = 10, v20 = 20;
	assert_int_equal(relay_emit(r, sig, &v0), 0);
	assert_int_equal(relay_emit(r, sig, &v10), 0);
	assert_int_equal(relay_emit(r, sig, &v20), 0);
	assert_int_equal(atomic_load(&t.calls), 0);
	int n = relay_loop_run_once(0);
	assert_true(n >= 3);
	assert_int_equal(atomic_load(&t.calls), 3);     /* not the re-posted one */
	assert_int_equal(atomic_load(&t.last), 20);
	n = relay_loop_run_once(0);
	assert_true(n >= 1);
	assert_int_equal(atomic_load(&t.calls), 4);
	assert_int_equal(atomic_load(&t.last), 1);
	assert_int_equal(relay_loop_run_once(0), 0);
	assert_int_equal(atomic_load(&t.calls), 4);
	recv_destroy(r);
}

/* A flood of self-posts does not starve a timer. */
static atomic_int g_timer_fired;
static atomic_long g_flood;
static void on_sig_flood(recv *self, const int *v)
{
	(void)v;
	if (atomic_load(&g_timer_fired) || atomic_fetch_add(&g_flood, 1) > 2000000)
		return;
	int x = 0;
	(void)relay_emit(self, sig, &x);
}

static void on_timer_shot(recv *self)
{
	(void)self;
	atomic_store(&g_timer_fired, 1);
}

static void test_D4_self_posting_flood_does_not_starve_timer(void **state)
{
	(void)state;
	tally t = { 0 };
	atomic_store(&g_timer_fired, 0);
	atomic_store(&g_flood, 0);
	recv *r = recv_new(&t, 1);
	assert_int_equal(relay_connect_ex(r, sig, r, on_sig_flood, RELAY_QUEUED, 0u, NULL), 0);
	int x = 0;
	for (int i = 0; i < 4; i++)
		assert_int_equal(relay_emit(r, sig, &x), 0);
	assert_int_equal(relay_single_shot(1, r, on_timer_shot), 0);
	assert_true(support_run_until_flag(&g_timer_fired, SUPPORT_TIMEOUT_MS));
	assert_true(atomic_load(&g_flood) < 2000000);
	assert_int_equal(relay_disconnect_signal(r, sig), 0);
	support_drain(10);
	recv_destroy(r);
}

/* ======================================================================
 * D5: a queued call never runs inside the emit, even to one's own thread
 * ====================================================================== */

typedef struct d5ctx {
	recv *target;        /* queued receiver in the same thread */
	tally *tt;
	atomic_int inside_ok;
	atomic_int checked;
} d5ctx;

static void on_sig_emit_queued_inside(recv *self, const int *v)
{
	d5ctx *c = self->user;
	(void)v;
	long before = atomic_load(&c->tt->calls);
	int x = 77;
	assert_int_equal(relay_emit(c->target, sig, &x), 0);
	if (atomic_load(&c->tt->calls) == before)
		atomic_store(&c->inside_ok, 1);
	atomic_store(&c->checked, 1);
}

static void test_D5_queued_to_own_thread_not_inside_emit(void **state)
{
	(void)state;
	tally t = { 0 }, tq = { 0 };
	recv *s = recv_new(&t, 0);
	recv *q = recv_new(&tq, 1);
	assert_int_equal(relay_connect_ex(s, sig, q, on_sig, RELAY_QUEUED, 0u, NULL), 0);
	int v = 1;
	assert_int_equal(relay_emit(s, sig, &v), 0);
	assert_int_equal(atomic_load(&tq.calls), 0);

	/* From inside a slot running on the loop (queued delivery), a
	 * queued emit to the same thread is not run inside it either. */
	d5ctx c = { .target = s, .tt = &tq };
	recv *a = recv_new(&t, 2);
	a->user = &c;
	assert_int_equal(relay_connect_ex(a, other, a, on_sig_emit_queued_inside, RELAY_QUEUED, 0u, NULL), 0);
	assert_int_equal(relay_emit(a, other, &v), 0);
	assert_true(support_run_until_flag(&c.checked, SUPPORT_TIMEOUT_MS));
	assert_int_equal(atomic_load(&c.inside_ok), 1);
	assert_true(support_run_until_count(&tq.calls, 2, SUPPORT_TIMEOUT_MS));
	recv_destroy(a);
	recv_destroy(s);
	recv_destroy(q);
}

/* ======================================================================
 * D6: after relay_disconnect returns, queued events are dropped
 * ====================================================================== */

static void test_D6_disconnect_drops_queued(void **state)
{
	(void)state;
	reset_globals();
	tally t = { 0 };
	relay_thread *w = support_thread_start("d6-drop");
	gate *g = gate_new(w);
	recv *s = recv_new(&t, 0);
	recv *r = recv_in(w, &t, 1);
	relay_connection c = 0, cm = 0;
	assert_int_equal(relay_connect_ex(s, sig, r, on_sig, RELAY_AUTO, 0u, &c), 0);
	assert_int_equal(relay_signal_set_ops(s, msgsig, &msg_ops), 0);
	assert_int_equal(relay_connect_ex(s, msgsig, r, on_msg, RELAY_AUTO, 0u, &cm), 0);

	gate_close(g, NULL, NULL);              /* the worker cannot deliver */
	relay_loop_stats before, after;
	assert_int_equal(relay_thread_stats(w, &before), 0);
	int v = 1;
	assert_int_equal(relay_emit(s, sig, &v), 0);
	msg m = msg_make(1);
	assert_int_equal(relay_emit(s, msgsig, &m), 0);
	free(m.s);
	assert_int_equal(relay_disconnect(c), 0);
	assert_int_equal(relay_disconnect(cm), 0);
	assert_int_equal(relay_disconnect(c), -ENOENT);
	gate_open(g);
	gate_sync(g);
	assert_int_equal(atomic_load(&t.calls), 0);
	assert_int_equal(relay_thread_stats(w, &after), 0);
	assert_true(after.dropped >= before.dropped + 2);
	assert_int_equal(atomic_load(&g_frees), atomic_load(&g_copies));

	assert_int_equal(relay_object_delete_later(&r->base), 0);
	gate_free(g);
	support_thread_stop(w);
	recv_destroy(s);
}

static void test_D6_disconnect_drops_queued_same_thread(void **state)
{
	(void)state;
	tally t = { 0 };
	recv *s = recv_new(&t, 0), *r = recv_new(&t, 1);
	relay_connection c = 0;
	assert_int_equal(relay_connect_ex(s, sig, r, on_sig, RELAY_QUEUED, 0u, &c), 0);
	relay_loop_stats before, after;
	assert_int_equal(relay_thread_stats(relay_thread_main(), &before), 0);
	int v = 1;
	assert_int_equal(relay_emit(s, sig, &v), 0);
	assert_int_equal(relay_emit(s, sig, &v), 0);
	assert_int_equal(relay_disconnect(c), 0);
	support_drain(10);
	assert_int_equal(atomic_load(&t.calls), 0);
	assert_int_equal(relay_thread_stats(relay_thread_main(), &after), 0);
	assert_true(after.dropped >= before.dropped + 2);
	recv_destroy(s);
	recv_destroy(r);
}

/* A queued slot disconnects its own connection: the rest of the batch
 * already posted for it is dropped, even within the same loop pass. */
typedef struct selfcut {
	relay_connection c;
	atomic_int rc;
} selfcut;

static void on_sig_cut_self(recv *self, const int *v)
{
	selfcut *x = self->user;
	on_sig(self, v);
	atomic_store(&x->rc, relay_disconnect(x->c));
}

static void test_D6_disconnect_in_slot_drops_rest_of_batch(void **state)
{
	(void)state;
	tally t = { 0 };
	recv *s = recv_new(&t, 0), *r = recv_new(&t, 1);
	selfcut x = { 0 };
	r->user = &x;
	assert_int_equal(relay_connect_ex(s, sig, r, on_sig_cut_self, RELAY_QUEUED, 0u, &x.c), 0);
	for (int i = 0; i < 5; i++)
		assert_int_equal(relay_emit(s, sig, &i), 0);
	support_drain(10);
	assert_int_equal(atomic_load(&t.calls), 1);
	assert_int_equal(atomic_load(&t.last), 0);
	assert_int_equal(atomic_load(&x.rc), 0);
	recv_destroy(s);
	recv_destroy(r);
}

/* A queued slot destroys another receiver of the same thread whose
 * events are in the same batch: they are not delivered (D7). */
static void on_sig_destroy_user(recv *self, const int *v)
{
	on_sig(self, v);
	recv *victim = self->user;
	if (victim) {
		self->user = NULL;
		assert_int_equal(relay_object_destroy(&victim->base), 0);
	}
}

static void test_D7_receiver_destroyed_mid_batch(void **state)
{
	(void)state;
	tally ta = { 0 }, tv = { 0 };
	recv *s = recv_new(&ta, 0);
	recv *a = recv_new(&ta, 1);
	recv *victim = recv_new(&tv, 2);
	a->user = victim;
	assert_int_equal(relay_connect_ex(s, sig, a, on_sig_destroy_user, RELAY_QUEUED, 0u, NULL), 0);
	assert_int_equal(relay_connect_ex(s, other, victim, on_sig, RELAY_QUEUED, 0u, NULL), 0);
	int v = 1;
	assert_int_equal(relay_emit(s, sig, &v), 0);      /* a first: destroys victim */
	for (int i = 0; i < 3; i++)
		assert_int_equal(relay_emit(s, other, &i), 0);
	support_drain(10);
	assert_int_equal(atomic_load(&ta.calls), 1);
	assert_int_equal(atomic_load(&tv.finalized), 1);
	assert_int_equal(atomic_load(&tv.calls), 0);
	recv_destroy(s);
	recv_destroy(a);
}

static void test_D6_disconnect_receiver_drops_queued(void **state)
{
	(void)state;
	tally t = { 0 };
	recv *s = recv_new(&t, 0), *r = recv_new(&t, 1);
	assert_int_equal(relay_connect_ex(s, sig, r, on_sig, RELAY_QUEUED, 0u, NULL), 0);
	int v = 1;
	assert_int_equal(relay_emit(s, sig, &v), 0);
	assert_int_equal(relay_disconnect_receiver(&r->base), 0);
	support_drain(10);
	assert_int_equal(atomic_load(&t.calls), 0);
	recv_destroy(s);
	recv_destroy(r);
}

/* ======================================================================
 * D7: destruction of receiver and sender
 * ====================================================================== */

static void test_D7_receiver_destroyed_connections_gone(void **state)
{
	(void)state;
	tally t = { 0 };
	recv *s = recv_new(&t, 0), *r = recv_new(&t, 1);
	relay_connection c1 = 0, c2 = 0;
	assert_int_equal(relay_connect_ex(s, sig, r, on_sig, RELAY_AUTO, 0u, &c1), 0);
	assert_int_equal(relay_connect_ex(s, ping, r, on_ping, RELAY_QUEUED, 0u, &c2), 0);
	relay_loop_stats before, after;
	assert_int_equal(relay_thread_stats(relay_thread_main(), &before), 0);
	assert_int_equal(relay_emit(s, ping), 0);
	assert_int_equal(relay_emit(s, ping), 0);
	assert_int_equal(relay_emit(s, ping), 0);
	recv_destroy(r);
	assert_int_equal(atomic_load(&t.finalized), 1);
	assert_int_equal(relay_disconnect(c1), -ENOENT);
	assert_int_equal(relay_disconnect(c2), -ENOENT);
	int v = 1;
	assert_int_equal(relay_emit(s, sig, &v), 0);
	assert_int_equal(relay_emit(s, ping), 0);
	support_drain(10);
	assert_int_equal(atomic_load(&t.calls), 0);
	assert_int_equal(relay_thread_stats(relay_thread_main(), &after), 0);
	assert_true(after.dropped >= before.dropped + 3);
	recv_destroy(s);
}

static void test_D7_receiver_destroyed_in_its_thread_drops_queued(void **state)
{
	(void)state;
	reset_globals();
	tally t = { 0 };
	relay_thread *w = support_thread_start("d7-recv");
	gate *g = gate_new(w);
	recv *s = recv_new(&t, 0);
	recv *r = recv_in(w, &t, 1);
	assert_int_equal(relay_signal_set_ops(s, msgsig, &msg_ops), 0);
	assert_int_equal(relay_connect(s, sig, r, on_sig), 0);
	assert_int_equal(relay_connect(s, msgsig, r, on_msg), 0);
	gate_close(g, destroy_cb, &r->base);
	for (int i = 0; i < 5; i++) {
		assert_int_equal(relay_emit(s, sig, &i), 0);
		msg m = msg_make(i);
		assert_int_equal(relay_emit(s, msgsig, &m), 0);
		free(m.s);
	}
	gate_open(g);
	gate_sync(g);
	assert_int_equal(atomic_load(&t.finalized), 1);
	assert_int_equal(atomic_load(&t.calls), 0);
	assert_int_equal(atomic_load(&g_frees), atomic_load(&g_copies));
	gate_free(g);
	support_thread_stop(w);
	recv_destroy(s);
}

static void test_D7_sender_destroyed_queued_still_arrive(void **state)
{
	(void)state;
	reset_globals();
	tally t = { 0 };
	relay_thread *w = support_thread_start("d7-send");
	gate *g = gate_new(w);
	recv *s = recv_new(&t, 0);
	recv *r = recv_in(w, &t, 1);
	recv *rm = recv_new(&t, 2);
	assert_int_equal(relay_signal_set_ops(s, msgsig, &msg_ops), 0);
	assert_int_equal(relay_connect(s, sig, r, on_sig_ordered), 0);
	assert_int_equal(relay_connect(s, msgsig, r, on_msg), 0);
	assert_int_equal(relay_connect_ex(s, msgsig, rm, on_msg, RELAY_QUEUED, 0u, NULL), 0);
	gate_close(g, NULL, NULL);
	for (int i = 0; i < 3; i++)
		assert_int_equal(relay_emit(s, sig, &i), 0);
	msg m = msg_make(42);
	assert_int_equal(relay_emit(s, msgsig, &m), 0);
	free(m.s);
	recv_destroy(s);                       /* sender gone, events queued */
	gate_open(g);
	gate_sync(g);
	assert_true(support_run_until_count(&t.calls, 5, SUPPORT_TIMEOUT_MS));
	assert_int_equal(atomic_load(&t.order_errors), 0);
	assert_int_equal(atomic_load(&t.bad_payload), 0);
	assert_int_equal(atomic_load(&t.calls), 5);
	assert_int_equal(atomic_load(&g_frees), atomic_load(&g_copies));
	assert_int_equal(relay_object_delete_later(&r->base), 0);
	gate_free(g);
	support_thread_stop(w);
	recv_destroy(rm);
}

/* A receiver with no thread (detached) gets nothing; its copies are
 * freed; moved back, it receives again. */
static void test_D7_emit_to_detached_receiver_dropped(void **state)
{
	(void)state;
	reset_globals();
	tally t = { 0 };
	recv *s = recv_new(&t, 0), *r = recv_new(&t, 1);
	assert_int_equal(relay_signal_set_ops(s, msgsig, &msg_ops), 0);
	assert_int_equal(relay_connect(s, sig, r, on_sig), 0);
	assert_int_equal(relay_connect(s, msgsig, r, on_msg), 0);
	assert_int_equal(relay_object_move_to_thread(&r->base, NULL), 0);
	assert_null(relay_object_thread(&r->base));
	int v = 1;
	assert_int_equal(relay_emit(s, sig, &v), 0);
	msg m = msg_make(1);
	assert_int_equal(relay_emit(s, msgsig, &m), 0);
	support_drain(10);
	assert_int_equal(atomic_load(&t.calls), 0);
	assert_int_equal(atomic_load(&g_frees), atomic_load(&g_copies));
	assert_int_equal(relay_object_move_to_thread(&r->base, relay_thread_main()), 0);
	assert_int_equal(relay_emit(s, sig, &v), 0);
	assert_int_equal(atomic_load(&t.calls), 1);                 /* direct again */
	assert_int_equal(relay_emit(s, msgsig, &m), 0);
	assert_int_equal(atomic_load(&t.calls), 2);
	free(m.s);
	recv_destroy(s);
	recv_destroy(r);
	assert_int_equal(atomic_load(&g_frees), atomic_load(&g_copies));
}

/* Connecting from a sender that is being destroyed: refused, or at least
 * cut with it (nothing leaks, LSan checks). */
typedef struct d7snd {
	recv *s, *r;
	atomic_int rc;
} d7snd;

static void d7_sender_dying(void *data)
{
	d7snd *x = data;
	atomic_store(&x->rc, relay_connect(x->s, sig, x->r, on_sig));
}

static void test_D7_connect_from_sender_being_destroyed(void **state)
{
	(void)state;
	tally t = { 0 };
	recv *s = recv_new(&t, 0), *r = recv_new(&t, 1);
	d7snd x = { s, r, 1 };
	assert_int_equal(relay_connect_func(&s->base, destroyed, d7_sender_dying, &x), 0);
	recv_destroy(s);
	int rc = atomic_load(&x.rc);
	assert_true(rc == RELAY_EDESTROYED || rc == 0);
	assert_int_equal(atomic_load(&t.calls), 0);
	recv_destroy(r);
}

/* Connecting to an object that is being destroyed is refused. */
typedef struct d7conn {
	recv *s, *r;
	atomic_int rc;
	atomic_int ran;
} d7conn;

static void d7_on_destroyed(void *data)
{
	d7conn *x = data;
	atomic_store(&x->rc, relay_connect(x->s, sig, x->r, on_sig));
	atomic_store(&x->ran, 1);
}

static void test_D7_connect_to_receiver_being_destroyed_refused(void **state)
{
	(void)state;
	tally t = { 0 };
	recv *s = recv_new(&t, 0), *r = recv_new(&t, 1);
	d7conn x = { .s = s, .r = r };
	assert_int_equal(relay_connect_func(&r->base, destroyed, d7_on_destroyed, &x), 0);
	recv_destroy(r);
	assert_int_equal(atomic_load(&x.ran), 1);
	assert_int_equal(atomic_load(&x.rc), RELAY_EDESTROYED);
	int v = 1;
	assert_int_equal(relay_emit(s, sig, &v), 0);
	support_drain(10);
	assert_int_equal(atomic_load(&t.calls), 0);
	recv_destroy(s);
}

/* ======================================================================
 * D9: re-entrancy during an emission
 * ====================================================================== */

typedef struct d9ctx {
	recv *s;
	recv *a, *b, *c;
	relay_connection ca, cb;
	atomic_int connected;
	atomic_int depth;
	recv *victim[2];
	atomic_long destroyed_a;
} d9ctx;

static void d9_on_connect(recv *self, const int *v)
{
	d9ctx *x = self->user;
	on_sig(self, v);
	if (!atomic_exchange(&x->connected, 1))
		assert_int_equal(relay_connect(x->s, sig, x->c, on_sig), 0);
}

static void test_D9_connect_during_emission_not_called(void **state)
{
	(void)state;
	tally ta = { 0 }, tb = { 0 }, tc = { 0 };
	d9ctx x = { 0 };
	x.s = recv_new(&ta, 0);
	x.a = recv_new(&ta, 1);
	x.b = recv_new(&tb, 2);
	x.c = recv_new(&tc, 3);
	x.a->user = &x;
	assert_int_equal(relay_connect(x.s, sig, x.a, d9_on_connect), 0);
	assert_int_equal(relay_connect(x.s, sig, x.b, on_sig), 0);
	int v = 1;
	assert_int_equal(relay_emit(x.s, sig, &v), 0);
	assert_int_equal(atomic_load(&ta.calls), 1);
	assert_int_equal(atomic_load(&tb.calls), 1);
	assert_int_equal(atomic_load(&tc.calls), 0);       /* made during it */
	assert_int_equal(relay_emit(x.s, sig, &v), 0);
	assert_int_equal(atomic_load(&ta.calls), 2);
	assert_int_equal(atomic_load(&tb.calls), 2);
	assert_int_equal(atomic_load(&tc.calls), 1);
	recv_destroy(x.s);
	recv_destroy(x.a);
	recv_destroy(x.b);
	recv_destroy(x.c);
}

/* a and b each disconnect the other: whichever runs first, the other is
 * skipped (it was disconnected meanwhile). */
static void d9_on_disconnect_other(recv *self, const int *v)
{
	d9ctx *x = self->user;
	on_sig(self, v);
	relay_connection other = self == x->a ? x->cb : x->ca;
	(void)relay_disconnect(other);
}

static void test_D9_disconnect_during_emission_skips(void **state)
{
	(void)state;
	tally t = { 0 }, tself = { 0 };
	d9ctx x = { 0 };
	x.s = recv_new(&tself, 0);
	x.a = recv_new(&t, 1);
	x.b = recv_new(&t, 2);
	x.a->user = x.b->user = &x;
	assert_int_equal(relay_connect_ex(x.s, sig, x.a, d9_on_disconnect_other, RELAY_AUTO, 0u, &x.ca), 0);
	assert_int_equal(relay_connect_ex(x.s, sig, x.b, d9_on_disconnect_other, RELAY_AUTO, 0u, &x.cb), 0);
	int v = 1;
	assert_int_equal(relay_emit(x.s, sig, &v), 0);
	assert_int_equal(atomic_load(&t.calls), 1);
	assert_int_equal(relay_emit(x.s, sig, &v), 0);
	assert_int_equal(atomic_load(&t.calls), 2);        /* the survivor */
	recv_destroy(x.s);
	recv_destroy(x.a);
	recv_destroy(x.b);
}

static void d9_on_disconnect_all(recv *self, const int *v)
{
	d9ctx *x = self->user;
	on_sig(self, v);
	assert_int_equal(relay_disconnect_signal(x->s, sig), 0);
}

static void test_D9_disconnect_signal_during_emission(void **state)
{
	(void)state;
	tally t = { 0 }, tself = { 0 };
	d9ctx x = { 0 };
	x.s = recv_new(&tself, 0);
	x.a = recv_new(&t, 1);
	x.b = recv_new(&t, 2);
	x.c = recv_new(&t, 3);
	x.a->user = x.b->user = x.c->user = &x;
	assert_int_equal(relay_connect(x.s, sig, x.a, d9_on_disconnect_all), 0);
	assert_int_equal(relay_connect(x.s, sig, x.b, d9_on_disconnect_all), 0);
	assert_int_equal(relay_connect(x.s, sig, x.c, d9_on_disconnect_all), 0);
	int v = 1;
	assert_int_equal(relay_emit(x.s, sig, &v), 0);
	assert_int_equal(atomic_load(&t.calls), 1);
	assert_int_equal(relay_emit(x.s, sig, &v), 0);
	assert_int_equal(atomic_load(&t.calls), 1);
	recv_destroy(x.s);
	recv_destroy(x.a);
	recv_destroy(x.b);
	recv_destroy(x.c);
}

static void d9_on_emit_nested(recv *self, const int *v)
{
	d9ctx *x = self->user;
	on_sig(self, v);
	if (atomic_fetch_add(&x->depth, 1) == 0) {
		int nv = *v + 1;
		assert_int_equal(relay_emit(x->s, sig, &nv), 0);
	}
}

static void test_D9_emit_during_emission(void **state)
{
	(void)state;
	tally ta = { 0 }, tb = { 0 }, ts = { 0 };
	d9ctx x = { 0 };
	x.s = recv_new(&ts, 0);
	x.a = recv_new(&ta, 1);
	x.b = recv_new(&tb, 2);
	x.a->user = &x;
	assert_int_equal(relay_connect(x.s, sig, x.a, d9_on_emit_nested), 0);
	assert_int_equal(relay_connect(x.s, sig, x.b, on_sig), 0);
	int v = 1;
	assert_int_equal(relay_emit(x.s, sig, &v), 0);
	/* outer: a, b; nested: a, b */
	assert_int_equal(atomic_load(&ta.calls), 2);
	assert_int_equal(atomic_load(&tb.calls), 2);
	recv_destroy(x.s);
	recv_destroy(x.a);
	recv_destroy(x.b);
}

static void d9_on_delete_later_self(recv *self, const int *v)
{
	on_sig(self, v);
	assert_int_equal(relay_object_delete_later(&self->base), 0);
	assert_int_equal(relay_object_delete_later(&self->base), 0);   /* collapses */
}

static void test_D9_delete_later_own_receiver_during_emission(void **state)
{
	(void)state;
	tally ta = { 0 }, tb = { 0 }, ts = { 0 };
	recv *s = recv_new(&ts, 0);
	recv *a = recv_new(&ta, 1);
	recv *b = recv_new(&tb, 2);
	assert_int_equal(relay_connect(s, sig, a, d9_on_delete_later_self), 0);
	assert_int_equal(relay_connect(s, sig, b, on_sig), 0);
	int v = 1;
	assert_int_equal(relay_emit(s, sig, &v), 0);
	assert_int_equal(atomic_load(&ta.calls), 1);
	assert_int_equal(atomic_load(&tb.calls), 1);
	assert_int_equal(atomic_load(&ta.finalized), 0);   /* not inside emit */
	assert_true(support_run_until_count(&ta.finalized, 1, SUPPORT_TIMEOUT_MS));
	support_drain(10);
	assert_int_equal(atomic_load(&ta.finalized), 1);   /* exactly once */
	long before = atomic_load(&ta.calls);
	assert_int_equal(relay_emit(s, sig, &v), 0);
	assert_int_equal(atomic_load(&ta.calls), before);
	assert_int_equal(atomic_load(&tb.calls), 2);
	recv_destroy(s);
	recv_destroy(b);
}

/* Two receivers that each destroy the other (same thread, directly):
 * whichever is called first, the other is destroyed before its turn and
 * must not be called (D7 within an emission, D9). */
static void d9_on_destroy_other(recv *self, const int *v)
{
	d9ctx *x = self->user;
	on_sig(self, v);
	recv *other = self == x->a ? x->b : x->a;
	if (!other)
		return;   /* called although destroyed: counted above, fails */
	if (self == x->a)
		x->b = NULL;
	else
		x->a = NULL;
	assert_int_equal(relay_object_destroy(&other->base), 0);
}

static void test_D9_receiver_destroyed_during_emission_skipped(void **state)
{
	(void)state;
	tally t = { 0 }, ts = { 0 };
	d9ctx x = { 0 };
	x.s = recv_new(&ts, 0);
	x.a = recv_new(&t, 1);
	x.b = recv_new(&t, 2);
	x.a->user = x.b->user = &x;
	assert_int_equal(relay_connect(x.s, sig, x.a, d9_on_destroy_other), 0);
	assert_int_equal(relay_connect(x.s, sig, x.b, d9_on_destroy_other), 0);
	int v = 1;
	assert_int_equal(relay_emit(x.s, sig, &v), 0);
	assert_int_equal(atomic_load(&t.calls), 1);
	assert_int_equal(atomic_load(&t.finalized), 1);
	recv *survivor = x.a ? x.a : x.b;
	assert_non_null(survivor);
	recv_destroy(survivor);
	assert_int_equal(atomic_load(&t.finalized), 2);
	recv_destroy(x.s);
}

/* A slot destroys the sender of the emission in progress (same thread,
 * its owner): the emission must end without touching freed memory (ASan
 * checks); what it does with the remaining connections is unspecified. */
static void on_sig_destroy_sender(recv *self, const int *v)
{
	on_sig(self, v);
	recv *snd = self->user;
	if (snd) {
		self->user = NULL;
		assert_int_equal(relay_object_destroy(&snd->base), 0);
	}
}

static void test_D9_sender_destroyed_during_its_emission(void **state)
{
	(void)state;
	tally ta = { 0 }, tb = { 0 }, ts = { 0 };
	recv *s = recv_new(&ts, 0);
	recv *a = recv_new(&ta, 1);
	recv *b = recv_new(&tb, 2);
	a->user = s;
	assert_int_equal(relay_connect(s, sig, a, on_sig_destroy_sender), 0);
	assert_int_equal(relay_connect(s, sig, b, on_sig), 0);
	assert_int_equal(relay_connect_ex(s, sig, b, on_sig, RELAY_QUEUED, 0u, NULL), 0);
	int v = 1;
	assert_int_equal(relay_emit(s, sig, &v), 0);
	assert_int_equal(atomic_load(&ta.calls), 1);
	assert_int_equal(atomic_load(&ts.finalized), 1);
	support_drain(10);
	assert_true(atomic_load(&tb.calls) <= 2);
	recv_destroy(a);
	recv_destroy(b);
}

/* D9 (Qt's rule): when a slot destroys the sender of the emission in
 * progress, the emission calls no further slot, and relay_sender() no
 * longer names the destroyed sender - later slots would otherwise run for
 * an emission whose sender is freed, and read a dangling relay_sender(). */
static atomic_int g_sender_seen_after;

static void on_sig_destroy_sender_then_check(recv *self, const int *v)
{
	on_sig_destroy_sender(self, v);
	if (relay_sender() != NULL)
		atomic_fetch_add(&g_sender_seen_after, 1);
}

static void test_D9_sender_destroyed_by_slot_stops_emission(void **state)
{
	(void)state;
	atomic_store(&g_sender_seen_after, 0);
	tally ta = { 0 }, tb = { 0 }, ts = { 0 };
	recv *s = recv_new(&ts, 0);
	recv *a = recv_new(&ta, 1);
	recv *b = recv_new(&tb, 2);
	a->user = s;
	assert_int_equal(relay_connect(s, sig, a, on_sig_destroy_sender_then_check), 0);
	for (int i = 0; i < 3; i++)   /* connected after: called after a, in order */
		assert_int_equal(relay_connect_ex(s, sig, b, on_sig, RELAY_DIRECT, 0u, NULL), 0);
	int v = 1;
	assert_int_equal(relay_emit(s, sig, &v), 0);
	assert_int_equal(atomic_load(&ta.calls), 1);
	assert_int_equal(atomic_load(&ts.finalized), 1);
	assert_int_equal(atomic_load(&tb.calls), 0);
	assert_int_equal(atomic_load(&g_sender_seen_after), 0);
	recv_destroy(a);
	recv_destroy(b);
}

/* A slot runs nested loop passes (an idle one and one that delivers a
 * queued function which disconnects B, connects D and emits again)
 * while the outer emission is in progress: B must not be called after the
 * nested pass disconnected it, D not by this emission, C exactly once;
 * nothing the outer emission iterates may be freed (ASan checks). */
typedef struct nested {
	recv *s, *b, *d;
	relay_connection cb;
	atomic_int nested_done;
	atomic_int b_after_cut;
	atomic_int disc_rc, conn_rc;
} nested;

static nested *g_nested;

static void nested_fn(void *data)
{
	nested *x = data;
	atomic_store(&x->disc_rc, relay_disconnect(x->cb));
	atomic_store(&x->conn_rc, relay_connect(x->s, sig, x->d, on_sig));
	int v = 99;
	(void)relay_emit(x->s, other, &v);
}

static void on_sig_nested_pass(recv *self, const int *v)
{
	nested *x = g_nested;
	on_sig(self, v);
	(void)relay_loop_run_once(0);   /* delivers nested_fn */
	(void)relay_loop_run_once(0);   /* idle */
	(void)relay_process_events();
	atomic_store(&x->nested_done, 1);
}

static void on_sig_b_nested(recv *self, const int *v)
{
	on_sig(self, v);
	if (atomic_load(&g_nested->nested_done))
		atomic_store(&g_nested->b_after_cut, 1);
}

/* A slot that changes the signal's connections (its snapshot is replaced)
 * and then runs an idle loop pass, in which the thread drops its emit
 * cache: the emission in progress still calls the rest of its snapshot,
 * which must stay alive until it ends (ASan checks the memory). */
typedef struct idle_pass {
	recv *s, *late;
	tally *tl;
	int connect_rc, pass_rc;
} idle_pass;
static idle_pass *g_idle;

static void on_sig_reconnect_then_idle(recv *self, const int *v)
{
	on_sig(self, v);
	g_idle->connect_rc = relay_connect(g_idle->s, sig, g_idle->late, on_sig);
	g_idle->pass_rc = relay_loop_run_once(0);   /* nothing queued: an idle pass */
}

static void test_D9_idle_pass_in_slot_keeps_emission_snapshot(void **state)
{
	(void)state;
	support_drain(10);
	tally ts = { 0 }, ta = { 0 }, tb = { 0 }, tl = { 0 };
	idle_pass x = { 0 };
	g_idle = &x;
	x.s = recv_new(&ts, 0);
	recv *a = recv_new(&ta, 1), *b = recv_new(&tb, 2);
	x.late = recv_new(&tl, 3);
	assert_int_equal(relay_connect(x.s, sig, a, on_sig_reconnect_then_idle), 0);
	assert_int_equal(relay_connect(x.s, sig, b, on_sig), 0);
	int v = 7;
	assert_int_equal(relay_emit(x.s, sig, &v), 0);
	assert_int_equal(x.connect_rc, 0);
	assert_int_equal(x.pass_rc, 0);
	assert_int_equal(atomic_load(&ta.calls), 1);
	assert_int_equal(atomic_load(&tb.calls), 1);   /* the rest of the snapshot */
	assert_int_equal(atomic_load(&tl.calls), 0);   /* made during it: not called */
	assert_int_equal(relay_disconnect_signal(x.s, sig), 0);
	assert_int_equal(relay_emit(x.s, sig, &v), 0);
	assert_int_equal(atomic_load(&tb.calls), 1);
	recv_destroy(x.s);
	recv_destroy(a);
	recv_destroy(b);
	recv_destroy(x.late);
	g_idle = NULL;
}

static void test_D9_nested_pass_in_slot_during_emission(void **state)
{
	(void)state;
	tally ta = { 0 }, tb = { 0 }, tc = { 0 }, td = { 0 }, ts = { 0 };
	nested x = { 0 };
	g_nested = &x;
	support_drain(100);
	x.s = recv_new(&ts, 0);
	recv *a = recv_new(&ta, 1);
	x.b = recv_new(&tb, 2);
	recv *c = recv_new(&tc, 3);
	x.d = recv_new(&td, 4);
	recv *o = recv_new(&ts, 5);
	assert_int_equal(relay_connect(x.s, other, o, on_sig), 0);
	assert_int_equal(relay_connect(x.s, sig, a, on_sig_nested_pass), 0);
	assert_int_equal(relay_connect_ex(x.s, sig, x.b, on_sig_b_nested, RELAY_AUTO, 0u, &x.cb), 0);
	assert_int_equal(relay_connect(x.s, sig, c, on_sig), 0);
	assert_int_equal(relay_invoke(&a->base, nested_fn, &x, NULL), 0);
	int v = 1;
	assert_int_equal(relay_emit(x.s, sig, &v), 0);
	assert_int_equal(atomic_load(&x.nested_done), 1);
	assert_int_equal(atomic_load(&x.disc_rc), 0);
	assert_int_equal(atomic_load(&x.conn_rc), 0);
	assert_int_equal(atomic_load(&ta.calls), 1);
	assert_true(atomic_load(&tb.calls) <= 1);
	assert_int_equal(atomic_load(&x.b_after_cut), 0);
	assert_int_equal(atomic_load(&tc.calls), 1);
	assert_int_equal(atomic_load(&td.calls), 0);
	/* the next emission: a (no more queued work), c, d; not b */
	assert_int_equal(relay_emit(x.s, sig, &v), 0);
	assert_int_equal(atomic_load(&ta.calls), 2);
	assert_int_equal(atomic_load(&tc.calls), 2);
	assert_int_equal(atomic_load(&td.calls), 1);
	assert_true(atomic_load(&tb.calls) <= 1);
	support_drain(10);
	recv_destroy(x.s);
	recv_destroy(a);
	recv_destroy(x.b);
	recv_destroy(c);
	recv_destroy(x.d);
	recv_destroy(o);
	g_nested = NULL;
}

/* A queued trigger runs inside relay_loop_run; its slot emits a signal
 * whose direct slots exit the loop and log: both run, the loop returns
 * the code. */
static void d9_on_exit(recv *self, const int *v)
{
	on_sig(self, v);
	assert_int_equal(relay_loop_exit(7), 0);
}

static void d9_on_trigger(recv *self)
{
	d9ctx *x = self->user;
	int v = 5;
	assert_int_equal(relay_emit(x->s, sig, &v), 0);
}

typedef struct watchdog {
	atomic_int stop;
	atomic_int fired;
	pthread_t th;
} watchdog;

static void *watchdog_main(void *arg)
{
	watchdog *w = arg;
	int64_t end = support_now_ms() + SUPPORT_TIMEOUT_MS;
	while (!atomic_load(&w->stop)) {
		if (support_now_ms() > end) {
			atomic_store(&w->fired, 1);
			(void)relay_main_exit(-999);
			break;
		}
		support_sleep_ms(5);
	}
	return NULL;
}

static void watchdog_start(watchdog *w)
{
	atomic_init(&w->stop, 0);
	atomic_init(&w->fired, 0);
	assert_int_equal(pthread_create(&w->th, NULL, watchdog_main, w), 0);
}

static void watchdog_stop(watchdog *w)
{
	atomic_store(&w->stop, 1);
	assert_int_equal(pthread_join(w->th, NULL), 0);
}

static void test_D9_quit_loop_during_emission(void **state)
{
	(void)state;
	tally ta = { 0 }, tb = { 0 }, ts = { 0 };
	d9ctx x = { 0 };
	x.s = recv_new(&ts, 0);
	recv *trig = recv_new(&ts, 9);
	trig->user = &x;
	recv *a = recv_new(&ta, 1);
	recv *b = recv_new(&tb, 2);
	assert_int_equal(relay_connect(x.s, sig, a, d9_on_exit), 0);
	assert_int_equal(relay_connect(x.s, sig, b, on_sig), 0);
	assert_int_equal(relay_connect_ex(trig, ping, trig, d9_on_trigger, RELAY_QUEUED, 0u, NULL), 0);
	assert_int_equal(relay_emit(trig, ping), 0);
	watchdog wd;
	watchdog_start(&wd);
	int rc = relay_loop_run();
	watchdog_stop(&wd);
	assert_int_equal(atomic_load(&wd.fired), 0);
	assert_int_equal(rc, 7);
	assert_int_equal(atomic_load(&ta.calls), 1);
	assert_int_equal(atomic_load(&tb.calls), 1);
	support_drain(10);
	recv_destroy(trig);
	recv_destroy(a);
	recv_destroy(b);
	recv_destroy(x.s);
}

/* The ready-made slots: delete_later and quit, connected to signals (one
 * with a payload the slot ignores). */
static void test_D9_ready_made_slots_delete_later_and_quit(void **state)
{
	(void)state;
	tally t = { 0 }, tw = { 0 };
	relay_thread *w = support_thread_start("d9-ready");
	recv *s = recv_new(&t, 0);
	recv *victim = recv_new(&t, 1);
	recv *rw = recv_in(w, &tw, 2);
	assert_int_equal(relay_connect(s, sig, &victim->base, relay_slot_delete_later), 0);
	assert_int_equal(relay_connect(s, sig, victim, on_sig), 0);
	int v = 1;
	assert_int_equal(relay_emit(s, sig, &v), 0);
	assert_int_equal(atomic_load(&t.calls), 1);      /* the emission went on */
	assert_int_equal(atomic_load(&t.finalized), 0);  /* deferred */
	assert_true(support_run_until_count(&t.finalized, 1, SUPPORT_TIMEOUT_MS));

	/* quit the worker through a signal; the handle lives in main, so the
	 * slot runs here, and the worker's loop ends. */
	assert_int_equal(relay_connect(s, ping, w, relay_slot_quit), 0);
	assert_int_equal(relay_connect(s, ping, rw, on_ping), 0);   /* queued */
	assert_int_equal(relay_object_delete_later(&rw->base), 0);
	assert_int_equal(relay_emit(s, ping), 0);
	assert_int_equal(relay_thread_wait(w, SUPPORT_TIMEOUT_MS), 0);
	assert_true(relay_thread_is_finished(w));
	assert_true(atomic_load(&tw.calls) <= 1);
	assert_int_equal(relay_thread_destroy(w), 0);
	recv_destroy(s);
}

/* ======================================================================
 * relay_sender, block_signals, disconnect_signal / _receiver, misc
 * ====================================================================== */

static _Atomic(relay_object *) g_outer_before, g_outer_after, g_inner;

static void on_sig_nested_sender(recv *self, const int *v)
{
	recv *s2 = self->user;
	(void)v;
	atomic_store(&g_outer_before, relay_sender());
	assert_int_equal(relay_emit(s2, ping), 0);
	atomic_store(&g_outer_after, relay_sender());
}

static void on_ping_inner_sender(recv *self)
{
	(void)self;
	atomic_store(&g_inner, relay_sender());
}

static void test_sender_inside_direct_and_queued_slots(void **state)
{
	(void)state;
	tally t = { 0 }, tw = { 0 };
	assert_null(relay_sender());
	relay_thread *w = support_thread_start("sender");
	recv *s = recv_new(&t, 0);
	recv *r = recv_new(&t, 1);
	recv *rw = recv_in(w, &tw, 2);

	/* direct */
	assert_int_equal(relay_connect_ex(s, sig, r, on_sig, RELAY_DIRECT, 0u, NULL), 0);
	int v = 1;
	assert_int_equal(relay_emit(s, sig, &v), 0);
	assert_ptr_equal(atomic_load(&t.sender), &s->base);
	assert_null(relay_sender());

	/* queued to own thread */
	atomic_store(&t.sender, NULL);
	assert_int_equal(relay_connect_ex(s, other, r, on_sig, RELAY_QUEUED, 0u, NULL), 0);
	assert_int_equal(relay_emit(s, other, &v), 0);
	assert_true(support_run_until_count(&t.calls, 2, SUPPORT_TIMEOUT_MS));
	assert_ptr_equal(atomic_load(&t.sender), &s->base);
	assert_null(relay_sender());

	/* queued to another thread */
	assert_int_equal(relay_connect(s, ping, rw, on_ping), 0);
	assert_int_equal(relay_emit(s, ping), 0);
	assert_true(support_wait_count(&tw.calls, 1, SUPPORT_TIMEOUT_MS));
	assert_ptr_equal(atomic_load(&tw.sender), &s->base);

	/* nested: inner slot sees the inner sender, then the outer again */
	recv *s1 = recv_new(&t, 3), *s2 = recv_new(&t, 4);
	recv *n = recv_new(&t, 5);
	n->user = s2;
	assert_int_equal(relay_connect(s1, sig, n, on_sig_nested_sender), 0);
	assert_int_equal(relay_connect(s2, ping, n, on_ping_inner_sender), 0);
	assert_int_equal(relay_emit(s1, sig, &v), 0);
	assert_ptr_equal(atomic_load(&g_outer_before), &s1->base);
	assert_ptr_equal(atomic_load(&g_inner), &s2->base);
	assert_ptr_equal(atomic_load(&g_outer_after), &s1->base);
	assert_null(relay_sender());

	assert_int_equal(relay_object_delete_later(&rw->base), 0);
	support_thread_stop(w);
	recv_destroy(s1);
	recv_destroy(s2);
	recv_destroy(n);
	recv_destroy(s);
	recv_destroy(r);
}

static atomic_long g_destroyed_seen;
static void on_destroyed_count(void *data)
{
	(void)data;
	atomic_fetch_add(&g_destroyed_seen, 1);
}

static void test_block_signals(void **state)
{
	(void)state;
	tally t = { 0 };
	recv *s = recv_new(&t, 0), *r = recv_new(&t, 1);
	assert_int_equal(relay_connect(s, sig, r, on_sig), 0);
	assert_int_equal(relay_connect_ex(s, ping, r, on_ping, RELAY_QUEUED, 0u, NULL), 0);
	bool was = true;
	assert_int_equal(relay_object_block_signals(&s->base, true, &was), 0);
	assert_false(was);
	int v = 1;
	assert_int_equal(relay_emit(s, sig, &v), 0);
	assert_int_equal(relay_emit(s, ping), 0);
	support_drain(10);
	assert_int_equal(atomic_load(&t.calls), 0);
	assert_int_equal(relay_object_block_signals(&s->base, true, &was), 0);
	assert_true(was);
	assert_int_equal(relay_object_block_signals(&s->base, false, &was), 0);
	assert_true(was);
	assert_int_equal(relay_emit(s, sig, &v), 0);
	assert_int_equal(atomic_load(&t.calls), 1);
	assert_int_equal(relay_emit(s, ping), 0);
	assert_true(support_run_until_count(&t.calls, 2, SUPPORT_TIMEOUT_MS));
	assert_int_equal(relay_object_block_signals(&s->base, false, NULL), 0);

	/* destroyed is still emitted while blocked */
	atomic_store(&g_destroyed_seen, 0);
	assert_int_equal(relay_connect_func(&s->base, destroyed, on_destroyed_count, NULL), 0);
	assert_int_equal(relay_object_block_signals(&s->base, true, NULL), 0);
	recv_destroy(s);
	assert_int_equal(atomic_load(&g_destroyed_seen), 1);
	recv_destroy(r);
}

static void test_disconnect_signal_only_that_signal(void **state)
{
	(void)state;
	tally ta = { 0 }, tb = { 0 };
	recv *s = recv_new(&ta, 0);
	recv *a = recv_new(&ta, 1), *b = recv_new(&tb, 2);
	relay_connection c1 = 0, c2 = 0, c3 = 0;
	assert_int_equal(relay_connect_ex(s, sig, a, on_sig, RELAY_AUTO, 0u, &c1), 0);
	assert_int_equal(relay_connect_ex(s, sig, b, on_sig, RELAY_QUEUED, 0u, &c2), 0);
	assert_int_equal(relay_connect_ex(s, other, b, on_sig, RELAY_AUTO, 0u, &c3), 0);
	int v = 1;
	assert_int_equal(relay_emit(s, sig, &v), 0);   /* b's queued one pending */
	assert_int_equal(relay_disconnect_signal(s, sig), 0);
	support_drain(10);
	assert_int_equal(atomic_load(&ta.calls), 1);
	assert_int_equal(atomic_load(&tb.calls), 0);   /* dropped (D6) */
	assert_int_equal(relay_emit(s, sig, &v), 0);
	support_drain(10);
	assert_int_equal(atomic_load(&ta.calls), 1);
	assert_int_equal(atomic_load(&tb.calls), 0);
	assert_int_equal(relay_emit(s, other, &v), 0);
	assert_int_equal(atomic_load(&tb.calls), 1);
	assert_int_equal(relay_disconnect(c1), -ENOENT);
	assert_int_equal(relay_disconnect(c2), -ENOENT);
	assert_int_equal(relay_disconnect(c3), 0);
	recv_destroy(s);
	recv_destroy(a);
	recv_destroy(b);
}

static void test_disconnect_receiver_all_senders(void **state)
{
	(void)state;
	tally ta = { 0 }, tb = { 0 };
	fnrec f = { 0 };
	recv *s1 = recv_new(&ta, 0), *s2 = recv_new(&ta, 1);
	recv *a = recv_new(&ta, 2), *b = recv_new(&tb, 3);
	relay_connection c1 = 0, c2 = 0, c3 = 0, c4 = 0;
	assert_int_equal(relay_connect_ex(s1, sig, a, on_sig, RELAY_AUTO, 0u, &c1), 0);
	assert_int_equal(relay_connect_ex(s2, ping, a, on_ping, RELAY_AUTO, 0u, &c2), 0);
	assert_int_equal(relay_connect_func_ex(s2, sig, a, fn_rec, &f, RELAY_AUTO, 0u, &c3), 0);
	assert_int_equal(relay_connect_ex(s1, sig, b, on_sig, RELAY_AUTO, 0u, &c4), 0);
	assert_int_equal(relay_disconnect_receiver(&a->base), 0);
	int v = 1;
	assert_int_equal(relay_emit(s1, sig, &v), 0);
	assert_int_equal(relay_emit(s2, ping), 0);
	assert_int_equal(relay_emit(s2, sig, &v), 0);
	assert_int_equal(atomic_load(&ta.calls), 0);
	assert_int_equal(atomic_load(&f.calls), 0);
	assert_int_equal(atomic_load(&tb.calls), 1);
	assert_int_equal(relay_disconnect(c1), -ENOENT);
	assert_int_equal(relay_disconnect(c2), -ENOENT);
	assert_int_equal(relay_disconnect(c3), -ENOENT);
	assert_int_equal(relay_disconnect(c4), 0);
	/* a can be connected again afterwards */
	assert_int_equal(relay_connect(s1, sig, a, on_sig), 0);
	assert_int_equal(relay_emit(s1, sig, &v), 0);
	assert_int_equal(atomic_load(&ta.calls), 1);
	recv_destroy(s1);
	recv_destroy(s2);
	recv_destroy(a);
	recv_destroy(b);
}

static void test_emit_without_connections_returns_0(void **state)
{
	(void)state;
	tally t = { 0 };
	recv *s = recv_new(&t, 0);
	int v = 1;
	assert_int_equal(relay_emit(s, sig, &v), 0);
	assert_int_equal(relay_emit(s, ping), 0);
	blob b = blob_make(1);
	assert_int_equal(relay_emit(s, blobsig, &b), 0);
	/* and after the last connection went away */
	relay_connection c = 0;
	assert_int_equal(relay_connect_ex(s, sig, s, on_sig, RELAY_AUTO, 0u, &c), 0);
	assert_int_equal(relay_disconnect(c), 0);
	assert_int_equal(relay_emit(s, sig, &v), 0);
	assert_int_equal(atomic_load(&t.calls), 0);
	recv_destroy(s);
}

static void test_null_arguments_einval(void **state)
{
	(void)state;
	tally t = { 0 };
	recv *s = recv_new(&t, 0), *r = recv_new(&t, 1);
	recv *nullr = NULL;
	void (*nullslot)(recv *, const int *) = NULL;
	void (*nullfn)(void *, const int *) = NULL;

	assert_int_equal(relay_connect(s, sig, nullr, on_sig), -EINVAL);
	assert_int_equal(relay_connect(s, sig, r, nullslot), -EINVAL);
	assert_int_equal(relay_connect_func(s, sig, nullfn, NULL), -EINVAL);
	assert_int_equal(relay__connect(NULL, &s->base, sizeof(int), _Alignof(int), &r->base,
					(relay_slot_fn)on_sig, NULL, 2, RELAY_AUTO, 0u, NULL), -EINVAL);
	assert_int_equal(relay__connect(&s->sig.relay__s, NULL, sizeof(int), _Alignof(int), &r->base,
					(relay_slot_fn)on_sig, NULL, 2, RELAY_AUTO, 0u, NULL), -EINVAL);
	assert_int_equal(relay__emit(NULL, NULL, 0, NULL), -EINVAL);
	assert_int_equal(relay__disconnect_signal(NULL, NULL), -EINVAL);
	assert_int_equal(relay__signal_set_ops(NULL, NULL, &msg_ops), -EINVAL);
	assert_int_equal(relay_disconnect_receiver(NULL), -EINVAL);
	assert_int_equal(relay_object_block_signals(NULL, true, NULL), -EINVAL);
	int rc = relay_disconnect(0);
	assert_true(rc == -ENOENT || rc == -EINVAL);

	/* A connected payload signal emitted with a NULL payload. */
	assert_int_equal(relay_connect_ex(s, sig, r, on_sig, RELAY_QUEUED, 0u, NULL), 0);
	const int *nullv = NULL;
	assert_int_equal(relay_emit(s, sig, nullv), -EINVAL);
	support_drain(10);
	assert_int_equal(atomic_load(&t.calls), 0);
	recv_destroy(s);
	recv_destroy(r);
}

/* ---- the emit cache under nesting ----
 * Two signals sharing one slot of the thread's emit cache, emitted by
 * turns inside a slot: each emission misses the cache while an outer
 * emission runs. The cache once buried the snapshot it evicted in a list
 * linked through the snapshot itself, so the second burial of one
 * snapshot made a cycle and the list's release read freed memory (ASan;
 * found by the fuzzer). Now a nested miss does not evict. */
#define CACHE_SLOT_OF(sig) \
	((((uintptr_t)(sig) >> 4) ^ ((uintptr_t)(sig) >> 10)) & (RELAY__CACHE_SLOTS - 1))

typedef struct pinger {
	relay_object base;
	RELAY_SIGNAL(ping);
	long got;
	struct pinger *a, *b;
} pinger;

static const relay_class pinger_class = { .name = "pinger", .size = sizeof(pinger) };

static void pinger_count(pinger *self)
{
	self->got++;
}

static void pinger_by_turns(pinger *self)
{
	for (int i = 0; i < 8; i++) {
		assert_int_equal(relay_emit(self->a, ping), 0);
		assert_int_equal(relay_emit(self->b, ping), 0);
	}
}

static void test_D3_emit_cache_slot_shared_inside_slot(void **state)
{
	(void)state;
	enum { N = 64 };
	pinger *p[N];
	int first = -1, second = -1;
	for (int i = 0; i < N; i++) {
		assert_int_equal(relay_object_new(&p[i], &pinger_class, NULL), 0);
		for (int j = 0; j < i && first < 0; j++)
			if (CACHE_SLOT_OF(&p[i]->ping.relay__s) == CACHE_SLOT_OF(&p[j]->ping.relay__s)) {
				first = j;
				second = i;
			}
	}
	assert_true(first >= 0);
	pinger *outer = p[first == 0 && second == 1 ? 2 : (first == 0 ? 1 : 0)];
	if (outer == p[second])
		outer = p[N - 1];
	outer->a = p[first];
	outer->b = p[second];
	assert_int_equal(relay_connect(p[first], ping, p[first], pinger_count), 0);
	assert_int_equal(relay_connect(p[second], ping, p[second], pinger_count), 0);
	assert_int_equal(relay_connect(outer, ping, outer, pinger_by_turns), 0);
	for (int round = 0; round < 4; round++)
		assert_int_equal(relay_emit(outer, ping), 0);
	assert_int_equal(p[first]->got, 32);
	assert_int_equal(p[second]->got, 32);
	for (int i = 0; i < N; i++)
		assert_int_equal(relay_object_destroy(p[i]), 0);
	assert_int_equal(relay_release_caches(), 0);
}

int main(int argc, char **argv)
{
	support_set_args(argc, argv);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_D1_auto_direct_same_thread, check_worker_errors),
		cmocka_unit_test_teardown(test_D1_auto_queued_to_other_thread, check_worker_errors),
		cmocka_unit_test_teardown(test_D1_auto_follows_receiver_moved_after_connect, check_worker_errors),
		cmocka_unit_test_teardown(test_D1_auto_ignores_sender_thread, check_worker_errors),
		cmocka_unit_test_teardown(test_D1_auto_direct_in_worker_queued_to_main, check_worker_errors),
		cmocka_unit_test_teardown(test_D1_auto_follows_child_moved_with_parent, check_worker_errors),
		cmocka_unit_test_teardown(test_D1_queued_before_thread_starts_delivered_after, check_worker_errors),
		cmocka_unit_test_teardown(test_D1_forced_direct_runs_in_emitter, check_worker_errors),
		cmocka_unit_test_teardown(test_D1_forced_queued_same_thread, check_worker_errors),
		cmocka_unit_test_teardown(test_D1_forced_blocking_waits_for_slot, check_worker_errors),
		cmocka_unit_test_teardown(test_D1_unique_refuses_duplicate, check_worker_errors),
		cmocka_unit_test_teardown(test_D1_single_shot_fires_once, check_worker_errors),
		cmocka_unit_test_teardown(test_D1_single_shot_queued_fires_once, check_worker_errors),
		cmocka_unit_test_teardown(test_D1_single_shot_taken_before_slot_runs, check_worker_errors),
		cmocka_unit_test_teardown(test_D1_single_shot_concurrent_emitters_once, check_worker_errors),
		cmocka_unit_test_teardown(test_D1_single_shot_connect_while_emitting, check_worker_errors),
		cmocka_unit_test_teardown(test_D1_bad_connection_type_einval, check_worker_errors),
		cmocka_unit_test_teardown(test_D8_blocking_emit_own_thread_refused, check_worker_errors),
		cmocka_unit_test_teardown(test_D8_blocking_emit_thread_not_started_refused, check_worker_errors),
		cmocka_unit_test_teardown(test_D8_blocking_emit_thread_finished_refused, check_worker_errors),
		cmocka_unit_test_teardown(test_D8_blocking_error_other_connections_still_called, check_worker_errors),
		cmocka_unit_test_teardown(test_D2_func_without_context_runs_in_emitter, check_worker_errors),
		cmocka_unit_test_teardown(test_D2_func_with_context_runs_in_context_thread, check_worker_errors),
		cmocka_unit_test_teardown(test_D2_func_connection_dies_with_context, check_worker_errors),
		cmocka_unit_test_teardown(test_D2_func_follows_moved_context, check_worker_errors),
		cmocka_unit_test_teardown(test_D2_func_context_destroyed_drops_queued, check_worker_errors),
		cmocka_unit_test_teardown(test_D3_payload_copied_at_emit, check_worker_errors),
		cmocka_unit_test_teardown(test_D3_struct_payload_copied_cross_thread, check_worker_errors),
		cmocka_unit_test_teardown(test_D3_slot_ignoring_payload, check_worker_errors),
		cmocka_unit_test_teardown(test_D3_copy_hooks_delivered_each_copy_freed_once, check_worker_errors),
		cmocka_unit_test_teardown(test_D3_direct_passes_emitter_value_no_copy, check_worker_errors),
		cmocka_unit_test_teardown(test_D3_copy_hooks_queued_slot_sees_deep_copy, check_worker_errors),
		cmocka_unit_test_teardown(test_D3_copy_hooks_dropped_each_copy_freed_once, check_worker_errors),
		cmocka_unit_test_teardown(test_D3_copy_hooks_thread_ends_with_queued, check_worker_errors),
		cmocka_unit_test_teardown(test_D3_copy_failure_enomem_skips_and_counts_dropped, check_worker_errors),
		cmocka_unit_test_teardown(test_D3_copy_failure_other_connections_still_served, check_worker_errors),
		cmocka_unit_test_teardown(test_D3_copy_hooks_blocking, check_worker_errors),
		cmocka_unit_test_teardown(test_D4_order_main_to_worker_100k, check_worker_errors),
		cmocka_unit_test_teardown(test_D4_order_per_emitting_thread_to_main, check_worker_errors),
		cmocka_unit_test_teardown(test_D4_emitters_exit_before_delivery, check_worker_errors),
		cmocka_unit_test_teardown(test_D3_emitters_exit_thread_stops_copies_freed, check_worker_errors),
		cmocka_unit_test_teardown(test_D4_posted_during_delivery_waits_next_pass, check_worker_errors),
		cmocka_unit_test_teardown(test_D4_self_posting_flood_does_not_starve_timer, check_worker_errors),
		cmocka_unit_test_teardown(test_D5_queued_to_own_thread_not_inside_emit, check_worker_errors),
		cmocka_unit_test_teardown(test_D6_disconnect_drops_queued, check_worker_errors),
		cmocka_unit_test_teardown(test_D6_disconnect_drops_queued_same_thread, check_worker_errors),
		cmocka_unit_test_teardown(test_D6_disconnect_receiver_drops_queued, check_worker_errors),
		cmocka_unit_test_teardown(test_D6_disconnect_in_slot_drops_rest_of_batch, check_worker_errors),
		cmocka_unit_test_teardown(test_D7_receiver_destroyed_mid_batch, check_worker_errors),
		cmocka_unit_test_teardown(test_D7_receiver_destroyed_connections_gone, check_worker_errors),
		cmocka_unit_test_teardown(test_D7_receiver_destroyed_in_its_thread_drops_queued, check_worker_errors),
		cmocka_unit_test_teardown(test_D7_sender_destroyed_queued_still_arrive, check_worker_errors),
		cmocka_unit_test_teardown(test_D7_emit_to_detached_receiver_dropped, check_worker_errors),
		cmocka_unit_test_teardown(test_D7_connect_to_receiver_being_destroyed_refused, check_worker_errors),
		cmocka_unit_test_teardown(test_D7_connect_from_sender_being_destroyed, check_worker_errors),
		cmocka_unit_test_teardown(test_D9_connect_during_emission_not_called, check_worker_errors),
		cmocka_unit_test_teardown(test_D9_disconnect_during_emission_skips, check_worker_errors),
		cmocka_unit_test_teardown(test_D9_disconnect_signal_during_emission, check_worker_errors),
		cmocka_unit_test_teardown(test_D9_emit_during_emission, check_worker_errors),
		cmocka_unit_test_teardown(test_D9_delete_later_own_receiver_during_emission, check_worker_errors),
		cmocka_unit_test_teardown(test_D9_receiver_destroyed_during_emission_skipped, check_worker_errors),
		cmocka_unit_test_teardown(test_D9_sender_destroyed_by_slot_stops_emission,
					  check_worker_errors),
		cmocka_unit_test_teardown(test_D9_sender_destroyed_during_its_emission, check_worker_errors),
		cmocka_unit_test_teardown(test_D9_nested_pass_in_slot_during_emission, check_worker_errors),
		cmocka_unit_test_teardown(test_D9_idle_pass_in_slot_keeps_emission_snapshot,
					  check_worker_errors),
		cmocka_unit_test_teardown(test_D9_quit_loop_during_emission, check_worker_errors),
		cmocka_unit_test_teardown(test_D9_ready_made_slots_delete_later_and_quit, check_worker_errors),
		cmocka_unit_test_teardown(test_sender_inside_direct_and_queued_slots, check_worker_errors),
		cmocka_unit_test_teardown(test_block_signals, check_worker_errors),
		cmocka_unit_test_teardown(test_disconnect_signal_only_that_signal, check_worker_errors),
		cmocka_unit_test_teardown(test_disconnect_receiver_all_senders, check_worker_errors),
		cmocka_unit_test_teardown(test_emit_without_connections_returns_0, check_worker_errors),
		cmocka_unit_test_teardown(test_null_arguments_einval, check_worker_errors),
		cmocka_unit_test_teardown(test_D3_emit_cache_slot_shared_inside_slot,
					  check_worker_errors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
