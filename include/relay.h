/*
 * relay.h - the Qt worker model for C: objects that belong to a thread,
 * signals and slots that cross threads through per-thread event loops,
 * threads with their own loop, timers, move-to-thread and delete-later,
 * and pools whose tasks report back to your thread.
 *
 * This is the only public header and the user's manual. Read it top to
 * bottom: errors, objects, signals, threads and loops, fd watchers,
 * embedding in another loop, timers, invoke, pools and tasks.
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

/* RELAY_API marks what librelay.so exports: the library is built with
 * -fvisibility=hidden, so its internals stay inside (the list of exported
 * symbols is checked in CI against abi/librelay.symbols). */
#if defined(__GNUC__) || defined(__clang__)
#define RELAY_API __attribute__((visibility("default")))
#else
#define RELAY_API
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
RELAY_API const char *relay_strerror(int code);

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
RELAY_API int relay_set_diag_handler(relay_diag_fn fn, void *user);

/* Number of diagnostics reported since the process started. Any thread. */
RELAY_API unsigned long relay_diag_count(void);

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
RELAY_API int relay_set_allocator(const relay_allocator *a);

/* ======================================================================
 * Objects
 *
 * Embed relay_object as the FIRST member of your struct, named base, so a
 * pointer to your struct is a pointer to its relay_object:
 *
 *     typedef struct worker {
 *         relay_object base;
 *         RELAY_SIGNAL(complete);          // complete = pyqtSignal()
 *         RELAY_SIGNAL(progress, int);     // progress = pyqtSignal(int)
 *         long count;
 *     } worker;
 *
 *     worker *w;
 *     relay_object_new(&w, &worker_class, NULL);  // zeroed, initialised
 *     relay_object_delete_later(w);
 *
 * Pass your object as it is (w, never &w->base or a cast) to every relay
 * function and macro that takes one. With GCC and Clang relay checks it
 * at compile time: a relay_object *, or a pointer to a struct whose first
 * member is named base and is a relay_object - or a relay_thread, a
 * relay_timer, or one of your own object structs, up to three levels
 * deep. Anything else (&w, *w, 0, a struct without such a base, a base
 * that is not first) is refused with a message that says which. A void *
 * (NULL included) is taken as it is, unchecked. A pointer to const is
 * accepted where nothing is changed (the queries); elsewhere the compiler
 * warns that const is discarded. The functions themselves take
 * relay_object * (call them as (relay_object_destroy)(obj) to bypass the
 * macro, for example from another language).
 *
 * A struct you allocate yourself must be zero-filled before
 * relay_object_init, because signals start zeroed.
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
	/* sizeof your struct, optional (0: unchecked). relay_object_new and
	 * relay_object_alloc refuse to make a smaller object (-EINVAL): it
	 * catches relay_object_new(&p, &worker_class, ...) with p declared
	 * as a relay_object * instead of a worker *. */
	size_t size;
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
 * can be embedded. The union costs nothing: base, at offset 0 like the
 * fields, exists only so that the compile-time object check can read
 * obj->base on every object type, relay_object included. */
struct relay__base3 { char relay__unused; };
struct relay__base2 { struct relay__base3 base; };
struct relay__base1 { struct relay__base2 base; };
struct relay_object {
	union {
		struct relay__base1 base;                     /* never read or written */
		struct {
			const relay_class *relay__class;
			/* identity, affinity and liveness, shared with everything
			 * that may outlive the object (events, weak references,
			 * connections) */
			struct relay__anchor *_Atomic relay__anchor;
			relay_object *relay__parent;          /* owner thread only */
			relay_object *relay__first_child;     /* owner thread only */
			relay_object *relay__next_sibling;    /* owner thread only */
			struct relay__objext *relay__ext;     /* guarded by the object's lock */
			_Atomic unsigned relay__flags;
			/* emitted first thing in destroy:
			 * relay_connect(w, base.destroyed, ...) */
			RELAY_SIGNAL(destroyed);
		};
	};
};

/* Initialise a zero-filled object in the calling thread, optionally as a
 * child of `parent` (which must live in the calling thread:
 * RELAY_EPARENTTHREAD otherwise). Returns 0, -EINVAL, -ENOMEM,
 * RELAY_EMAINONLY (main-thread-only class outside the main thread).
 * Any thread (the object then lives in it).
 *
 * Every object function below refuses an object whose destruction has
 * begun (or ended, for memory you own) with RELAY_EDESTROYED. */
RELAY_API int relay_object_init(relay_object *obj, const relay_class *cls, relay_object *parent);
#define relay_object_init(obj, cls, parent) \
	relay_object_init(RELAY__OBJ(obj), (cls), RELAY__OBJ(parent))

/* relay_object_new(&w, &worker_class, parent): allocate a zeroed *w
 * (sizeof **&w bytes) through relay's allocator and initialise it as an
 * object, as relay_object_init; w receives it, or NULL on an error. relay
 * frees the memory after the class finalizer. Passing w instead of &w, or
 * the address of something that is not an object pointer, does not
 * compile; a w of a type smaller than cls->size (when the class gives
 * its size) is refused with -EINVAL. Any thread. */
#define relay_object_new(out, cls, parent) RELAY__NEW(out, cls, parent)

/* The same, unchecked, with an explicit size (at least sizeof(relay_object)
 * and cls->size, -EINVAL otherwise): for a struct ending in a flexible
 * array member, or for bindings. *(T **)out receives the object. */
