/*
 * thread.c - thread records and relay_thread (Qt's QThread).
 *
 * A thread record (struct relay__tdata) exists for every OS thread relay
 * knows: threads started with relay_thread_start, the main thread, and
 * foreign threads adopted on their first relay call (as Qt's
 * QAdoptedThread). It holds the thread's loop: event queue, poller,
 * timers. Records are reference counted because objects (their anchors)
 * keep pointing at the thread they live in after it stopped; the memory
 * goes when the last reference does - the kernel resources (eventfd, epoll
 * fd) as soon as the thread is gone.
 *
 * Lifecycle of a started thread: NEW -> STARTING (start) -> RUNNING
 * (started emitted, loop runs) -> FINISHING (the loop returned: deferred
 * deletions, finished, deletions again, the last scan) -> FINISHED
 * (restartable; or straight back to STARTING when start() was called
 * while it finished) -> GONE (handle destroyed: what is still queued is
 * drained). State changes happen under the queue lock, so that quit,
 * start and destroy decide on the state under the same lock.
 *
 * Who owns the loop (queue.h): the OS thread from before `started` until
 * its finish is complete - "finished" is reported to waiters only after
 * the last scan and after it let go, so a waiter's delete_later finds the
 * loop free and serves it at once; then whoever serves the stopped loop.
 */
#include "internal.h"

#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

_Thread_local struct relay__tls relay__tls RELAY__TLS_MODEL;

static pthread_mutex_t init_lock = PTHREAD_MUTEX_INITIALIZER;
static bool key_ready;                                 /* init_lock */
static pthread_key_t exit_key;                         /* adopted threads' end */
static struct relay__tdata *_Atomic main_record;       /* set once, when it worked */

/* Threads made by relay_thread_create, for relay_main_run. */
static pthread_mutex_t all_lock = PTHREAD_MUTEX_INITIALIZER;
static struct relay__tdata *all_threads;               /* guarded by all_lock */

static void adopted_exit(void *arg);
static const relay_class adopted_class = { .name = "relay_thread" };

/* ---- thread states, asked in one place ---- */

bool relay__tstate_stopped(int st)
{
	return st == RELAY__T_FINISHED || st == RELAY__T_GONE;
}

bool relay__tstate_gone(int st)
{
	return st == RELAY__T_GONE;
}

bool relay__tstate_serves(struct relay__tdata *t)
{
	int st = relay__tstate(t);
	if (t->adopted)
		return st == RELAY__T_RUNNING &&
		       (atomic_load(&t->loop_depth) > 0 || atomic_load(&t->pumps));
	return st == RELAY__T_STARTING || st == RELAY__T_RUNNING;
}

static bool tstate_loops(int st)   /* its thread runs, or will run, its loop */
{
	return st == RELAY__T_STARTING || st == RELAY__T_RUNNING || st == RELAY__T_FINISHING;
}

struct relay__tdata *relay__obj_owner_thread(const relay_object *obj)
{
	struct relay__tdata *t = relay__obj_thread(obj);
	return t && relay__tstate_gone(relay__tstate(t)) ? NULL : t;
}

static void set_state(struct relay__tdata *t, int st)
{
	pthread_mutex_lock(&t->q.lock);
	atomic_store(&t->state, st);
	pthread_mutex_unlock(&t->q.lock);
}

/* ---- records ---- */

int relay__tdata_init(struct relay__tdata *t)
{
	atomic_init(&t->refs, 1);
	atomic_init(&t->state, RELAY__T_NEW);
	t->epfd = -1;
	t->hostfd = -1;
	t->fdready_tail = &t->fdready;
	t->fdtab_free = UINT32_MAX;
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
	pthread_cond_init(&t->done_cond, &ca);
	pthread_condattr_destroy(&ca);
	return 0;
}

static void record_release(struct relay__tdata *t)
{
	relay__poll_close(t);
	relay__queue_destroy(&t->q);
	pthread_cond_destroy(&t->done_cond);
	pthread_mutex_destroy(&t->done_lock);
	relay__free(t);
}

