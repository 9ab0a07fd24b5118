/*
 * test_races.c - races and lifetimes across threads in the core (restart
 * and quit, destruction order, moves of objects of gone threads, waits on
 * exiting threads, nested loop quits, moved timers, shutdown serving,
 * sections): one test per bug found, each named after the promise the
 * bug broke.
 *
 * Tests that fail by a wrong result come first; those that show their bug
 * as a sanitizer report (ASan: use after free) run in a process of their
 * own (RACE_ISOLATED) so the others still run. Each test says in which
 * build it fails. Race tests repeat their scenario within a small trial
 * budget (RELAY_RACE_TRIALS / RELAY_RACE_MS raise it). No test asserts on
 * timing: counts, return codes, thread states.
 *
 * White-box where a rule of the core (no user code - the allocator
 * included - inside a section) cannot be seen from outside: the test
 * includes src/internal.h to read the calling thread's section counter.
 *
 * Usage: test_races [cmocka name pattern]
 */
#include "objtest.h"
#include "racetest.h"

#include "internal.h"

#include <sched.h>

/* ---------------------------------------------------------------------
 * The allocator: malloc/free, and a check made on every release: whether
 * the releasing thread is the watched one and is inside a section (its
 * grace sequence number is odd, grace.h). Rule 3 of docs/design.md: "the
 * allocator never runs while relay ... is inside a section".
 * --------------------------------------------------------------------- */

static struct relay__tdata *_Atomic g_watch_td;
static pthread_t g_watch_thread;   /* written before g_watch_td is set */
static atomic_long g_frees_in_section;

static void *rv_alloc(size_t size, void *user)
{
	(void)user;
	return malloc(size);
}

static void rv_release(void *p, void *user)
{
	(void)user;
	struct relay__tdata *td = atomic_load(&g_watch_td);
	if (p && td && pthread_equal(pthread_self(), g_watch_thread) &&
	    (atomic_load_explicit(&td->grace.seq, memory_order_relaxed) & 1))
		atomic_fetch_add(&g_frees_in_section, 1);
	free(p);
}

static const relay_allocator rv_allocator = { rv_alloc, rv_release, NULL };

/* ---------------------------------------------------------------------
 * 1. T2: a quit sent after relay_thread_start() returned 0 for a thread
 * that was still finishing (the restart is pending) is dropped: the
 * request is refused while the state is FINISHING (thread.c:521), and the
 * pending restart then runs a new loop that nothing asked to end. So
 * relay_thread_stop() returns 0 while the thread runs again, and the new
 * run never ends (relay_main_run's stop_all_threads has the same hole: it
 * returns with that thread running, T5). Wrong result in any build.
 * --------------------------------------------------------------------- */

static atomic_int g_hold_entered, g_hold_go, g_hold_once;

static void hold_first_finish(void *data)
{
	(void)data;
	if (atomic_exchange(&g_hold_once, 1))
		return;
	atomic_store(&g_hold_entered, 1);
	uint64_t dl = now_ms() + SAFETY_MS;
	while (!atomic_load(&g_hold_go) && now_ms() < dl)
		sched_yield();
}

static void test_T2_quit_after_restart_while_finishing_is_kept(void **state)
{
	(void)state;
	atomic_store(&g_hold_entered, 0);
	atomic_store(&g_hold_go, 0);
	atomic_store(&g_hold_once, 0);
	relay_thread *t = start_thread("rv-restart");
	/* no context: direct, in t, while it finishes */
	assert_int_equal(relay_connect_func(t, finished, hold_first_finish, NULL), 0);
	assert_int_equal(relay_thread_quit(t), 0);
	WAIT_UNTIL(atomic_load(&g_hold_entered));

	/* t is finishing: start() is accepted (it starts again once the
	 * finish is done, as Qt's start() waits for it) ... */
	assert_int_equal(relay_thread_start(t), 0);
	/* ... and a stop after it must end that new run. */
	assert_int_equal(relay_thread_quit(t), 0);
	atomic_store(&g_hold_go, 1);
	assert_int_equal(relay_thread_wait(t, SAFETY_MS), 0);   /* the first run */
	/* The quit came after the start and before the new run's loop: it is
	 * for that run (T2), so the thread finishes again. Today it runs on
	 * and this wait times out. */
	int rc = relay_thread_wait(t, 3000);
	bool running = relay_thread_is_running(t);
	if (rc != 0)
		(void)relay_thread_stop(t, SAFETY_MS);   /* clean up */
	assert_int_equal(relay_thread_destroy(t), 0);
	assert_int_equal(rc, 0);
	assert_false(running);
}

