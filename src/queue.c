/*
 * queue.c - the event transport: one single-producer ring per (posting
 * thread, receiving thread) pair, records stored inline; the moved list;
 * the delete mailbox; the owner token; the wake-up handshake.
 *
 * Algorithm: per-producer SPSC queues, as Seastar's per-core queues
 * (smp_message_queue): no write shared between producers, FIFO per
 * producer for free. Each ring is an unbounded SPSC queue of chunks (as
 * D. Vyukov's "unbounded SPSC queue", 1024cores.net): the producer writes
 * records into its current chunk and publishes a record count; the
 * consumer reads up to the count it loaded with an acquire. Deviations
 * from the textbook ring:
 *   - records are variable-size (24-byte header + inline payload, 16-byte
 *     aligned); when one does not fit, the producer writes a NEXT marker,
 *     links a new chunk and continues there. Chunks start at 1 KiB (a
 *     thread that posts once costs 1 KiB) and double up to 64 KiB; the
 *     consumer hands a drained chunk back as a spare, so a steady flow
 *     allocates nothing;
 *   - reserving never allocates: when a ring or a chunk is missing the
 *     poster leaves its section and makes room outside it (allocation is
 *     user code, and sections run none);
 *   - the consumer may mark committed records DEAD in place (purge, events
 *     taken away by move_to_thread): the producer never touches a record
 *     again once committed;
 *   - a consumer pass delivers the records committed when it started
 *     (relay__queue_snapshot), so events posted during delivery wait for
 *     the next pass (DESIGN.md D4).
 *
 * Wake-up handshake (a Dekker pair on seq_cst operations; models/wakeup.pml):
 *   consumer: xchg(sleeping, 1); if anything committed, moved, mailed or
 *             a quit is pending: sleeping = 0, else epoll_wait
 *   producer: xchg(produced) / the seq_cst RMW publishing its request;
 *             if sleeping: xchg(sleeping, 0) and, if it was set, write the
 *             eventfd
 * Either the consumer sees the request or the producer sees the flag; the
 * exchange lets one producer of a burst make the syscall. No fences: every
 * operation of the pair is a seq_cst access of the variable it orders, so
 * ThreadSanitizer checks the protocol as it runs.
 *
 * queue.h has the synchronisation table and the one-owner rule.
 */
#include "queue.h"
#include "internal.h"

#include <errno.h>
#include <sched.h>
#include <string.h>
#include <sys/eventfd.h>
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

/* Allocated with relay__calloc_aligned: the members on their own cache
 * lines are over-aligned for a malloc-like allocator. */
struct relay__ring {
	/* producer's */
	struct relay__chunk *wr;
	size_t wr_off;
	uint64_t wr_count;
	size_t next_cap;
	struct relay__chunk *held;            /* a spare too small, to free */
	struct relay__ring *pnext;            /* producer's list */
	struct relay__tdata *consumer;        /* counted reference */
	uint64_t producer;                    /* its producer's id (relay__producer) */
	_Alignas(64) _Atomic uint64_t produced;   /* records committed */
	/* consumer's */
	_Alignas(64) struct relay__chunk *rd;
	size_t rd_off;
	uint64_t consumed;
	uint64_t limit;                       /* this pass's snapshot */
	struct relay__ring *cnext;            /* consumer's list (q->lock to change) */
	/* shared, rarely written */
	_Alignas(64) struct relay__chunk *_Atomic spare;
	atomic_int refs;                      /* producer + consumer */
	atomic_bool closed;                   /* the producer has gone */
};

_Static_assert(sizeof(struct relay__rec) == 24, "the record header layout");

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

static bool fits(const struct relay__chunk *c, size_t off, size_t size)
{
	return off + size + NEXT_SIZE <= c->cap;
}

