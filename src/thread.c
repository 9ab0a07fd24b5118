/*
 * thread.c - thread records and relay_thread (Qt's QThread).
 *
 * A thread record (struct relay__tdata) exists for every OS thread relay
 * knows: threads started with relay_thread_start, the main thread, and
 * foreign threads adopted on their first relay call (as Qt's
 * QAdoptedThread). It holds the thread's loop: event queue, poller,
 * timers. Records are reference counted because objects keep pointing at
 * the thread they live in after it stopped; the memory goes when the last
 * reference does.
 *
 * Lifecycle of a started thread: NEW -> STARTING (pthread_create) ->
 * RUNNING (started emitted, loop runs) -> FINISHING (deferred deletions,
 * finished emitted, deferred deletions again) -> FINISHED (restartable)
 * -> GONE (handle destroyed: what is still queued is drained).
 */
#include "internal.h"

#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

_Thread_local struct relay__tls relay__tls RELAY__TLS_MODEL;
static pthread_key_t exit_key;               /* adopted threads' end */
static pthread_once_t once = PTHREAD_ONCE_INIT;
static struct relay__tdata *main_record;     /* set once (init_once) */

/* Threads started through relay_thread_create, for relay_main_run. */
static pthread_mutex_t all_lock = PTHREAD_MUTEX_INITIALIZER;
static struct relay__tdata *all_threads;     /* guarded by all_lock */

static void adopted_exit(void *arg);
static struct relay__tdata *record_new(const char *name, bool adopted);

static void init_once(void)
{
	pthread_key_create(&exit_key, adopted_exit);
	main_record = record_new("main", true);
	if (main_record) {
		main_record->is_main = true;
		main_record->os_tid = getpid();
		main_record->pthread = pthread_self();  /* fixed below if not main */
	}
}

/* ---- records ---- */

static void handle_init_adopted(relay_thread *h, struct relay__tdata *t)
{
	/* An adopted thread's handle lives in that thread but holds no
	 * reference to it (it is part of the record). */
	h->base.relay__class = &relay__thread_class;
	atomic_init(&h->base.relay__thread, t);
	atomic_init(&h->base.relay__flags, RELAY__OBJ_IS_THREAD);
	h->relay__data = t;
}

int relay__tdata_init(struct relay__tdata *t)
{
	atomic_init(&t->refs, 1);
	atomic_init(&t->state, RELAY__T_NEW);
	t->epfd = -1;
	int rc = relay__queue_init(&t->q);
	if (rc < 0)
		return rc;
	rc = relay__poll_init(t);
	if (rc < 0) {
		relay__queue_destroy(&t->q);
		return rc;
	}
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_mutex_init(&t->done_lock, NULL);
	pthread_mutexattr_t ma;
	pthread_mutexattr_init(&ma);
	pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_RECURSIVE);
	pthread_mutex_init(&t->foreign_lock, &ma);
	pthread_mutexattr_destroy(&ma);
	pthread_cond_init(&t->done_cond, &ca);
	pthread_condattr_destroy(&ca);
	return 0;
}

static struct relay__tdata *record_new(const char *name, bool adopted)
{
	struct relay__tdata *t = relay__calloc(sizeof *t);
	if (!t)
		return NULL;
	if (relay__tdata_init(t) < 0) {
		relay__free(t);
		return NULL;
	}
	snprintf(t->name, sizeof t->name, "%s", name ? name : "relay");
	t->adopted = adopted;
	if (adopted) {
		relay_thread *h = relay__calloc(sizeof *h);
		if (!h) {
			relay__poll_close(t);
			relay__queue_destroy(&t->q);
			relay__free(t);
			return NULL;
		}
		handle_init_adopted(h, t);
		t->handle = h;
		atomic_store(&t->state, RELAY__T_RUNNING);
	}
	return t;
}

static void record_free(struct relay__tdata *t)
{
	relay__drain_on_teardown(t);
	relay__timers_teardown(t);
	relay__poll_close(t);
	relay__queue_destroy(&t->q);
	pthread_cond_destroy(&t->done_cond);
	pthread_mutex_destroy(&t->done_lock);
	pthread_mutex_destroy(&t->foreign_lock);
	if (t->adopted)
		relay__free(t->handle);
	relay__free(t);
}