RELAY_API int relay_object_alloc(size_t size, const relay_class *cls, relay_object *parent,
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
RELAY_API int relay_object_destroy(relay_object *obj);
#define relay_object_destroy(obj) relay_object_destroy(RELAY__OBJ(obj))

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
RELAY_API int relay_object_delete_later(relay_object *obj);
#define relay_object_delete_later(obj) relay_object_delete_later(RELAY__OBJ(obj))

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
RELAY_API int relay_object_move_to_thread(relay_object *obj, relay_thread *thread);
#define relay_object_move_to_thread(obj, thread) \
	relay_object_move_to_thread(RELAY__OBJ(obj), (thread))

/* Owner thread only. parent NULL unparents. Refused with
 * RELAY_EPARENTTHREAD when parent lives in another thread, -EINVAL for a
 * cycle. */
RELAY_API int relay_object_set_parent(relay_object *obj, relay_object *parent);
#define relay_object_set_parent(obj, parent) \
	relay_object_set_parent(RELAY__OBJ(obj), RELAY__OBJ(parent))

/* Queries. Any thread; the answer may be stale if another thread moves or
 * destroys the object meanwhile. relay_object_thread is NULL for an object
 * with no thread or whose thread's handle was destroyed. */
RELAY_API relay_object *relay_object_parent(const relay_object *obj);
RELAY_API relay_thread *relay_object_thread(const relay_object *obj);
#define relay_object_parent(obj) relay_object_parent(RELAY__COBJ(obj))
#define relay_object_thread(obj) relay_object_thread(RELAY__COBJ(obj))

/* A name for diagnostics (copied, at most 63 bytes kept). Any thread. */
RELAY_API int relay_object_set_name(relay_object *obj, const char *name);
#define relay_object_set_name(obj, name) relay_object_set_name(RELAY__OBJ(obj), (name))
/* Writes the name (or "<class>@<address>" when unnamed) into buf. */
RELAY_API int relay_object_name(const relay_object *obj, char *buf, size_t size);
#define relay_object_name(obj, buf, size) relay_object_name(RELAY__COBJ(obj), (buf), (size))

/* While blocked, emits from this object call nothing (destroyed is still
 * emitted). *was (may be NULL) receives the previous state. Any thread. */
RELAY_API int relay_object_block_signals(relay_object *obj, bool block, bool *was);
#define relay_object_block_signals(obj, block, was) \
	relay_object_block_signals(RELAY__OBJ(obj), (block), (was))

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
RELAY_API int relay_weak_set(relay_weak *w, relay_object *obj);
#define relay_weak_set(w, obj) relay_weak_set((w), RELAY__OBJ(obj))
RELAY_API relay_object *relay_weak_get(const relay_weak *w);   /* NULL once gone */
RELAY_API void relay_weak_clear(relay_weak *w);                /* release the reference */

/* ======================================================================
 * Signals and slots
 *
 * A slot is any function whose first parameter is a pointer to the
 * receiver's type, optionally followed by a pointer to the payload:
 *
 *     void window_on_progress(window *self, const int *percent);
 *     void worker_run(worker *self);          // may ignore any payload
 *
 * A slot returns void: one that returns a value is refused ("relay: a
 * slot returns void"; GCC lets int through, see RELAY__RETOK). The
 * receiver's parameter may also be relay_object * (the ready-made slots
 * below take any object). With GCC and Clang, relay_connect checks the
 * slot against the signal and the receiver at compile time, by compiling
 * a call of the slot with the arguments relay will pass; each mistake is
 * one error, in the compiler's words:
 *
 *   compiler says, about the slot call           the mistake
 *   argument 1 ... incompatible pointer type     the slot's first parameter
 *     (clang: passing 'relay_slot_receiver'      is not the receiver's type
 *     (aka 'worker *') to parameter of type ...)
 *   argument 2 ... discards 'const' qualifier    the payload parameter must
 *                                                be const T *
 *   argument 2 ... incompatible pointer type     the payload parameter's T
 *     (clang: passing 'const                     is not the signal's type
 *     relay_signal_payload *' (aka ...))
 *   too few arguments to function ...            the slot has more
 *                                                parameters than the signal
 *                                                gives (receiver, payload)
 *   too many arguments to function ...           a one-parameter slot whose
 *                                                receiver type is wrong, on
 *                                                a signal with a payload
 *                                                (GCC also names argument 1)
 *
 * Other compilers accept any function (the macros only convert), so a
 * wrong slot there is undefined behaviour at the call.
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

/* The payload's size and alignment (private; alignment 0: unknown, at
 * most that of max_align_t). */
#define RELAY__SIG(s, sig) (&(s)->sig.relay__s)
#define RELAY__ARGSIZE(s, sig) \
	_Generic((s)->sig.relay__arg, relay__none *: (size_t)0, \
		 default: sizeof(*(s)->sig.relay__arg))
#if defined(__GNUC__) || defined(__clang__) || \
	(defined(__STDC_VERSION__) && __STDC_VERSION__ >= 202311L)
#define RELAY__ARGALIGN(s, sig) _Alignof(__typeof__(*(s)->sig.relay__arg))
#else
#define RELAY__ARGALIGN(s, sig) ((size_t)0)
#endif

/* Private entry points behind the macros. */
RELAY_API int relay__connect(relay_signal *sig, relay_object *sender, size_t argsize,
		   size_t argalign, relay_object *receiver, relay_slot_fn fn, void *data, int arity,
		   relay_connection_type type, unsigned flags, relay_connection *out);
RELAY_API int relay__emit(relay_signal *sig, relay_object *sender, size_t argsize, const void *arg);
RELAY_API int relay__disconnect_signal(relay_signal *sig, relay_object *sender);
RELAY_API int relay__signal_set_ops(relay_signal *sig, relay_object *sender,
			  const relay_payload_ops *ops);

/* Connect sender->signal to slot(receiver[, payload]), RELAY_AUTO, no
 * flags. Any thread. Returns 0, -EINVAL, -ENOMEM, RELAY_EDESTROYED. */
#define relay_connect(sender, signal, receiver, slot) \
	relay_connect_ex(sender, signal, receiver, slot, RELAY_AUTO, 0u, NULL)

/* The same with a connection type, flags and the connection's id in *out
 * (out may be NULL). Any thread. */
#define relay_connect_ex(sender, signal, receiver, slot, type, flags, out) \
	relay__connect(RELAY__SIG(sender, signal), RELAY__OBJ(sender), \
		       RELAY__ARGSIZE(sender, signal), RELAY__ARGALIGN(sender, signal), \
		       RELAY__OBJ(receiver), (relay_slot_fn)(slot), NULL, \
		       RELAY__SLOT_ARITY(sender, signal, receiver, slot), \
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
	relay__connect(RELAY__SIG(sender, signal), RELAY__OBJ(sender), \
		       RELAY__ARGSIZE(sender, signal), RELAY__ARGALIGN(sender, signal), \
		       RELAY__OBJ(context), (relay_slot_fn)(fn), (void *)(data), \
		       -RELAY__SLOT_ARITY(sender, signal, data, fn), \
		       (type), (flags), (out))

/* Emit: relay_emit(obj, signal) or relay_emit(obj, signal, &value). Calls
 * or queues every connection; queued ones get a copy of *value. Any
 * thread. Returns 0, or the first error of a blocking connection
 * (RELAY_EDEADLOCK, RELAY_ENOTRUNNING, RELAY_ENOTDELIVERED), or -ENOMEM
 * when a queued copy could not be made (that connection is skipped and
 * counted as dropped). An emit with no connection costs a load and a
 * branch (the check is inline). */
static inline int relay__emit_fast(relay_signal *sig, relay_object *sender, size_t argsize,
				   const void *arg)
{
	if (sender && !atomic_load_explicit(&sig->relay__conns, memory_order_relaxed))
		return 0;
	return relay__emit(sig, sender, argsize, arg);
}
#define RELAY__EMIT0(s, sig) \
	relay__emit_fast(RELAY__SIG(s, sig), RELAY__OBJ(s), RELAY__NOARG(s, sig), NULL)
#define RELAY__EMIT1(s, sig, p) \
	relay__emit_fast(RELAY__SIG(s, sig), RELAY__OBJ(s), RELAY__ARGSIZE(s, sig), \
			 RELAY__PAYLOAD(s, sig, p))
#define RELAY__PICK4(a, b, c, d, ...) d
#define relay_emit(...) \
	RELAY__PICK4(__VA_ARGS__, RELAY__EMIT1, RELAY__EMIT0, x)(__VA_ARGS__)

/* Disconnect one connection. Any thread. Returns 0 or -ENOENT if it is
 * already gone (disconnected, single-shot taken, or an end destroyed).
 * When it returns, relay begins no new call of the slot anywhere (D6); a
 * call other threads had begun may still be running (or entering the
 * slot). Never waits for other threads' slots. */
RELAY_API int relay_disconnect(relay_connection c);

/* relay_disconnect, then wait until the calls of that connection other
 * threads had begun have returned (at most timeout_ms; negative: no
 * limit): when it returns 0, no call of the slot runs or starts anywhere,
 * so the slot's data may be freed. Refused (nothing done) with
 * RELAY_EDEADLOCK and a diagnostic from inside a call of that connection
 * in the calling thread (it would wait for itself; use relay_disconnect).
 * Beware of waiting, from a thread, for a slot that waits for that thread.
 * Returns 0, -ENOENT, -ETIMEDOUT (disconnected, but a call still runs).
 * Any thread. */
RELAY_API int relay_disconnect_wait(relay_connection c, int timeout_ms);

/* Disconnect every connection of sender->signal. Any thread. */
#define relay_disconnect_signal(sender, signal) \
	relay__disconnect_signal(RELAY__SIG(sender, signal), (relay_object *)(sender))

/* Disconnect every connection whose receiver (or context) is obj, from any
 * sender. Any thread. */
RELAY_API int relay_disconnect_receiver(relay_object *obj);
#define relay_disconnect_receiver(obj) relay_disconnect_receiver(RELAY__OBJ(obj))

/* Give sender->signal copy/free hooks for its payload type. Call before
 * connecting (owner thread). ops must outlive the object. */
#define relay_signal_set_ops(sender, signal, ops) \
	relay__signal_set_ops(RELAY__SIG(sender, signal), RELAY__OBJ(sender), (ops))

/* Inside a slot: the object whose emit caused this call (also for queued
 * calls, where it may already be destroyed: do not dereference it then).
 * NULL outside a slot. The calling thread. */
RELAY_API relay_object *relay_sender(void);

/* Ready-made slots, for any signal (they ignore its payload).
 * relay_slot_delete_later takes any object as its receiver, relay_slot_quit
 * a relay_thread:
 *     relay_connect(w, complete, w, relay_slot_delete_later);
 *     relay_connect(w, complete, thread, relay_slot_quit);               */
RELAY_API void relay_slot_delete_later(relay_object *obj); /* relay_object_delete_later */
RELAY_API void relay_slot_quit(relay_thread *thread);      /* relay_thread_quit */

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
RELAY_API int relay_thread_create(const char *name, relay_object *parent, relay_thread **out);
#define relay_thread_create(name, parent, out) \
	relay_thread_create((name), RELAY__OBJ(parent), RELAY__OUT(out, relay_thread, relay_thread_create))

/* Start the thread: it emits started, then runs its loop until quit or
 * exit. A finished thread may be started again, also while it is still
 * finishing (from a slot of its `finished`): it then starts again as soon
 * as its finish is complete (Qt's start waits for the finish). The
 * interruption request is cleared. Owner thread of the handle. Returns 0,
 * RELAY_ERUNNING (with a diagnostic) if it runs, -EINVAL for an adopted
 * thread's handle (with a diagnostic), -EAGAIN/-ENOMEM. */
RELAY_API int relay_thread_start(relay_thread *t);

/* Ask the thread's loops to return: every loop running in that thread
 * returns (nested ones included, as Qt's QThread::exit), the outermost
 * with exit code 0, or `code` (>= 0; -EINVAL otherwise). Any thread. A
 * quit that comes before the loop runs (also before the first start) is
 * kept and ends that run; on a thread whose loop has already returned
 * (finishing or finished) it does nothing. */
RELAY_API int relay_thread_quit(relay_thread *t);
RELAY_API int relay_thread_exit(relay_thread *t, int code);

/* Wait until the thread has finished, at most timeout_ms (negative: no
 * limit). Any thread but t itself (RELAY_EWAITSELF). Returns 0 (also for
 * a thread never started), -ETIMEDOUT. */
RELAY_API int relay_thread_wait(relay_thread *t, int timeout_ms);

/* quit + wait(timeout_ms). Returns 0 or -ETIMEDOUT. */
RELAY_API int relay_thread_stop(relay_thread *t, int timeout_ms);

/* The exit code of the thread's last finished run (0 before any). Any
 * thread. Returns 0 and *code, or -EINVAL. */
RELAY_API int relay_thread_exit_code(const relay_thread *t, int *code);

/* Destroy the handle (relay_object_destroy on it). Owner thread of the
 * handle. Refused with RELAY_ERUNNING and a diagnostic while the thread
 * runs (stop it first) - never an abort. */
RELAY_API int relay_thread_destroy(relay_thread *t);

/* Interruption: requested from any thread, polled by the worker with a
 * relaxed load (cheap enough for an inner loop). Cleared when the thread
 * starts and when a run finishes. */
RELAY_API int relay_thread_request_interruption(relay_thread *t);
RELAY_API bool relay_thread_interruption_requested(const relay_thread *t);
/* The same for the calling thread. */
RELAY_API bool relay_interruption_requested(void);

/* Queries, any thread; false for NULL. Running: started and its loop has
 * not returned. Finished: its loop has returned (finishing included) and
 * it was not started again. */
RELAY_API bool relay_thread_is_running(const relay_thread *t);
RELAY_API bool relay_thread_is_finished(const relay_thread *t);

/* The calling thread's handle (adopting the thread on first use) and the
 * main thread's (the process's initial thread). NULL only on -ENOMEM. */
RELAY_API relay_thread *relay_thread_current(void);
RELAY_API relay_thread *relay_thread_main(void);
RELAY_API bool relay_is_main_thread(void);

/* Copies at most size-1 bytes of the thread's name. */
RELAY_API int relay_thread_name(const relay_thread *t, char *buf, size_t size);

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
RELAY_API int relay_thread_stats(const relay_thread *t, relay_loop_stats *out);

/* ---- Running the calling thread's loop ---- */

/* Run the calling thread's loop until quit/exit; returns the exit code
 * (>= 0) or a negative error. Runs nested when called from a slot:
 * relay_loop_quit ends the innermost loop, relay_thread_quit every loop
 * of the thread. */
RELAY_API int relay_loop_run(void);

/* One pass: run due timers and the events already posted; if nothing was
 * ready, wait up to timeout_ms (0: don't wait, negative: until something
 * happens). Returns the number of events and timers handled, or < 0. */
RELAY_API int relay_loop_run_once(int timeout_ms);

/* For a busy worker: deliver what is pending now, without waiting.
 * Returns the number handled, or < 0. */
RELAY_API int relay_process_events(void);

/* Make the calling thread's innermost running loop return (0, or `code`,
 * which must be >= 0: -EINVAL otherwise), as Qt's QEventLoop::exit; outer
 * loops go on. With no loop running, the next relay_loop_run returns at
 * once. The calling thread. */
RELAY_API int relay_loop_quit(void);
RELAY_API int relay_loop_exit(int code);

/* Frees what the calling thread keeps so that a steady flow of events
 * allocates nothing: the spare chunks of the queues it receives through,
 * its cache of signal connections, its rings to threads that are gone.
 * An idle loop pass gives back all but the spare chunks by itself; call
 * this after a burst, or before checking for leaks. Called inside a slot
 * it keeps the connection cache (an emission on the stack may use it). The calling thread;
 * returns 0 (-ENOMEM if the thread could not be adopted). */
RELAY_API int relay_release_caches(void);

/* The application loop (QCoreApplication::exec): the main thread only.
 * Runs the main loop until quit, then quits and waits for every started
 * relay_thread (up to timeout_ms each; 5000 if negative), naming those
 * that do not stop, runs pending deferred deletions and returns the exit
 * code. RELAY_EWRONGTHREAD from another thread. The threads it stopped are
 * stopped when it returns: relay_thread_stop after it is not needed
 * (harmless), relay_thread_destroy still is. */
RELAY_API int relay_main_run(int timeout_ms);
/* relay_thread_quit / relay_thread_exit on the main thread (every loop of
 * the main thread returns, relay_main_run's included). Any thread. */
RELAY_API int relay_main_quit(void);
RELAY_API int relay_main_exit(int code);

/* ======================================================================
 * fd watchers (Qt's QSocketNotifier)
 *
 * relay_watcher is an object with an `activated(int fd)` signal, emitted
 * in its thread's loop while its fd is ready and the watcher enabled:
 * READ for readable (also hang-up, error and a peer's shutdown: read to
 * find out which), WRITE for writable (also hang-up and error). It is
 * level-triggered, as poll(2): emitted once per loop pass while the
 * condition holds, so a slot that does not read everything gets called
 * again on the next pass, and one that meets end of file or an error must
 * disable or destroy the watcher, or it fires on every pass. Enable WRITE
 * only while there is data to send (Qt's advice). A watcher disabled or
 * destroyed by a slot earlier in a pass does not fire later in it. It
 * follows its object when moved to another thread (still enabled there),
 * and works the same in relay's loop and through the embedding API below.
 *
 * The fd stays yours: relay never closes it. Disable or destroy the
 * watcher before closing the fd; a closed fd that the kernel still
 * reports (a dup of it is open elsewhere), or whose number now belongs to
 * another file, disables its watcher with a diagnostic, as Qt's "Invalid
 * socket, disabling", and never makes the loop spin. A slot that runs a
 * nested loop is not activated again inside itself. One watcher per fd and
 * type in a thread (a second is refused with -EEXIST); READ and WRITE
 * watchers of one fd, or watchers of one fd in two threads, are fine.
 * ====================================================================== */

enum relay_watch_type {
	RELAY_WATCH_READ = 1,
	RELAY_WATCH_WRITE = 2
};

typedef struct relay_watcher {
	relay_object base;
	RELAY_SIGNAL(activated, int);            /* the fd */
	struct relay__watchdata *relay__data;    /* private */
	struct relay_watcher *relay__move_next;  /* private */
} relay_watcher;

/* An enabled watcher of fd for type (RELAY_WATCH_READ or _WRITE), living
 * in the calling thread, as a child of parent if given. Returns 0,
 * -EINVAL (bad fd or type), -EEXIST (that fd and type are watched in this
 * thread already), -ENOMEM, or the errno epoll gives (-EBADF for a closed
 * fd, -EPERM for a regular file, which is always ready). */
RELAY_API int relay_watcher_create(int fd, int type, relay_object *parent, relay_watcher **out);
#define relay_watcher_create(fd, type, parent, out) \
	relay_watcher_create((fd), (type), RELAY__OBJ(parent), \
			     RELAY__OUT(out, relay_watcher, relay_watcher_create))
/* Enable or disable. Owner thread only: elsewhere refused with
 * RELAY_EWRONGTHREAD and a diagnostic (use relay_invoke). Disabling takes
 * the fd out of the loop's poll set. Returns 0 or a negative code. */
RELAY_API int relay_watcher_set_enabled(relay_watcher *w, bool on);
/* Any thread. */
RELAY_API bool relay_watcher_is_enabled(const relay_watcher *w);
RELAY_API int relay_watcher_fd(const relay_watcher *w);   /* -EINVAL for NULL */

/* ======================================================================
 * Embedding: another loop drives this thread's relay loop
 *
 * A GTK, SDL or libuv program's main thread belongs to that library's
 * loop; relay lives inside it (relay-glib, relay_glib.h, does all of this
 * for GLib and GTK). The host, in the thread whose loop it drives:
 *
 *     relay_loop_attach(&host);               // or NULL: no hooks
 *     int fd = relay_loop_fd();               // add to the host's poll set
 *     for (;;) {                              // the host's iteration
 *         int timeout;
 *         if (relay_loop_prepare(&timeout))   // arms the wake-up, then looks
 *             timeout = 0;                    // ready now
 *         host_poll(fd, timeout, ...);        // the host's own wait
 *         relay_loop_dispatch(8);             // run what is due, 8 ms at most
 *     }
 *     relay_loop_detach();
 *
 * The fd is readable when work arrived after relay_loop_prepare armed it
 * (a post, a quit) or a watched fd is ready; relay_loop_dispatch reads it
 * quiet, so a host never spins on it. Work that arrives between prepare
 * and the host's wait makes the fd readable, and work that arrived before
 * prepare is what prepare reports: no wake-up is lost if every wait is
 * preceded by a prepare (there is no "query the timeout" without the arm,
 * for that reason: docs/design.md). A relay loop run inside a slot
 * (relay_loop_run, relay_invoke_blocking's replies) works as ever; the
 * host's own events wait meanwhile, as in any nested loop. While attached
 * the thread serves blocking calls; after relay_loop_detach they are
 * refused with RELAY_ENOTRUNNING (those already waiting are released with
 * RELAY_ENOTDELIVERED, as when a thread finishes), never left hanging.
 * A thread quit (relay_main_quit) ends relay loops running inside slots,
 * then reaches the host (relay_host.quit). The embedded loop does not spin before the host sleeps, so a
 * wake-up across cores costs the kernel's price.
 * ====================================================================== */

/* Hooks of a host loop; each may be NULL. */
typedef struct relay_host {
	/* For hosts without an fd to poll (SDL's event queue, a custom loop):
	 * called from relay's "relay-waker" thread, with no relay lock held,
	 * when the loop fd turns readable (so only after a prepare armed it,
	 * or for a watched fd), at most once until the next dispatch. Post an
	 * event to the host (SDL_PushEvent, a pipe, a condition variable);
	 * must not call relay. The host still waits at most the prepare's
	 * timeout, for timers. */
	void (*wakeup)(void *user);
	/* Called in the embedded thread, from relay_loop_dispatch, when
	 * relay_main_quit / relay_main_exit (or relay_loop_quit / exit with
	 * no relay loop running) reaches this loop: stop the host loop
	 * (g_main_loop_quit, uv_stop). Without it such a quit is reported by
	 * a diagnostic and dropped. */
	void (*quit)(void *user, int code);
	void *user;
} relay_host;

/* The calling thread's loop is driven by a host from now on (host may be
 * NULL; it is copied). The main thread or a thread of yours, not a
 * relay_thread (-EINVAL). Returns 0, -EEXIST if attached already,
 * -ENOMEM or a negative errno (the waker thread). */
RELAY_API int relay_loop_attach(const relay_host *host);
/* Undo relay_loop_attach: the waker stops, waiting blocking callers are
 * released (RELAY_ENOTDELIVERED) and later ones refused
 * (RELAY_ENOTRUNNING) - until a relay loop pass runs on this thread again,
 * which makes it serve them once more. Events stay queued for a later loop or attach.
 * The calling thread; -EINVAL if not attached. May be called from a slot
 * during relay_loop_dispatch. */
RELAY_API int relay_loop_detach(void);
/* The calling thread's loop fd (an epoll fd) to poll for reading; owned
 * by relay, never close it. It stays the same file for the thread's life
 * (a host may add it to its own epoll set once, as libuv does). The
 * calling thread; -ENOMEM if the thread could not be adopted, or the
 * errno of epoll_create1. */
RELAY_API int relay_loop_fd(void);
/* Arms the wake-up, then looks: returns 1 when there is work now (then
 * *timeout_ms is 0), or 0 with *timeout_ms the milliseconds until the next
 * timer, rounded up, or -1 for none. Runs no user code; calling it again
 * (as GLib's check) is harmless. The attached thread; -EINVAL if not
 * attached (timeout_ms may be NULL). */
RELAY_API int relay_loop_prepare(int *timeout_ms);
/* Runs what is ready - due timers, watcher activations, the events that
 * were queued when it began, due deferred deletions - without waiting,
 * stopping once budget_ms has passed (< 0: no limit) and leaving the rest
 * for the next call (prepare then reports it; the next call begins with
 * the producers the cut-short one did not reach). Passes a quit to the
 * host's quit hook. Returns how many were run, or a negative code. The
 * attached thread; may be called from a slot (a nested host loop). */
RELAY_API int relay_loop_dispatch(int budget_ms);

/* What relay_main_run does after its loop, for a host that ran the main
 * loop instead: quits and waits for every started relay_thread (up to
 * timeout_ms each; 5000 if negative), naming those that do not stop, and
 * runs the events they sent back and every pending deferred deletion.
 * Main thread only (RELAY_EWRONGTHREAD elsewhere); returns 0. */
RELAY_API int relay_main_shutdown(int timeout_ms);

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
RELAY_API int relay_timer_create(relay_object *parent, relay_timer **out);
#define relay_timer_create(parent, out) \
	relay_timer_create(RELAY__OBJ(parent), RELAY__OUT(out, relay_timer, relay_timer_create))
/* Owner thread only. start(ms < 0) keeps the current interval; start
 * restarts a running timer. */
RELAY_API int relay_timer_start(relay_timer *t, int ms);
RELAY_API int relay_timer_stop(relay_timer *t);
RELAY_API int relay_timer_set_interval(relay_timer *t, int ms);  /* applies from now */
RELAY_API int relay_timer_set_single_shot(relay_timer *t, bool single);
RELAY_API bool relay_timer_is_active(const relay_timer *t);      /* any thread */
RELAY_API int relay_timer_interval(const relay_timer *t);        /* ms, or -EINVAL */
/* Destroy with relay_object_destroy(t) or through its parent. */

/* Run slot(receiver) once in receiver's thread after ms milliseconds;
 * skipped (and freed at once) if the receiver is destroyed first; follows
 * the receiver when it moves. Any thread. Returns 0, -EINVAL, -ENOMEM,
 * RELAY_EDESTROYED, RELAY_ENOTRUNNING (the receiver has no thread, or its
 * thread's handle was destroyed). */
#define relay_single_shot(ms, receiver, slot) \
	relay__single_shot((ms), RELAY__OBJ(receiver), RELAY__SLOT1(receiver, slot))
RELAY_API int relay__single_shot(int ms, relay_object *receiver, relay_slot_fn slot);

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
RELAY_API int relay_invoke(relay_object *context, void (*fn)(void *data), void *data,
			   void (*free_data)(void *data));
#define relay_invoke(context, fn, data, free_data) \
	relay_invoke(RELAY__OBJ(context), (fn), (data), (free_data))

/* Run fn(data) in context's thread and wait for it; *result (may be NULL)
 * receives its return value. Refused with RELAY_EDEADLOCK when context
 * lives in the calling thread (call fn yourself), RELAY_EDESTROYED while
 * it is being destroyed, and RELAY_ENOTRUNNING when its thread runs no
 * loop: a relay_thread that is not started or has finished, or a main or
 * adopted thread that has never run a loop pass (once it has, relay counts
 * on it to run more: a blocking call into a thread that stops pumping
 * waits). RELAY_ENOTDELIVERED if context is destroyed before fn ran. Any
 * other thread. */
RELAY_API int relay_invoke_blocking(relay_object *context, int (*fn)(void *data), void *data,
				    int *result);
#define relay_invoke_blocking(context, fn, data, result) \
	relay_invoke_blocking(RELAY__OBJ(context), (fn), (data), (result))

/* ======================================================================
 * Pools: run tasks on worker threads and hear back in your thread
 *
 * A pool (Qt's QThreadPool, GLib's GThreadPool) runs tasks on up to
 * max_threads threads, started on demand and ended after an idle period.
 * A task reports back to a context object: its progress, and exactly once
 * its end, are delivered in the context's thread through the same queues
 * as queued signals - never inside the call that caused them. The report
 * is bound when the task is submitted, so no notification can be missed
 * by connecting too late (Qt's QFutureWatcher::setFuture race):
 *
 *     static int hash_run(relay_task *task, hash_job *job);        // pool
 *     static void hash_progress(window *w, hash_job *job, const double *f);
 *     static void hash_done(window *w, hash_job *job, int status,
 *                           const digest *d);                      // window's thread
 *     static void hash_free(hash_job *job);
 *     RELAY_TASK_DEFINE(hash_task, window, hash_job, double, digest,
 *                       hash_run, hash_progress, hash_done, hash_free);
 *
 *     relay_task_submit(relay_pool_default(), &hash_task, w, job, 0, &task);
 *
 * Inside run, the task polls relay_task_cancelled(task) (a relaxed load),
 * reports with relay_task_progress(task, &fraction) (latest value wins: a
 * tight loop costs a copy, not an event) and sets its result with
 * relay_task_set_result(task, &d). Then, in the context's thread:
 * progress(w, job, &latest) as the loop gets to it - the last value
 * before the end is always delivered before it - then finished(w, job,
 * status, result) once, with status 0, run's negative return value, or
 * -ECANCELED; then free_data(job), exactly once, whatever happened. If
 * the context is destroyed first, progress and finished are skipped and
 * free_data still runs (in the thread that drops the report).
 *
 * A pool thread serves a relay loop between tasks and while idle: objects
 * a task creates live in that thread and get their queued calls, timers
 * and delete_later there (after the task returns, or when it calls
 * relay_process_events). A pool thread with active timers or watchers
 * does not expire. A task may block-invoke into another thread (the main
 * thread, say); cancelling the task releases that call with -ECANCELED.
 *
 * Two pools, not one, when tasks block: keep relay_pool_default() (one
 * thread per CPU) for CPU work, and give blocking work (files, DNS,
 * databases) its own pool with more threads, so that tasks waiting on I/O
 * cannot starve the CPU work, nor it them (GTask's shared pool of 10
 * threads livelocks when its tasks wait for each other).
 * ====================================================================== */

typedef struct relay_pool relay_pool;
typedef struct relay_task relay_task;

typedef struct relay_pool_config {
	const char *name;     /* threads are "<name>-<n>" in top -H and gdb (at most
			       * 15 bytes shown); NULL: "pool" */
	int max_threads;      /* at most this many threads; 0: the CPUs online */
	int expiry_ms;        /* an idle thread ends after this; 0: 30000; < 0: never */
	size_t stack_size;    /* of each thread; 0: the system's default */
} relay_pool_config;

/* Create a pool (cfg NULL: the defaults). No thread starts until a task is
 * submitted. Any thread. Returns 0, -EINVAL (max_threads < 0), -ENOMEM. */
RELAY_API int relay_pool_create(const relay_pool_config *cfg, relay_pool **out);

/* The process's default pool, "relay-pool", one thread per CPU online,
 * created on first use. relay_main_shutdown (and relay_main_run) shut it
 * down with the other pools (one after the other, each within the
 * timeout it was given), then open it again for later use. Any thread.
 * NULL only on -ENOMEM. */
RELAY_API relay_pool *relay_pool_default(void);

/* Wait until no task is queued or running, at most timeout_ms (negative:
 * no limit). New tasks may still be submitted meanwhile. Refused with
 * RELAY_EDEADLOCK from a thread of this pool. Returns 0, -ETIMEDOUT,
 * -EINVAL (NULL). Any other thread. */
RELAY_API int relay_pool_wait_for_done(relay_pool *p, int timeout_ms);

/* End the pool's work within timeout_ms (negative: no limit): new
 * submissions are refused with -ESHUTDOWN, queued tasks finish with
 * -ECANCELED (not run), running ones are cancelled (their blocking calls
 * released) and waited for, then the threads end. Returns 0, or
 * -ETIMEDOUT with one diagnostic per thread still running a task (named).
 * May be called again to wait longer. Refused with RELAY_EDEADLOCK from a
 * thread of this pool. Any other thread. */
RELAY_API int relay_pool_shutdown(relay_pool *p, int timeout_ms);

/* Shut the pool down with no time limit (it waits for running tasks to
 * return: shut it down with a timeout first if one might not) and free
 * it. Not for relay_pool_default() (-EINVAL). Refused with
 * RELAY_EDEADLOCK from a thread of this pool. Any other thread. */
RELAY_API int relay_pool_destroy(relay_pool *p);

/* Counters, a snapshot. Any thread. */
typedef struct relay_pool_stats {
	int threads;          /* alive now */
	int idle;             /* of which waiting for a task */
	int peak_threads;
	uint64_t queued;      /* tasks waiting now (a map counts once per thread
			       * it may use) */
	uint64_t running;     /* the same, running now */
	uint64_t submitted;   /* tasks */
	uint64_t completed;   /* tasks ended, cancelled ones included */
	uint64_t cancelled;   /* of which with -ECANCELED (queued or running) */
	uint64_t threads_started;
} relay_pool_stats;
RELAY_API int relay_pool_stats_get(const relay_pool *p, relay_pool_stats *out);

/* What a task does and how it reports back. All callbacks but run are
 * optional (NULL). Fill it with RELAY_TASK_DEFINE, which checks the
 * functions' types at compile time, or by hand for bindings. */
typedef struct relay_task_ops {
	int (*run)(relay_task *task, void *data);                  /* a pool thread */
	void (*progress)(relay_object *context, void *data, const void *value);
	void (*finished)(relay_object *context, void *data, int status, const void *result);
	void (*free_data)(void *data);
	size_t progress_size, progress_align;   /* the progress value's type */
	size_t result_size, result_align;       /* the result's type */
	const relay_payload_ops *progress_ops;  /* copy/free hooks, or NULL */
	const relay_payload_ops *result_ops;
} relay_task_ops;

/* A task with no progress value or no result names relay_none as P or R. */
typedef relay__none relay_none;

/* RELAY_TASK_DEFINE(name, Ctx, Data, P, R, run, progress, finished,
 * free_data) defines `static const` task kind `name` for a context of
 * type Ctx (an object type), data of type Data, progress values of type P
 * and a result of type R. The functions must be, exactly (NULL for any
 * but run):
 *     int  run(relay_task *task, Data *data);
 *     void progress(Ctx *context, Data *data, const P *value);
 *     void finished(Ctx *context, Data *data, int status, const R *result);
 *     void free_data(Data *data);
 * each mistake is refused at compile time with a message naming it (GCC,
 * Clang). Submit with relay_task_submit(pool, &name, context, data, ...),
 * which checks context and data against Ctx and Data. */
#define RELAY_TASK_DEFINE(name, Ctx, Data, P, R, run, progress, finished, free_data) \
	RELAY__TASK_DEFINE(name, Ctx, Data, P, R, run, progress, finished, free_data)

/* Submit a task: run(task, data) on a thread of the pool (NULL: the
 * default pool), higher priority first, FIFO among equals (Qt's order).
 * ops must stay valid until the task is freed - after its end and after
 * relay_task_release: make it a static const, as RELAY_TASK_DEFINE does,
 * like a relay_class. Data must be a complete type.
 * context (may be NULL when the kind has neither progress nor finished:
 * free_data then runs in the pool thread after run, or in the thread that
 * cancels the task before it ran) receives the reports in its thread. *out (out may be NULL: nothing to wait for or cancel)
 * receives a handle, released with relay_task_release. Any thread.
 * Returns 0, -EINVAL (no run; a context-less task with callbacks),
 * -ENOMEM, -ESHUTDOWN (the pool is shut down), -EAGAIN (no thread could
 * be started and none runs), RELAY_EDESTROYED, RELAY_ENOTRUNNING (context
 * has no thread); on an error nothing was queued and the caller keeps
 * data. */
RELAY_API int relay_pool_submit(relay_pool *p, const relay_task_ops *ops, relay_object *context,
				void *data, int priority, relay_task **out);
#define relay_task_submit(pool, kind, context, data, priority, out) \
	relay_pool_submit((pool), RELAY__TASK_OPS(kind), RELAY__TASK_CTX(kind, context), \
			  RELAY__TASK_DATA(kind, data), (priority), (out))

/* ---- inside run (the pool thread running the task) ---- */

/* Whether the task has been cancelled: a relaxed load, cheap enough for an
 * inner loop. Any thread. */
RELAY_API bool relay_task_cancelled(const relay_task *task);

/* Report progress: *value (of the kind's P) is copied (with its copy hook)
 * into the task's latest value, replacing one not yet delivered (whose
 * copy is freed, and counted); one event is queued to the context only
 * when none is on its way. Never blocks. The thread running the task
 * only (RELAY_EWRONGTHREAD elsewhere). Returns 0, -EINVAL (the kind has
 * no progress), -ENOMEM (a copy or the event: the value is kept if it
 * was stored, and delivered before finished at the latest). */
RELAY_API int relay_task_progress(relay_task *task, const void *value);

/* Set the result passed to finished (copied with the kind's result hooks;
 * a second call replaces the first). The thread running the task only.
 * Returns 0, -EINVAL (the kind has no result), -ENOMEM. */
RELAY_API int relay_task_set_result(relay_task *task, const void *value);

/* The task the calling thread is running, or NULL. */
RELAY_API relay_task *relay_task_current(void);

/* ---- from any thread, through the handle ---- */

/* Cancel: a queued task is taken out of the queue and will finish with
 * -ECANCELED without running; a running one is flagged (its run polls
 * relay_task_cancelled) and its blocking call, if it is in one, released
 * with -ECANCELED; it will finish with -ECANCELED whatever run returns,
 * its result discarded. Returns 0 when the task's status is (or will be)
 * -ECANCELED (also when run had returned -ECANCELED itself), -EALREADY
 * when run had already returned anything else. Any thread. */
RELAY_API int relay_task_cancel(relay_task *task);

/* Wait until run has returned or will never run (the finished report may
 * still be on its way to the context), at most timeout_ms (negative: no
 * limit); *status (may be NULL) receives the task's status. It does not
 * run the task in the waiting thread (Qt's waitForFinished does: see
 * docs/design.md). Refused with RELAY_EWAITSELF from the task itself and
 * RELAY_EDEADLOCK from another thread of its pool. Returns 0 or
 * -ETIMEDOUT. Any other thread. */
RELAY_API int relay_task_wait(relay_task *task, int timeout_ms, int *status);

/* relay_task_cancel, then relay_task_wait: returns 0 only when run is not
 * running and never will (it had returned, it was taken out of the
 * queue, or it returned after the cancel), -ETIMEDOUT when it still runs
 * (flagged), RELAY_EWAITSELF, RELAY_EDEADLOCK. Any other thread. */
RELAY_API int relay_task_cancel_and_wait(relay_task *task, int timeout_ms);

/* Let go of the handle (the task goes on). NULL is ignored. Any thread. */
RELAY_API void relay_task_release(relay_task *task);

/* ---- QtConcurrent's conveniences ---- */

/* Run fn(data) on the pool and then(context, data, r) in context's thread,
 * r being fn's return value (any int), or -ECANCELED if it was cancelled
 * (before it ran, or while it ran: its value is then discarded); then
 * free_data(data) (may be NULL). With GCC and Clang the types
 * are checked: int fn(D *), void then(C *, D *, int), void free_data(D *)
 * for a context of type C * and data of type D *. Returns as
 * relay_pool_submit. */
#define relay_run(pool, context, fn, data, then, free_data, out) \
	RELAY__RUN(pool, context, fn, data, then, free_data, out)
RELAY_API int relay_pool_run(relay_pool *p, relay_object *context, int (*fn)(void *data),
			     void *data, void (*then)(relay_object *context, void *data, int result),
			     void (*free_data)(void *data), relay_task **out);

/* A parallel map: out[i] = item(&in[i]) for i < count, on the pool's
 * threads, in chunks; out's order is in's. Progress (items done) is
 * reported as the latest value; finished gets 0, the first error an item
 * returned (the rest are not started), or -ECANCELED. The arrays must
 * stay valid until finished has run (or the handle's wait returned). */
typedef struct relay_map_progress {
	size_t done, total;
} relay_map_progress;
typedef struct relay_map_ops {
	int (*item)(const void *in, void *out, void *user);   /* pool threads, concurrently */
	void (*progress)(relay_object *context, void *user, const relay_map_progress *p);
	void (*finished)(relay_object *context, void *user, int status);
	void (*free_user)(void *user);
	size_t chunk;         /* items per chunk; 0: about 8 chunks per thread */
} relay_map_ops;
/* in_size and out_size are the elements' sizes (relay_map passes
 * sizeof *in and sizeof *out). Returns as relay_pool_submit, and -EINVAL
 * for no item function or a size of 0. */
RELAY_API int relay_pool_map(relay_pool *p, const relay_map_ops *ops, relay_object *context,
			     const void *in, size_t in_size, void *out, size_t out_size,
			     size_t count, void *user, relay_task **task);
#define relay_map(pool, ops, context, in, out, count, user, task) \
	relay_pool_map((pool), (ops), RELAY__OBJ(context), (in), sizeof *(in), (out), \
		       sizeof *(out), (count), (user), (task))

/* ======================================================================
 * Private: the compile-time checks behind the macros above
 *
 * With GCC and Clang every mistake gets one diagnostic of its own.
 * Objects and payloads are checked by static assertions on their types
 * (each assertion fires for one mistake only, and a refused argument is
 * replaced by a null pointer so that no second error follows). A slot is
 * checked by an unevaluated call with the arguments relay will pass it (a
 * receiver pointer, then a pointer to the const payload), with the
 * compiler's warnings for mismatched arguments made errors around that
 * call only: the compiler then names the parameter and both types. A slot
 * that has exactly an accepted type is not called, so its check costs
 * nothing. Other compilers get no checks (the macros only convert).
 * Arguments are evaluated once, the sender of relay_connect and
 * relay_emit twice.
 * ====================================================================== */
#if defined(__GNUC__) || defined(__clang__)

#define RELAY__N(name, n) relay__##name##_##n
#define RELAY__KIND(T) __builtin_classify_type(*(T *)0)
#define RELAY__KIND_INT 1
#define RELAY__KIND_POINTER 5
#define RELAY__KIND_RECORD 12
#define RELAY__SAME(T, U) __builtin_types_compatible_p(T, U)
#define RELAY__ASSERT(c, msg) _Static_assert(__builtin_choose_expr((c), 1, 0), msg)
/* A slot returns void. GCC gives a call it refused (a slot with too many
 * parameters) the type int, so with GCC int is let through: one mistake,
 * one error. */
#if defined(__clang__)
#define RELAY__RETOK(T) RELAY__SAME(T, void)
#else
#define RELAY__RETOK(T) (RELAY__SAME(T, void) || RELAY__SAME(T, int))
#endif
#define RELAY__RETMSG "relay: a slot returns void (call a function that returns a " \
	"value from a void one)"
#define RELAY__NOTOBJ "relay: not an object: pass a relay_object *, or a pointer to a " \
	"struct whose first member is `relay_object base` (or a relay_thread, " \
	"relay_timer or object struct of yours, named base)"

/* Declares, in the enclosing block, relay__ok_<n>: p is an object. Every
 * typedef is of a valid type whatever p is, so that one mistake stops at
 * its own assertion; reading ->base of a struct without one is the only
 * error left to the compiler ("has no member named 'base'"). */
#define RELAY__OBJCHECK(p, n) \
	typedef __typeof__(_Generic((p), void *: (relay_object *)0, \
				    const void *: (const relay_object *)0, \
				    default: (p))) RELAY__N(t, n); \
	enum { RELAY__N(ptr, n) = RELAY__KIND(RELAY__N(t, n)) == RELAY__KIND_POINTER }; \
	RELAY__ASSERT(RELAY__N(ptr, n) || RELAY__KIND(RELAY__N(t, n)) != RELAY__KIND_INT, \
		      "relay: an object argument is a pointer (NULL for none, not 0)"); \
	RELAY__ASSERT(RELAY__N(ptr, n) || RELAY__KIND(RELAY__N(t, n)) != RELAY__KIND_RECORD, \
		      "relay: pass a pointer to the object (w), not the struct itself (*w)"); \
	RELAY__ASSERT(RELAY__N(ptr, n) || RELAY__KIND(RELAY__N(t, n)) == RELAY__KIND_INT || \
		      RELAY__KIND(RELAY__N(t, n)) == RELAY__KIND_RECORD, RELAY__NOTOBJ); \
	typedef __typeof__(*__builtin_choose_expr(RELAY__N(ptr, n), *(RELAY__N(t, n) *)0, \
						  (relay_object *)0)) RELAY__N(r, n); \
	enum { RELAY__N(rec, n) = RELAY__N(ptr, n) && \
				  RELAY__KIND(RELAY__N(r, n)) == RELAY__KIND_RECORD }; \
	RELAY__ASSERT(!RELAY__N(ptr, n) || RELAY__KIND(RELAY__N(r, n)) != RELAY__KIND_POINTER, \
		      "relay: pass the object pointer (w), not its address (&w)"); \
	RELAY__ASSERT(!RELAY__N(ptr, n) || RELAY__N(rec, n) || \
		      RELAY__KIND(RELAY__N(r, n)) == RELAY__KIND_POINTER, RELAY__NOTOBJ); \
	typedef __typeof__(__builtin_choose_expr(RELAY__N(rec, n), *(RELAY__N(r, n) *)0, \
						 *(relay_object *)0)) RELAY__N(s0, n); \
	typedef __typeof__(((RELAY__N(s0, n) *)0)->base) RELAY__N(s1, n); \
	enum { RELAY__N(rec1, n) = RELAY__KIND(RELAY__N(s1, n)) == RELAY__KIND_RECORD }; \
	typedef __typeof__(__builtin_choose_expr(RELAY__N(rec1, n), *(RELAY__N(s1, n) *)0, \
						 *(relay_object *)0)) RELAY__N(u1, n); \
	typedef __typeof__(((RELAY__N(u1, n) *)0)->base) RELAY__N(s2, n); \
	enum { RELAY__N(rec2, n) = RELAY__KIND(RELAY__N(s2, n)) == RELAY__KIND_RECORD }; \
	typedef __typeof__(__builtin_choose_expr(RELAY__N(rec2, n), *(RELAY__N(s2, n) *)0, \
						 *(relay_object *)0)) RELAY__N(u2, n); \
	typedef __typeof__(((RELAY__N(u2, n) *)0)->base) RELAY__N(s3, n); \
	enum { RELAY__N(ok, n) = RELAY__N(rec, n) && \
		(RELAY__SAME(RELAY__N(s0, n), relay_object) || \
		 (RELAY__N(rec1, n) && (RELAY__SAME(RELAY__N(s1, n), relay_object) || \
		  (RELAY__N(rec2, n) && (RELAY__SAME(RELAY__N(s2, n), relay_object) || \
					 RELAY__SAME(RELAY__N(s3, n), relay_object)))))) }; \
	RELAY__ASSERT(RELAY__N(ok, n) || !RELAY__N(rec, n), RELAY__NOTOBJ); \
	RELAY__ASSERT(!RELAY__N(ok, n) || (__builtin_offsetof(RELAY__N(s0, n), base) == 0 && \
					  __builtin_offsetof(RELAY__N(u1, n), base) == 0 && \
					  __builtin_offsetof(RELAY__N(u2, n), base) == 0), \
		      "relay: the base of an object must be the first member of its struct")

#define RELAY__OBJ(p) RELAY__OBJ_(p, __COUNTER__, void)
#define RELAY__COBJ(p) RELAY__OBJ_(p, __COUNTER__, const void)
#define RELAY__OBJ_(p, n, V) (__extension__ ({ \
	RELAY__OBJCHECK(p, n); \
	V *RELAY__N(v, n) = __builtin_choose_expr(RELAY__N(ok, n), (p), (void *)0); \
	(__typeof__(_Generic((V *)0, void *: (relay_object *)0, \
			     default: (const relay_object *)0)))RELAY__N(v, n); }))

