/*
 * grace.h - sections and grace periods (as RCU's), and the frames of the
 * slot calls a thread is running.
 *
 * Sections (posts and move_to_thread). move_to_thread changes where an
 * object lives; a post that read the old thread just before must have
 * committed its record before the mover collects them. Each post reads
 * the target's home inside a *section*, a short window that never blocks
 * and runs no user code: the thread's sequence number is odd inside it.
 * The mover stores the new value, then waits a *grace period*: for every
 * registered thread caught inside a section, until it leaves it.
 *
 * Call frames (D6). A slot call records its connection in the calling
 * thread's frames, marked "checking", before it checks `alive`, and
 * clears the mark once committed (below). relay_disconnect kills the
 * connection and waits while a frame of another thread shows it checking;
 * relay_disconnect_wait waits while any frame shows it at all.
 *
 * Both need a StoreLoad between the thread's first store (the sequence
 * number, the frame) and its loads. Instead of a fence on every post and
 * every slot call, the changer issues membarrier(PRIVATE_EXPEDITED),
 * which runs a full barrier on every CPU running one of our threads (the
 * asymmetric fence of liburcu and folly); where membarrier is missing -
 * and in ThreadSanitizer builds, which cannot see membarrier - the thread
 * publishes with a seq_cst read-modify-write and its loads, the changer's
 * store and its loads are seq_cst: the Dekker pair TSan checks.
 *
 * Who may run what at the same time: enter/leave and begin/end only by
 * the thread itself; relay__grace_period and relay__grace_wait_calls by
 * any thread, concurrently with everything (they read only atomics; the
 * registry lock they take is never taken inside a section or a checking
 * window); register/unregister by the thread itself (at adoption or
 * start, and at its end).
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

#if defined(__GNUC__) || defined(__clang__)
#define RELAY__LIKELY_G(x) __builtin_expect(!!(x), 1)
#define RELAY__UNLIKELY_G(x) __builtin_expect(!!(x), 0)
#else
#define RELAY__LIKELY_G(x) (x)
#define RELAY__UNLIKELY_G(x) (x)
#endif

#define RELAY__CALL_FRAMES 16

struct relay__grace {
	atomic_uint_fast64_t seq;                 /* odd inside a section */
	_Atomic uintptr_t calls[RELAY__CALL_FRAMES];   /* struct relay__conn *, | checking */
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

/* ---- slot calls (D6) ----
 * An emission (or a pass delivering queued calls) opens one frame in the
 * calling thread's frames; each slot call writes its connection there,
 * marked "checking" (the low bit), *before* it checks `alive`, then the
 * connection unmarked once the check passed (the call is committed),
 * then 0 after the slot returned. A disconnect clears `alive`, then (after
 * the changer's barrier) waits while another thread's frame shows a
 * connection checking: when it returns, every such thread has either seen
 * it dead or committed - no call starts afterwards. relay_disconnect_wait
 * also waits while a frame shows the connection at all (running). The
 * frame's store comes before the check's load (StoreLoad) by the
 * changer's membarrier, or, without one, by a seq_cst exchange. Nested
 * deeper than the frames, the connection counts its calls instead. */
#define RELAY__CALL_CHECKING ((uintptr_t)1)

struct relay__frame {
	_Atomic uintptr_t *slot;     /* NULL: nested too deep, counted on the connection */
	struct relay__grace *g;
	int depth;
	bool asymmetric;             /* relay__grace_asymmetric, read once */
};

/* Whether changers use membarrier (false in TSan builds, which check the
 * seq_cst variant). */
static inline bool relay__grace_asym(void)
{
#ifdef RELAY__TSAN
	return false;
#else
	return atomic_load_explicit(&relay__grace_asymmetric, memory_order_relaxed);
#endif
}

static inline void relay__frame_open(struct relay__grace *g, struct relay__frame *f)
{
	int d = atomic_load_explicit(&g->ncalls, memory_order_relaxed);
	f->g = g;
	f->depth = d;
	f->slot = d < RELAY__CALL_FRAMES ? &g->calls[d] : NULL;
	f->asymmetric = relay__grace_asym();
	/* The slot already holds 0: every call leaves it so, and so does a
	 * check that found the connection dead. */
	/* release: a scanner that reads the depth reads the frame */
	atomic_store_explicit(&g->ncalls, d + 1, memory_order_release);
}

