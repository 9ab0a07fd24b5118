/*
 * test_lifecycle.c - a thread's lifecycle and who owns its queue: the
 * walks over a finished thread's queue (its own end, a foreign
 * delete_later, its handle's drain: T4, D3), quit and restart around a
 * thread's end (T1, T2), adopted threads' handles and `finished` (T1,
 * T3), nested loops (T2), descriptors of gone threads, loop statistics
 * and start refusals (T5, O3).
 *
 * Race tests repeat a scenario a bounded number of times (LIFECYCLE_TRIALS
 * trials or LIFECYCLE_MS milliseconds, whichever comes first; both can be
 * given as NAME=value arguments or in the environment). Several of them
 * only show their bug under a sanitizer (ASan: double free or use after
 * free; TSan: the race itself); each test says which. A sanitizer report
 * or a double free ends the program, so the race tests run last; run one
 * test alone with LIFECYCLE_FILTER=<cmocka pattern>, e.g.
 * LIFECYCLE_FILTER='*racing_restart*'.
 *
 * No test asserts on timing: counts, order, thread identity, return codes
 * and diagnostics. Waits are bounded safety nets; a few short sleeps only
 * make a bad interleaving likely, they are never what is checked.
 *
 * The program installs its own allocator (plain malloc, with a hook that
 * can hold one chosen thread inside an allocation) before any other relay
 * call; see test_T4_delete_later_committed_after_gone_drain_still_destroys.
 */
#include "objtest.h"
#include "support.h"

#include <dirent.h>
#include <sched.h>

static long p_trials(void) { return support_param("LIFECYCLE_TRIALS", 200); }
static long p_ms(void) { return support_param("LIFECYCLE_MS", 2000); }
static long p_events(void) { return support_param("LIFECYCLE_EVENTS", 2000); }
static long p_threads(void) { return support_param("LIFECYCLE_FD_THREADS", 200); }

/* ---------------------------------------------------------------------
 * The allocator: malloc/free, and a pause. When armed for a thread, that
 * thread's allocation number `g_pause_at` (counted from 0 after arming)
 * waits until g_resume is set (at most g_pause_ms), so a test can hold it
 * at a chosen point of a relay call while another thread acts.
 * --------------------------------------------------------------------- */

static atomic_int g_pause_armed, g_pause_count, g_pause_at, g_paused, g_resume, g_pause_ms;
static atomic_int g_pause_timed_out;
static pthread_t g_pause_thread;   /* written before arming, read after */

static void *lc_alloc(size_t size, void *user)
{
	(void)user;
	if (atomic_load(&g_pause_armed) && pthread_equal(pthread_self(), g_pause_thread) &&
	    atomic_fetch_add(&g_pause_count, 1) == atomic_load(&g_pause_at)) {
		atomic_store(&g_pause_armed, 0);
		atomic_store(&g_paused, 1);
		uint64_t dl = now_ms() + (uint64_t)atomic_load(&g_pause_ms);
		while (!atomic_load(&g_resume) && now_ms() < dl)
			sched_yield();
		atomic_store(&g_pause_timed_out, !atomic_load(&g_resume));
	}
	return malloc(size);
}

static void lc_release(void *p, void *user)
{
	(void)user;
	free(p);
}

static const relay_allocator lc_allocator = { lc_alloc, lc_release, NULL };

/* ---------------------------------------------------------------------
 * Shared helpers
 * --------------------------------------------------------------------- */

/* A payload that owns memory: copies and frees are counted, and the
 * string is malloc'd, so a copy freed twice is a double free (ASan, or
 * glibc's own check) and not only a wrong count. */
typedef struct blob {
	char *text;
} blob;

static atomic_long g_copies, g_frees;

static int blob_copy(void *dst, const void *src)
{
	const blob *s = src;
	blob *d = dst;
	d->text = strdup(s->text);
	if (!d->text)
		return -ENOMEM;
	atomic_fetch_add(&g_copies, 1);
	return 0;
}

static void blob_free(void *payload)
{
	blob *b = payload;
	free(b->text);
	b->text = NULL;
	atomic_fetch_add(&g_frees, 1);
}

static const relay_payload_ops blob_ops = { blob_copy, blob_free };

typedef struct bsrc {
	relay_object base;
	RELAY_SIGNAL(data, blob);
} bsrc;

static const relay_class bsrc_class = { .name = "bsrc" };

static bsrc *new_bsrc(void)
{
	bsrc *s = NULL;
	assert_int_equal(relay_object_new(&s, &bsrc_class, NULL), 0);
	assert_int_equal(relay_signal_set_ops(s, data, &blob_ops), 0);
	return s;
}

static char g_text[] = "a payload that owns memory";

static void on_blob(obj *self, const blob *b)
{
	(void)b;
	atomic_fetch_add(&self->hits, 1);
}

static void reset_blob_counts(void)
{
	atomic_store(&g_copies, 0);
	atomic_store(&g_frees, 0);
}

/* Keeps a thread inside one slot until released, so events pile up
 * behind it; a quit sent meanwhile ends its loop with them still queued. */
static atomic_int g_busy, g_release;

static void busy_until_released(void *p)
{
	(void)p;
	atomic_store(&g_busy, 1);
	uint64_t dl = now_ms() + SAFETY_MS;
	while (!atomic_load(&g_release) && now_ms() < dl)
		sched_yield();
}

static void hold_busy(obj *in_thread)
{
	atomic_store(&g_busy, 0);
	atomic_store(&g_release, 0);
	assert_int_equal(relay_invoke(&in_thread->base, busy_until_released, NULL, NULL), 0);
	WAIT_UNTIL(atomic_load(&g_busy) == 1);
}

