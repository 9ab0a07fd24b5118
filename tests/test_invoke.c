/*
 * test_invoke.c - relay_invoke and relay_invoke_blocking (D5, D7, D8),
 * plus blocking emits released when their receiver goes away (D7).
 *
 * Deterministic constructions only: a worker is kept busy in a slot that
 * waits on a flag, so that what is queued to it provably has not run yet.
 * Nothing asserts on timing.
 */
#include "support.h"

/* Checks made in helper threads (never a cmocka assert there: it would
 * longjmp across threads); each test's teardown asserts none failed. */

typedef struct obj {
	relay_object base;
	RELAY_SIGNAL(sig, int);
	atomic_long *finalized;
} obj;

static void obj_finalize(relay_object *o)
{
	obj *x = (obj *)o;
	if (x->finalized)
		atomic_fetch_add(x->finalized, 1);
}

static const relay_class obj_class = { .name = "obj", .finalize = obj_finalize };

static obj *obj_new(atomic_long *finalized)
{
	obj *o = NULL;
	assert_int_equal(relay_object_new(&o, &obj_class, NULL), 0);
	o->finalized = finalized;
	return o;
}

static obj *obj_in(relay_thread *t, atomic_long *finalized)
{
	obj *o = obj_new(finalized);
	assert_int_equal(relay_object_move_to_thread(&o->base, t), 0);
	return o;
}

/* What an invoked function records. */
typedef struct rec {
	atomic_long runs;
	atomic_long frees;
	_Atomic(relay_thread *) thread;
	atomic_int value;
	atomic_long order_errors;
	atomic_int next;
	int seq;          /* for ordered invokes */
} rec;

static void fn_rec(void *data)
{
	rec *r = data;
	atomic_store(&r->thread, relay_thread_current());
	atomic_fetch_add(&r->runs, 1);
}

static void free_rec(void *data)
{
	rec *r = data;
	atomic_fetch_add(&r->frees, 1);
}

static int fn_ret42(void *data)
{
	rec *r = data;
	atomic_store(&r->thread, relay_thread_current());
	atomic_fetch_add(&r->runs, 1);
	atomic_store(&r->value, 1234);
	return 42;
}

/* ----------------------------------------------------------------------
 * A hold: relay_invoke a function into a worker that waits until opened,
 * then runs an optional callback there.
 * ---------------------------------------------------------------------- */

typedef struct hold {
	atomic_int entered;
	atomic_int go;
	atomic_int left;
	void (*then)(struct hold *h);
	void *arg;
	relay_thread *t;
	uint64_t posted_at_entry;
	int result;
} hold;

static void hold_fn(void *data)
{
	hold *h = data;
	relay_loop_stats st;
	if (relay_thread_stats(relay_thread_current(), &st) == 0)
		h->posted_at_entry = st.posted;
	atomic_store(&h->entered, 1);
	(void)support_wait_flag(&h->go, 1, SUPPORT_TIMEOUT_MS);
	if (h->then)
		h->then(h);
	atomic_store(&h->left, 1);
}

/* Make ctx's thread busy in hold_fn (returns once it is). */
static void hold_close(hold *h, relay_object *ctx, void (*then)(hold *), void *arg)
{
	memset(h, 0, sizeof *h);
	h->then = then;
	h->arg = arg;
	h->t = relay_object_thread(ctx);
	assert_int_equal(relay_invoke(ctx, hold_fn, h, NULL), 0);
	assert_true(support_wait_flag(&h->entered, 1, SUPPORT_TIMEOUT_MS));
}

/* In the held thread: wait until someone else posted n more events to it
 * since the hold began (for example a blocking call now waiting). */
static void hold_wait_posted(hold *h, uint64_t n)
{
	int64_t end = support_now_ms() + SUPPORT_TIMEOUT_MS;
	relay_loop_stats st;
	for (;;) {
		WCHECK(relay_thread_stats(h->t, &st) == 0);
		if (st.posted >= h->posted_at_entry + n)
			return;
		if (support_now_ms() > end)
			return;   /* safety net: the test's assertions then fail */
		support_sleep_ms(1);
	}
}

/* ======================================================================
 * relay_invoke (D5)
 * ====================================================================== */

static void test_D5_invoke_runs_in_context_thread(void **state)
{
	(void)state;
	atomic_long fin = 0;
	relay_thread *w = support_thread_start("inv-w");
	obj *ctx = obj_in(w, &fin);
	rec r = { 0 };
	assert_int_equal(relay_invoke(&ctx->base, fn_rec, &r, free_rec), 0);
	assert_true(support_wait_count(&r.runs, 1, SUPPORT_TIMEOUT_MS));
	assert_ptr_equal(atomic_load(&r.thread), w);
	assert_int_equal(relay_object_delete_later(&ctx->base), 0);
	support_thread_stop(w);
	assert_int_equal(atomic_load(&fin), 1);
	assert_int_equal(atomic_load(&r.runs), 1);
	assert_int_equal(atomic_load(&r.frees), 0);   /* ran: not freed */
}

