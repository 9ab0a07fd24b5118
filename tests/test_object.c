/*
 * test_object.c - objects: affinity and move_to_thread (O1), parent/child
 * ownership and destruction (O2), diagnostics for misuse (O3), weak
 * references, names, blocked signals, argument checks.
 *
 * No test asserts on timing: only counts, order, thread identity, return
 * codes and diagnostics. Waiting is bounded by a generous safety timeout
 * that fails the test when reached.
 */
#define OBJTEST_EXTRA_CHECKS 1
#define OBJTEST_FIN_HOOK fin_check_weak
#define OBJTEST_SETUP_HOOK fin_clear_extra
#include "objtest.h"

#include <inttypes.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>

/* ---------------------------------------------------------------------
 * Local additions to objtest.h
 * --------------------------------------------------------------------- */

static relay_weak g_fin_weak;                 /* weak to check in finalize */
static _Atomic int g_fin_weak_seen = -1;      /* 1 if g_fin_weak was non-NULL */

/* Called by obj_finalize under g_fin_lock. */
static void fin_check_weak(void)
{
	if (g_fin_weak.relay__b != NULL)
		atomic_store(&g_fin_weak_seen, relay_weak_get(&g_fin_weak) != NULL);
}

/* Called by setup under g_fin_lock. */
static void fin_clear_extra(void)
{
	memset(g_fin_threads, 0, sizeof g_fin_threads);
	atomic_store(&g_fin_weak_seen, -1);
}

static const relay_class mainonly_class = { .name = "mainonly", .finalize = obj_finalize,
					       .flags = RELAY_CLASS_MAIN_THREAD_ONLY };

/* Arguments for work done inside another thread. */
typedef struct job {
	obj *o;
	obj *other;
	relay_thread *t;
	relay_object *created;
	int rc, rc2, rc3;
	relay_thread *cur;
	pthread_t self;
} job;

/* ---------------------------------------------------------------------
 * O1: affinity and move_to_thread
 * --------------------------------------------------------------------- */

static int job_create_obj(void *p)
{
	job *j = p;
	j->cur = relay_thread_current();
	obj *o = NULL;
	j->rc = relay_object_new(&o, &obj_class, NULL);
	j->created = o ? &o->base : NULL;
	return 0;
}

static void test_O1_object_lives_in_creating_thread(void **state)
{
	(void)state;
	obj *o = new_obj(NULL, 1);
	assert_non_null(relay_thread_current());
	assert_ptr_equal(relay_object_thread(&o->base), relay_thread_current());
	assert_ptr_equal(relay_object_thread(&o->base), relay_thread_main());
	assert_null(relay_object_parent(&o->base));

	relay_thread *t = start_thread("o1-create");
	obj *w = worker_obj(t, 2);
	job j = { 0 };
	run_in(w, job_create_obj, &j);
	assert_int_equal(j.rc, 0);
	assert_ptr_equal(j.cur, t);
	assert_non_null(j.created);
	assert_ptr_equal(relay_object_thread(j.created), t);

	/* The object made in the worker is not ours to destroy here. */
	diag_reset();
	assert_int_equal(relay_object_destroy(j.created), RELAY_EWRONGTHREAD);
	diag_reset();
	assert_int_equal(relay_object_delete_later(j.created), 0);
	assert_int_equal(relay_object_delete_later(&w->base), 0);
	stop_thread(t);
	assert_int_equal(atomic_load(&g_fin_count), 2);
	assert_int_equal(relay_object_destroy(&o->base), 0);
	assert_int_equal(atomic_load(&g_fin_count), 3);
}

static void test_O1_move_from_own_thread(void **state)
{
	(void)state;
	relay_thread *t = start_thread("o1-move");
	obj *src = new_obj(NULL, 1);
	obj *o = new_obj(NULL, 2);
	assert_int_equal(relay_connect(src, sig, o, on_sig), 0);

	assert_int_equal(relay_object_move_to_thread(&o->base, t), 0);
	assert_ptr_equal(relay_object_thread(&o->base), t);
	assert_int_equal(diag_count(), 0);

	/* AUTO now queues to the worker: the slot runs there. */
	int v = 5;
	assert_int_equal(relay_emit(src, sig, &v), 0);
	WAIT_UNTIL(atomic_load(&o->hits) == 1);
	assert_int_equal(o->values[0], 5);
	assert_ptr_equal(o->threads[0], t);
	assert_false(pthread_equal(o->pthreads[0], pthread_self()));

	assert_int_equal(relay_object_delete_later(&o->base), 0);
	stop_thread(t);
	assert_int_equal(atomic_load(&g_fin_count), 1);
	assert_int_equal(relay_object_destroy(&src->base), 0);
}

static void test_O1_move_refused_with_parent(void **state)
{
	(void)state;
	relay_thread *t = start_thread("o1-parent");
	obj *p = new_obj(NULL, 1);
	obj *c = new_obj(&p->base, 2);
	assert_int_equal(relay_object_set_name(&c->base, "kid-with-parent"), 0);
	assert_ptr_equal(relay_object_parent(&c->base), &p->base);

	assert_int_equal(relay_object_move_to_thread(&c->base, t), RELAY_EHASPARENT);
	expect_one_diag(RELAY_EHASPARENT, "kid-with-parent");
	assert_ptr_equal(relay_object_thread(&c->base), relay_thread_main());
	assert_ptr_equal(relay_object_parent(&c->base), &p->base);

	/* Detaching (thread NULL) is a move too. */
	assert_int_equal(relay_object_move_to_thread(&c->base, NULL), RELAY_EHASPARENT);
	expect_one_diag(RELAY_EHASPARENT, "kid-with-parent");
	assert_ptr_equal(relay_object_thread(&c->base), relay_thread_main());

	/* Unparent first, then it moves. */
	assert_int_equal(relay_object_set_parent(&c->base, NULL), 0);
	assert_int_equal(relay_object_move_to_thread(&c->base, t), 0);
	assert_ptr_equal(relay_object_thread(&c->base), t);
	assert_int_equal(diag_count(), 0);

	assert_int_equal(relay_object_delete_later(&c->base), 0);
	stop_thread(t);
	assert_int_equal(relay_object_destroy(&p->base), 0);
	assert_int_equal(atomic_load(&g_fin_count), 2);
}

