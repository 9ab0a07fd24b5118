/*
 * relay.h - the Qt worker model for C: objects that belong to a thread,
 * signals and slots that cross threads through per-thread event loops,
 * threads with their own loop, timers, move-to-thread and delete-later.
 *
 * This is the only public header and the user's manual. Read it top to
 * bottom: errors, objects, signals, threads and loops, timers, invoke.
 *
 * Conventions that hold for every function unless its comment says
 * otherwise:
 *   - it returns 0 on success or a negative error code (RELAY_E*, or a
 *     negated errno such as -EINVAL), never aborts and never hangs on NULL
 *     or a handle it can tell is destroyed; relay_strerror() names the code.
 *     Queries that cannot fail return bool or a value and say so.
 *   - "owner thread" means the thread the object lives in (its affinity);
 *     a function that says "owner thread only" refuses other callers with
 *     RELAY_EWRONGTHREAD and a one-line diagnostic (see Diagnostics).
 *   - any thread that calls relay is adopted: it gets a thread record of
 *     its own, and objects it creates live in it.
 *
 * Copyright (c) 2026 the relay authors. MIT licence, see LICENSE.
 */
#ifndef RELAY_H
#define RELAY_H

#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define RELAY_VERSION_MAJOR 0
#define RELAY_VERSION_MINOR 1
#define RELAY_VERSION_PATCH 0

/* ======================================================================
 * Errors
 * ====================================================================== */

/* Error codes. relay returns plain negated errno values for generic
 * failures (-EINVAL bad argument, -ENOMEM out of memory, -ETIMEDOUT,
 * -ENOENT no such connection, -EEXIST unique connection already there,
 * -EBUSY) and these codes for refused thread misuse. */
enum relay_error {
	RELAY_EWRONGTHREAD = -1001, /* called from a thread that does not own the object */
	RELAY_EHASPARENT = -1002,   /* move_to_thread of an object that has a parent */
	RELAY_EMAINONLY = -1003,    /* main-thread-only object used or moved elsewhere */
	RELAY_EPARENTTHREAD = -1004, /* parent and child would live in different threads */
	RELAY_EDEADLOCK = -1005,    /* blocking call into the caller's own loop */
	RELAY_ENOTRUNNING = -1006,  /* blocking call into a thread that runs no loop */
	RELAY_EWAITSELF = -1007,    /* relay_thread_wait on the calling thread */
	RELAY_ERUNNING = -1008,     /* destroying (or starting) a thread that runs */
	RELAY_ENOTDELIVERED = -1009, /* blocking call dropped: receiver gone or disconnected */
	RELAY_EDESTROYED = -1010,   /* the object is being (or has been) destroyed */
	RELAY_ETIMERTHREAD = -1011  /* timer started or stopped from another thread */
};

/* A static, human readable string for a code returned by relay (or any
 * negated errno). Any thread. Never returns NULL. */
const char *relay_strerror(int code);

/* ======================================================================
 * Diagnostics
 *
 * A refused misuse is reported once through the diagnostic handler as a
 * single line in the style of Qt's warnings: what was refused, which
 * object and thread, what to do instead. The default handler writes
 * "relay: <line>" to stderr. With RELAY_FATAL_WARNINGS=1 in the
 * environment every diagnostic aborts after it is reported (for a
 * debugger), like QT_FATAL_WARNINGS.
 * ====================================================================== */

typedef void (*relay_diag_fn)(int code, const char *line, void *user);

/* Replace the handler (NULL restores the default). Any thread; the handler
 * may be called from any thread, concurrently. Returns 0. */
int relay_set_diag_handler(relay_diag_fn fn, void *user);

/* Number of diagnostics reported since the process started. Any thread. */
unsigned long relay_diag_count(void);

/* ======================================================================
 * Allocator
 *
 * All of relay's heap use goes through one allocator. Replace it before
 * the first other relay call (for example to count allocations in a test
 * or to inject failures: every allocating call then fails with -ENOMEM
 * and leaks nothing).
 * ====================================================================== */

typedef struct relay_allocator {
	void *(*alloc)(size_t size, void *user);   /* like malloc */
	void (*release)(void *ptr, void *user);    /* like free, NULL allowed */
	void *user;
} relay_allocator;

/* Install an allocator (NULL restores malloc/free). Call before any other
 * relay function, from one thread. Returns 0 or -EINVAL (incomplete). */
int relay_set_allocator(const relay_allocator *a);

