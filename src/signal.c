/*
 * signal.c - connections, emit and disconnect (DESIGN.md D1-D9).
 *
 * A signal holds a pointer to an immutable snapshot: an array of its
 * connections, replaced (copy-on-write) under the sender's object lock on
 * every connect and disconnect; the array is allocated before the lock is
 * taken (and the step retried if the signal changed meanwhile), so no
 * allocator runs under a lock. An emission takes a reference to the
 * snapshot that is current when it starts and calls exactly those
 * connections (so connections made meanwhile are not called by it, D9),
 * skipping any that died since. A signal with no connection holds NULL:
 * an unconnected emit is one load and a branch.
 *
 * A connection is reference counted (by the snapshots holding it, its
 * queued events, and its "linked" state) and has two independent lives:
 *   alive   - cleared by relay_disconnect: queued events for it drop (D6);
 *   ranchor - the receiver's anchor, whose obj is cleared when the
 *             receiver's destruction begins: queued events drop (D7).
 * A sender's destruction or a single-shot's first emit only unlinks the
 * connection (no new emits reach it) and keeps both lives, so events
 * already queued still arrive (D7).
 *
 * D6 across threads: every slot call checks `alive` inside a section
 * (grace.h) and records itself in the caller's call frames before leaving
 * it; relay_disconnect clears `alive` and waits a grace period, so when it
 * returns no thread can still be between the check and the call, and
 * relay_disconnect_wait can also wait for the calls the frames show.
 */
#include "internal.h"

#include <string.h>

/* ---- snapshots ---- */

struct relay__snap {
	atomic_int refs;
	size_t n;
	struct relay__conn *c[];
};

static struct relay__snap *snap_of(const relay_signal *sig)
{
	return atomic_load_explicit(&((relay_signal *)sig)->relay__conns, memory_order_acquire);
}

static void snap_release(struct relay__snap *s)
{
	if (!s || atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) != 1)
		return;
	for (size_t i = 0; i < s->n; i++)
		relay__conn_unref(s->c[i]);
	relay__free(s);
}

/* Linked connections of sig's current snapshot. Sender's lock held. */
static size_t linked_count_locked(const relay_signal *sig)
{
	struct relay__snap *s = snap_of(sig);
	size_t n = 0;
	for (size_t i = 0; s && i < s->n; i++)
		n += s->c[i]->linked;
	return n;
}

/* Room for cap connections, outside any lock (NULL for 0 or ENOMEM). */
static struct relay__snap *snap_alloc(size_t cap)
{
	if (cap == 0)
		return NULL;
	struct relay__snap *s = relay__alloc(sizeof *s + cap * sizeof s->c[0]);
	if (s) {
		atomic_init(&s->refs, 1);   /* the signal's */
		s->n = 0;
	}
	return s;
}

/* Fills s (room for cap) with sig's linked connections plus `add`; false
 * when it does not fit (the signal changed since s was sized). Sender's
 * lock held. */
static bool snap_fill_locked(relay_signal *sig, struct relay__conn *add, struct relay__snap *s,
			     size_t cap)
{
	if (linked_count_locked(sig) + (add != NULL) > cap)
		return false;
	struct relay__snap *old = snap_of(sig);
	for (size_t i = 0; old && i < old->n; i++) {
		if (old->c[i]->linked) {
			relay__conn_ref(old->c[i]);
			s->c[s->n++] = old->c[i];
		}
	}
	if (add) {
		relay__conn_ref(add);
		s->c[s->n++] = add;
	}
	return true;
}

/* Publishes s (NULL: unconnected) and returns the old one to release
 * after unlocking. Sender's object lock held. */
static struct relay__snap *snap_publish_locked(relay_signal *sig, struct relay__snap *s)
{
	/* release: an emitter that loads s sees its contents. */
	return atomic_exchange_explicit(&sig->relay__conns, s, memory_order_acq_rel);
}

/* ---- the registry: connection ids to connections ---- */

