/*
 * internal.h - private declarations shared by relay's sources (relay__*).
 *
 * Lock order (take in this order, release in any order; never call user
 * code - slots, hooks, finalizers, the allocator - while holding any of
 * them, nor inside a section, grace.h):
 *   1. object locks   relay__objlock(obj): a fixed table of striped mutexes
 *                     keyed by object address (as Qt's signalSlotLock);
 *                     two of them are taken lowest index first. They guard
 *                     an object's ext part (name, connection lists).
 *   2. queue locks    t->q.lock of a thread record (state changes, the
 *                     moved list, ring registration); two of them never.
 *   3. leaf locks     the connection registry (signal.c), the thread list
 *                     (thread.c), the grace registry (grace.c), the
 *                     diagnostics handler, a completion's lock.
 * The allocator is called under no lock; where a structure must be
 * allocated for a locked step, it is allocated before and freed after.
 */
#ifndef RELAY_INTERNAL_H
#define RELAY_INTERNAL_H

#include "relay.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/types.h>

#include "grace.h"
#include "queue.h"

#if defined(__GNUC__) || defined(__clang__)
#define RELAY__TLS_MODEL __attribute__((tls_model("initial-exec")))
#define RELAY__NOINLINE __attribute__((noinline))
#define RELAY__ALWAYS_INLINE inline __attribute__((always_inline))
#define RELAY__LIKELY(x) __builtin_expect(!!(x), 1)
#define RELAY__UNLIKELY(x) __builtin_expect(!!(x), 0)
#else
#define RELAY__TLS_MODEL
#define RELAY__NOINLINE
#define RELAY__ALWAYS_INLINE inline
#define RELAY__LIKELY(x) (x)
#define RELAY__UNLIKELY(x) (x)
#endif

/* ---- per-thread state ----
 * One thread-local block, so a hot path computes one TLS address. The
 * initial-exec model avoids __tls_get_addr calls in the shared library
 * (glibc keeps static TLS room for libraries like this one, as for
 * jemalloc or LTTng). */
#define RELAY__CACHE_SLOTS 16
struct relay__emission;
struct relay__tls {
	struct relay__tdata *self;        /* the calling thread's record (thread.c) */
	relay_object *sender;             /* relay_sender() (signal.c) */
	struct relay__emission *emission; /* innermost emission running here (signal.c) */
	struct relay__tdata *serving;     /* stopped loop this thread serves (loop.c) */
	struct relay__worker *worker;     /* this thread is a pool's (pool.c) */
	struct relay_task *task;          /* the task it runs now (pool.c) */
	struct relay__snap *cache[RELAY__CACHE_SLOTS];  /* emit snapshot cache */
};
extern _Thread_local struct relay__tls relay__tls RELAY__TLS_MODEL;

/* ---- allocation (alloc.c) ---- */
void *relay__alloc(size_t size);
void *relay__calloc(size_t size);
void relay__free(void *p);
/* Blocks aligned beyond what the allocator promises (16): over-allocated,
 * the original pointer kept just before the block. */
void *relay__calloc_aligned(size_t size, size_t align);
void relay__free_aligned(void *p);

/* ---- diagnostics (diag.c) ---- */
/* Reports one line (printf format) through the handler; returns code. */
int relay__diag(int code, const char *fmt, ...)
#if defined(__GNUC__)
	__attribute__((format(printf, 2, 3)))
#endif
	;
/* "object 'name' (thread 'x')" for diagnostics. */
const char *relay__describe(const relay_object *obj, char *buf, size_t size);

/* ---- time ---- */
uint64_t relay__now_ns(void);   /* CLOCK_MONOTONIC */

/* ---- object flags (relay_object.relay__flags) ---- */
enum {
	RELAY__OBJ_OWNED_MEMORY = 1u << 0,   /* from relay_object_new: relay frees */
	RELAY__OBJ_DESTROYING = 1u << 1,     /* set for good once destroy begins */
	RELAY__OBJ_BLOCKED = 1u << 2,        /* signals blocked */
	RELAY__OBJ_DELETE_PENDING = 1u << 3, /* delete_later asked, not yet run */
	RELAY__OBJ_IS_THREAD = 1u << 4,      /* a relay_thread handle */
	RELAY__OBJ_IS_TIMER = 1u << 5,
	RELAY__OBJ_IS_WATCHER = 1u << 6
};