/* ======================================================================
 * Objects
 *
 * Embed relay_object as the FIRST member of your struct, so a pointer to
 * your struct is a pointer to its relay_object:
 *
 *     typedef struct worker {
 *         relay_object base;
 *         RELAY_SIGNAL(complete);          // complete = pyqtSignal()
 *         RELAY_SIGNAL(progress, int);     // progress = pyqtSignal(int)
 *         long count;
 *     } worker;
 *
 * The struct must be zero-filled before relay_object_init (calloc, or
 * relay_object_new which does it), because signals start zeroed.
 *
 * An object lives in the thread that created it (its affinity): its slots
 * run there, its timers fire there and it is destroyed there. Parent and
 * child live in the same thread; destroying a parent destroys its children.
 * ====================================================================== */

typedef struct relay_object relay_object;
typedef struct relay_thread relay_thread;

enum relay_class_flags {
	/* The object must stay in the main thread (relay's stand-in for Qt's
	 * GUI objects): init from another thread and move_to_thread are
	 * refused with RELAY_EMAINONLY. */
	RELAY_CLASS_MAIN_THREAD_ONLY = 1u << 0
};

/* What all objects of one type share. Usually a static const. */
typedef struct relay_class {
	const char *name;                      /* type name, for diagnostics */
	/* Called last when the object is destroyed, in its thread, after the
	 * destroyed signal, its children and its connections are gone. Release
	 * what your struct owns here. For an object from relay_object_new the
	 * memory is freed by relay after this; for one from relay_object_init
	 * free it here if you allocated it. May be NULL. */
	void (*finalize)(relay_object *self);
	unsigned flags;                        /* relay_class_flags */
} relay_class;

/* Signals, declared as struct members. RELAY_SIGNAL(name) carries no
 * payload; RELAY_SIGNAL(name, T) carries one value of type T (a struct
 * carries several). The members are private: use the macros below. */
typedef struct relay__none { char relay__unused; } relay__none;
typedef struct relay_signal {
	void *_Atomic relay__conns;            /* private: connection snapshot */
	const struct relay_payload_ops *relay__ops; /* private */
} relay_signal;
/* The union costs nothing: relay__arg only carries the payload type for
 * the compile-time checks and is never read or written. */
#define RELAY__SIGNAL0(name) \
	union { relay_signal relay__s; relay__none *relay__arg; } name
#define RELAY__SIGNAL1(name, T) \
	union { relay_signal relay__s; T *relay__arg; } name
#define RELAY__PICK3(a, b, c, ...) c
#define RELAY_SIGNAL(...) \
	RELAY__PICK3(__VA_ARGS__, RELAY__SIGNAL1, RELAY__SIGNAL0, x)(__VA_ARGS__)

/* The object header. All fields are private; it is public only so that it
 * can be embedded. */
struct relay_object {
	const relay_class *relay__class;
	/* identity, affinity and liveness, shared with everything that may
	 * outlive the object (events, weak references, connections) */
	struct relay__anchor *_Atomic relay__anchor;
	relay_object *relay__parent;                  /* owner thread only */
	relay_object *relay__first_child;             /* owner thread only */
	relay_object *relay__next_sibling;            /* owner thread only */
	struct relay__objext *relay__ext;             /* guarded by the object's lock */
	_Atomic unsigned relay__flags;
	RELAY_SIGNAL(destroyed);   /* emitted first thing in destroy; connect as base.destroyed */
};

/* Initialise a zero-filled object in the calling thread, optionally as a
 * child of `parent` (which must live in the calling thread:
 * RELAY_EPARENTTHREAD otherwise). Returns 0, -EINVAL, -ENOMEM,
 * RELAY_EMAINONLY (main-thread-only class outside the main thread).
 * Any thread (the object then lives in it).
 *
 * Every object function below refuses an object whose destruction has
 * begun (or ended, for memory you own) with RELAY_EDESTROYED. */
int relay_object_init(relay_object *obj, const relay_class *cls, relay_object *parent);

/* Allocate `size` zeroed bytes through relay's allocator and initialise
 * them as an object (size >= sizeof(relay_object)); *out receives it and
 * relay frees it after the class finalizer. Any thread. */
int relay_object_new(size_t size, const relay_class *cls, relay_object *parent,
		     void *out /* T ** */);

/* Destroy now: clears weak references (they read NULL from here on, also
 * in destroyed slots), emits destroyed, cuts every connection (queued
 * events to it are dropped and freed; nothing queued is delivered to it
 * once its destruction has begun, and once its destroyed slots ran no
 * direct call reaches it either), destroys children, stops its timers,
 * unlinks it from its parent, then finalizes. An emission of one of its
 * signals that is running in this thread (the object destroyed by one of
 * its slots) calls no further slot. Owner thread only (elsewhere use
 * relay_object_delete_later). A running relay_thread is refused with
 * RELAY_ERUNNING. Re-entrant calls during destruction return 0 and do
 * nothing. */