#define NBUCKETS 1024
static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static struct relay__conn *buckets[NBUCKETS];     /* guarded by reg_lock */
static atomic_uint_fast64_t next_id = 1;

static void reg_insert(struct relay__conn *c)
{
	pthread_mutex_lock(&reg_lock);
	struct relay__conn **b = &buckets[c->id % NBUCKETS];
	c->reg_next = *b;
	*b = c;
	pthread_mutex_unlock(&reg_lock);
}

static void reg_remove(struct relay__conn *c)
{
	pthread_mutex_lock(&reg_lock);
	for (struct relay__conn **pp = &buckets[c->id % NBUCKETS]; *pp; pp = &(*pp)->reg_next) {
		if (*pp == c) {
			*pp = c->reg_next;
			break;
		}
	}
	pthread_mutex_unlock(&reg_lock);
}

/* Returns the connection with a reference taken, or NULL. */
static struct relay__conn *reg_find(relay_connection id)
{
	struct relay__conn *found = NULL;
	pthread_mutex_lock(&reg_lock);
	for (struct relay__conn *c = buckets[id % NBUCKETS]; c; c = c->reg_next) {
		if (c->id == id) {
			relay__conn_ref(c);
			found = c;
			break;
		}
	}
	pthread_mutex_unlock(&reg_lock);
	return found;
}

/* ---- connections ---- */

void relay__conn_ref(struct relay__conn *c)
{
	atomic_fetch_add_explicit(&c->refs, 1, memory_order_relaxed);
}

void relay__conn_ref_n(struct relay__conn *c, uint32_t n)
{
	atomic_fetch_add_explicit(&c->refs, (int)n, memory_order_relaxed);
}

static void conn_free(struct relay__conn *c)
{
	relay__anchor_unref(c->ranchor);
	relay__free(c);
}

void relay__conn_unref_n(struct relay__conn *c, uint32_t n)
{
	if (n && atomic_fetch_sub_explicit(&c->refs, (int)n, memory_order_acq_rel) == (int)n)
		conn_free(c);
}

void relay__conn_unref(struct relay__conn *c)
{
	relay__conn_unref_n(c, 1);
}

relay_object *relay_sender(void)
{
	return relay__tls.sender;
}

static void list_unlink(struct relay__conn **head, struct relay__conn *c, bool in)
{
	struct relay__conn *prev = in ? c->in_prev : c->out_prev;
	struct relay__conn *next = in ? c->in_next : c->out_next;
	if (prev)
		*(in ? &prev->in_next : &prev->out_next) = next;
	else if (*head == c)
		*head = next;
	if (next)
		*(in ? &next->in_prev : &next->out_prev) = prev;
}

static void list_push(struct relay__conn **head, struct relay__conn *c, bool in)
{
	if (in) {
		c->in_prev = NULL;
		c->in_next = *head;
		if (*head)
			(*head)->in_prev = c;
	} else {
		c->out_prev = NULL;
		c->out_next = *head;
		if (*head)
			(*head)->out_prev = c;
	}
	*head = c;
}

static pthread_mutex_t *recv_lock(const struct relay__conn *c)
{
	return relay__objlock(c->receiver ? (void *)c->receiver : (void *)c->sender);
}

/* Under both locks: takes c out of its signal's snapshot and both
 * objects' lists. The new snapshot is s (sized for cap others), or none
 * when nothing is left; without s (no memory) c stays in the old one,
 * unlinked, and emitters skip it. Returns 1 (nothing changed) when s
 * turned out too small, else 0 with *used telling whether s was taken. */
static int unlink_locked(struct relay__conn *c, struct relay__snap *s, size_t cap,
			 struct relay__snap **old, bool *used)
{
	c->linked = false;
	*old = NULL;
	*used = false;
	if (linked_count_locked(c->signal) == 0) {
		*old = snap_publish_locked(c->signal, NULL);
	} else if (s) {
		if (!snap_fill_locked(c->signal, NULL, s, cap)) {
			c->linked = true;
			return 1;
		}
		*old = snap_publish_locked(c->signal, s);
		*used = true;
	}
	if (c->sender->relay__ext)
		list_unlink(&c->sender->relay__ext->outgoing, c, false);
	if (c->receiver && c->receiver->relay__ext)
		list_unlink(&c->receiver->relay__ext->incoming, c, true);
	return 0;
}

