/*
 * grace.h - sections and grace periods (as RCU's), and the record of the
 * slot calls a thread is running.
 *
 * Two changes must not be missed by a thread that read the old value just
 * before: move_to_thread changes where an object lives (a post that read
 * the old thread must have committed its record before the mover collects
 * them), and relay_disconnect kills a connection (a thread that found it
 * alive must have started its call before disconnect returns, D6). Each
 * such read happens inside a *section*, a short window that never blocks
 * and runs no user code: the thread's sequence number is odd inside it.
 * The changer stores the new value, then waits a *grace period*: for every
 * registered thread caught inside a section, until it leaves it.
 *
 * The section's first store must be visible before the section's loads
 * (StoreLoad). Instead of a fence on every post and every slot call, the
 * changer issues membarrier(PRIVATE_EXPEDITED), which runs a full barrier
 * on every CPU running one of our threads (the asymmetric fence of liburcu
 * and folly); where membarrier is missing - and in ThreadSanitizer builds,
 * which cannot see membarrier - the section begins with a seq_cst
 * read-modify-write of its own counter, and the loads inside it and the
 * changer's store and loads are seq_cst: the Dekker pair TSan checks.
 *
 * Call frames: relay_disconnect_wait must wait for calls of one connection
 * that other threads have already started. Each registered thread keeps
 * the connections whose slots it is running (innermost last) in a small
 * array other threads may read; deeper nesting falls back to a counter on
 * the connection.
 *
 * Who may run what at the same time: enter/leave and push/pop only by the
 * thread itself; relay__grace_period and relay__grace_wait_calls by any
 * thread, concurrently with everything (they read only atomics, under the
 * registry lock, which sections never take); register/unregister by the
 * thread itself (at adoption or start, and at its end).
 */
#ifndef RELAY_GRACE_H
#define RELAY_GRACE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#if defined(__SANITIZE_THREAD__)
#define RELAY__TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define RELAY__TSAN 1
#endif
#endif

struct relay__conn;
struct relay__tdata;

#define RELAY__CALL_FRAMES 16

struct relay__grace {
	atomic_uint_fast64_t seq;                 /* odd inside a section */
	_Atomic(struct relay__conn *) calls[RELAY__CALL_FRAMES];
	atomic_int ncalls;                        /* slot calls running, nesting */
	struct relay__tdata *next;                /* registry; its lock */
	bool registered;                          /* its lock */
};

/* Set once at the first registration: the changers use membarrier. */
extern atomic_bool relay__grace_asymmetric;

void relay__grace_register(struct relay__tdata *t);
void relay__grace_unregister(struct relay__tdata *t);

static inline void relay__section_enter(struct relay__grace *g)
{
#ifndef RELAY__TSAN
	if (atomic_load_explicit(&relay__grace_asymmetric, memory_order_relaxed)) {
		uint_fast64_t s = atomic_load_explicit(&g->seq, memory_order_relaxed);
		atomic_store_explicit(&g->seq, s + 1, memory_order_relaxed);
		/* The compiler must not hoist the section's loads above the
		 * store; the CPU is made to order them by the changer's
		 * membarrier. */
		atomic_signal_fence(memory_order_seq_cst);
		return;
	}
#endif
	atomic_fetch_add_explicit(&g->seq, 1, memory_order_seq_cst);
}

static inline void relay__section_leave(struct relay__grace *g)
{
	uint_fast64_t s = atomic_load_explicit(&g->seq, memory_order_relaxed);
	/* release: a changer that sees it even sees what the section did (the
	 * committed record, the call frame). */
	atomic_store_explicit(&g->seq, s + 1, memory_order_release);
}

/* Returns once every section of another thread that may have read a value
 * before the caller's (seq_cst) store of the new one has ended. */
void relay__grace_period(struct relay__tdata *self);

/* Inside a section, just before a slot call: records the call. Returns the
 * depth to pass to relay__call_pop. */
int relay__call_push_deep(struct relay__grace *g, struct relay__conn *c, int d);
static inline int relay__call_push(struct relay__grace *g, struct relay__conn *c)
{
	int d = atomic_load_explicit(&g->ncalls, memory_order_relaxed);
	if (d >= RELAY__CALL_FRAMES)
		return relay__call_push_deep(g, c, d);
	atomic_store_explicit(&g->calls[d], c, memory_order_relaxed);
	atomic_store_explicit(&g->ncalls, d + 1, memory_order_relaxed);
	return d;
}
void relay__call_pop_deep(struct relay__grace *g, struct relay__conn *c, int d);
static inline void relay__call_pop(struct relay__grace *g, struct relay__conn *c, int d)
{
	if (d >= RELAY__CALL_FRAMES) {
		relay__call_pop_deep(g, c, d);
		return;
	}
	/* release: a waiter that sees the call gone sees what the slot did. */
	atomic_store_explicit(&g->ncalls, d, memory_order_release);
}

/* Whether the calling thread is inside a call of c. */
bool relay__call_running_here(struct relay__grace *g, const struct relay__conn *c);
/* After c died and a grace period: waits until no other thread runs a
 * call of c, at most until deadline_ns (0: no limit). 0 or -ETIMEDOUT. */
int relay__grace_wait_calls(struct relay__tdata *self, struct relay__conn *c,
			    uint64_t deadline_ns);

#endif
