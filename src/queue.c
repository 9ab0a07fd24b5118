/*
 * queue.c - the event transport: one single-producer ring per (posting
 * thread, receiving thread) pair, records stored inline, plus a locked
 * list for the few posts that need the receiver's lock.
 *
 * Algorithm: per-producer SPSC queues, as Seastar's per-core queues
 * (smp_message_queue): no write shared between producers, FIFO per
 * producer for free. Each ring is an unbounded SPSC queue of chunks (as
 * D. Vyukov's "unbounded SPSC queue", 1024cores.net): the producer writes
 * records into its current chunk and publishes a record count with a
 * release store; the consumer reads up to the count it loaded with an
 * acquire. Deviations from the textbook ring:
 *   - records are variable-size (32-byte header + inline payload, 16-byte
 *     aligned);
 *     when one does not fit, the producer writes a NEXT marker, links a new
 *     chunk and continues there. Chunks start at 1 KiB (a thread that posts
 *     once costs 1 KiB) and double up to 64 KiB; the consumer hands a
 *     drained chunk back as a spare, so a steady flow allocates nothing;
 *   - the consumer may mark committed records DEAD in place (purge on
 *     destroy, events taken away by move_to_thread): the producer never
 *     touches a record again once committed;
 *   - a consumer pass delivers the records committed when it started
 *     (relay__queue_snapshot), so events posted during delivery wait for
 *     the next pass (DESIGN.md D4).
 *
 * Wake-up handshake (a Dekker pair; models/wakeup.pml):
 *   consumer: sleeping = 1; fence; if anything committed or quit: sleeping = 0
 *             else epoll_wait; then sleeping = 0
 *   producer: commit (release); fence; if sleeping && xchg(sleeping, 0):
 *             write(eventfd)
 * Either the consumer's check sees the commit, or the producer's load sees
 * the flag; the exchange lets one producer of a burst make the syscall.
 *
 * Lock: q->lock guards the slow list and changes to the consumer's ring
 * list (registration is a lock-free push; splicing and reaping take the
 * lock so that statistics can walk the list from other threads).
 */
#include "queue.h"
#include "internal.h"

#include <errno.h>
#include <linux/membarrier.h>
#include <sched.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <unistd.h>

#define CHUNK_MIN 1024u
#define CHUNK_MAX 65536u
#define NEXT_SIZE 16u         /* a NEXT marker: always room for one */
#define PREPAID 256u          /* connection references taken at once */

struct relay__chunk {
	struct relay__chunk *_Atomic next;
	size_t cap;
	_Alignas(16) unsigned char data[];
};

struct relay__ring {
	/* producer's */
	struct relay__chunk *wr;
	size_t wr_off;
	uint64_t wr_count;
	size_t next_cap;
	struct relay__ring *pnext;            /* producer's list */
	struct relay__tdata *consumer;        /* counted reference */
	_Alignas(64) _Atomic uint64_t produced;   /* records committed */
	/* consumer's */
	_Alignas(64) struct relay__chunk *rd;
	size_t rd_off;
	uint64_t consumed;
	uint64_t limit;                       /* this pass's snapshot */
	struct relay__ring *cnext;            /* consumer's list (q->lock to change) */
	struct relay__ring *reg_next;         /* registration stack */
	/* shared, rarely written */
	_Alignas(64) struct relay__chunk *_Atomic spare;
	atomic_int refs;                      /* producer + consumer */
	atomic_bool closed;                   /* the producer has gone */
};

_Static_assert(sizeof(struct relay__rec) == 24, "the record header layout");

static size_t rec_size(size_t argsize)
{
	return (relay__rec_payload_offset(argsize) + argsize + 15u) & ~(size_t)15u;
}

/* ---- chunks ---- */

static struct relay__chunk *chunk_new(size_t cap)
{
	struct relay__chunk *c = relay__alloc(sizeof *c + cap);
	if (!c)
		return NULL;
	atomic_init(&c->next, NULL);
	c->cap = cap;
	return c;
}