static void test_O1_move_refused_main_thread_only(void **state)
{
	(void)state;
	relay_thread *t = start_thread("o1-mainonly");
	obj *m = NULL;
	assert_int_equal(relay_object_new(&m, &mainonly_class, NULL), 0);
	assert_int_equal(relay_object_set_name(&m->base, "gui-thing"), 0);
	assert_ptr_equal(relay_object_thread(&m->base), relay_thread_main());

	assert_int_equal(relay_object_move_to_thread(&m->base, t), RELAY_EMAINONLY);
	expect_one_diag(RELAY_EMAINONLY, "gui-thing");
	assert_ptr_equal(relay_object_thread(&m->base), relay_thread_main());

	assert_int_equal(relay_object_move_to_thread(&m->base, NULL), RELAY_EMAINONLY);
	expect_one_diag(RELAY_EMAINONLY, "gui-thing");
	assert_ptr_equal(relay_object_thread(&m->base), relay_thread_main());

	/* Moving to the main thread itself is not a move away. */
	assert_int_equal(relay_object_move_to_thread(&m->base, relay_thread_main()), 0);
	assert_int_equal(diag_count(), 0);

	stop_thread(t);
	assert_int_equal(relay_object_destroy(&m->base), 0);
	assert_int_equal(atomic_load(&g_fin_count), 1);
}

static int job_init_mainonly(void *p)
{
	job *j = p;
	obj *m = (obj *)(void *)0x1;
	j->rc = relay_object_new(&m, &mainonly_class, NULL);
	j->created = (m == (obj *)(void *)0x1) ? NULL : (relay_object *)m;
	obj *stack = calloc(1, sizeof *stack);
	j->rc2 = relay_object_init(&stack->base, &mainonly_class, NULL);
	free(stack);
	/* A normal class is fine in the same thread. */
	obj *n = NULL;
	j->rc3 = relay_object_new(&n, &obj_class, NULL);
	if (j->rc3 == 0)
		relay_object_destroy(&n->base);
	return 0;
}

static void *foreign_init_mainonly(void *p)
{
	job_init_mainonly(p);
	return NULL;
}

static void test_O1_main_thread_only_init_outside_main_refused(void **state)
{
	(void)state;
	relay_thread *t = start_thread("o1-initmo");
	obj *w = worker_obj(t, 9);
	job j = { 0 };
	run_in(w, job_init_mainonly, &j);
	assert_int_equal(j.rc, RELAY_EMAINONLY);
	assert_int_equal(j.rc2, RELAY_EMAINONLY);
	assert_int_equal(j.rc3, 0);
	/* out must not receive a half-made object (NULL or untouched). */
	assert_null(j.created);
	assert_int_equal(diag_count(), 2);
	assert_int_equal(g_diag.with_newline, 0);
	if (strstr(g_diag.last_line, "mainonly") == NULL)
		fail_msg("diagnostic does not name the class: \"%s\"", g_diag.last_line);
	diag_reset();

	/* Same from a plain pthread (adopted on first call). */
	pthread_t th;
	job k = { 0 };
	assert_int_equal(pthread_create(&th, NULL, foreign_init_mainonly, &k), 0);
	pthread_join(th, NULL);
	assert_int_equal(k.rc, RELAY_EMAINONLY);
	assert_int_equal(k.rc2, RELAY_EMAINONLY);
	assert_int_equal(k.rc3, 0);
	assert_int_equal(diag_count(), 2);
	diag_reset();

	/* In the main thread the class is fine. */
	obj *m = NULL;
	assert_int_equal(relay_object_new(&m, &mainonly_class, NULL), 0);
	assert_int_equal(relay_object_destroy(&m->base), 0);

	assert_int_equal(relay_object_delete_later(&w->base), 0);
	stop_thread(t);
}

static int job_move_foreign_obj(void *p)
{
	job *j = p;
	j->rc = relay_object_move_to_thread(&j->o->base, j->t);
	j->rc2 = relay_object_move_to_thread(&j->o->base, NULL);
	return 0;
}

static void *foreign_move(void *p)
{
	job *j = p;
	j->rc = relay_object_move_to_thread(&j->o->base, j->t);
	return NULL;
}

static void test_O1_move_from_non_owner_thread_refused(void **state)
{
	(void)state;
	relay_thread *t = start_thread("o1-nonowner");
	obj *w = worker_obj(t, 1);
	obj *o = new_obj(NULL, 2);   /* lives in main */
	assert_int_equal(relay_object_set_name(&o->base, "mains-own"), 0);

	job j = { .o = o, .t = t };
	run_in(w, job_move_foreign_obj, &j);
	assert_int_equal(j.rc, RELAY_EWRONGTHREAD);
	assert_int_equal(j.rc2, RELAY_EWRONGTHREAD);
	assert_int_equal(diag_count(), 2);
	assert_int_equal(g_diag.last_code, RELAY_EWRONGTHREAD);
	if (strstr(g_diag.last_line, "mains-own") == NULL)
		fail_msg("diagnostic does not name the object: \"%s\"", g_diag.last_line);
	diag_reset();
	assert_ptr_equal(relay_object_thread(&o->base), relay_thread_main());

	/* From a foreign pthread, too. */
	pthread_t th;
	job k = { .o = o, .t = t };
	assert_int_equal(pthread_create(&th, NULL, foreign_move, &k), 0);
	pthread_join(th, NULL);
	assert_int_equal(k.rc, RELAY_EWRONGTHREAD);
	expect_one_diag(RELAY_EWRONGTHREAD, "mains-own");
	assert_ptr_equal(relay_object_thread(&o->base), relay_thread_main());

	/* And main cannot move the worker's object either. */
	assert_int_equal(relay_object_set_name(&w->base, "workers-own"), 0);
	assert_int_equal(relay_object_move_to_thread(&w->base, relay_thread_main()),
			 RELAY_EWRONGTHREAD);
	expect_one_diag(RELAY_EWRONGTHREAD, "workers-own");
	assert_ptr_equal(relay_object_thread(&w->base), t);

	assert_int_equal(relay_object_delete_later(&w->base), 0);
	stop_thread(t);
	assert_int_equal(relay_object_destroy(&o->base), 0);
}

static int int_copies_ok(void *dst, const void *src);
static void int_free_count(void *p);
static atomic_int g_copies, g_frees;
static int int_copies_ok(void *dst, const void *src)
{
	memcpy(dst, src, sizeof(int));
	atomic_fetch_add(&g_copies, 1);
	return 0;
}
static void int_free_count(void *p)
{
	(void)p;
	atomic_fetch_add(&g_frees, 1);
}
static const relay_payload_ops int_ops = { int_copies_ok, int_free_count };

