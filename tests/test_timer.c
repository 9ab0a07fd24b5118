/*
 * test_timer.c - relay_timer and relay_single_shot: timers fire in their
 * object's thread, repeat or fire once, change interval, stop and restart;
 * single shots run in the receiver's thread and are skipped when it is
 * destroyed first; starting or stopping from another thread is refused
 * (RELAY_ETIMERTHREAD, with a diagnostic); a timer follows its object to
 * another thread and goes with its parent.
 *
 * Never an assertion on timing: ticks are counted (at least N after
 * running the loop until N were seen), never timed.
 */
#include "objtest.h"

typedef struct job {
	obj *o;
	relay_timer *tm;
	relay_thread *t;
	int rc, rc2, rc3, rc4;
	bool flag;
} job;

static void on_tick(obj *self)
{
	record(self, -1);
}

/* Runs the calling thread's loop for `passes` short passes: a "nothing
 * more arrives" check after a sync point, never a timing assertion. */
static void run_passes(int passes)
{
	for (int i = 0; i < passes; i++)
		relay_loop_run_once(2);
}

/* Counts ticks through a context-free (direct) function connection and
 * records the thread each ran in. */
typedef struct tickrec {
	atomic_int n;
	relay_thread *threads[MAXLOG];
	relay_object *senders[MAXLOG];
} tickrec;

static void count_tick(void *data)
{
	tickrec *r = data;
	int i = atomic_load(&r->n);
	if (i < MAXLOG) {
		r->threads[i] = relay_thread_current();
		r->senders[i] = relay_sender();
	}
	atomic_store(&r->n, i + 1);
}

static relay_timer *new_timer(relay_object *parent)
{
	relay_timer *tm = NULL;
	assert_int_equal(relay_timer_create(parent, &tm), 0);
	assert_non_null(tm);
	return tm;
}

/* ---------------------------------------------------------------------
 * Basic behaviour in the main thread
 * --------------------------------------------------------------------- */

static void test_timer_defaults(void **state)
{
	(void)state;
	relay_timer *tm = new_timer(NULL);
	assert_false(relay_timer_is_active(tm));
	assert_int_equal(relay_timer_interval(tm), 0);
	assert_ptr_equal(relay_object_thread(&tm->base), relay_thread_main());
	assert_null(relay_object_parent(&tm->base));
	/* start(ms < 0) keeps the current interval (0). */
	assert_int_equal(relay_timer_start(tm, -1), 0);
	assert_true(relay_timer_is_active(tm));
	assert_int_equal(relay_timer_interval(tm), 0);
	assert_int_equal(relay_timer_stop(tm), 0);
	assert_false(relay_timer_is_active(tm));
	assert_int_equal(relay_object_destroy(&tm->base), 0);
}

static void test_timer_zero_interval_fires_on_next_pass(void **state)
{
	(void)state;
	tickrec r = { 0 };
	relay_timer *tm = new_timer(NULL);
	assert_int_equal(relay_connect_func(tm, timeout, count_tick, &r), 0);
	assert_int_equal(relay_timer_start(tm, 0), 0);
	assert_int_equal(atomic_load(&r.n), 0);   /* never inside start */
	RUN_UNTIL(atomic_load(&r.n) >= 1);
	int n = atomic_load(&r.n);
	/* Repeating: every pass fires it again. */
	assert_true(relay_loop_run_once(0) >= 1);
	assert_true(atomic_load(&r.n) > n);
	assert_ptr_equal(r.threads[0], relay_thread_main());
	assert_ptr_equal(r.senders[0], &tm->base);
	assert_int_equal(relay_object_destroy(&tm->base), 0);
}