/* out must be a T ** (relay_thread_create, relay_timer_create), or a
 * void * taken as it is. */
#define RELAY__OUT(out, T, fn) RELAY__OUT_(out, T, fn, __COUNTER__)
#define RELAY__OUT_(out, T, fn, n) (__extension__ ({ \
	enum { RELAY__N(ok, n) = _Generic((out), T **: 1, void *: 1, default: 0) }; \
	RELAY__ASSERT(RELAY__N(ok, n), #fn ": the last argument receives the new " #T \
		      ": pass the address of a " #T " * (&t)"); \
	__builtin_choose_expr(RELAY__N(ok, n), (out), (T **)0); }))

/* relay_object_new(&w, cls, parent): out must be the address of an object
 * pointer; the size is that of the object it points to. */
#define RELAY__NEW(out, cls, parent) RELAY__NEW_(out, cls, parent, __COUNTER__)
#define RELAY__NEW_(out, cls, parent, n) (__extension__ ({ \
	typedef __typeof__(out) RELAY__N(o, n); \
	enum { RELAY__N(pp, n) = RELAY__KIND(RELAY__N(o, n)) == RELAY__KIND_POINTER }; \
	typedef __typeof__(*__builtin_choose_expr(RELAY__N(pp, n), *(RELAY__N(o, n) *)0, \
						  (relay_object **)0)) RELAY__N(q, n); \
	enum { RELAY__N(addr, n) = RELAY__N(pp, n) && \
				   RELAY__KIND(RELAY__N(q, n)) == RELAY__KIND_POINTER }; \
	RELAY__ASSERT(RELAY__N(addr, n), "relay_object_new: pass the address of your object " \
		      "pointer: relay_object_new(&w, &w_class, parent)"); \
	typedef __typeof__(__builtin_choose_expr(RELAY__N(addr, n), *(RELAY__N(q, n) *)0, \
						 (relay_object *)0)) RELAY__N(p, n); \
	RELAY__OBJCHECK(*(RELAY__N(p, n) *)0, n); \
	relay_object_alloc(sizeof(*(RELAY__N(p, n))0), (cls), RELAY__OBJ(parent), \
			   __builtin_choose_expr(RELAY__N(addr, n) && RELAY__N(ok, n), \
						 (out), (void *)0)); }))