/* An adopted thread's handle is part of its record; it lives in that
 * thread (its anchor holds the record, until the handle is destroyed as
 * the thread exits). */
static int handle_init_adopted(struct relay__tdata *t)
{
	relay_thread *h = relay__calloc(sizeof *h);
	if (!h)
		return -ENOMEM;
	struct relay__anchor *a = relay__anchor_new(&h->base, t);
	if (!a) {
		relay__free(h);
		return -ENOMEM;
	}
	h->base.relay__class = &adopted_class;
	atomic_init(&h->base.relay__anchor, a);
	atomic_init(&h->base.relay__flags, RELAY__OBJ_IS_THREAD);
	h->relay__data = t;
	atomic_init(&t->handle, h);
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
		if (handle_init_adopted(t) < 0) {
			record_release(t);
			return NULL;
		}
		atomic_store(&t->state, RELAY__T_RUNNING);
		relay__queue_own(&t->q);   /* its own, for life */
	}
	return t;
}

static void record_free(struct relay__tdata *t)
{
	/* Nobody else refers to it: whatever is still queued goes now. */
	if (!atomic_exchange(&t->drained, true)) {
		struct relay__tdata *prev = relay__tls.serving;
		relay__tls.serving = t;
		relay__drain(t);
		relay__tls.serving = prev;
	}
	relay_thread *h = atomic_load(&t->handle);
	if (t->adopted && h)
		relay__free(h);
	record_release(t);
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

/* The main record, made by the first relay call of the process; if that
 * fails (no memory) the next call tries again, so the main thread stays
 * the main thread. Nothing is allocated under the lock. */
static struct relay__tdata *main_init(void)
{
	pthread_mutex_lock(&init_lock);
	if (!key_ready)
		key_ready = pthread_key_create(&exit_key, adopted_exit) == 0;
	bool ready = key_ready;
	pthread_mutex_unlock(&init_lock);
	if (!ready)
		return NULL;
	struct relay__tdata *m = record_new("main", true);
	if (!m)
		return NULL;
	m->is_main = true;
	m->os_tid = getpid();
	struct relay__tdata *expected = NULL;
	if (!atomic_compare_exchange_strong(&main_record, &expected, m)) {
		relay__tdata_unref(m);   /* another thread made it first */
		return expected;
	}
	relay__grace_register(m);
	return m;
}

struct relay__tdata *relay__tdata_main(void)
{
	struct relay__tdata *m = atomic_load_explicit(&main_record, memory_order_acquire);
	return m ? m : main_init();
}

struct relay__tdata *relay__tdata_adopt(void)
{
	if (relay__tls.self)
		return relay__tls.self;
	struct relay__tdata *m = relay__tdata_main();
	if (!m)
		return NULL;
	if (gettid() == getpid()) {
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
	if (pthread_setspecific(exit_key, t) != 0) {
		relay__tdata_unref(t);   /* no exit hook: do not adopt */
		return NULL;
	}
	relay__grace_register(t);
	relay__tls.self = t;
	return t;
}

/* ---- the end of a run ---- */

static void announce_done(struct relay__tdata *t)
{
	pthread_mutex_lock(&t->done_lock);
	pthread_cond_broadcast(&t->done_cond);
	pthread_mutex_unlock(&t->done_lock);
}

/* FINISHING: its loop has returned; a quit from now on is for nobody. */
static void begin_finish(struct relay__tdata *t)
{
	pthread_mutex_lock(&t->q.lock);
	atomic_store(&t->state, RELAY__T_FINISHING);
	atomic_store(&t->exit_req, 0);
	t->quit_next = false;
	pthread_mutex_unlock(&t->q.lock);
}

/* Deferred deletions, `finished`, deletions its slots asked for, then the
 * last scan (blocking posters released: they decide against FINISHING,
 * stored seq_cst above, with a seq_cst re-check after their commit).
 * Returns true when start() asked for another run meanwhile. With
 * `let_go`, the loop is let go before waiters are told, and served once
 * more for requests left while this thread held it. */
static bool thread_finish(struct relay__tdata *t, int code, bool let_go)
{
	begin_finish(t);
	relay__run_deletes(t, true);
	relay_thread *h = atomic_load(&t->handle);
	if (h) {
		t->scope++;
		relay_emit(h, finished);
		t->scope--;
		relay__run_deletes(t, true);
	}
	relay__release_blocking(t);
	atomic_store(&t->last_exit_code, code);
	atomic_store(&t->pumps, false);
	pthread_mutex_lock(&t->q.lock);
	bool again = t->restart_pending;
	t->restart_pending = false;
	/* The run's interruption request ends with it; one asked for after a
	 * start() that is pending is for the next run (start() cleared the
	 * old one). */
	if (!again)
		atomic_store(&t->interrupt, false);
	atomic_store(&t->state, again ? RELAY__T_STARTING : RELAY__T_FINISHED);
	pthread_mutex_unlock(&t->q.lock);
	if (!again && let_go)
		relay__queue_disown(&t->q);
	announce_done(t);
	if (!again && let_go)
		relay__loop_serve(t);
	return again;
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
	relay__embed_release(t);   /* a host loop drove it: that ends here */
	thread_finish(t, 0, false);
	/* Its handle goes with it: connections to and from it are cut. */
	relay_thread *h = atomic_load(&t->handle);
	relay__object_destroy_unchecked(&h->base);
	thread_exit_cleanup(t);
	set_state(t, RELAY__T_GONE);
	announce_done(t);
	if (!atomic_exchange(&t->drained, true)) {
		relay__tls.serving = t;
		relay__drain(t);
		relay__tls.serving = NULL;
	}
	relay__queue_disown(&t->q);
	relay__loop_serve(t);   /* what was left for it meanwhile */
	relay__grace_unregister(t);
	relay__tls.self = NULL;
	relay__tdata_unref(t);
}

static void *thread_main(void *arg)
{
	struct relay__tdata *t = arg;
	relay__tls.self = t;
	t->os_tid = gettid();
	pthread_setname_np(pthread_self(), t->name);
	relay__grace_register(t);
	/* A thread serving the stopped loop (running deletions of its objects)
	 * finishes first: the loop has one owner at a time. */
	while (!relay__queue_own(&t->q))
		sched_yield();
	do {
		pthread_mutex_lock(&t->q.lock);
		atomic_store(&t->state, RELAY__T_RUNNING);
		pthread_mutex_unlock(&t->q.lock);
		t->scope++;
		relay_emit(atomic_load(&t->handle), started);
		t->scope--;
	} while (thread_finish(t, relay__loop_run(t), true));
	thread_exit_cleanup(t);
	relay__grace_unregister(t);
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
		/* Its rings to this thread are closed now: let them go, so that
		 * a program ending here does not keep them. */
		struct relay__tdata *self = relay__tls.self;
		if (self)
			relay__queue_reap(self);
	}
	pthread_mutex_lock(&all_lock);
	for (struct relay__tdata **pp = &all_threads; *pp; pp = &(*pp)->next_all) {
		if (*pp == t) {
			*pp = t->next_all;
			break;
		}
	}
	pthread_mutex_unlock(&all_lock);
	set_state(t, RELAY__T_GONE);
	atomic_store(&t->handle, NULL);
	announce_done(t);
	relay__loop_serve(t);   /* the drain, here or by the thread serving it */
	relay__tdata_unref(t);
}

const relay_class relay__thread_class = { .name = "relay_thread", .finalize = thread_finalize };

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
	 * finished -> deleteLater on the handle works) - unless a restart was
	 * asked for. */
	pthread_mutex_lock(&t->q.lock);
	int st = atomic_load(&t->state);
	bool again = t->restart_pending;
	pthread_mutex_unlock(&t->q.lock);
	if (st == RELAY__T_STARTING || st == RELAY__T_RUNNING || again)
		return relay__diag(RELAY_ERUNNING,
				   "relay_thread_destroy: thread '%s' is still running (handle %s); "
				   "call relay_thread_stop() (quit + wait) first",
				   t->name, relay__describe(obj, who, sizeof who));
	return 0;
}

