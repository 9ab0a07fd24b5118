/*
 * test_loop.c - the per-thread loop: relay_loop_run_once and
 * relay_process_events return what they handled; relay_loop_exit's code
 * comes back from relay_loop_run; nested runs; a flood of posts does not
 * starve timers (D4); an idle thread does not wake up; the loop counters
 * match what was posted and delivered.
 *
 * Never an assertion on timing: counts, order, thread identity, return
 * codes. The idle test counts wake-ups over a stretch of time; it does
 * not time anything.
 */
#include "objtest.h"

#include <sched.h>
#include <sys/syscall.h>

static void inc(void *p)
{
	atomic_fetch_add((atomic_int *)p, 1);
}

/* A safety net for tests that call relay_loop_run(): a single-shot timer
 * that makes the loop return 999 if the test's own exit never comes. */
static void rescue_fire(void *data)
{
	atomic_store((atomic_int *)data, 1);
	relay_loop_exit(999);
}

static relay_timer *arm_rescue(atomic_int *fired)
{
	relay_timer *tm = NULL;
	assert_int_equal(relay_timer_create(NULL, &tm), 0);
	assert_int_equal(relay_connect_func(tm, timeout, rescue_fire, fired), 0);
	assert_int_equal(relay_timer_set_single_shot(tm, true), 0);
	assert_int_equal(relay_timer_start(tm, SAFETY_MS), 0);
	return tm;
}

/* ---------------------------------------------------------------------
 * Counts returned by one pass
 * --------------------------------------------------------------------- */

static atomic_int g_cnt;
static obj *g_self;
static void post_another(void *p)
{
	(void)p;
	atomic_fetch_add(&g_cnt, 1);
	relay_invoke(&g_self->base, inc, &g_cnt, NULL);
}

static void test_loop_run_once_returns_count(void **state)
{
	(void)state;
	drain();
	assert_int_equal(relay_loop_run_once(0), 0);
	atomic_store(&g_cnt, 0);
	obj *o = new_obj(NULL, 1);
	g_self = o;

	for (int i = 0; i < 3; i++)
		assert_int_equal(relay_invoke(&o->base, inc, &g_cnt, NULL), 0);
	assert_int_equal(atomic_load(&g_cnt), 0);
	assert_int_equal(relay_loop_run_once(0), 3);
	assert_int_equal(atomic_load(&g_cnt), 3);
	assert_int_equal(relay_loop_run_once(0), 0);

	/* Queued emits to self, through relay_process_events. */
	assert_int_equal(relay_connect_ex(o, sig, o, on_sig, RELAY_QUEUED, 0u, NULL), 0);
	for (int i = 0; i < 4; i++)
		assert_int_equal(relay_emit(o, sig, &i), 0);
	assert_int_equal(atomic_load(&o->hits), 0);
	assert_int_equal(relay_process_events(), 4);
	assert_int_equal(atomic_load(&o->hits), 4);
	for (int i = 0; i < 4; i++)
		assert_int_equal(o->values[i], i);
	assert_int_equal(relay_process_events(), 0);

	/* What a pass posts waits for the next pass. */
	atomic_store(&g_cnt, 0);
	assert_int_equal(relay_invoke(&o->base, post_another, NULL, NULL), 0);
	assert_int_equal(relay_loop_run_once(0), 1);
	assert_int_equal(atomic_load(&g_cnt), 1);
	assert_int_equal(relay_loop_run_once(0), 1);
	assert_int_equal(atomic_load(&g_cnt), 2);
	assert_int_equal(relay_loop_run_once(0), 0);

	/* Timers count too. */
	relay_timer *tm = NULL;
	assert_int_equal(relay_timer_create(&o->base, &tm), 0);
	assert_int_equal(relay_timer_set_single_shot(tm, true), 0);
	assert_int_equal(relay_timer_start(tm, 0), 0);
	assert_int_equal(relay_invoke(&o->base, inc, &g_cnt, NULL), 0);
	assert_int_equal(relay_loop_run_once(0), 2);
	assert_int_equal(relay_loop_run_once(0), 0);

	/* With something ready, an unbounded wait returns at once. */
	assert_int_equal(relay_invoke(&o->base, inc, &g_cnt, NULL), 0);
	assert_int_equal(relay_loop_run_once(-1), 1);
	assert_int_equal(relay_object_destroy(&o->base), 0);
}