static void test_D5_invoke_never_inside_call_same_thread(void **state)
{
	(void)state;
	obj *ctx = obj_new(NULL);
	rec r = { 0 };
	assert_int_equal(relay_invoke(&ctx->base, fn_rec, &r, free_rec), 0);
	assert_int_equal(atomic_load(&r.runs), 0);
	assert_true(support_run_until_count(&r.runs, 1, SUPPORT_TIMEOUT_MS));
	assert_ptr_equal(atomic_load(&r.thread), relay_thread_main());
	support_drain(10);
	assert_int_equal(atomic_load(&r.runs), 1);
	assert_int_equal(atomic_load(&r.frees), 0);
	assert_int_equal(relay_object_destroy(&ctx->base), 0);
	assert_int_equal(atomic_load(&r.frees), 0);
}

/* Invoked from inside an invoked function, to the same thread: runs on
 * the next pass, not in the current one (D4/D5). */
typedef struct reinv {
	obj *ctx;
	atomic_long runs;
} reinv;

static void fn_reinvoke(void *data)
{
	reinv *x = data;
	if (atomic_fetch_add(&x->runs, 1) < 2)
		assert_int_equal(relay_invoke(&x->ctx->base, fn_reinvoke, x, NULL), 0);
}

static void test_D5_invoke_from_invoked_runs_next_pass(void **state)
{
	(void)state;
	obj *ctx = obj_new(NULL);
	support_drain(100);
	reinv x = { ctx, 0 };
	assert_int_equal(relay_invoke(&ctx->base, fn_reinvoke, &x, NULL), 0);
	assert_int_equal(atomic_load(&x.runs), 0);
	assert_true(relay_loop_run_once(0) >= 1);
	assert_int_equal(atomic_load(&x.runs), 1);
	assert_true(relay_loop_run_once(0) >= 1);
	assert_int_equal(atomic_load(&x.runs), 2);
	assert_true(relay_loop_run_once(0) >= 1);
	assert_int_equal(atomic_load(&x.runs), 3);
	assert_int_equal(relay_loop_run_once(0), 0);
	assert_int_equal(atomic_load(&x.runs), 3);
	assert_int_equal(relay_object_destroy(&ctx->base), 0);
}

/* Order of invokes from one thread to one thread (D4). */
typedef struct ordered {
	atomic_int next;
	atomic_long errors;
	atomic_long runs;
} ordered;

typedef struct ordarg {
	ordered *o;
	int seq;
} ordarg;

static void fn_ordered(void *data)
{
	ordarg *a = data;
	if (atomic_load(&a->o->next) != a->seq)
		atomic_fetch_add(&a->o->errors, 1);
	atomic_store(&a->o->next, a->seq + 1);
	atomic_fetch_add(&a->o->runs, 1);
}

static void free_ordarg(void *data)
{
	free(data);
}

static void fn_ordered_and_free(void *data)
{
	fn_ordered(data);
	free(data);
}

static void test_D4_invoke_order_to_worker(void **state)
{
	(void)state;
	enum { N = 20000 };
	relay_thread *w = support_thread_start("inv-order");
	obj *ctx = obj_in(w, NULL);
	ordered o = { 0 };
	for (int i = 0; i < N; i++) {
		ordarg *a = malloc(sizeof *a);
		assert_non_null(a);
		a->o = &o;
		a->seq = i;
		assert_int_equal(relay_invoke(&ctx->base, fn_ordered_and_free, a, free_ordarg), 0);
	}
	assert_true(support_wait_count(&o.runs, N, 60000));
	assert_int_equal(atomic_load(&o.errors), 0);
	assert_int_equal(relay_object_delete_later(&ctx->base), 0);
	support_thread_stop(w);
}

/* relay_invoke to a thread that has not started: runs once it does. */
static void test_D5_invoke_before_thread_starts_runs_after(void **state)
{
	(void)state;
	relay_thread *w = NULL;
	assert_int_equal(relay_thread_create("inv-late", NULL, &w), 0);
	obj *ctx = obj_in(w, NULL);
	rec r = { 0 };
	assert_int_equal(relay_invoke(&ctx->base, fn_rec, &r, free_rec), 0);
	assert_int_equal(atomic_load(&r.runs), 0);
	assert_int_equal(relay_thread_start(w), 0);
	assert_true(support_wait_count(&r.runs, 1, SUPPORT_TIMEOUT_MS));
	assert_ptr_equal(atomic_load(&r.thread), w);
	assert_int_equal(relay_object_delete_later(&ctx->base), 0);
	support_thread_stop(w);
	assert_int_equal(atomic_load(&r.frees), 0);
}

/* Signals and invokes from one thread to one thread share one order. */
typedef struct mixlog {
	atomic_int next;
	atomic_long errors;
	atomic_long n;
} mixlog;

static mixlog g_mix;