int relay_object_destroy(relay_object *obj);

/* Destroy the object in its own thread, when control returns to the loop
 * level where this was called (as Qt: from inside a slot, not in a
 * relay_process_events() or nested loop the slot runs, but once the slot
 * has returned to the loop that called it; from another thread, on the
 * next pass). If the thread's loop has stopped, when the thread finishes;
 * if the thread has finished (or is gone, or the object has no thread),
 * right now in the calling thread - or, when another thread is already
 * destroying objects of that finished thread, by that thread before it
 * returns. Exactly once: repeated calls collapse into one. Needs no
 * memory: it never fails for an object that is alive. Any thread. */
int relay_object_delete_later(relay_object *obj);

/* Change the thread the object lives in, with its children, its timers,
 * its single shots, its pending delete_later and its events still pending
 * in the old thread: they are delivered in the new thread in order, before
 * anything posted after the move (also while other threads keep posting
 * during it: their posts wait for the move, which is short). Allowed only
 * from the object's current thread, or from any thread for an object with
 * no thread - which includes an object whose thread's handle was destroyed
 * (thread NULL detaches it: events for it are then dropped, and counted
 * in the emitting thread's refused, until it is moved again). Succeeds whole or changes nothing. Refused:
 * RELAY_EWRONGTHREAD (also for an object of a finished thread: restart the
 * thread, or delete_later the object), RELAY_EHASPARENT (move the parent,
 * or unparent first), RELAY_EMAINONLY; -ENOMEM. */
int relay_object_move_to_thread(relay_object *obj, relay_thread *thread);

/* Owner thread only. parent NULL unparents. Refused with
 * RELAY_EPARENTTHREAD when parent lives in another thread, -EINVAL for a
 * cycle. */
int relay_object_set_parent(relay_object *obj, relay_object *parent);

/* Queries. Any thread; the answer may be stale if another thread moves or
 * destroys the object meanwhile. relay_object_thread is NULL for an object
 * with no thread or whose thread's handle was destroyed. */
relay_object *relay_object_parent(const relay_object *obj);
relay_thread *relay_object_thread(const relay_object *obj);

/* A name for diagnostics (copied, at most 63 bytes kept). Any thread. */
int relay_object_set_name(relay_object *obj, const char *name);
/* Writes the name (or "<class>@<address>" when unnamed) into buf. */
int relay_object_name(const relay_object *obj, char *buf, size_t size);

/* While blocked, emits from this object call nothing (destroyed is still
 * emitted). *was (may be NULL) receives the previous state. Any thread. */
int relay_object_block_signals(relay_object *obj, bool block, bool *was);

/* ----------------------------------------------------------------------
 * Weak references (QPointer): read NULL once the object is destroyed.
 * relay_weak_get is thread-safe, but the object may be destroyed right
 * after by its own thread: dereference it only in the object's thread.
 * ---------------------------------------------------------------------- */
typedef struct relay_weak {
	struct relay__anchor *relay__b;
} relay_weak;

/* Point w at obj (NULL clears). w must be zeroed or previously set. Any
 * thread for obj's lifetime; needs no memory. RELAY_EDESTROYED once obj's
 * destruction has begun. */
int relay_weak_set(relay_weak *w, relay_object *obj);
relay_object *relay_weak_get(const relay_weak *w);   /* NULL once gone */
void relay_weak_clear(relay_weak *w);                /* release the reference */

/* ======================================================================
 * Signals and slots
 *
 * A slot is any function whose first parameter is a pointer to the
 * receiver's type, optionally followed by a pointer to the payload:
 *
 *     void window_on_progress(window *self, const int *percent);
 *     void worker_run(worker *self);          // may ignore any payload
 *
 * relay_connect checks the slot against the signal and the receiver at
 * compile time (with GCC, Clang or any C23 compiler: a wrong slot is a
 * static assertion failure).
 *
 * Connection types decide where a slot runs:
 *   RELAY_AUTO      (default) per emit: direct if the receiver lives in the
 *                   emitting thread, queued otherwise (D1).
 *   RELAY_DIRECT    in the emitting thread, now.
 *   RELAY_QUEUED    the payload is copied into an event and the slot runs in
 *                   the receiver's thread on its loop's next pass - never
 *                   inside the emit, even to one's own thread.
 *   RELAY_BLOCKING  queued, and the emitter waits until the slot has run.
 *                   Refused with RELAY_EDEADLOCK to one's own thread and
 *                   RELAY_ENOTRUNNING to a thread that runs no loop; if the
 *                   receiver is destroyed first the emitter is released
 *                   with RELAY_ENOTDELIVERED.
 * Flags: RELAY_UNIQUE (refuse a duplicate with -EEXIST), RELAY_SINGLE_SHOT
 * (disconnected as the first emit takes it).
 *
 * Emit, connect and disconnect are safe from any thread and from inside
 * slots. An emission calls the connections that existed when it started;
 * one disconnected meanwhile is skipped. After relay_disconnect returns,
 * relay begins no new call of that connection in any thread and its queued
 * events are dropped and freed at delivery (Qt would still run them). It
 * does not wait for other threads: a call they had already begun may still
 * be running - or, preempted in the last instructions before the slot, be
 * just entering it. relay_disconnect_wait also waits for those, so that
 * the slot's data may be freed when it returns.
 * ====================================================================== */