/* ---------------------------------------------------------------------
 * 2. D7: "nothing is delivered to it once its destruction has begun" holds
 * for queued calls only. A direct (AUTO, same thread) call still reaches
 * an object whose destruction began: relay__object_destroy_unchecked
 * (object.c:286-288) destroys the children and emits `destroyed` before
 * it cuts the object's connections, and a direct call checks only the
 * connection's `alive` (internal.h relay__conn_call_checked), not the
 * receiver's anchor. The common Qt pattern "the parent listens to its
 * child's destroyed" then calls the parent's slot while the parent is
 * half destroyed (its own destroyed slots ran, relay_weak reads NULL).
 * Qt cuts the connections before it deletes the children. Wrong result in
 * any build.
 * --------------------------------------------------------------------- */

static atomic_int g_parent_calls;

static void parent_on_child_destroyed(obj *self)
{
	(void)self;
	atomic_fetch_add(&g_parent_calls, 1);
}

static void test_D7_no_direct_call_to_parent_being_destroyed(void **state)
{
	(void)state;
	atomic_store(&g_parent_calls, 0);
	obj *parent = new_obj(NULL, 1);
	obj *child = new_obj(&parent->base, 2);
	assert_int_equal(relay_connect(&child->base, destroyed, parent, parent_on_child_destroyed),
			 0);
	/* the child destroyed alone: the parent is alive and is told */
	obj *child2 = new_obj(&parent->base, 3);
	assert_int_equal(relay_connect(&child2->base, destroyed, parent, parent_on_child_destroyed),
			 0);
	assert_int_equal(relay_object_destroy(&child2->base), 0);
	assert_int_equal(atomic_load(&g_parent_calls), 1);

	/* the parent destroyed: its destruction began before its child's, so
	 * the parent's slot must not run */
	atomic_store(&g_parent_calls, 0);
	assert_int_equal(relay_object_destroy(&parent->base), 0);
	assert_int_equal(atomic_load(&g_parent_calls), 0);
}

/* ---------------------------------------------------------------------
 * 3. O1 / rule 1 (anchors): moving an object whose thread's handle was
 * destroyed (it has no thread; any thread may move it) drops the anchor's
 * reference on the old, gone thread record at once: move_homeless
 * (move.c:228) calls tree_rehome without marking the anchors in transit
 * and without a grace period, and tree_rehome (move.c:47-49) unrefs the
 * old home. When that was the record's last reference (the object was the
 * last one of that thread) the record is freed right there - under the
 * new thread's queue lock, with the allocator - while a thread emitting to
 * the object can be between reading the old home and using it in its
 * section (post.c:36-45 locate: relay__tstate(*t) at :42, then
 * relay__count_drop(t) in relay__post_slot): a use after free of the
 * thread record. Posting while the receiver is moved is allowed ("posts
 * wait for the move"). ASan: heap-use-after-free in locate /
 * relay__count_drop; the emitter and the mover are pinned to one CPU so
 * the emitter is preempted inside its section.
 * --------------------------------------------------------------------- */

typedef struct emitter_ctl {
	obj *sender;               /* lives in the emitter thread */
	atomic_int phase;          /* 0 idle, 1 emit, 2 exit */
	atomic_long emits;
	atomic_int ready;
} emitter_ctl;

static void *emitter_main(void *arg)
{
	emitter_ctl *e = arg;
	race_pin(0, NULL);
	e->sender = new_obj(NULL, 100);   /* adopts the thread */
	atomic_store(&e->ready, 1);
	int v = 7;
	for (;;) {
		int ph = atomic_load_explicit(&e->phase, memory_order_relaxed);
		if (ph == 2)
			break;
		if (ph == 1) {
			relay_emit(e->sender, sig, &v);
			atomic_fetch_add_explicit(&e->emits, 1, memory_order_relaxed);
		} else {
			sched_yield();
		}
	}
	assert_int_equal(relay_object_destroy(&e->sender->base), 0);
	return NULL;
}