/* Unlinks c from its signal and both objects; with `kill` also ends its
 * life (its queued events drop). Returns -ENOENT if it was not linked. */
static int conn_unlink(struct relay__conn *c, bool kill)
{
	pthread_mutex_t *sl = relay__objlock(c->sender), *rl = recv_lock(c);
	for (;;) {
		relay__lock2(sl, rl);
		if (kill)
			atomic_store(&c->alive, false);
		bool linked = c->linked;
		size_t others = linked ? linked_count_locked(c->signal) - 1 : 0;
		relay__unlock2(sl, rl);
		if (!linked)
			return -ENOENT;
		struct relay__snap *s = snap_alloc(others), *old = NULL;
		bool used = false;
		relay__lock2(sl, rl);
		int step = c->linked ? unlink_locked(c, s, others, &old, &used) : -ENOENT;
		relay__unlock2(sl, rl);
		if (!used)
			relay__free(s);
		if (step == 1)
			continue;   /* connected meanwhile: size it again */
		if (step < 0)
			return step;
		reg_remove(c);
		snap_release(old);
		relay__conn_unref(c);   /* the linked state's reference */
		return 0;
	}
}

static bool is_duplicate_locked(const relay_signal *sig, const struct relay__conn *c)
{
	struct relay__snap *s = snap_of(sig);
	for (size_t i = 0; s && i < s->n; i++) {
		const struct relay__conn *o = s->c[i];
		if (o->linked && o->receiver == c->receiver && o->fn == c->fn && o->data == c->data)
			return true;
	}
	return false;
}

static int check_connect_args(relay_signal *sig, relay_object *sender, relay_object *receiver,
			      relay_slot_fn fn, int arity, relay_connection_type type,
			      unsigned flags)
{
	if (!sig || !sender || !fn || arity == 0 || arity > 2 || arity < -2)
		return -EINVAL;
	if (!sender->relay__class || (receiver && !receiver->relay__class))
		return -EINVAL;
	if (arity > 0 && !receiver)
		return -EINVAL;
	if (!receiver && type != RELAY_AUTO && type != RELAY_DIRECT)
		return -EINVAL;   /* no context: no thread to queue to */
	if ((unsigned)type > RELAY_BLOCKING || (flags & ~(RELAY_UNIQUE | RELAY_SINGLE_SHOT)))
		return -EINVAL;
	int rc = relay__obj_check(sender, "relay_connect");
	if (rc == 0 && receiver)
		rc = relay__obj_check(receiver, "relay_connect");
	return rc;
}

static bool dying(const relay_object *o)
{
	return o && (atomic_load(&((relay_object *)o)->relay__flags) & RELAY__OBJ_DESTROYING);
}

/* What a connect allocates before it takes the locks. */
struct link_spare {
	struct relay__objext *sx, *rx;
	struct relay__snap *s;
	size_t cap;
};

/* Links c (fully set up) under both object locks. Returns 0, an error, or
 * 1 when the snapshot turned out too small (size it again). */
static int conn_link_locked(struct relay__conn *c, struct link_spare *sp,
			    struct relay__snap **old)
{
	relay_object *sender = c->sender, *receiver = c->receiver;
	if (dying(sender) || dying(receiver))
		return RELAY_EDESTROYED;
	if ((c->flags & RELAY_UNIQUE) && is_duplicate_locked(c->signal, c))
		return -EEXIST;
	struct relay__objext *sx = relay__ext_locked(sender, &sp->sx);
	struct relay__objext *rx = receiver ? relay__ext_locked(receiver, &sp->rx) : NULL;
	if (!sx || (receiver && !rx) || !sp->s)
		return -ENOMEM;
	c->ops = c->signal->relay__ops;
	if (!snap_fill_locked(c->signal, c, sp->s, sp->cap))
		return 1;
	c->linked = true;
	*old = snap_publish_locked(c->signal, sp->s);
	sp->s = NULL;
	list_push(&sx->outgoing, c, false);
	if (rx)
		list_push(&rx->incoming, c, true);
	return 0;
}