static uint64_t posted_to(relay_thread *t)
{
	relay_loop_stats st;
	assert_int_equal(relay_thread_stats(t, &st), 0);
	return st.posted;
}

static int ret_one(void *p)
{
	(void)p;
	return 1;
}

/* Spins (no sleep: the window is short) until t reports finished. */
static void spin_until_finished(relay_thread *t)
{
	uint64_t dl = now_ms() + SAFETY_MS;
	while (!relay_thread_is_finished(t))
		if (now_ms() > dl)
			fail_msg("safety timeout waiting for the thread to finish");
}

/* ---------------------------------------------------------------------
 * 1. One walker per queue (T4, D3): a finished thread's end scans its
 * queue (releasing blocking callers, freeing what is dead) after it has
 * published FINISHED, and relay_thread_is_finished / wait / stop already
 * report it finished then. A delete_later on one of its objects from
 * another thread then destroys the object in the caller, which purges the
 * same rings at the same time. Two walkers mark, free and take the same
 * records: a payload copy freed twice (ASan double free, frees > copies),
 * a blocking event freed twice, and under TSan the race on the records.
 * --------------------------------------------------------------------- */

typedef struct blocker {
	obj *target;
	int rc;
	pthread_t th;
} blocker;

static atomic_int g_never_ran;

static int must_not_run(void *p)
{
	(void)p;
	atomic_fetch_add(&g_never_ran, 1);
	return 0;
}

static void *blocking_caller(void *p)
{
	blocker *b = p;
	b->rc = relay_invoke_blocking(&b->target->base, must_not_run, NULL, NULL);
	return NULL;
}

#define NBLOCKERS 2

static void test_T4_delete_later_racing_thread_finish_frees_each_copy_once(void **state)
{
	(void)state;
	const long trials = p_trials(), n = p_events();
	const uint64_t end = now_ms() + (uint64_t)p_ms();
	atomic_store(&g_never_ran, 0);
	long done = 0;
	for (; done < trials && (done == 0 || now_ms() < end); done++) {
		reset_blob_counts();
		relay_thread *t = start_thread("lc-finish");
		obj *o = worker_obj(t, 1);
		bsrc *s = new_bsrc();
		assert_int_equal(relay_connect_ex(s, data, o, on_blob, RELAY_QUEUED, 0u, NULL), 0);

		/* t is held in a slot; n copies and NBLOCKERS blocking calls
		 * queue up behind it. */
		hold_busy(o);
		blob b = { g_text };
		for (long i = 0; i < n; i++)
			assert_int_equal(relay_emit(s, data, &b), 0);
		blocker bl[NBLOCKERS];
		for (int i = 0; i < NBLOCKERS; i++) {
			bl[i] = (blocker){ .target = o, .rc = 1 };
			assert_int_equal(pthread_create(&bl[i].th, NULL, blocking_caller, &bl[i]), 0);
		}
		WAIT_UNTIL(posted_to(t) >= (uint64_t)(1 + n + NBLOCKERS));

		/* t's loop ends with everything still queued; as soon as t says
		 * it has finished, its object is destroyed here (T4). */
		assert_int_equal(relay_thread_quit(t), 0);
		atomic_store(&g_release, 1);
		spin_until_finished(t);
		assert_int_equal(relay_object_delete_later(&o->base), 0);

		for (int i = 0; i < NBLOCKERS; i++) {
			pthread_join(bl[i].th, NULL);
			assert_true(bl[i].rc == RELAY_ENOTDELIVERED || bl[i].rc == RELAY_ENOTRUNNING);
		}
		assert_int_equal(relay_thread_wait(t, SAFETY_MS), 0);
		assert_int_equal(relay_thread_destroy(t), 0);
		assert_int_equal(relay_object_destroy(&s->base), 0);

		/* D3: every copy freed exactly once; T4: destroyed exactly once. */
		assert_int_equal(atomic_load(&g_copies), n);
		assert_int_equal(atomic_load(&g_frees), atomic_load(&g_copies));
		assert_int_equal(atomic_load(&g_fin_count), done + 1);
	}
	assert_int_equal(atomic_load(&g_never_ran), 0);
	diag_reset();   /* refused blocking calls reported theirs */
}

/* The same between relay_thread_destroy's drain (the handle's owner
 * frees what is still queued and then the rings) and a delete_later from
 * another thread, which purges the object's events from those rings. The
 * producer has exited, so the drain frees the rings themselves: a purge
 * still walking them reads freed chunks (ASan heap-use-after-free). */

typedef struct producer {
	bsrc *s;
	long n;
} producer;

static void *emit_and_exit(void *p)
{
	producer *pr = p;
	blob b = { g_text };
	for (long i = 0; i < pr->n; i++)
		relay_emit(pr->s, data, &b);
	return NULL;   /* its rings close as it exits */
}

typedef struct deleter {
	obj *o;
	atomic_int go;
	int rc;
	pthread_t th;
} deleter;

static void *delete_on_go(void *p)
{
	deleter *d = p;
	relay_thread_current();   /* adopted before the race, not during it */
	uint64_t dl = now_ms() + SAFETY_MS;
	while (!atomic_load(&d->go) && now_ms() < dl)
		;
	d->rc = relay_object_delete_later(&d->o->base);
	return NULL;
}

