/*
 * test_thread.c - relay_thread (QThread): started/finished (T1), quit,
 * exit, wait, interruption (T2), refused destroy, stop, adoption of
 * foreign pthreads (T3), delete_later exactly once and never leaked (T4),
 * structured shutdown (T5), names and main-thread queries.
 *
 * No test asserts on timing: only counts, order, thread identity, return
 * codes and diagnostics. Waits are bounded by a generous safety timeout.
 */
#include "objtest.h"

#include <sys/syscall.h>

typedef struct job {
	obj *o;
	relay_thread *t;
	int rc, rc2, rc3;
	relay_thread *cur;
	pthread_t self;
	pid_t tid;
	bool flag;
	char text[64];
} job;

/* ---------------------------------------------------------------------
 * T1: started, finished, the handle's affinity
 * --------------------------------------------------------------------- */

/* An order log written from any thread: the slot is claimed, written,
 * then published (g_order_done counts published entries). */
static atomic_int g_order_n, g_order_done;
static int g_order[16];
static void order_push(int v)
{
	int i = atomic_fetch_add(&g_order_n, 1);
	if (i < 16)
		g_order[i] = v;
	atomic_fetch_add(&g_order_done, 1);
}

static void on_started_worker(obj *self)
{
	record(self, 1);
	order_push(1);
}

static void early_invoke(void *p)
{
	(void)p;
	order_push(2);
}

static void test_T1_started_emitted_from_new_thread(void **state)
{
	(void)state;
	atomic_store(&g_order_n, 0);
	atomic_store(&g_order_done, 0);
	relay_thread *t = new_thread("t1-started");
	obj *w = worker_obj(t, 1);      /* lives in t before t runs */
	obj *m = new_obj(NULL, 2);      /* lives in main */
	assert_int_equal(relay_connect(t, started, w, on_started_worker), 0);
	assert_int_equal(relay_connect(t, started, m, on_ping), 0);
	/* An event posted before start: the loop runs it after started. */
	assert_int_equal(relay_invoke(&w->base, early_invoke, NULL, NULL), 0);

	assert_int_equal(relay_thread_start(t), 0);
	RUN_UNTIL(atomic_load(&m->hits) == 1);
	WAIT_UNTIL(atomic_load(&w->hits) == 1 && atomic_load(&g_order_done) == 2);

	/* The direct slot ran in the new thread, the queued one in main. */
	assert_ptr_equal(w->threads[0], t);
	assert_false(pthread_equal(w->pthreads[0], pthread_self()));
	assert_ptr_equal(m->threads[0], relay_thread_main());
	assert_true(pthread_equal(m->pthreads[0], pthread_self()));
	/* started before the loop ran the pending event. */
	assert_int_equal(g_order[0], 1);
	assert_int_equal(g_order[1], 2);

	assert_int_equal(relay_object_delete_later(&w->base), 0);
	stop_thread(t);
	assert_int_equal(relay_object_destroy(&m->base), 0);
}

static atomic_int g_fin_at_finished = -1;
static _Atomic(relay_thread *) g_finished_thread;
static void on_finished_direct(void *data)
{
	(void)data;
	atomic_store(&g_fin_at_finished, atomic_load(&g_fin_count));
	atomic_store(&g_finished_thread, relay_thread_current());
}

static void delete_then_quit(void *p)
{
	obj *o = p;
	/* Both happen in one pass: the deletion waits for a pass that never
	 * comes, so it is pending when the loop stops. */
	relay_object_delete_later(&o->base);
	relay_loop_quit();
}

static void test_T1_finished_after_deferred_deletions(void **state)
{
	(void)state;
	atomic_store(&g_fin_at_finished, -1);
	atomic_store(&g_finished_thread, NULL);
	relay_thread *t = start_thread("t1-finished");
	obj *w = worker_obj(t, 1);
	obj *m = new_obj(NULL, 2);
	assert_int_equal(relay_connect_func(t, finished, on_finished_direct, NULL), 0);
	assert_int_equal(relay_connect(t, finished, m, on_ping), 0);

	assert_int_equal(relay_invoke(&w->base, delete_then_quit, w, NULL), 0);
	assert_int_equal(relay_thread_wait(t, SAFETY_MS), 0);
	assert_true(relay_thread_is_finished(t));
	/* finished ran in the thread, after the deletion. */
	assert_int_equal(atomic_load(&g_fin_at_finished), 1);
	assert_ptr_equal(atomic_load(&g_finished_thread), t);
	assert_int_equal(atomic_load(&g_fin_count), 1);
	assert_ptr_equal(g_fin_threads[0], t);
	/* The queued connection reaches main. */
	RUN_UNTIL(atomic_load(&m->hits) == 1);
	assert_ptr_equal(m->threads[0], relay_thread_main());

	/* Also when the quit comes from outside right after delete_later. */
	atomic_store(&g_fin_at_finished, -1);
	assert_int_equal(relay_thread_start(t), 0);
	obj *w2 = worker_obj(t, 3);
	assert_int_equal(relay_object_delete_later(&w2->base), 0);
	assert_int_equal(relay_thread_quit(t), 0);
	assert_int_equal(relay_thread_wait(t, SAFETY_MS), 0);
	assert_int_equal(atomic_load(&g_fin_at_finished), 2);
	assert_int_equal(atomic_load(&g_fin_count), 2);

	assert_int_equal(relay_thread_destroy(t), 0);
	assert_int_equal(relay_object_destroy(&m->base), 0);
}

static int job_create_thread(void *p)
{
	job *j = p;
	j->rc = relay_thread_create("t1-inner", NULL, &j->t);
	return 0;
}

static int job_destroy_thread(void *p)
{
	job *j = p;
	j->rc = relay_thread_destroy(j->t);
	return 0;
}