typedef struct poster {
	obj *o;
	atomic_int *cnt;
	atomic_int done;      /* main saw the event */
	atomic_int rescued;   /* the poster had to wake main a second time */
} poster;

static void *foreign_post_later(void *p)
{
	poster *ps = p;
	sleep_ms(20);   /* let main go to sleep first (not asserted) */
	relay_invoke(&ps->o->base, inc, ps->cnt, NULL);
	/* Safety net for a lost wake-up: post again after SAFETY_MS. */
	uint64_t dl = now_ms() + SAFETY_MS;
	while (!atomic_load(&ps->done) && now_ms() < dl)
		sleep_ms(5);
	if (!atomic_load(&ps->done)) {
		atomic_store(&ps->rescued, 1);
		relay_invoke(&ps->o->base, inc, ps->cnt, NULL);
	}
	return NULL;
}

static void test_loop_run_once_wakes_for_post_from_other_thread(void **state)
{
	(void)state;
	drain();
	atomic_int cnt = 0;
	obj *o = new_obj(NULL, 1);
	poster ps = { .o = o, .cnt = &cnt };
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, foreign_post_later, &ps), 0);
	int handled = 0;
	for (int i = 0; i < 3 && atomic_load(&cnt) == 0; i++) {
		int n = relay_loop_run_once(-1);
		assert_true(n >= 0);
		handled += n;
	}
	atomic_store(&ps.done, 1);
	pthread_join(th, NULL);
	assert_int_equal(atomic_load(&ps.rescued), 0);
	assert_int_equal(handled, 1);
	assert_int_equal(atomic_load(&cnt), 1);
	assert_int_equal(relay_object_destroy(&o->base), 0);
}

/* ---------------------------------------------------------------------
 * relay_loop_run, exit codes, nesting
 * --------------------------------------------------------------------- */

static void exit_with(void *p)
{
	relay_loop_exit((int)(intptr_t)p);
}

static void quit_loop(void *p)
{
	(void)p;
	relay_loop_quit();
}

static void test_loop_exit_code_returned_by_run(void **state)
{
	(void)state;
	drain();
	atomic_int rescued = 0;
	relay_timer *rescue = arm_rescue(&rescued);
	obj *o = new_obj(NULL, 1);

	assert_int_equal(relay_invoke(&o->base, exit_with, (void *)(intptr_t)7, NULL), 0);
	assert_int_equal(relay_loop_run(), 7);
	assert_int_equal(relay_invoke(&o->base, quit_loop, NULL, NULL), 0);
	assert_int_equal(relay_loop_run(), 0);
	assert_int_equal(relay_invoke(&o->base, exit_with, (void *)(intptr_t)0, NULL), 0);
	assert_int_equal(relay_loop_run(), 0);
	/* From a slot connected to a signal, too. */
	assert_int_equal(relay_invoke(&o->base, exit_with, (void *)(intptr_t)123, NULL), 0);
	assert_int_equal(relay_loop_run(), 123);

	assert_int_equal(atomic_load(&rescued), 0);
	assert_int_equal(relay_object_destroy(&rescue->base), 0);
	assert_int_equal(relay_object_destroy(&o->base), 0);
}

static atomic_int g_log_n;
static int g_log[16];
static atomic_int g_nested_rc = -1;
static void log_push(int v)
{
	int i = atomic_fetch_add(&g_log_n, 1);
	if (i < 16)
		g_log[i] = v;
}

static void nested_b(void *p)
{
	(void)p;
	log_push(2);
	relay_loop_quit();
}

static void nested_c(void *p)
{
	(void)p;
	log_push(4);
}

static void nested_a(void *p)
{
	obj *o = p;
	log_push(1);
	relay_invoke(&o->base, nested_b, NULL, NULL);
	atomic_store(&g_nested_rc, relay_loop_run());
	log_push(3);
	relay_loop_exit(5);
}