static void mix_check(int seq)
{
	if (atomic_load(&g_mix.next) != seq)
		atomic_fetch_add(&g_mix.errors, 1);
	atomic_store(&g_mix.next, seq + 1);
	atomic_fetch_add(&g_mix.n, 1);
}

static void on_sig_mix(obj *self, const int *v)
{
	(void)self;
	mix_check(*v);
}

static void fn_mix(void *data)
{
	mix_check((int)(intptr_t)data);
}

static void test_D4_order_signals_and_invokes_mixed(void **state)
{
	(void)state;
	enum { N = 20000 };
	memset(&g_mix, 0, sizeof g_mix);
	relay_thread *w = support_thread_start("inv-mix");
	obj *s = obj_new(NULL);
	obj *r = obj_in(w, NULL);
	assert_int_equal(relay_connect(s, sig, r, on_sig_mix), 0);
	for (int i = 0; i < N; i++) {
		if (i % 3 == 1)
			assert_int_equal(relay_invoke(&r->base, fn_mix, (void *)(intptr_t)i, NULL), 0);
		else
			assert_int_equal(relay_emit(s, sig, &i), 0);
	}
	assert_true(support_wait_count(&g_mix.n, N, 60000));
	assert_int_equal(atomic_load(&g_mix.errors), 0);
	assert_int_equal(relay_object_delete_later(&r->base), 0);
	support_thread_stop(w);
	assert_int_equal(relay_object_destroy(&s->base), 0);
}

/* A queued emit, then a blocking one to the same thread: when the
 * blocking emit returns, the queued slot has run (same order). */
static atomic_long g_q_calls;
static atomic_long g_q_seen_by_blocking;
static void on_sig_queued_count(obj *self, const int *v)
{
	(void)self;
	(void)v;
	atomic_fetch_add(&g_q_calls, 1);
}

static void on_sig_blocking_sees(obj *self, const int *v)
{
	(void)self;
	(void)v;
	atomic_store(&g_q_seen_by_blocking, atomic_load(&g_q_calls));
}

typedef struct sndpair {
	relay_object base;
	RELAY_SIGNAL(q, int);
	RELAY_SIGNAL(b, int);
} sndpair;

static void test_D4_queued_then_blocking_in_order(void **state)
{
	(void)state;
	static const relay_class sp_class = { .name = "sndpair" };
	atomic_store(&g_q_calls, 0);
	relay_thread *w = support_thread_start("inv-qb");
	sndpair *s = NULL;
	assert_int_equal(relay_object_new(&s, &sp_class, NULL), 0);
	obj *r = obj_in(w, NULL);
	assert_int_equal(relay_connect(s, q, r, on_sig_queued_count), 0);
	assert_int_equal(relay_connect_ex(s, b, r, on_sig_blocking_sees, RELAY_BLOCKING, 0u, NULL), 0);
	for (int round = 1; round <= 50; round++) {
		for (int i = 0; i < 10; i++)
			assert_int_equal(relay_emit(s, q, &i), 0);
		assert_int_equal(relay_emit(s, b, &round), 0);
		assert_int_equal(atomic_load(&g_q_seen_by_blocking), round * 10);
	}
	assert_int_equal(relay_object_delete_later(&r->base), 0);
	support_thread_stop(w);
	assert_int_equal(relay_object_destroy(&s->base), 0);
}

static void test_D7_invoke_context_destroyed_frees_data(void **state)
{
	(void)state;
	obj *ctx = obj_new(NULL);
	rec r = { 0 };
	assert_int_equal(relay_invoke(&ctx->base, fn_rec, &r, free_rec), 0);
	assert_int_equal(relay_invoke(&ctx->base, fn_rec, &r, free_rec), 0);
	assert_int_equal(relay_invoke(&ctx->base, fn_rec, &r, NULL), 0);   /* no hook: fine */
	assert_int_equal(relay_object_destroy(&ctx->base), 0);
	support_drain(10);
	assert_int_equal(atomic_load(&r.runs), 0);
	assert_int_equal(atomic_load(&r.frees), 2);
}

static void hold_destroy_arg(hold *h)
{
	WCHECK(relay_object_destroy((relay_object *)h->arg) == 0);
}

static void test_D7_invoke_context_destroyed_in_its_thread_frees_data(void **state)
{
	(void)state;
	atomic_long fin = 0;
	relay_thread *w = support_thread_start("inv-d7");
	obj *keeper = obj_in(w, NULL);
	obj *ctx = obj_in(w, &fin);
	rec r = { 0 };
	hold h;
	hold_close(&h, &keeper->base, hold_destroy_arg, &ctx->base);
	assert_int_equal(relay_invoke(&ctx->base, fn_rec, &r, free_rec), 0);
	assert_int_equal(relay_invoke(&ctx->base, fn_rec, &r, free_rec), 0);
	atomic_store(&h.go, 1);
	/* FIFO sync: a later invoke to the keeper ran => earlier ones handled */
	rec sync = { 0 };
	assert_int_equal(relay_invoke(&keeper->base, fn_rec, &sync, NULL), 0);
	assert_true(support_wait_count(&sync.runs, 1, SUPPORT_TIMEOUT_MS));
	assert_int_equal(atomic_load(&fin), 1);
	assert_int_equal(atomic_load(&r.runs), 0);
	assert_int_equal(atomic_load(&r.frees), 2);
	assert_int_equal(relay_object_delete_later(&keeper->base), 0);
	support_thread_stop(w);
	assert_int_equal(atomic_load(&r.frees), 2);
}