static void test_O1_move_detached_object_from_any_thread(void **state)
{
	(void)state;
	atomic_store(&g_copies, 0);
	atomic_store(&g_frees, 0);
	relay_thread *t = start_thread("o1-detached");
	obj *src = new_obj(NULL, 1);
	assert_int_equal(relay_signal_set_ops(src, sig, &int_ops), 0);
	obj *o = new_obj(NULL, 2);
	assert_int_equal(relay_connect_ex(src, sig, o, on_sig, RELAY_QUEUED, 0u, NULL), 0);

	assert_int_equal(relay_object_move_to_thread(&o->base, NULL), 0);
	assert_null(relay_object_thread(&o->base));
	assert_int_equal(diag_count(), 0);

	/* Events for a detached object are dropped (and freed). */
	int v = 1;
	relay_emit(src, sig, &v);
	for (int i = 0; i < 5; i++)
		relay_loop_run_once(0);
	assert_int_equal(atomic_load(&o->hits), 0);

	/* A foreign pthread may attach it to a thread. */
	pthread_t th;
	job k = { .o = o, .t = t };
	assert_int_equal(pthread_create(&th, NULL, foreign_move, &k), 0);
	pthread_join(th, NULL);
	assert_int_equal(k.rc, 0);
	assert_ptr_equal(relay_object_thread(&o->base), t);
	assert_int_equal(diag_count(), 0);

	v = 2;
	assert_int_equal(relay_emit(src, sig, &v), 0);
	WAIT_UNTIL(atomic_load(&o->hits) >= 1);
	assert_int_equal(o->values[0], 2);
	assert_ptr_equal(o->threads[0], t);

	for (int i = 0; i < 5; i++)
		relay_loop_run_once(0);
	assert_int_equal(atomic_load(&o->hits), 1);
	assert_int_equal(relay_object_delete_later(&o->base), 0);
	stop_thread(t);
	assert_int_equal(relay_object_destroy(&src->base), 0);
	/* The dropped copy was freed too: every copy exactly once. */
	assert_int_equal(atomic_load(&g_copies), atomic_load(&g_frees));
	assert_true(atomic_load(&g_copies) >= 1);
}

static void test_O1_children_move_with_parent(void **state)
{
	(void)state;
	relay_thread *t = start_thread("o1-children");
	obj *src = new_obj(NULL, 100);
	obj *p = new_obj(NULL, 1);
	obj *c1 = new_obj(&p->base, 2);
	obj *c2 = new_obj(&p->base, 3);
	obj *g = new_obj(&c1->base, 4);
	assert_int_equal(relay_connect(src, sig, g, on_sig), 0);
	assert_int_equal(relay_connect(src, sig, c2, on_sig), 0);

	assert_int_equal(relay_object_move_to_thread(&p->base, t), 0);
	assert_ptr_equal(relay_object_thread(&p->base), t);
	assert_ptr_equal(relay_object_thread(&c1->base), t);
	assert_ptr_equal(relay_object_thread(&c2->base), t);
	assert_ptr_equal(relay_object_thread(&g->base), t);
	assert_ptr_equal(relay_object_parent(&g->base), &c1->base);
	assert_ptr_equal(relay_object_parent(&c1->base), &p->base);

	int v = 7;
	assert_int_equal(relay_emit(src, sig, &v), 0);
	WAIT_UNTIL(atomic_load(&g->hits) == 1 && atomic_load(&c2->hits) == 1);
	assert_ptr_equal(g->threads[0], t);
	assert_ptr_equal(c2->threads[0], t);

	assert_int_equal(relay_object_delete_later(&p->base), 0);
	stop_thread(t);
	assert_int_equal(atomic_load(&g_fin_count), 4);
	assert_int_equal(relay_object_destroy(&src->base), 0);
}

static void on_tick(obj *self)
{
	on_ping(self);
}

static int job_timer_info(void *p)
{
	job *j = p;
	j->cur = relay_thread_current();
	return 0;
}

static void test_O1_timers_move_with_object(void **state)
{
	(void)state;
	relay_thread *t = start_thread("o1-timers");
	obj *o = new_obj(NULL, 1);
	relay_timer *tm = NULL;
	assert_int_equal(relay_timer_create(&o->base, &tm), 0);
	assert_int_equal(relay_connect(tm, timeout, o, on_tick), 0);
	assert_int_equal(relay_timer_start(tm, 1), 0);
	assert_true(relay_timer_is_active(tm));

	/* Move before main's loop ever ran the timer. */
	assert_int_equal(relay_object_move_to_thread(&o->base, t), 0);
	assert_ptr_equal(relay_object_thread(&tm->base), t);

	/* The timer ticks in the worker; main's loop no longer runs it. */
	RUN_UNTIL(atomic_load(&o->hits) >= 3);
	int n = atomic_load(&o->hits);
	if (n > MAXLOG)
		n = MAXLOG;
	for (int i = 0; i < n; i++)
		assert_ptr_equal(o->threads[i], t);
	assert_true(relay_timer_is_active(tm));

	job j = { 0 };
	run_in(o, job_timer_info, &j);
	assert_ptr_equal(j.cur, t);

	assert_int_equal(relay_object_delete_later(&o->base), 0);
	stop_thread(t);
	assert_int_equal(atomic_load(&g_fin_count), 1);
}

static void push_value(void *p)
{
	/* invoke: log a value through the slot's bookkeeping */
	obj **pp = p;
	obj *o = pp[0];
	int v = (int)(intptr_t)pp[1];
	on_sig(o, &v);
}

static void test_O1_pending_events_move_in_order(void **state)
{
	(void)state;
	relay_thread *t = start_thread("o1-pending");
	obj *o = new_obj(NULL, 1);
	assert_int_equal(relay_connect_ex(o, sig, o, on_sig, RELAY_QUEUED, 0u, NULL), 0);

	/* Queue to main without running main's loop: emits and invokes mixed. */
	static void *inv[2][2];
	for (int i = 1; i <= 6; i++) {
		if (i == 3 || i == 5) {
			inv[i / 4][0] = o;
			inv[i / 4][1] = (void *)(intptr_t)i;
			assert_int_equal(relay_invoke(&o->base, push_value, inv[i / 4], NULL), 0);
		} else {
			assert_int_equal(relay_emit(o, sig, &i), 0);
		}
	}
	assert_int_equal(atomic_load(&o->hits), 0);

	assert_int_equal(relay_object_move_to_thread(&o->base, t), 0);
	/* One posted after the move goes straight to the worker, after them. */
	int seven = 7;
	assert_int_equal(relay_emit(o, sig, &seven), 0);

	WAIT_UNTIL(atomic_load(&o->hits) >= 7);
	for (int i = 0; i < 7; i++) {
		assert_int_equal(o->values[i], i + 1);
		assert_ptr_equal(o->threads[i], t);
	}
	/* Main's loop has nothing of theirs left. */
	for (int i = 0; i < 5; i++)
		relay_loop_run_once(0);
	assert_int_equal(atomic_load(&o->hits), 7);

	assert_int_equal(relay_object_delete_later(&o->base), 0);
	stop_thread(t);
	assert_int_equal(atomic_load(&g_fin_count), 1);
}

