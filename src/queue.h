/*
 * queue.h - how events travel to a loop: the transport interface.
 *
 * A receiving thread's queue is made of
 *   - one single-producer ring per posting thread (records stored inline,
 *     chunks that grow), for everything that does not need the lock, and
 *   - a locked "slow" list of heap events, for the few posts that must be
 *     decided under the receiver's lock (blocking calls, moved events).
 * and one sleep flag + eventfd for wake-ups. Nothing outside queue.c
 * touches rings or chunks.
 */
#ifndef RELAY_QUEUE_H
#define RELAY_QUEUE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A full fence (seq_cst). ThreadSanitizer does not model
 * atomic_thread_fence (GCC refuses it with -Werror=tsan); in TSan builds a
 * seq_cst read-modify-write stands in for it: a full barrier on the
 * machines TSan runs on, and an operation TSan understands. */
#if defined(__SANITIZE_THREAD__)
#define RELAY__TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define RELAY__TSAN 1
#endif
#endif
static inline void relay__fence(void)
{
#ifdef RELAY__TSAN
	static atomic_int fence_word;
	atomic_fetch_add_explicit(&fence_word, 0, memory_order_seq_cst);
#else
	atomic_thread_fence(memory_order_seq_cst);
#endif
}

struct relay__event;
struct relay__conn;
struct relay__tdata;
struct relay__ring;
typedef struct relay_object relay_object;

/* Largest payload stored inline in a ring record; bigger payloads travel
 * in a heap event (DESIGN.md F: zero allocations up to 64 bytes). */
#define RELAY__INLINE_MAX 64

enum relay__rec_kind {
	RELAY__REC_SLOT = 1,   /* queued slot call: conn, sender, payload inline */
	RELAY__REC_EVENT = 2,  /* a heap event (invoke, delete, big payload...) */
	RELAY__REC_DEAD = 3,   /* taken out in place (purge, move): skip */
	RELAY__REC_NEXT = 4    /* the producer moved on to the next chunk */
};

/* A record as stored in a ring: this 24-byte header, then (SLOT) the
 * payload. Records start 16-byte aligned. A payload of up to 8 bytes
 * follows the header at offset 24 (its alignment is at most 8), so an
 * int64 record fills half a cache line; a larger one starts at 32, aligned
 * like the record, so any payload type may be used in place. */
struct relay__rec {
	uint32_t size;              /* whole record, multiple of 16 */
	uint16_t kind;              /* relay__rec_kind */
	uint16_t argsize;           /* SLOT: payload bytes */
	struct relay__conn *conn;   /* SLOT: a counted reference */
	union {
		relay_object *sender;       /* SLOT */
		struct relay__event *ev;    /* EVENT */
	} u;
};

static inline size_t relay__rec_payload_offset(size_t argsize)
{
	return argsize <= 8 ? 24 : 32;
}
#define RELAY__REC_PAYLOAD(rec) \
	((unsigned char *)(rec) + relay__rec_payload_offset((rec)->argsize))

/* A record copied out of its ring (same layout), so that the slot may run
 * nested loops while the ring moves on. */
union relay__rec_copy {
	struct relay__rec rec;
	unsigned char bytes[32 + RELAY__INLINE_MAX];
	max_align_t align;
};

typedef struct relay__queue {
	/* consumer side */
	struct relay__ring *rings;              /* consumer only */
	struct relay__ring *_Atomic new_rings;  /* rings registered since the last pass */
	/* the slow list */
	pthread_mutex_t lock;
	struct relay__event *head, *tail;       /* guarded by lock */
	atomic_bool slow_pending;               /* head != NULL, readable without the lock */
	/* wake-up */
	atomic_bool sleeping;                   /* consumer is (about to be) in the kernel */
	int wakefd;                             /* eventfd the consumer polls */
} relay__queue;

/* Per posting thread: the rings it writes (producer only). */
typedef struct relay__producer {
	struct relay__ring *rings;
	struct relay__ring *last;               /* the ring used last: usually the one */
	struct relay__conn *prepaid;            /* connection references taken in bulk */
	uint32_t prepaid_n;
	/* Odd while the thread is between reading a target's thread and
	 * committing its record: move_to_thread waits for such posts to land
	 * (relay__queue_grace_period). Written by the owner only. */
	atomic_uint_fast64_t post_seq;
	bool registered;                        /* in the global producer list */
	struct relay__producer *all_next;       /* guarded by the list's lock */
} relay__producer;

int relay__queue_init(relay__queue *q);
/* Frees the rings (their records must have been drained) and the list. */
void relay__queue_destroy(relay__queue *q);