static void test_loop_nested_run_inside_slot(void **state)
{
	(void)state;
	drain();
	atomic_store(&g_log_n, 0);
	atomic_store(&g_nested_rc, -1);
	atomic_int rescued = 0;
	relay_timer *rescue = arm_rescue(&rescued);
	obj *o = new_obj(NULL, 1);
	assert_int_equal(relay_invoke(&o->base, nested_a, o, NULL), 0);
	assert_int_equal(relay_invoke(&o->base, nested_c, NULL, NULL), 0);
	assert_int_equal(relay_loop_run(), 5);
	assert_int_equal(atomic_load(&rescued), 0);
	assert_int_equal(atomic_load(&g_nested_rc), 0);
	drain();
	/* Each ran exactly once; A first, its tail after B. */
	assert_int_equal(atomic_load(&g_log_n), 4);
	int pos[5] = { -1, -1, -1, -1, -1 };
	for (int i = 0; i < 4; i++) {
		assert_true(g_log[i] >= 1 && g_log[i] <= 4);
		assert_int_equal(pos[g_log[i]], -1);
		pos[g_log[i]] = i;
	}
	assert_int_equal(pos[1], 0);
	assert_true(pos[2] < pos[3]);
	assert_int_equal(relay_object_destroy(&rescue->base), 0);
	assert_int_equal(relay_object_destroy(&o->base), 0);
}

typedef struct adopted {
	_Atomic(relay_thread *) cur;
	atomic_int rc;
} adopted;

static void *foreign_run_loop(void *p)
{
	adopted *a = p;
	atomic_store(&a->cur, relay_thread_current());
	atomic_store(&a->rc, relay_loop_run());
	return NULL;
}

static void test_loop_run_in_adopted_thread_exit_code(void **state)
{
	(void)state;
	adopted a = { NULL, -1 };
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, foreign_run_loop, &a), 0);
	WAIT_UNTIL(atomic_load(&a.cur) != NULL);
	assert_int_equal(relay_thread_exit(atomic_load(&a.cur), 9), 0);
	pthread_join(th, NULL);
	assert_int_equal(atomic_load(&a.rc), 9);
}

/* ---------------------------------------------------------------------
 * D4: a flood of posts does not starve a timer
 * --------------------------------------------------------------------- */

typedef struct flood {
	relay_object base;
	RELAY_SIGNAL(next, int);
	long total;          /* events to post in all */
	long posted;
	long delivered;
	long at_first_tick;  /* delivered when the timer first fired; -1 */
	bool stop;
} flood;

static const relay_class flood_class = { .name = "flood" };

static void flood_on_next(flood *self, const int *v)
{
	(void)v;
	self->delivered++;
	if (!self->stop && self->posted < self->total) {
		self->posted++;
		int x = 0;
		relay_emit(self, next, &x);
	}
}

static void flood_on_tick(void *data)
{
	flood *f = data;
	if (f->at_first_tick < 0)
		f->at_first_tick = f->delivered;
	f->stop = true;
}

/* Keeps `inflight` events in the queue at all times (each delivery posts
 * the next) until `total` were posted, with a timer of `ms` armed. */
static void run_self_flood(int ms, long total, int inflight)
{
	drain();
	flood *f = NULL;
	assert_int_equal(relay_object_new(&f, &flood_class, NULL), 0);
	f->total = total;
	f->at_first_tick = -1;
	assert_int_equal(relay_connect_ex(f, next, f, flood_on_next, RELAY_QUEUED, 0u, NULL), 0);
	relay_timer *tm = NULL;
	assert_int_equal(relay_timer_create(&f->base, &tm), 0);
	assert_int_equal(relay_connect_func(tm, timeout, flood_on_tick, f), 0);
	assert_int_equal(relay_timer_set_single_shot(tm, true), 0);
	for (int i = 0; i < inflight; i++) {
		f->posted++;
		assert_int_equal(relay_emit(f, next, &i), 0);
	}
	assert_int_equal(relay_timer_start(tm, ms), 0);
	RUN_UNTIL(f->at_first_tick >= 0);
	if (f->at_first_tick >= total)
		fail_msg("the %d ms timer fired only after the whole flood (%ld of %ld "
			 "events) was delivered", ms, f->at_first_tick, total);
	drain();
	assert_int_equal(f->delivered, f->posted);
	assert_int_equal(relay_object_destroy(&f->base), 0);
}