static int conn_link(struct relay__conn *c)
{
	pthread_mutex_t *sl = relay__objlock(c->sender), *rl = recv_lock(c);
	struct link_spare sp = { 0 };
	sp.sx = relay__calloc(sizeof *sp.sx);
	sp.rx = c->receiver ? relay__calloc(sizeof *sp.rx) : NULL;
	int rc;
	struct relay__snap *old = NULL;
	do {
		relay__lock2(sl, rl);
		sp.cap = linked_count_locked(c->signal) + 1;
		relay__unlock2(sl, rl);
		relay__free(sp.s);
		sp.s = snap_alloc(sp.cap);
		relay__lock2(sl, rl);
		rc = conn_link_locked(c, &sp, &old);
		if (rc == 0)
			reg_insert(c);   /* registry lock nests inside object locks */
		relay__unlock2(sl, rl);
	} while (rc == 1);
	relay__free(sp.s);
	relay__free(sp.sx);
	relay__free(sp.rx);
	snap_release(old);
	return rc;
}

int relay__connect(relay_signal *sig, relay_object *sender, size_t argsize, size_t argalign,
		   relay_object *receiver, relay_slot_fn fn, void *data, int arity,
		   relay_connection_type type, unsigned flags, relay_connection *out)
{
	if (out)
		*out = 0;
	int rc = check_connect_args(sig, sender, receiver, fn, arity, type, flags);
	if (rc < 0)
		return rc;
	struct relay__conn *c = relay__calloc(sizeof *c);
	if (!c)
		return -ENOMEM;
	atomic_init(&c->refs, 1);   /* the linked state's */
	atomic_init(&c->alive, true);
	c->signal = sig;
	c->sender = sender;
	c->receiver = receiver;
	c->fn = fn;
	c->data = data;
	c->is_func = arity < 0;
	c->arity = arity < 0 ? -arity : arity;
	c->type = type;
	c->flags = flags;
	c->auto_plain = type == RELAY_AUTO && !(flags & RELAY_SINGLE_SHOT);
	c->first = c->is_func ? data : (void *)receiver;
	c->argsize = argsize;
	c->argalign = argalign;
	if (receiver && !(c->ranchor = relay__anchor_get(receiver))) {
		relay__free(c);
		return RELAY_EDESTROYED;   /* its destruction began meanwhile */
	}
	relay_connection id = c->id = atomic_fetch_add(&next_id, 1);
	rc = conn_link(c);
	if (rc < 0) {
		relay__conn_unref(c);
		return rc;
	}
	if (out)   /* not c->id: another thread may already have taken and freed c */
		*out = id;
	return 0;
}

/* D6: after the connections died, no thread is between recording a call
 * and committing to it. */
static void d6_grace(void)
{
	relay__grace_calls_settle(relay__tdata_current());
}

int relay_disconnect(relay_connection id)
{
	if (id == 0)
		return -ENOENT;
	struct relay__conn *c = reg_find(id);
	if (!c)
		return -ENOENT;
	int rc = conn_unlink(c, true);
	relay__conn_unref(c);
	d6_grace();
	return rc;
}

int relay_disconnect_wait(relay_connection id, int timeout_ms)
{
	if (id == 0)
		return -ENOENT;
	struct relay__conn *c = reg_find(id);
	if (!c)
		return -ENOENT;
	struct relay__tdata *self = relay__tdata_current();
	if (self && relay__call_running_here(&self->grace, c)) {
		relay__conn_unref(c);
		return relay__diag(RELAY_EDEADLOCK, "relay_disconnect_wait: called from inside a "
				   "slot of connection %llu, which would wait for itself; use "
				   "relay_disconnect there", (unsigned long long)id);
	}
	int rc = conn_unlink(c, true);
	if (rc == 0) {
		uint64_t deadline = timeout_ms < 0 ? 0
				    : relay__now_ns() + (uint64_t)timeout_ms * 1000000u + 1;
		rc = relay__grace_wait_calls(self, c, true, deadline);
	}
	relay__conn_unref(c);
	return rc;
}