static void test_O1_move_of_object_of_gone_thread_while_posting(void **state)
{
	(void)state;
	RACE_ISOLATED();
	emitter_ctl e = { 0 };
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, emitter_main, &e), 0);
	WAIT_UNTIL(atomic_load(&e.ready));
	cpu_set_t saved;
	race_pin(0, &saved);
	race_budget b;
	race_budget_init(&b, 300, 4000);
	while (race_budget_next(&b)) {
		relay_thread *t = start_thread("rv-gone");
		obj *w = worker_obj(t, 1);
		stop_thread(t);   /* its handle is destroyed: the record is GONE */
		/* w holds the record's last reference */
		relay_connection c = 0;
		assert_int_equal(relay_connect_ex(e.sender, sig, w, on_sig, RELAY_QUEUED, 0u, &c), 0);
		long before = atomic_load(&e.emits);
		atomic_store(&e.phase, 1);
		while (atomic_load(&e.emits) < before + 2)
			sched_yield();
		/* homeless: any thread may move it; this frees the old record */
		assert_int_equal(relay_object_move_to_thread(&w->base, relay_thread_main()), 0);
		atomic_store(&e.phase, 0);
		assert_int_equal(relay_disconnect(c), 0);
		drain();
		assert_int_equal(relay_object_destroy(&w->base), 0);
	}
	atomic_store(&e.phase, 2);
	pthread_join(th, NULL);
	race_unpin(&saved);
	drain();
}

/* ---------------------------------------------------------------------
 * 4. Rule 3 (no user code, the allocator included, inside a section): a
 * queued emit returns the references it took in bulk on the previous
 * connection from inside its post section: relay__post_slot enters the
 * section (post.c:104), relay__queue_push_slot -> take_conn_ref
 * (queue.c:346-348) calls relay__conn_unref_n on the old prepaid
 * connection, and when those were its last references (it was
 * disconnected and its events delivered) conn_free runs there: the
 * allocator's release hook (and the receiver anchor's release, and
 * through it possibly the home record's) inside the section. A hook that
 * blocks there stalls every move_to_thread and disconnect (grace periods
 * spin on this section); one that posts nests a section and breaks it.
 * Wrong result in any build (white-box: the hook reads the thread's
 * section counter).
 * --------------------------------------------------------------------- */

static void test_D3_no_allocator_call_inside_post_section(void **state)
{
	(void)state;
	relay_thread *t = start_thread("rv-prepaid");
	obj *w1 = worker_obj(t, 1), *w2 = worker_obj(t, 2);
	obj *s = new_obj(NULL, 3);
	relay_connection c1 = 0, c2 = 0;
	assert_int_equal(relay_connect_ex(s, sig, w1, on_sig, RELAY_QUEUED, 0u, &c1), 0);
	int v = 1;
	assert_int_equal(relay_emit(s, sig, &v), 0);   /* prepaid: c1, 255 spare refs */
	WAIT_UNTIL(atomic_load(&w1->hits) == 1);
	/* c1 lives on now by the 255 spare references main's producer holds
	 * (and the emit cache's snapshot, released at the next emit) */
	assert_int_equal(relay_disconnect(c1), 0);
	assert_int_equal(relay_connect_ex(s, sig, w2, on_sig, RELAY_QUEUED, 0u, &c2), 0);

	g_watch_thread = pthread_self();
	atomic_store(&g_frees_in_section, 0);
	atomic_store(&g_watch_td, relay_thread_main()->relay__data);
	assert_int_equal(relay_emit(s, sig, &v), 0);   /* swaps prepaid c1 -> c2 */
	atomic_store(&g_watch_td, NULL);
	WAIT_UNTIL(atomic_load(&w2->hits) == 1);
	long in_section = atomic_load(&g_frees_in_section);

	assert_int_equal(relay_disconnect(c2), 0);
	assert_int_equal(relay_object_destroy(&s->base), 0);
	assert_int_equal(relay_object_delete_later(&w1->base), 0);
	assert_int_equal(relay_object_delete_later(&w2->base), 0);
	stop_thread(t);
	assert_int_equal(in_section, 0);
}