static void test_D4_flood_does_not_starve_zero_timer(void **state)
{
	(void)state;
	run_self_flood(0, 100000, 64);
}

static void test_D4_flood_does_not_starve_1ms_timer(void **state)
{
	(void)state;
	run_self_flood(1, 1000000, 64);
}

typedef struct xflood {
	relay_object base;
	RELAY_SIGNAL(next, int);
	atomic_long delivered;
	atomic_long at_first_tick;   /* -1 until the timer fired */
	atomic_long posted;
	atomic_int stop;
	long cap;
} xflood;

static const relay_class xflood_class = { .name = "xflood" };

static void xflood_on_next(xflood *self, const int *v)
{
	(void)v;
	atomic_fetch_add(&self->delivered, 1);
}

static void xflood_on_tick(void *data)
{
	xflood *f = data;
	long expect = -1;
	atomic_compare_exchange_strong(&f->at_first_tick, &expect, atomic_load(&f->delivered));
	atomic_store(&f->stop, 1);
}

static void *xflood_producer(void *p)
{
	xflood *f = p;
	int x = 0;
	while (!atomic_load(&f->stop) && atomic_load(&f->posted) < f->cap) {
		/* Stay at most 10000 ahead of the consumer: a flood, bounded. */
		if (atomic_load(&f->posted) - atomic_load(&f->delivered) > 10000) {
			sched_yield();
			continue;
		}
		atomic_fetch_add(&f->posted, 1);
		relay_emit(f, next, &x);
	}
	return NULL;
}

static void test_D4_cross_thread_flood_does_not_starve_timer(void **state)
{
	(void)state;
	drain();
	xflood *f = NULL;
	assert_int_equal(relay_object_new(&f, &xflood_class, NULL), 0);
	atomic_store(&f->at_first_tick, -1);
	f->cap = 2000000;
	assert_int_equal(relay_connect(f, next, f, xflood_on_next), 0);   /* AUTO: queued */
	relay_timer *tm = NULL;
	assert_int_equal(relay_timer_create(&f->base, &tm), 0);
	assert_int_equal(relay_connect_func(tm, timeout, xflood_on_tick, f), 0);
	assert_int_equal(relay_timer_set_single_shot(tm, true), 0);

	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, xflood_producer, f), 0);
	/* Wait until the flood is on, then arm the timer. */
	RUN_UNTIL(atomic_load(&f->delivered) >= 1000);
	assert_int_equal(relay_timer_start(tm, 1), 0);
	RUN_UNTIL(atomic_load(&f->at_first_tick) >= 0);
	atomic_store(&f->stop, 1);
	pthread_join(th, NULL);
	long total = atomic_load(&f->posted);
	RUN_UNTIL(atomic_load(&f->delivered) == total);
	if (atomic_load(&f->at_first_tick) >= f->cap)
		fail_msg("the timer fired only after the whole flood (%ld events)",
			 atomic_load(&f->at_first_tick));
	assert_true(atomic_load(&f->at_first_tick) < total || total < f->cap);
	assert_int_equal(relay_object_destroy(&f->base), 0);
}

/* ---------------------------------------------------------------------
 * Idle: a thread with nothing to do does not wake up
 * --------------------------------------------------------------------- */

static int job_gettid(void *p)
{
	(void)p;
	return (int)syscall(SYS_gettid);
}

static long voluntary_switches(int tid)
{
	char path[64], line[256];
	snprintf(path, sizeof path, "/proc/self/task/%d/status", tid);
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	long v = -1;
	while (fgets(line, sizeof line, f))
		if (sscanf(line, "voluntary_ctxt_switches: %ld", &v) == 1)
			break;
	fclose(f);
	return v;
}

typedef struct jtimer {
	obj *o;
	relay_timer *tm;
	int rc;
} jtimer;

static int job_far_timer(void *p)
{
	jtimer *j = p;
	j->rc = relay_timer_create(&j->o->base, &j->tm);
	if (j->rc == 0)
		j->rc = relay_timer_start(j->tm, 60 * 60 * 1000);   /* an hour away */
	return 0;
}