void relay__tdata_ref(struct relay__tdata *t)
{
	atomic_fetch_add_explicit(&t->refs, 1, memory_order_relaxed);
}

void relay__tdata_unref(struct relay__tdata *t)
{
	/* acq_rel: the last holder must see every other holder's writes. */
	if (atomic_fetch_sub_explicit(&t->refs, 1, memory_order_acq_rel) == 1)
		record_free(t);
}

struct relay__tdata *relay__tdata_main(void)
{
	pthread_once(&once, init_once);
	return main_record;
}

struct relay__tdata *relay__tdata_adopt(void)
{
	if (relay__tls.self)
		return relay__tls.self;
	struct relay__tdata *m = relay__tdata_main();
	if (m && gettid() == getpid()) {
		m->pthread = pthread_self();
		relay__tls.self = m;
		return m;
	}
	/* A foreign thread: adopt it. Its record goes at thread exit. */
	struct relay__tdata *t = record_new(NULL, true);
	if (!t)
		return NULL;
	t->pthread = pthread_self();
	t->os_tid = gettid();
	pthread_getname_np(pthread_self(), t->name, sizeof t->name);
	relay__tls.self = t;
	pthread_setspecific(exit_key, t);
	return t;
}

bool relay__tdata_serves(struct relay__tdata *t)
{
	int st = atomic_load(&t->state);
	if (t->adopted)
		return st == RELAY__T_RUNNING &&
		       (atomic_load(&t->loop_depth) > 0 || atomic_load(&t->pumps));
	return st == RELAY__T_STARTING || st == RELAY__T_RUNNING;
}

bool relay__tdata_loops(struct relay__tdata *t)
{
	int st = atomic_load(&t->state);
	return st == RELAY__T_STARTING || st == RELAY__T_RUNNING || st == RELAY__T_FINISHING;
}

/* ---- the end of a thread ---- */

static void set_state_locked_q(struct relay__tdata *t, int st)
{
	/* Under the queue lock: posters decide on the state under it too. */
	pthread_mutex_lock(&t->q.lock);
	atomic_store(&t->state, st);
	pthread_mutex_unlock(&t->q.lock);
}

static void announce_done(struct relay__tdata *t)
{
	pthread_mutex_lock(&t->done_lock);
	pthread_cond_broadcast(&t->done_cond);
	pthread_mutex_unlock(&t->done_lock);
}

void relay__thread_finish(struct relay__tdata *t, bool emit_finished)
{
	set_state_locked_q(t, RELAY__T_FINISHING);
	relay__run_deferred_deletes(t);
	if (emit_finished && t->handle) {
		relay_emit(t->handle, finished);
		relay__run_deferred_deletes(t);
	}
	set_state_locked_q(t, RELAY__T_FINISHED);
	/* Pairs with relay__post_blocking's re-check after its commit: either
	 * the scan below sees the event, or the poster sees FINISHED. */
	relay__fence();
	relay__release_blocking(t);
	atomic_store(&t->pumps, false);
	announce_done(t);
}

/* What the OS thread itself held: its rings to other threads (handed to
 * their consumers) and its emit cache. */
static void thread_exit_cleanup(struct relay__tdata *t)
{
	relay__signal_thread_exit();
	relay__producer_close(&t->prod);
}

static void adopted_exit(void *arg)
{
	struct relay__tdata *t = arg;
	relay__tls.self = t;   /* destructors may call relay */
	relay__thread_finish(t, false);
	thread_exit_cleanup(t);
	set_state_locked_q(t, RELAY__T_GONE);
	relay__drain_on_teardown(t);
	announce_done(t);
	relay__tls.self = NULL;
	relay__tdata_unref(t);
}

static void *thread_main(void *arg)
{
	struct relay__tdata *t = arg;
	relay__tls.self = t;
	t->os_tid = gettid();
	pthread_setname_np(pthread_self(), t->name);
	set_state_locked_q(t, RELAY__T_RUNNING);
	relay_emit(t->handle, started);
	int code = relay__loop_run(t);
	(void)code;
	relay__thread_finish(t, true);
	thread_exit_cleanup(t);
	relay__tls.self = NULL;
	relay__tdata_unref(t);   /* the running thread's reference */
	return NULL;
}

/* ---- the handle: an object living in the creating thread ---- */