/* ---------------------------------------------------------------------
 * 5. T2 (wait): relay_thread_wait on an adopted thread's handle takes no
 * reference on the thread record. The adopted thread, exiting, announces
 * its end (thread.c:322 announce_done: broadcast under done_lock), then
 * drains and drops the record's last reference (thread.c:332) - which
 * frees the record, its done_lock and done_cond included, and the handle
 * with it (record_free, thread.c:173-175) - while the waiter, woken by
 * the broadcast, is still inside wait_record (thread.c:566-574) on that
 * mutex. relay_thread_stop on an adopted handle is the same. The two
 * threads are pinned to one CPU so the exiting thread runs to the free
 * before the waiter gets the CPU back. ASan: heap-use-after-free in
 * wait_record / pthread_mutex_unlock.
 * --------------------------------------------------------------------- */

static relay_thread *_Atomic g_adopted_handle;
static atomic_int g_adopted_go, g_waiting, g_wait_bad;

#define WAITERS 24

static void *adopted_then_exit(void *arg)
{
	(void)arg;
	race_pin(1, NULL);
	atomic_store(&g_adopted_handle, relay_thread_current());   /* adopts it */
	while (!atomic_load(&g_adopted_go))
		sleep_ms(1);
	return NULL;    /* its record goes in the exit hook */
}

static void *waiter(void *arg)
{
	race_pin(0, NULL);
	relay_thread *h = arg;
	atomic_fetch_add(&g_waiting, 1);
	if (relay_thread_wait(h, SAFETY_MS) != 0)
		atomic_fetch_add(&g_wait_bad, 1);
	return NULL;
}

static void test_T2_wait_for_adopted_thread_exit_keeps_record(void **state)
{
	(void)state;
	RACE_ISOLATED();
	race_budget b;
	race_budget_init(&b, 20, 4000);
	while (race_budget_next(&b)) {
		atomic_store(&g_adopted_handle, NULL);
		atomic_store(&g_adopted_go, 0);
		atomic_store(&g_waiting, 0);
		pthread_t th, w[WAITERS];
		assert_int_equal(pthread_create(&th, NULL, adopted_then_exit, NULL), 0);
		while (!atomic_load(&g_adopted_handle))
			sleep_ms(1);
		relay_thread *h = atomic_load(&g_adopted_handle);
		/* Threads waiting for it to finish (T2: any thread but itself);
		 * its exit wakes them all, and they take done_lock one by one
		 * while it goes on to free the record. */
		for (int i = 0; i < WAITERS; i++)
			assert_int_equal(pthread_create(&w[i], NULL, waiter, h), 0);
		while (atomic_load(&g_waiting) < WAITERS)
			sleep_ms(1);
		sleep_ms(5);   /* let them block in relay_thread_wait */
		atomic_store(&g_adopted_go, 1);
		pthread_join(th, NULL);
		for (int i = 0; i < WAITERS; i++)
			pthread_join(w[i], NULL);
	}
	assert_int_equal(atomic_load(&g_wait_bad), 0);
}

/* ---------------------------------------------------------------------
 * 6. T2 (quit the innermost loop): relay_loop_exit records one depth to
 * end (loop.c:558-560, a single loop_quit_depth). A slot that quits the
 * loop running it and then runs a nested loop (a "please wait" loop, or
 * any slot that pumps until some reply arrives) loses that quit as soon
 * as something quits the nested loop: the nested relay_loop_exit
 * overwrites the depth, the nested loop takes it and clears it
 * (loop.c:455-457), and the outer loop runs on. Qt's QEventLoop::exit
 * belongs to each loop, so both loops return. Wrong result in any build
 * (a watchdog ends the outer loop with code 99 if it does not return by
 * itself, so the test does not hang).
 * --------------------------------------------------------------------- */

static atomic_int g_nested_returned, g_outer_done, g_watchdog_fired;

static void quit_nested(void *data)
{
	(void)data;
	relay_loop_quit();   /* ends the nested loop only */
}