/* Pops one connection from obj's incoming or outgoing list, referenced. */
static struct relay__conn *pop_linked(relay_object *obj, bool incoming)
{
	pthread_mutex_t *l = relay__objlock(obj);
	pthread_mutex_lock(l);
	struct relay__conn *c = NULL;
	if (obj->relay__ext)
		c = incoming ? obj->relay__ext->incoming : obj->relay__ext->outgoing;
	if (c)
		relay__conn_ref(c);
	pthread_mutex_unlock(l);
	return c;
}

static void cut_all(relay_object *obj, bool incoming, bool kill)
{
	struct relay__conn *c;
	while ((c = pop_linked(obj, incoming)) != NULL) {
		conn_unlink(c, kill);
		relay__conn_unref(c);
	}
}

void relay__object_cut_connections(relay_object *obj)
{
	cut_all(obj, true, true);    /* D7: nothing is delivered to it afterwards */
	cut_all(obj, false, false);  /* D7: its queued events still arrive */
}

int (relay_disconnect_receiver)(relay_object *obj)
{
	if (!obj || !obj->relay__class)
		return -EINVAL;
	/* During its destruction (from its destroyed slots) this is what the
	 * destruction does anyway: allowed. Once destroyed, refused. */
	if (!relay__obj_anchor(obj))
		return relay__obj_check(obj, "relay_disconnect_receiver");
	cut_all(obj, true, true);
	d6_grace();
	return 0;
}

int relay__disconnect_signal(relay_signal *sig, relay_object *sender)
{
	if (!sig || !sender)
		return -EINVAL;
	for (;;) {
		pthread_mutex_t *l = relay__objlock(sender);
		pthread_mutex_lock(l);
		struct relay__snap *s = snap_of(sig);
		struct relay__conn *c = NULL;
		for (size_t i = 0; s && i < s->n && !c; i++)
			if (s->c[i]->linked)
				c = s->c[i];
		if (c)
			relay__conn_ref(c);
		pthread_mutex_unlock(l);
		if (!c)
			break;
		conn_unlink(c, true);
		relay__conn_unref(c);
	}
	d6_grace();
	return 0;
}

int relay__signal_set_ops(relay_signal *sig, relay_object *sender, const relay_payload_ops *ops)
{
	if (!sig || !sender)
		return -EINVAL;
	if (ops && (!ops->copy) != (!ops->free))
		return -EINVAL;   /* a copy without its free would leak */
	int rc = relay__obj_check(sender, "relay_signal_set_ops");
	if (rc < 0)
		return rc;
	pthread_mutex_t *l = relay__objlock(sender);
	pthread_mutex_lock(l);
	sig->relay__ops = ops;
	pthread_mutex_unlock(l);
	return 0;
}

/* ---- emit ---- */

/* One emission running in this thread (on its stack): destroying the
 * sender from one of its slots stops it (as Qt). */
struct relay__emission {
	relay_object *sender;
	bool aborted;
	struct relay__emission *prev;
};

struct emission {
	relay_object *sender;
	struct relay__tdata *self;
	size_t argsize;
	const void *arg;
};

void relay__signal_abort_emissions(relay_object *obj)
{
	for (struct relay__emission *f = relay__tls.emission; f; f = f->prev)
		if (f->sender == obj)
			f->aborted = true;
	if (relay__tls.sender == obj)
		relay__tls.sender = NULL;
}

/* Counts a queued call that could not be made (copy hook failed, no
 * memory) in the receiver's thread. */
static void count_drop_for(struct relay__tdata *self, struct relay__conn *c)
{
	relay__section_enter(&self->grace);   /* the home record stays while we count */
	relay__count_drop(relay__anchor_home(c->ranchor));
	relay__section_leave(&self->grace);
}