typedef enum relay_connection_type {
	RELAY_AUTO = 0,
	RELAY_DIRECT = 1,
	RELAY_QUEUED = 2,
	RELAY_BLOCKING = 3
} relay_connection_type;

enum relay_connection_flags {
	RELAY_UNIQUE = 1u << 0,
	RELAY_SINGLE_SHOT = 1u << 1
};

/* Identifies one connection; 0 is never a valid one. */
typedef uint64_t relay_connection;

/* Hooks for payloads that own memory (a string, a buffer). copy makes a
 * deep copy of src into dst (dst is uninitialised storage of the payload's
 * size) and returns 0 or a negative code; free releases what copy made
 * (not the storage). Every copy is freed exactly once, delivered or
 * dropped. Direct calls pass the emitter's own value and copy nothing. */
typedef struct relay_payload_ops {
	int (*copy)(void *dst, const void *src);
	void (*free)(void *payload);
} relay_payload_ops;

/* The generic slot types connections store. */
typedef void (*relay_slot_fn)(void);

/* Compile-time slot check (private). */
#define RELAY__SIG(s, sig) (&(s)->sig.relay__s)
#define RELAY__ARGSIZE(s, sig) \
	_Generic((s)->sig.relay__arg, relay__none *: (size_t)0, \
		 default: sizeof(*(s)->sig.relay__arg))
/* The payload's alignment (0: unknown, at most that of max_align_t). */
#if defined(__GNUC__) || defined(__clang__) || \
	(defined(__STDC_VERSION__) && __STDC_VERSION__ >= 202311L)
#define RELAY__ARGALIGN(s, sig) _Alignof(__typeof__(*(s)->sig.relay__arg))
#else
#define RELAY__ARGALIGN(s, sig) ((size_t)0)
#endif
#if defined(__GNUC__) || defined(__clang__) || \
	(defined(__STDC_VERSION__) && __STDC_VERSION__ >= 202311L)
#define RELAY__TYPEOF(x) __typeof__(x)
#define RELAY__NONE(s, sig) _Generic((s)->sig.relay__arg, relay__none *: 1, default: 0)
#define RELAY__SLOT_ARITY(s, sig, r, slot) \
	_Generic((slot), \
		 void (*)(RELAY__TYPEOF(r)): 1, \
		 void (*)(RELAY__TYPEOF(r), const RELAY__TYPEOF(*(s)->sig.relay__arg) *): \
			 (RELAY__NONE(s, sig) ? -1 : 2), \
		 default: -1)
#define RELAY__CHECKED_ARITY(s, sig, r, slot) \
	((int)sizeof(struct { \
		_Static_assert(RELAY__SLOT_ARITY(s, sig, r, slot) > 0, \
			       "relay: slot must be void slot(R *receiver) or " \
			       "void slot(R *receiver, const T *payload) for this signal"); \
		char relay__c[RELAY__SLOT_ARITY(s, sig, r, slot)]; }))
#define RELAY__CHECK_EMIT0(s, sig) \
	((void)sizeof(struct { \
		_Static_assert(RELAY__NONE(s, sig), \
			       "relay_emit: this signal carries a payload: relay_emit(obj, sig, &value)"); \
		char relay__c; }))
#define RELAY__CHECK_EMIT(s, sig, p) \
	((void)sizeof(struct { \
		_Static_assert(_Generic((p), RELAY__TYPEOF((s)->sig.relay__arg): 1, \
				       const RELAY__TYPEOF(*(s)->sig.relay__arg) *: 1, default: 0), \
			       "relay_emit: payload pointer type does not match the signal"); \
		char relay__c; }))