static void test_idle_thread_does_not_wake(void **state)
{
	(void)state;
	relay_thread *t = start_thread("idle");
	obj *w = worker_obj(t, 1);
	/* An armed timer far in the future must not cause wake-ups either. */
	jtimer jt = { .o = w };
	run_in(w, job_far_timer, &jt);
	assert_int_equal(jt.rc, 0);
	int tid = run_in(w, job_gettid, NULL);
	assert_true(tid > 0);
	sleep_ms(100);   /* let it go back to sleep (settling, not asserted) */

	relay_loop_stats s0, s1;
	assert_int_equal(relay_thread_stats(t, &s0), 0);
	long v0 = voluntary_switches(tid);
	assert_true(v0 >= 0);
	sleep_ms(2000);
	long v1 = voluntary_switches(tid);
	assert_int_equal(relay_thread_stats(t, &s1), 0);

	if (s1.wakeups != s0.wakeups || s1.passes > s0.passes + 1 || v1 - v0 > 2)
		fail_msg("idle thread woke up: wakeups +%llu, passes +%llu, "
			 "voluntary context switches +%ld",
			 (unsigned long long)(s1.wakeups - s0.wakeups),
			 (unsigned long long)(s1.passes - s0.passes), v1 - v0);
	assert_int_equal(relay_object_delete_later(&w->base), 0);
	stop_thread(t);
}

/* ---------------------------------------------------------------------
 * Counters
 * --------------------------------------------------------------------- */

static void test_loop_stats_posted_delivered_match(void **state)
{
	(void)state;
	enum { N = 100 };
	/* Cross-thread: main posts to a worker. */
	relay_thread *t = start_thread("stats");
	obj *w = worker_obj(t, 1);
	obj *src = new_obj(NULL, 2);
	assert_int_equal(relay_connect(src, sig, w, on_sig), 0);
	relay_loop_stats s0, s1;
	assert_int_equal(relay_thread_stats(t, &s0), 0);
	for (int i = 0; i < N; i++)
		assert_int_equal(relay_emit(src, sig, &i), 0);
	WAIT_UNTIL(atomic_load(&w->hits) == N);
	assert_int_equal(relay_thread_stop(t, SAFETY_MS), 0);
	assert_int_equal(relay_thread_stats(t, &s1), 0);
	assert_int_equal(s1.posted - s0.posted, N);
	assert_int_equal(s1.delivered - s0.delivered, N);
	assert_int_equal(s1.dropped - s0.dropped, 0);
	for (int i = 0; i < N && i < MAXLOG; i++)
		assert_int_equal(w->values[i], i);
	assert_int_equal(relay_object_delete_later(&w->base), 0);
	assert_int_equal(relay_thread_destroy(t), 0);

	/* In main: queued to self. */
	drain();
	obj *o = new_obj(NULL, 3);
	assert_int_equal(relay_connect_ex(o, sig, o, on_sig, RELAY_QUEUED, 0u, NULL), 0);
	relay_thread *m = relay_thread_main();
	assert_int_equal(relay_thread_stats(m, &s0), 0);
	for (int i = 0; i < N; i++)
		assert_int_equal(relay_emit(o, sig, &i), 0);
	assert_int_equal(relay_thread_stats(m, &s1), 0);
	assert_int_equal(s1.posted - s0.posted, N);
	assert_int_equal(s1.delivered - s0.delivered, 0);
	assert_int_equal(relay_loop_run_once(0), N);
	assert_int_equal(relay_thread_stats(m, &s1), 0);
	assert_int_equal(s1.delivered - s0.delivered, N);

	/* Five passes are five passes. */
	assert_int_equal(relay_thread_stats(m, &s0), 0);
	for (int i = 0; i < 5; i++)
		relay_loop_run_once(0);
	assert_int_equal(relay_thread_stats(m, &s1), 0);
	assert_int_equal(s1.passes - s0.passes, 5);

	/* Disconnected before delivery: dropped, counted. */
	relay_connection c = 0;
	obj *r = new_obj(NULL, 4);
	assert_int_equal(relay_connect_ex(src, sig, r, on_sig, RELAY_QUEUED, 0u, &c), 0);
	assert_int_equal(relay_thread_stats(m, &s0), 0);
	int v = 1;
	assert_int_equal(relay_emit(src, sig, &v), 0);
	assert_int_equal(relay_disconnect(c), 0);
	drain();
	assert_int_equal(relay_thread_stats(m, &s1), 0);
	assert_int_equal(atomic_load(&r->hits), 0);
	assert_int_equal(s1.dropped - s0.dropped, 1);
	assert_int_equal(relay_object_destroy(&r->base), 0);

	assert_int_equal(relay_object_destroy(&o->base), 0);
	assert_int_equal(relay_object_destroy(&src->base), 0);
}