/* Argument mismatches in the slot checks are errors, whatever the flags. */
#if defined(__clang__)
#define RELAY__STRICT_BEGIN _Pragma("clang diagnostic push") \
	_Pragma("clang diagnostic error \"-Wincompatible-pointer-types\"") \
	_Pragma("clang diagnostic error \"-Wint-conversion\"")
#define RELAY__STRICT_END _Pragma("clang diagnostic pop")
#else
#define RELAY__STRICT_BEGIN _Pragma("GCC diagnostic push") \
	_Pragma("GCC diagnostic error \"-Wincompatible-pointer-types\"") \
	_Pragma("GCC diagnostic error \"-Wdiscarded-qualifiers\"") \
	_Pragma("GCC diagnostic error \"-Wint-conversion\"")
#define RELAY__STRICT_END _Pragma("GCC diagnostic pop")
#endif

/* The receiver's type as the slot sees it: a pointer (anything else was
 * refused by the object check already). */
#define RELAY__RTYPE(r) \
	__typeof__(__builtin_choose_expr(__builtin_classify_type(r) == RELAY__KIND_POINTER, \
					 (r), (void *)0))

/* The slot's arity (1: receiver only, 2: receiver and payload), checked:
 * slot(R *) and slot(relay_object *) fit every signal, slot(R *, const T *)
 * and slot(relay_object *, const T *) a signal carrying a T. */