static void test_T4_delete_later_racing_handle_destroy_frees_each_copy_once(void **state)
{
	(void)state;
	const long trials = p_trials(), n = p_events();
	const uint64_t end = now_ms() + (uint64_t)p_ms();
	long done = 0;
	for (; done < trials && (done == 0 || now_ms() < end); done++) {
		reset_blob_counts();
		relay_thread *t = start_thread("lc-drain");
		obj *o = worker_obj(t, 1);
		obj *o2 = worker_obj(t, 2);
		bsrc *s = new_bsrc();
		assert_int_equal(relay_connect_ex(s, data, o, on_blob, RELAY_QUEUED, 0u, NULL), 0);
		assert_int_equal(relay_connect_ex(s, data, o2, on_blob, RELAY_QUEUED, 0u, NULL), 0);

		hold_busy(o2);
		producer pr = { s, n };
		pthread_t pth;
		assert_int_equal(pthread_create(&pth, NULL, emit_and_exit, &pr), 0);
		pthread_join(pth, NULL);
		assert_int_equal(relay_thread_quit(t), 0);
		atomic_store(&g_release, 1);
		assert_int_equal(relay_thread_wait(t, SAFETY_MS), 0);
		assert_int_equal(o->hits + o2->hits, 0);   /* all 2n still queued */

		deleter d = { .o = o, .rc = 1 };
		assert_int_equal(pthread_create(&d.th, NULL, delete_on_go, &d), 0);
		sleep_ms(1);   /* let it adopt itself and spin */
		atomic_store(&d.go, 1);
		assert_int_equal(relay_thread_destroy(t), 0);
		pthread_join(d.th, NULL);
		assert_int_equal(d.rc, 0);

		assert_int_equal(relay_object_delete_later(&o2->base), 0);   /* thread gone: now */
		assert_int_equal(relay_object_destroy(&s->base), 0);
		assert_int_equal(atomic_load(&g_copies), 2 * n);
		assert_int_equal(atomic_load(&g_frees), atomic_load(&g_copies));
		assert_int_equal(atomic_load(&g_fin_count), 2 * (done + 1));
	}
}

/* ---------------------------------------------------------------------
 * 4. A quit sent while a thread is finishing (T2): the header says a quit
 * on a thread that has finished does nothing, and only a quit that comes
 * before a run ends that run. A quit that lands while the thread runs its
 * end (from its finished slot, or from another thread racing a stop) is
 * kept today and ends the NEXT run at once: a restarted thread quits
 * before serving anything. Fails by a wrong result in any build.
 * --------------------------------------------------------------------- */

static void quit_own_thread(void *data)
{
	relay_thread_quit((relay_thread *)data);
}

/* After a restart, t must serve calls: its new run did not quit at once. */
static void expect_restarted_run_serves(relay_thread *t, obj *w)
{
	int r = 0;
	assert_int_equal(relay_invoke_blocking(&w->base, ret_one, NULL, &r), 0);
	assert_int_equal(r, 1);
	assert_true(relay_thread_is_running(t));
}

static void test_T2_quit_from_finished_slot_does_not_end_next_run(void **state)
{
	(void)state;
	relay_thread *t = start_thread("lc-quitfin");
	obj *w = worker_obj(t, 1);
	relay_connection c = 0;
	/* direct: runs in t, while t finishes */
	assert_int_equal(relay_connect_func_ex(t, finished, NULL, quit_own_thread, t, RELAY_AUTO, 0u,
					       &c), 0);
	assert_int_equal(relay_thread_stop(t, SAFETY_MS), 0);
	assert_int_equal(relay_disconnect(c), 0);

	assert_int_equal(relay_thread_start(t), 0);
	expect_restarted_run_serves(t, w);
	assert_int_equal(relay_object_delete_later(&w->base), 0);
	stop_thread(t);
}

static atomic_int g_in_finished, g_quit_sent;

static void hold_in_finished(void *data)
{
	(void)data;
	atomic_store(&g_in_finished, 1);
	uint64_t dl = now_ms() + SAFETY_MS;
	while (!atomic_load(&g_quit_sent) && now_ms() < dl)
		sched_yield();
}

static void test_T2_quit_racing_thread_finish_does_not_end_next_run(void **state)
{
	(void)state;
	atomic_store(&g_in_finished, 0);
	atomic_store(&g_quit_sent, 0);
	relay_thread *t = start_thread("lc-quitrace");
	obj *w = worker_obj(t, 1);
	relay_connection c = 0;
	assert_int_equal(relay_connect_func_ex(t, finished, NULL, hold_in_finished, NULL, RELAY_AUTO,
					       0u, &c), 0);
	assert_int_equal(relay_thread_quit(t), 0);
	WAIT_UNTIL(atomic_load(&g_in_finished) == 1);
	/* A second stop's quit arrives while t is inside its end. */
	assert_int_equal(relay_thread_quit(t), 0);
	atomic_store(&g_quit_sent, 1);
	assert_int_equal(relay_thread_wait(t, SAFETY_MS), 0);
	assert_int_equal(relay_disconnect(c), 0);

	assert_int_equal(relay_thread_start(t), 0);
	expect_restarted_run_serves(t, w);
	assert_int_equal(relay_object_delete_later(&w->base), 0);
	stop_thread(t);
}

/* ---------------------------------------------------------------------
 * 6. Descriptors of gone threads: a thread whose handle is destroyed must
 * not keep its eventfd and epoll fd. A producer that never runs a loop
 * (a plain pthread) never prunes its rings, and each ring holds its
 * consumer's record, so 200 short-lived threads it posted to keep 400
 * descriptors. Fails by a wrong count in any build.
 * --------------------------------------------------------------------- */

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	if (!d)
		return -1;
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1;   /* the directory's own */
}