#else
/* No typeof: the slot is not checked; it must take the payload. */
#define RELAY__CHECKED_ARITY(s, sig, r, slot) (RELAY__ARGSIZE(s, sig) ? 2 : 1)
#define RELAY__CHECK_EMIT(s, sig, p) ((void)0)
#define RELAY__CHECK_EMIT0(s, sig) ((void)0)
#endif

/* Private entry points behind the macros. */
int relay__connect(relay_signal *sig, relay_object *sender, size_t argsize,
		   size_t argalign, relay_object *receiver, relay_slot_fn fn, void *data, int arity,
		   relay_connection_type type, unsigned flags, relay_connection *out);
int relay__emit(relay_signal *sig, relay_object *sender, size_t argsize, const void *arg);
int relay__disconnect_signal(relay_signal *sig, relay_object *sender);
int relay__signal_set_ops(relay_signal *sig, relay_object *sender,
			  const relay_payload_ops *ops);

/* Connect sender->signal to slot(receiver[, payload]), RELAY_AUTO, no
 * flags. Any thread. Returns 0, -EINVAL, -ENOMEM, RELAY_EDESTROYED. */
#define relay_connect(sender, signal, receiver, slot) \
	relay_connect_ex(sender, signal, receiver, slot, RELAY_AUTO, 0u, NULL)

/* The same with a connection type, flags and the connection's id in *out
 * (out may be NULL). Any thread. */
#define relay_connect_ex(sender, signal, receiver, slot, type, flags, out) \
	relay__connect(RELAY__SIG(sender, signal), (relay_object *)(sender), \
		       RELAY__ARGSIZE(sender, signal), RELAY__ARGALIGN(sender, signal), \
		       (relay_object *)(receiver), \
		       (relay_slot_fn)(slot), NULL, \
		       RELAY__CHECKED_ARITY(sender, signal, receiver, slot), \
		       (type), (flags), (out))

/* Connect to a plain function fn(data[, payload]) with NO context object:
 * the connection is DIRECT, fn runs in whichever thread emits (as with a
 * Qt lambda without a context). To run it in a given thread, use
 * relay_connect_func_ex with a context object living in that thread.
 * Any thread. */
#define relay_connect_func(sender, signal, fn, data) \
	relay_connect_func_ex(sender, signal, NULL, fn, data, RELAY_AUTO, 0u, NULL)

/* fn(data[, payload]) runs in `context`'s thread and the connection dies
 * with `context` (D2); context NULL means direct, and then only RELAY_AUTO
 * or RELAY_DIRECT are accepted (-EINVAL). Any thread. */
#define relay_connect_func_ex(sender, signal, context, fn, data, type, flags, out) \
	relay__connect(RELAY__SIG(sender, signal), (relay_object *)(sender), \
		       RELAY__ARGSIZE(sender, signal), RELAY__ARGALIGN(sender, signal), \
		       (relay_object *)(context), \
		       (relay_slot_fn)(fn), (void *)(data), \
		       -RELAY__CHECKED_ARITY(sender, signal, (void *)(data), fn), \
		       (type), (flags), (out))

/* Emit: relay_emit(obj, signal) or relay_emit(obj, signal, &value). Calls
 * or queues every connection; queued ones get a copy of *value. Any
 * thread. Returns 0, or the first error of a blocking connection
 * (RELAY_EDEADLOCK, RELAY_ENOTRUNNING, RELAY_ENOTDELIVERED), or -ENOMEM
 * when a queued copy could not be made (that connection is skipped and
 * counted as dropped). An emit with no connection costs a load and a
 * branch. */
/* Inline: an unconnected signal costs the caller a load and a branch. */
static inline int relay__emit_fast(relay_signal *sig, relay_object *sender, size_t argsize,
				   const void *arg)
{
	if (sender && !atomic_load_explicit(&sig->relay__conns, memory_order_relaxed))
		return 0;
	return relay__emit(sig, sender, argsize, arg);
}
#define RELAY__EMIT0(s, sig) \
	(RELAY__CHECK_EMIT0(s, sig), \
	 relay__emit_fast(RELAY__SIG(s, sig), (relay_object *)(s), 0, NULL))
#define RELAY__EMIT1(s, sig, p) \
	(RELAY__CHECK_EMIT(s, sig, p), \
	 relay__emit_fast(RELAY__SIG(s, sig), (relay_object *)(s), RELAY__ARGSIZE(s, sig), (p)))
#define RELAY__PICK4(a, b, c, d, ...) d
#define relay_emit(...) \
	RELAY__PICK4(__VA_ARGS__, RELAY__EMIT1, RELAY__EMIT0, x)(__VA_ARGS__)

