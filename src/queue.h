/*
 * queue.h - how events travel to a loop: the transport interface.
 *
 * A receiving thread's queue is made of
 *   - one single-producer ring per posting thread (records stored inline,
 *     chunks that grow), for every post;
 *   - a locked "moved" list: the events and timers move_to_thread brings
 *     along, delivered before anything in the rings;
 *   - a lock-free mailbox of delete_later requests (anchors), so that a
 *     deferred deletion needs no memory;
 *   - an owner token: exactly one thread at a time consumes the queue;
 *   - a sleep flag + eventfd for wake-ups.
 * Nothing outside queue.c touches rings or chunks.
 *
 * Who consumes (the one-owner rule). The consumer side of a queue - ring
 * read positions, DEAD marks, the ring list, the moved and mailbox lists
 * once taken, and the loop state that goes with them (the pass's batch,
 * held deletions, the timer heap) - is touched only by the holder of its
 * owner token (relay__queue_own). The token is held by the thread itself
 * for the whole of a run (relay threads: from before `started` until after
 * the last scan of its finish; main and adopted threads: for life), and
 * otherwise by whichever thread serves the stopped loop (runs its
 * deletions, drains it when it goes). Nobody ever waits for the token
 * except a relay thread beginning a new run; a thread that finds it taken
 * leaves its request (a mailbox entry, a state change) for the holder,
 * which looks again after giving it back (loop.c, relay__loop_serve).
 *
 * Synchronisation table (in the style of urcu's wfcqueue.h). "P" is any
 * producer thread (its own rings only), "C" the owner of the queue, "any"
 * any thread. A pair marked "ok" may run at the same time; "no" never
 * does (by construction, not by a lock); "lock" is serialised by q->lock.
 *
 *                      | post  make_  push_  mail_  wake   prod_  stats
 *                      | (P)   room   moved  push   (P)    close  (any)
 *                      |       (P)    (P)    (any)         (P)
 *  --------------------+--------------------------------------------------
 *  snapshot/deliver (C)| ok    lock   ok     ok     ok     ok     lock
 *  take_moved (C)      | ok    ok     lock   ok     ok     ok     ok
 *  take_mail (C)       | ok    ok     ok     ok[1]  ok     ok     ok
 *  scan/take_rec (C)   | ok    lock   ok     ok     ok     ok     lock
 *  prepare_sleep (C)   | ok[2] ok     ok[2]  ok[2]  ok[2]  ok     ok
 *  release_rings (C)   | ok[3] lock   ok     ok     ok     ok[3]  lock
 *  own/disown (any)    | ok    ok     ok     ok     ok     ok     ok
 *  C vs C (any two)    | no: one owner at a time
 *  post vs post, same ring: no (single producer); other rings: ok
 *
 *  [1] Treiber stack: push is a CAS, take is one exchange of the head, so
 *      no ABA (nothing is ever popped singly).
 *  [2] The wake-up handshake (a Dekker pair on seq_cst operations):
 *      consumer: xchg(sleeping, 1); load produced/moved/mail/quit;
 *      producer: xchg(produced) or the RMW publishing its request; load
 *      sleeping. Either the consumer sees the request or the producer sees
 *      the flag; models/wakeup.pml checks it.
 *  [3] Each ring is reference counted by its two ends; the end that lets
 *      go last frees it (dropping, and counting, records never consumed).
 *
 * The spare chunk is the one field both ends write: the consumer puts a
 * drained chunk there (exchange, release) and may free the one it
 * replaces, or free it when idle (trim); the producer takes it (exchange,
 * acquire). So a chunk in `spare` belongs to nobody: the producer may look
 * at the pointer but reads the chunk only after its exchange took it.
 */
#ifndef RELAY_QUEUE_H
#define RELAY_QUEUE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct relay__event;
struct relay__conn;
struct relay__tdata;
struct relay__ring;
struct relay__anchor;
struct relay__timerdata;
typedef struct relay_object relay_object;

/* Largest payload stored inline in a ring record; bigger payloads (and
 * payloads aligned beyond 16 bytes) travel in a heap event (DESIGN.md F:
 * zero allocations up to 64 bytes). */