/* Lazily allocated part of an object: what most objects never need.
 * Guarded by relay__objlock(obj). */
struct relay__objext {
	char name[64];
	struct relay__conn *incoming;    /* connections whose receiver is obj */
	struct relay__conn *outgoing;    /* connections whose sender is obj */
};

/* ---- anchors (anchor.c) ----
 * Every object has one, from init: what outlives the object and answers,
 * for any thread holding a reference, "is it alive, and where does it
 * live" without touching the object's memory. Events, weak references and
 * connections hold anchors, never bare object pointers they would have to
 * check. `home` is the single source of "where": every post reads it (in a
 * section), owner-thread checks read it, move_to_thread changes it. */
#define RELAY__HOME_TRANSIT ((uintptr_t)1)
struct relay__anchor {
	_Atomic(relay_object *) obj;      /* NULL from the moment destruction begins */
	/* struct relay__tdata * (a counted reference) or 0 for no thread;
	 * | RELAY__HOME_TRANSIT while move_to_thread carries it: posts wait. */
	_Atomic(uintptr_t) home;
	atomic_int refs;                  /* the object's, weak refs', events', connections' */
	struct relay__anchor *mail_next;  /* in a delete mailbox (queue.c) */
	atomic_int del_level;             /* loop level delete_later was asked at (0: any) */
	/* home thread (the owner of its loop) only: */
	struct relay__timerdata *shots;   /* single shots armed for it */
};
struct relay__anchor *relay__anchor_new(relay_object *obj, struct relay__tdata *home);
void relay__anchor_ref(struct relay__anchor *a);
void relay__anchor_unref(struct relay__anchor *a);
static inline struct relay__tdata *relay__home_of(uintptr_t h)
{
	return (struct relay__tdata *)(h & ~RELAY__HOME_TRANSIT);
}
/* Where the anchor's object lives (transit ignored), NULL for no thread. */
static inline struct relay__tdata *relay__anchor_home(const struct relay__anchor *a)
{
	return relay__home_of(atomic_load_explicit(&((struct relay__anchor *)a)->home,
						   memory_order_acquire));
}
static inline relay_object *relay__anchor_obj(const struct relay__anchor *a)
{
	return atomic_load_explicit(&((struct relay__anchor *)a)->obj, memory_order_acquire);
}
/* Changes a live anchor's home (move_to_thread): takes a reference on the
 * new one; returns the old one, whose reference the caller drops after a
 * grace period. */
struct relay__tdata *relay__anchor_rehome(struct relay__anchor *a, uintptr_t home);
/* obj's anchor, referenced, for a caller in any thread; NULL once obj's
 * destruction has begun (RELAY_EDESTROYED for the caller). */
struct relay__anchor *relay__anchor_get(relay_object *obj);
/* Destroy's end: the object lets go of its anchor (under its lock). */
void relay__anchor_detach(relay_object *obj);
/* Marks a live anchor as being moved (posts to it wait), or not. */
void relay__anchor_transit(struct relay__anchor *a, bool on);

static inline struct relay__anchor *relay__obj_anchor(const relay_object *obj)
{
	return atomic_load_explicit(&((relay_object *)obj)->relay__anchor, memory_order_acquire);
}
/* The thread obj lives in; NULL for none or a destroyed object. */
static inline struct relay__tdata *relay__obj_thread(const relay_object *obj)
{
	struct relay__anchor *a = relay__obj_anchor(obj);
	return a ? relay__anchor_home(a) : NULL;
}
/* 0 when obj may be used, -EINVAL (NULL, not initialised), or
 * RELAY_EDESTROYED (with a diagnostic naming `what`). */
int relay__obj_check(const relay_object *obj, const char *what);

pthread_mutex_t *relay__objlock(const void *obj);
void relay__lock2(pthread_mutex_t *a, pthread_mutex_t *b);
void relay__unlock2(pthread_mutex_t *a, pthread_mutex_t *b);
/* Returns obj's ext, allocating it; NULL on ENOMEM. Object lock held:
 * used only where the allocation was made before (relay__ext_prepare). */