typedef struct fdjob {
	long rounds;
	int before, after;
	atomic_int ran;
} fdjob;

static void count_ran(void *p)
{
	atomic_fetch_add(&((fdjob *)p)->ran, 1);
}

static void *post_to_short_lived_threads(void *p)
{
	fdjob *j = p;
	relay_thread_current();   /* this thread's own record exists before counting */
	j->before = count_fds();
	for (long i = 0; i < j->rounds; i++) {
		relay_thread *t = NULL;
		WCHECK(relay_thread_create("lc-fd", NULL, &t) == 0);
		if (!t)
			break;
		WCHECK(relay_thread_start(t) == 0);
		obj *w = NULL;
		WCHECK(relay_object_new(&w, &obj_class, NULL) == 0);
		WCHECK(relay_object_move_to_thread(&w->base, t) == 0);
		obj *s = NULL;
		WCHECK(relay_object_new(&s, &obj_class, NULL) == 0);
		WCHECK(relay_connect(s, ping, w, on_ping) == 0);
		WCHECK(relay_emit(s, ping) == 0);                          /* queued emit */
		WCHECK(relay_invoke(&w->base, count_ran, j, NULL) == 0);   /* invoke */
		uint64_t dl = now_ms() + SAFETY_MS;
		while (atomic_load(&j->ran) < i + 1 && now_ms() < dl)
			sched_yield();
		WCHECK(atomic_load(&w->hits) == 1);
		WCHECK(relay_object_delete_later(&w->base) == 0);
		WCHECK(relay_thread_stop(t, SAFETY_MS) == 0);
		WCHECK(relay_thread_destroy(t) == 0);
		WCHECK(relay_object_destroy(&s->base) == 0);
	}
	j->after = count_fds();
	return NULL;
}

static void test_T3_gone_threads_keep_no_descriptors_under_busy_producer(void **state)
{
	(void)state;
	fdjob j = { .rounds = p_threads() };
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, post_to_short_lived_threads, &j), 0);
	pthread_join(th, NULL);
	assert_int_equal(atomic_exchange(&g_worker_errors, 0), 0);
	assert_int_equal(atomic_load(&j.ran), j.rounds);
	assert_int_equal(atomic_load(&g_fin_count), 2 * j.rounds);
	assert_true(j.before > 0);
	if (j.after - j.before > 16)
		fail_msg("%d descriptors before, %d after %ld threads came and went",
			 j.before, j.after, j.rounds);
}

/* ---------------------------------------------------------------------
 * 7. Adopted threads (T1, T3): an adopted thread's handle is freed with
 * its record as the pthread exits, without being destroyed as an object,
 * so its connections stay linked to freed memory: destroying a receiver
 * of its `finished` then unlinks through the freed handle (ASan
 * heap-use-after-free). And Qt emits finished for an adopted thread as it
 * exits; relay never does (a wrong count in any build).
 * --------------------------------------------------------------------- */

typedef struct adoptee {
	_Atomic(relay_thread *) handle;
	pthread_t self;
	atomic_int ready, go;
	relay_connection conn;
	int rc;
} adoptee;

static atomic_int g_adopted_finished;
static _Atomic(relay_thread *) g_adopted_finished_in;
static _Atomic(bool) g_adopted_finished_same_pthread;

static void on_adopted_finished(void *data)
{
	adoptee *a = data;
	atomic_store(&g_adopted_finished_in, relay_thread_current());
	atomic_store(&g_adopted_finished_same_pthread, pthread_equal(pthread_self(), a->self) != 0);
	atomic_fetch_add(&g_adopted_finished, 1);
}

static void *adopted_connects_finished(void *p)
{
	adoptee *a = p;
	a->self = pthread_self();
	relay_thread *h = relay_thread_current();
	a->rc = h ? relay_connect_func(h, finished, on_adopted_finished, a) : -ENOMEM;
	atomic_store(&a->handle, h);
	atomic_store(&a->ready, 1);
	return NULL;   /* exits: finished should be emitted here, now */
}

static void test_T1_adopted_thread_emits_finished_as_it_exits(void **state)
{
	(void)state;
	atomic_store(&g_adopted_finished, 0);
	atomic_store(&g_adopted_finished_in, NULL);
	adoptee a = { .rc = 1 };
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, adopted_connects_finished, &a), 0);
	pthread_join(th, NULL);
	assert_int_equal(a.rc, 0);
	assert_non_null(atomic_load(&a.handle));
	assert_int_equal(atomic_load(&g_adopted_finished), 1);
	/* from the exiting thread itself (compared as addresses only) */
	assert_ptr_equal(atomic_load(&g_adopted_finished_in), atomic_load(&a.handle));
	assert_true(atomic_load(&g_adopted_finished_same_pthread));
}

static void *adopted_waits_then_exits(void *p)
{
	adoptee *a = p;
	a->self = pthread_self();
	atomic_store(&a->handle, relay_thread_current());
	atomic_store(&a->ready, 1);
	uint64_t dl = now_ms() + SAFETY_MS;
	while (!atomic_load(&a->go) && now_ms() < dl)
		sleep_ms(1);
	return NULL;
}

