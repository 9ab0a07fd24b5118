/*
 * internal.h - private declarations shared by relay's sources (relay__*).
 *
 * Lock order (take in this order, release in any order; never call user
 * code while holding any of them):
 *   1. object locks   relay__objlock(obj): a fixed table of striped mutexes
 *                     keyed by object address (as Qt's signalSlotLock);
 *                     two of them are taken lowest index first.
 *   2. queue locks    loop->q.lock of a thread record; two of them lowest
 *                     address first (only move_to_thread takes two).
 *   3. the connection registry lock (signal.c), the thread list lock
 *      (thread.c), leaf locks.
 */
#ifndef RELAY_INTERNAL_H
#define RELAY_INTERNAL_H

#include "relay.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/types.h>

#include "queue.h"

/* ---- per-thread state ----
 * One thread-local block, so a hot path computes one TLS address. The
 * initial-exec model avoids __tls_get_addr calls in the shared library
 * (glibc keeps static TLS room for libraries like this one, as for
 * jemalloc or LTTng). */
#if defined(__GNUC__) || defined(__clang__)
#define RELAY__TLS_MODEL __attribute__((tls_model("initial-exec")))
#else
#define RELAY__TLS_MODEL
#endif
#if defined(__GNUC__) || defined(__clang__)
#define RELAY__NOINLINE __attribute__((noinline))
#else
#define RELAY__NOINLINE
#endif
#define RELAY__CACHE_SLOTS 16
struct relay__tls {
	struct relay__tdata *self;        /* the calling thread's record (thread.c) */
	relay_object *sender;             /* relay_sender() (signal.c) */
	int emit_depth;                   /* nested emissions (signal.c) */
	struct relay__snap *graveyard;    /* snapshots to release (signal.c) */
	struct relay__snap *cache[RELAY__CACHE_SLOTS];  /* emit snapshot cache */
};
extern _Thread_local struct relay__tls relay__tls RELAY__TLS_MODEL;

/* ---- allocation (alloc.c) ---- */
void *relay__alloc(size_t size);
void *relay__calloc(size_t size);
void relay__free(void *p);

/* ---- diagnostics (diag.c) ---- */
/* Reports one line (printf format) through the handler; returns code. */
int relay__diag(int code, const char *fmt, ...)
#if defined(__GNUC__)
	__attribute__((format(printf, 2, 3)))
#endif
	;
/* "name (class) in thread 'x'" for diagnostics. */
const char *relay__describe(const relay_object *obj, char *buf, size_t size);

/* ---- time ---- */
uint64_t relay__now_ns(void);   /* CLOCK_MONOTONIC */

/* ---- object flags (relay_object.relay__flags) ---- */
enum {
	RELAY__OBJ_OWNED_MEMORY = 1u << 0,   /* from relay_object_new: relay frees */
	RELAY__OBJ_DESTROYING = 1u << 1,
	RELAY__OBJ_BLOCKED = 1u << 2,        /* signals blocked */
	RELAY__OBJ_DELETE_PENDING = 1u << 3, /* delete_later posted */
	RELAY__OBJ_IS_THREAD = 1u << 4,      /* a relay_thread handle */
	RELAY__OBJ_IS_TIMER = 1u << 5,
	RELAY__OBJ_IN_TRANSIT = 1u << 6      /* move_to_thread in progress */
};

/* Lazily allocated part of an object: what most objects never need.
 * Guarded by relay__objlock(obj). */
struct relay__objext {
	char name[64];
	struct relay__weakblock *weak;   /* shared with relay_weak and events */
	struct relay__conn *incoming;    /* connections whose receiver is obj */
	struct relay__conn *outgoing;    /* connections whose sender is obj */
};

/* Weak reference control block. obj is cleared (under the object lock)
 * when the object is destroyed; refs counts holders (object + weaks +
 * events). */
struct relay__weakblock {
	_Atomic(relay_object *) obj;
	atomic_int refs;
};