struct relay__objext *relay__ext_locked(relay_object *obj, struct relay__objext **spare);

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
	size_t argsize, argalign;
	const relay_payload_ops *ops;
	/* the receiver's anchor (NULL for a direct function connection
	 * without context): its life and its thread */
	struct relay__anchor *ranchor;
	atomic_int deep_calls;      /* calls nested beyond the call frames (grace.h) */
	struct relay__conn *reg_next;             /* registry bucket (signal.c) */
	struct relay__conn *in_prev, *in_next;    /* receiver's incoming list */
	struct relay__conn *out_prev, *out_next;  /* sender's outgoing list */
};
void relay__conn_ref(struct relay__conn *c);
void relay__conn_unref(struct relay__conn *c);
void relay__conn_ref_n(struct relay__conn *c, uint32_t n);
void relay__conn_unref_n(struct relay__conn *c, uint32_t n);
/* Whether c's payload needs a heap event (too big, or over-aligned). */
static inline bool relay__conn_heap_payload(const struct relay__conn *c, size_t argsize)
{
	return argsize > RELAY__INLINE_MAX || c->argalign > RELAY__INLINE_ALIGN;
}
/* Object destruction: cut incoming (kill), unlink outgoing (queued events
 * still arrive). Owner thread. */
void relay__object_cut_connections(relay_object *obj);
/* The calling thread ends: release its emit cache. */
void relay__signal_thread_exit(void);
/* The calling thread idles: release its emit cache unless inside a slot. */
void relay__signal_cache_trim(void);
/* Destroy: emissions of obj running in this thread call no further slot. */
void relay__signal_abort_emissions(relay_object *obj);
/* Thread-local sender for relay_sender(). */
static inline relay_object *relay__set_sender(relay_object *sender)
{
	relay_object *prev = relay__tls.sender;
	relay__tls.sender = sender;
	return prev;
}