/* Producer: ends the current chunk with a NEXT marker and continues in c. */
static void chunk_switch(struct relay__ring *r, struct relay__chunk *c)
{
	atomic_store_explicit(&c->next, NULL, memory_order_relaxed);
	struct relay__rec *m = (struct relay__rec *)(r->wr->data + r->wr_off);
	m->size = NEXT_SIZE;
	m->kind = RELAY__REC_NEXT;
	/* The consumer reads the marker and the link only after a later
	 * record's commit is visible to it. */
	atomic_store_explicit(&r->wr->next, c, memory_order_relaxed);
	r->wr = c;
	r->wr_off = 0;
}

/* Producer, no allocation, no free: the spare chunk the consumer handed
 * back, if it is big enough (a steady flow lives on two chunks). The spare
 * is not read before it is taken: until the exchange the consumer may
 * replace and free it (chunk_retire, relay__queue_trim). One too small is
 * kept aside in `held` and freed by grow, outside the section: a free may
 * run the user's allocator. */
static bool switch_to_spare(struct relay__ring *r, size_t size)
{
	if (!atomic_load_explicit(&r->spare, memory_order_relaxed) || r->held)
		return false;
	/* acquire: the consumer is done reading it */
	struct relay__chunk *c = atomic_exchange_explicit(&r->spare, NULL, memory_order_acquire);
	if (!c)
		return false;
	if (!fits(c, 0, size)) {
		r->held = c;
		return false;
	}
	chunk_switch(r, c);
	return true;
}

/* Producer, outside any section: a new chunk for a backlog. Grows, so a
 * flood takes fewer, larger chunks, and lets the consumer run (on a loaded
 * machine a flooding producer would otherwise take its CPU time). */
static int grow(struct relay__ring *r, size_t size)
{
	relay__free(r->held);   /* too small for this record */
	r->held = NULL;
	if (switch_to_spare(r, size))
		return 0;
	if (r->next_cap >= CHUNK_MAX)
		sched_yield();
	size_t cap = r->next_cap;
	while (cap < size + NEXT_SIZE)
		cap *= 2;
	if (r->next_cap < CHUNK_MAX)
		r->next_cap *= 2;
	struct relay__chunk *c = chunk_new(cap);
	if (!c)
		return -ENOMEM;
	chunk_switch(r, c);
	return 0;
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

/* ---- rings ---- */

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
		if (rec->kind != RELAY__REC_DEAD)
			relay__rec_drop(r->consumer, rec);
	}
	for (struct relay__chunk *c = r->rd; c;) {
		struct relay__chunk *n = atomic_load(&c->next);
		relay__free(c);
		c = n;
	}
	relay__free(atomic_load(&r->spare));
	relay__free(r->held);
	relay__tdata_unref(r->consumer);
	relay__free_aligned(r);
}

static void ring_unref(struct relay__ring *r)
{
	if (atomic_fetch_sub_explicit(&r->refs, 1, memory_order_acq_rel) == 1)
		ring_free(r);
}

/* Registers r with its consumer, unless the consumer's queue is closed for
 * good (its thread is gone and drained): then r is the producer's alone,
 * and what it posts there is dropped when it lets go. */
static void ring_register(struct relay__ring *r, struct relay__tdata *to)
{
	relay__queue *q = &to->q;
	pthread_mutex_lock(&q->lock);
	if (!q->closed) {
		r->cnext = atomic_load_explicit(&q->new_rings, memory_order_relaxed);
		/* seq_cst: the consumer's prepare_sleep looks at it (handshake) */
		atomic_store_explicit(&q->new_rings, r, memory_order_seq_cst);
		atomic_fetch_add_explicit(&r->refs, 1, memory_order_relaxed);
	}
	pthread_mutex_unlock(&q->lock);
}

static struct relay__ring *ring_new(struct relay__tdata *from, struct relay__tdata *to)
{
	struct relay__ring *r = relay__calloc_aligned(sizeof *r, 64);
	if (!r)
		return NULL;
	r->next_cap = CHUNK_MIN;
	r->wr = r->rd = chunk_new(CHUNK_MIN);
	if (!r->wr) {
		relay__free_aligned(r);
		return NULL;
	}
	atomic_init(&r->refs, 1);   /* the producer's; the consumer's on registration */
	relay__tdata_ref(to);
	r->consumer = to;
	/* Written before registration (q->lock): the consumer reads it. An
	 * id, not the record's address: a new thread may get the address of
	 * one that is gone, and would then wait for its rest. */
	static atomic_uint_fast64_t next_id;
	if (!from->prod.id)
		from->prod.id = atomic_fetch_add_explicit(&next_id, 1, memory_order_relaxed) + 1;
	r->producer = from->prod.id;
	ring_register(r, to);
	return r;
}