#define RELAY__INLINE_MAX 64
#define RELAY__INLINE_ALIGN 16

enum relay__rec_kind {
	RELAY__REC_SLOT = 1,   /* queued slot call: conn, sender, payload inline */
	RELAY__REC_EVENT = 2,  /* a heap event (invoke, big payload, blocking...) */
	RELAY__REC_DEAD = 3,   /* taken out in place (purge, move): skip */
	RELAY__REC_NEXT = 4    /* the producer moved on to the next chunk */
};

/* A record as stored in a ring: this 24-byte header, then (SLOT) the
 * payload. Records start 16-byte aligned. A payload of up to 8 bytes
 * follows the header at offset 24 (its alignment is at most 8), so an
 * int64 record fills half a cache line; a larger one starts at 32, aligned
 * like the record, so any payload type aligned to at most 16 may be used
 * in place. */
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
static inline size_t relay__rec_size(size_t argsize)
{
	return (relay__rec_payload_offset(argsize) + argsize + 15u) & ~(size_t)15u;
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
	/* consumer side (the owner) */
	struct relay__ring *rings;              /* changed under lock (stats walk it) */
	struct relay__ring *resume;             /* where a cut-short delivery goes on */
	struct relay__ring *_Atomic new_rings;  /* registered since the last pass; lock */
	bool closed;                            /* drained for good: no new rings; lock */
	/* the moved list */
	pthread_mutex_t lock;
	struct relay__event *head, *tail;       /* moved events; lock */
	struct relay__timerdata *timers;        /* moved timers and single shots; lock */
	atomic_bool moved_pending;              /* either list is not empty */
	/* the delete_later mailbox */
	struct relay__anchor *_Atomic mail;
	/* who consumes */
	atomic_int owner;                       /* 0 free, 1 taken */
	/* wake-up */
	atomic_bool sleeping;                   /* consumer is (about to be) in the kernel */
	atomic_int wakers;                      /* producers writing wakefd now */
	atomic_int wakefd;                      /* eventfd the consumer polls; -1 once gone */
	atomic_uint_fast64_t reaped_posts;      /* posts of rings freed since (statistics) */
} relay__queue;

/* Per posting thread: the rings it writes (producer only). */
typedef struct relay__producer {
	struct relay__ring *rings;
	struct relay__ring *last;               /* the ring used last: usually the one */
	struct relay__conn *prepaid;            /* connection references taken in bulk */
	uint32_t prepaid_n;
	/* the previous connection's unused bulk references, returned after
	 * the post's section (their release may free it: user code) */
	struct relay__conn *stale;
	uint32_t stale_n;
	uint64_t id;                            /* unique in the process, 0: none yet */
} relay__producer;

int relay__queue_init(relay__queue *q);
/* Frees the rings (their records must have been drained) and the lists. */
void relay__queue_destroy(relay__queue *q);

/* ---- the owner token ---- */
bool relay__queue_own(relay__queue *q);      /* true if the caller took it */
void relay__queue_disown(relay__queue *q);

/* ---- producer side: any thread, `from` is the calling thread ---- */

/* Inside a post section: writes a slot record to from's ring to `to`
 * (the payload copied inline, a connection reference taken from the ones
 * taken in bulk) and commits it - a seq_cst exchange, the producer's half
 * of the wake-up handshake - waking the consumer if it announced sleep.
 * False when the ring needs memory (a new ring or chunk): nothing was
 * written; the caller leaves its section, calls relay__queue_make_room
 * and tries again, so that no allocator runs inside a section. Allocates
 * nothing, takes no lock. */
bool relay__queue_push_slot(struct relay__tdata *from, struct relay__tdata *to,
			    struct relay__conn *conn, relay_object *sender, size_t argsize,
			    const void *arg);
/* After the section of a post: returns the bulk references left on the
 * connection used before (relay__queue_push_slot switched to another;
 * their release may free it, which runs the allocator: not in a section). */
void relay__queue_release_stale(relay__producer *p);
/* The same for a heap event (after from's earlier posts: FIFO per sender). */
bool relay__queue_push_event(struct relay__tdata *from, struct relay__tdata *to,
			     struct relay__event *ev);