/* ---- events (event.c) ---- */
enum relay__event_kind {
	RELAY__EV_SLOT,        /* queued slot call: conn + payload (heap) */
	RELAY__EV_INVOKE,      /* relay_invoke */
	RELAY__EV_CALL,        /* relay_invoke_blocking */
	RELAY__EV_SINGLE_SHOT, /* arm a single shot in the receiver's thread */
	RELAY__EV_TASK         /* a pool task's end, kept inside the task (task.c) */
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

struct relay__event {
	struct relay__event *next;       /* list link */
	enum relay__event_kind kind;
	relay_object *sender;            /* SLOT: for relay_sender() */
	struct relay__conn *conn;        /* SLOT: counted (its ranchor is the target) */
	struct relay__anchor *anchor;    /* other kinds: the target, counted */
	struct relay__completion *done;  /* blocking: a counted reference */
	union {
		struct { void (*fn)(void *); void *data; void (*free_data)(void *); } invoke;
		struct { int (*fn)(void *); void *data; } call;
		struct relay__timerdata *shot;
	} u;
	size_t argsize;
	void *payload;                   /* SLOT: the copy, aligned as the type wants */
	bool payload_live;               /* payload holds a copy to free */
	_Alignas(max_align_t) unsigned char inline_payload[];
};
/* A heap event; a SLOT event gets room for an argsize payload aligned to
 * argalign (0: max_align_t). NULL on ENOMEM. */
struct relay__event *relay__event_new(enum relay__event_kind kind, size_t argsize,
				      size_t argalign);
/* The anchor an event is for. */
static inline struct relay__anchor *relay__event_anchor(const struct relay__event *ev)
{
	return ev->conn ? ev->conn->ranchor : ev->anchor;
}
/* Frees the event: payload free hook, references, completion released
 * with `status` if it is still waiting, an invoke's free_data if it did
 * not run (status != 0). */
void relay__event_free(struct relay__event *ev, int status);
/* Frees an event that will never be delivered and counts it in t. */
void relay__event_drop(struct relay__tdata *t, struct relay__event *ev);
void relay__event_drop_list(struct relay__tdata *t, struct relay__event *list);
/* A slot record as a heap event (it has to travel elsewhere). Takes over
 * the record's references; NULL on ENOMEM (the record is untouched). */
struct relay__event *relay__event_from_rec(const struct relay__rec *rec);
/* Frees a ring record never delivered (payload hook, its connection
 * reference) and counts it. */
void relay__rec_drop(struct relay__tdata *t, struct relay__rec *rec);
/* Counts one dropped event in t (any thread). */
void relay__count_drop(struct relay__tdata *t);

/* ---- posting (post.c) ---- */
/* How relay__post treats a thread that is not running. */
enum relay__post_mode {
	RELAY__POST_ALWAYS,   /* queue it; it runs when the loop runs */
	RELAY__POST_SERVING   /* blocking call: refuse unless a loop serves it */
};
/* Posts ev through the calling thread's ring to the thread anchor a's
 * object lives in, after the caller's earlier posts (FIFO per sender).
 * Returns 0 (the queue owns ev), or RELAY_ENOTDELIVERED (the target's
 * destruction began), RELAY_ENOTRUNNING (no thread, its handle destroyed,
 * or refused by mode), -ENOMEM; ev untouched then. With home_out, the
 * thread it was posted to, referenced. */
int relay__post(struct relay__anchor *a, struct relay__event *ev, enum relay__post_mode mode,
		struct relay__tdata **home_out);
/* Posts a blocking event and waits; returns its status (RELAY_ENOTRUNNING:
 * refused or given up; RELAY_ENOTDELIVERED) and *result. Frees ev on error. */
int relay__post_blocking(struct relay__anchor *a, struct relay__event *ev, int *result);
/* The queued slot call of an emit: payload inline (a copy already made by
 * the copy hook, if any), no lock, no allocation in steady state. Returns
 * 0, RELAY_ENOTRUNNING (no thread will ever run it: not queued, counted),
 * RELAY_ENOTDELIVERED (receiver's destruction began), -ENOMEM. */
int relay__post_slot(struct relay__tdata *self, struct relay__conn *c, relay_object *sender,
		     size_t argsize, const void *arg);

/* ---- thread records (thread.c) ---- */
enum relay__tstate {
	RELAY__T_NEW,        /* created, never started */
	RELAY__T_STARTING,   /* start() done, before the loop */
	RELAY__T_RUNNING,
	RELAY__T_FINISHING,  /* loop returned: deferred deletions, finished, last scan */
	RELAY__T_FINISHED,   /* may be started again */
	RELAY__T_GONE        /* handle destroyed / adopted thread exited */
};

/* The thread-level quit request (relay_thread_exit): one atomic word, the
 * pending flag and the code together. */
#define RELAY__EXIT_PENDING ((uint_fast64_t)1 << 32)

struct relay__timerheap {
	struct relay__timerdata *root;   /* a pairing heap (heap.c) */
	uint64_t seq;                    /* insertion counter: equal deadlines fire FIFO */
};

/* A thread record: one per OS thread known to relay (and one per
 * relay_thread handle, started or not). Reference counted: the handle, the
 * running thread, anchors whose object lives in it, rings to it. */
struct relay__tdata {
	atomic_int refs;
	_Atomic(relay_thread *) handle;  /* NULL once GONE */
	char name[16];
	pthread_t pthread;
	pid_t os_tid;
	bool is_main, adopted, joinable;
	_Atomic int state;               /* relay__tstate; changed under q.lock */
	bool restart_pending;            /* start() while FINISHING; q.lock */
	atomic_bool drained;             /* GONE and drained (relay__loop_serve) */
	atomic_bool interrupt;
	/* a pass waiting for work returns (relay__loop_nudge): a pool's idle
	 * thread, given a task; seq_cst, the request half of the wake-up
	 * handshake */
	atomic_bool nudge;
	atomic_uint_fast64_t exit_req;   /* RELAY__EXIT_PENDING | code */
	atomic_int last_exit_code;
	relay__queue q;                  /* posted events (queue.c) */
	relay__producer prod;            /* this thread's rings to others (own thread) */
	struct relay__grace grace;       /* sections and call frames (grace.c) */
	/* the loop: the owner of q only */
	atomic_int loop_depth;           /* nested relay_loop_run (read by others) */
	int scope;                       /* events being dispatched, nesting */
	struct relay__loopframe *loops;  /* the innermost relay_loop_run running here */
	bool quit_next;                  /* relay_loop_exit with no loop running */
	int quit_next_code;
	int delivering;                  /* ring deliveries in progress (nesting) */
	struct relay__frame *frame;      /* the delivering pass's call frame (grace.h) */
	uint64_t trimmed_ns;             /* last idle trim */
	struct relay__conn *unref_conn;  /* batched reference returns */
	uint32_t unref_n;
	struct relay__event *batch;      /* the pass being delivered */
	struct relay__anchor *held;      /* deletions not yet due (loop levels) */
	atomic_bool held_pending;        /* held != NULL (read by servers) */
	atomic_bool pumps;               /* adopted: has run a loop pass, not exited
					  * (or is attached to a host loop) */
	struct relay__embed *embed;      /* attached to a host loop (embed.c); owner thread */
	/* fd watchers (watcher.c), the queue owner's */
	struct relay__fdreg *fdregs;     /* one registration per watched fd */
	struct relay__fdslot *fdtab;     /* epoll keys -> registrations */
	uint32_t fdtab_n, fdtab_free;    /* slots used; a free one, or UINT32_MAX */
	bool fdstale;                    /* epoll reported a key nobody has */
	struct relay__fdreg *fdready, **fdready_tail;   /* reported, to fire */
	struct relay__fdreg *fdgrave;    /* emptied while firing: freed after */
	int watching;                    /* enabled watchers registered here */
	int firing;                      /* nested watcher runs */
	uint64_t pass_deadline;          /* relay_loop_dispatch's budget end; 0: none */
	unsigned pass_polls;             /* records since the budget was last read */
	struct relay__timerheap timers;
	int epfd;                        /* the thread's epoll set */
	int hostfd;                      /* the one a host polls: holds epfd */
	/* finishing: guarded by done_lock */
	pthread_mutex_t done_lock;
	pthread_cond_t done_cond;
	/* counters (relaxed atomics; single writer except dropped) */
	atomic_uint_fast64_t posted, delivered, dropped, moved, wakeups, passes, timers_fired;
	atomic_uint_fast64_t refused;    /* this thread's queued emits no loop could take */
	struct relay__tdata *next_all;   /* list of relay_thread records (thread.c) */
	unsigned stop_round;             /* relay_main_run's round that stopped it; all_lock */
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
static inline int relay__tstate(const struct relay__tdata *t)
{
	return atomic_load_explicit(&((struct relay__tdata *)t)->state, memory_order_seq_cst);
}
/* The thread-state questions, each answered in one place. */
bool relay__tstate_serves(struct relay__tdata *t);   /* a blocking call can be served */
bool relay__tstate_stopped(int st);   /* FINISHED or GONE: nobody runs its loop */
bool relay__tstate_gone(int st);
/* The thread an object "lives in" for the ownership rules: NULL when none
 * or when its handle was destroyed (GONE). */
struct relay__tdata *relay__obj_owner_thread(const relay_object *obj);
int relay__tdata_init(struct relay__tdata *t);
/* Whether obj (a thread handle) may be destroyed now. */
int relay__thread_check_destroy(relay_object *obj);
extern const relay_class relay__thread_class;

/* ---- loops (loop.c) ---- */
/* One running relay_loop_run, on its stack: a relay_loop_exit belongs to
 * the innermost one (Qt's QEventLoop::exit), and stays with it. */
struct relay__loopframe {
	bool quit;
	int code;
	struct relay__loopframe *outer;
};
/* One loop pass; returns the number of things handled or < 0. */
int relay__loop_pass(struct relay__tdata *self, int timeout_ms);
/* Runs until a quit ends this loop; returns the exit code. */
int relay__loop_run(struct relay__tdata *self);
/* Wakes t's loop if it sleeps. Any thread. */
void relay__loop_wake(struct relay__tdata *t);
/* Makes t's pass that waits (or will wait) for work return now, even
 * with nothing to deliver; t clears t->nudge before it waits. Any thread. */
void relay__loop_nudge(struct relay__tdata *t);
/* Whether t's loop has something that keeps it busy or due later: events,
 * timers, watchers, deletions held. The owner. */
bool relay__loop_keeps(struct relay__tdata *t);
/* The loop level for deferred deletions (Qt's loopLevel + scopeLevel). */
int relay__loop_level(const struct relay__tdata *t);
/* The moved list joins the pass's batch; its timers are armed (they
 * belong to this loop now). The owner. */
void relay__loop_take_moved(struct relay__tdata *self);
/* Dispatches one event in the delivering thread self (the owner). */
void relay__dispatch(struct relay__tdata *self, struct relay__event *ev);
/* Runs the deferred deletions of self's loop that are due at the current
 * level (all: every one). The owner. Returns how many ran. */
int relay__run_deletes(struct relay__tdata *self, bool all);
/* Serves a loop nobody runs (FINISHED or GONE): runs its deferred
 * deletions, or drains it once GONE, in the calling thread, as its owner.
 * Returns at once when another thread owns it: that one looks again
 * before it lets go. Any thread. */
void relay__loop_serve(struct relay__tdata *t);
/* Whether the calling thread owns t's loop (its own, or one it serves). */
bool relay__loop_owned_here(const struct relay__tdata *t);

/* ---- taking events out of a queue (scan.c), the owner only ---- */
/* Drops (frees and counts) the events queued to t for the anchor. */
void relay__purge_events(struct relay__tdata *t, struct relay__anchor *a);
/* At a thread's end: releases blocking posters queued to t and frees the
 * events that can no longer be delivered. */
void relay__release_blocking(struct relay__tdata *t);
/* GONE: runs the deferred deletions (in the calling thread), releases
 * blocking posters, frees and counts the rest, closes the queue. */
void relay__drain(struct relay__tdata *t);
/* Takes the events for objects in the tree of root (in order) out of t's
 * queue; *nslots counts the ring slot records among them, which
 * relay__take_tree materializes into the events given in `spare`. */
size_t relay__count_tree(struct relay__tdata *t, relay_object *root);
struct relay__event *relay__take_tree(struct relay__tdata *t, relay_object *root,
				      struct relay__event **spare);

/* ---- objects (object.c, move.c) ---- */
/* true if obj is root or one of its descendants. Owner thread. */
bool relay__is_in_tree(const relay_object *obj, const relay_object *root);
/* Destroy without the thread check (the loop's owner: its thread, or the
 * thread serving it once stopped). */
int relay__object_destroy_unchecked(relay_object *obj);
/* Runs one deferred deletion taken from a mailbox (the loop's owner). */
void relay__delete_now(struct relay__tdata *self, struct relay__anchor *a);

/* ---- timers (timer.c, heap.c) ---- */
struct relay__timerdata {
	relay_timer *owner;          /* NULL for a single shot */
	struct relay__tdata *armed_in;  /* heap it sits in, or NULL */
	struct relay__timerdata *h_child, *h_next, *h_prev;   /* heap.c */
	uint64_t deadline_ns;
	uint64_t seq;
	atomic_int interval_ms;     /* written by the owner, read by anyone */
	atomic_bool single_shot;
	atomic_bool active;
	struct relay__timerdata *move_next;   /* moved list (queue.c) */
	/* the thread whose moved list holds it, set and cleared under that
	 * thread's queue lock: a timer destroyed there before its new thread
	 * took the list is taken out of it */
	_Atomic(struct relay__tdata *) moved_to;
	/* single shot: */
	struct relay__anchor *anchor;         /* the receiver, counted */
	struct relay__timerdata *shot_prev, *shot_next;   /* anchor's shots */
	relay_slot_fn slot;
};
/* Pairing heap of deadlines, owner thread only; never allocates. */
void relay__heap_push(struct relay__timerheap *h, struct relay__timerdata *t);
void relay__heap_remove(struct relay__timerheap *h, struct relay__timerdata *t);
struct relay__timerdata *relay__heap_top(const struct relay__timerheap *h);
/* Fires due timers; returns how many. Owner thread. */
int relay__timers_run(struct relay__tdata *self, uint64_t now);
/* ms until the next deadline, -1 if none (capped at INT_MAX). */
int relay__timers_timeout(struct relay__tdata *self, uint64_t now);
/* move_to_thread: takes the active timers and single shots of the tree
 * out of `from`'s heap (the caller owns it), linked by move_next. */
struct relay__timerdata *relay__timers_take_tree(struct relay__tdata *from, relay_object *root);
/* Puts timers back (a move that failed) or arms moved ones (their new
 * thread, the owner). */
void relay__timers_arm_list(struct relay__tdata *self, struct relay__timerdata *list);
void relay__single_shot_event(struct relay__tdata *self, struct relay__event *ev);
void relay__single_shot_free(struct relay__timerdata *td);
/* Destroy: disarms and frees the single shots armed for the anchor. */
void relay__shots_cancel(struct relay__anchor *a);
/* Teardown: every heap entry out (single shots are freed). */
void relay__timers_teardown(struct relay__tdata *t);

/* ---- a host loop drives this thread's loop (loop.c, embed.c) ---- */
bool relay__loop_has_work(struct relay__tdata *self, uint64_t now);
bool relay__loop_arm(struct relay__tdata *self);
int relay__loop_timeout(struct relay__tdata *self, uint64_t now);
int relay__loop_dispatch(struct relay__tdata *self, int budget_ms);
void relay__embed_release(struct relay__tdata *t);   /* the thread's record goes */

/* ---- fd watchers (watcher.c) ---- */
void relay__watchers_collect(struct relay__tdata *t, uint64_t key, uint32_t events);
int relay__watchers_run(struct relay__tdata *self);
bool relay__watchers_ready(const struct relay__tdata *t);
void relay__watchers_teardown(struct relay__tdata *t);
relay_watcher *relay__watchers_take_tree(struct relay__tdata *from, relay_object *root);
void relay__watchers_follow(relay_watcher *list);

/* ---- poller (poll_epoll.c) ---- */
int relay__poll_init(struct relay__tdata *t);
void relay__poll_close(struct relay__tdata *t);
/* Sleeps up to timeout_ms (-1: forever); returns 0 or < 0. Reading the
 * wake-up fd happens inside. */
int relay__poll_wait(struct relay__tdata *t, int timeout_ms);
int relay__poll_rebuild(struct relay__tdata *t, int (*add)(struct relay__tdata *, int epfd));
int relay__poll_host_fd(struct relay__tdata *t);

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

/* D6: a slot call in frame slot (grace.h): checked, then committed right
 * before the call instruction; false (not called) when c is dead. */
static RELAY__ALWAYS_INLINE bool relay__conn_call_checked(_Atomic uintptr_t *slot, bool asym,
							   struct relay__conn *c, const void *arg)
{
	if (!relay__frame_check_at(slot, asym, c, &c->alive, &c->deep_calls))
		return false;
	void *first = c->first;
	relay_slot_fn fn = c->fn;
	if (c->arity == 1) {
		relay__frame_commit_at(slot, c);
		((void (*)(void *))fn)(first);
	} else {
		relay__frame_commit_at(slot, c);
		((void (*)(void *, const void *))fn)(first, arg);
	}
	relay__frame_leave_at(slot, &c->deep_calls);
	return true;
}

/* ---- pools and tasks (pool.c, task.c) ---- */
/* A task's end event: delivered (callbacks), or freed undelivered. */
void relay__task_deliver(struct relay__tdata *self, struct relay__event *ev);
void relay__task_event_free(struct relay__event *ev, int status);
/* A blocking call made from a pool thread: registered so that cancelling
 * its task releases it (-ECANCELED). enter returns false when the task is
 * cancelled already and the call was released (claimed) by it. */
bool relay__pool_block_enter(struct relay__completion *c);
void relay__pool_block_leave(void);
/* relay_main_shutdown: every pool is shut down within timeout_ms; the
 * default pool opens again. */
void relay__pools_shutdown(int timeout_ms);

#endif
