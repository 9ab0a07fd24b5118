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

int relay__call_push_deep(struct relay__grace *g, struct relay__conn *c, int d)
{
	atomic_fetch_add_explicit(&c->deep_calls, 1, memory_order_relaxed);
	atomic_store_explicit(&g->ncalls, d + 1, memory_order_relaxed);
	return d;
}

void relay__call_pop_deep(struct relay__grace *g, struct relay__conn *c, int d)
{
	atomic_fetch_sub_explicit(&c->deep_calls, 1, memory_order_release);
	atomic_store_explicit(&g->ncalls, d, memory_order_release);
}

bool relay__call_running_here(struct relay__grace *g, const struct relay__conn *c)
{
	int n = atomic_load_explicit(&g->ncalls, memory_order_relaxed);
	for (int i = 0; i < n && i < RELAY__CALL_FRAMES; i++)
		if (atomic_load_explicit(&g->calls[i], memory_order_relaxed) == c)
			return true;
	return n > RELAY__CALL_FRAMES && atomic_load(&((struct relay__conn *)c)->deep_calls) > 0;
}

/* Whether thread t may be running a call of c (a dead connection, so no
 * new call of it starts: a frame seen gone stays gone). */
static bool runs_call(struct relay__tdata *t, const struct relay__conn *c)
{
	int n = atomic_load_explicit(&t->grace.ncalls, memory_order_acquire);
	for (int i = 0; i < n && i < RELAY__CALL_FRAMES; i++)
		if (atomic_load_explicit(&t->grace.calls[i], memory_order_relaxed) == c)
			return true;
	return false;
}

/* A registered thread other than self that may be running a call of c,
 * referenced; NULL when none is. */
static struct relay__tdata *find_caller(struct relay__tdata *self, const struct relay__conn *c)
{
	struct relay__tdata *found = NULL;
	pthread_mutex_lock(&registry_lock);
	for (struct relay__tdata *t = registry; t && !found; t = t->grace.next) {
		if (t != self && runs_call(t, c)) {
			relay__tdata_ref(t);
			found = t;
		}
	}
	pthread_mutex_unlock(&registry_lock);
	return found;
}

static int wait_until(bool (*busy)(struct relay__tdata *, const struct relay__conn *),
		      struct relay__tdata *t, const struct relay__conn *c, uint64_t deadline_ns)
{
	while (busy(t, c)) {
		if (deadline_ns && relay__now_ns() >= deadline_ns)
			return -ETIMEDOUT;
		sched_yield();
	}
	return 0;
}

static bool deep_busy(struct relay__tdata *t, const struct relay__conn *c)
{
	(void)t;
	return atomic_load_explicit(&((struct relay__conn *)c)->deep_calls,
				    memory_order_acquire) > 0;
}

int relay__grace_wait_calls(struct relay__tdata *self, struct relay__conn *c,
			    uint64_t deadline_ns)
{
	/* The slot we wait for is user code: no lock is held while waiting.
	 * No new call of c starts (it is dead and a grace period has passed),
	 * so looking again from the start ends. */
	struct relay__tdata *t;
	while ((t = find_caller(self, c)) != NULL) {
		int rc = wait_until(runs_call, t, c, deadline_ns);
		relay__tdata_unref(t);
		if (rc < 0)
			return rc;
	}
	return wait_until(deep_busy, NULL, c, deadline_ns);
}