static void test_timer_single_shot_fires_once(void **state)
{
	(void)state;
	obj *o = new_obj(NULL, 1);
	relay_timer *tm = new_timer(&o->base);
	assert_ptr_equal(relay_object_parent(&tm->base), &o->base);
	assert_int_equal(relay_connect(tm, timeout, o, on_tick), 0);
	assert_int_equal(relay_timer_set_single_shot(tm, true), 0);
	assert_int_equal(relay_timer_start(tm, 1), 0);
	assert_true(relay_timer_is_active(tm));
	RUN_UNTIL(atomic_load(&o->hits) >= 1);
	assert_false(relay_timer_is_active(tm));
	run_passes(10);
	assert_int_equal(atomic_load(&o->hits), 1);
	assert_ptr_equal(o->threads[0], relay_thread_main());

	/* Started again, it fires once more. */
	assert_int_equal(relay_timer_start(tm, 0), 0);
	RUN_UNTIL(atomic_load(&o->hits) >= 2);
	run_passes(10);
	assert_int_equal(atomic_load(&o->hits), 2);
	assert_false(relay_timer_is_active(tm));
	assert_int_equal(relay_object_destroy(&o->base), 0);
}

static void test_timer_repeating_fires_in_main_thread(void **state)
{
	(void)state;
	relay_loop_stats s0, s1;
	assert_int_equal(relay_thread_stats(relay_thread_main(), &s0), 0);
	obj *o = new_obj(NULL, 1);
	relay_timer *tm = new_timer(&o->base);
	assert_int_equal(relay_connect(tm, timeout, o, on_tick), 0);
	assert_int_equal(relay_timer_start(tm, 1), 0);
	RUN_UNTIL(atomic_load(&o->hits) >= 5);
	assert_true(relay_timer_is_active(tm));
	assert_int_equal(relay_timer_stop(tm), 0);
	int n = atomic_load(&o->hits);
	for (int i = 0; i < n && i < MAXLOG; i++)
		assert_ptr_equal(o->threads[i], relay_thread_main());
	assert_int_equal(relay_thread_stats(relay_thread_main(), &s1), 0);
	assert_int_equal(s1.timers_fired - s0.timers_fired, (uint64_t)n);
	assert_int_equal(relay_object_destroy(&o->base), 0);
}

static int job_make_timer(void *p)
{
	job *j = p;
	j->rc = relay_timer_create(&j->o->base, &j->tm);
	if (j->rc == 0) {
		j->rc2 = relay_connect(j->tm, timeout, j->o, on_tick);
		j->rc3 = relay_timer_start(j->tm, 1);
	}
	return 0;
}

static void test_timer_repeating_fires_in_worker_thread(void **state)
{
	(void)state;
	relay_thread *t = start_thread("tm-worker");
	obj *w = worker_obj(t, 1);
	job j = { .o = w };
	run_in(w, job_make_timer, &j);
	assert_int_equal(j.rc, 0);
	assert_int_equal(j.rc2, 0);
	assert_int_equal(j.rc3, 0);
	assert_ptr_equal(relay_object_thread(&j.tm->base), t);
	assert_true(relay_timer_is_active(j.tm));   /* any thread */
	WAIT_UNTIL(atomic_load(&w->hits) >= 5);
	for (int i = 0; i < 5; i++)
		assert_ptr_equal(w->threads[i], t);
	relay_loop_stats st;
	assert_int_equal(relay_thread_stats(t, &st), 0);
	assert_true(st.timers_fired >= 5);
	/* The timer goes with its parent. */
	assert_int_equal(relay_object_delete_later(&w->base), 0);
	stop_thread(t);
	assert_int_equal(atomic_load(&g_fin_count), 1);
}

static void test_timer_interval_change(void **state)
{
	(void)state;
	obj *o = new_obj(NULL, 1);
	relay_timer *tm = new_timer(&o->base);
	assert_int_equal(relay_connect(tm, timeout, o, on_tick), 0);
	assert_int_equal(relay_timer_set_interval(tm, 5), 0);
	assert_int_equal(relay_timer_interval(tm), 5);
	assert_false(relay_timer_is_active(tm));   /* setting does not start */
	assert_int_equal(relay_timer_start(tm, -1), 0);
	assert_int_equal(relay_timer_interval(tm), 5);
	assert_int_equal(relay_timer_start(tm, 2), 0);
	assert_int_equal(relay_timer_interval(tm), 2);
	assert_true(relay_timer_is_active(tm));
	/* Changed while running: it keeps running with the new interval. */
	assert_int_equal(relay_timer_set_interval(tm, 1), 0);
	assert_int_equal(relay_timer_interval(tm), 1);
	assert_true(relay_timer_is_active(tm));
	RUN_UNTIL(atomic_load(&o->hits) >= 3);
	/* A long interval set while running: no tick for a while. */
	assert_int_equal(relay_timer_set_interval(tm, 60 * 60 * 1000), 0);
	int n = atomic_load(&o->hits);
	run_passes(10);
	assert_int_equal(atomic_load(&o->hits), n);
	assert_true(relay_timer_is_active(tm));
	assert_int_equal(relay_object_destroy(&o->base), 0);
}