/* Producer: a chunk with room for `need` bytes plus a NEXT marker. */
static struct relay__chunk *chunk_get(struct relay__ring *r, size_t need)
{
	/* The consumer keeps up: it handed back the last chunk, reuse it. */
	struct relay__chunk *c = atomic_exchange_explicit(&r->spare, NULL, memory_order_acquire);
	if (c && c->cap >= need + NEXT_SIZE) {
		atomic_store_explicit(&c->next, NULL, memory_order_relaxed);
		return c;
	}
	relay__free(c);
	/* A backlog: grow, so a flood takes fewer, larger chunks, and let the
	 * consumer run (on a loaded machine a flooding producer would
	 * otherwise take its CPU time). */
	if (r->next_cap >= CHUNK_MAX)
		sched_yield();
	size_t cap = r->next_cap;
	while (cap < need + NEXT_SIZE)
		cap *= 2;
	if (r->next_cap < CHUNK_MAX)
		r->next_cap *= 2;
	return chunk_new(cap);
}

/* Consumer: a drained chunk becomes the spare (or is freed). Of two, the
 * larger stays: after a backlog grew the chunks, the small first chunk
 * must not keep pushing the large ones out (each would be reallocated). */
static void chunk_retire(struct relay__ring *r, struct relay__chunk *c)
{
	/* release: the producer that takes it sees us done reading it */
	struct relay__chunk *old = atomic_exchange_explicit(&r->spare, c, memory_order_acq_rel);
	if (old && old->cap > c->cap)
		old = atomic_exchange_explicit(&r->spare, old, memory_order_acq_rel);
	relay__free(old);
}

/* ---- grace periods for move_to_thread ----
 *
 * A post reads its target's thread, then commits a record to that thread's
 * ring. move_to_thread retargets, then takes the moved object's records out
 * of the old thread's rings: a post that read the old thread just before
 * the retarget must have committed by then, or its record would be left
 * behind (and forwarded later, out of order). So each post is bracketed by
 * an odd/even sequence number, and the mover waits for every producer that
 * is inside a post to leave it (as an RCU grace period).
 *
 * The bracket's store must be visible before the post reads the target's
 * thread (StoreLoad). Instead of a fence in every post, the mover issues
 * membarrier(PRIVATE_EXPEDITED), which runs a full barrier on every CPU
 * running one of our threads (the asymmetric fence of liburcu and folly).
 * Where membarrier is not available, posts fall back to a fence.
 */

static pthread_mutex_t producers_lock = PTHREAD_MUTEX_INITIALIZER;
static relay__producer *producers;          /* guarded by producers_lock */
static pthread_once_t membarrier_once = PTHREAD_ONCE_INIT;
bool relay__have_membarrier;                 /* set once, before any ring exists */

static void membarrier_init(void)
{
	relay__have_membarrier =
		syscall(__NR_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) == 0;
}

static void producer_register(relay__producer *p)
{
	pthread_once(&membarrier_once, membarrier_init);
	pthread_mutex_lock(&producers_lock);
	p->all_next = producers;
	producers = p;
	p->registered = true;
	pthread_mutex_unlock(&producers_lock);
}

static void producer_unregister(relay__producer *p)
{
	if (!p->registered)
		return;
	pthread_mutex_lock(&producers_lock);
	for (relay__producer **pp = &producers; *pp; pp = &(*pp)->all_next) {
		if (*pp == p) {
			*pp = p->all_next;
			break;
		}
	}
	p->registered = false;
	pthread_mutex_unlock(&producers_lock);
}