#define RELAY__SLOT_ARITY(s, sig, r, slot) RELAY__SLOT_ARITY_(s, sig, r, slot, __COUNTER__)
#define RELAY__SLOT_ARITY_(s, sig, r, slot, n) (__extension__ ({ \
	typedef __typeof__(*(s)->sig.relay__arg) RELAY__N(T, n); \
	typedef RELAY__RTYPE(r) RELAY__N(R, n); \
	enum { RELAY__N(none, n) = RELAY__SAME(RELAY__N(T, n), relay__none), \
	       RELAY__N(one, n) = _Generic((slot), void (*)(RELAY__N(R, n)): 1, default: 0) || \
				  _Generic((slot), void (*)(relay_object *): 1, default: 0), \
	       RELAY__N(two, n) = \
		       _Generic((slot), void (*)(RELAY__N(R, n), const RELAY__N(T, n) *): 1, \
				default: 0) || \
		       _Generic((slot), void (*)(relay_object *, const RELAY__N(T, n) *): 1, \
				default: 0) }; \
	/* named for the compiler's message: "passing relay_slot_receiver */ \
	/* (aka window *) to parameter of type ..." */ \
	typedef RELAY__N(R, n) relay_slot_receiver; \
	typedef RELAY__N(T, n) relay_signal_payload; \
	RELAY__STRICT_BEGIN \
	typedef __typeof__((__builtin_choose_expr(RELAY__N(one, n) || !RELAY__N(none, n), \
						  (void (*)(RELAY__N(R, n)))0, (slot))) \
			   ((relay_slot_receiver)0)) RELAY__N(ret1, n); \
	typedef __typeof__((__builtin_choose_expr( \
			RELAY__N(one, n) || RELAY__N(two, n) || RELAY__N(none, n), \
			(void (*)(RELAY__N(R, n), const RELAY__N(T, n) *))0, (slot))) \
		((relay_slot_receiver)0, (const relay_signal_payload *)0)) RELAY__N(ret2, n); \
	RELAY__STRICT_END \
	RELAY__ASSERT(RELAY__RETOK(RELAY__N(ret1, n)) && RELAY__RETOK(RELAY__N(ret2, n)), \
		      RELAY__RETMSG); \
	RELAY__N(none, n) || RELAY__N(one, n) ? 1 : 2; }))