pthread_mutex_t *relay__objlock(const void *obj);
void relay__lock2(pthread_mutex_t *a, pthread_mutex_t *b);
void relay__unlock2(pthread_mutex_t *a, pthread_mutex_t *b);

/* Returns obj's ext, allocating it; NULL on ENOMEM. Object lock held. */
struct relay__objext *relay__ext_locked(relay_object *obj);
/* Returns obj's weak block with a reference taken for the caller, or NULL
 * on ENOMEM or when obj is being destroyed. */
struct relay__weakblock *relay__weak_acquire(relay_object *obj);
void relay__weak_release(struct relay__weakblock *b);

static inline struct relay__tdata *relay__obj_thread(const relay_object *obj)
{
	return atomic_load_explicit(&((relay_object *)obj)->relay__thread,
				    memory_order_acquire);
}

/* ---- connections (signal.c) ---- */
struct relay__conn {
	atomic_int refs;
	atomic_bool alive;          /* cleared by disconnect / receiver destroy */
	atomic_bool taken;          /* single-shot: the emit that took it */
	bool linked;                /* in sender's and receiver's lists; object locks */
	relay_connection id;
	relay_signal *signal;       /* valid while linked */
	relay_object *sender;       /* valid while linked */
	relay_object *receiver;     /* receiver or context; NULL: direct func */
	relay_slot_fn fn;
	void *data;                 /* first argument for func connections */
	int arity;                  /* 1 or 2 */
	bool is_func;
	bool auto_plain;            /* RELAY_AUTO, not single-shot: the emit fast path */
	void *first;                /* the slot's first argument: receiver or data */
	relay_connection_type type;
	unsigned flags;
	size_t argsize;
	const relay_payload_ops *ops;
	/* receiver's thread, a counted reference, swapped on move under the
	 * receiver's object lock; the emit path reads it without a lock only
	 * to compare it with the emitting thread. */
	struct relay__tdata *_Atomic rthread;
	/* the receiver's life: its weak block, cleared when it is destroyed
	 * (NULL for a direct function connection without context) */
	struct relay__weakblock *rweak;
	struct relay__conn *reg_next;             /* registry bucket (signal.c) */
	struct relay__conn *in_prev, *in_next;    /* receiver's incoming list */
	struct relay__conn *out_prev, *out_next;  /* sender's outgoing list */
};
void relay__conn_ref(struct relay__conn *c);
void relay__conn_unref(struct relay__conn *c);
void relay__conn_ref_n(struct relay__conn *c, uint32_t n);
void relay__conn_unref_n(struct relay__conn *c, uint32_t n);
/* Calls the slot with the connection's arity; sets relay_sender(). */
/* relay__slot_call, relay__conn_call: inline, at the end of this file. */
/* Object destruction: cut incoming (kill), unlink outgoing (queued events
 * still arrive). Owner thread. */
void relay__object_cut_connections(relay_object *obj);
/* Counts an event for c that was freed undelivered (receiver gone). */
void relay__conn_count_drop(struct relay__conn *c);
/* move_to_thread: retarget obj's incoming connections. Object lock held. */
void relay__conns_retarget_locked(relay_object *obj, struct relay__tdata *to);
/* The calling thread ends or idles: release its emit cache. */
void relay__signal_thread_exit(void);
/* Thread-local sender for relay_sender(). */
static inline relay_object *relay__set_sender(relay_object *sender)
{
	relay_object *prev = relay__tls.sender;
	relay__tls.sender = sender;
	return prev;
}

/* ---- events and loops (loop.c) ---- */
enum relay__event_kind {
	RELAY__EV_SLOT,        /* queued slot call: conn + payload */
	RELAY__EV_INVOKE,      /* relay_invoke / blocking invoke */
	RELAY__EV_DELETE,      /* delete_later */
	RELAY__EV_TIMER_ARM,   /* a moved timer re-arms in its new thread */
	RELAY__EV_SINGLE_SHOT  /* arm a single shot in the receiver's thread */
};