static relay_timer *g_stop_tm;
static void stop_on_third(obj *self)
{
	record(self, -1);
	if (atomic_load(&self->hits) == 3)
		relay_timer_stop(g_stop_tm);
}

static void test_timer_stop(void **state)
{
	(void)state;
	obj *o = new_obj(NULL, 1);
	relay_timer *tm = new_timer(&o->base);
	assert_int_equal(relay_connect(tm, timeout, o, on_tick), 0);
	assert_int_equal(relay_timer_stop(tm), 0);   /* stopping a stopped timer */
	assert_int_equal(relay_timer_start(tm, 1), 0);
	RUN_UNTIL(atomic_load(&o->hits) >= 2);
	assert_int_equal(relay_timer_stop(tm), 0);
	assert_false(relay_timer_is_active(tm));
	int n = atomic_load(&o->hits);
	run_passes(20);
	assert_int_equal(atomic_load(&o->hits), n);
	assert_int_equal(relay_timer_stop(tm), 0);
	assert_int_equal(relay_object_destroy(&o->base), 0);

	/* Stopped from its own slot: exactly three ticks. */
	obj *p = new_obj(NULL, 2);
	g_stop_tm = new_timer(&p->base);
	assert_int_equal(relay_connect(g_stop_tm, timeout, p, stop_on_third), 0);
	assert_int_equal(relay_timer_start(g_stop_tm, 0), 0);
	RUN_UNTIL(atomic_load(&p->hits) >= 3);
	run_passes(20);
	assert_int_equal(atomic_load(&p->hits), 3);
	assert_false(relay_timer_is_active(g_stop_tm));
	assert_int_equal(relay_object_destroy(&p->base), 0);
}

static void test_timer_restart(void **state)
{
	(void)state;
	obj *o = new_obj(NULL, 1);
	relay_timer *tm = new_timer(&o->base);
	assert_int_equal(relay_connect(tm, timeout, o, on_tick), 0);
	assert_int_equal(relay_timer_start(tm, 1), 0);
	RUN_UNTIL(atomic_load(&o->hits) >= 2);
	/* start on a running timer restarts it: still one timer. */
	assert_int_equal(relay_timer_start(tm, 1), 0);
	assert_true(relay_timer_is_active(tm));
	RUN_UNTIL(atomic_load(&o->hits) >= 4);
	assert_int_equal(relay_timer_stop(tm), 0);
	int n = atomic_load(&o->hits);
	run_passes(5);
	assert_int_equal(atomic_load(&o->hits), n);
	assert_int_equal(relay_timer_start(tm, -1), 0);
	assert_true(relay_timer_is_active(tm));
	RUN_UNTIL(atomic_load(&o->hits) >= n + 2);
	assert_int_equal(relay_object_destroy(&o->base), 0);
}