/* Producer: forget rings whose consumer is gone for good. */
static void prune(relay__producer *p)
{
	for (struct relay__ring **pp = &p->rings; *pp;) {
		struct relay__ring *r = *pp;
		if (relay__tstate_gone(relay__tstate(r->consumer))) {
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

static struct relay__ring *ring_lookup(relay__producer *p, struct relay__tdata *to)
{
	struct relay__ring *r = p->last;
	if (r && r->consumer == to)
		return r;
	for (r = p->rings; r; r = r->pnext) {
		if (r->consumer == to) {
			p->last = r;
			return r;
		}
	}
	return NULL;
}

/* ---- producer side ---- */

/* Room for a record of `size` bytes, or NULL when getting it needs
 * memory. Allocates nothing, takes no lock. */
static inline struct relay__rec *reserve(struct relay__tdata *from, struct relay__tdata *to,
					 size_t size)
{
	struct relay__ring *r = ring_lookup(&from->prod, to);
	if (RELAY__UNLIKELY(!r))
		return NULL;
	if (RELAY__UNLIKELY(!fits(r->wr, r->wr_off, size)) && !switch_to_spare(r, size))
		return NULL;
	return (struct relay__rec *)(r->wr->data + r->wr_off);
}

int relay__queue_make_room(struct relay__tdata *from, struct relay__tdata *to, size_t size)
{
	relay__producer *p = &from->prod;
	struct relay__ring *r = ring_lookup(p, to);
	if (!r) {
		/* A new pair: a good moment to forget rings to threads that are
		 * gone (no section, no lock here), so a producer that never idles
		 * does not keep them. */
		prune(p);
		r = ring_new(from, to);
		if (!r)
			return -ENOMEM;
		r->pnext = p->rings;
		p->rings = r;
		p->last = r;
	}
	if (fits(r->wr, r->wr_off, size))
		return 0;
	return grow(r, size);
}

/* If the consumer announced sleep, the one exchange that clears the flag
 * makes the syscall. `wakers` lets the queue's closer wait for a writer
 * that won the exchange before it closes the eventfd. */
RELAY__NOINLINE static void wake_slow(relay__queue *q)
{
	atomic_fetch_add_explicit(&q->wakers, 1, memory_order_seq_cst);
	if (atomic_exchange(&q->sleeping, false)) {
		uint64_t one = 1;
		int fd = atomic_load_explicit(&q->wakefd, memory_order_relaxed);
		/* EAGAIN: the counter is saturated, the consumer wakes anyway. */
		while (fd >= 0 && write(fd, &one, sizeof one) < 0 && errno == EINTR)
			;
	}
	atomic_fetch_sub_explicit(&q->wakers, 1, memory_order_release);
}

static inline void wake_sleeper(relay__queue *q)
{
	if (atomic_load_explicit(&q->sleeping, memory_order_seq_cst))
		wake_slow(q);
}

static inline void commit(struct relay__tdata *from, struct relay__tdata *to,
			  struct relay__rec *rec)
{
	struct relay__ring *r = from->prod.last;   /* the one reserve used */
	r->wr_off += rec->size;
	/* seq_cst exchange (one locked instruction on x86): the commit and the
	 * producer's half of the wake-up handshake. */
	atomic_exchange_explicit(&r->produced, ++r->wr_count, memory_order_seq_cst);
	wake_sleeper(&to->q);
}

/* One reference on conn for a record, from references taken in bulk: no
 * atomic read-modify-write per event on a steady connection. */
static inline void take_conn_ref(struct relay__tdata *from, struct relay__conn *conn)
{
	relay__producer *p = &from->prod;
	if (RELAY__UNLIKELY(p->prepaid != conn)) {
		/* Returned after the section (relay__queue_release_stale). */
		if (p->prepaid) {
			if (p->stale)
				relay__queue_release_stale(p);   /* cannot happen: one post a section */
			p->stale = p->prepaid;
			p->stale_n = p->prepaid_n;
		}
		p->prepaid = conn;
		p->prepaid_n = 0;
	}
	if (p->prepaid_n == 0) {
		relay__conn_ref_n(conn, PREPAID);
		p->prepaid_n = PREPAID;
	}
	p->prepaid_n--;
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

bool relay__queue_push_slot(struct relay__tdata *from, struct relay__tdata *to,
			    struct relay__conn *conn, relay_object *sender, size_t argsize,
			    const void *arg)
{
	size_t size = relay__rec_size(argsize);
	struct relay__rec *rec = reserve(from, to, size);
	if (RELAY__UNLIKELY(!rec))
		return false;
	rec->size = (uint32_t)size;
	rec->kind = RELAY__REC_SLOT;
	rec->argsize = (uint16_t)argsize;
	if (argsize)
		copy_payload(RELAY__REC_PAYLOAD(rec), arg, argsize);
	take_conn_ref(from, conn);
	rec->conn = conn;
	rec->u.sender = sender;
	commit(from, to, rec);
	return true;
}

bool relay__queue_push_event(struct relay__tdata *from, struct relay__tdata *to,
			     struct relay__event *ev)
{
	size_t size = relay__rec_size(0);
	struct relay__rec *rec = reserve(from, to, size);
	if (!rec)
		return false;
	rec->size = (uint32_t)size;
	rec->kind = RELAY__REC_EVENT;
	rec->argsize = 0;
	rec->conn = NULL;
	rec->u.ev = ev;
	commit(from, to, rec);
	return true;
}

void relay__queue_push_moved_locked(relay__queue *q, struct relay__event *ev)
{
	ev->next = NULL;
	if (q->tail)
		q->tail->next = ev;
	else
		q->head = ev;
	q->tail = ev;
	atomic_store_explicit(&q->moved_pending, true, memory_order_seq_cst);
}

void relay__queue_push_timer_locked(struct relay__tdata *to, struct relay__timerdata *td)
{
	relay__queue *q = &to->q;
	td->move_next = q->timers;   /* order does not matter: deadlines do */
	q->timers = td;
	atomic_store(&td->moved_to, to);
	atomic_store_explicit(&q->moved_pending, true, memory_order_seq_cst);
}

void relay__queue_unlink_timer(struct relay__timerdata *td)
{
	struct relay__tdata *t = atomic_load(&td->moved_to);
	if (!t)
		return;
	pthread_mutex_lock(&t->q.lock);
	if (atomic_load(&td->moved_to) == t) {
		for (struct relay__timerdata **pp = &t->q.timers; *pp; pp = &(*pp)->move_next) {
			if (*pp == td) {
				*pp = td->move_next;
				break;
			}
		}
		atomic_store(&td->moved_to, NULL);
	}
	pthread_mutex_unlock(&t->q.lock);
}

void relay__queue_mail(relay__queue *q, struct relay__anchor *a)
{
	struct relay__anchor *head = atomic_load_explicit(&q->mail, memory_order_relaxed);
	do
		a->mail_next = head;
	while (!atomic_compare_exchange_weak_explicit(&q->mail, &head, a, memory_order_seq_cst,
						      memory_order_relaxed));
}

void relay__queue_wake_if_sleeping(relay__queue *q)
{
	wake_sleeper(q);
}

void relay__queue_release_stale(relay__producer *p)
{
	struct relay__conn *c = p->stale;
	uint32_t n = p->stale_n;
	p->stale = NULL;
	p->stale_n = 0;
	if (c)
		relay__conn_unref_n(c, n);
}

void relay__producer_trim(relay__producer *p)
{
	relay__queue_release_stale(p);
	if (p->prepaid)
		relay__conn_unref_n(p->prepaid, p->prepaid_n);
	p->prepaid = NULL;
	p->prepaid_n = 0;
	prune(p);
}

void relay__producer_close(relay__producer *p)
{
	relay__producer_trim(p);
	while (p->rings) {
		struct relay__ring *r = p->rings;
		p->rings = r->pnext;
		atomic_store_explicit(&r->closed, true, memory_order_release);
		ring_unref(r);
	}
	p->last = NULL;
}

/* ---- the owner token ---- */

bool relay__queue_own(relay__queue *q)
{
	int free_ = 0;
	return atomic_compare_exchange_strong_explicit(&q->owner, &free_, 1, memory_order_seq_cst,
						       memory_order_seq_cst);
}

void relay__queue_disown(relay__queue *q)
{
	/* seq_cst: a thread whose own() failed left its request before; the
	 * former owner looks for it after this (relay__loop_serve). */
	atomic_store_explicit(&q->owner, 0, memory_order_seq_cst);
}

/* ---- consumer side ---- */

int relay__queue_init(relay__queue *q)
{
	memset(q, 0, sizeof *q);
	atomic_init(&q->wakefd, -1);
	int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (fd < 0)
		return -errno;
	int rc = pthread_mutex_init(&q->lock, NULL);
	if (rc) {
		close(fd);
		return -rc;
	}
	atomic_store(&q->wakefd, fd);
	return 0;
}

/* The consumer's references on every ring, and the queue closed to new
 * ones. */
static void release_rings(relay__queue *q)
{
	pthread_mutex_lock(&q->lock);
	q->closed = true;
	struct relay__ring *list = q->rings, *fresh = atomic_load(&q->new_rings);
	q->rings = NULL;
	q->resume = NULL;
	atomic_store(&q->new_rings, NULL);
	pthread_mutex_unlock(&q->lock);
	while (list) {
		struct relay__ring *r = list;
		list = r->cnext;
		ring_unref(r);
	}
	while (fresh) {
		struct relay__ring *r = fresh;
		fresh = r->cnext;
		ring_unref(r);
	}
}

/* Nobody sleeps on a closed queue any more; a producer that won the
 * sleeping exchange before may still be writing: wait for it, then close. */
static void close_wakefd(relay__queue *q)
{
	atomic_exchange(&q->sleeping, false);
	while (atomic_load_explicit(&q->wakers, memory_order_seq_cst) != 0)
		sched_yield();
	int fd = atomic_exchange(&q->wakefd, -1);
	if (fd >= 0)
		close(fd);
}

void relay__queue_close(struct relay__tdata *t)
{
	release_rings(&t->q);
	close_wakefd(&t->q);
}

void relay__queue_destroy(relay__queue *q)
{
	release_rings(q);
	close_wakefd(q);
	/* Moved events and timers left (a drain took them normally). */
	for (struct relay__event *ev = q->head; ev;) {
		struct relay__event *n = ev->next;
		relay__event_free(ev, RELAY_ENOTDELIVERED);
		ev = n;
	}
	q->head = q->tail = NULL;
	while (q->timers) {   /* timers are their objects'; single shots ours */
		struct relay__timerdata *td = q->timers;
		q->timers = td->move_next;
		atomic_store(&td->moved_to, NULL);
		if (!td->owner)
			relay__single_shot_free(td);
	}
	struct relay__anchor *a = atomic_exchange(&q->mail, NULL);
	while (a) {
		struct relay__anchor *n = a->mail_next;
		relay__anchor_unref(a);
		a = n;
	}
	pthread_mutex_destroy(&q->lock);
}

struct relay__event *relay__queue_take_moved(relay__queue *q, struct relay__timerdata **timers)
{
	*timers = NULL;
	if (!atomic_load_explicit(&q->moved_pending, memory_order_acquire))
		return NULL;
	pthread_mutex_lock(&q->lock);
	struct relay__event *list = q->head;
	*timers = q->timers;
	for (struct relay__timerdata *td = q->timers; td; td = td->move_next)
		atomic_store(&td->moved_to, NULL);
	q->head = q->tail = NULL;
	q->timers = NULL;
	atomic_store(&q->moved_pending, false);
	pthread_mutex_unlock(&q->lock);
	return list;
}

struct relay__anchor *relay__queue_take_mail(relay__queue *q)
{
	if (!atomic_load_explicit(&q->mail, memory_order_relaxed))
		return NULL;
	struct relay__anchor *a = atomic_exchange_explicit(&q->mail, NULL, memory_order_acquire);
	struct relay__anchor *fifo = NULL;   /* the stack is newest first */
	while (a) {
		struct relay__anchor *n = a->mail_next;
		a->mail_next = fifo;
		fifo = a;
		a = n;
	}
	return fifo;
}

/* Adds newly registered rings at the end of the list, oldest first (lock:
 * statistics walk the list). A pass drains the rings in list order, so a
 * thread that posts through a new ring - a relay thread started again, or
 * a producer whose old ring to us was forgotten - has its earlier ring
 * drained first: its posts keep their order (D4). */
static void splice_new(relay__queue *q)
{
	if (!atomic_load_explicit(&q->new_rings, memory_order_relaxed))
		return;
	pthread_mutex_lock(&q->lock);
	struct relay__ring *fresh = atomic_exchange(&q->new_rings, NULL), *oldest = NULL;
	while (fresh) {   /* the registration stack is newest first: reverse it */
		struct relay__ring *r = fresh;
		fresh = r->cnext;
		r->cnext = oldest;
		oldest = r;
	}
	struct relay__ring **tail = &q->rings;
	while (*tail)
		tail = &(*tail)->cnext;
	*tail = oldest;
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
			if (q->resume == r)
				q->resume = r->cnext;
			atomic_fetch_add_explicit(&q->reaped_posts, r->consumed, memory_order_relaxed);
			pthread_mutex_unlock(&q->lock);
			ring_unref(r);
		} else {
			pp = &r->cnext;
		}
	}
}

void relay__queue_reap(struct relay__tdata *t)
{
	splice_new(&t->q);
	if (t->delivering == 0)
		reap(t);
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

/* Small fixed sizes become plain moves instead of a call to memcpy. */
static inline void copy_record(unsigned char *dst, const struct relay__rec *rec)
{
	switch (rec->size) {
	case 32: memcpy(dst, rec, 32); break;
	case 48: memcpy(dst, rec, 48); break;
	default: memcpy(dst, rec, rec->size); break;
	}
}

struct deliver_fns {
	void (*prepare)(struct relay__tdata *, struct relay__rec *);
	void (*deliver)(struct relay__tdata *, struct relay__rec *);
	bool (*stop)(struct relay__tdata *);
};

/* Delivers r's records up to this pass's snapshot; true when stop() cut
 * the pass short. */
static bool deliver_ring(struct relay__tdata *t, struct relay__ring *r,
			 const struct deliver_fns *f, int *n)
{
	while (r->consumed < r->limit) {
		struct relay__rec *rec = read_rec(r);
		if (rec->kind != RELAY__REC_DEAD) {
			/* prepare may deliver other events first, which may move
			 * this record's target (taking the record along) or run
			 * a nested loop (consuming it): look again. */
			uint64_t at = r->consumed;
			f->prepare(t, rec);
			if (r->consumed != at)
				continue;
		}
		union relay__rec_copy copy;
		copy_record(copy.bytes, rec);
		r->rd_off += rec->size;
		r->consumed++;
		if (copy.rec.kind == RELAY__REC_DEAD)
			continue;
		f->deliver(t, &copy.rec);
		(*n)++;
		if (f->stop(t))
			return true;
	}
	return false;
}

/* Has r's producer an older ring in the list with records still to
 * deliver? (The list is oldest first; a producer is a few per consumer.) */
static bool older_pending(const relay__queue *q, const struct relay__ring *r)
{
	for (const struct relay__ring *x = q->rings; x != r; x = x->cnext)
		if (x->producer == r->producer && x->consumed < x->limit)
			return true;
	return false;
}

int relay__queue_deliver(struct relay__tdata *t,
			 void (*prepare)(struct relay__tdata *, struct relay__rec *),
			 void (*deliver)(struct relay__tdata *, struct relay__rec *),
			 bool (*stop)(struct relay__tdata *))
{
	const struct deliver_fns f = { prepare, deliver, stop };
	int n = 0;
	t->delivering++;
	/* Round the list: a pass cut short (a budget, a quit) goes on at the
	 * ring after the one it stopped in, then wraps, so a producer with a
	 * long backlog cannot keep the rings after it waiting while a host's
	 * budget keeps cutting passes short. A ring whose producer has an
	 * older ring here with records left (a relay_thread run again: its
	 * first run's ring is closed, the list is oldest first) waits for it,
	 * so each producer's posts stay in order (D4). */
	struct relay__ring *start = t->q.resume ? t->q.resume : t->q.rings;
	t->q.resume = NULL;
	bool wrapped = false;
	for (struct relay__ring *r = start; r;) {
		if (!older_pending(&t->q, r) && deliver_ring(t, r, &f, &n)) {
			t->q.resume = r->cnext;   /* the next ring first, then r again */
			goto out;
		}
		r = r->cnext;
		if (!r && !wrapped && start != t->q.rings) {
			wrapped = true;
			r = t->q.rings;
		}
		if (wrapped && r == start)
			break;
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
		uint64_t end = atomic_load_explicit(&r->produced, memory_order_seq_cst);
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
	if (atomic_load_explicit(&q->moved_pending, memory_order_relaxed) ||
	    atomic_load_explicit(&q->mail, memory_order_relaxed) ||
	    atomic_load_explicit(&q->new_rings, memory_order_relaxed))
		return true;
	for (struct relay__ring *r = q->rings; r; r = r->cnext)
		if (atomic_load_explicit(&r->produced, memory_order_relaxed) != r->consumed)
			return true;
	return false;
}

bool relay__queue_prepare_sleep(struct relay__tdata *t, bool (*busy)(struct relay__tdata *))
{
	relay__queue *q = &t->q;
	/* The consumer's half of the Dekker pair: a seq_cst exchange, then
	 * seq_cst loads of everything a producer publishes. */
	atomic_exchange_explicit(&q->sleeping, true, memory_order_seq_cst);
	bool work = busy(t) || atomic_load(&q->moved_pending) || atomic_load(&q->mail) ||
		    atomic_load(&q->new_rings) != NULL;
	for (struct relay__ring *r = q->rings; r && !work; r = r->cnext)
		work = atomic_load(&r->produced) != r->consumed;
	if (work)
		atomic_store(&q->sleeping, false);
	return !work;
}

void relay__queue_awake(relay__queue *q)
{
	atomic_store_explicit(&q->sleeping, false, memory_order_relaxed);
}

void relay__queue_clear_wake(relay__queue *q)
{
	uint64_t v;
	int fd = atomic_load_explicit(&q->wakefd, memory_order_relaxed);
	while (fd >= 0 && read(fd, &v, sizeof v) < 0 && errno == EINTR)
		;
}

void relay__queue_trim(struct relay__tdata *t)
{
	for (struct relay__ring *r = t->q.rings; r; r = r->cnext)
		relay__free(atomic_exchange_explicit(&r->spare, NULL, memory_order_acquire));
}

/* acquire: a thread that sees a post counted also sees what its poster
 * did before it (tests wait on these counts). */
uint64_t relay__queue_ring_posts(struct relay__tdata *t)
{
	relay__queue *q = &t->q;
	uint64_t n = 0;
	pthread_mutex_lock(&q->lock);
	for (struct relay__ring *r = q->rings; r; r = r->cnext)
		n += atomic_load_explicit(&r->produced, memory_order_acquire);
	for (struct relay__ring *r = atomic_load(&q->new_rings); r; r = r->cnext)
		n += atomic_load_explicit(&r->produced, memory_order_acquire);
	n += atomic_load_explicit(&q->reaped_posts, memory_order_acquire);
	pthread_mutex_unlock(&q->lock);
	return n;
}