/* A blocking call's outcome, shared by the waiter and its event. Whoever
 * claims it first decides: the receiving thread (runs the call, or
 * releases it undelivered) or the waiter (gives up because the thread
 * stopped: the event, met later, is then skipped). */
struct relay__completion {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool done;              /* guarded by lock */
	int status;             /* 0 delivered, RELAY_ENOTDELIVERED dropped */
	int result;             /* invoke_blocking's return value */
	atomic_bool claimed;
	atomic_int refs;        /* the waiter's and the event's */
};
struct relay__completion *relay__completion_new(void);
bool relay__completion_claim(struct relay__completion *c);
/* By the claimer only: wakes the waiter. */
void relay__completion_signal(struct relay__completion *c, int status, int result);
int relay__completion_wait(struct relay__completion *c);
void relay__completion_unref(struct relay__completion *c);
/* Posts a blocking event to obj's thread and waits; returns its status
 * (RELAY_ENOTRUNNING: refused or given up; RELAY_ENOTDELIVERED). */
int relay__post_blocking(relay_object *obj, struct relay__event *ev, int *result);

struct relay__event {
	struct relay__event *next;       /* queue link */
	enum relay__event_kind kind;
	relay_object *target;            /* who the event is for (for moves) */
	relay_object *sender;            /* SLOT: for relay_sender() */
	struct relay__conn *conn;        /* SLOT: counted */
	struct relay__weakblock *weak;   /* non-SLOT kinds: the target, counted */
	struct relay__completion *done;  /* blocking: a counted reference */
	union {
		/* call must stay a prefix-compatible subset of invoke: free_data
		 * is zero for blocking calls. */
		struct { void (*fn)(void *); void *data; void (*free_data)(void *); } invoke;
		struct { int (*fn)(void *); void *data; } call;
		struct { relay_slot_fn slot; int ms; } shot;
		struct relay__timerdata *timer;
	} u;
	uint64_t posted_ns;
	size_t argsize;
	bool payload_live;               /* payload holds a copy to free */
	_Alignas(max_align_t) unsigned char payload[];   /* inline copy */
};
struct relay__event *relay__event_new(enum relay__event_kind kind, size_t argsize);
/* Frees the event: payload free hook, references, completion released
 * with `status` if it is still waiting. */
void relay__event_free(struct relay__event *ev, int status);

/* Thread state (relay__tdata.state). */
enum relay__tstate {
	RELAY__T_NEW,        /* created, never started */
	RELAY__T_STARTING,   /* pthread_create done, before the loop */
	RELAY__T_RUNNING,
	RELAY__T_FINISHING,  /* loop returned, deferred deletions running */
	RELAY__T_FINISHED,   /* may be started again */
	RELAY__T_GONE        /* handle destroyed / adopted thread exited */
};

/* How relay__post_to_object treats a thread that is not running. */
enum relay__post_mode {
	RELAY__POST_ALWAYS,   /* queue it; it runs when the loop runs */
	RELAY__POST_SERVING,  /* blocking call: refuse unless a loop serves it */
	RELAY__POST_LIVE      /* delete_later: refuse a finished thread */
};

struct relay__timerheap {
	struct relay__timerdata **items;
	size_t count, cap;
	uint64_t seq;      /* insertion counter: equal deadlines fire FIFO */
	uint64_t round;    /* pass counter: a timer fires at most once a pass */
};

/* A thread record: one per OS thread known to relay (and one per
 * relay_thread handle, started or not). Reference counted: the handle, the
 * objects living in it and connections to them hold references. */