static void test_timer_single_shot_flag(void **state)
{
	(void)state;
	obj *o = new_obj(NULL, 1);
	relay_timer *tm = new_timer(&o->base);
	assert_int_equal(relay_connect(tm, timeout, o, on_tick), 0);
	assert_int_equal(relay_timer_set_single_shot(tm, true), 0);
	assert_int_equal(relay_timer_start(tm, 0), 0);
	RUN_UNTIL(atomic_load(&o->hits) >= 1);
	run_passes(5);
	assert_int_equal(atomic_load(&o->hits), 1);
	assert_false(relay_timer_is_active(tm));

	/* Back to repeating. */
	assert_int_equal(relay_timer_set_single_shot(tm, false), 0);
	assert_int_equal(relay_timer_start(tm, 0), 0);
	RUN_UNTIL(atomic_load(&o->hits) >= 4);
	assert_true(relay_timer_is_active(tm));

	/* Made single-shot while running: the next tick is the last. */
	assert_int_equal(relay_timer_set_single_shot(tm, true), 0);
	int n = atomic_load(&o->hits);
	RUN_UNTIL(atomic_load(&o->hits) >= n + 1);
	run_passes(5);
	assert_int_equal(atomic_load(&o->hits), n + 1);
	assert_false(relay_timer_is_active(tm));
	assert_int_equal(relay_object_destroy(&o->base), 0);
}

/* ---------------------------------------------------------------------
 * relay_single_shot
 * --------------------------------------------------------------------- */

static void *foreign_single_shot(void *p)
{
	obj *o = p;
	return (void *)(intptr_t)relay_single_shot(1, o, on_tick);
}

static void test_single_shot_runs_in_receiver_thread(void **state)
{
	(void)state;
	obj *o = new_obj(NULL, 1);
	assert_int_equal(relay_single_shot(0, o, on_tick), 0);
	assert_int_equal(atomic_load(&o->hits), 0);   /* never inside the call */
	RUN_UNTIL(atomic_load(&o->hits) >= 1);
	assert_ptr_equal(o->threads[0], relay_thread_main());

	relay_thread *t = start_thread("ss-worker");
	obj *w = worker_obj(t, 2);
	assert_int_equal(relay_single_shot(1, w, on_tick), 0);
	WAIT_UNTIL(atomic_load(&w->hits) >= 1);
	assert_ptr_equal(w->threads[0], t);

	/* From a foreign pthread to main's object. */
	pthread_t th;
	void *ret = (void *)1;
	assert_int_equal(pthread_create(&th, NULL, foreign_single_shot, o), 0);
	pthread_join(th, &ret);
	assert_int_equal((int)(intptr_t)ret, 0);
	RUN_UNTIL(atomic_load(&o->hits) >= 2);
	assert_ptr_equal(o->threads[1], relay_thread_main());

	/* Each fires once. */
	run_passes(10);
	assert_int_equal(atomic_load(&o->hits), 2);
	assert_int_equal(atomic_load(&w->hits), 1);
	assert_int_equal(relay_object_delete_later(&w->base), 0);
	stop_thread(t);
	assert_int_equal(relay_object_destroy(&o->base), 0);
}

static atomic_int g_victim, g_control;
static void on_victim(obj *self)
{
	(void)self;   /* must never run: self is gone */
	atomic_fetch_add(&g_victim, 1);
}
static void on_control(obj *self)
{
	(void)self;
	atomic_fetch_add(&g_control, 1);
}

static atomic_int g_release, g_busy;
static void busy_until_released(void *p)
{
	(void)p;
	atomic_store(&g_busy, 1);
	uint64_t dl = now_ms() + SAFETY_MS;
	while (!atomic_load(&g_release) && now_ms() < dl)
		sleep_ms(1);
}