/* ---------------------------------------------------------------------
 * relay_process_events in a busy worker
 * --------------------------------------------------------------------- */

typedef struct busy {
	obj *o;
	atomic_int started;
	atomic_int finished;
	int handled;
	int seen;
} busy;

static void busy_worker(void *p)
{
	busy *b = p;
	atomic_store(&b->started, 1);
	uint64_t dl = now_ms() + SAFETY_MS;
	while (atomic_load(&b->o->hits) < 3 && now_ms() < dl) {
		int n = relay_process_events();
		if (n > 0)
			b->handled += n;
		sched_yield();
	}
	b->seen = atomic_load(&b->o->hits);
	atomic_store(&b->finished, 1);
}

static void test_process_events_in_busy_worker(void **state)
{
	(void)state;
	relay_thread *t = start_thread("busy");
	obj *w = worker_obj(t, 1);
	obj *src = new_obj(NULL, 2);
	assert_int_equal(relay_connect(src, sig, w, on_sig), 0);
	busy b = { .o = w };
	assert_int_equal(relay_invoke(&w->base, busy_worker, &b, NULL), 0);
	WAIT_UNTIL(atomic_load(&b.started) == 1);
	for (int i = 1; i <= 3; i++)
		assert_int_equal(relay_emit(src, sig, &i), 0);
	/* (delete_later only now: a deletion posted while the busy slot
	 * pumps events would be delivered by that pump, under its feet.) */
	WAIT_UNTIL(atomic_load(&b.finished) == 1);
	assert_int_equal(relay_object_delete_later(&w->base), 0);
	assert_int_equal(relay_thread_stop(t, SAFETY_MS), 0);
	/* The busy slot received all three from inside itself. */
	assert_int_equal(b.seen, 3);
	assert_int_equal(b.handled, 3);
	assert_int_equal(relay_thread_destroy(t), 0);
	assert_int_equal(atomic_load(&g_fin_count), 1);
	assert_int_equal(relay_object_destroy(&src->base), 0);
}

static void test_loop_process_events_in_main(void **state)
{
	(void)state;
	drain();
	atomic_int cnt = 0;
	obj *o = new_obj(NULL, 1);
	assert_int_equal(relay_process_events(), 0);
	for (int i = 0; i < 5; i++)
		assert_int_equal(relay_invoke(&o->base, inc, &cnt, NULL), 0);
	assert_int_equal(relay_process_events(), 5);
	assert_int_equal(atomic_load(&cnt), 5);
	assert_int_equal(relay_object_destroy(&o->base), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_loop_run_once_returns_count, setup, teardown),
		cmocka_unit_test_setup_teardown(test_loop_run_once_wakes_for_post_from_other_thread, setup, teardown),
		cmocka_unit_test_setup_teardown(test_loop_exit_code_returned_by_run, setup, teardown),
		cmocka_unit_test_setup_teardown(test_loop_nested_run_inside_slot, setup, teardown),
		cmocka_unit_test_setup_teardown(test_loop_run_in_adopted_thread_exit_code, setup, teardown),
		cmocka_unit_test_setup_teardown(test_loop_process_events_in_main, setup, teardown),
		cmocka_unit_test_setup_teardown(test_process_events_in_busy_worker, setup, teardown),
		cmocka_unit_test_setup_teardown(test_D4_flood_does_not_starve_zero_timer, setup, teardown),
		cmocka_unit_test_setup_teardown(test_D4_flood_does_not_starve_1ms_timer, setup, teardown),
		cmocka_unit_test_setup_teardown(test_D4_cross_thread_flood_does_not_starve_timer, setup, teardown),
		cmocka_unit_test_setup_teardown(test_idle_thread_does_not_wake, setup, teardown),
		cmocka_unit_test_setup_teardown(test_loop_stats_posted_delivered_match, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