/* A single-shot connection is taken by exactly one emit, which unlinks it
 * (keeping its life, so the event it queued is delivered). */
RELAY__NOINLINE static bool take_single_shot_slow(struct relay__conn *c)
{
	if (atomic_exchange(&c->taken, true))
		return false;
	conn_unlink(c, false);
	return true;
}

static inline bool take_single_shot(struct relay__conn *c)
{
	return !(c->flags & RELAY_SINGLE_SHOT) || take_single_shot_slow(c);
}

/* A direct call, D6-checked. Inlined into the emit loop: it is the loop,
 * and the frame's slot stays in a register. */
static RELAY__ALWAYS_INLINE void call_direct_at(_Atomic uintptr_t *slot, bool asymmetric,
						struct relay__conn *c, const void *arg)
{
	relay__conn_call_checked(slot, asymmetric, c, arg);
}

/* A direct call outside the emit loop's fast path, in a frame of its own. */
static void call_direct(struct relay__tdata *self, struct relay__conn *c, const void *arg)
{
	struct relay__frame f;
	relay__frame_open(&self->grace, &f);
	call_direct_at(f.slot, f.asymmetric, c, arg);
	relay__frame_close(&f);
}

static struct relay__event *make_slot_event(struct relay__conn *c, const struct emission *e,
					    int *rc)
{
	struct relay__event *ev = relay__event_new(RELAY__EV_SLOT, e->argsize, c->argalign);
	if (!ev) {
		*rc = -ENOMEM;
		return NULL;
	}
	if (e->argsize) {
		memcpy(ev->payload, e->arg, e->argsize);
		if (c->ops && c->ops->copy) {
			*rc = c->ops->copy(ev->payload, e->arg);
			if (*rc < 0) {
				relay__free(ev);
				return NULL;
			}
			ev->payload_live = true;
		}
	}
	relay__conn_ref(c);
	ev->conn = c;
	ev->sender = e->sender;
	return ev;
}

/* Payloads too big (or too aligned) for a ring record travel in a heap
 * event. */
RELAY__NOINLINE static int emit_queued_heap(struct relay__conn *c, const struct emission *e)
{
	int rc = 0;
	struct relay__event *ev = make_slot_event(c, e, &rc);
	if (!ev) {
		count_drop_for(e->self, c);
		return rc;
	}
	rc = relay__post(c->ranchor, ev, RELAY__POST_ALWAYS, NULL);
	if (rc == RELAY_ENOTRUNNING)   /* no loop will ever take it */
		atomic_fetch_add_explicit(&e->self->refused, 1, memory_order_relaxed);
	else if (rc < 0)
		count_drop_for(e->self, c);
	if (rc < 0)
		relay__event_free(ev, rc);
	return rc == RELAY_ENOTRUNNING || rc == RELAY_ENOTDELIVERED ? 0 : rc;
}

/* The hot path: a record in the emitting thread's ring to the receiver's
 * thread, payload inline; no lock, no allocation in steady state. The
 * copy hook runs first, outside the post's section (user code there
 * could post, or block a mover). */
static inline int emit_queued(struct relay__conn *c, const struct emission *e)
{
	if (!atomic_load_explicit(&c->alive, memory_order_relaxed))
		return 0;
	if (relay__conn_heap_payload(c, e->argsize))
		return emit_queued_heap(c, e);
	const void *arg = e->arg;
	union { unsigned char bytes[RELAY__INLINE_MAX]; max_align_t align; } copy;
	bool copied = e->argsize && c->ops && c->ops->copy;
	if (copied) {
		int rc = c->ops->copy(copy.bytes, arg);
		if (rc < 0) {
			count_drop_for(e->self, c);
			return rc;
		}
		arg = copy.bytes;
	}
	int rc = relay__post_slot(e->self, c, e->sender, e->argsize, arg);
	if (rc < 0 && copied)
		c->ops->free(copy.bytes);   /* not queued: the copy is ours to free */
	return rc == RELAY_ENOTRUNNING || rc == RELAY_ENOTDELIVERED ? 0 : rc;
}