static inline void relay__frame_close(struct relay__frame *f)
{
	atomic_store_explicit(&f->g->ncalls, f->depth, memory_order_release);
}

bool relay__frame_enter_deep(struct relay__conn *c, const atomic_bool *alive,
			     atomic_int *deep_calls);
void relay__frame_leave_deep(atomic_int *deep_calls);

/* Before a slot call: records c as checking and checks it; true when it
 * is alive (the frame still shows it checking: the caller commits with
 * relay__frame_commit_at right before the call). The frame's fields come
 * as values, so a loop keeps them in registers. */
static inline bool relay__frame_check_at(_Atomic uintptr_t *slot, bool asymmetric,
					 struct relay__conn *c, const atomic_bool *alive,
					 atomic_int *deep_calls)
{
	if (RELAY__UNLIKELY_G(!slot))
		return relay__frame_enter_deep(c, alive, deep_calls);
	uintptr_t checking = (uintptr_t)c | RELAY__CALL_CHECKING;
	if (RELAY__LIKELY_G(asymmetric)) {
		atomic_store_explicit(slot, checking, memory_order_relaxed);
		atomic_signal_fence(memory_order_seq_cst);   /* the CPU: membarrier */
	} else {
		atomic_exchange_explicit(slot, checking, memory_order_seq_cst);
	}
	if (RELAY__UNLIKELY_G(!atomic_load_explicit(alive, memory_order_seq_cst))) {
		atomic_store_explicit(slot, 0, memory_order_release);
		return false;
	}
	return true;
}

/* The call is committed: the last store before the call instruction, so
 * that a disconnect, which waits while a frame shows its connection
 * checking, returns as late as it can before the slot's first
 * instruction (a thread can still be preempted between the two: only
 * relay_disconnect_wait closes that gap). */
static inline void relay__frame_commit_at(_Atomic uintptr_t *slot, struct relay__conn *c)
{
	atomic_signal_fence(memory_order_seq_cst);   /* after the call's operands */
	if (RELAY__LIKELY_G(slot != NULL))
		atomic_store_explicit(slot, (uintptr_t)c, memory_order_relaxed);
}

static inline bool relay__frame_enter_at(_Atomic uintptr_t *slot, bool asymmetric,
					 struct relay__conn *c, const atomic_bool *alive,
					 atomic_int *deep_calls)
{
	if (!relay__frame_check_at(slot, asymmetric, c, alive, deep_calls))
		return false;
	relay__frame_commit_at(slot, c);
	return true;
}

static inline bool relay__frame_enter(struct relay__frame *f, struct relay__conn *c,
				      const atomic_bool *alive, atomic_int *deep_calls)
{
	return relay__frame_enter_at(f->slot, f->asymmetric, c, alive, deep_calls);
}

/* After the slot returned. */
static inline void relay__frame_leave_at(_Atomic uintptr_t *slot, atomic_int *deep_calls)
{
	if (RELAY__UNLIKELY_G(!slot)) {
		relay__frame_leave_deep(deep_calls);
		return;
	}
	/* release: a waiter that sees the call gone sees what the slot did. */
	atomic_store_explicit(slot, 0, memory_order_release);
}

static inline void relay__frame_leave(struct relay__frame *f, atomic_int *deep_calls)
{
	relay__frame_leave_at(f->slot, deep_calls);
}

/* After connections died: returns once no other thread is between
 * recording a call and committing it (so none of them starts a call of a
 * dead connection afterwards). */
void relay__grace_calls_settle(struct relay__tdata *self);
/* Whether the calling thread is inside a call of c. */
bool relay__call_running_here(struct relay__grace *g, const struct relay__conn *c);
/* After c died: waits until no other thread is checking c (all: or
 * running a call of it), at most until deadline_ns (0: no limit).
 * 0 or -ETIMEDOUT. Takes no lock while it waits for a running slot. */
int relay__grace_wait_calls(struct relay__tdata *self, struct relay__conn *c, bool all,
			    uint64_t deadline_ns);

#endif