static void quit_then_nest(void *data)
{
	obj *ctx = data;
	relay_loop_exit(0);   /* this slot's loop (the outer one) is to end */
	assert_int_equal(relay_invoke(&ctx->base, quit_nested, NULL, NULL), 0);
	(void)relay_loop_run();   /* nested: returns when quit_nested quits it */
	atomic_store(&g_nested_returned, 1);
}

static void *watchdog(void *arg)
{
	(void)arg;
	uint64_t dl = now_ms() + 3000;
	while (!atomic_load(&g_outer_done) && now_ms() < dl)
		sleep_ms(5);
	if (!atomic_load(&g_outer_done)) {
		atomic_store(&g_watchdog_fired, 1);
		relay_main_exit(99);
	}
	return NULL;
}

static void test_T2_outer_loop_quit_survives_nested_loop_quit(void **state)
{
	(void)state;
	atomic_store(&g_nested_returned, 0);
	atomic_store(&g_outer_done, 0);
	atomic_store(&g_watchdog_fired, 0);
	obj *ctx = new_obj(NULL, 1);
	assert_int_equal(relay_invoke(&ctx->base, quit_then_nest, ctx, NULL), 0);
	pthread_t wd;
	assert_int_equal(pthread_create(&wd, NULL, watchdog, NULL), 0);
	int code = relay_loop_run();
	atomic_store(&g_outer_done, 1);
	pthread_join(wd, NULL);
	assert_int_equal(relay_object_destroy(&ctx->base), 0);
	assert_int_equal(atomic_load(&g_nested_returned), 1);
	assert_int_equal(atomic_load(&g_watchdog_fired), 0);
	assert_int_equal(code, 0);
}

/* ---------------------------------------------------------------------
 * 7. O1 (timers move with their object) / T4-style lifetime: a running
 * timer moved into a thread waits on that thread's moved list
 * (move.c:150-154 relay__queue_push_timer_locked) until the thread's next
 * pass takes it (loop.c:214 relay__loop_take_moved). The timer already
 * lives in the new thread, which may destroy it before that pass - plain
 * code of the main thread, a timer slot that runs before the pass takes
 * its moved list (loop.c:410-411), a started slot. relay_object_destroy
 * then frees the timer's data (timer.c:162-171 timer_finalize: disarm
 * sees it unarmed) while the moved list still links it, and the next
 * pass arms freed memory (timer.c:303-313). Only a destroy by a thread
 * serving the loop purges the moved list first. ASan:
 * heap-use-after-free in relay__timers_arm_list.
 * --------------------------------------------------------------------- */

static atomic_int g_moved_timer_fired;

static void on_moved_timeout(relay_timer *t)
{
	(void)t;
	atomic_fetch_add(&g_moved_timer_fired, 1);
}

static int make_timer_and_push_to_main(void *data)
{
	relay_timer **out = data;
	relay_timer *tm = NULL;
	if (relay_timer_create(NULL, &tm) != 0)
		return -1;
	if (relay_connect(tm, timeout, tm, on_moved_timeout) != 0)
		return -2;
	if (relay_timer_start(tm, 50) != 0)
		return -3;
	if (relay_object_move_to_thread(&tm->base, relay_thread_main()) != 0)
		return -4;
	*out = tm;
	return 0;
}

static void test_O1_timer_moved_in_and_destroyed_before_next_pass(void **state)
{
	(void)state;
	RACE_ISOLATED();
	relay_thread *t = start_thread("rv-timer");
	obj *w = worker_obj(t, 1);
	relay_timer *tm = NULL;
	assert_int_equal(run_in(w, make_timer_and_push_to_main, &tm), 0);
	assert_ptr_equal(relay_object_thread(&tm->base), relay_thread_main());
	/* It lives here now: its owner may destroy it at once. */
	assert_int_equal(relay_object_destroy(&tm->base), 0);
	drain();   /* the next pass takes the moved list */
	sleep_ms(60);
	drain();
	assert_int_equal(atomic_load(&g_moved_timer_fired), 0);
	assert_int_equal(relay_object_delete_later(&w->base), 0);
	stop_thread(t);
}