static int job_emit_then_move_home(void *p)
{
	job *j = p;
	/* Posted during this pass: still pending in the worker when we move. */
	for (int i = 1; i <= 3; i++)
		relay_emit(j->o, sig, &i);
	j->rc = relay_object_move_to_thread(&j->o->base, relay_thread_main());
	j->cur = relay_object_thread(&j->o->base);
	return 0;
}

static void test_O1_pending_events_move_from_inside_slot(void **state)
{
	(void)state;
	relay_thread *t = start_thread("o1-slotmove");
	obj *o = worker_obj(t, 1);
	assert_int_equal(relay_connect_ex(o, sig, o, on_sig, RELAY_QUEUED, 0u, NULL), 0);
	job j = { .o = o };
	run_in(o, job_emit_then_move_home, &j);
	assert_int_equal(j.rc, 0);
	assert_ptr_equal(j.cur, relay_thread_main());
	RUN_UNTIL(atomic_load(&o->hits) >= 3);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(o->values[i], i + 1);
		assert_ptr_equal(o->threads[i], relay_thread_main());
	}
	stop_thread(t);
	assert_int_equal(atomic_load(&o->hits), 3);
	assert_int_equal(relay_object_destroy(&o->base), 0);
}

/* An object that keeps moving itself between two threads from inside its
 * own slot while another thread floods it with numbered events: every
 * event arrives exactly once, in emit order, in the thread the object
 * lives in at that moment (O1 with D4). */
typedef struct mover {
	relay_object base;
	RELAY_SIGNAL(num, int);
	relay_thread *a, *b;
	int next;               /* expected value */
	atomic_int received;
	atomic_int out_of_order;
	atomic_int wrong_thread;
	atomic_int moves;
	int every;
} mover;

static const relay_class mover_class = { .name = "mover" };

static void mover_on_num(mover *self, const int *v)
{
	if (*v != self->next)
		atomic_fetch_add(&self->out_of_order, 1);
	self->next = *v + 1;
	relay_thread *here = relay_thread_current();
	if (here != relay_object_thread(&self->base))
		atomic_fetch_add(&self->wrong_thread, 1);
	atomic_fetch_add(&self->received, 1);
	/* Last: once moved, the other thread may run this slot at once. */
	if (*v % self->every == self->every - 1) {
		relay_thread *to = here == self->a ? self->b : self->a;
		if (relay_object_move_to_thread(&self->base, to) == 0)
			atomic_fetch_add(&self->moves, 1);
	}
}

typedef struct producer {
	mover *m;
	int n;
} producer;

static void *produce(void *p)
{
	producer *pr = p;
	for (int i = 0; i < pr->n; i++)
		relay_emit(pr->m, num, &i);
	return NULL;
}

static void move_ping_pong(int every, int N)
{
	relay_thread *a = start_thread("o1-ping");
	relay_thread *b = start_thread("o1-pong");
	mover *m = NULL;
	assert_int_equal(relay_object_new(&m, &mover_class, NULL), 0);
	m->a = a;
	m->b = b;
	m->every = every;
	assert_int_equal(relay_connect(m, num, m, mover_on_num), 0);
	assert_int_equal(relay_object_move_to_thread(&m->base, a), 0);

	producer pr = { m, N };
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, produce, &pr), 0);
	pthread_join(th, NULL);
	WAIT_UNTIL(atomic_load(&m->received) >= N);
	/* Nothing more arrives. */
	assert_int_equal(relay_thread_stop(a, SAFETY_MS), 0);
	assert_int_equal(relay_thread_stop(b, SAFETY_MS), 0);
	if (atomic_load(&m->received) != N || atomic_load(&m->out_of_order) != 0 ||
	    atomic_load(&m->wrong_thread) != 0)
		fail_msg("moving every %d events: received %d of %d, %d out of order, "
			 "%d in the wrong thread", every, atomic_load(&m->received), N,
			 atomic_load(&m->out_of_order), atomic_load(&m->wrong_thread));
	assert_true(atomic_load(&m->moves) >= N / every - 1);
	/* Its thread has finished: deleted right away. */
	assert_int_equal(relay_object_delete_later(&m->base), 0);
	assert_int_equal(relay_thread_destroy(a), 0);
	assert_int_equal(relay_thread_destroy(b), 0);
}

static void test_O1_move_ping_pong_under_flood_keeps_order(void **state)
{
	(void)state;
	move_ping_pong(97, 20000);
	move_ping_pong(7, 10000);
	move_ping_pong(1, 3000);
}

/* ---------------------------------------------------------------------
 * O2: parent and child, destruction
 * --------------------------------------------------------------------- */

static void test_O2_parent_in_other_thread_refused(void **state)
{
	(void)state;
	relay_thread *t = start_thread("o2-pthread");
	obj *wp = worker_obj(t, 1);
	assert_int_equal(relay_object_set_name(&wp->base, "far-parent"), 0);

	obj *c = (obj *)(void *)0x1;
	assert_int_equal(relay_object_new(&c, &obj_class, &wp->base),
			 RELAY_EPARENTTHREAD);
	assert_true(c == NULL || c == (obj *)(void *)0x1);
	assert_int_equal(diag_count(), 1);
	assert_int_equal(g_diag.last_code, RELAY_EPARENTTHREAD);
	assert_int_equal(g_diag.with_newline, 0);
	diag_reset();

	obj *s = calloc(1, sizeof *s);
	assert_non_null(s);
	assert_int_equal(relay_object_init(&s->base, &obj_class, &wp->base),
			 RELAY_EPARENTTHREAD);
	assert_int_equal(diag_count(), 1);
	diag_reset();
	free(s);

	obj *m = new_obj(NULL, 2);
	assert_int_equal(relay_object_set_name(&m->base, "near-child"), 0);
	assert_int_equal(relay_object_set_parent(&m->base, &wp->base), RELAY_EPARENTTHREAD);
	expect_one_diag(RELAY_EPARENTTHREAD, "near-child");
	assert_null(relay_object_parent(&m->base));

	assert_int_equal(relay_object_delete_later(&wp->base), 0);
	stop_thread(t);
	assert_int_equal(relay_object_destroy(&m->base), 0);
	assert_int_equal(atomic_load(&g_fin_count), 2);
}

static atomic_int g_destroyed_sig_fin = -1;
static void on_destroyed(void *data)
{
	(void)data;
	atomic_store(&g_destroyed_sig_fin, atomic_load(&g_fin_count));
}