static void test_T1_handle_lives_in_creating_thread(void **state)
{
	(void)state;
	relay_thread *t = start_thread("t1-handle");
	assert_ptr_equal(relay_object_thread(&t->base), relay_thread_current());
	assert_ptr_equal(relay_object_thread(&t->base), relay_thread_main());
	assert_true(relay_thread_current() != t);

	/* A handle made in the worker lives in the worker. */
	obj *w = worker_obj(t, 1);
	job j = { 0 };
	run_in(w, job_create_thread, &j);
	assert_int_equal(j.rc, 0);
	assert_non_null(j.t);
	assert_ptr_equal(relay_object_thread(&j.t->base), t);
	/* ... so main may not destroy it ... */
	assert_int_equal(relay_thread_destroy(j.t), RELAY_EWRONGTHREAD);
	expect_one_diag(RELAY_EWRONGTHREAD, NULL);
	/* ... but its owner may. */
	run_in(w, job_destroy_thread, &j);
	assert_int_equal(j.rc, 0);

	/* With a parent: a child of the parent, destroyed with it. */
	obj *p = new_obj(NULL, 2);
	relay_thread *c = NULL;
	assert_int_equal(relay_thread_create("t1-child", &p->base, &c), 0);
	assert_ptr_equal(relay_object_parent(&c->base), &p->base);
	relay_weak wk = { 0 };
	assert_int_equal(relay_weak_set(&wk, &c->base), 0);
	assert_int_equal(relay_object_destroy(&p->base), 0);
	assert_null(relay_weak_get(&wk));
	relay_weak_clear(&wk);

	assert_int_equal(relay_object_delete_later(&w->base), 0);
	stop_thread(t);
}

/* ---------------------------------------------------------------------
 * T2: quit, exit, wait, interruption
 * --------------------------------------------------------------------- */

static void test_T2_quit_right_after_start_not_lost(void **state)
{
	(void)state;
	relay_thread *t = new_thread("t2-quitstart");
	for (int i = 0; i < 50; i++) {
		assert_int_equal(relay_thread_start(t), 0);
		assert_int_equal(relay_thread_quit(t), 0);
		assert_int_equal(relay_thread_wait(t, SAFETY_MS), 0);
		assert_true(relay_thread_is_finished(t));
		assert_false(relay_thread_is_running(t));
	}
	assert_int_equal(relay_thread_destroy(t), 0);
}

static void test_T2_quit_before_start_is_kept(void **state)
{
	(void)state;
	relay_thread *t = new_thread("t2-quitfirst");
	assert_int_equal(relay_thread_quit(t), 0);
	assert_int_equal(relay_thread_start(t), 0);
	assert_int_equal(relay_thread_wait(t, SAFETY_MS), 0);
	assert_true(relay_thread_is_finished(t));

	relay_thread *t2 = new_thread("t2-exitfirst");
	assert_int_equal(relay_thread_exit(t2, 3), 0);
	assert_int_equal(relay_thread_start(t2), 0);
	assert_int_equal(relay_thread_wait(t2, SAFETY_MS), 0);
	assert_true(relay_thread_is_finished(t2));

	assert_int_equal(relay_thread_destroy(t), 0);
	assert_int_equal(relay_thread_destroy(t2), 0);
}

static void *foreign_quit(void *p)
{
	relay_thread *t = p;
	return (void *)(intptr_t)relay_thread_quit(t);
}

static void *foreign_main_exit(void *p)
{
	(void)p;
	return (void *)(intptr_t)relay_main_exit(42);
}

static atomic_int g_nested_rc = -1;
static atomic_int g_nested_in;
static void nested_run(void *p)
{
	(void)p;
	atomic_store(&g_nested_in, 1);
	atomic_store(&g_nested_rc, relay_loop_run());
}

static void test_T2_quit_and_exit_from_any_thread(void **state)
{
	(void)state;
	/* quit from a plain pthread */
	relay_thread *t = start_thread("t2-anyquit");
	pthread_t th;
	void *ret = (void *)1;
	assert_int_equal(pthread_create(&th, NULL, foreign_quit, t), 0);
	pthread_join(th, &ret);
	assert_int_equal((int)(intptr_t)ret, 0);
	assert_int_equal(relay_thread_wait(t, SAFETY_MS), 0);
	assert_true(relay_thread_is_finished(t));

	/* exit(code) reaches the loop the thread is running: a nested run
	 * inside a slot returns the code. */
	atomic_store(&g_nested_rc, -1);
	atomic_store(&g_nested_in, 0);
	assert_int_equal(relay_thread_start(t), 0);
	obj *w = worker_obj(t, 1);
	assert_int_equal(relay_invoke(&w->base, nested_run, NULL, NULL), 0);
	WAIT_UNTIL(atomic_load(&g_nested_in) == 1);
	assert_int_equal(relay_thread_exit(t, 5), 0);
	WAIT_UNTIL(atomic_load(&g_nested_rc) != -1);
	assert_int_equal(atomic_load(&g_nested_rc), 5);
	assert_int_equal(relay_object_delete_later(&w->base), 0);
	stop_thread(t);

	/* relay_main_exit from another pthread ends main's relay_loop_run
	 * with its code. */
	assert_int_equal(pthread_create(&th, NULL, foreign_main_exit, NULL), 0);
	int rc = relay_loop_run();
	pthread_join(th, &ret);
	assert_int_equal((int)(intptr_t)ret, 0);
	assert_int_equal(rc, 42);
}

static void test_T2_wait_timeout_on_running_thread(void **state)
{
	(void)state;
	relay_thread *t = start_thread("t2-wait");
	assert_int_equal(relay_thread_wait(t, 20), -ETIMEDOUT);
	assert_int_equal(relay_thread_wait(t, 0), -ETIMEDOUT);
	assert_false(relay_thread_is_finished(t));
	stop_thread(t);

	/* A thread never started: wait returns 0 at once. */
	relay_thread *n = new_thread("t2-never");
	assert_int_equal(relay_thread_wait(n, 0), 0);
	assert_int_equal(relay_thread_wait(n, -1), 0);
	assert_int_equal(relay_thread_destroy(n), 0);
}

static int job_wait_self(void *p)
{
	job *j = p;
	j->rc = relay_thread_wait(j->t, 0);
	j->rc2 = relay_thread_wait(j->t, -1);   /* must not hang */
	j->rc3 = relay_thread_wait(relay_thread_current(), 10);
	return 0;
}

static void *foreign_wait_self(void *p)
{
	job *j = p;
	j->rc = relay_thread_wait(relay_thread_current(), -1);
	return NULL;
}