/* Queued to a thread that ends before running it: data freed, fn not run. */
static void test_D7_invoke_thread_ends_frees_data(void **state)
{
	(void)state;
	relay_thread *w = support_thread_start("inv-end");
	obj *keeper = obj_in(w, NULL);
	rec r = { 0 };
	hold h;
	hold_close(&h, &keeper->base, NULL, NULL);
	assert_int_equal(relay_thread_quit(w), 0);
	assert_int_equal(relay_invoke(&keeper->base, fn_rec, &r, free_rec), 0);
	assert_int_equal(relay_object_delete_later(&keeper->base), 0);
	atomic_store(&h.go, 1);
	assert_int_equal(relay_thread_wait(w, SUPPORT_TIMEOUT_MS), 0);
	/* Either ran (then not freed) or dropped (then freed), exactly once. */
	assert_int_equal(atomic_load(&r.runs) + atomic_load(&r.frees), 1);
	assert_int_equal(relay_thread_destroy(w), 0);
}

static void test_invoke_null_arguments_einval(void **state)
{
	(void)state;
	obj *ctx = obj_new(NULL);
	rec r = { 0 };
	assert_int_equal(relay_invoke(NULL, fn_rec, &r, free_rec), -EINVAL);
	assert_int_equal(relay_invoke(&ctx->base, NULL, &r, free_rec), -EINVAL);
	assert_int_equal(relay_invoke_blocking(NULL, fn_ret42, &r, NULL), -EINVAL);
	assert_int_equal(relay_invoke_blocking(&ctx->base, NULL, &r, NULL), -EINVAL);
	support_drain(10);
	assert_int_equal(atomic_load(&r.runs), 0);
	/* data NULL is a valid argument */
	assert_int_equal(relay_invoke(&ctx->base, free, NULL, NULL), 0);
	support_drain(10);
	assert_int_equal(relay_object_destroy(&ctx->base), 0);
}

/* ======================================================================
 * relay_invoke_blocking (D8)
 * ====================================================================== */

static void test_D8_invoke_blocking_returns_result(void **state)
{
	(void)state;
	relay_thread *w = support_thread_start("inv-blk");
	obj *ctx = obj_in(w, NULL);
	rec r = { 0 };
	int result = -1;
	assert_int_equal(relay_invoke_blocking(&ctx->base, fn_ret42, &r, &result), 0);
	assert_int_equal(result, 42);
	assert_int_equal(atomic_load(&r.runs), 1);            /* ran before return */
	assert_int_equal(atomic_load(&r.value), 1234);
	assert_ptr_equal(atomic_load(&r.thread), w);
	assert_int_equal(relay_invoke_blocking(&ctx->base, fn_ret42, &r, NULL), 0);
	assert_int_equal(atomic_load(&r.runs), 2);
	assert_int_equal(relay_object_delete_later(&ctx->base), 0);
	support_thread_stop(w);
}

/* From an adopted pthread into the main thread, which runs its loop. */
typedef struct pblk {
	relay_object *ctx;
	rec *r;
	int rc, result;
	atomic_int done;
} pblk;

static void *pblk_main(void *arg)
{
	pblk *p = arg;
	p->rc = relay_invoke_blocking(p->ctx, fn_ret42, p->r, &p->result);
	atomic_store(&p->done, 1);
	return NULL;
}

static void test_D8_invoke_blocking_from_pthread_into_main(void **state)
{
	(void)state;
	obj *ctx = obj_new(NULL);
	rec r = { 0 };
	pblk p = { .ctx = &ctx->base, .r = &r, .rc = -1, .result = -1 };
	/* main runs a loop (has run a pass) before anyone calls into it: an
	 * adopted thread that never ran one is refused (RELAY_ENOTRUNNING) */
	(void)relay_loop_run_once(0);
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, pblk_main, &p), 0);
	assert_true(support_run_until_flag(&p.done, SUPPORT_TIMEOUT_MS));
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_int_equal(p.rc, 0);
	assert_int_equal(p.result, 42);
	assert_ptr_equal(atomic_load(&r.thread), relay_thread_main());
	assert_int_equal(relay_object_destroy(&ctx->base), 0);
}