int (relay_thread_create)(const char *name, relay_object *parent, relay_thread **out)
{
	if (!out)
		return -EINVAL;
	*out = NULL;
	struct relay__tdata *t = record_new(name, false);
	if (!t)
		return -ENOMEM;
	relay_thread *h;
	int rc = relay_object_new(&h, &relay__thread_class, parent);
	if (rc < 0) {
		relay__tdata_unref(t);
		return rc;
	}
	atomic_fetch_or(&h->base.relay__flags, RELAY__OBJ_IS_THREAD);
	h->relay__data = t;
	atomic_store(&t->handle, h);
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

/* Under the queue lock: what start() does with the state it finds. */
enum start_plan { START_NOW, START_AFTER_FINISH, START_REFUSED };

static enum start_plan plan_start(struct relay__tdata *t, int *was)
{
	pthread_mutex_lock(&t->q.lock);
	int st = *was = atomic_load(&t->state);
	enum start_plan plan = START_REFUSED;
	if (st == RELAY__T_FINISHING) {
		t->restart_pending = true;   /* it starts again when its finish is done */
		plan = START_AFTER_FINISH;
	} else if (st == RELAY__T_NEW || st == RELAY__T_FINISHED) {
		atomic_store(&t->state, RELAY__T_STARTING);
		plan = START_NOW;
	}
	pthread_mutex_unlock(&t->q.lock);
	return plan;
}

/* The thread could not be started: a blocking call accepted while it was
 * STARTING would wait for a loop that never runs. Release it (the loop is
 * stopped: one owner at a time, the wait is for a short deletion run). */
static void release_start_waiters(struct relay__tdata *t)
{
	while (!relay__queue_own(&t->q))
		sched_yield();
	relay__release_blocking(t);
	relay__queue_disown(&t->q);
	relay__loop_serve(t);
}

int relay_thread_start(relay_thread *h)
{
	struct relay__tdata *t = data_of(h);
	if (!t)
		return -EINVAL;
	int rc = relay__obj_check(&h->base, "relay_thread_start");
	if (rc < 0)
		return rc;
	if (t->adopted)
		return relay__diag(-EINVAL, "relay_thread_start: thread '%s' was adopted and "
				   "runs already; start threads made with relay_thread_create", t->name);
	rc = check_handle_owner(h, "relay_thread_start");
	if (rc < 0)
		return rc;
	int was;
	switch (plan_start(t, &was)) {
	case START_AFTER_FINISH:
		atomic_store(&t->interrupt, false);
		return 0;
	case START_REFUSED:
		return relay__diag(RELAY_ERUNNING, "relay_thread_start: thread '%s' is already "
				   "running; stop it (relay_thread_stop) before starting it again",
				   t->name);
	default:
		break;
	}
	if (t->joinable) {   /* a restart: reap the previous run */
		pthread_join(t->pthread, NULL);
		t->joinable = false;
	}
	atomic_store(&t->interrupt, false);
	relay__tdata_ref(t);
	rc = pthread_create(&t->pthread, NULL, thread_main, t);
	if (rc != 0) {
		set_state(t, was);
		release_start_waiters(t);
		relay__tdata_unref(t);
		return rc == EAGAIN ? -EAGAIN : -rc;
	}
	t->joinable = true;
	return 0;
}

/* Asks every loop of t to return with `code`, unless its loop has already
 * returned (a quit that comes before the loop runs is kept for it). */
static void request_exit(struct relay__tdata *t, int code)
{
	relay__tdata_ref(t);   /* an adopted thread may exit as soon as it is set */
	pthread_mutex_lock(&t->q.lock);
	int st = atomic_load(&t->state);
	/* A finishing thread that start() asked to run again: the quit is for
	 * that run (it was asked for after the start). */
	bool take = st == RELAY__T_NEW || st == RELAY__T_STARTING || st == RELAY__T_RUNNING ||
		    (st == RELAY__T_FINISHING && t->restart_pending);
	if (take)   /* seq_cst: the waker's half of the wake-up handshake */
		atomic_store(&t->exit_req, RELAY__EXIT_PENDING | (uint32_t)code);
	pthread_mutex_unlock(&t->q.lock);
	if (take)
		relay__loop_wake(t);
	relay__tdata_unref(t);
}

int relay_thread_exit(relay_thread *h, int code)
{
	struct relay__tdata *t = data_of(h);
	if (!t || code < 0)
		return -EINVAL;
	request_exit(t, code);
	return 0;
}

int relay_thread_quit(relay_thread *h)
{
	return relay_thread_exit(h, 0);
}

/* Done: never started, or stopped - a thread started again while it was
 * finishing is waited for until that run ends too. */
static bool run_done(struct relay__tdata *t)
{
	int st = atomic_load(&t->state);
	return st == RELAY__T_NEW || relay__tstate_stopped(st);
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
	while (!run_done(t) && rc == 0) {
		if (timeout_ms < 0)
			pthread_cond_wait(&t->done_cond, &t->done_lock);
		else if (pthread_cond_timedwait(&t->done_cond, &t->done_lock, &deadline) == ETIMEDOUT)
			rc = run_done(t) ? 0 : -ETIMEDOUT;
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
	/* An adopted thread frees its record as it exits: hold it meanwhile. */
	relay__tdata_ref(t);
	int rc = wait_record(t, timeout_ms);
	relay__tdata_unref(t);
	return rc;
}

int relay_thread_stop(relay_thread *h, int timeout_ms)
{
	int rc = relay_thread_quit(h);
	if (rc < 0)
		return rc;
	return relay_thread_wait(h, timeout_ms);
}

int relay_thread_exit_code(const relay_thread *h, int *code)
{
	struct relay__tdata *t = data_of(h);
	if (!t || !code)
		return -EINVAL;
	*code = atomic_load(&t->last_exit_code);
	return 0;
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
	int st = relay__tstate(t);
	return st == RELAY__T_STARTING || st == RELAY__T_RUNNING;
}

bool relay_thread_is_finished(const relay_thread *h)
{
	struct relay__tdata *t = data_of(h);
	if (!t)
		return false;
	int st = relay__tstate(t);
	return st == RELAY__T_FINISHING || relay__tstate_stopped(st);
}

relay_thread *relay_thread_current(void)
{
	struct relay__tdata *t = relay__tdata_current();
	return t ? atomic_load(&t->handle) : NULL;
}

relay_thread *relay_thread_main(void)
{
	struct relay__tdata *t = relay__tdata_main();
	return t ? atomic_load(&t->handle) : NULL;
}

bool relay_is_main_thread(void)
{
	struct relay__tdata *t = relay__tdata_current();
	return t && t == relay__tdata_main();
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
	out->moved = atomic_load_explicit(&t->moved, memory_order_relaxed);
	out->refused = atomic_load_explicit(&t->refused, memory_order_relaxed);
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
	return tstate_loops(relay__tstate(t));
}

/* relay_main_run waits for its threads serving the main loop meanwhile: a
 * stopping thread may be in a blocking call to the main thread (or wait
 * for a deletion there) and would otherwise be named a straggler. */
static int wait_serving(struct relay__tdata *t, int timeout_ms)
{
	struct relay__tdata *self = relay__tls.self;
	uint64_t deadline = relay__now_ns() + (uint64_t)timeout_ms * 1000000u;
	for (;;) {
		if (self)
			relay__loop_pass(self, 0);
		if (wait_record(t, 2) == 0)
			return 0;
		if (relay__now_ns() >= deadline)
			return -ETIMEDOUT;
	}
}

static void name_straggler(struct relay__tdata *t, int timeout_ms)
{
	relay__diag(-ETIMEDOUT, "relay_main_shutdown: thread '%s' did not stop within %d ms; "
		    "its loop may be blocked in a slot", t->name, timeout_ms);
}

/* Out of memory: one live thread at a time (each quit, then waited for),
 * each once in this round - also those whose quit was already pending. */
static void stop_all_threads_slowly(int timeout_ms)
{
	static atomic_uint rounds;
	unsigned round = atomic_fetch_add(&rounds, 1) + 1;
	for (;;) {
		struct relay__tdata *found = NULL;
		pthread_mutex_lock(&all_lock);
		for (struct relay__tdata *t = all_threads; t && !found; t = t->next_all)
			if (is_live(t) && t->stop_round != round)
				found = t;
		if (found) {
			found->stop_round = round;
			relay__tdata_ref(found);
		}
		pthread_mutex_unlock(&all_lock);
		if (!found)
			return;
		request_exit(found, 0);
		if (wait_serving(found, timeout_ms) < 0)
			name_straggler(found, timeout_ms);
		relay__tdata_unref(found);
	}
}

/* The records of the live threads, referenced; *n of them. The array is
 * allocated before the list lock is taken (no allocator under a lock). */
static struct relay__tdata **live_threads(size_t *n)
{
	*n = 0;
	for (;;) {
		size_t cap = 0;
		pthread_mutex_lock(&all_lock);
		for (struct relay__tdata *t = all_threads; t; t = t->next_all)
			cap++;
		pthread_mutex_unlock(&all_lock);
		if (cap == 0)
			return NULL;
		struct relay__tdata **live = relay__alloc(cap * sizeof *live);
		if (!live)
			return NULL;
		size_t count = 0;
		bool fits = true;
		pthread_mutex_lock(&all_lock);
		for (struct relay__tdata *t = all_threads; t && fits; t = t->next_all) {
			if (!is_live(t))
				continue;
			if (count == cap) {
				fits = false;
				break;
			}
			relay__tdata_ref(t);
			live[count++] = t;
		}
		pthread_mutex_unlock(&all_lock);
		if (fits) {
			*n = count;
			return live;
		}
		while (count)
			relay__tdata_unref(live[--count]);
		relay__free(live);   /* the list grew meanwhile: again */
	}
}

/* Quits every started thread, then waits for each (T5), naming those that
 * do not stop instead of hanging on them. */
static void stop_all_threads(int timeout_ms)
{
	size_t n;
	struct relay__tdata **live = live_threads(&n);
	if (!live) {
		stop_all_threads_slowly(timeout_ms);
		return;
	}
	for (size_t i = 0; i < n; i++)
		request_exit(live[i], 0);
	for (size_t i = 0; i < n; i++) {
		if (wait_serving(live[i], timeout_ms) < 0)
			name_straggler(live[i], timeout_ms);
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
	relay_main_shutdown(timeout_ms);
	return code;
}

int relay_main_shutdown(int timeout_ms)
{
	struct relay__tdata *self = relay__tdata_current();
	if (!self)
		return -ENOMEM;
	if (!self->is_main)
		return relay__diag(RELAY_EWRONGTHREAD, "relay_main_shutdown: called from thread "
				   "'%s'; call it from the main thread", self->name);
	/* Pools first: their tasks may call into the threads stopped next. */
	relay__pools_shutdown(timeout_ms < 0 ? 5000 : timeout_ms);
	stop_all_threads(timeout_ms < 0 ? 5000 : timeout_ms);
	relay__loop_pass(self, 0);     /* what the stopping threads sent back */
	relay__run_deletes(self, true);
	return 0;
}