static void test_T2_wait_on_self_refused(void **state)
{
	(void)state;
	relay_thread *t = start_thread("t2-waitself");
	obj *w = worker_obj(t, 1);
	job j = { .t = t };
	run_in(w, job_wait_self, &j);
	assert_int_equal(j.rc, RELAY_EWAITSELF);
	assert_int_equal(j.rc2, RELAY_EWAITSELF);
	assert_int_equal(j.rc3, RELAY_EWAITSELF);
	assert_int_equal(diag_count(), 3);
	assert_int_equal(g_diag.last_code, RELAY_EWAITSELF);
	assert_int_equal(g_diag.with_newline, 0);
	diag_reset();

	/* The main thread on itself. */
	assert_int_equal(relay_thread_wait(relay_thread_main(), -1), RELAY_EWAITSELF);
	expect_one_diag(RELAY_EWAITSELF, NULL);

	/* An adopted pthread on itself. */
	pthread_t th;
	job k = { 0 };
	assert_int_equal(pthread_create(&th, NULL, foreign_wait_self, &k), 0);
	pthread_join(th, NULL);
	assert_int_equal(k.rc, RELAY_EWAITSELF);
	expect_one_diag(RELAY_EWAITSELF, NULL);

	assert_int_equal(relay_object_delete_later(&w->base), 0);
	stop_thread(t);
}

static atomic_int g_busy_state;   /* 1 running, 2 saw interruption, 3 gave up */
static _Atomic bool g_busy_thread_flag;
static void busy_until_interrupted(void *p)
{
	relay_thread *t = p;
	atomic_store(&g_busy_state, 1);
	uint64_t dl = now_ms() + SAFETY_MS;
	while (!relay_interruption_requested()) {
		if (now_ms() > dl) {
			atomic_store(&g_busy_state, 3);
			return;
		}
		sleep_ms(1);
	}
	atomic_store(&g_busy_thread_flag, relay_thread_interruption_requested(t));
	atomic_store(&g_busy_state, 2);
}

static void test_T2_interruption_requested_from_main(void **state)
{
	(void)state;
	atomic_store(&g_busy_state, 0);
	atomic_store(&g_busy_thread_flag, false);
	relay_thread *t = start_thread("t2-interrupt");
	obj *w = worker_obj(t, 1);
	assert_false(relay_thread_interruption_requested(t));
	assert_int_equal(relay_invoke(&w->base, busy_until_interrupted, t, NULL), 0);
	WAIT_UNTIL(atomic_load(&g_busy_state) != 0);
	assert_int_equal(relay_thread_request_interruption(t), 0);
	assert_true(relay_thread_interruption_requested(t));
	WAIT_UNTIL(atomic_load(&g_busy_state) >= 2);
	assert_int_equal(atomic_load(&g_busy_state), 2);
	assert_true(atomic_load(&g_busy_thread_flag));
	/* Only that thread was asked. */
	assert_false(relay_interruption_requested());
	assert_false(relay_thread_interruption_requested(relay_thread_main()));

	assert_int_equal(relay_object_delete_later(&w->base), 0);
	stop_thread(t);
}

static void test_T2_is_running_is_finished_and_restart(void **state)
{
	(void)state;
	relay_thread *t = new_thread("t2-states");
	assert_false(relay_thread_is_running(t));
	assert_false(relay_thread_is_finished(t));
	obj *m = new_obj(NULL, 1);
	assert_int_equal(relay_connect(t, started, m, on_ping), 0);

	assert_int_equal(relay_thread_start(t), 0);
	RUN_UNTIL(atomic_load(&m->hits) == 1);
	assert_true(relay_thread_is_running(t));
	assert_false(relay_thread_is_finished(t));
	assert_int_equal(relay_thread_stop(t, SAFETY_MS), 0);
	assert_false(relay_thread_is_running(t));
	assert_true(relay_thread_is_finished(t));

	/* A finished thread may be started again: started comes again. */
	assert_int_equal(relay_thread_start(t), 0);
	RUN_UNTIL(atomic_load(&m->hits) == 2);
	assert_true(relay_thread_is_running(t));
	assert_false(relay_thread_is_finished(t));
	assert_ptr_equal(m->threads[1], relay_thread_main());
	assert_int_equal(relay_thread_stop(t, SAFETY_MS), 0);
	assert_true(relay_thread_is_finished(t));

	assert_false(relay_thread_is_running(NULL));
	assert_false(relay_thread_is_finished(NULL));
	assert_int_equal(relay_thread_destroy(t), 0);
	assert_int_equal(relay_object_destroy(&m->base), 0);
}

/* The seed's pattern: a worker signal connected to relay_slot_quit. */
static void emit_ping(void *p)
{
	obj *o = p;
	relay_emit(o, ping);
}

static void test_T2_slot_quit_from_worker_signal(void **state)
{
	(void)state;
	relay_thread *t = start_thread("t2-slotquit");
	obj *w = worker_obj(t, 1);
	/* The handle lives in main: the slot runs in main (queued). */
	assert_int_equal(relay_connect(w, ping, t, relay_slot_quit), 0);
	assert_int_equal(relay_connect(w, ping, &w->base, relay_slot_delete_later), 0);
	assert_int_equal(relay_invoke(&w->base, emit_ping, w, NULL), 0);
	RUN_UNTIL(relay_thread_is_finished(t));
	assert_int_equal(relay_thread_wait(t, SAFETY_MS), 0);
	assert_int_equal(atomic_load(&g_fin_count), 1);
	assert_ptr_equal(g_fin_threads[0], t);
	assert_int_equal(relay_thread_destroy(t), 0);
}

/* ---------------------------------------------------------------------
 * T3: refused destroy, stop, adoption
 * --------------------------------------------------------------------- */