/* A slot that takes the receiver only (relay_single_shot). */
#define RELAY__SLOT1(r, slot) RELAY__SLOT1_(r, slot, __COUNTER__)
#define RELAY__SLOT1_(r, slot, n) (__extension__ ({ \
	typedef RELAY__RTYPE(r) RELAY__N(R, n); \
	enum { RELAY__N(one, n) = _Generic((slot), void (*)(RELAY__N(R, n)): 1, default: 0) || \
				  _Generic((slot), void (*)(relay_object *): 1, default: 0) }; \
	typedef RELAY__N(R, n) relay_slot_receiver; \
	RELAY__STRICT_BEGIN \
	typedef __typeof__((__builtin_choose_expr(RELAY__N(one, n), \
						  (void (*)(RELAY__N(R, n)))0, (slot))) \
			   ((relay_slot_receiver)0)) RELAY__N(ret, n); \
	RELAY__STRICT_END \
	RELAY__ASSERT(RELAY__RETOK(RELAY__N(ret, n)), RELAY__RETMSG); \
	(relay_slot_fn)(slot); }))

/* relay_emit(obj, signal): the signal must carry no payload. */
#define RELAY__NOARG(s, sig) (__extension__ ({ \
	RELAY__ASSERT(RELAY__SAME(__typeof__(*(s)->sig.relay__arg), relay__none), \
		      "relay_emit: this signal carries a payload: relay_emit(obj, signal, &value)"); \
	(size_t)0; }))