void relay__queue_grace_period(relay__producer *self)
{
	pthread_once(&membarrier_once, membarrier_init);
	if (relay__have_membarrier)
		syscall(__NR_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0);
	else
		relay__fence();
	pthread_mutex_lock(&producers_lock);
	for (relay__producer *p = producers; p; p = p->all_next) {
		if (p == self)
			continue;
		uint64_t s = atomic_load_explicit(&p->post_seq, memory_order_acquire);
		/* A post never blocks between enter and leave: this ends. */
		while ((s & 1) && atomic_load_explicit(&p->post_seq, memory_order_acquire) == s)
			sched_yield();
	}
	pthread_mutex_unlock(&producers_lock);
}

/* ---- rings ---- */

static void drop_record(struct relay__tdata *t, struct relay__rec *rec);

static void ring_free(struct relay__ring *r)
{
	/* Records never consumed (the consumer went away first) are dropped,
	 * freed and counted. */
	while (r->consumed < atomic_load_explicit(&r->produced, memory_order_acquire)) {
		struct relay__rec *rec = (struct relay__rec *)(r->rd->data + r->rd_off);
		if (rec->kind == RELAY__REC_NEXT) {
			struct relay__chunk *n = atomic_load_explicit(&r->rd->next, memory_order_acquire);
			relay__free(r->rd);
			r->rd = n;
			r->rd_off = 0;
			continue;
		}
		r->rd_off += rec->size;
		r->consumed++;
		drop_record(r->consumer, rec);
	}
	for (struct relay__chunk *c = r->rd; c;) {
		struct relay__chunk *n = atomic_load(&c->next);
		relay__free(c);
		c = n;
	}
	relay__free(atomic_load(&r->spare));
	relay__tdata_unref(r->consumer);
	relay__free(r);
}

static void ring_unref(struct relay__ring *r)
{
	if (atomic_fetch_sub_explicit(&r->refs, 1, memory_order_acq_rel) == 1)
		ring_free(r);
}

static struct relay__ring *ring_new(struct relay__tdata *to)
{
	struct relay__ring *r = relay__calloc(sizeof *r);
	if (!r)
		return NULL;
	r->next_cap = CHUNK_MIN;
	r->wr = r->rd = chunk_new(CHUNK_MIN);
	if (!r->wr) {
		relay__free(r);
		return NULL;
	}
	atomic_init(&r->refs, 2);
	relay__tdata_ref(to);
	r->consumer = to;
	/* Lock-free push onto the consumer's registration stack; the consumer
	 * splices it in at its next pass (and checks the stack before it
	 * sleeps, so the first record's wake-up is not lost). */
	struct relay__ring *head = atomic_load(&to->q.new_rings);
	do
		r->reg_next = head;
	while (!atomic_compare_exchange_weak(&to->q.new_rings, &head, r));
	return r;
}

/* Producer: forget rings whose consumer is gone for good. */
static void prune(relay__producer *p)
{
	for (struct relay__ring **pp = &p->rings; *pp;) {
		struct relay__ring *r = *pp;
		if (atomic_load(&r->consumer->state) == RELAY__T_GONE) {
			*pp = r->pnext;
			if (p->last == r)
				p->last = NULL;
			atomic_store_explicit(&r->closed, true, memory_order_release);
			ring_unref(r);
		} else {
			pp = &r->pnext;
		}
	}
}

RELAY__NOINLINE static struct relay__ring *ring_find(relay__producer *p, struct relay__tdata *to)
{
	struct relay__ring *r;
	for (r = p->rings; r; r = r->pnext) {
		if (r->consumer == to) {
			p->last = r;
			return r;
		}
	}
	/* No pruning here: the caller may hold an object lock, and freeing a
	 * ring can run payload hooks. Idle passes prune (relay__producer_trim). */
	if (!p->registered)
		producer_register(p);
	r = ring_new(to);
	if (!r)
		return NULL;
	r->pnext = p->rings;
	p->rings = r;
	p->last = r;
	return r;
}

static inline struct relay__ring *ring_for(relay__producer *p, struct relay__tdata *to)
{
	struct relay__ring *r = p->last;
	return r && r->consumer == to ? r : ring_find(p, to);
}