static void test_T3_destroy_running_thread_refused(void **state)
{
	(void)state;
	relay_thread *t = start_thread("t3-running");
	assert_int_equal(relay_thread_destroy(t), RELAY_ERUNNING);
	expect_one_diag(RELAY_ERUNNING, NULL);
	assert_int_equal(relay_object_destroy(&t->base), RELAY_ERUNNING);
	expect_one_diag(RELAY_ERUNNING, NULL);
	assert_int_equal(relay_thread_start(t), RELAY_ERUNNING);
	diag_reset();
	/* Still alive and usable. */
	assert_false(relay_thread_is_finished(t));
	obj *w = worker_obj(t, 1);
	assert_int_equal(relay_object_delete_later(&w->base), 0);
	WAIT_UNTIL(atomic_load(&g_fin_count) == 1);
	stop_thread(t);
	assert_int_equal(diag_count(), 0);
}

static atomic_int g_release;
static atomic_int g_busy;
static void busy_until_released(void *p)
{
	(void)p;
	atomic_store(&g_busy, 1);
	uint64_t dl = now_ms() + SAFETY_MS;
	while (!atomic_load(&g_release) && now_ms() < dl)
		sleep_ms(1);
	atomic_store(&g_busy, 2);
}

static void test_T3_stop_is_quit_and_wait(void **state)
{
	(void)state;
	atomic_store(&g_release, 0);
	atomic_store(&g_busy, 0);
	relay_thread *t = start_thread("t3-stop");
	assert_int_equal(relay_thread_stop(t, SAFETY_MS), 0);
	assert_true(relay_thread_is_finished(t));

	/* A busy worker does not stop within a short deadline... */
	assert_int_equal(relay_thread_start(t), 0);
	obj *w = worker_obj(t, 1);
	assert_int_equal(relay_invoke(&w->base, busy_until_released, NULL, NULL), 0);
	WAIT_UNTIL(atomic_load(&g_busy) == 1);
	assert_int_equal(relay_thread_stop(t, 20), -ETIMEDOUT);
	assert_true(relay_thread_is_running(t));
	/* ...and stops once it returns to its loop (the quit was kept). */
	atomic_store(&g_release, 1);
	assert_int_equal(relay_thread_wait(t, SAFETY_MS), 0);
	assert_true(relay_thread_is_finished(t));
	assert_int_equal(relay_object_delete_later(&w->base), 0);
	assert_int_equal(relay_thread_destroy(t), 0);
	assert_int_equal(atomic_load(&g_fin_count), 1);
}

typedef struct foreign {
	_Atomic(obj *) o;
	relay_thread *cur;
	relay_thread *main_seen;
	bool is_main;
	relay_thread *obj_thread;
	relay_thread *slot_thread;
	int handled;
	int hits;
	int value;
	int rc, rc2;
	pthread_t self;
	atomic_int go;
	atomic_int ready;   /* rc (and o) are set */
} foreign;

static void *foreign_adopted(void *p)
{
	foreign *f = p;
	f->self = pthread_self();
	f->cur = relay_thread_current();
	f->main_seen = relay_thread_main();
	f->is_main = relay_is_main_thread();
	obj *o = NULL;
	f->rc = relay_object_new(&o, &obj_class, NULL);
	if (f->rc != 0) {
		atomic_store(&f->ready, 1);
		return NULL;
	}
	o->id = 7;
	f->obj_thread = relay_object_thread(&o->base);
	atomic_store(&f->o, o);
	atomic_store(&f->ready, 1);
	uint64_t dl = now_ms() + SAFETY_MS;
	while (atomic_load(&o->hits) < 1 && now_ms() < dl) {
		int n = relay_loop_run_once(10);
		if (n > 0)
			f->handled += n;
	}
	f->hits = atomic_load(&o->hits);
	if (f->hits > 0) {
		f->slot_thread = o->threads[0];
		f->value = o->values[0];
	}
	f->rc2 = relay_object_destroy(&o->base);
	return NULL;
}

static void test_T3_foreign_pthread_adopted(void **state)
{
	(void)state;
	obj *src = new_obj(NULL, 1);
	foreign f = { .o = NULL };
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, foreign_adopted, &f), 0);
	WAIT_UNTIL(atomic_load(&f.ready) == 1);
	assert_int_equal(f.rc, 0);
	obj *o = atomic_load(&f.o);
	assert_int_equal(relay_connect(src, sig, o, on_sig), 0);
	int v = 9;
	assert_int_equal(relay_emit(src, sig, &v), 0);
	pthread_join(th, NULL);

	assert_non_null(f.cur);
	assert_true(f.cur != relay_thread_main());
	assert_ptr_equal(f.main_seen, relay_thread_main());
	assert_false(f.is_main);
	assert_ptr_equal(f.obj_thread, f.cur);
	assert_int_equal(f.hits, 1);
	assert_int_equal(f.value, 9);
	assert_ptr_equal(f.slot_thread, f.cur);
	assert_true(f.handled >= 1);
	assert_int_equal(f.rc2, 0);
	assert_int_equal(atomic_load(&g_fin_count), 1);
	assert_true(pthread_equal(g_fin_pthreads[0], f.self));
	assert_int_equal(relay_object_destroy(&src->base), 0);
}

/* ---------------------------------------------------------------------
 * T4: delete_later exactly once, never leaked
 * --------------------------------------------------------------------- */

static void test_T4_delete_later_exactly_once(void **state)
{
	(void)state;
	/* Worker object, requested three times from main while the worker is
	 * busy (so that it cannot be destroyed between the calls: a call on a
	 * destroyed object is use after free, not something to test). */
	atomic_store(&g_release, 0);
	atomic_store(&g_busy, 0);
	relay_thread *t = start_thread("t4-once");
	obj *w = worker_obj(t, 1);
	obj *b = worker_obj(t, 2);
	assert_int_equal(relay_invoke(&b->base, busy_until_released, NULL, NULL), 0);
	WAIT_UNTIL(atomic_load(&g_busy) == 1);
	assert_int_equal(relay_object_delete_later(&w->base), 0);
	assert_int_equal(relay_object_delete_later(&w->base), 0);
	assert_int_equal(relay_object_delete_later(&w->base), 0);
	atomic_store(&g_release, 1);
	WAIT_UNTIL(atomic_load(&g_fin_count) >= 1);
	assert_int_equal(relay_object_delete_later(&b->base), 0);
	WAIT_UNTIL(atomic_load(&g_fin_count) >= 2);
	stop_thread(t);
	assert_int_equal(atomic_load(&g_fin_count), 2);
	assert_int_equal(g_fin_ids[0], 1);
	assert_ptr_equal(g_fin_threads[0], t);

	/* Main object, three requests, several passes. */
	obj *o = new_obj(NULL, 2);
	assert_int_equal(relay_object_delete_later(&o->base), 0);
	assert_int_equal(relay_object_delete_later(&o->base), 0);
	assert_int_equal(relay_object_delete_later(&o->base), 0);
	for (int i = 0; i < 5; i++)
		relay_loop_run_once(0);
	assert_int_equal(atomic_load(&g_fin_count), 3);

	/* Parent and child both requested: each finalized once. */
	obj *p = new_obj(NULL, 3);
	obj *c = new_obj(&p->base, 4);
	assert_int_equal(relay_object_delete_later(&p->base), 0);
	assert_int_equal(relay_object_delete_later(&c->base), 0);
	for (int i = 0; i < 5; i++)
		relay_loop_run_once(0);
	assert_int_equal(atomic_load(&g_fin_count), 5);
}