/* Disconnect one connection. Any thread. Returns 0 or -ENOENT if it is
 * already gone (disconnected, single-shot taken, or an end destroyed).
 * When it returns, relay begins no new call of the slot anywhere (D6); a
 * call other threads had begun may still be running (or entering the
 * slot). Never waits for other threads' slots. */
int relay_disconnect(relay_connection c);

/* relay_disconnect, then wait until the calls of that connection other
 * threads had begun have returned (at most timeout_ms; negative: no
 * limit): when it returns 0, no call of the slot runs or starts anywhere,
 * so the slot's data may be freed. Refused (nothing done) with
 * RELAY_EDEADLOCK and a diagnostic from inside a call of that connection
 * in the calling thread (it would wait for itself; use relay_disconnect).
 * Beware of waiting, from a thread, for a slot that waits for that thread.
 * Returns 0, -ENOENT, -ETIMEDOUT (disconnected, but a call still runs).
 * Any thread. */
int relay_disconnect_wait(relay_connection c, int timeout_ms);

/* Disconnect every connection of sender->signal. Any thread. */
#define relay_disconnect_signal(sender, signal) \
	relay__disconnect_signal(RELAY__SIG(sender, signal), (relay_object *)(sender))

/* Disconnect every connection whose receiver (or context) is obj, from any
 * sender. Any thread. */
int relay_disconnect_receiver(relay_object *obj);

/* Give sender->signal copy/free hooks for its payload type. Call before
 * connecting (owner thread). ops must outlive the object. */
#define relay_signal_set_ops(sender, signal, ops) \
	relay__signal_set_ops(RELAY__SIG(sender, signal), (relay_object *)(sender), (ops))

/* Inside a slot: the object whose emit caused this call (also for queued
 * calls, where it may already be destroyed: do not dereference it then).
 * NULL outside a slot. The calling thread. */
relay_object *relay_sender(void);

/* Ready-made slots, for any signal (they ignore its payload). The
 * receiver's type must match the slot's first parameter exactly, so pass
 * the object's base and the thread handle as they are:
 *     relay_connect(worker, complete, &worker->base, relay_slot_delete_later);
 *     relay_connect(worker, complete, thread, relay_slot_quit);          */
void relay_slot_delete_later(relay_object *obj); /* relay_object_delete_later */
void relay_slot_quit(relay_thread *thread);      /* relay_thread_quit */

/* ======================================================================
 * Threads and loops
 *
 * relay_thread is Qt's QThread: a handle (itself an object, living in the
 * thread that created it) for a thread that runs an event loop. Its
 * signals are public members:
 *
 *     relay_connect(thread, started, worker, worker_run);
 *
 * `started` is emitted from the new thread before its loop runs;
 * `finished` from the thread as it ends, after pending deferred deletions
 * ran (also for an adopted thread, as its pthread exits). Connections to
 * objects living in that thread are direct, to others queued (AUTO).
 * While `finished` is being emitted the thread counts as finished
 * (relay_thread_is_running false, relay_thread_is_finished true, as Qt),
 * and relay_thread_wait returns only once the thread is done with
 * everything, deletions its `finished` slots asked for included.
 *
 * Every thread that calls relay - the main thread, threads made with
 * pthread_create - gets a record and a relay_thread handle too
 * (relay_thread_current), so objects can live in it and it can run a loop.
 * ====================================================================== */

struct relay_thread {
	relay_object base;
	RELAY_SIGNAL(started);
	RELAY_SIGNAL(finished);
	struct relay__tdata *relay__data;   /* private */
};

/* Create a stopped thread named `name` (at most 15 bytes are shown by
 * top -H and gdb; NULL gives "relay"). The handle lives in the calling
 * thread, as a child of parent if given. Any thread. */
int relay_thread_create(const char *name, relay_object *parent, relay_thread **out);

/* Start the thread: it emits started, then runs its loop until quit or
 * exit. A finished thread may be started again, also while it is still
 * finishing (from a slot of its `finished`): it then starts again as soon
 * as its finish is complete (Qt's start waits for the finish). The
 * interruption request is cleared. Owner thread of the handle. Returns 0,
 * RELAY_ERUNNING (with a diagnostic) if it runs, -EINVAL for an adopted
 * thread's handle (with a diagnostic), -EAGAIN/-ENOMEM. */
int relay_thread_start(relay_thread *t);

/* Ask the thread's loops to return: every loop running in that thread
 * returns (nested ones included, as Qt's QThread::exit), the outermost
 * with exit code 0, or `code` (>= 0; -EINVAL otherwise). Any thread. A
 * quit that comes before the loop runs (also before the first start) is
 * kept and ends that run; on a thread whose loop has already returned
 * (finishing or finished) it does nothing. */