/* Producer: room for a record of `size` bytes, or NULL. */
RELAY__NOINLINE static struct relay__rec *reserve_next_chunk(struct relay__ring *r, size_t size)
{
	{
		struct relay__chunk *c = chunk_get(r, size);
		if (!c)
			return NULL;
		struct relay__rec *m = (struct relay__rec *)(r->wr->data + r->wr_off);
		m->size = NEXT_SIZE;
		m->kind = RELAY__REC_NEXT;
		/* The consumer reads the marker and the link only after a later
		 * record's commit (release) is visible to it. */
		atomic_store_explicit(&r->wr->next, c, memory_order_relaxed);
		r->wr = c;
		r->wr_off = 0;
	}
	return (struct relay__rec *)(r->wr->data + r->wr_off);
}

static inline struct relay__rec *reserve(struct relay__ring *r, size_t size)
{
	if (r->wr_off + size + NEXT_SIZE > r->wr->cap)
		return reserve_next_chunk(r, size);
	return (struct relay__rec *)(r->wr->data + r->wr_off);
}

/* Publishes the record, then wakes the consumer if it announced sleep.
 * The commit is a seq_cst exchange (one locked instruction on x86, no
 * separate fence): with the consumer's seq_cst store of `sleeping` and
 * load of `produced` it forms the Dekker pair of prepare_sleep - either
 * the consumer sees this record, or this load sees it sleeping. */
/* The second half of both wake-ups: if the consumer announced sleep, the
 * one exchange that clears the flag makes the syscall. */
static inline void wake_sleeper(relay__queue *q)
{
	if (atomic_load_explicit(&q->sleeping, memory_order_seq_cst) &&
	    atomic_exchange(&q->sleeping, false)) {
		uint64_t one = 1;
		/* EAGAIN: the counter is saturated, the consumer wakes anyway. */
		while (write(q->wakefd, &one, sizeof one) < 0 && errno == EINTR)
			;
	}
}

static inline void commit_and_wake(struct relay__ring *r, struct relay__rec *rec, relay__queue *q)
{
	r->wr_off += rec->size;
	atomic_exchange_explicit(&r->produced, ++r->wr_count, memory_order_seq_cst);
	wake_sleeper(q);
}

/* Small fixed sizes become plain moves instead of a call to memcpy. */
static inline void copy_payload(void *dst, const void *src, size_t n)
{
	switch (n) {
	case 4: memcpy(dst, src, 4); break;
	case 8: memcpy(dst, src, 8); break;
	case 16: memcpy(dst, src, 16); break;
	default: memcpy(dst, src, n); break;
	}
}

static inline void copy_record(unsigned char *dst, const struct relay__rec *rec)
{
	switch (rec->size) {
	case 32: memcpy(dst, rec, 32); break;
	case 48: memcpy(dst, rec, 48); break;
	default: memcpy(dst, rec, rec->size); break;
	}
}

/* ---- producer side ---- */

void relay__queue_wake_if_sleeping(relay__queue *q)
{
	/* Pairs with the fence in relay__queue_prepare_sleep (Dekker): the
	 * caller's store (a slow-list push, or exit_pending for a quit) comes
	 * before this, so either the consumer sees it or we see it sleeping. */
	relay__fence();
	wake_sleeper(q);
}

/* One reference on conn for a record, from the references taken in bulk:
 * no atomic read-modify-write per event on a steady connection. */
static void take_conn_ref(relay__producer *p, struct relay__conn *conn)
{
	if (p->prepaid != conn) {
		if (p->prepaid)
			relay__conn_unref_n(p->prepaid, p->prepaid_n);
		p->prepaid = conn;
		p->prepaid_n = 0;
	}
	if (p->prepaid_n == 0) {
		relay__conn_ref_n(conn, PREPAID);
		p->prepaid_n = PREPAID;
	}
	p->prepaid_n--;
}