/* ---------------------------------------------------------------------
 * 8. T5 / D8: relay_main_run stops its threads without serving the main
 * loop. A worker that, as the application quits, is in a blocking call
 * to a main-thread object (accepted: the main thread "serves" once it has
 * pumped, thread.c:63-65) waits for a loop that relay_main_run no longer
 * runs (thread.c:813-816: stop_all_threads waits, then one
 * relay_process_events). The worker cannot see the quit, so the main
 * thread waits its whole timeout, names it a straggler, and returns
 * while it still runs - although relay could serve the call while it
 * waits. Wrong result in any build (a straggler diagnostic, the thread
 * not finished when relay_main_run returns).
 * --------------------------------------------------------------------- */

static int ret_seven(void *data)
{
	(void)data;
	return 7;
}

typedef struct quit_job {
	obj *main_obj;
	atomic_int rc, result;
} quit_job;

static void quit_main_then_call_it(void *data)
{
	quit_job *j = data;
	struct relay__tdata *m = relay_thread_main()->relay__data;
	relay_main_quit();
	/* once the main loop has returned (white-box: its depth) */
	while (atomic_load(&m->loop_depth) > 0)
		sched_yield();
	int r = 0;
	atomic_store(&j->rc, relay_invoke_blocking(&j->main_obj->base, ret_seven, NULL, &r));
	atomic_store(&j->result, r);
}

static void test_T5_main_run_serves_blocking_calls_while_stopping_threads(void **state)
{
	(void)state;
	relay_thread *t = start_thread("rv-quitcall");
	obj *w = worker_obj(t, 1);
	quit_job j = { .main_obj = new_obj(NULL, 2), .rc = 1 };
	drain();   /* the main thread has pumped: it serves blocking calls */
	assert_int_equal(relay_invoke(&w->base, quit_main_then_call_it, &j, NULL), 0);
	diag_reset();
	assert_int_equal(relay_main_run(2000), 0);
	int diags = diag_count();
	bool finished = relay_thread_is_finished(t);
	WAIT_UNTIL(atomic_load(&j.rc) != 1);
	assert_int_equal(atomic_load(&j.rc), 0);
	assert_int_equal(atomic_load(&j.result), 7);
	assert_int_equal(relay_object_delete_later(&w->base), 0);
	stop_thread(t);
	assert_int_equal(relay_object_destroy(&j.main_obj->base), 0);
	assert_int_equal(diags, 0);      /* no straggler */
	assert_true(finished);           /* stopped when relay_main_run returned */
}

/* ---------------------------------------------------------------------
 * 9. T5 / relay.h move_to_thread ("thread NULL detaches it: events for it
 * are then dropped, and counted in the emitting thread's refused"): a
 * queued emit to a detached receiver was dropped uncounted - no loop's
 * counters grew, and the emit reported success. No loop can take it, so
 * the emitting thread counts it (relay_loop_stats.refused). Wrong result
 * in any build before the fix.
 * --------------------------------------------------------------------- */

static uint64_t refused_of(relay_thread *t)
{
	relay_loop_stats st;
	assert_int_equal(relay_thread_stats(t, &st), 0);
	return st.refused;
}

static void test_T5_emit_to_detached_receiver_counted_as_refused(void **state)
{
	(void)state;
	obj *s = new_obj(NULL, 1), *r = new_obj(NULL, 2);
	assert_int_equal(relay_connect_ex(s, sig, r, on_sig, RELAY_QUEUED, 0u, NULL), 0);
	assert_int_equal(relay_object_move_to_thread(&r->base, NULL), 0);
	uint64_t before = refused_of(relay_thread_main());
	int v = 5;
	for (int i = 0; i < 3; i++)
		assert_int_equal(relay_emit(s, sig, &v), 0);
	drain();
	uint64_t after = refused_of(relay_thread_main());
	assert_int_equal(atomic_load(&r->hits), 0);
	assert_int_equal(relay_object_destroy(&s->base), 0);
	assert_int_equal(relay_object_destroy(&r->base), 0);   /* no thread: any thread */
	assert_int_equal(after - before, 3);
}