static void test_D8_invoke_blocking_own_thread_edeadlock(void **state)
{
	(void)state;
	obj *ctx = obj_new(NULL);
	rec r = { 0 };
	support_diag d;
	support_diag_begin(&d);
	int result = -1;
	assert_int_equal(relay_invoke_blocking(&ctx->base, fn_ret42, &r, &result), RELAY_EDEADLOCK);
	assert_true(support_diag_count(&d) >= 1);
	assert_int_equal(support_diag_last_code(&d), RELAY_EDEADLOCK);
	support_diag_end(&d);
	support_drain(10);
	assert_int_equal(atomic_load(&r.runs), 0);
	assert_int_equal(relay_object_destroy(&ctx->base), 0);
}

/* Inside the worker, a blocking invoke to an object of that worker. */
typedef struct inner {
	relay_object *ctx;
	rec *r;
	int rc;
} inner;

static int fn_inner_blocking(void *data)
{
	inner *x = data;
	x->rc = relay_invoke_blocking(x->ctx, fn_ret42, x->r, NULL);
	return 0;
}

static void test_D8_invoke_blocking_own_worker_edeadlock(void **state)
{
	(void)state;
	relay_thread *w = support_thread_start("inv-dl");
	obj *ctx = obj_in(w, NULL);
	rec r = { 0 };
	inner x = { &ctx->base, &r, 1 };
	assert_int_equal(relay_invoke_blocking(&ctx->base, fn_inner_blocking, &x, NULL), 0);
	assert_int_equal(x.rc, RELAY_EDEADLOCK);
	rec sync = { 0 };
	assert_int_equal(relay_invoke_blocking(&ctx->base, fn_ret42, &sync, NULL), 0);
	assert_int_equal(atomic_load(&r.runs), 0);
	assert_int_equal(relay_object_delete_later(&ctx->base), 0);
	support_thread_stop(w);
	assert_int_equal(atomic_load(&r.runs), 0);
}

static void test_D8_invoke_blocking_not_started_enotrunning(void **state)
{
	(void)state;
	atomic_long fin = 0;
	relay_thread *w = NULL;
	assert_int_equal(relay_thread_create("inv-ns", NULL, &w), 0);
	obj *ctx = obj_in(w, &fin);
	rec r = { 0 };
	int result = -1;
	assert_int_equal(relay_invoke_blocking(&ctx->base, fn_ret42, &r, &result), RELAY_ENOTRUNNING);
	assert_int_equal(atomic_load(&r.runs), 0);
	/* Nothing was left queued: start, then clean up. */
	assert_int_equal(relay_thread_start(w), 0);
	assert_int_equal(relay_object_delete_later(&ctx->base), 0);
	support_thread_stop(w);
	assert_int_equal(atomic_load(&fin), 1);
	assert_int_equal(atomic_load(&r.runs), 0);
}

static void test_D8_invoke_blocking_finished_enotrunning(void **state)
{
	(void)state;
	atomic_long fin = 0;
	relay_thread *w = support_thread_start("inv-fin");
	assert_int_equal(relay_thread_stop(w, SUPPORT_TIMEOUT_MS), 0);
	obj *ctx = obj_in(w, &fin);
	rec r = { 0 };
	assert_int_equal(relay_invoke_blocking(&ctx->base, fn_ret42, &r, NULL), RELAY_ENOTRUNNING);
	assert_int_equal(relay_thread_start(w), 0);
	assert_int_equal(relay_object_delete_later(&ctx->base), 0);
	support_thread_stop(w);
	assert_int_equal(atomic_load(&fin), 1);
	assert_int_equal(atomic_load(&r.runs), 0);
}

/* fn destroys its own context: it ran, so the call is delivered. */
typedef struct selfkill {
	relay_object *ctx;
	int destroy_rc;
} selfkill;

static int fn_destroy_ctx(void *data)
{
	selfkill *k = data;
	k->destroy_rc = relay_object_destroy(k->ctx);
	return 5;
}

static void test_D7_invoke_blocking_fn_destroys_context_still_delivered(void **state)
{
	(void)state;
	atomic_long fin = 0;
	relay_thread *w = support_thread_start("inv-self");
	obj *ctx = obj_in(w, &fin);
	selfkill k = { &ctx->base, 1 };
	int result = -1;
	assert_int_equal(relay_invoke_blocking(&ctx->base, fn_destroy_ctx, &k, &result), 0);
	assert_int_equal(result, 5);
	assert_int_equal(k.destroy_rc, 0);
	assert_int_equal(atomic_load(&fin), 1);
	support_thread_stop(w);
}

/* An invoked function is not a slot: relay_sender() is NULL there. */
static _Atomic(relay_object *) g_inv_sender;
static atomic_int g_inv_ran;
static void fn_sender(void *data)
{
	(void)data;
	atomic_store(&g_inv_sender, relay_sender());
	atomic_store(&g_inv_ran, 1);
}