int relay__queue_post_slot(struct relay__tdata *from, struct relay__tdata *to,
			   struct relay__conn *conn, relay_object *sender, size_t argsize,
			   const void *arg, int (*copy)(void *dst, const void *src))
{
	struct relay__ring *r = ring_for(&from->prod, to);
	if (!r)
		return -ENOMEM;
	size_t size = rec_size(argsize);
	struct relay__rec *rec = reserve(r, size);
	if (!rec)
		return -ENOMEM;
	rec->size = (uint32_t)size;
	rec->kind = RELAY__REC_SLOT;
	rec->argsize = (uint16_t)argsize;
	if (argsize) {
		copy_payload(RELAY__REC_PAYLOAD(rec), arg, argsize);
		if (copy) {
			int rc = copy(RELAY__REC_PAYLOAD(rec), arg);
			if (rc < 0)
				return rc;   /* nothing committed */
		}
	}
	take_conn_ref(&from->prod, conn);
	rec->conn = conn;
	rec->u.sender = sender;
	commit_and_wake(r, rec, &to->q);
	return 0;
}

int relay__queue_post_event(struct relay__tdata *from, struct relay__tdata *to,
			    struct relay__event *ev)
{
	struct relay__ring *r = ring_for(&from->prod, to);
	if (!r)
		return -ENOMEM;
	size_t size = rec_size(0);
	struct relay__rec *rec = reserve(r, size);
	if (!rec)
		return -ENOMEM;
	rec->size = (uint32_t)size;
	rec->kind = RELAY__REC_EVENT;
	rec->argsize = 0;
	rec->conn = NULL;
	rec->u.ev = ev;
	commit_and_wake(r, rec, &to->q);
	return 0;
}

void relay__queue_push_slow_locked(relay__queue *q, struct relay__event *ev)
{
	ev->next = NULL;
	if (q->tail)
		q->tail->next = ev;
	else
		q->head = ev;
	q->tail = ev;
	atomic_store(&q->slow_pending, true);
}

void relay__producer_trim(relay__producer *p)
{
	if (p->prepaid)
		relay__conn_unref_n(p->prepaid, p->prepaid_n);
	p->prepaid = NULL;
	p->prepaid_n = 0;
	prune(p);
}

void relay__producer_close(relay__producer *p)
{
	relay__producer_trim(p);
	producer_unregister(p);
	while (p->rings) {
		struct relay__ring *r = p->rings;
		p->rings = r->pnext;
		atomic_store_explicit(&r->closed, true, memory_order_release);
		ring_unref(r);
	}
	p->last = NULL;
}

/* ---- consumer side ---- */

int relay__queue_init(relay__queue *q)
{
	memset(q, 0, sizeof *q);
	q->wakefd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (q->wakefd < 0)
		return -errno;
	int rc = pthread_mutex_init(&q->lock, NULL);
	if (rc) {
		close(q->wakefd);
		q->wakefd = -1;
		return -rc;
	}
	return 0;
}

/* Takes the consumer's references on every ring (the thread is gone;
 * their records were drained). */
static void release_rings(relay__queue *q);

void relay__queue_release_rings(struct relay__tdata *t)
{
	release_rings(&t->q);
}

static void release_rings(relay__queue *q)
{
	pthread_mutex_lock(&q->lock);
	struct relay__ring *list = q->rings;
	struct relay__ring *fresh = atomic_exchange(&q->new_rings, NULL);
	q->rings = NULL;
	pthread_mutex_unlock(&q->lock);
	while (list) {
		struct relay__ring *r = list;
		list = r->cnext;
		ring_unref(r);
	}
	while (fresh) {
		struct relay__ring *r = fresh;
		fresh = r->reg_next;
		ring_unref(r);
	}
}

void relay__queue_destroy(relay__queue *q)
{
	release_rings(q);
	if (q->wakefd >= 0)
		close(q->wakefd);
	q->wakefd = -1;
	pthread_mutex_destroy(&q->lock);
}