static void test_O2_destroy_parent_destroys_children(void **state)
{
	(void)state;
	atomic_store(&g_destroyed_sig_fin, -1);
	obj *p = new_obj(NULL, 1);
	obj *c1 = new_obj(&p->base, 2);
	obj *c2 = new_obj(&p->base, 3);
	obj *g = new_obj(&c1->base, 4);
	(void)c2;
	(void)g;
	assert_int_equal(relay_connect_func(&p->base, destroyed, on_destroyed, NULL), 0);
	assert_int_equal(relay_weak_set(&g_fin_weak, &p->base), 0);

	assert_int_equal(relay_object_destroy(&p->base), 0);
	assert_int_equal(atomic_load(&g_fin_count), 4);
	/* destroyed is emitted first, before any child goes. */
	assert_int_equal(atomic_load(&g_destroyed_sig_fin), 0);
	/* Children are finalized before their parent; the root last. */
	int pos[5] = { -1, -1, -1, -1, -1 };
	for (int i = 0; i < 4; i++) {
		assert_true(g_fin_ids[i] >= 1 && g_fin_ids[i] <= 4);
		pos[g_fin_ids[i]] = i;
	}
	assert_int_equal(pos[1], 3);
	assert_true(pos[4] < pos[2]);
	for (int i = 0; i < 4; i++)
		assert_ptr_equal(g_fin_threads[i], relay_thread_main());
	/* Weak references were cleared before the finalizer ran. */
	assert_int_equal(atomic_load(&g_fin_weak_seen), 0);
	assert_null(relay_weak_get(&g_fin_weak));
	relay_weak_clear(&g_fin_weak);
}

static atomic_int g_reentrant_rc = 12345, g_reentrant_dl_rc = 12345;
static void destroy_again(void *data)
{
	relay_object *self = data;
	atomic_store(&g_reentrant_rc, relay_object_destroy(self));
	atomic_store(&g_reentrant_dl_rc, relay_object_delete_later(self));
}

static void test_O2_reentrant_destroy_during_destruction(void **state)
{
	(void)state;
	atomic_store(&g_reentrant_rc, 12345);
	atomic_store(&g_reentrant_dl_rc, 12345);
	obj *o = new_obj(NULL, 1);
	obj *c = new_obj(&o->base, 2);
	assert_int_equal(relay_connect_func(&o->base, destroyed, destroy_again, &o->base), 0);
	assert_int_equal(relay_connect_func(&c->base, destroyed, destroy_again, &c->base), 0);
	assert_int_equal(relay_object_destroy(&o->base), 0);
	assert_int_equal(atomic_load(&g_reentrant_rc), 0);
	assert_int_equal(atomic_load(&g_reentrant_dl_rc), 0);
	for (int i = 0; i < 5; i++)
		relay_loop_run_once(0);
	assert_int_equal(atomic_load(&g_fin_count), 2);
}

static void test_O2_destroy_child_unlinks_from_parent(void **state)
{
	(void)state;
	obj *p = new_obj(NULL, 1);
	obj *c = new_obj(&p->base, 2);
	assert_int_equal(relay_object_destroy(&c->base), 0);
	assert_int_equal(atomic_load(&g_fin_count), 1);
	assert_int_equal(g_fin_ids[0], 2);
	/* The parent no longer knows it: destroying the parent finalizes one. */
	assert_int_equal(relay_object_destroy(&p->base), 0);
	assert_int_equal(atomic_load(&g_fin_count), 2);
	assert_int_equal(g_fin_ids[1], 1);
}

static void test_O2_destroy_from_other_thread_refused(void **state)
{
	(void)state;
	relay_thread *t = start_thread("o2-destroy");
	obj *w = worker_obj(t, 1);
	assert_int_equal(relay_object_set_name(&w->base, "not-yours"), 0);
	relay_weak wk = { 0 };
	assert_int_equal(relay_weak_set(&wk, &w->base), 0);

	assert_int_equal(relay_object_destroy(&w->base), RELAY_EWRONGTHREAD);
	expect_one_diag(RELAY_EWRONGTHREAD, "not-yours");
	assert_ptr_equal(relay_weak_get(&wk), &w->base);
	assert_int_equal(atomic_load(&g_fin_count), 0);

	assert_int_equal(relay_object_delete_later(&w->base), 0);
	WAIT_UNTIL(relay_weak_get(&wk) == NULL);
	relay_weak_clear(&wk);
	stop_thread(t);
	assert_int_equal(atomic_load(&g_fin_count), 1);
	assert_ptr_equal(g_fin_threads[0], t);
}

static int job_delete_later(void *p)
{
	job *j = p;
	j->rc = relay_object_delete_later(&j->o->base);
	j->rc2 = atomic_load(&g_fin_count);
	return 0;
}

static void test_O2_delete_later_runs_in_owner_thread_next_pass(void **state)
{
	(void)state;
	/* Main thread: not inside the call, on the next pass. */
	obj *o = new_obj(NULL, 1);
	assert_int_equal(relay_object_delete_later(&o->base), 0);
	assert_int_equal(atomic_load(&g_fin_count), 0);
	relay_loop_run_once(0);
	assert_int_equal(atomic_load(&g_fin_count), 1);
	assert_ptr_equal(g_fin_threads[0], relay_thread_main());

	/* Worker: requested from main, runs in the worker. */
	relay_thread *t = start_thread("o2-dellater");
	obj *w = worker_obj(t, 2);
	obj *wc = new_obj(NULL, 3);
	assert_int_equal(relay_object_move_to_thread(&wc->base, t), 0);
	assert_int_equal(relay_object_delete_later(&w->base), 0);
	WAIT_UNTIL(atomic_load(&g_fin_count) == 2);
	assert_int_equal(g_fin_ids[1], 2);
	assert_ptr_equal(g_fin_threads[1], t);

	/* Requested from inside the worker for an object living there: not
	 * inside the call. */
	job j = { .o = wc };
	run_in(wc, job_delete_later, &j);
	assert_int_equal(j.rc, 0);
	assert_int_equal(j.rc2, 2);
	WAIT_UNTIL(atomic_load(&g_fin_count) == 3);
	assert_ptr_equal(g_fin_threads[2], t);
	stop_thread(t);
	assert_int_equal(atomic_load(&g_fin_count), 3);
}

/* ---------------------------------------------------------------------
 * O3: diagnostics
 * --------------------------------------------------------------------- */

static int job_misuse_in_worker(void *p)
{
	job *j = p;
	/* set_parent of main's object from the worker: owner thread only */
	j->rc = relay_object_set_parent(&j->o->base, NULL);
	return 0;
}