struct relay__tdata {
	atomic_int refs;
	relay_thread *handle;            /* the handle (adopted threads: internal) */
	char name[16];
	pthread_t pthread;
	pid_t os_tid;
	bool is_main, adopted, joinable;
	_Atomic int state;               /* relay__tstate */
	atomic_bool interrupt;
	atomic_bool exit_pending;        /* quit/exit requested, not yet taken */
	atomic_int exit_code;
	relay__queue q;                  /* posted events (queue.c) */
	relay__producer prod;            /* this thread's rings to others (own thread) */
	atomic_uint_fast64_t reaped_posts; /* posts of rings freed since (queue.c) */
	int delivering;                  /* ring deliveries in progress (nesting) */
	uint64_t trimmed_ns;             /* last idle trim (loop.c) */
	struct relay__conn *unref_conn;  /* batched reference returns (loop.c) */
	uint32_t unref_n;
	/* owner thread only: */
	struct relay__event *batch;      /* the pass being delivered */
	atomic_int loop_depth;           /* nested relay_loop_run (read by others) */
	atomic_bool pumps;               /* adopted: has run a loop pass, not exited */
	struct relay__timerheap timers;
	int epfd;
	/* other threads destroying objects of this finished thread (T4):
	 * recursive, as a destructor may delete_later its siblings */
	pthread_mutex_t foreign_lock;
	/* finishing: guarded by done_lock */
	pthread_mutex_t done_lock;
	pthread_cond_t done_cond;
	/* counters (relaxed atomics) */
	atomic_uint_fast64_t posted, delivered, dropped, wakeups, passes, timers_fired;
	struct relay__tdata *next_all;   /* list of all records (thread.c) */
};

struct relay__tdata *relay__tdata_adopt(void);     /* first call in a thread */
/* The calling thread's record (adopting the thread); NULL on ENOMEM. */
static inline struct relay__tdata *relay__tdata_current(void)
{
	struct relay__tdata *t = relay__tls.self;
	return t ? t : relay__tdata_adopt();
}
struct relay__tdata *relay__tdata_main(void);
void relay__tdata_ref(struct relay__tdata *t);
void relay__tdata_unref(struct relay__tdata *t);
static inline bool relay__tdata_is_current(const struct relay__tdata *t)
{
	return t && relay__tls.self == t;
}
/* True when a blocking call into t can be served. */
bool relay__tdata_serves(struct relay__tdata *t);
/* True while t's own thread may be delivering its events (not NEW,
 * FINISHED or GONE): then only t itself may touch its batch. */
bool relay__tdata_loops(struct relay__tdata *t);
int relay__tdata_init(struct relay__tdata *t);
/* The thread's end: deferred deletions, `finished`, then FINISHED. */
void relay__thread_finish(struct relay__tdata *t, bool emit_finished);
/* Whether obj (a thread handle) may be destroyed now. */
int relay__thread_check_destroy(relay_object *obj);
extern const relay_class relay__thread_class;

/* Post ev to the thread obj lives in (re-read under its locks). Returns 0,
 * or a negative code and frees nothing (the caller frees). When
 * require_serving is set, refuses with RELAY_ENOTRUNNING a thread that
 * cannot serve a blocking call. */
int relay__post_to_object(relay_object *obj, struct relay__event *ev, enum relay__post_mode mode);
/* Dispatch one event (in its target's thread). */
void relay__dispatch(struct relay__tdata *self, struct relay__event *ev);
/* One loop pass; returns the number of things handled or < 0. */
int relay__loop_pass(struct relay__tdata *self, int timeout_ms);
/* Runs until exit_pending; returns the exit code. */
int relay__loop_run(struct relay__tdata *self);
/* Wakes t's loop if it sleeps. Any thread. */
void relay__loop_wake(struct relay__tdata *t);
/* Runs deferred deletions queued for this thread (and drops nothing). */
int relay__run_deferred_deletes(struct relay__tdata *self);
/* Moves obj's (and children's) pending events from `from` to `to`, in
 * order, after the affinity changed, and ends the tree's transit: the flag
 * is cleared under to's queue lock, so `to` can take the moved events only
 * once the move is over. `from` is the calling thread. */