static void *foreign_owner(void *p)
{
	foreign *f = p;
	f->self = pthread_self();
	obj *o = NULL;
	f->rc = relay_object_new(&o, &obj_class, NULL);
	if (f->rc != 0) {
		atomic_store(&f->ready, 1);
		return NULL;
	}
	o->id = 11;
	/* Run the loop a little, then stop running it. */
	relay_loop_run_once(0);
	atomic_store(&f->o, o);
	atomic_store(&f->ready, 1);
	uint64_t dl = now_ms() + SAFETY_MS;
	while (!atomic_load(&f->go) && now_ms() < dl)
		sleep_ms(1);
	/* Exits without running a loop again. */
	return NULL;
}

static void test_T4_delete_later_loop_stopped_runs_at_thread_finish(void **state)
{
	(void)state;
	foreign f = { .o = NULL };
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, foreign_owner, &f), 0);
	WAIT_UNTIL(atomic_load(&f.ready) == 1);
	assert_int_equal(f.rc, 0);
	obj *o = atomic_load(&f.o);
	assert_int_equal(relay_object_delete_later(&o->base), 0);
	assert_int_equal(relay_object_delete_later(&o->base), 0);
	atomic_store(&f.go, 1);
	pthread_join(th, NULL);
	/* Destroyed when its thread finished, in that thread, once. */
	assert_int_equal(atomic_load(&g_fin_count), 1);
	assert_int_equal(g_fin_ids[0], 11);
	assert_true(pthread_equal(g_fin_pthreads[0], f.self));
}

static void del_in_finished(void *data)
{
	relay_object_delete_later((relay_object *)data);
}

static void test_T4_delete_later_from_finished_slot_not_leaked(void **state)
{
	(void)state;
	relay_thread *t = start_thread("t4-finslot");
	obj *w = worker_obj(t, 1);
	assert_int_equal(relay_connect_func(t, finished, del_in_finished, &w->base), 0);
	assert_int_equal(relay_thread_stop(t, SAFETY_MS), 0);
	assert_int_equal(relay_thread_destroy(t), 0);
	assert_int_equal(atomic_load(&g_fin_count), 1);
}

static void test_T4_delete_later_after_thread_finished(void **state)
{
	(void)state;
	relay_thread *t = start_thread("t4-finished");
	obj *w = worker_obj(t, 1);
	obj *w2 = worker_obj(t, 2);
	assert_int_equal(relay_thread_stop(t, SAFETY_MS), 0);
	assert_true(relay_thread_is_finished(t));

	/* The thread is gone: destroyed right now, in the calling thread. */
	assert_int_equal(relay_object_delete_later(&w->base), 0);
	assert_int_equal(atomic_load(&g_fin_count), 1);
	assert_ptr_equal(g_fin_threads[0], relay_thread_main());

	/* After the handle is destroyed too. */
	assert_int_equal(relay_thread_destroy(t), 0);
	assert_int_equal(relay_object_delete_later(&w2->base), 0);
	assert_int_equal(atomic_load(&g_fin_count), 2);
	assert_int_equal(g_fin_ids[1], 2);
}

/* ---------------------------------------------------------------------
 * T5: structured shutdown
 * --------------------------------------------------------------------- */

static void quit_main_slot(obj *self)
{
	record(self, 0);
	relay_main_quit();
}

static void exit3_main_slot(obj *self)
{
	record(self, 3);
	relay_main_exit(3);
}

static int job_main_run(void *p)
{
	job *j = p;
	j->rc = relay_main_run(10);
	return 0;
}

static void test_T5_main_run_returns_after_threads_stopped(void **state)
{
	(void)state;
	relay_thread *t1 = start_thread("t5-one");
	relay_thread *t2 = start_thread("t5-two");
	obj *w1 = worker_obj(t1, 1);
	obj *w2 = worker_obj(t2, 2);

	/* relay_main_run is for the main thread only. */
	job j = { 0 };
	run_in(w1, job_main_run, &j);
	assert_int_equal(j.rc, RELAY_EWRONGTHREAD);
	diag_reset();

	obj *m = new_obj(NULL, 3);
	assert_int_equal(relay_single_shot(1, m, quit_main_slot), 0);
	assert_int_equal(relay_main_run(SAFETY_MS), 0);
	assert_int_equal(atomic_load(&m->hits), 1);
	assert_true(relay_thread_is_finished(t1));
	assert_true(relay_thread_is_finished(t2));
	assert_false(relay_thread_is_running(t1));
	assert_false(relay_thread_is_running(t2));
	assert_int_equal(diag_count(), 0);

	/* The exit code comes back; threads can be started again. */
	assert_int_equal(relay_thread_start(t1), 0);
	assert_int_equal(relay_single_shot(1, m, exit3_main_slot), 0);
	assert_int_equal(relay_main_run(SAFETY_MS), 3);
	assert_true(relay_thread_is_finished(t1));

	/* Objects of finished threads are destroyed right away. */
	assert_int_equal(relay_object_delete_later(&w1->base), 0);
	assert_int_equal(relay_object_delete_later(&w2->base), 0);
	assert_int_equal(atomic_load(&g_fin_count), 2);
	assert_int_equal(relay_thread_destroy(t1), 0);
	assert_int_equal(relay_thread_destroy(t2), 0);
	assert_int_equal(relay_object_destroy(&m->base), 0);
}