int relay_thread_quit(relay_thread *t);
int relay_thread_exit(relay_thread *t, int code);

/* Wait until the thread has finished, at most timeout_ms (negative: no
 * limit). Any thread but t itself (RELAY_EWAITSELF). Returns 0 (also for
 * a thread never started), -ETIMEDOUT. */
int relay_thread_wait(relay_thread *t, int timeout_ms);

/* quit + wait(timeout_ms). Returns 0 or -ETIMEDOUT. */
int relay_thread_stop(relay_thread *t, int timeout_ms);

/* The exit code of the thread's last finished run (0 before any). Any
 * thread. Returns 0 and *code, or -EINVAL. */
int relay_thread_exit_code(const relay_thread *t, int *code);

/* Destroy the handle (relay_object_destroy on it). Owner thread of the
 * handle. Refused with RELAY_ERUNNING and a diagnostic while the thread
 * runs (stop it first) - never an abort. */
int relay_thread_destroy(relay_thread *t);

/* Interruption: requested from any thread, polled by the worker with a
 * relaxed load (cheap enough for an inner loop). Cleared when the thread
 * starts and when a run finishes. */
int relay_thread_request_interruption(relay_thread *t);
bool relay_thread_interruption_requested(const relay_thread *t);
/* The same for the calling thread. */
bool relay_interruption_requested(void);

/* Queries, any thread; false for NULL. Running: started and its loop has
 * not returned. Finished: its loop has returned (finishing included) and
 * it was not started again. */
bool relay_thread_is_running(const relay_thread *t);
bool relay_thread_is_finished(const relay_thread *t);

/* The calling thread's handle (adopting the thread on first use) and the
 * main thread's (the process's initial thread). NULL only on -ENOMEM. */
relay_thread *relay_thread_current(void);
relay_thread *relay_thread_main(void);
bool relay_is_main_thread(void);

/* Copies at most size-1 bytes of the thread's name. */
int relay_thread_name(const relay_thread *t, char *buf, size_t size);

/* Counters of a thread's loop. Any thread (a snapshot). */
typedef struct relay_loop_stats {
	uint64_t posted;      /* events posted to this loop, delete_later included
			       * (events that move_to_thread brings along count
			       * again in the new loop) */
	uint64_t delivered;   /* events dispatched (a single shot: armed) */
	uint64_t dropped;     /* events freed undelivered (receiver gone, disconnected, thread ended) */
	uint64_t moved;       /* events move_to_thread took to another loop; at rest
			       * posted == delivered + dropped + moved */
	uint64_t refused;     /* queued calls THIS thread emitted that no loop could
			       * take (receiver without a thread, or whose thread is
			       * gone): freed at once, the emit returned 0 */
	uint64_t wakeups;     /* times the loop returned from sleeping in the kernel */
	uint64_t passes;      /* loop iterations */
	uint64_t timers_fired;
} relay_loop_stats;
int relay_thread_stats(const relay_thread *t, relay_loop_stats *out);

/* ---- Running the calling thread's loop ---- */

/* Run the calling thread's loop until quit/exit; returns the exit code
 * (>= 0) or a negative error. Runs nested when called from a slot:
 * relay_loop_quit ends the innermost loop, relay_thread_quit every loop
 * of the thread. */
int relay_loop_run(void);

/* One pass: run due timers and the events already posted; if nothing was
 * ready, wait up to timeout_ms (0: don't wait, negative: until something
 * happens). Returns the number of events and timers handled, or < 0. */
int relay_loop_run_once(int timeout_ms);

/* For a busy worker: deliver what is pending now, without waiting.
 * Returns the number handled, or < 0. */
int relay_process_events(void);

/* Make the calling thread's innermost running loop return (0, or `code`,
 * which must be >= 0: -EINVAL otherwise), as Qt's QEventLoop::exit; outer
 * loops go on. With no loop running, the next relay_loop_run returns at
 * once. The calling thread. */
int relay_loop_quit(void);
int relay_loop_exit(int code);

/* Frees what the calling thread keeps so that a steady flow of events
 * allocates nothing: the spare chunks of the queues it receives through,
 * its cache of signal connections, its rings to threads that are gone.
 * An idle loop pass gives back all but the spare chunks by itself; call
 * this after a burst, or before checking for leaks. The calling thread;
 * returns 0 (-ENOMEM if the thread could not be adopted). */
int relay_release_caches(void);