/* ---------------------------------------------------------------------
 * 10. D4 across a restart of the emitting thread: a relay thread that is
 * stopped and started again is the same emitting thread, and its posts
 * keep their order. Its first run's ring is handed to the receiving
 * thread at the run's end; the new run makes a new ring, which the
 * receiver used to put first in its list and drain first, so the new
 * run's calls overtook the old run's still queued ones. Wrong order in
 * any build (found by the fuzzer).
 * --------------------------------------------------------------------- */

typedef struct emit_job {
	obj *s;
	int from, to;
} emit_job;

static int emit_range(void *p)
{
	emit_job *j = p;
	for (int i = j->from; i <= j->to; i++)
		if (relay_emit(j->s, sig, &i) != 0)
			return -1;
	return 0;
}

static void test_D4_order_kept_across_restart_of_emitting_thread(void **state)
{
	(void)state;
	relay_thread *t = start_thread("d4-restart");
	obj *rx = new_obj(NULL, 1);   /* lives here, in the main thread */
	obj *s = worker_obj(t, 2);
	assert_int_equal(relay_connect_ex(s, sig, rx, on_sig, RELAY_QUEUED, 0u, NULL), 0);
	emit_job j0 = { s, 0, 0 }, j1 = { s, 1, 5 }, j2 = { s, 6, 10 };
	assert_int_equal(run_in(s, emit_range, &j0), 0);
	RUN_UNTIL(atomic_load(&rx->hits) == 1);   /* the ring is in the main list now */
	assert_int_equal(run_in(s, emit_range, &j1), 0);   /* queued, not delivered */
	assert_int_equal(relay_thread_stop(t, SAFETY_MS), 0);
	assert_int_equal(relay_thread_start(t), 0);
	assert_int_equal(run_in(s, emit_range, &j2), 0);   /* through a new ring */
	RUN_UNTIL(atomic_load(&rx->hits) == 11);
	for (int i = 0; i <= 10; i++)
		assert_int_equal(rx->values[i], i);
	assert_int_equal(relay_object_delete_later(&s->base), 0);
	stop_thread(t);
	assert_int_equal(relay_object_destroy(&rx->base), 0);
}

/* ---------------------------------------------------------------------
 * 11. T2: an interruption requested right after relay_thread_start
 * returned is for the run just started: the new thread used to clear the
 * flag as it began running, after the request. Wrong result in any build
 * (found by the fuzzer).
 * --------------------------------------------------------------------- */

static int interruption_seen(void *p)
{
	(void)p;
	return relay_interruption_requested();
}

static void test_T2_interruption_requested_right_after_start_is_seen(void **state)
{
	(void)state;
	relay_thread *t = new_thread("t2-intr");
	obj *w = worker_obj(t, 1);
	for (int i = 0; i < 20; i++) {
		assert_int_equal(relay_thread_start(t), 0);
		assert_int_equal(relay_thread_request_interruption(t), 0);
		assert_int_equal(run_in(w, interruption_seen, NULL), 1);
		assert_int_equal(relay_thread_stop(t, SAFETY_MS), 0);
		assert_false(relay_thread_interruption_requested(t));   /* cleared at the end */
	}
	assert_int_equal(relay_object_delete_later(&w->base), 0);
	assert_int_equal(relay_thread_destroy(t), 0);
}

/* ---------------------------------------------------------------------
 * 12. D7: connecting to (or invoking into) a receiver that its own thread
 * is destroying at that moment is refused with RELAY_EDESTROYED, or
 * succeeds before the destruction cut it - never a use of its anchor
 * after the destruction let go of it (a null anchor: UBSan; found by the
 * fuzzer). The receiver is caller-owned, so its memory stays valid.
 * --------------------------------------------------------------------- */

static int destroy_job(void *p)
{
	return relay_object_destroy(p);
}

typedef struct racing_connect {
	obj *s, *r;
	atomic_int go, stop;
	atomic_long ok, refused;
} racing_connect;

static void *connect_loop(void *p)
{
	racing_connect *rc = p;
	while (!atomic_load(&rc->go))
		sched_yield();
	while (!atomic_load(&rc->stop)) {
		int x = relay_connect(rc->s, sig, rc->r, on_sig);
		atomic_fetch_add(x == 0 ? &rc->ok : &rc->refused, 1);
		if (x != 0 && x != RELAY_EDESTROYED)
			atomic_fetch_add(&rc->refused, 1000000);   /* a wrong code */
	}
	return NULL;
}