RELAY__NOINLINE static int emit_blocking(struct relay__conn *c, const struct emission *e)
{
	char who[160];
	if (relay__anchor_home(c->ranchor) == e->self)
		return relay__diag(RELAY_EDEADLOCK, "relay_emit: blocking connection to %s, which "
				   "lives in the emitting thread: it would wait for itself; use a "
				   "direct or queued connection",
				   relay__describe(c->receiver, who, sizeof who));
	int rc = 0;
	struct relay__event *ev = make_slot_event(c, e, &rc);
	if (!ev) {
		count_drop_for(e->self, c);
		return rc;
	}
	rc = relay__post_blocking(c->ranchor, ev, NULL);
	if (rc == -ENOMEM)
		count_drop_for(e->self, c);
	if (rc == RELAY_ENOTRUNNING)
		return relay__diag(rc, "relay_emit: blocking connection to %s, whose thread runs no "
				   "event loop; start it first or use a queued connection",
				   relay__describe(c->receiver, who, sizeof who));
	return rc;
}

static RELAY__ALWAYS_INLINE bool lives_here(const struct relay__conn *c, const struct relay__tdata *self)
{
	return !c->receiver ||
	       atomic_load_explicit(&c->ranchor->home, memory_order_relaxed) == (uintptr_t)self;
}

/* Everything but a direct AUTO call: queued, blocking, forced types,
 * single shots. Out of line, so the emit loop stays small. */
RELAY__NOINLINE static int emit_one(struct relay__conn *c, struct relay__tdata *self,
				    relay_object *sender, size_t argsize, const void *arg)
{
	struct emission ev = { sender, self, argsize, arg }, *e = &ev;
	if (c->auto_plain)
		return emit_queued(c, e);   /* the other common case */
	relay_connection_type type = c->type;
	if (type == RELAY_AUTO)   /* D1: decided now, by the receiver's thread */
		type = lives_here(c, e->self) ? RELAY_DIRECT : RELAY_QUEUED;
	if (!take_single_shot(c))
		return 0;
	switch (type) {
	case RELAY_DIRECT:
		call_direct(e->self, c, e->arg);
		return 0;
	case RELAY_QUEUED:
		return emit_queued(c, e);
	default:
		return emit_blocking(c, e);
	}
}

/* Per-thread cache of the snapshots this thread emits: a reference held
 * by the cache makes an emit take no lock and no atomic read-modify-write
 * while the signal's connections do not change. A snapshot found in the
 * cache is the signal's current one and cannot be freed (the cache holds
 * it), so the pointer comparison is safe from ABA. Snapshots evicted during
 * an emission is never evicted while an emission may iterate it: a cache
 * miss inside a slot (or a delivering pass) whose slot is taken does not
 * evict, it takes a reference of its own on the current snapshot and
 * releases it when it ends ("owned"). An earlier design buried evicted
 * snapshots in a per-thread list linked through the snapshot itself; two
 * burials of one snapshot (two signals sharing a slot, or two threads
 * caching one signal) corrupted it (a use-after-free the fuzzer found). */
#define CACHE_SLOTS RELAY__CACHE_SLOTS

/* Emissions and delivering passes running on this thread's stack (their
 * call frames). */
static int nesting(void)
{
	struct relay__tdata *t = relay__tls.self;
	return t ? atomic_load_explicit(&t->grace.ncalls, memory_order_relaxed) : 0;
}

static struct relay__snap **cache_slot(const relay_signal *sig)
{
	uintptr_t a = (uintptr_t)sig;
	return &relay__tls.cache[((a >> 4) ^ (a >> 10)) & (CACHE_SLOTS - 1)];
}

/* The current snapshot of sig, with a reference: taken into the cache,
 * or - when that would evict a snapshot an emission on this thread's
 * stack may be iterating - the caller's to release (*owned). */