/* relay_emit(obj, signal, &value): a T * or const T * for a signal of T. */
#define RELAY__PAYLOAD(s, sig, p) RELAY__PAYLOAD_(s, sig, p, __COUNTER__)
#define RELAY__PAYLOAD_(s, sig, p, n) (__extension__ ({ \
	typedef __typeof__(*(s)->sig.relay__arg) RELAY__N(T, n); \
	enum { RELAY__N(none, n) = RELAY__SAME(RELAY__N(T, n), relay__none), \
	       RELAY__N(ptr, n) = __builtin_classify_type(p) == RELAY__KIND_POINTER, \
	       RELAY__N(ok, n) = _Generic((p), RELAY__N(T, n) *: 1, \
					  const RELAY__N(T, n) *: 1, default: 0) }; \
	RELAY__ASSERT(!RELAY__N(none, n), \
		      "relay_emit: this signal carries no payload: relay_emit(obj, signal)"); \
	RELAY__ASSERT(RELAY__N(none, n) || RELAY__N(ptr, n), \
		      "relay_emit: pass the address of the payload: relay_emit(obj, signal, &value)"); \
	RELAY__ASSERT(RELAY__N(none, n) || !RELAY__N(ptr, n) || RELAY__N(ok, n), \
		      "relay_emit: the payload type does not match the signal"); \
	(const void *)__builtin_choose_expr(RELAY__N(ok, n), (p), (const void *)0); }))