/* ---- producer side: any thread, `from` is the calling thread ---- */

/* Queues a slot call to `to`: copies the payload inline (with copy(dst,src)
 * when given). Returns 0, -ENOMEM, or copy's error (nothing queued). Takes
 * a reference on conn for the record. */
int relay__queue_post_slot(struct relay__tdata *from, struct relay__tdata *to,
			   struct relay__conn *conn, relay_object *sender, size_t argsize,
			   const void *arg, int (*copy)(void *dst, const void *src));
/* Queues a heap event through from's ring to `to`, after from's earlier
 * posts. Returns 0 or -ENOMEM (ev untouched). */
int relay__queue_post_event(struct relay__tdata *from, struct relay__tdata *to,
			    struct relay__event *ev);
/* Appends to the slow list. to->q.lock held. Wake with
 * relay__queue_wake_if_sleeping after unlocking. */
void relay__queue_push_slow_locked(relay__queue *q, struct relay__event *ev);
/* Wakes the consumer if it announced it sleeps, after a slow-list push or
 * a quit flag was set. */
void relay__queue_wake_if_sleeping(relay__queue *q);
/* The calling thread stops producing: its rings are handed to their
 * consumers, which free them once drained. */
void relay__producer_close(relay__producer *p);
/* Idle: forget rings to threads that are gone, return bulk references. */
void relay__producer_trim(relay__producer *p);

/* Brackets a post: from reading the target's thread to committing. The
 * bracket's first store must be visible before the post reads the target's
 * thread: the mover's membarrier makes it so, or, without membarrier, a
 * fence here. */
extern bool relay__have_membarrier;
static inline void relay__post_enter(relay__producer *p)
{
	uint_fast64_t s = atomic_load_explicit(&p->post_seq, memory_order_relaxed);
	atomic_store_explicit(&p->post_seq, s + 1, memory_order_relaxed);
	if (relay__have_membarrier)
		atomic_signal_fence(memory_order_seq_cst);
	else
		relay__fence();
}

static inline void relay__post_leave(relay__producer *p)
{
	uint_fast64_t s = atomic_load_explicit(&p->post_seq, memory_order_relaxed);
	/* release: the mover that sees it even sees the committed record */
	atomic_store_explicit(&p->post_seq, s + 1, memory_order_release);
}
/* Returns once every post that may have read a target's thread before
 * this call has committed its record (move_to_thread, before it scans). */
void relay__queue_grace_period(relay__producer *self);

/* ---- consumer side: the receiving thread only (or any thread once it
 * has stopped for good) ---- */

/* Detaches the slow list (oldest first). */
struct relay__event *relay__queue_take_slow(relay__queue *q);
/* Bounds of one pass: the records committed now. */
void relay__queue_snapshot(struct relay__tdata *t);
/* Delivers ring records up to the snapshot: prepare() on the record in
 * place (it may deliver other events first, or take this one), then
 * deliver() on a copy; stops early when *stop becomes true. Returns how
 * many were delivered. */
int relay__queue_deliver(struct relay__tdata *t,
			 void (*prepare)(struct relay__tdata *, struct relay__rec *),
			 void (*deliver)(struct relay__tdata *, struct relay__rec *),
			 const atomic_bool *stop);
/* Calls visit() on every record still queued in the rings, in order per
 * ring; visit may take a record with relay__queue_take_rec. */
void relay__queue_scan(struct relay__tdata *t,
		       void (*visit)(struct relay__tdata *, struct relay__rec *, void *),
		       void *arg);
/* Marks a record (seen in scan) as taken; the caller owns its references. */
void relay__queue_take_rec(struct relay__rec *rec);
/* Consumer: whether anything is queued (a hint: no ordering). */
bool relay__queue_pending(struct relay__tdata *t);
/* Before sleeping: true (and the consumer marked sleeping) only if nothing
 * is queued and *abort_sleep is false. */
bool relay__queue_prepare_sleep(struct relay__tdata *t, const atomic_bool *abort_sleep);
void relay__queue_awake(relay__queue *q);
void relay__queue_clear_wake(relay__queue *q);
/* The thread is gone: drops its references on its rings (their records
 * must have been taken); each ring goes when its producer lets go too. */
void relay__queue_release_rings(struct relay__tdata *t);
/* Consumer, idle: frees the spare chunks kept for a steady flow. */
void relay__queue_trim(struct relay__tdata *t);
/* Records posted through rings to t so far (for statistics). */
uint64_t relay__queue_ring_posts(struct relay__tdata *t);

#endif