static void test_O3_each_misuse_one_diag_naming_object(void **state)
{
	(void)state;
	relay_thread *t = start_thread("o3-diag");
	obj *w = worker_obj(t, 1);
	assert_int_equal(relay_object_set_name(&w->base, "victim-worker"), 0);
	obj *p = new_obj(NULL, 2);
	obj *c = new_obj(&p->base, 3);
	assert_int_equal(relay_object_set_name(&c->base, "victim-child"), 0);
	obj *m = NULL;
	assert_int_equal(relay_object_new(&m, &mainonly_class, NULL), 0);
	assert_int_equal(relay_object_set_name(&m->base, "victim-gui"), 0);

	unsigned long before = relay_diag_count();
	diag_reset();

	assert_int_equal(relay_object_move_to_thread(&c->base, t), RELAY_EHASPARENT);
	expect_one_diag(RELAY_EHASPARENT, "victim-child");
	assert_int_equal(relay_diag_count(), before + 1);

	assert_int_equal(relay_object_move_to_thread(&m->base, t), RELAY_EMAINONLY);
	expect_one_diag(RELAY_EMAINONLY, "victim-gui");
	assert_int_equal(relay_diag_count(), before + 2);

	assert_int_equal(relay_object_destroy(&w->base), RELAY_EWRONGTHREAD);
	expect_one_diag(RELAY_EWRONGTHREAD, "victim-worker");
	assert_int_equal(relay_diag_count(), before + 3);

	assert_int_equal(relay_object_move_to_thread(&w->base, NULL), RELAY_EWRONGTHREAD);
	expect_one_diag(RELAY_EWRONGTHREAD, "victim-worker");
	assert_int_equal(relay_diag_count(), before + 4);

	assert_int_equal(relay_object_set_parent(&c->base, &w->base), RELAY_EPARENTTHREAD);
	expect_one_diag(RELAY_EPARENTTHREAD, "victim-child");
	assert_int_equal(relay_diag_count(), before + 5);

	job j = { .o = c };
	run_in(w, job_misuse_in_worker, &j);
	assert_int_equal(j.rc, RELAY_EWRONGTHREAD);
	expect_one_diag(RELAY_EWRONGTHREAD, "victim-child");
	assert_int_equal(relay_diag_count(), before + 6);

	/* Correct calls report nothing. */
	assert_int_equal(relay_object_set_parent(&c->base, NULL), 0);
	assert_int_equal(relay_object_destroy(&c->base), 0);
	assert_int_equal(diag_count(), 0);
	assert_int_equal(relay_diag_count(), before + 6);

	assert_int_equal(relay_object_delete_later(&w->base), 0);
	stop_thread(t);
	assert_int_equal(relay_object_destroy(&p->base), 0);
	assert_int_equal(relay_object_destroy(&m->base), 0);
}

/* Runs in a fresh process (fork + exec of this binary): one misuse. */
static int fatal_child(void)
{
	obj *p = NULL, *c = NULL;
	if (relay_object_new(&p, &obj_class, NULL) != 0)
		return 3;
	if (relay_object_new(&c, &obj_class, &p->base) != 0)
		return 4;
	relay_object_set_name(&c->base, "fatal-victim");
	int rc = relay_object_move_to_thread(&c->base, NULL);
	/* Only reached when diagnostics are not fatal. */
	relay_object_destroy(&p->base);
	return rc == RELAY_EHASPARENT ? 0 : 5;
}

static int run_self(bool fatal)
{
	char exe[4096];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
	assert_true(n > 0);
	exe[n] = '\0';
	char *argv[] = { exe, (char *)"--fatal-child", NULL };
	fflush(NULL);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct rlimit rl = { 0, 0 };
		setrlimit(RLIMIT_CORE, &rl);
		if (fatal)
			setenv("RELAY_FATAL_WARNINGS", "1", 1);
		else
			unsetenv("RELAY_FATAL_WARNINGS");
		execv(exe, argv);
		_exit(127);
	}
	int status = 0;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	return status;
}