static void test_invoke_sender_is_null(void **state)
{
	(void)state;
	obj *ctx = obj_new(NULL);
	atomic_store(&g_inv_sender, &ctx->base);
	atomic_store(&g_inv_ran, 0);
	assert_int_equal(relay_invoke(&ctx->base, fn_sender, NULL, NULL), 0);
	assert_true(support_run_until_flag(&g_inv_ran, SUPPORT_TIMEOUT_MS));
	assert_null(atomic_load(&g_inv_sender));
	assert_int_equal(relay_object_destroy(&ctx->base), 0);
}

/* ======================================================================
 * D7: blocking calls released with RELAY_ENOTDELIVERED
 * ====================================================================== */

/* The worker is held; the main thread blocks in invoke_blocking to ctx
 * (a second object of that worker); the held function sees that event
 * posted, destroys ctx in its own thread, and returns; the loop then
 * drops the event and must release the main thread. */
static void hold_wait_then_destroy(hold *h)
{
	hold_wait_posted(h, 1);
	WCHECK(relay_object_destroy((relay_object *)h->arg) == 0);
}

static void test_D7_invoke_blocking_context_destroyed_enotdelivered(void **state)
{
	(void)state;
	atomic_long fin = 0;
	relay_thread *w = support_thread_start("inv-nd");
	obj *keeper = obj_in(w, NULL);
	obj *ctx = obj_in(w, &fin);
	rec r = { 0 };
	hold h;
	hold_close(&h, &keeper->base, hold_wait_then_destroy, &ctx->base);
	atomic_store(&h.go, 1);     /* the hold now waits for our post */
	int result = -1;
	int rc = relay_invoke_blocking(&ctx->base, fn_ret42, &r, &result);
	assert_int_equal(rc, RELAY_ENOTDELIVERED);
	assert_int_equal(atomic_load(&r.runs), 0);
	assert_true(support_wait_flag(&h.left, 1, SUPPORT_TIMEOUT_MS));
	assert_int_equal(atomic_load(&fin), 1);
	assert_int_equal(relay_object_delete_later(&keeper->base), 0);
	support_thread_stop(w);
	assert_int_equal(atomic_load(&r.runs), 0);
}

/* The same through a blocking signal connection, emitted from an adopted
 * pthread while the receiver's thread is held. */
typedef struct blk_emit {
	obj *s;
	int rc;
	atomic_int done;
} blk_emit;

static void *blk_emit_main(void *arg)
{
	blk_emit *b = arg;
	int v = 5;
	b->rc = relay_emit(b->s, sig, &v);
	atomic_store(&b->done, 1);
	return NULL;
}

static atomic_long g_slot_calls;
static void on_sig_count(obj *self, const int *v)
{
	(void)self;
	(void)v;
	atomic_fetch_add(&g_slot_calls, 1);
}

static void test_D7_blocking_emit_receiver_destroyed_enotdelivered(void **state)
{
	(void)state;
	atomic_long fin = 0;
	atomic_store(&g_slot_calls, 0);
	relay_thread *w = support_thread_start("emit-nd");
	obj *keeper = obj_in(w, NULL);
	obj *s = obj_new(NULL);
	obj *r = obj_in(w, &fin);
	assert_int_equal(relay_connect_ex(s, sig, r, on_sig_count, RELAY_BLOCKING, 0u, NULL), 0);
	hold h;
	hold_close(&h, &keeper->base, hold_wait_then_destroy, &r->base);
	atomic_store(&h.go, 1);
	blk_emit b = { .s = s, .rc = 1 };
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, blk_emit_main, &b), 0);
	assert_true(support_wait_flag(&b.done, 1, SUPPORT_TIMEOUT_MS));
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_int_equal(b.rc, RELAY_ENOTDELIVERED);
	assert_int_equal(atomic_load(&g_slot_calls), 0);
	/* the waiter may be released before the receiver's finalizer ran */
	assert_true(support_wait_flag(&h.left, 1, SUPPORT_TIMEOUT_MS));
	assert_int_equal(atomic_load(&fin), 1);
	assert_int_equal(relay_object_delete_later(&keeper->base), 0);
	support_thread_stop(w);
	assert_int_equal(relay_object_destroy(&s->base), 0);
	assert_int_equal(atomic_load(&g_slot_calls), 0);
}

/* A blocking emit whose connection is disconnected before delivery is
 * released too (D6: dropped at delivery; D7: waiter released). */
typedef struct dis {
	relay_connection c;
} dis;

static void hold_wait_then_disconnect(hold *h)
{
	hold_wait_posted(h, 1);
	dis *d = h->arg;
	WCHECK(relay_disconnect(d->c) == 0);
}