static void test_D7_connect_racing_receiver_destruction_is_refused(void **state)
{
	(void)state;
	relay_thread *t = start_thread("d7-conn");
	obj *keeper = worker_obj(t, 1);
	for (int trial = 0; trial < 50; trial++) {
		static obj rx;   /* caller-owned: stays readable after destroy */
		memset(&rx, 0, sizeof rx);
		assert_int_equal(relay_object_init(&rx.base, &obj_class, NULL), 0);
		assert_int_equal(relay_object_move_to_thread(&rx.base, t), 0);
		racing_connect rc = { .s = new_obj(NULL, 2), .r = &rx };
		pthread_t th;
		assert_int_equal(pthread_create(&th, NULL, connect_loop, &rc), 0);
		atomic_store(&rc.go, 1);
		assert_int_equal(run_in(keeper, destroy_job, &rx.base), 0);
		atomic_store(&rc.stop, 1);
		pthread_join(th, NULL);
		assert_true(atomic_load(&rc.refused) < 1000000);
		assert_int_equal(relay_connect(rc.s, sig, &rx, on_sig), RELAY_EDESTROYED);
		assert_int_equal(relay_object_destroy(&rc.s->base), 0);
	}
	assert_int_equal(relay_object_delete_later(&keeper->base), 0);
	stop_thread(t);
}

/* ---------------------------------------------------------------------
 * 13. D9: a destroyed slot of the object itself may disconnect it from
 * its senders (relay_disconnect_receiver) - what the destruction is about
 * to do anyway - and gets 0, not RELAY_EDESTROYED (found by the fuzzer).
 * Once destroyed, a caller-owned object is refused.
 * --------------------------------------------------------------------- */

static atomic_int g_disconnect_rc = 1;

static void disconnect_self_in_destroyed(obj *self)
{
	atomic_store(&g_disconnect_rc, relay_disconnect_receiver(&self->base));
}

static void test_D9_disconnect_receiver_in_own_destroyed_slot(void **state)
{
	(void)state;
	static obj o;
	memset(&o, 0, sizeof o);
	assert_int_equal(relay_object_init(&o.base, &obj_class, NULL), 0);
	obj *s = new_obj(NULL, 2);
	assert_int_equal(relay_connect(s, sig, &o, on_sig), 0);
	assert_int_equal(relay_connect(&o, base.destroyed, &o, disconnect_self_in_destroyed), 0);
	assert_int_equal(relay_object_destroy(&o.base), 0);
	assert_int_equal(atomic_load(&g_disconnect_rc), 0);
	diag_reset();
	assert_int_equal(relay_disconnect_receiver(&o.base), RELAY_EDESTROYED);
	expect_one_diag(RELAY_EDESTROYED, NULL);
	assert_int_equal(relay_object_destroy(&s->base), 0);
}

int main(int argc, char **argv)
{
	if (relay_set_allocator(&rv_allocator) != 0)
		return 1;
	if (!race_isolation_init(argc, argv) && argc > 1)
		cmocka_set_test_filter(argv[1]);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_T2_quit_after_restart_while_finishing_is_kept,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_D7_no_direct_call_to_parent_being_destroyed,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_D3_no_allocator_call_inside_post_section, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_T2_outer_loop_quit_survives_nested_loop_quit,
						setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_T5_main_run_serves_blocking_calls_while_stopping_threads, setup, teardown),
		cmocka_unit_test_setup_teardown(test_T5_emit_to_detached_receiver_counted_as_refused,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_D4_order_kept_across_restart_of_emitting_thread,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_T2_interruption_requested_right_after_start_is_seen,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_D7_connect_racing_receiver_destruction_is_refused,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_D9_disconnect_receiver_in_own_destroyed_slot,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_O1_move_of_object_of_gone_thread_while_posting,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_T2_wait_for_adopted_thread_exit_keeps_record,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_O1_timer_moved_in_and_destroyed_before_next_pass,
						setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