static void test_O3_fatal_warnings_abort(void **state)
{
	(void)state;
	int st = run_self(true);
	if (!WIFSIGNALED(st))
		fail_msg("child with RELAY_FATAL_WARNINGS=1 did not die of a signal "
			 "(exit status %d)", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
	assert_int_equal(WTERMSIG(st), SIGABRT);

	/* Control: the same misuse without the variable returns normally. */
	st = run_self(false);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
}

/* ---------------------------------------------------------------------
 * Weak references
 * --------------------------------------------------------------------- */

static void test_weak_null_after_destroy(void **state)
{
	(void)state;
	obj *o = new_obj(NULL, 1);
	relay_weak a = { 0 }, b = { 0 };
	assert_null(relay_weak_get(&a));
	assert_int_equal(relay_weak_set(&a, &o->base), 0);
	assert_int_equal(relay_weak_set(&b, &o->base), 0);
	assert_ptr_equal(relay_weak_get(&a), &o->base);
	assert_ptr_equal(relay_weak_get(&b), &o->base);
	assert_int_equal(relay_object_destroy(&o->base), 0);
	assert_null(relay_weak_get(&a));
	assert_null(relay_weak_get(&b));
	relay_weak_clear(&a);
	relay_weak_clear(&b);
	assert_null(relay_weak_get(&a));

	/* A child destroyed through its parent clears too. */
	obj *p = new_obj(NULL, 2);
	obj *c = new_obj(&p->base, 3);
	assert_int_equal(relay_weak_set(&a, &c->base), 0);
	assert_int_equal(relay_object_destroy(&p->base), 0);
	assert_null(relay_weak_get(&a));
	relay_weak_clear(&a);
}

static void test_weak_clear_and_reset(void **state)
{
	(void)state;
	obj *o1 = new_obj(NULL, 1);
	obj *o2 = new_obj(NULL, 2);
	relay_weak w = { 0 };
	assert_int_equal(relay_weak_set(&w, &o1->base), 0);
	/* Re-pointing a set reference. */
	assert_int_equal(relay_weak_set(&w, &o2->base), 0);
	assert_ptr_equal(relay_weak_get(&w), &o2->base);
	/* Setting NULL clears. */
	assert_int_equal(relay_weak_set(&w, NULL), 0);
	assert_null(relay_weak_get(&w));
	assert_int_equal(relay_weak_set(&w, &o1->base), 0);
	relay_weak_clear(&w);
	assert_null(relay_weak_get(&w));
	relay_weak_clear(&w);   /* twice is harmless */
	/* Objects are unaffected. */
	assert_int_equal(atomic_load(&g_fin_count), 0);
	assert_int_equal(relay_object_destroy(&o1->base), 0);
	assert_int_equal(relay_object_destroy(&o2->base), 0);
	/* A reference kept past the object's end and cleared afterwards. */
	obj *o3 = new_obj(NULL, 3);
	assert_int_equal(relay_weak_set(&w, &o3->base), 0);
	assert_int_equal(relay_object_destroy(&o3->base), 0);
	assert_null(relay_weak_get(&w));
	relay_weak_clear(&w);
}

static void *foreign_weak_get(void *p)
{
	relay_weak *w = p;
	return relay_weak_get(w);
}

static void test_weak_across_threads(void **state)
{
	(void)state;
	relay_thread *t = start_thread("weak-x");
	obj *w = worker_obj(t, 1);
	relay_weak wk = { 0 };
	assert_int_equal(relay_weak_set(&wk, &w->base), 0);   /* any thread */
	assert_ptr_equal(relay_weak_get(&wk), &w->base);

	pthread_t th;
	void *got = NULL;
	assert_int_equal(pthread_create(&th, NULL, foreign_weak_get, &wk), 0);
	pthread_join(th, &got);
	assert_ptr_equal(got, &w->base);

	assert_int_equal(relay_object_delete_later(&w->base), 0);
	WAIT_UNTIL(relay_weak_get(&wk) == NULL);
	assert_int_equal(pthread_create(&th, NULL, foreign_weak_get, &wk), 0);
	pthread_join(th, &got);
	assert_null(got);
	relay_weak_clear(&wk);
	stop_thread(t);
}

/* ---------------------------------------------------------------------
 * Names, blocked signals, set_parent, arguments
 * --------------------------------------------------------------------- */

static void *foreign_rename(void *p)
{
	obj *o = p;
	return relay_object_set_name(&o->base, "bob") == 0 ? NULL : (void *)1;
}

static void test_object_name_default_and_set(void **state)
{
	(void)state;
	obj *o = new_obj(NULL, 1);
	char buf[128];
	assert_int_equal(relay_object_name(&o->base, buf, sizeof buf), 0);
	/* "<class>@<address>" */
	const char *at = strchr(buf, '@');
	if (at == NULL || strncmp(buf, "tobj@", 5) != 0)
		fail_msg("default name is \"%s\", expected \"tobj@<address>\"", buf);
	uintptr_t addr = (uintptr_t)strtoull(at + 1, NULL, 16);
	assert_true(addr == (uintptr_t)o);

	assert_int_equal(relay_object_set_name(&o->base, "alice"), 0);
	assert_int_equal(relay_object_name(&o->base, buf, sizeof buf), 0);
	assert_string_equal(buf, "alice");

	/* At most 63 bytes are kept. */
	char longname[200];
	memset(longname, 'x', sizeof longname - 1);
	longname[sizeof longname - 1] = '\0';
	assert_int_equal(relay_object_set_name(&o->base, longname), 0);
	assert_int_equal(relay_object_name(&o->base, buf, sizeof buf), 0);
	assert_int_equal(strlen(buf), 63);
	assert_memory_equal(buf, longname, 63);

	/* A small buffer is never overrun. */
	char small[16];
	memset(small, 'Z', sizeof small);
	relay_object_name(&o->base, small, 4);
	for (size_t i = 4; i < sizeof small; i++)
		assert_int_equal(small[i], 'Z');
	assert_true(memchr(small, '\0', 4) != NULL);

	/* Renaming from another thread is allowed ("Any thread"). */
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, foreign_rename, o), 0);
	void *rc = NULL;
	pthread_join(th, &rc);
	assert_null(rc);
	assert_int_equal(relay_object_name(&o->base, buf, sizeof buf), 0);
	assert_string_equal(buf, "bob");
	assert_int_equal(relay_object_destroy(&o->base), 0);
}

static void test_block_signals(void **state)
{
	(void)state;
	obj *s = new_obj(NULL, 1);
	obj *r = new_obj(NULL, 2);
	assert_int_equal(relay_connect(s, sig, r, on_sig), 0);
	assert_int_equal(relay_connect_ex(s, ping, r, on_ping, RELAY_QUEUED, 0u, NULL), 0);
	bool was = true;
	assert_int_equal(relay_object_block_signals(&s->base, true, &was), 0);
	assert_false(was);
	int v = 1;
	relay_emit(s, sig, &v);
	relay_emit(s, ping);
	for (int i = 0; i < 3; i++)
		relay_loop_run_once(0);
	assert_int_equal(atomic_load(&r->hits), 0);

	assert_int_equal(relay_object_block_signals(&s->base, true, &was), 0);
	assert_true(was);
	assert_int_equal(relay_object_block_signals(&s->base, false, &was), 0);
	assert_true(was);
	assert_int_equal(relay_object_block_signals(&s->base, false, NULL), 0);
	v = 2;
	assert_int_equal(relay_emit(s, sig, &v), 0);
	assert_int_equal(atomic_load(&r->hits), 1);
	assert_int_equal(r->values[0], 2);

	/* destroyed is still emitted while blocked. */
	atomic_store(&g_destroyed_sig_fin, -1);
	assert_int_equal(relay_connect_func(&s->base, destroyed, on_destroyed, NULL), 0);
	assert_int_equal(relay_object_block_signals(&s->base, true, NULL), 0);
	assert_int_equal(relay_object_destroy(&s->base), 0);
	assert_int_equal(atomic_load(&g_destroyed_sig_fin), 0);
	assert_int_equal(relay_object_destroy(&r->base), 0);
}

static void test_set_parent_cycle_einval(void **state)
{
	(void)state;
	obj *a = new_obj(NULL, 1);
	obj *b = new_obj(&a->base, 2);
	obj *c = new_obj(&b->base, 3);
	diag_reset();
	assert_int_equal(relay_object_set_parent(&a->base, &a->base), -EINVAL);
	assert_int_equal(relay_object_set_parent(&a->base, &c->base), -EINVAL);
	assert_int_equal(relay_object_set_parent(&b->base, &c->base), -EINVAL);
	assert_null(relay_object_parent(&a->base));
	assert_ptr_equal(relay_object_parent(&b->base), &a->base);
	assert_ptr_equal(relay_object_parent(&c->base), &b->base);

	/* Re-parenting inside the tree is fine; NULL unparents. */
	assert_int_equal(relay_object_set_parent(&c->base, &a->base), 0);
	assert_ptr_equal(relay_object_parent(&c->base), &a->base);
	assert_int_equal(relay_object_set_parent(&c->base, NULL), 0);
	assert_null(relay_object_parent(&c->base));

	/* c no longer goes with a. */
	assert_int_equal(relay_object_destroy(&a->base), 0);
	assert_int_equal(atomic_load(&g_fin_count), 2);
	assert_int_equal(relay_object_destroy(&c->base), 0);
	assert_int_equal(atomic_load(&g_fin_count), 3);
}