static void test_T3_adopted_handle_gone_receiver_destroyed_safely(void **state)
{
	(void)state;
	adoptee a = { .rc = 0 };
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, adopted_waits_then_exits, &a), 0);
	WAIT_UNTIL(atomic_load(&a.ready) == 1);
	relay_thread *h = atomic_load(&a.handle);
	assert_non_null(h);
	obj *r = new_obj(NULL, 1);   /* lives in main */
	assert_int_equal(relay_connect(h, finished, r, on_ping), 0);
	atomic_store(&a.go, 1);
	pthread_join(th, NULL);
	drain();
	/* The sender (the adopted handle) is gone: the receiver's destroy
	 * must not touch it. */
	assert_int_equal(relay_object_destroy(&r->base), 0);
	assert_int_equal(atomic_load(&g_fin_count), 1);
}

/* ---------------------------------------------------------------------
 * 11. Around a thread's end (T1, T2, O1).
 * --------------------------------------------------------------------- */

/* Restarting a thread from a slot connected to its `finished` (the Qt
 * idiom finished -> start) must work: Qt's start waits for the finish to
 * complete. Today relay_thread_start refuses with RELAY_ERUNNING while
 * the thread is still FINISHING. To make "still finishing" the likely
 * case, a direct finished slot in t holds t's end until the queued slot
 * in main has begun. Fails by a wrong return code in any build. */

static atomic_int g_restart_entered, g_restart_rc, g_restart_calls, g_started_count;
static relay_thread *g_restart_thread;   /* set before the thread runs */

static void restart_from_finished(obj *self)
{
	atomic_store(&g_restart_entered, 1);
	atomic_store(&g_restart_rc, relay_thread_start(g_restart_thread));
	atomic_fetch_add(&g_restart_calls, 1);
	record(self, 0);
}

static void finish_slowly(void *data)
{
	(void)data;
	uint64_t dl = now_ms() + SAFETY_MS;
	while (!atomic_load(&g_restart_entered) && now_ms() < dl)
		sleep_ms(1);
	sleep_ms(5);   /* main is inside relay_thread_start by now */
}

static void count_started(void *data)
{
	(void)data;
	atomic_fetch_add(&g_started_count, 1);
}

static void test_T1_restart_from_finished_slot_waits_for_finish(void **state)
{
	(void)state;
	atomic_store(&g_restart_entered, 0);
	atomic_store(&g_restart_rc, 1);
	atomic_store(&g_restart_calls, 0);
	atomic_store(&g_started_count, 0);
	relay_thread *t = new_thread("lc-restart");
	g_restart_thread = t;
	obj *m = new_obj(NULL, 1);   /* lives in the handle's thread (main) */
	obj *w = worker_obj(t, 2);
	relay_connection c1 = 0, c2 = 0, c3 = 0;
	assert_int_equal(relay_connect_func_ex(t, started, NULL, count_started, NULL, RELAY_AUTO, 0u,
					       &c3), 0);
	assert_int_equal(relay_connect_ex(t, finished, m, restart_from_finished, RELAY_AUTO, 0u, &c1),
			 0);
	assert_int_equal(relay_connect_func_ex(t, finished, NULL, finish_slowly, NULL, RELAY_AUTO, 0u,
					       &c2), 0);
	assert_int_equal(relay_thread_start(t), 0);
	assert_int_equal(relay_thread_quit(t), 0);
	RUN_UNTIL(atomic_load(&g_restart_calls) == 1);
	assert_int_equal(relay_disconnect(c1), 0);
	assert_int_equal(relay_disconnect(c2), 0);

	assert_int_equal(atomic_load(&g_restart_rc), 0);
	WAIT_UNTIL(atomic_load(&g_started_count) == 2);   /* it runs again */
	expect_restarted_run_serves(t, w);
	assert_int_equal(relay_disconnect(c3), 0);
	assert_int_equal(relay_object_delete_later(&w->base), 0);
	stop_thread(t);
	assert_int_equal(relay_object_destroy(&m->base), 0);
}

/* Inside a finished slot the thread counts as finished, not running
 * (Qt's isInFinish rule: isRunning() false, isFinished() true). Today it
 * is still "running". Wrong result in any build. */

static atomic_int g_fin_running = -1, g_fin_finished = -1;

static void query_in_finished(void *data)
{
	relay_thread *t = data;
	atomic_store(&g_fin_running, relay_thread_is_running(t));
	atomic_store(&g_fin_finished, relay_thread_is_finished(t));
}

static void test_T1_finished_slot_sees_thread_finished(void **state)
{
	(void)state;
	atomic_store(&g_fin_running, -1);
	atomic_store(&g_fin_finished, -1);
	relay_thread *t = start_thread("lc-infinish");
	assert_int_equal(relay_connect_func(t, finished, query_in_finished, t), 0);
	assert_int_equal(relay_thread_stop(t, SAFETY_MS), 0);
	assert_int_equal(atomic_load(&g_fin_running), 0);
	assert_int_equal(atomic_load(&g_fin_finished), 1);
	assert_int_equal(relay_thread_destroy(t), 0);
}

/* The interruption request belongs to one run: cleared when the run
 * finishes (Qt's finish() clears it) and at start. Today it survives the
 * end of the run. Wrong result in any build. */
static void test_T2_interruption_cleared_when_run_finishes(void **state)
{
	(void)state;
	relay_thread *t = start_thread("lc-interrupt");
	assert_int_equal(relay_thread_request_interruption(t), 0);
	assert_true(relay_thread_interruption_requested(t));
	assert_int_equal(relay_thread_stop(t, SAFETY_MS), 0);
	assert_false(relay_thread_interruption_requested(t));

	/* asked while it is stopped: the next start clears it */
	assert_int_equal(relay_thread_request_interruption(t), 0);
	assert_int_equal(relay_thread_start(t), 0);
	assert_false(relay_thread_interruption_requested(t));
	stop_thread(t);
}