static void test_T5_main_run_names_stragglers(void **state)
{
	(void)state;
	atomic_store(&g_release, 0);
	atomic_store(&g_busy, 0);
	relay_thread *t = start_thread("t5-straggler");
	obj *w = worker_obj(t, 1);
	assert_int_equal(relay_invoke(&w->base, busy_until_released, NULL, NULL), 0);
	WAIT_UNTIL(atomic_load(&g_busy) == 1);

	obj *m = new_obj(NULL, 2);
	assert_int_equal(relay_single_shot(1, m, quit_main_slot), 0);
	assert_int_equal(relay_main_run(50), 0);
	pthread_mutex_lock(&g_diag.lock);
	int n = g_diag.count;
	char line[512];
	memcpy(line, g_diag.last_line, sizeof line);
	pthread_mutex_unlock(&g_diag.lock);
	if (n != 1 || strstr(line, "t5-straggler") == NULL)
		fail_msg("expected one diagnostic naming t5-straggler, got %d: \"%s\"", n, line);
	diag_reset();

	atomic_store(&g_release, 1);
	assert_int_equal(relay_thread_wait(t, SAFETY_MS), 0);
	assert_int_equal(relay_object_delete_later(&w->base), 0);
	assert_int_equal(relay_thread_destroy(t), 0);
	assert_int_equal(relay_object_destroy(&m->base), 0);
	assert_int_equal(atomic_load(&g_fin_count), 2);
}

static atomic_int g_copies, g_frees;
static int count_copy(void *dst, const void *src)
{
	memcpy(dst, src, sizeof(int));
	atomic_fetch_add(&g_copies, 1);
	return 0;
}
static void count_free(void *p)
{
	(void)p;
	atomic_fetch_add(&g_frees, 1);
}
static const relay_payload_ops count_ops = { count_copy, count_free };

static void test_T5_nothing_queued_silently_lost(void **state)
{
	(void)state;
	atomic_store(&g_copies, 0);
	atomic_store(&g_frees, 0);
	atomic_store(&g_release, 0);
	atomic_store(&g_busy, 0);
	obj *src = new_obj(NULL, 1);
	assert_int_equal(relay_signal_set_ops(src, sig, &count_ops), 0);
	relay_thread *t = start_thread("t5-dropped");
	obj *w = worker_obj(t, 2);
	assert_int_equal(relay_connect(src, sig, w, on_sig), 0);

	relay_loop_stats s0, s1;
	assert_int_equal(relay_thread_stats(t, &s0), 0);
	assert_int_equal(relay_invoke(&w->base, busy_until_released, NULL, NULL), 0);
	WAIT_UNTIL(atomic_load(&g_busy) == 1);
	/* Posted while the worker is busy; then quit: the loop stops after
	 * this pass, with these still queued. */
	for (int i = 1; i <= 10; i++)
		assert_int_equal(relay_emit(src, sig, &i), 0);
	assert_int_equal(relay_thread_quit(t), 0);
	atomic_store(&g_release, 1);
	assert_int_equal(relay_thread_wait(t, SAFETY_MS), 0);
	int delivered = atomic_load(&w->hits);
	assert_true(delivered <= 10);

	/* Posted to a thread that never runs again. */
	for (int i = 11; i <= 15; i++)
		assert_int_equal(relay_emit(src, sig, &i), 0);
	assert_int_equal(relay_object_delete_later(&w->base), 0);
	assert_int_equal(atomic_load(&g_fin_count), 1);
	assert_int_equal(relay_thread_stats(t, &s1), 0);
	assert_int_equal(relay_thread_destroy(t), 0);

	/* Every copy freed exactly once; none delivered after the finish (the
	 * invoke, the slot calls before the quit, and the deferred deletion,
	 * which is an event too, were). */
	assert_int_equal(atomic_load(&g_copies), 15);
	assert_int_equal(atomic_load(&g_frees), 15);
	assert_int_equal(s1.delivered - s0.delivered, 2u + (uint64_t)delivered);
	assert_int_equal(relay_object_destroy(&src->base), 0);
}

/* The events stranded in a finished thread's queue belong to a receiver
 * that is then destroyed: destroy drops and frees what is queued to it,
 * and the thread's stats count them (observable before the handle goes). */
static void test_T5_dropped_counted_when_receiver_destroyed(void **state)
{
	(void)state;
	atomic_store(&g_copies, 0);
	atomic_store(&g_frees, 0);
	atomic_store(&g_release, 0);
	atomic_store(&g_busy, 0);
	obj *src = new_obj(NULL, 1);
	assert_int_equal(relay_signal_set_ops(src, sig, &count_ops), 0);
	relay_thread *t = start_thread("t5-counted");
	obj *w = worker_obj(t, 2);
	assert_int_equal(relay_connect(src, sig, w, on_sig), 0);

	relay_loop_stats s0, s1;
	assert_int_equal(relay_thread_stats(t, &s0), 0);
	assert_int_equal(relay_invoke(&w->base, busy_until_released, NULL, NULL), 0);
	WAIT_UNTIL(atomic_load(&g_busy) == 1);
	for (int i = 1; i <= 10; i++)
		assert_int_equal(relay_emit(src, sig, &i), 0);
	assert_int_equal(relay_thread_quit(t), 0);
	atomic_store(&g_release, 1);
	assert_int_equal(relay_thread_wait(t, SAFETY_MS), 0);
	int delivered = atomic_load(&w->hits);
	for (int i = 11; i <= 15; i++)
		assert_int_equal(relay_emit(src, sig, &i), 0);

	/* The receiver goes (its thread has finished: destroyed right now). */
	assert_int_equal(relay_object_delete_later(&w->base), 0);
	assert_int_equal(atomic_load(&g_fin_count), 1);
	int frees_at_destroy = atomic_load(&g_frees);
	assert_int_equal(relay_thread_stats(t, &s1), 0);
	assert_int_equal(relay_thread_destroy(t), 0);
	assert_int_equal(relay_object_destroy(&src->base), 0);

	/* 1 invoke + 15 emits + the deferred deletion. */
	uint64_t dd = s1.delivered - s0.delivered, dr = s1.dropped - s0.dropped;
	if (frees_at_destroy != 15 - delivered || dd + dr != 17u)
		fail_msg("after the receiver was destroyed: %d of %d undelivered copies "
			 "freed, stats delivered %llu + dropped %llu != 17 events",
			 frees_at_destroy, 15 - delivered, (unsigned long long)dd,
			 (unsigned long long)dr);
}

