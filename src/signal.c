/*
 * signal.c - connections, emit and disconnect (DESIGN.md D1-D9).
 *
 * A signal holds a pointer to an immutable snapshot: an array of its
 * connections, replaced (copy-on-write) under the sender's object lock on
 * every connect and disconnect. An emission takes a reference to the
 * snapshot that is current when it starts and calls exactly those
 * connections (so connections made meanwhile are not called by it, D9),
 * skipping any that died since (D6). A signal with no connection holds
 * NULL: an unconnected emit is one load and a branch.
 *
 * A connection is reference counted (by the snapshots holding it, its
 * queued events, and its "linked" state) and has two independent lives:
 *   alive   - cleared by relay_disconnect: queued events for it drop (D6);
 *   rweak   - the receiver's weak block, cleared when the receiver is
 *             destroyed: queued events for it drop (D7).
 * A sender's destruction or a single-shot's first emit only unlinks the
 * connection (no new emits reach it) and keeps both lives, so events
 * already queued still arrive (D7).
 */
#include "internal.h"

#include <string.h>

/* ---- snapshots ---- */

struct relay__snap {
	atomic_int refs;
	size_t n;
	struct relay__snap *grave_next;   /* thread-local graveyard (emit cache) */
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

/* A new snapshot of sig's linked connections plus `add` (may be NULL).
 * Sender's object lock held. Returns NULL on ENOMEM; sets *empty when the
 * result would have no connection (then nothing is allocated). */
static struct relay__snap *snap_rebuild_locked(relay_signal *sig, struct relay__conn *add, bool *empty)
{
	struct relay__snap *old = snap_of(sig);
	size_t n = add ? 1 : 0;
	for (size_t i = 0; old && i < old->n; i++)
		n += old->c[i]->linked;
	*empty = n == 0;
	if (n == 0)
		return NULL;
	struct relay__snap *s = relay__alloc(sizeof *s + n * sizeof s->c[0]);
	if (!s)
		return NULL;
	atomic_init(&s->refs, 1);   /* the signal's */
	s->n = 0;
	s->grave_next = NULL;
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
	return s;
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

static void conn_free(struct relay__conn *c);

void relay__conn_unref_n(struct relay__conn *c, uint32_t n)
{
	if (n && atomic_fetch_sub_explicit(&c->refs, (int)n, memory_order_acq_rel) == (int)n)
		conn_free(c);
}

void relay__conn_unref(struct relay__conn *c)
{
	relay__conn_unref_n(c, 1);
}

static void conn_free(struct relay__conn *c)
{
	relay__weak_release(c->rweak);
	struct relay__tdata *t = atomic_load(&c->rthread);
	if (t)
		relay__tdata_unref(t);
	relay__free(c);
}

void relay__conn_count_drop(struct relay__conn *c)
{
	/* The receiver's lock keeps rthread from being swapped (and its old
	 * reference released) while we use it. */
	pthread_mutex_t *l = relay__objlock(c->receiver);
	pthread_mutex_lock(l);
	struct relay__tdata *t = atomic_load(&c->rthread);
	if (t)
		atomic_fetch_add_explicit(&t->dropped, 1, memory_order_relaxed);
	pthread_mutex_unlock(l);
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

/* Unlinks c from its signal and both objects; with `kill` also ends its
 * life (its queued events drop). Returns -ENOENT if it was not linked. */
static int conn_unlink(struct relay__conn *c, bool kill)
{
	pthread_mutex_t *sl = relay__objlock(c->sender), *rl = recv_lock(c);
	relay__lock2(sl, rl);
	if (kill)
		atomic_store(&c->alive, false);
	if (!c->linked) {
		relay__unlock2(sl, rl);
		return -ENOENT;
	}
	c->linked = false;
	bool empty;
	struct relay__snap *s = snap_rebuild_locked(c->signal, NULL, &empty);
	struct relay__snap *old = NULL;
	/* Without memory for a new snapshot, c stays in the old one, unlinked
	 * (and dead if killed): emitters skip it, the next rebuild drops it. */
	if (s || empty)
		old = snap_publish_locked(c->signal, s);
	if (c->sender->relay__ext)
		list_unlink(&c->sender->relay__ext->outgoing, c, false);
	if (c->receiver && c->receiver->relay__ext)
		list_unlink(&c->receiver->relay__ext->incoming, c, true);
	relay__unlock2(sl, rl);
	reg_remove(c);
	snap_release(old);
	relay__conn_unref(c);   /* the linked state's reference */
	return 0;
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
	return 0;
}

static bool dying(const relay_object *o)
{
	return o && (atomic_load(&((relay_object *)o)->relay__flags) & RELAY__OBJ_DESTROYING);
}

/* Links c (fully set up) under both object locks. */
static int conn_link_locked(struct relay__conn *c, struct relay__snap **old)
{
	relay_object *sender = c->sender, *receiver = c->receiver;
	if (dying(sender) || dying(receiver))
		return RELAY_EDESTROYED;
	if ((c->flags & RELAY_UNIQUE) && is_duplicate_locked(c->signal, c))
		return -EEXIST;
	struct relay__objext *sx = relay__ext_locked(sender);
	struct relay__objext *rx = receiver ? relay__ext_locked(receiver) : NULL;
	if (!sx || (receiver && !rx))
		return -ENOMEM;
	c->ops = c->signal->relay__ops;
	c->linked = true;
	bool empty;
	struct relay__snap *s = snap_rebuild_locked(c->signal, c, &empty);
	if (!s) {
		c->linked = false;
		return -ENOMEM;
	}
	*old = snap_publish_locked(c->signal, s);
	list_push(&sx->outgoing, c, false);
	if (rx)
		list_push(&rx->incoming, c, true);
	struct relay__tdata *rt = receiver ? relay__obj_thread(receiver) : NULL;
	if (rt)
		relay__tdata_ref(rt);
	atomic_store(&c->rthread, rt);
	return 0;
}

int relay__connect(relay_signal *sig, relay_object *sender, size_t argsize,
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
	if (receiver && !(c->rweak = relay__weak_acquire(receiver))) {
		relay__free(c);
		return dying(receiver) ? RELAY_EDESTROYED : -ENOMEM;
	}
	relay_connection id = c->id = atomic_fetch_add(&next_id, 1);

	pthread_mutex_t *sl = relay__objlock(sender), *rl = recv_lock(c);
	struct relay__snap *old = NULL;
	relay__lock2(sl, rl);
	rc = conn_link_locked(c, &old);
	if (rc == 0)
		reg_insert(c);   /* registry lock nests inside object locks */
	relay__unlock2(sl, rl);
	if (rc < 0) {
		relay__conn_unref(c);
		return rc;
	}
	snap_release(old);
	if (out)   /* not c->id: another thread may already have taken and freed c */
		*out = id;
	return 0;
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

int relay_disconnect_receiver(relay_object *obj)
{
	if (!obj || !obj->relay__class)
		return -EINVAL;
	cut_all(obj, true, true);
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
			return 0;
		conn_unlink(c, true);
		relay__conn_unref(c);
	}
}

int relay__signal_set_ops(relay_signal *sig, relay_object *sender, const relay_payload_ops *ops)
{
	if (!sig || !sender)
		return -EINVAL;
	if (ops && (!ops->copy) != (!ops->free))
		return -EINVAL;   /* a copy without its free would leak */
	pthread_mutex_t *l = relay__objlock(sender);
	pthread_mutex_lock(l);
	sig->relay__ops = ops;
	pthread_mutex_unlock(l);
	return 0;
}

void relay__conns_retarget_locked(relay_object *obj, struct relay__tdata *to)
{
	if (!obj->relay__ext)
		return;
	for (struct relay__conn *c = obj->relay__ext->incoming; c; c = c->in_next) {
		if (to)
			relay__tdata_ref(to);
		struct relay__tdata *old = atomic_exchange(&c->rthread, to);
		if (old)
			relay__tdata_unref(old);   /* the mover holds another */
	}
}

/* ---- emit ---- */

struct emission {
	relay_object *sender;
	struct relay__tdata *self;
	size_t argsize;
	const void *arg;
};

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

static struct relay__event *make_slot_event(struct relay__conn *c, const struct emission *e,
					    int *rc)
{
	struct relay__event *ev = relay__event_new(RELAY__EV_SLOT, e->argsize);
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
	ev->target = c->receiver;
	return ev;
}

/* Payloads too big to sit in a ring record travel in a heap event. */
RELAY__NOINLINE static int emit_queued_heap(struct relay__conn *c, const struct emission *e)
{
	int rc = 0;
	struct relay__event *ev = make_slot_event(c, e, &rc);
	if (!ev) {
		relay__conn_count_drop(c);
		return rc;
	}
	rc = relay__post_to_object(c->receiver, ev, RELAY__POST_ALWAYS);
	if (rc < 0) {   /* receiver gone or cut meanwhile */
		relay__conn_count_drop(c);
		relay__event_free(ev, rc);
	}
	return 0;
}

/* The hot path: a record in the emitting thread's ring to the receiver's
 * thread, payload inline; no lock, no allocation in steady state. A
 * receiver destroyed or moved meanwhile is handled at delivery (dropped,
 * or forwarded). */
/* Out of line: keeps the direct path's frame small. */
RELAY__NOINLINE static int emit_queued(struct relay__conn *c, const struct emission *e)
{
	if (e->argsize > RELAY__INLINE_MAX)
		return emit_queued_heap(c, e);
	if (!e->self)
		return -ENOMEM;
	relay__post_enter(&e->self->prod);
	struct relay__tdata *t = atomic_load_explicit(&c->rthread, memory_order_acquire);
	int rc = 0;
	if (t && atomic_load_explicit(&t->state, memory_order_relaxed) != RELAY__T_GONE)
		rc = relay__queue_post_slot(e->self, t, c, e->sender, e->argsize, e->arg,
					    c->ops ? c->ops->copy : NULL);
	else
		rc = RELAY_ENOTRUNNING;   /* no thread will ever run it */
	relay__post_leave(&e->self->prod);
	if (rc < 0)
		relay__conn_count_drop(c);
	return rc == RELAY_ENOTRUNNING ? 0 : rc;
}

RELAY__NOINLINE static int emit_blocking(struct relay__conn *c, const struct emission *e)
{
	char who[160];
	if (atomic_load(&c->rthread) == e->self)
		return relay__diag(RELAY_EDEADLOCK, "relay_emit: blocking connection to %s, which "
				   "lives in the emitting thread: it would wait for itself; use a "
				   "direct or queued connection",
				   relay__describe(c->receiver, who, sizeof who));
	int rc = 0;
	struct relay__event *ev = make_slot_event(c, e, &rc);
	if (!ev)
		return rc;
	rc = relay__post_blocking(c->receiver, ev, NULL);
	if (rc == RELAY_ENOTRUNNING)
		return relay__diag(rc, "relay_emit: blocking connection to %s, whose thread runs no "
				   "event loop; start it first or use a queued connection",
				   relay__describe(c->receiver, who, sizeof who));
	return rc;
}

RELAY__NOINLINE static int emit_one(struct relay__conn *c, const struct emission *e)
{
	relay_connection_type type = c->type;
	if (type == RELAY_AUTO)   /* D1: decided now, by the receiver's thread */
		type = (!c->receiver || atomic_load_explicit(&c->rthread, memory_order_relaxed) ==
						e->self)
			       ? RELAY_DIRECT
			       : RELAY_QUEUED;
	if (!take_single_shot(c))
		return 0;
	switch (type) {
	case RELAY_DIRECT:
		relay__conn_call(c, e->sender, e->arg);
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
 * an emission wait in a graveyard until the outermost emission ends, as
 * the emission may be iterating them. */
#define CACHE_SLOTS RELAY__CACHE_SLOTS
#define emit_depth (relay__tls.emit_depth)
#define graveyard (relay__tls.graveyard)

static struct relay__snap **cache_slot(const relay_signal *sig)
{
	uintptr_t a = (uintptr_t)sig;
	return &relay__tls.cache[((a >> 4) ^ (a >> 10)) & (CACHE_SLOTS - 1)];
}

static void bury(struct relay__snap *s)
{
	if (!s)
		return;
	if (emit_depth > 0) {
		s->grave_next = graveyard;
		graveyard = s;
	} else {
		snap_release(s);
	}
}

static void empty_graveyard(void)
{
	while (graveyard) {
		struct relay__snap *s = graveyard;
		graveyard = s->grave_next;
		snap_release(s);
	}
}

/* The current snapshot of sig, taken into the cache. */
RELAY__NOINLINE static struct relay__snap *cache_fill(relay_signal *sig, relay_object *sender, struct relay__snap **slot)
{
	pthread_mutex_t *l = relay__objlock(sender);
	pthread_mutex_lock(l);
	struct relay__snap *s = snap_of(sig);
	if (s)
		atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
	pthread_mutex_unlock(l);
	if (s) {
		bury(*slot);
		*slot = s;
	}
	return s;
}

void relay__signal_thread_exit(void)
{
	/* An idle pass may run inside a slot (a nested loop): snapshots an
	 * outer emission iterates must wait for it in the graveyard. */
	for (int i = 0; i < CACHE_SLOTS; i++) {
		bury(relay__tls.cache[i]);
		relay__tls.cache[i] = NULL;
	}
	if (emit_depth == 0)
		empty_graveyard();
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
	struct relay__snap **slot = cache_slot(sig);
	if (*slot != s && !(s = cache_fill(sig, sender, slot)))
		return 0;

	struct emission e = { sender, relay__tdata_current(), argsize, arg };
	int first_err = 0;
	emit_depth++;
	/* relay_sender() for every direct slot of this emission; a nested
	 * emission sets and restores its own. */
	relay_object *prev = relay__set_sender(sender);
	for (size_t i = 0; i < s->n; i++) {
		struct relay__conn *c = s->c[i];
		if (!atomic_load_explicit(&c->alive, memory_order_acquire))
			continue;
		/* The common case inline: an AUTO connection to a receiver in
		 * this thread (or a function without context) is a call (D1). */
		int rc;
		if (c->auto_plain) {
			if (atomic_load_explicit(&c->rthread, memory_order_relaxed) == e.self ||
			    !c->receiver) {
				relay__slot_call(c, arg);
				continue;
			}
			rc = emit_queued(c, &e);   /* the other common case */
		} else {
			rc = emit_one(c, &e);
		}
		if (rc < 0 && first_err == 0)
			first_err = rc;
	}
	relay__set_sender(prev);
	if (--emit_depth == 0 && graveyard)
		empty_graveyard();
	return first_err;
}