/* O1: an object whose thread's handle was destroyed has no thread
 * (relay_object_thread() is NULL), so, like any object with no thread, it
 * may be moved from any thread. Today the move is refused with
 * RELAY_EWRONGTHREAD. Wrong result in any build. */

typedef struct mover {
	obj *o;
	int rc;
} mover;

static void *move_to_main(void *p)
{
	mover *m = p;
	m->rc = relay_object_move_to_thread(&m->o->base, relay_thread_main());
	return NULL;
}

static void test_O1_object_of_destroyed_handle_movable_from_any_thread(void **state)
{
	(void)state;
	relay_thread *t = start_thread("lc-orphan");
	obj *w = worker_obj(t, 1);
	obj *w2 = worker_obj(t, 2);
	stop_thread(t);
	assert_null(relay_object_thread(&w->base));
	assert_null(relay_object_thread(&w2->base));

	assert_int_equal(relay_object_move_to_thread(&w->base, relay_thread_current()), 0);
	assert_ptr_equal(relay_object_thread(&w->base), relay_thread_main());

	mover m = { w2, 1 };
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, move_to_main, &m), 0);
	pthread_join(th, NULL);
	assert_int_equal(m.rc, 0);
	assert_ptr_equal(relay_object_thread(&w2->base), relay_thread_main());

	assert_int_equal(relay_object_destroy(&w->base), 0);
	assert_int_equal(relay_object_destroy(&w2->base), 0);
	assert_int_equal(atomic_load(&g_fin_count), 2);
}

/* ---------------------------------------------------------------------
 * 12. Nested loops (T2): relay_loop_quit / relay_loop_exit, called in the
 * thread, end only the innermost loop; relay_thread_quit / exit end the
 * thread, i.e. every loop it runs (Qt's QThread::quit exits all of the
 * thread's event loops). Today a thread quit ends only the innermost one
 * and the thread keeps running its outer loop: the wait times out (the
 * SAFETY_MS safety net), a wrong result in any build.
 * --------------------------------------------------------------------- */

static atomic_int g_nest_in, g_nest_out, g_nest_rc;

static void run_nested_loop(void *p)
{
	(void)p;
	atomic_fetch_add(&g_nest_in, 1);
	atomic_store(&g_nest_rc, relay_loop_run());
	atomic_fetch_add(&g_nest_out, 1);
}

static void loop_exit_5(void *p)
{
	(void)p;
	relay_loop_exit(5);
}

static void test_T2_thread_quit_ends_every_nested_loop(void **state)
{
	(void)state;
	atomic_store(&g_nest_in, 0);
	atomic_store(&g_nest_out, 0);
	atomic_store(&g_nest_rc, -1);
	relay_thread *t = start_thread("lc-nested");
	obj *w = worker_obj(t, 1);

	/* relay_loop_exit in the thread: the innermost loop only. */
	assert_int_equal(relay_invoke(&w->base, run_nested_loop, NULL, NULL), 0);
	WAIT_UNTIL(atomic_load(&g_nest_in) == 1);
	assert_int_equal(relay_invoke(&w->base, loop_exit_5, NULL, NULL), 0);
	WAIT_UNTIL(atomic_load(&g_nest_out) == 1);
	assert_int_equal(atomic_load(&g_nest_rc), 5);
	expect_restarted_run_serves(t, w);   /* the outer loop still runs */

	/* relay_thread_quit: the nested loop and the outer one. */
	assert_int_equal(relay_invoke(&w->base, run_nested_loop, NULL, NULL), 0);
	WAIT_UNTIL(atomic_load(&g_nest_in) == 2);
	assert_int_equal(relay_thread_quit(t), 0);
	WAIT_UNTIL(atomic_load(&g_nest_out) == 2);
	assert_int_equal(atomic_load(&g_nest_rc), 0);
	assert_int_equal(relay_thread_wait(t, SAFETY_MS), 0);
	assert_true(relay_thread_is_finished(t));
	assert_int_equal(relay_object_delete_later(&w->base), 0);   /* thread gone: now */
	assert_int_equal(relay_thread_destroy(t), 0);
}

/* ---------------------------------------------------------------------
 * 13b. A foreign destroy racing a restart (T4, O2): a delete_later on an
 * object of a finished thread destroys it in the caller (here a plain
 * pthread); if the handle's owner (main) restarts the thread meanwhile,
 * the new run delivers the object's queued events while the caller cuts,
 * purges (walking the rings the new run consumes) and frees it. The
 * object's `destroyed` slot (run in the destroying thread) waits until
 * the restarted run has called one of its slots, so the overlap is the
 * likely case. Shows under ASan (heap-use-after-free in the slot or the
 * purge) or TSan (the slot's writes and the purge race with the free and
 * with the consumer).
 * --------------------------------------------------------------------- */

static atomic_int g_touch_calls, g_in_destroy;

static uint64_t now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void touch_slot(obj *self, const int *v)
{
	int i = atomic_fetch_add(&g_touch_calls, 1);
	/* Plain writes to the receiver for a while after the destroyer was
	 * let go (about 200 us: only to make the overlap likely): a free
	 * during the slot shows. */
	uint64_t until = now_us() + 200;
	do {
		for (int k = 0; k < MAXLOG; k++)
			self->values[k] = *v + k + i;
		self->threads[i % MAXLOG] = relay_thread_current();
	} while (now_us() < until);
}