struct relay__event *relay__queue_take_slow(relay__queue *q)
{
	if (!atomic_load_explicit(&q->slow_pending, memory_order_acquire))
		return NULL;
	pthread_mutex_lock(&q->lock);
	struct relay__event *list = q->head;
	q->head = q->tail = NULL;
	atomic_store(&q->slow_pending, false);
	pthread_mutex_unlock(&q->lock);
	return list;
}

/* Adds newly registered rings (lock: statistics walk the list). */
static void splice_new(relay__queue *q)
{
	if (!atomic_load_explicit(&q->new_rings, memory_order_relaxed))
		return;
	pthread_mutex_lock(&q->lock);
	struct relay__ring *fresh = atomic_exchange(&q->new_rings, NULL);
	while (fresh) {
		struct relay__ring *r = fresh;
		fresh = r->reg_next;
		r->cnext = q->rings;
		q->rings = r;
	}
	pthread_mutex_unlock(&q->lock);
}

/* Frees rings whose producer left and which are drained. Not while a
 * delivery walks the list (a slot may run a nested loop). */
static void reap(struct relay__tdata *t)
{
	relay__queue *q = &t->q;
	for (struct relay__ring **pp = &q->rings; *pp;) {
		struct relay__ring *r = *pp;
		if (atomic_load_explicit(&r->closed, memory_order_acquire) &&
		    r->consumed == atomic_load_explicit(&r->produced, memory_order_acquire)) {
			pthread_mutex_lock(&q->lock);
			*pp = r->cnext;
			atomic_fetch_add_explicit(&t->reaped_posts, r->consumed, memory_order_relaxed);
			pthread_mutex_unlock(&q->lock);
			ring_unref(r);
		} else {
			pp = &r->cnext;
		}
	}
}

void relay__queue_snapshot(struct relay__tdata *t)
{
	relay__queue *q = &t->q;
	splice_new(q);
	if (t->delivering == 0)
		reap(t);
	for (struct relay__ring *r = q->rings; r; r = r->cnext)
		r->limit = atomic_load_explicit(&r->produced, memory_order_acquire);
}

/* Consumer: the record at the read position, past NEXT markers. */
static struct relay__rec *read_rec(struct relay__ring *r)
{
	for (;;) {
		struct relay__rec *rec = (struct relay__rec *)(r->rd->data + r->rd_off);
		if (rec->kind != RELAY__REC_NEXT)
			return rec;
		struct relay__chunk *old = r->rd;
		r->rd = atomic_load_explicit(&old->next, memory_order_relaxed);
		r->rd_off = 0;
		chunk_retire(r, old);
	}
}

int relay__queue_deliver(struct relay__tdata *t,
			 void (*prepare)(struct relay__tdata *, struct relay__rec *),
			 void (*deliver)(struct relay__tdata *, struct relay__rec *),
			 const atomic_bool *stop)
{
	int n = 0;
	t->delivering++;
	for (struct relay__ring *r = t->q.rings; r; r = r->cnext) {
		while (r->consumed < r->limit) {
			struct relay__rec *rec = read_rec(r);
			if (rec->kind != RELAY__REC_DEAD) {
				/* prepare may deliver other events first, which may move
				 * this record's target (taking the record along) or run
				 * a nested loop (consuming it): look again. */
				uint64_t at = r->consumed;
				prepare(t, rec);
				if (r->consumed != at)
					continue;
			}
			union relay__rec_copy copy;
			copy_record(copy.bytes, rec);
			r->rd_off += rec->size;
			r->consumed++;
			if (copy.rec.kind == RELAY__REC_DEAD)
				continue;
			deliver(t, &copy.rec);
			n++;
			if (atomic_load_explicit(stop, memory_order_relaxed))
				goto out;
		}
	}
out:
	t->delivering--;
	return n;
}