static void test_D7_blocking_emit_disconnected_enotdelivered(void **state)
{
	(void)state;
	atomic_store(&g_slot_calls, 0);
	relay_thread *w = support_thread_start("emit-dis");
	obj *keeper = obj_in(w, NULL);
	obj *s = obj_new(NULL);
	obj *r = obj_in(w, NULL);
	dis d = { 0 };
	assert_int_equal(relay_connect_ex(s, sig, r, on_sig_count, RELAY_BLOCKING, 0u, &d.c), 0);
	hold h;
	hold_close(&h, &keeper->base, hold_wait_then_disconnect, &d);
	atomic_store(&h.go, 1);
	int v = 1;
	assert_int_equal(relay_emit(s, sig, &v), RELAY_ENOTDELIVERED);
	assert_int_equal(atomic_load(&g_slot_calls), 0);
	assert_true(support_wait_flag(&h.left, 1, SUPPORT_TIMEOUT_MS));
	assert_int_equal(relay_object_delete_later(&r->base), 0);
	assert_int_equal(relay_object_delete_later(&keeper->base), 0);
	support_thread_stop(w);
	assert_int_equal(relay_object_destroy(&s->base), 0);
	assert_int_equal(atomic_load(&g_slot_calls), 0);
}

/* The receiver of a pending blocking emit is detached (moved to no
 * thread) in its own thread: the event cannot be delivered, the emitter
 * must be released (never a hang). */
static void hold_wait_then_detach(hold *h)
{
	hold_wait_posted(h, 1);
	WCHECK(relay_object_move_to_thread((relay_object *)h->arg, NULL) == 0);
}

static void test_D7_blocking_emit_receiver_detached_released(void **state)
{
	(void)state;
	atomic_store(&g_slot_calls, 0);
	relay_thread *w = support_thread_start("emit-det");
	obj *keeper = obj_in(w, NULL);
	obj *s = obj_new(NULL);
	obj *r = obj_in(w, NULL);
	assert_int_equal(relay_connect_ex(s, sig, r, on_sig_count, RELAY_BLOCKING, 0u, NULL), 0);
	hold h;
	hold_close(&h, &keeper->base, hold_wait_then_detach, &r->base);
	atomic_store(&h.go, 1);
	int v = 1;
	int rc = relay_emit(s, sig, &v);
	assert_true(rc == RELAY_ENOTDELIVERED || rc == RELAY_ENOTRUNNING);
	assert_int_equal(atomic_load(&g_slot_calls), 0);
	assert_true(support_wait_flag(&h.left, 1, SUPPORT_TIMEOUT_MS));
	assert_null(relay_object_thread(&r->base));
	/* detached: any thread may move it; bring it home and destroy it */
	assert_int_equal(relay_object_move_to_thread(&r->base, relay_thread_main()), 0);
	assert_int_equal(relay_object_destroy(&r->base), 0);
	assert_int_equal(relay_object_delete_later(&keeper->base), 0);
	support_thread_stop(w);
	assert_int_equal(relay_object_destroy(&s->base), 0);
	assert_int_equal(atomic_load(&g_slot_calls), 0);
}

/* A thread that ends with a blocking call queued releases the waiter. */
static void test_D7_invoke_blocking_thread_ends_enotdelivered(void **state)
{
	(void)state;
	relay_thread *w = support_thread_start("inv-ends");
	obj *keeper = obj_in(w, NULL);
	obj *ctx = obj_in(w, NULL);
	rec r = { 0 };
	hold h;
	hold_close(&h, &keeper->base, NULL, NULL);
	/* the loop returns after this pass */
	assert_int_equal(relay_thread_quit(w), 0);
	pblk p = { .ctx = &ctx->base, .r = &r, .rc = 1, .result = -1 };
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, pblk_main, &p), 0);
	/* let the blocking call post, then release the hold */
	int64_t end = support_now_ms() + SUPPORT_TIMEOUT_MS;
	relay_loop_stats st;
	for (;;) {
		assert_int_equal(relay_thread_stats(w, &st), 0);
		if (st.posted >= h.posted_at_entry + 1 || atomic_load(&p.done) ||
		    support_now_ms() > end)
			break;
		support_sleep_ms(1);
	}
	assert_int_equal(relay_object_delete_later(&ctx->base), 0);
	assert_int_equal(relay_object_delete_later(&keeper->base), 0);
	atomic_store(&h.go, 1);
	assert_int_equal(relay_thread_wait(w, SUPPORT_TIMEOUT_MS), 0);
	assert_true(support_wait_flag(&p.done, 1, SUPPORT_TIMEOUT_MS));
	assert_int_equal(pthread_join(th, NULL), 0);
	/* Either it ran before the loop ended, or it was dropped and the
	 * waiter was told so, or (quit already requested) it was refused;
	 * never a hang. */
	if (atomic_load(&r.runs) == 1) {
		assert_int_equal(p.rc, 0);
		assert_int_equal(p.result, 42);
	} else {
		assert_int_equal(atomic_load(&r.runs), 0);
		assert_true(p.rc == RELAY_ENOTDELIVERED || p.rc == RELAY_ENOTRUNNING);
	}
	assert_int_equal(relay_thread_destroy(w), 0);
}

/* D8: a blocking call queued to an object that then moves to a thread that
 * runs no loop (never started) does not follow it there to wait forever:
 * its waiter is released. */