/* Task kinds: each function is checked against the type it must have (a
 * function name or NULL, where NULL is allowed), in a constant expression
 * (the assertion sits in a struct whose size is taken), so that the kind
 * can be a static const. */
#define RELAY__TASKFN(f, T, null_ok, msg) \
	__builtin_choose_expr(sizeof(struct { \
		_Static_assert(_Generic(1 ? (f) : (f), T: 1, void *: (null_ok), default: 0), msg); \
		char relay__c; }), (f), 0)
#define RELAY__TASK_CTX(kind, c) (__extension__ ({ \
	RELAY__ASSERT(_Generic((c), __typeof__(1 ? (kind)->relay__ctx : (kind)->relay__ctx): 1, void *: 1, default: 0), \
		      "relay_task_submit: the context is not of the context type of the task kind"); \
	RELAY__OBJ(c); }))
#define RELAY__TASK_DATA(kind, d) (__extension__ ({ \
	RELAY__ASSERT(_Generic((d), __typeof__(1 ? (kind)->relay__data : (kind)->relay__data): 1, void *: 1, default: 0), \
		      "relay_task_submit: the data is not of the data type of the task kind"); \
	(void *)(d); }))
#define RELAY__RUN(pool, context, fn, data, then, free_data, out) \
	RELAY__RUN_(pool, context, fn, data, then, free_data, out, __COUNTER__)
#define RELAY__RUN_(pool, context, fn, data, then, free_data, out, n) (__extension__ ({ \
	typedef __typeof__(data) RELAY__N(D, n); \
	typedef RELAY__RTYPE(context) RELAY__N(C, n); \
	RELAY__ASSERT(_Generic(1 ? (fn) : (fn), int (*)(RELAY__N(D, n)): 1, default: 0), \
		      "relay_run: fn must be int fn(D *data), D * being the type of data"); \
	RELAY__ASSERT(_Generic(1 ? (then) : (then), \
			       void (*)(RELAY__N(C, n), RELAY__N(D, n), int): 1, \
			       void *: 1, default: 0), \
		      "relay_run: then must be void then(C *context, D *data, int result), " \
		      "C * being the type of context and D * that of data"); \
	RELAY__ASSERT(_Generic(1 ? (free_data) : (free_data), void (*)(RELAY__N(D, n)): 1, \
			       void *: 1, default: 0), \
		      "relay_run: free_data must be void free_data(D *data), or NULL"); \
	relay_pool_run((pool), RELAY__OBJ(context), (int (*)(void *))(fn), (void *)(data), \
		       (void (*)(relay_object *, void *, int))(then), \
		       (void (*)(void *))(free_data), (out)); }))

#else /* neither GCC nor Clang: no checks */

#define RELAY__OBJ(p) ((relay_object *)(p))
#define RELAY__COBJ(p) ((const relay_object *)(p))
#define RELAY__OUT(out, T, fn) (out)
#define RELAY__NEW(out, cls, parent) \
	relay_object_alloc(sizeof **(out), (cls), RELAY__OBJ(parent), (out))
#define RELAY__SLOT_ARITY(s, sig, r, slot) (RELAY__ARGSIZE(s, sig) ? 2 : 1)
#define RELAY__SLOT1(r, slot) ((relay_slot_fn)(slot))
#define RELAY__NOARG(s, sig) ((size_t)0)
#define RELAY__PAYLOAD(s, sig, p) ((const void *)(p))

#define RELAY__TASKFN(f, T, null_ok, msg) (f)
#define RELAY__TASK_CTX(kind, c) ((relay_object *)(c))
#define RELAY__TASK_DATA(kind, d) ((void *)(d))
#define RELAY__RUN(pool, context, fn, data, then, free_data, out) \
	relay_pool_run((pool), (relay_object *)(context), (int (*)(void *))(fn), (void *)(data), \
		       (void (*)(relay_object *, void *, int))(then), \
		       (void (*)(void *))(free_data), (out))

#endif

/* A task kind: the ops, and the context and data types for the checks of
 * relay_task_submit (the pointers are never read or written). */
#define RELAY__TASK_OPS(kind) (&(kind)->relay__ops)
#define RELAY__TASK_DEFINE(name, Ctx, Data, P, R, f_run, f_progress, f_finished, f_free) \
	static const union { \
		relay_task_ops relay__ops; \
		Ctx *relay__ctx; \
		Data *relay__data; \
	} name = { { \
		.run = (int (*)(relay_task *, void *))RELAY__TASKFN(f_run, \
			int (*)(relay_task *, Data *), 0, "RELAY_TASK_DEFINE(" #name "): run " \
			"must be int " #f_run "(relay_task *task, " #Data " *data)"), \
		.progress = (void (*)(relay_object *, void *, const void *))RELAY__TASKFN( \
			f_progress, void (*)(Ctx *, Data *, const P *), 1, \
			"RELAY_TASK_DEFINE(" #name "): progress must be void " #f_progress \
			"(" #Ctx " *context, " #Data " *data, const " #P " *value), or NULL"), \
		.finished = (void (*)(relay_object *, void *, int, const void *))RELAY__TASKFN( \
			f_finished, void (*)(Ctx *, Data *, int, const R *), 1, \
			"RELAY_TASK_DEFINE(" #name "): finished must be void " #f_finished \
			"(" #Ctx " *context, " #Data " *data, int status, const " #R \
			" *result), or NULL"), \
		.free_data = (void (*)(void *))RELAY__TASKFN(f_free, void (*)(Data *), 1, \
			"RELAY_TASK_DEFINE(" #name "): free_data must be void " #f_free \
			"(" #Data " *data), or NULL"), \
		.progress_size = sizeof(P), .progress_align = _Alignof(P), \
		.result_size = sizeof(R), .result_align = _Alignof(R), \
		.progress_ops = NULL, .result_ops = NULL } }


#ifdef __cplusplus
}
#endif
#endif /* RELAY_H */