static void thread_finalize(relay_object *obj)
{
	relay_thread *h = (relay_thread *)obj;
	struct relay__tdata *t = h->relay__data;
	if (t->joinable) {
		pthread_join(t->pthread, NULL);
		t->joinable = false;
	}
	pthread_mutex_lock(&all_lock);
	for (struct relay__tdata **pp = &all_threads; *pp; pp = &(*pp)->next_all) {
		if (*pp == t) {
			*pp = t->next_all;
			break;
		}
	}
	pthread_mutex_unlock(&all_lock);
	set_state_locked_q(t, RELAY__T_GONE);
	relay__drain_on_teardown(t);
	t->handle = NULL;
	announce_done(t);
	relay__tdata_unref(t);
}

const relay_class relay__thread_class = { "relay_thread", thread_finalize, 0 };

int relay__thread_check_destroy(relay_object *obj)
{
	relay_thread *h = (relay_thread *)obj;
	struct relay__tdata *t = h->relay__data;
	char who[160];
	if (t->adopted)
		return relay__diag(-EINVAL, "relay_thread_destroy: thread '%s' was adopted, "
				   "relay owns its handle; let the thread exit instead", t->name);
	/* A FINISHING thread has quit: its finalizer's join returns as soon as
	 * the thread has run its last deferred deletions (so the Qt idiom
	 * finished -> deleteLater on the handle works). */
	int st = atomic_load(&t->state);
	if (st == RELAY__T_STARTING || st == RELAY__T_RUNNING)
		return relay__diag(RELAY_ERUNNING,
				   "relay_thread_destroy: thread '%s' is still running (handle %s); "
				   "call relay_thread_stop() (quit + wait) first",
				   t->name, relay__describe(obj, who, sizeof who));
	return 0;
}

int relay_thread_create(const char *name, relay_object *parent, relay_thread **out)
{
	if (!out)
		return -EINVAL;
	*out = NULL;
	struct relay__tdata *t = record_new(name, false);
	if (!t)
		return -ENOMEM;
	relay_thread *h;
	int rc = relay_object_new(sizeof *h, &relay__thread_class, parent, &h);
	if (rc < 0) {
		relay__tdata_unref(t);
		return rc;
	}
	atomic_fetch_or(&h->base.relay__flags, RELAY__OBJ_IS_THREAD);
	h->relay__data = t;
	t->handle = h;
	pthread_mutex_lock(&all_lock);
	t->next_all = all_threads;
	all_threads = t;
	pthread_mutex_unlock(&all_lock);
	*out = h;
	return 0;
}

static struct relay__tdata *data_of(const relay_thread *t)
{
	return t ? t->relay__data : NULL;
}

static int check_handle_owner(relay_thread *h, const char *what)
{
	char who[160];
	if (!relay__tdata_is_current(relay__obj_thread(&h->base)))
		return relay__diag(RELAY_EWRONGTHREAD, "%s: %s belongs to another thread; "
				   "call it from the thread that created the handle",
				   what, relay__describe(&h->base, who, sizeof who));
	return 0;
}

int relay_thread_start(relay_thread *h)
{
	struct relay__tdata *t = data_of(h);
	if (!t)
		return -EINVAL;
	if (t->adopted)
		return -EINVAL;
	int rc = check_handle_owner(h, "relay_thread_start");
	if (rc < 0)
		return rc;
	int st = atomic_load(&t->state);
	if (st != RELAY__T_NEW && st != RELAY__T_FINISHED)
		return RELAY_ERUNNING;
	if (t->joinable) {   /* a restart: reap the previous run */
		pthread_join(t->pthread, NULL);
		t->joinable = false;
	}
	atomic_store(&t->interrupt, false);
	set_state_locked_q(t, RELAY__T_STARTING);
	relay__tdata_ref(t);
	rc = pthread_create(&t->pthread, NULL, thread_main, t);
	if (rc != 0) {
		set_state_locked_q(t, st);
		relay__tdata_unref(t);
		return rc == EAGAIN ? -EAGAIN : -rc;
	}
	t->joinable = true;
	return 0;
}