static void test_object_init_caller_memory(void **state)
{
	(void)state;
	obj *o = calloc(1, sizeof *o);
	assert_non_null(o);
	assert_int_equal(relay_object_init(&o->base, &obj_class, NULL), 0);
	o->id = 5;
	obj *c = new_obj(&o->base, 6);
	(void)c;
	assert_ptr_equal(relay_object_thread(&o->base), relay_thread_main());
	assert_int_equal(relay_object_destroy(&o->base), 0);
	assert_int_equal(atomic_load(&g_fin_count), 2);
	/* relay does not free memory it did not allocate. */
	free(o);
}

static void test_null_args_einval(void **state)
{
	(void)state;
	obj *o = new_obj(NULL, 1);
	obj *out = NULL;
	char buf[32];
	relay_weak w = { 0 };

	assert_int_equal(relay_object_init(NULL, &obj_class, NULL), -EINVAL);
	obj *z = calloc(1, sizeof *z);
	assert_int_equal(relay_object_init(&z->base, NULL, NULL), -EINVAL);
	free(z);
	assert_int_equal(relay_object_alloc(sizeof(obj), &obj_class, NULL, NULL), -EINVAL);
	assert_int_equal(relay_object_new(&out, NULL, NULL), -EINVAL);
	assert_null(out);
	assert_int_equal(relay_object_alloc(sizeof(relay_object) - 1, &obj_class, NULL, &out),
			 -EINVAL);
	assert_null(out);
	assert_int_equal(relay_object_destroy(NULL), -EINVAL);
	assert_int_equal(relay_object_delete_later(NULL), -EINVAL);
	assert_int_equal(relay_object_move_to_thread(NULL, relay_thread_main()), -EINVAL);
	assert_int_equal(relay_object_set_parent(NULL, &o->base), -EINVAL);
	assert_int_equal(relay_object_set_parent(NULL, NULL), -EINVAL);
	assert_null(relay_object_parent(NULL));
	assert_null(relay_object_thread(NULL));
	assert_int_equal(relay_object_set_name(NULL, "x"), -EINVAL);
	assert_int_equal(relay_object_name(NULL, buf, sizeof buf), -EINVAL);
	assert_int_equal(relay_object_name(&o->base, NULL, 10), -EINVAL);
	assert_int_equal(relay_object_block_signals(NULL, true, NULL), -EINVAL);
	assert_int_equal(relay_weak_set(NULL, &o->base), -EINVAL);
	assert_null(relay_weak_get(NULL));
	relay_weak_clear(NULL);
	assert_null(relay_weak_get(&w));
	/* No diagnostics and no state change for plain bad arguments. */
	assert_int_equal(atomic_load(&g_fin_count), 0);
	assert_int_equal(relay_object_destroy(&o->base), 0);
}

/* A class that gives its size refuses an object pointer of a smaller
 * type: relay_object_new sizes the object by the pointer it fills in. */
static void test_O3_new_refuses_pointer_smaller_than_class(void **state)
{
	(void)state;
	relay_object *plain = (relay_object *)(void *)0x1;
	unsigned long before = relay_diag_count();
	assert_int_equal(relay_object_new(&plain, &obj_class, NULL), -EINVAL);
	assert_null(plain);
	assert_int_equal(relay_diag_count() - before, 1);
	assert_int_equal(relay_object_alloc(sizeof(obj) - 1, &obj_class, NULL, &plain), -EINVAL);
	obj *right = NULL;
	assert_int_equal(relay_object_new(&right, &obj_class, NULL), 0);
	assert_int_equal(relay_object_destroy(right), 0);
	assert_int_equal(atomic_load(&g_fin_count), 1);
}

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "--fatal-child") == 0)
		return fatal_child();

	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_O1_object_lives_in_creating_thread, setup, teardown),
		cmocka_unit_test_setup_teardown(test_O1_move_from_own_thread, setup, teardown),
		cmocka_unit_test_setup_teardown(test_O1_move_refused_with_parent, setup, teardown),
		cmocka_unit_test_setup_teardown(test_O1_move_refused_main_thread_only, setup, teardown),
		cmocka_unit_test_setup_teardown(test_O1_main_thread_only_init_outside_main_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_O1_move_from_non_owner_thread_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_O1_move_detached_object_from_any_thread, setup, teardown),
		cmocka_unit_test_setup_teardown(test_O1_children_move_with_parent, setup, teardown),
		cmocka_unit_test_setup_teardown(test_O1_timers_move_with_object, setup, teardown),
		cmocka_unit_test_setup_teardown(test_O1_pending_events_move_in_order, setup, teardown),
		cmocka_unit_test_setup_teardown(test_O1_pending_events_move_from_inside_slot, setup, teardown),
		cmocka_unit_test_setup_teardown(test_O1_move_ping_pong_under_flood_keeps_order, setup, teardown),
		cmocka_unit_test_setup_teardown(test_O2_parent_in_other_thread_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_O2_destroy_parent_destroys_children, setup, teardown),
		cmocka_unit_test_setup_teardown(test_O2_reentrant_destroy_during_destruction, setup, teardown),
		cmocka_unit_test_setup_teardown(test_O2_destroy_child_unlinks_from_parent, setup, teardown),
		cmocka_unit_test_setup_teardown(test_O2_destroy_from_other_thread_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_O2_delete_later_runs_in_owner_thread_next_pass, setup, teardown),
		cmocka_unit_test_setup_teardown(test_O3_each_misuse_one_diag_naming_object, setup, teardown),
		cmocka_unit_test_setup_teardown(test_O3_fatal_warnings_abort, setup, teardown),
		cmocka_unit_test_setup_teardown(test_weak_null_after_destroy, setup, teardown),
		cmocka_unit_test_setup_teardown(test_weak_clear_and_reset, setup, teardown),
		cmocka_unit_test_setup_teardown(test_weak_across_threads, setup, teardown),
		cmocka_unit_test_setup_teardown(test_object_name_default_and_set, setup, teardown),
		cmocka_unit_test_setup_teardown(test_block_signals, setup, teardown),
		cmocka_unit_test_setup_teardown(test_set_parent_cycle_einval, setup, teardown),
		cmocka_unit_test_setup_teardown(test_object_init_caller_memory, setup, teardown),
		cmocka_unit_test_setup_teardown(test_null_args_einval, setup, teardown),
		cmocka_unit_test_setup_teardown(test_O3_new_refuses_pointer_smaller_than_class, setup,
						teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