/* Outside any section: makes sure from's ring to `to` has room for `size`
 * bytes (creating and registering the ring, or getting a chunk). Returns 0
 * or -ENOMEM. May yield the CPU when a backlog keeps growing. */
int relay__queue_make_room(struct relay__tdata *from, struct relay__tdata *to, size_t size);

/* Appends moved events (oldest first) and timers to to's moved list,
 * under to->q.lock (held by the caller: relay__queue_lock). */
void relay__queue_push_moved_locked(relay__queue *q, struct relay__event *ev);
void relay__queue_push_timer_locked(struct relay__tdata *to, struct relay__timerdata *td);
/* A timer destroyed while it waits in a moved list leaves it. */
void relay__queue_unlink_timer(struct relay__timerdata *td);
/* delete_later: pushes a referenced anchor onto the mailbox. seq_cst: the
 * poster's half of the handshakes (wake-up, and serving a stopped loop). */
void relay__queue_mail(relay__queue *q, struct relay__anchor *a);
/* Wakes the consumer if it announced it sleeps, after a moved-list push,
 * a mailbox push or a quit flag was set with a seq_cst operation. */
void relay__queue_wake_if_sleeping(relay__queue *q);
/* The calling thread stops producing: its rings are handed to their
 * consumers, which free them once drained. */
void relay__producer_close(relay__producer *p);
/* Forgets rings to threads that are gone, returns bulk references. No
 * section, no lock held (freeing a ring may run payload free hooks). */
void relay__producer_trim(relay__producer *p);

/* ---- consumer side: the queue's owner only ---- */

/* Detaches the moved lists (oldest first). */
struct relay__event *relay__queue_take_moved(relay__queue *q, struct relay__timerdata **timers);
/* Detaches the mailbox (oldest first), each anchor referenced. */
struct relay__anchor *relay__queue_take_mail(relay__queue *q);
/* Bounds of one pass: the records committed now. */
void relay__queue_snapshot(struct relay__tdata *t);
/* Delivers ring records up to the snapshot: prepare() on the record in
 * place (it may deliver other events first, or take this one), then
 * deliver() on a copy; stops early when stop(t) becomes true. Returns how
 * many were delivered. */
int relay__queue_deliver(struct relay__tdata *t,
			 void (*prepare)(struct relay__tdata *, struct relay__rec *),
			 void (*deliver)(struct relay__tdata *, struct relay__rec *),
			 bool (*stop)(struct relay__tdata *));
/* Calls visit() on every record still queued in the rings, in order per
 * ring (seq_cst loads of the counts: a scan that must see a post whose
 * poster re-checks the thread's state after committing, see
 * relay__post_blocking); visit may take a record with
 * relay__queue_take_rec. */
void relay__queue_scan(struct relay__tdata *t,
		       void (*visit)(struct relay__tdata *, struct relay__rec *, void *),
		       void *arg);
/* Marks a record (seen in scan) as taken; the caller owns its references. */
void relay__queue_take_rec(struct relay__rec *rec);
/* Whether anything is queued (a hint: no ordering). */
bool relay__queue_pending(struct relay__tdata *t);
/* Before sleeping: true (and the consumer marked sleeping) only if nothing
 * is queued and busy(t) is false. */
bool relay__queue_prepare_sleep(struct relay__tdata *t, bool (*busy)(struct relay__tdata *));
void relay__queue_awake(relay__queue *q);
void relay__queue_clear_wake(relay__queue *q);
/* The thread is gone: closes the queue to new rings, drops its references
 * on its rings (their records must have been taken); each ring goes when
 * its producer lets go too. Closes the eventfd once no producer can be
 * writing it. */
void relay__queue_close(struct relay__tdata *t);
/* Consumer: frees the rings whose producer left and that are drained (a
 * thread's own, after joining a thread; relay_release_caches). */
void relay__queue_reap(struct relay__tdata *t);
/* Idle: frees the spare chunks kept for a steady flow. */
void relay__queue_trim(struct relay__tdata *t);
/* Records posted through rings to t so far (for statistics). Any thread. */
uint64_t relay__queue_ring_posts(struct relay__tdata *t);

#endif