int relay_thread_exit(relay_thread *h, int code)
{
	struct relay__tdata *t = data_of(h);
	if (!t)
		return -EINVAL;
	/* A thread that has finished has no loop to quit: a quit now must not
	 * end its next run (a quit before the first start is kept, T2). */
	int st = atomic_load(&t->state);
	if (st == RELAY__T_FINISHED || st == RELAY__T_GONE)
		return 0;
	/* The loop may return, and an adopted thread exit and free its record,
	 * as soon as the flag is set: hold the record while waking it. */
	relay__tdata_ref(t);
	atomic_store(&t->exit_code, code);
	/* Set before the wake-up's check: see relay__queue_prepare_sleep. */
	atomic_store(&t->exit_pending, true);
	relay__loop_wake(t);
	relay__tdata_unref(t);
	return 0;
}

int relay_thread_quit(relay_thread *h)
{
	return relay_thread_exit(h, 0);
}

static bool is_done(struct relay__tdata *t)
{
	int st = atomic_load(&t->state);
	return st == RELAY__T_NEW || st == RELAY__T_FINISHED || st == RELAY__T_GONE;
}

static int wait_record(struct relay__tdata *t, int timeout_ms)
{
	struct timespec deadline;
	clock_gettime(CLOCK_MONOTONIC, &deadline);
	if (timeout_ms >= 0) {
		deadline.tv_sec += timeout_ms / 1000;
		deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
		if (deadline.tv_nsec >= 1000000000L) {
			deadline.tv_sec++;
			deadline.tv_nsec -= 1000000000L;
		}
	}
	int rc = 0;
	pthread_mutex_lock(&t->done_lock);
	while (!is_done(t) && rc == 0) {
		if (timeout_ms < 0)
			pthread_cond_wait(&t->done_cond, &t->done_lock);
		else if (pthread_cond_timedwait(&t->done_cond, &t->done_lock, &deadline) == ETIMEDOUT)
			rc = is_done(t) ? 0 : -ETIMEDOUT;
	}
	pthread_mutex_unlock(&t->done_lock);
	return rc;
}

int relay_thread_wait(relay_thread *h, int timeout_ms)
{
	struct relay__tdata *t = data_of(h);
	if (!t)
		return -EINVAL;
	if (relay__tdata_is_current(t))
		return relay__diag(RELAY_EWAITSELF, "relay_thread_wait: thread '%s' cannot wait "
				   "for itself; quit its loop and wait from another thread", t->name);
	return wait_record(t, timeout_ms);
}

int relay_thread_stop(relay_thread *h, int timeout_ms)
{
	int rc = relay_thread_quit(h);
	if (rc < 0)
		return rc;
	return relay_thread_wait(h, timeout_ms);
}

int relay_thread_destroy(relay_thread *h)
{
	if (!h)
		return -EINVAL;
	return relay_object_destroy(&h->base);
}

int relay_thread_request_interruption(relay_thread *h)
{
	struct relay__tdata *t = data_of(h);
	if (!t)
		return -EINVAL;
	atomic_store_explicit(&t->interrupt, true, memory_order_relaxed);
	return 0;
}

bool relay_thread_interruption_requested(const relay_thread *h)
{
	struct relay__tdata *t = data_of(h);
	return t && atomic_load_explicit(&t->interrupt, memory_order_relaxed);
}

bool relay_interruption_requested(void)
{
	struct relay__tdata *t = relay__tls.self;
	return t && atomic_load_explicit(&t->interrupt, memory_order_relaxed);
}

bool relay_thread_is_running(const relay_thread *h)
{
	struct relay__tdata *t = data_of(h);
	if (!t)
		return false;
	int st = atomic_load(&t->state);
	return st == RELAY__T_STARTING || st == RELAY__T_RUNNING || st == RELAY__T_FINISHING;
}

bool relay_thread_is_finished(const relay_thread *h)
{
	struct relay__tdata *t = data_of(h);
	if (!t)
		return false;
	int st = atomic_load(&t->state);
	return st == RELAY__T_FINISHED || st == RELAY__T_GONE;
}

relay_thread *relay_thread_current(void)
{
	struct relay__tdata *t = relay__tdata_current();
	return t ? t->handle : NULL;
}

relay_thread *relay_thread_main(void)
{
	struct relay__tdata *t = relay__tdata_main();
	return t ? t->handle : NULL;
}

bool relay_is_main_thread(void)
{
	return relay__tdata_current() == relay__tdata_main();
}

int relay_thread_name(const relay_thread *h, char *buf, size_t size)
{
	struct relay__tdata *t = data_of(h);
	if (!t || !buf || size == 0)
		return -EINVAL;
	snprintf(buf, size, "%s", t->name);
	return 0;
}

