/*
 * grace.c - the registry of threads that may be inside a section, grace
 * periods over it, and waiting for the calls of a dead connection
 * (grace.h says why and how).
 *
 * A thread registers before its first section (at adoption or when a
 * relay_thread starts, so even its very first post is seen) and
 * unregisters at its end, after its last. The registry lock is a leaf
 * lock: sections never take it, so a grace period may spin under it.
 */
#include "internal.h"

#include <errno.h>
#include <linux/membarrier.h>
#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static struct relay__tdata *registry;           /* guarded by registry_lock */
static bool membarrier_tried;                   /* registry_lock */
atomic_bool relay__grace_asymmetric;

/* Under registry_lock, before the first thread is registered: every
 * thread that reads relay__grace_asymmetric as true was registered after
 * this, and every changer calls membarrier after reading it. */
static void membarrier_init_locked(void)
{
	if (membarrier_tried)
		return;
	membarrier_tried = true;
#ifndef RELAY__TSAN
	bool ok = syscall(__NR_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) == 0;
	atomic_store_explicit(&relay__grace_asymmetric, ok, memory_order_relaxed);
#endif
}

void relay__grace_register(struct relay__tdata *t)
{
	pthread_mutex_lock(&registry_lock);
	membarrier_init_locked();
	if (!t->grace.registered) {
		t->grace.next = registry;
		registry = t;
		t->grace.registered = true;
	}
	pthread_mutex_unlock(&registry_lock);
}

void relay__grace_unregister(struct relay__tdata *t)
{
	pthread_mutex_lock(&registry_lock);
	for (struct relay__tdata **pp = &registry; *pp; pp = &(*pp)->grace.next) {
		if (*pp == t) {
			*pp = t->grace.next;
			break;
		}
	}
	t->grace.registered = false;
	pthread_mutex_unlock(&registry_lock);
}

static void changer_barrier(void)
{
	if (atomic_load_explicit(&relay__grace_asymmetric, memory_order_relaxed))
		syscall(__NR_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0);
	/* Otherwise the changer's seq_cst store and the seq_cst loads below
	 * pair with the sections' seq_cst read-modify-write. */
}

void relay__grace_period(struct relay__tdata *self)
{
	changer_barrier();
	pthread_mutex_lock(&registry_lock);
	for (struct relay__tdata *t = registry; t; t = t->grace.next) {
		if (t == self)
			continue;
		uint_fast64_t s = atomic_load_explicit(&t->grace.seq, memory_order_seq_cst);
		/* A section never blocks and runs no user code: this ends. */
		while ((s & 1) && atomic_load_explicit(&t->grace.seq, memory_order_acquire) == s)
			sched_yield();
	}
	pthread_mutex_unlock(&registry_lock);
}

/* Nested deeper than the frames: the connection counts the calls (an
 * atomic read-modify-write, which also orders the check). */
bool relay__frame_enter_deep(struct relay__conn *c, const atomic_bool *alive,
			     atomic_int *deep_calls)
{
	(void)c;
	atomic_fetch_add_explicit(deep_calls, 1, memory_order_seq_cst);
	if (atomic_load_explicit(alive, memory_order_seq_cst))
		return true;
	atomic_fetch_sub_explicit(deep_calls, 1, memory_order_release);
	return false;
}

void relay__frame_leave_deep(atomic_int *deep_calls)
{
	atomic_fetch_sub_explicit(deep_calls, 1, memory_order_release);
}

bool relay__call_running_here(struct relay__grace *g, const struct relay__conn *c)
{
	int n = atomic_load_explicit(&g->ncalls, memory_order_relaxed);
	for (int i = 0; i < n && i < RELAY__CALL_FRAMES; i++)
		if ((atomic_load_explicit(&g->calls[i], memory_order_relaxed) &
		     ~RELAY__CALL_CHECKING) == (uintptr_t)c)
			return true;
	return n > RELAY__CALL_FRAMES && atomic_load(&((struct relay__conn *)c)->deep_calls) > 0;
}

/* Whether thread t is inside a checking window (of any connection). */
static bool checking(struct relay__tdata *t)
{
	int n = atomic_load_explicit(&t->grace.ncalls, memory_order_seq_cst);
	for (int i = 0; i < n && i < RELAY__CALL_FRAMES; i++)
		if (atomic_load_explicit(&t->grace.calls[i], memory_order_acquire) &
		    RELAY__CALL_CHECKING)
			return true;
	return false;
}

void relay__grace_calls_settle(struct relay__tdata *self)
{
	changer_barrier();
	pthread_mutex_lock(&registry_lock);
	for (struct relay__tdata *t = registry; t; t = t->grace.next)
		while (t != self && checking(t))   /* short, and runs no user code */
			sched_yield();
	pthread_mutex_unlock(&registry_lock);
}

/* Whether thread t is checking c (all: or running a call of it). c is
 * dead, so no new call of it starts: a frame seen gone stays gone. */
static bool frames_hold(struct relay__tdata *t, const struct relay__conn *c, bool all)
{
	int n = atomic_load_explicit(&t->grace.ncalls, memory_order_acquire);
	for (int i = 0; i < n && i < RELAY__CALL_FRAMES; i++) {
		uintptr_t f = atomic_load_explicit(&t->grace.calls[i], memory_order_acquire);
		if (f == ((uintptr_t)c | RELAY__CALL_CHECKING) || (all && f == (uintptr_t)c))
			return true;
	}
	return false;
}

/* A registered thread other than self whose frames hold c, referenced;
 * NULL when none does. */
static struct relay__tdata *find_caller(struct relay__tdata *self, const struct relay__conn *c,
					bool all)
{
	struct relay__tdata *found = NULL;
	pthread_mutex_lock(&registry_lock);
	for (struct relay__tdata *t = registry; t && !found; t = t->grace.next) {
		if (t != self && frames_hold(t, c, all)) {
			relay__tdata_ref(t);
			found = t;
		}
	}
	pthread_mutex_unlock(&registry_lock);
	return found;
}

int relay__grace_wait_calls(struct relay__tdata *self, struct relay__conn *c, bool all,
			    uint64_t deadline_ns)
{
	changer_barrier();
	/* A running slot is user code: no lock is held while waiting. No new
	 * call of c starts (it is dead), so looking again from the start
	 * ends. */
	struct relay__tdata *t;
	while ((t = find_caller(self, c, all)) != NULL) {
		int rc = 0;
		while (rc == 0 && frames_hold(t, c, all)) {
			if (deadline_ns && relay__now_ns() >= deadline_ns)
				rc = -ETIMEDOUT;
			else
				sched_yield();
		}
		relay__tdata_unref(t);
		if (rc < 0)
			return rc;
	}
	/* Calls nested deeper than the frames, in any thread. */
	while (all && atomic_load_explicit(&c->deep_calls, memory_order_acquire) > 0) {
		if (deadline_ns && relay__now_ns() >= deadline_ns)
			return -ETIMEDOUT;
		sched_yield();
	}
	return 0;
}