static void hold_destroy_until_restarted(void *data)
{
	(void)data;
	atomic_store(&g_in_destroy, 1);
	/* bounded: a library that makes the restart wait for this destroy
	 * must not deadlock the test */
	uint64_t dl = now_ms() + 100;
	while (atomic_load(&g_touch_calls) == 0 && now_ms() < dl)
		sched_yield();
}

static void test_T4_delete_later_racing_restart_destroys_safely(void **state)
{
	(void)state;
	const long trials = p_trials(), n = p_events() / 4;
	const uint64_t end = now_ms() + (uint64_t)p_ms();
	long done = 0;
	for (; done < trials && (done == 0 || now_ms() < end); done++) {
		atomic_store(&g_touch_calls, 0);
		atomic_store(&g_in_destroy, 0);
		relay_thread *t = start_thread("lc-restart-race");
		obj *o = worker_obj(t, 1);
		obj *s = new_obj(NULL, 2);
		assert_int_equal(relay_connect_ex(s, sig, o, touch_slot, RELAY_QUEUED, 0u, NULL), 0);
		assert_int_equal(relay_connect_func(o, base.destroyed, hold_destroy_until_restarted,
						    NULL), 0);
		hold_busy(o);
		for (int i = 0; i < n; i++)
			assert_int_equal(relay_emit(s, sig, &i), 0);
		assert_int_equal(relay_thread_quit(t), 0);
		atomic_store(&g_release, 1);
		assert_int_equal(relay_thread_wait(t, SAFETY_MS), 0);
		assert_int_equal(atomic_load(&g_touch_calls), 0);   /* all n still queued */

		deleter d = { .o = o, .rc = 1 };
		assert_int_equal(pthread_create(&d.th, NULL, delete_on_go, &d), 0);
		atomic_store(&d.go, 1);
		WAIT_UNTIL(atomic_load(&g_in_destroy) == 1);
		assert_int_equal(relay_thread_start(t), 0);
		pthread_join(d.th, NULL);
		assert_int_equal(d.rc, 0);

		stop_thread(t);
		assert_int_equal(relay_object_destroy(&s->base), 0);
		/* T4: destroyed once (s is an obj too: two per trial) */
		assert_int_equal(atomic_load(&g_fin_count), 2 * (done + 1));
	}
}

/* ---------------------------------------------------------------------
 * 13c. A delete_later committed after the drain (T4): the handle of a
 * thread that never ran is destroyed (GONE: its queue is drained) while
 * another thread's delete_later, which saw the thread as NEW and so
 * queues the DELETE, has not committed it yet. The DELETE then lands in a
 * ring nobody drains again: it is freed (or kept) without destroying the
 * object, whose finalizer never runs. The deleting thread is held inside
 * its post (at its second allocation of the call, after the state check:
 * the first is the event itself) until the handle is destroyed. An
 * attempt where the handle's destroy could not finish meanwhile (it
 * waited for a lock the held post has, e.g. the object locks are striped
 * by address) is not the scenario: it is retried with new objects. Every
 * attempt checks the promise - finalized exactly once - so a library that
 * serialises the two (or allocates in another order) passes. Wrong result
 * in any build.
 * --------------------------------------------------------------------- */

typedef struct late_deleter {
	obj *o;
	atomic_int ready;
	int rc;
} late_deleter;

static void *delete_late(void *p)
{
	late_deleter *d = p;
	relay_thread_current();   /* adopted before the pause is armed */
	g_pause_thread = pthread_self();
	atomic_store(&g_pause_count, 0);
	atomic_store(&g_pause_at, 1);
	atomic_store(&g_pause_armed, 1);
	d->rc = relay_object_delete_later(&d->o->base);
	atomic_store(&g_pause_armed, 0);
	relay_release_caches();   /* let go of rings to gone threads */
	return NULL;
}

static void test_T4_delete_later_committed_after_gone_drain_still_destroys(void **state)
{
	(void)state;
	/* objects of obj's size kept alive across attempts, so that a retry
	 * gets an object at another address (allocators reuse the last one) */
	static const relay_class spacer_class = { .name = "spacer" };
	relay_object *spacers[8] = { 0 };
	int arranged = 0, attempt = 0;
	for (; attempt < 8 && !arranged; attempt++) {
		assert_int_equal(relay_object_alloc(sizeof(obj), &spacer_class, NULL, &spacers[attempt]),
				 0);
		atomic_store(&g_paused, 0);
		atomic_store(&g_resume, 0);
		atomic_store(&g_pause_timed_out, 0);
		atomic_store(&g_pause_ms, 200);
		relay_thread *t = new_thread("lc-late");   /* never started: NEW */
		obj *o = worker_obj(t, attempt + 1);
		/* its ext part and weak block exist, so delete_later allocates
		 * only the event before posting it */
		assert_int_equal(relay_object_set_name(&o->base, "lc-late-obj"), 0);
		relay_weak wk = { 0 };
		assert_int_equal(relay_weak_set(&wk, &o->base), 0);

		late_deleter d = { .o = o, .rc = 1 };
		pthread_t th;
		assert_int_equal(pthread_create(&th, NULL, delete_late, &d), 0);
		/* bounded, not a failure: a library that allocates less never
		 * pauses, and the race is simply not forced then */
		uint64_t dl = now_ms() + 500;
		while (!atomic_load(&g_paused) && now_ms() < dl)
			sched_yield();
		assert_int_equal(relay_thread_destroy(t), 0);
		atomic_store(&g_resume, 1);
		pthread_join(th, NULL);
		arranged = !atomic_load(&g_pause_timed_out);
		assert_int_equal(d.rc, 0);
		/* T4: the thread is gone, yet the object is destroyed, once */
		assert_null(relay_weak_get(&wk));
		assert_int_equal(atomic_load(&g_fin_count), attempt + 1);
		relay_weak_clear(&wk);
	}
	for (int i = 0; i < attempt; i++)
		assert_int_equal(relay_object_destroy(spacers[i]), 0);
}