int relay_thread_stats(const relay_thread *h, relay_loop_stats *out)
{
	struct relay__tdata *t = data_of(h);
	if (!t || !out)
		return -EINVAL;
	out->posted = atomic_load_explicit(&t->posted, memory_order_relaxed) +
		      relay__queue_ring_posts(t);
	out->delivered = atomic_load_explicit(&t->delivered, memory_order_relaxed);
	out->dropped = atomic_load_explicit(&t->dropped, memory_order_relaxed);
	out->wakeups = atomic_load_explicit(&t->wakeups, memory_order_relaxed);
	out->passes = atomic_load_explicit(&t->passes, memory_order_relaxed);
	out->timers_fired = atomic_load_explicit(&t->timers_fired, memory_order_relaxed);
	return 0;
}

void relay_slot_quit(relay_thread *h)
{
	relay_thread_quit(h);
}

/* ---- the application loop ---- */

int relay_main_quit(void)
{
	return relay_thread_quit(relay_thread_main());
}

int relay_main_exit(int code)
{
	return relay_thread_exit(relay_thread_main(), code);
}

static bool is_live(struct relay__tdata *t)
{
	int st = atomic_load(&t->state);
	return st == RELAY__T_STARTING || st == RELAY__T_RUNNING || st == RELAY__T_FINISHING;
}

/* Out of memory: one live thread at a time (each quit, then waited for). */
static void stop_all_threads_slowly(int timeout_ms)
{
	for (;;) {
		struct relay__tdata *found = NULL;
		pthread_mutex_lock(&all_lock);
		for (struct relay__tdata *t = all_threads; t && !found; t = t->next_all)
			if (is_live(t) && !atomic_load(&t->exit_pending))
				found = t;
		if (found)
			relay__tdata_ref(found);
		pthread_mutex_unlock(&all_lock);
		if (!found)
			return;
		atomic_store(&found->exit_pending, true);
		relay__loop_wake(found);
		if (wait_record(found, timeout_ms) < 0)
			relay__diag(-ETIMEDOUT, "relay_main_run: thread '%s' did not stop within "
				    "%d ms; its loop may be blocked in a slot", found->name, timeout_ms);
		relay__tdata_unref(found);
	}
}

/* Quits every started thread, then waits for each (T5), naming those that
 * do not stop instead of hanging on them. */
static void stop_all_threads(int timeout_ms)
{
	size_t n = 0, cap = 0;
	struct relay__tdata **live = NULL;
	pthread_mutex_lock(&all_lock);
	for (struct relay__tdata *t = all_threads; t; t = t->next_all)
		cap++;
	/* Allocated under the lock so the count holds; without memory, the
	 * threads are quit and waited for one by one below. */
	live = cap ? relay__alloc(cap * sizeof *live) : NULL;
	for (struct relay__tdata *t = all_threads; t && live; t = t->next_all) {
		if (is_live(t)) {
			relay__tdata_ref(t);
			live[n++] = t;
		}
	}
	pthread_mutex_unlock(&all_lock);
	if (cap && !live) {
		stop_all_threads_slowly(timeout_ms);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		atomic_store(&live[i]->exit_pending, true);
		relay__loop_wake(live[i]);
	}
	for (size_t i = 0; i < n; i++) {
		if (wait_record(live[i], timeout_ms) < 0)
			relay__diag(-ETIMEDOUT, "relay_main_run: thread '%s' did not stop within "
				    "%d ms; its loop may be blocked in a slot", live[i]->name, timeout_ms);
		relay__tdata_unref(live[i]);
	}
	relay__free(live);
}

int relay_main_run(int timeout_ms)
{
	struct relay__tdata *self = relay__tdata_current();
	if (!self)
		return -ENOMEM;
	if (!self->is_main)
		return relay__diag(RELAY_EWRONGTHREAD, "relay_main_run: called from thread '%s'; "
				   "call it from the main thread (use relay_loop_run elsewhere)",
				   self->name);
	int code = relay__loop_run(self);
	stop_all_threads(timeout_ms < 0 ? 5000 : timeout_ms);
	relay_process_events();        /* what the stopping threads sent back */
	relay__run_deferred_deletes(self);
	return code;
}