void relay__move_events(struct relay__tdata *from, struct relay__tdata *to, relay_object *obj);
/* Drops every event left for a thread record that goes away: deferred
 * deletions still run (in the calling thread), blocking posters are
 * released, the rest is freed and counted. */
void relay__drain_on_teardown(struct relay__tdata *t);
/* At a thread's end: releases blocking posters queued to t and frees the
 * events that can no longer be delivered (dead connection or target). */
void relay__release_blocking(struct relay__tdata *t);
/* Drops (frees and counts) the events queued to self for obj. Owner. */
void relay__purge_events(struct relay__tdata *self, relay_object *obj);

/* ---- objects (object.c) ---- */
/* Sets or clears a flag on obj and its descendants (clear: release). */
void relay__tree_set_flag(relay_object *obj, unsigned flag, bool on);
/* true if obj is obj2 or one of its descendants. Owner thread. */
bool relay__is_in_tree(const relay_object *obj, const relay_object *root);
/* Destroy without the thread check (thread gone, teardown). */
int relay__object_destroy_unchecked(relay_object *obj);
/* The same from a thread other than obj's (its thread has finished), under
 * the home record's foreign lock. */
int relay__destroy_foreign(relay_object *obj);

/* ---- timers (timer.c) ---- */
struct relay__timerdata {
	relay_timer *owner;          /* NULL for a single shot */
	struct relay__tdata *armed_in;  /* heap it sits in, or NULL */
	size_t heap_index;
	uint64_t deadline_ns;
	uint64_t seq, round;
	atomic_int interval_ms;     /* written by the owner, read by anyone */
	atomic_bool single_shot;
	atomic_bool active;
	/* single shot: */
	struct relay__weakblock *weak;
	relay_slot_fn slot;
};
/* Heap of deadlines, owner thread only. */
int relay__heap_push(struct relay__timerheap *h, struct relay__timerdata *t);
void relay__heap_remove(struct relay__timerheap *h, struct relay__timerdata *t);
struct relay__timerdata *relay__heap_top(const struct relay__timerheap *h);
void relay__heap_free(struct relay__timerheap *h);
/* Fires due timers; returns how many. Owner thread. */
int relay__timers_run(struct relay__tdata *self, uint64_t now);
/* ms until the next deadline, -1 if none (capped at INT_MAX). */
int relay__timers_timeout(struct relay__tdata *self, uint64_t now);
/* move_to_thread: un-arm obj's timers (tree) in `from`, post re-arm
 * events to `to`. Called in from's thread, queue locks NOT held. */
void relay__timers_move(relay_object *obj, struct relay__tdata *to);
void relay__timer_arm_event(struct relay__tdata *self, struct relay__event *ev);
void relay__single_shot_event(struct relay__tdata *self, struct relay__event *ev);
void relay__single_shot_free(struct relay__timerdata *td);
/* Teardown: free every heap entry (single shots are dropped). */
void relay__timers_teardown(struct relay__tdata *t);

/* ---- poller (poll_epoll.c) ---- */
int relay__poll_init(struct relay__tdata *t);
void relay__poll_close(struct relay__tdata *t);
/* Sleeps up to timeout_ms (-1: forever); returns 0 or < 0. Reading the
 * wake-up fd happens inside. */
int relay__poll_wait(struct relay__tdata *t, int timeout_ms);

/* Slots are stored as relay_slot_fn and called through the type they were
 * checked against at connect (as G_CALLBACK does): the receiver (or data)
 * and the payload are passed as pointers. Inline: every delivery and every
 * direct emit goes through here. */
static inline void relay__slot_call(const struct relay__conn *c, const void *arg)
{
	if (c->arity == 1)
		((void (*)(void *))c->fn)(c->first);
	else
		((void (*)(void *, const void *))c->fn)(c->first, arg);
}

static inline void relay__conn_call(struct relay__conn *c, relay_object *sender,
				    const void *arg)
{
	relay_object *prev = relay__set_sender(sender);
	relay__slot_call(c, arg);
	relay__set_sender(prev);
}

#endif