/* ---------------------------------------------------------------------
 * Names and main-thread queries
 * --------------------------------------------------------------------- */

static int job_read_comm(void *p)
{
	job *j = p;
	j->tid = (pid_t)syscall(SYS_gettid);
	char path[64];
	snprintf(path, sizeof path, "/proc/self/task/%d/comm", (int)j->tid);
	FILE *f = fopen(path, "r");
	j->text[0] = '\0';
	if (f) {
		if (fgets(j->text, sizeof j->text, f) == NULL)
			j->text[0] = '\0';
		fclose(f);
	}
	char *nl = strchr(j->text, '\n');
	if (nl)
		*nl = '\0';
	return 0;
}

static void check_name(const char *given, const char *shown)
{
	relay_thread *t = start_thread(given);
	char buf[64];
	assert_int_equal(relay_thread_name(t, buf, sizeof buf), 0);
	if (given == NULL) {
		assert_string_equal(buf, "relay");
	} else {
		/* At least the first 15 bytes are kept. */
		size_t n = strlen(buf);
		assert_true(n >= (strlen(given) < 15 ? strlen(given) : 15));
		assert_memory_equal(buf, given, n);
	}
	obj *w = worker_obj(t, 1);
	job j = { 0 };
	run_in(w, job_read_comm, &j);
	assert_string_equal(j.text, shown);
	assert_int_equal(relay_object_delete_later(&w->base), 0);
	stop_thread(t);
}

static void test_thread_name_visible(void **state)
{
	(void)state;
	check_name("relay-wkr-1", "relay-wkr-1");
	check_name("a-very-long-thread-name", "a-very-long-thr");
	check_name(NULL, "relay");

	relay_thread *t = new_thread("abcdef");
	char small[16];
	memset(small, 'Z', sizeof small);
	assert_int_equal(relay_thread_name(t, small, 4), 0);
	assert_string_equal(small, "abc");
	assert_int_equal(small[4], 'Z');
	assert_int_equal(relay_thread_destroy(t), 0);

	char buf[64];
	assert_int_equal(relay_thread_name(relay_thread_main(), buf, sizeof buf), 0);
	assert_true(buf[0] != '\0');
}

static int job_queries(void *p)
{
	job *j = p;
	j->flag = relay_is_main_thread();
	j->cur = relay_thread_current();
	j->t = relay_thread_main();
	return 0;
}

static void *foreign_queries(void *p)
{
	job_queries(p);
	return NULL;
}

static void test_main_thread_queries(void **state)
{
	(void)state;
	relay_thread *m = relay_thread_main();
	assert_non_null(m);
	assert_ptr_equal(relay_thread_current(), m);
	assert_true(relay_is_main_thread());
	assert_ptr_equal(relay_object_thread(&m->base), m);
	assert_false(relay_thread_is_finished(m));

	relay_thread *t = start_thread("q-worker");
	obj *w = worker_obj(t, 1);
	job j = { 0 };
	run_in(w, job_queries, &j);
	assert_false(j.flag);
	assert_ptr_equal(j.cur, t);
	assert_ptr_equal(j.t, m);

	pthread_t th;
	job k = { 0 };
	assert_int_equal(pthread_create(&th, NULL, foreign_queries, &k), 0);
	pthread_join(th, NULL);
	assert_false(k.flag);
	assert_non_null(k.cur);
	assert_true(k.cur != m && k.cur != t);
	assert_ptr_equal(k.t, m);

	assert_int_equal(relay_object_delete_later(&w->base), 0);
	stop_thread(t);
}

static void test_thread_null_args_einval(void **state)
{
	(void)state;
	relay_thread *t = new_thread("nullargs");
	char buf[16];
	relay_loop_stats st;
	assert_int_equal(relay_thread_create("x", NULL, NULL), -EINVAL);
	assert_int_equal(relay_thread_start(NULL), -EINVAL);
	assert_int_equal(relay_thread_quit(NULL), -EINVAL);
	assert_int_equal(relay_thread_exit(NULL, 1), -EINVAL);
	assert_int_equal(relay_thread_wait(NULL, 0), -EINVAL);
	assert_int_equal(relay_thread_stop(NULL, 0), -EINVAL);
	assert_int_equal(relay_thread_destroy(NULL), -EINVAL);
	assert_int_equal(relay_thread_request_interruption(NULL), -EINVAL);
	assert_false(relay_thread_interruption_requested(NULL));
	assert_false(relay_thread_is_running(NULL));
	assert_false(relay_thread_is_finished(NULL));
	assert_int_equal(relay_thread_name(NULL, buf, sizeof buf), -EINVAL);
	assert_int_equal(relay_thread_name(t, NULL, sizeof buf), -EINVAL);
	assert_int_equal(relay_thread_stats(NULL, &st), -EINVAL);
	assert_int_equal(relay_thread_stats(t, NULL), -EINVAL);
	assert_int_equal(relay_thread_destroy(t), 0);
}

static int job_gettid_or_one(void *p)
{
	(void)p;
	return 1;
}

/* T3: a parent whose child is the handle of a running thread is not
 * destroyed (its finalizer would join a thread nobody quit: a hang). */
static void test_T3_destroy_parent_of_running_thread_refused(void **state)
{
	(void)state;
	obj *parent = new_obj(NULL, 1);
	relay_thread *t = NULL;
	assert_int_equal(relay_thread_create("t3-child", &parent->base, &t), 0);
	assert_int_equal(relay_thread_start(t), 0);
	assert_int_equal(relay_object_destroy(&parent->base), RELAY_ERUNNING);
	expect_one_diag(RELAY_ERUNNING, "t3-child");
	assert_int_equal(atomic_load(&g_fin_count), 0);
	assert_true(relay_thread_is_running(t));
	assert_int_equal(relay_thread_stop(t, SAFETY_MS), 0);
	assert_int_equal(relay_object_destroy(&parent->base), 0);   /* and the handle with it */
	assert_int_equal(atomic_load(&g_fin_count), 1);
}