/* The application loop (QCoreApplication::exec): the main thread only.
 * Runs the main loop until quit, then quits and waits for every started
 * relay_thread (up to timeout_ms each; 5000 if negative), naming those
 * that do not stop, runs pending deferred deletions and returns the exit
 * code. RELAY_EWRONGTHREAD from another thread. The threads it stopped are
 * stopped when it returns: relay_thread_stop after it is not needed
 * (harmless), relay_thread_destroy still is. */
int relay_main_run(int timeout_ms);
/* relay_thread_quit / relay_thread_exit on the main thread (every loop of
 * the main thread returns, relay_main_run's included). Any thread. */
int relay_main_quit(void);
int relay_main_exit(int code);

/* ======================================================================
 * Timers
 *
 * relay_timer is an object with a `timeout` signal. It fires in its
 * thread's loop, on the monotonic clock; it follows its object when moved
 * to another thread. A timer is never fired again while its timeout is
 * being delivered (a slot that runs relay_process_events or a nested loop
 * does not re-enter itself), as Qt. Starting or stopping it from another thread is
 * refused with RELAY_ETIMERTHREAD (Qt warns "Timers cannot be started from
 * another thread"); use relay_invoke to do it in its thread.
 * ====================================================================== */

typedef struct relay_timer {
	relay_object base;
	RELAY_SIGNAL(timeout);
	struct relay__timerdata *relay__data;   /* private */
} relay_timer;

/* A stopped timer with interval 0 (fires on the next pass), repeating.
 * Lives in the calling thread, as a child of parent if given. */
int relay_timer_create(relay_object *parent, relay_timer **out);
/* Owner thread only. start(ms < 0) keeps the current interval; start
 * restarts a running timer. */
int relay_timer_start(relay_timer *t, int ms);
int relay_timer_stop(relay_timer *t);
int relay_timer_set_interval(relay_timer *t, int ms);  /* applies from now */
int relay_timer_set_single_shot(relay_timer *t, bool single);
bool relay_timer_is_active(const relay_timer *t);      /* any thread */
int relay_timer_interval(const relay_timer *t);        /* ms, or -EINVAL */
/* Destroy with relay_object_destroy(&t->base) or through its parent. */

/* Run slot(receiver) once in receiver's thread after ms milliseconds;
 * skipped (and freed at once) if the receiver is destroyed first; follows
 * the receiver when it moves. Any thread. Returns 0, -EINVAL, -ENOMEM,
 * RELAY_EDESTROYED, RELAY_ENOTRUNNING (the receiver has no thread, or its
 * thread's handle was destroyed). */
#if defined(RELAY__TYPEOF)
#define relay_single_shot(ms, receiver, slot) \
	((void)sizeof(struct { \
		_Static_assert(_Generic((slot), void (*)(RELAY__TYPEOF(receiver)): 1, default: 0), \
			       "relay_single_shot: slot must be void slot(R *receiver)"); \
		char relay__c; }), \
	 relay__single_shot((ms), (relay_object *)(receiver), (relay_slot_fn)(slot)))
#else
#define relay_single_shot(ms, receiver, slot) \
	relay__single_shot((ms), (relay_object *)(receiver), (relay_slot_fn)(slot))
#endif
int relay__single_shot(int ms, relay_object *receiver, relay_slot_fn slot);

/* ======================================================================
 * Invoke: run a function in an object's thread
 * ====================================================================== */

/* Queue fn(data) to run in context's thread on its next loop pass (never
 * inside this call, D5). If context is destroyed first, fn does not run
 * and free_data(data) (if given) is called instead; after fn runs,
 * free_data is not called. Any thread. Returns 0, -EINVAL, -ENOMEM,
 * RELAY_EDESTROYED, RELAY_ENOTRUNNING (context has no thread, or its
 * thread's handle was destroyed); on an error nothing was queued and the
 * caller keeps data. */
int relay_invoke(relay_object *context, void (*fn)(void *data), void *data,
		 void (*free_data)(void *data));

/* Run fn(data) in context's thread and wait for it; *result (may be NULL)
 * receives its return value. Refused with RELAY_EDEADLOCK when context
 * lives in the calling thread (call fn yourself), RELAY_EDESTROYED while
 * it is being destroyed, and RELAY_ENOTRUNNING when its thread runs no
 * loop: a relay_thread that is not started or has finished, or a main or
 * adopted thread that has never run a loop pass (once it has, relay counts
 * on it to run more: a blocking call into a thread that stops pumping
 * waits). RELAY_ENOTDELIVERED if context is destroyed before fn ran. Any
 * other thread. */
int relay_invoke_blocking(relay_object *context, int (*fn)(void *data), void *data,
			  int *result);

#ifdef __cplusplus
}
#endif
#endif /* RELAY_H */