RELAY__NOINLINE static struct relay__snap *cache_fill(relay_signal *sig, relay_object *sender,
						      struct relay__snap **slot, bool *owned)
{
	pthread_mutex_t *l = relay__objlock(sender);
	pthread_mutex_lock(l);
	struct relay__snap *s = snap_of(sig);
	if (s)
		atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
	pthread_mutex_unlock(l);
	if (!s)
		return NULL;
	if (*slot && nesting() > 0) {
		*owned = true;
		return s;
	}
	struct relay__snap *old = *slot;
	*slot = s;
	snap_release(old);   /* nothing on this stack iterates it */
	return s;
}

static void cache_release(void)
{
	for (int i = 0; i < CACHE_SLOTS; i++) {
		snap_release(relay__tls.cache[i]);
		relay__tls.cache[i] = NULL;
	}
}

/* Idle: the cache is let go, unless a pass inside a slot asks (an outer
 * emission may iterate a cached snapshot): then it stays. */
void relay__signal_cache_trim(void)
{
	if (nesting() == 0)
		cache_release();
}

/* The thread ends: no emission on its stack will go on. */
void relay__signal_thread_exit(void)
{
	cache_release();
}

int relay__emit(relay_signal *sig, relay_object *sender, size_t argsize, const void *arg)
{
	if (!sig || !sender || (argsize && !arg))
		return -EINVAL;
	struct relay__snap *s = atomic_load_explicit(&sig->relay__conns, memory_order_acquire);
	if (!s)
		return 0;   /* unconnected: one load and a branch */
	if ((atomic_load_explicit(&sender->relay__flags, memory_order_relaxed) &
	     RELAY__OBJ_BLOCKED) && sig != &sender->destroyed.relay__s)
		return 0;
	/* Adopt first: a thread relay cannot adopt takes nothing it could
	 * not give back (it would have no exit hook). */
	struct relay__tdata *self = relay__tdata_current();
	if (!self)
		return -ENOMEM;
	struct relay__snap **slot = cache_slot(sig);
	bool owned = false;
	if (*slot != s && !(s = cache_fill(sig, sender, slot, &owned)))
		return 0;

	/* The emission's call frame (D6): its depth is the thread's nesting
	 * of emissions and delivering passes, so opening it is the nesting
	 * count an emission keeps anyway. */
	struct relay__grace *g = &self->grace;
	const int depth = atomic_load_explicit(&g->ncalls, memory_order_relaxed);
	/* release: a scanner that reads the depth reads the frame */
	atomic_store_explicit(&g->ncalls, depth + 1, memory_order_release);
	_Atomic uintptr_t *frame_slot = depth < RELAY__CALL_FRAMES ? &g->calls[depth] : NULL;
	const bool asym = relay__grace_asym();
	struct relay__emission frame = { sender, false, relay__tls.emission };
	relay__tls.emission = &frame;
	int first_err = 0;
	/* relay_sender() for every direct slot of this emission; a nested
	 * emission sets and restores its own. The snapshot stays alive and
	 * unchanged meanwhile: the cache (or `owned`) holds a reference that
	 * nothing on this stack lets go. */
	relay_object *prev = relay__set_sender(sender);
	for (size_t i = 0, n = s->n; i < n; i++) {
		struct relay__conn *c = s->c[i];
		/* The common case inline: an AUTO connection to a receiver in
		 * this thread (or a function without context) is a call (D1). */
		if (RELAY__LIKELY(c->auto_plain && lives_here(c, self))) {
			call_direct_at(frame_slot, asym, c, arg);
		} else {
			int rc = emit_one(c, self, sender, argsize, arg);
			if (rc < 0 && first_err == 0)
				first_err = rc;
		}
		if (RELAY__UNLIKELY(frame.aborted))
			break;   /* a slot destroyed the sender */
	}
	relay__set_sender(prev);
	relay__tls.emission = frame.prev;
	atomic_store_explicit(&g->ncalls, depth, memory_order_release);
	if (RELAY__UNLIKELY(owned))
		snap_release(s);
	return first_err;
}