/* ---------------------------------------------------------------------
 * 21. Statistics and start refusals (T5, O3).
 * --------------------------------------------------------------------- */

/* Once everything has settled, every event posted to a loop was either
 * delivered or dropped: posted == delivered + dropped. Today the arm
 * event of a moved timer and the event that arms a cross-thread single
 * shot count as posted and then as neither. Wrong result in any build. */

static int destroy_timer_in_its_thread(void *p)
{
	return relay_object_destroy(&((relay_timer *)p)->base);
}

static void test_T5_stats_posted_is_delivered_plus_dropped(void **state)
{
	(void)state;
	relay_thread *t = start_thread("lc-stats");
	obj *w = worker_obj(t, 1);

	relay_timer *tm = NULL;
	assert_int_equal(relay_timer_create(NULL, &tm), 0);
	assert_int_equal(relay_timer_start(tm, 3600 * 1000), 0);   /* active, never due */
	assert_int_equal(relay_object_move_to_thread(&tm->base, t), 0);
	assert_int_equal(relay_single_shot(0, w, on_ping), 0);
	WAIT_UNTIL(atomic_load(&w->hits) == 1);                      /* the single shot fired */
	assert_int_equal(run_in(w, ret_one, NULL), 1);               /* after the arm event (FIFO) */
	assert_true(relay_timer_is_active(tm));
	assert_int_equal(run_in(w, destroy_timer_in_its_thread, tm), 0);
	assert_int_equal(relay_object_delete_later(&w->base), 0);
	assert_int_equal(relay_thread_stop(t, SAFETY_MS), 0);

	relay_loop_stats st;
	assert_int_equal(relay_thread_stats(t, &st), 0);
	if (st.posted != st.delivered + st.dropped)
		fail_msg("posted %llu, delivered %llu, dropped %llu",
			 (unsigned long long)st.posted, (unsigned long long)st.delivered,
			 (unsigned long long)st.dropped);
	assert_int_equal(relay_thread_destroy(t), 0);
	assert_int_equal(atomic_load(&g_fin_count), 1);
}

/* O3: a refused relay_thread_start reports one diagnostic, like every
 * other refused misuse: on a running thread (RELAY_ERUNNING) and on an
 * adopted thread's handle (the main thread's, a pthread's). Today both
 * refuse silently. Wrong result in any build. */

typedef struct adopted_start {
	int rc;
} adopted_start;

static void *start_own_adopted_handle(void *p)
{
	((adopted_start *)p)->rc = relay_thread_start(relay_thread_current());
	return NULL;
}

static void test_O3_refused_thread_start_reports_one_diag(void **state)
{
	(void)state;
	relay_thread *t = start_thread("lc-twice");
	diag_reset();
	assert_int_equal(relay_thread_start(t), RELAY_ERUNNING);
	expect_one_diag(RELAY_ERUNNING, "lc-twice");

	int rc = relay_thread_start(relay_thread_main());
	assert_true(rc < 0);
	expect_one_diag(rc, NULL);

	adopted_start a = { 1 };
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, start_own_adopted_handle, &a), 0);
	pthread_join(th, NULL);
	assert_true(a.rc < 0);
	expect_one_diag(a.rc, NULL);
	stop_thread(t);
}

int main(int argc, char **argv)
{
	/* before any other relay call */
	if (relay_set_allocator(&lc_allocator) != 0)
		return 1;
	support_set_args(argc, argv);
	/* LIFECYCLE_FILTER=pattern runs only the matching tests */
	const char *filter = getenv("LIFECYCLE_FILTER");
	if (filter && *filter)
		cmocka_set_test_filter(filter);
	/* Deterministic tests first; the race tests, which end the process
	 * (double free, sanitizer report) when they hit, come last. */
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_T2_quit_from_finished_slot_does_not_end_next_run,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_T2_quit_racing_thread_finish_does_not_end_next_run,
						setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_T3_gone_threads_keep_no_descriptors_under_busy_producer, setup, teardown),
		cmocka_unit_test_setup_teardown(test_T1_adopted_thread_emits_finished_as_it_exits, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_T1_restart_from_finished_slot_waits_for_finish,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_T1_finished_slot_sees_thread_finished, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_T2_interruption_cleared_when_run_finishes, setup,
						teardown),
		cmocka_unit_test_setup_teardown(
			test_O1_object_of_destroyed_handle_movable_from_any_thread, setup, teardown),
		cmocka_unit_test_setup_teardown(test_T2_thread_quit_ends_every_nested_loop, setup,
						teardown),
		cmocka_unit_test_setup_teardown(
			test_T4_delete_later_committed_after_gone_drain_still_destroys, setup, teardown),
		cmocka_unit_test_setup_teardown(test_T5_stats_posted_is_delivered_plus_dropped, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_O3_refused_thread_start_reports_one_diag, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_T3_adopted_handle_gone_receiver_destroyed_safely,
						setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_T4_delete_later_racing_thread_finish_frees_each_copy_once, setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_T4_delete_later_racing_handle_destroy_frees_each_copy_once, setup, teardown),
		cmocka_unit_test_setup_teardown(test_T4_delete_later_racing_restart_destroys_safely,
						setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