static void test_single_shot_skipped_if_receiver_destroyed(void **state)
{
	(void)state;
	atomic_store(&g_victim, 0);
	atomic_store(&g_control, 0);
	obj *v = new_obj(NULL, 1);
	obj *c = new_obj(NULL, 2);
	assert_int_equal(relay_single_shot(1, v, on_victim), 0);
	assert_int_equal(relay_single_shot(0, v, on_victim), 0);
	assert_int_equal(relay_single_shot(5, c, on_control), 0);
	assert_int_equal(relay_object_destroy(&v->base), 0);
	RUN_UNTIL(atomic_load(&g_control) == 1);
	run_passes(10);
	assert_int_equal(atomic_load(&g_victim), 0);

	/* In a worker: the receiver is deleted before its shot is due. */
	atomic_store(&g_release, 0);
	atomic_store(&g_busy, 0);
	relay_thread *t = start_thread("ss-skip");
	obj *w = worker_obj(t, 3);
	obj *wc = worker_obj(t, 4);
	assert_int_equal(relay_invoke(&wc->base, busy_until_released, NULL, NULL), 0);
	WAIT_UNTIL(atomic_load(&g_busy) == 1);
	assert_int_equal(relay_single_shot(100, w, on_victim), 0);
	assert_int_equal(relay_object_delete_later(&w->base), 0);
	assert_int_equal(relay_single_shot(300, wc, on_control), 0);
	atomic_store(&g_release, 1);
	WAIT_UNTIL(atomic_load(&g_control) == 2);
	assert_int_equal(atomic_load(&g_victim), 0);
	assert_int_equal(relay_object_delete_later(&wc->base), 0);
	stop_thread(t);
	assert_int_equal(atomic_load(&g_victim), 0);
	assert_int_equal(relay_object_destroy(&c->base), 0);
}

/* ---------------------------------------------------------------------
 * Thread rules
 * --------------------------------------------------------------------- */

static int job_touch_timer(void *p)
{
	job *j = p;
	j->rc = relay_timer_start(j->tm, 5);
	j->rc2 = relay_timer_stop(j->tm);
	j->flag = relay_timer_is_active(j->tm);
	return 0;
}

static int job_set_timer(void *p)
{
	job *j = p;
	j->rc3 = relay_timer_set_interval(j->tm, 3);
	j->rc4 = relay_timer_set_single_shot(j->tm, true);
	return 0;
}

static void *foreign_start_timer(void *p)
{
	job *j = p;
	j->rc = relay_timer_start(j->tm, 5);
	return NULL;
}

static void test_timer_start_stop_from_other_thread_refused(void **state)
{
	(void)state;
	relay_thread *t = start_thread("tm-refuse");
	obj *w = worker_obj(t, 1);
	obj *o = new_obj(NULL, 2);
	relay_timer *tm = new_timer(&o->base);
	assert_int_equal(relay_object_set_name(&tm->base, "tick-tock"), 0);
	assert_int_equal(relay_connect(tm, timeout, o, on_tick), 0);
	assert_int_equal(relay_timer_set_interval(tm, 7), 0);

	job j = { .tm = tm };
	run_in(w, job_touch_timer, &j);
	assert_int_equal(j.rc, RELAY_ETIMERTHREAD);
	assert_int_equal(j.rc2, RELAY_ETIMERTHREAD);
	assert_false(j.flag);
	assert_false(relay_timer_is_active(tm));
	assert_int_equal(relay_timer_interval(tm), 7);
	/* one diagnostic per refusal, the timer named */
	assert_int_equal(diag_count(), 2);
	assert_int_equal(g_diag.with_newline, 0);
	if (strstr(g_diag.last_line, "tick-tock") == NULL)
		fail_msg("diagnostic does not name the timer: \"%s\"", g_diag.last_line);
	diag_reset();

	/* A running timer stopped from elsewhere keeps running. */
	assert_int_equal(relay_timer_start(tm, 1), 0);
	run_in(w, job_touch_timer, &j);
	assert_int_equal(j.rc, RELAY_ETIMERTHREAD);
	assert_int_equal(j.rc2, RELAY_ETIMERTHREAD);
	assert_true(j.flag);
	assert_true(relay_timer_is_active(tm));
	int n = atomic_load(&o->hits);
	RUN_UNTIL(atomic_load(&o->hits) >= n + 2);
	assert_int_equal(relay_timer_stop(tm), 0);
	diag_reset();

	/* From a foreign pthread. */
	pthread_t th;
	job k = { .tm = tm };
	assert_int_equal(pthread_create(&th, NULL, foreign_start_timer, &k), 0);
	pthread_join(th, NULL);
	assert_int_equal(k.rc, RELAY_ETIMERTHREAD);
	expect_one_diag(RELAY_ETIMERTHREAD, "tick-tock");
	assert_false(relay_timer_is_active(tm));

	assert_int_equal(relay_object_delete_later(&w->base), 0);
	stop_thread(t);
	assert_int_equal(relay_object_destroy(&o->base), 0);
}