/* T4: delete_later on the handle of a running thread is refused when it
 * comes to run (with a diagnostic), not lost: a later one works. */
static void test_T4_delete_later_running_handle_can_be_retried(void **state)
{
	(void)state;
	relay_thread *t = start_thread("t4-handle");
	relay_weak w = { 0 };
	assert_int_equal(relay_weak_set(&w, &t->base), 0);
	assert_int_equal(relay_object_delete_later(&t->base), 0);
	drain();
	expect_one_diag(RELAY_ERUNNING, "t4-handle");
	assert_non_null(relay_weak_get(&w));
	assert_int_equal(relay_thread_stop(t, SAFETY_MS), 0);
	assert_int_equal(relay_object_delete_later(&t->base), 0);
	RUN_UNTIL(relay_weak_get(&w) == NULL);
	relay_weak_clear(&w);
}

/* T2: a quit sent to a thread that has finished does not end its next run
 * (only a quit before a run is kept). */
static void test_T2_quit_after_finish_not_kept(void **state)
{
	(void)state;
	relay_thread *t = start_thread("t2-again");
	assert_int_equal(relay_thread_stop(t, SAFETY_MS), 0);
	assert_int_equal(relay_thread_quit(t), 0);        /* nothing runs: no effect */
	assert_int_equal(relay_thread_start(t), 0);
	obj *w = worker_obj(t, 7);
	/* the restarted loop serves calls: it did not quit at once */
	assert_int_equal(run_in(w, job_gettid_or_one, NULL) != 0, 1);
	assert_true(relay_thread_is_running(t));
	assert_int_equal(relay_object_delete_later(&w->base), 0);
	stop_thread(t);
}

/* T2: a quit that ends a loop run by a slot of `started` also ends the
 * thread's own loop, which has not begun yet (QThread::exit: exec returns
 * at once): one quit, the thread finishes. */
typedef struct nester {
	relay_object base;
	atomic_int in_nested, returned;
} nester;

static const relay_class nester_class = { .name = "nester", .size = sizeof(nester) };

static void nester_run(nester *self)
{
	atomic_store(&self->in_nested, 1);
	relay_loop_run();
	atomic_store(&self->returned, 1);
}

static void test_T2_quit_during_nested_loop_in_started_finishes(void **state)
{
	(void)state;
	relay_thread *t = NULL;
	nester *n = NULL;
	assert_int_equal(relay_thread_create("t2-nested", NULL, &t), 0);
	assert_int_equal(relay_object_new(&n, &nester_class, NULL), 0);
	assert_int_equal(relay_object_move_to_thread(n, t), 0);
	assert_int_equal(relay_connect(t, started, n, nester_run), 0);
	assert_int_equal(relay_connect(t, finished, n, relay_slot_delete_later), 0);
	assert_int_equal(relay_thread_start(t), 0);
	WAIT_UNTIL(atomic_load(&n->in_nested));
	assert_int_equal(relay_thread_quit(t), 0);
	assert_int_equal(relay_thread_wait(t, SAFETY_MS), 0);
	assert_true(relay_thread_is_finished(t));
	assert_int_equal(relay_thread_destroy(t), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_T1_started_emitted_from_new_thread, setup, teardown),
		cmocka_unit_test_setup_teardown(test_T1_finished_after_deferred_deletions, setup, teardown),
		cmocka_unit_test_setup_teardown(test_T1_handle_lives_in_creating_thread, setup, teardown),
		cmocka_unit_test_setup_teardown(test_T2_quit_right_after_start_not_lost, setup, teardown),
		cmocka_unit_test_setup_teardown(test_T2_quit_before_start_is_kept, setup, teardown),
		cmocka_unit_test_setup_teardown(test_T2_quit_and_exit_from_any_thread, setup, teardown),
		cmocka_unit_test_setup_teardown(test_T2_wait_timeout_on_running_thread, setup, teardown),
		cmocka_unit_test_setup_teardown(test_T2_wait_on_self_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_T2_interruption_requested_from_main, setup, teardown),
		cmocka_unit_test_setup_teardown(test_T2_is_running_is_finished_and_restart, setup, teardown),
		cmocka_unit_test_setup_teardown(test_T2_slot_quit_from_worker_signal, setup, teardown),
		cmocka_unit_test_setup_teardown(test_T3_destroy_running_thread_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_T3_stop_is_quit_and_wait, setup, teardown),
		cmocka_unit_test_setup_teardown(test_T3_foreign_pthread_adopted, setup, teardown),
		cmocka_unit_test_setup_teardown(test_T4_delete_later_exactly_once, setup, teardown),
		cmocka_unit_test_setup_teardown(test_T4_delete_later_loop_stopped_runs_at_thread_finish, setup, teardown),
		cmocka_unit_test_setup_teardown(test_T4_delete_later_from_finished_slot_not_leaked, setup, teardown),
		cmocka_unit_test_setup_teardown(test_T4_delete_later_after_thread_finished, setup, teardown),
		cmocka_unit_test_setup_teardown(test_T5_main_run_returns_after_threads_stopped, setup, teardown),
		cmocka_unit_test_setup_teardown(test_T5_main_run_names_stragglers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_T5_nothing_queued_silently_lost, setup, teardown),
		cmocka_unit_test_setup_teardown(test_T5_dropped_counted_when_receiver_destroyed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_thread_name_visible, setup, teardown),
		cmocka_unit_test_setup_teardown(test_main_thread_queries, setup, teardown),
		cmocka_unit_test_setup_teardown(test_thread_null_args_einval, setup, teardown),
		cmocka_unit_test_setup_teardown(test_T3_destroy_parent_of_running_thread_refused,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_T4_delete_later_running_handle_can_be_retried,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_T2_quit_after_finish_not_kept, setup, teardown),
		cmocka_unit_test_setup_teardown(test_T2_quit_during_nested_loop_in_started_finishes,
						setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