typedef struct mover_call {
	relay_object *ctx;
	atomic_int done;
	int rc;
} mover_call;

static int job_return_one(void *p)
{
	(void)p;
	return 1;
}

static void *call_blocking(void *arg)
{
	mover_call *m = arg;
	m->rc = relay_invoke_blocking(m->ctx, job_return_one, NULL, NULL);
	atomic_store(&m->done, 1);
	return NULL;
}

static void test_D8_blocking_call_released_when_receiver_moves_to_idle_thread(void **state)
{
	(void)state;
	support_drain(10);   /* main has run a pass: it serves blocking calls */
	support_app *r = support_app_new();
	relay_loop_stats s0, s1;
	assert_int_equal(relay_thread_stats(relay_thread_main(), &s0), 0);
	mover_call m = { .ctx = &r->base };
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, call_blocking, &m), 0);
	/* the call is queued to main, which does not run its loop meanwhile */
	int64_t end = support_now_ms() + SUPPORT_TIMEOUT_MS;
	do {
		assert_int_equal(relay_thread_stats(relay_thread_main(), &s1), 0);
		support_sleep_ms(1);
	} while (relay_thread_stats(relay_thread_main(), &s1) == 0 &&
		 s1.posted < s0.posted + 1 && support_now_ms() < end);
	assert_true(s1.posted >= s0.posted + 1);
	relay_thread *idle = NULL;
	assert_int_equal(relay_thread_create("d8-idle", NULL, &idle), 0);
	assert_int_equal(relay_object_move_to_thread(&r->base, idle), 0);
	assert_true(support_wait_flag(&m.done, 1, SUPPORT_TIMEOUT_MS));
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_int_equal(m.rc, RELAY_ENOTDELIVERED);
	/* r lives in the thread that never ran: destroyed with its handle */
	assert_int_equal(relay_object_delete_later(&r->base), 0);
	assert_int_equal(relay_thread_destroy(idle), 0);
}

int main(int argc, char **argv)
{
	support_set_args(argc, argv);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_D5_invoke_runs_in_context_thread, check_worker_errors),
		cmocka_unit_test_teardown(test_D5_invoke_never_inside_call_same_thread, check_worker_errors),
		cmocka_unit_test_teardown(test_D5_invoke_from_invoked_runs_next_pass, check_worker_errors),
		cmocka_unit_test_teardown(test_D4_invoke_order_to_worker, check_worker_errors),
		cmocka_unit_test_teardown(test_D4_order_signals_and_invokes_mixed, check_worker_errors),
		cmocka_unit_test_teardown(test_D4_queued_then_blocking_in_order, check_worker_errors),
		cmocka_unit_test_teardown(test_D5_invoke_before_thread_starts_runs_after, check_worker_errors),
		cmocka_unit_test_teardown(test_D7_invoke_context_destroyed_frees_data, check_worker_errors),
		cmocka_unit_test_teardown(test_D7_invoke_context_destroyed_in_its_thread_frees_data, check_worker_errors),
		cmocka_unit_test_teardown(test_D7_invoke_thread_ends_frees_data, check_worker_errors),
		cmocka_unit_test_teardown(test_invoke_null_arguments_einval, check_worker_errors),
		cmocka_unit_test_teardown(test_D8_invoke_blocking_returns_result, check_worker_errors),
		cmocka_unit_test_teardown(test_D8_invoke_blocking_from_pthread_into_main, check_worker_errors),
		cmocka_unit_test_teardown(test_D8_invoke_blocking_own_thread_edeadlock, check_worker_errors),
		cmocka_unit_test_teardown(test_D8_invoke_blocking_own_worker_edeadlock, check_worker_errors),
		cmocka_unit_test_teardown(test_D8_invoke_blocking_not_started_enotrunning, check_worker_errors),
		cmocka_unit_test_teardown(test_D8_invoke_blocking_finished_enotrunning, check_worker_errors),
		cmocka_unit_test_teardown(test_D7_invoke_blocking_fn_destroys_context_still_delivered, check_worker_errors),
		cmocka_unit_test_teardown(test_invoke_sender_is_null, check_worker_errors),
		cmocka_unit_test_teardown(test_D7_invoke_blocking_context_destroyed_enotdelivered, check_worker_errors),
		cmocka_unit_test_teardown(test_D7_blocking_emit_receiver_destroyed_enotdelivered, check_worker_errors),
		cmocka_unit_test_teardown(test_D7_blocking_emit_disconnected_enotdelivered, check_worker_errors),
		cmocka_unit_test_teardown(test_D7_blocking_emit_receiver_detached_released, check_worker_errors),
		cmocka_unit_test_teardown(test_D7_invoke_blocking_thread_ends_enotdelivered, check_worker_errors),
		cmocka_unit_test_teardown(test_D8_blocking_call_released_when_receiver_moves_to_idle_thread,
					  check_worker_errors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