/* set_interval and set_single_shot are "Owner thread only" too (the
 * header groups them under that comment; is_active says "any thread"). */
static void test_timer_setters_from_other_thread_refused(void **state)
{
	(void)state;
	relay_thread *t = start_thread("tm-setters");
	obj *w = worker_obj(t, 1);
	obj *o = new_obj(NULL, 2);
	relay_timer *tm = new_timer(&o->base);
	assert_int_equal(relay_object_set_name(&tm->base, "set-me"), 0);
	assert_int_equal(relay_timer_set_interval(tm, 7), 0);
	assert_int_equal(relay_timer_set_single_shot(tm, false), 0);

	job j = { .tm = tm };
	run_in(w, job_set_timer, &j);
	assert_int_equal(relay_timer_interval(tm), 7);
	assert_true(j.rc3 < 0);
	if (j.rc4 >= 0)
		fail_msg("relay_timer_set_single_shot from a non-owner thread returned %d; "
			 "the header says owner thread only", j.rc4);
	assert_int_equal(diag_count(), 2);
	diag_reset();

	assert_int_equal(relay_object_delete_later(&w->base), 0);
	stop_thread(t);
	assert_int_equal(relay_object_destroy(&o->base), 0);
}

static int job_start_timer(void *p)
{
	job *j = p;
	j->rc = relay_timer_start(j->tm, 1);
	return 0;
}

static void test_timer_follows_moved_object(void **state)
{
	(void)state;
	relay_thread *t = start_thread("tm-move");
	obj *w = worker_obj(t, 1);

	/* A running timer without parent moved by itself. */
	tickrec r1 = { 0 };
	relay_timer *tm = new_timer(NULL);
	assert_int_equal(relay_connect_func(tm, timeout, count_tick, &r1), 0);
	assert_int_equal(relay_timer_start(tm, 1), 0);
	assert_int_equal(relay_object_move_to_thread(&tm->base, t), 0);
	assert_ptr_equal(relay_object_thread(&tm->base), t);
	RUN_UNTIL(atomic_load(&r1.n) >= 3);
	for (int i = 0; i < 3; i++)
		assert_ptr_equal(r1.threads[i], t);
	assert_true(relay_timer_is_active(tm));

	/* A stopped timer moved, then started in its new thread. */
	tickrec r2 = { 0 };
	relay_timer *tm2 = new_timer(NULL);
	assert_int_equal(relay_connect_func(tm2, timeout, count_tick, &r2), 0);
	assert_int_equal(relay_object_move_to_thread(&tm2->base, t), 0);
	run_passes(3);
	assert_int_equal(atomic_load(&r2.n), 0);
	job j = { .tm = tm2 };
	run_in(w, job_start_timer, &j);
	assert_int_equal(j.rc, 0);
	WAIT_UNTIL(atomic_load(&r2.n) >= 3);
	for (int i = 0; i < 3; i++)
		assert_ptr_equal(r2.threads[i], t);

	/* Now main may no longer start or stop them. */
	diag_reset();
	assert_int_equal(relay_timer_stop(tm), RELAY_ETIMERTHREAD);
	expect_one_diag(RELAY_ETIMERTHREAD, NULL);

	assert_int_equal(relay_object_delete_later(&tm->base), 0);
	assert_int_equal(relay_object_delete_later(&tm2->base), 0);
	assert_int_equal(relay_object_delete_later(&w->base), 0);
	stop_thread(t);
}