void relay__queue_scan(struct relay__tdata *t,
		       void (*visit)(struct relay__tdata *, struct relay__rec *, void *), void *arg)
{
	splice_new(&t->q);
	for (struct relay__ring *r = t->q.rings; r; r = r->cnext) {
		uint64_t end = atomic_load_explicit(&r->produced, memory_order_acquire);
		struct relay__chunk *c = r->rd;
		size_t off = r->rd_off;
		for (uint64_t i = r->consumed; i < end;) {
			struct relay__rec *rec = (struct relay__rec *)(c->data + off);
			if (rec->kind == RELAY__REC_NEXT) {
				c = atomic_load_explicit(&c->next, memory_order_relaxed);
				off = 0;
				continue;
			}
			off += rec->size;
			i++;
			if (rec->kind != RELAY__REC_DEAD)
				visit(t, rec, arg);
		}
	}
}

void relay__queue_take_rec(struct relay__rec *rec)
{
	rec->kind = RELAY__REC_DEAD;
}

bool relay__queue_pending(struct relay__tdata *t)
{
	relay__queue *q = &t->q;
	if (atomic_load_explicit(&q->slow_pending, memory_order_relaxed) ||
	    atomic_load_explicit(&q->new_rings, memory_order_relaxed))
		return true;
	for (struct relay__ring *r = q->rings; r; r = r->cnext)
		if (atomic_load_explicit(&r->produced, memory_order_relaxed) != r->consumed)
			return true;
	return false;
}

bool relay__queue_prepare_sleep(struct relay__tdata *t, const atomic_bool *abort_sleep)
{
	relay__queue *q = &t->q;
	/* seq_cst store, then seq_cst loads: the consumer's half of the
	 * Dekker pair (commit_and_wake, relay__queue_wake_if_sleeping). */
	atomic_store(&q->sleeping, true);
	relay__fence();
	bool busy = atomic_load(abort_sleep) || atomic_load(&q->slow_pending) ||
		    atomic_load(&q->new_rings) != NULL;
	for (struct relay__ring *r = q->rings; r && !busy; r = r->cnext)
		busy = atomic_load(&r->produced) != r->consumed;
	if (busy)
		atomic_store(&q->sleeping, false);
	return !busy;
}

void relay__queue_awake(relay__queue *q)
{
	atomic_store_explicit(&q->sleeping, false, memory_order_relaxed);
}

void relay__queue_clear_wake(relay__queue *q)
{
	uint64_t v;
	while (read(q->wakefd, &v, sizeof v) < 0 && errno == EINTR)
		;
}

void relay__queue_trim(struct relay__tdata *t)
{
	for (struct relay__ring *r = t->q.rings; r; r = r->cnext)
		relay__free(atomic_exchange_explicit(&r->spare, NULL, memory_order_acquire));
}

uint64_t relay__queue_ring_posts(struct relay__tdata *t)
{
	relay__queue *q = &t->q;
	uint64_t n = 0;
	pthread_mutex_lock(&q->lock);
	for (struct relay__ring *r = q->rings; r; r = r->cnext)
		n += atomic_load_explicit(&r->produced, memory_order_relaxed);
	for (struct relay__ring *r = atomic_load(&q->new_rings); r; r = r->reg_next)
		n += atomic_load_explicit(&r->produced, memory_order_relaxed);
	n += atomic_load_explicit(&t->reaped_posts, memory_order_relaxed);
	pthread_mutex_unlock(&q->lock);
	return n;
}

/* ---- dropping what cannot be delivered ---- */

static void drop_record(struct relay__tdata *t, struct relay__rec *rec)
{
	atomic_fetch_add_explicit(&t->dropped, 1, memory_order_relaxed);
	if (rec->kind == RELAY__REC_SLOT) {
		struct relay__conn *c = rec->conn;
		if (rec->argsize && c->ops && c->ops->free)
			c->ops->free(RELAY__REC_PAYLOAD(rec));
		relay__conn_unref(c);
	} else if (rec->kind == RELAY__REC_EVENT) {
		relay__event_free(rec->u.ev, RELAY_ENOTDELIVERED);
	}
	rec->kind = RELAY__REC_DEAD;
}