static void test_timer_destroyed_with_parent(void **state)
{
	(void)state;
	tickrec r = { 0 };
	obj *o = new_obj(NULL, 1);
	relay_timer *tm = new_timer(&o->base);
	assert_int_equal(relay_connect_func(tm, timeout, count_tick, &r), 0);
	relay_weak wk = { 0 };
	assert_int_equal(relay_weak_set(&wk, &tm->base), 0);
	assert_int_equal(relay_timer_start(tm, 1), 0);
	RUN_UNTIL(atomic_load(&r.n) >= 1);
	assert_int_equal(relay_object_destroy(&o->base), 0);
	assert_null(relay_weak_get(&wk));
	relay_weak_clear(&wk);
	int n = atomic_load(&r.n);
	run_passes(10);
	assert_int_equal(atomic_load(&r.n), n);

	/* A running timer destroyed directly stops too. */
	tickrec r2 = { 0 };
	relay_timer *tm2 = new_timer(NULL);
	assert_int_equal(relay_connect_func(tm2, timeout, count_tick, &r2), 0);
	assert_int_equal(relay_timer_start(tm2, 0), 0);
	RUN_UNTIL(atomic_load(&r2.n) >= 1);
	assert_int_equal(relay_object_destroy(&tm2->base), 0);
	n = atomic_load(&r2.n);
	run_passes(5);
	assert_int_equal(atomic_load(&r2.n), n);

	/* In a worker, through delete_later of the parent. */
	relay_thread *t = start_thread("tm-parent");
	obj *w = worker_obj(t, 2);
	job j = { .o = w };
	run_in(w, job_make_timer, &j);
	assert_int_equal(j.rc, 0);
	assert_int_equal(relay_weak_set(&wk, &j.tm->base), 0);
	WAIT_UNTIL(atomic_load(&w->hits) >= 2);
	assert_int_equal(relay_object_delete_later(&w->base), 0);
	WAIT_UNTIL(relay_weak_get(&wk) == NULL);
	relay_weak_clear(&wk);
	stop_thread(t);
	assert_int_equal(atomic_load(&g_fin_count), 2);
}

static void test_timer_null_args_einval(void **state)
{
	(void)state;
	relay_timer *out = NULL;
	assert_int_equal(relay_timer_create(NULL, NULL), -EINVAL);
	assert_int_equal(relay_timer_start(NULL, 1), -EINVAL);
	assert_int_equal(relay_timer_stop(NULL), -EINVAL);
	assert_int_equal(relay_timer_set_interval(NULL, 1), -EINVAL);
	assert_int_equal(relay_timer_set_single_shot(NULL, true), -EINVAL);
	assert_false(relay_timer_is_active(NULL));
	assert_int_equal(relay_timer_interval(NULL), -EINVAL);
	assert_int_equal(relay__single_shot(1, NULL, (relay_slot_fn)on_tick), -EINVAL);
	obj *o = new_obj(NULL, 1);
	assert_int_equal(relay__single_shot(1, &o->base, NULL), -EINVAL);
	assert_int_equal(relay_object_destroy(&o->base), 0);
	(void)out;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_timer_defaults, setup, teardown),
		cmocka_unit_test_setup_teardown(test_timer_zero_interval_fires_on_next_pass, setup, teardown),
		cmocka_unit_test_setup_teardown(test_timer_single_shot_fires_once, setup, teardown),
		cmocka_unit_test_setup_teardown(test_timer_repeating_fires_in_main_thread, setup, teardown),
		cmocka_unit_test_setup_teardown(test_timer_repeating_fires_in_worker_thread, setup, teardown),
		cmocka_unit_test_setup_teardown(test_timer_interval_change, setup, teardown),
		cmocka_unit_test_setup_teardown(test_timer_stop, setup, teardown),
		cmocka_unit_test_setup_teardown(test_timer_restart, setup, teardown),
		cmocka_unit_test_setup_teardown(test_timer_single_shot_flag, setup, teardown),
		cmocka_unit_test_setup_teardown(test_single_shot_runs_in_receiver_thread, setup, teardown),
		cmocka_unit_test_setup_teardown(test_single_shot_skipped_if_receiver_destroyed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_timer_start_stop_from_other_thread_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_timer_setters_from_other_thread_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_timer_follows_moved_object, setup, teardown),
		cmocka_unit_test_setup_teardown(test_timer_destroyed_with_parent, setup, teardown),
		cmocka_unit_test_setup_teardown(test_timer_null_args_einval, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
