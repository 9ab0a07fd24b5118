/*
 * loop.c - the per-thread event loop: posting events to the thread an
 * object lives in, delivering them, one loop pass, run / quit.
 *
 * A pass reads as its phases (as libuv's uv_run): due timers, the events
 * posted before the pass started (one batch, so a flood of posts cannot
 * starve timers: DESIGN.md D4), then - only if nothing was ready - sleep in
 * the poller until an event, a timer deadline or a quit. A loop with
 * nothing to do sleeps in epoll_wait(-1) and is never woken.
 *
 * Relies on: queue.c (transport and wake-up handshake), poll_epoll.c,
 * timer.c (heap of deadlines), signal.c (slot calls), object.c (destroy).
 */
#include "internal.h"

#include <limits.h>
#include <sched.h>
#include <string.h>

static void bump(atomic_uint_fast64_t *counter)
{
	/* Single writer (the loop's thread): no read-modify-write needed. */
	atomic_store_explicit(counter, atomic_load_explicit(counter, memory_order_relaxed) + 1,
			      memory_order_relaxed);
}

/* ---- events ---- */

struct relay__event *relay__event_new(enum relay__event_kind kind, size_t argsize)
{
	struct relay__event *ev = relay__alloc(sizeof *ev + argsize);
	if (!ev)
		return NULL;
	memset(ev, 0, sizeof *ev);
	ev->kind = kind;
	ev->argsize = argsize;
	return ev;
}

void relay__event_free(struct relay__event *ev, int status)
{
	if (ev->payload_live && ev->conn && ev->conn->ops && ev->conn->ops->free)
		ev->conn->ops->free(ev->payload);
	if (ev->kind == RELAY__EV_SINGLE_SHOT && ev->u.timer)
		relay__single_shot_free(ev->u.timer);   /* never armed: skipped */
	if (ev->kind == RELAY__EV_INVOKE && status != 0 && ev->u.invoke.free_data)
		ev->u.invoke.free_data(ev->u.invoke.data);
	if (ev->done) {
		if (relay__completion_claim(ev->done))
			relay__completion_signal(ev->done, status, 0);
		relay__completion_unref(ev->done);
	}
	if (ev->conn)
		relay__conn_unref(ev->conn);
	if (ev->weak)
		relay__weak_release(ev->weak);
	relay__free(ev);
}

/* Frees an event that will never be delivered, and counts it. */
static void drop(struct relay__tdata *t, struct relay__event *ev)
{
	if (t)
		atomic_fetch_add_explicit(&t->dropped, 1, memory_order_relaxed);
	relay__event_free(ev, RELAY_ENOTDELIVERED);
}

/* ---- blocking completions ---- */

struct relay__completion *relay__completion_new(void)
{
	struct relay__completion *c = relay__alloc(sizeof *c);
	if (!c)
		return NULL;
	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->cond, NULL);
	c->done = false;
	c->status = 0;
	c->result = 0;
	atomic_init(&c->claimed, false);
	atomic_init(&c->refs, 2);
	return c;
}

bool relay__completion_claim(struct relay__completion *c)
{
	return !atomic_exchange(&c->claimed, true);
}

void relay__completion_signal(struct relay__completion *c, int status, int result)
{
	pthread_mutex_lock(&c->lock);
	c->status = status;
	c->result = result;
	c->done = true;
	pthread_cond_signal(&c->cond);
	pthread_mutex_unlock(&c->lock);
}

int relay__completion_wait(struct relay__completion *c)
{
	pthread_mutex_lock(&c->lock);
	while (!c->done)
		pthread_cond_wait(&c->cond, &c->lock);
	int status = c->status;
	pthread_mutex_unlock(&c->lock);
	return status;
}

void relay__completion_unref(struct relay__completion *c)
{
	if (atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) != 1)
		return;
	pthread_cond_destroy(&c->cond);
	pthread_mutex_destroy(&c->lock);
	relay__free(c);
}

/* ---- posting ---- */

/* Whether ev may still be delivered: its connection alive, its target
 * not destroyed. Called under the target's object lock, which destroy and
 * disconnect also take, so the answer holds until we unlock. */
static bool event_live_locked(const struct relay__event *ev)
{
	if (ev->conn)
		return atomic_load_explicit(&ev->conn->alive, memory_order_relaxed) &&
		       atomic_load_explicit(&ev->conn->rweak->obj, memory_order_relaxed);
	if (ev->weak)
		return atomic_load_explicit(&ev->weak->obj, memory_order_relaxed) != NULL;
	return true;
}

static bool mode_refuses(const struct relay__tdata *t, enum relay__post_mode mode)
{
	int st = atomic_load(&t->state);
	switch (mode) {
	case RELAY__POST_SERVING:
		return !relay__tdata_serves((struct relay__tdata *)t);
	case RELAY__POST_LIVE:
		return st == RELAY__T_FINISHED || st == RELAY__T_GONE;
	default:
		return false;
	}
}

/* Events travel through the poster's ring to the target's thread, after
 * the poster's earlier events (FIFO per sender), blocking calls included. */
static int post_ring_to(struct relay__tdata *self, struct relay__tdata *t,
			struct relay__event *ev, enum relay__post_mode mode)
{
	if (!t)
		return RELAY_ENOTRUNNING;
	if (atomic_load(&t->state) == RELAY__T_GONE)
		return RELAY_ENOTRUNNING;   /* the caller frees (and counts) it */
	if (mode_refuses(t, mode))
		return RELAY_ENOTRUNNING;
	return relay__queue_post_event(self, t, ev);
}

static int post_ring(relay_object *obj, struct relay__event *ev, enum relay__post_mode mode)
{
	struct relay__tdata *self = relay__tdata_current();
	if (!self)
		return -ENOMEM;
	relay__post_enter(&self->prod);
	int rc = post_ring_to(self, relay__obj_thread(obj), ev, mode);
	relay__post_leave(&self->prod);
	return rc;
}

int relay__post_to_object(relay_object *obj, struct relay__event *ev, enum relay__post_mode mode)
{
	/* The object lock keeps obj alive (destroy takes it) while we look. */
	pthread_mutex_t *ol = relay__objlock(obj);
	pthread_mutex_lock(ol);
	int rc = event_live_locked(ev) ? post_ring(obj, ev, mode) : RELAY_ENOTDELIVERED;
	pthread_mutex_unlock(ol);
	return rc;
}

int relay__post_blocking(relay_object *obj, struct relay__event *ev, int *result)
{
	struct relay__completion *c = relay__completion_new();
	if (!c) {
		relay__event_free(ev, -ENOMEM);
		return -ENOMEM;
	}
	ev->done = c;
	struct relay__tdata *t = relay__obj_thread(obj);
	int rc = relay__post_to_object(obj, ev, RELAY__POST_SERVING);
	if (rc < 0) {
		relay__event_free(ev, rc);   /* claims and drops the event's reference */
		relay__completion_unref(c);
		return rc;
	}
	/* The thread may have finished between the check and the post, after
	 * releasing what was queued (it turns FINISHED, fences, then scans):
	 * re-check after our commit (the post fenced). If it stopped, whoever
	 * claims first decides; the event, if met later, is skipped. */
	if (t && !relay__tdata_serves(t) && relay__completion_claim(c)) {
		relay__completion_unref(c);
		return RELAY_ENOTRUNNING;
	}
	rc = relay__completion_wait(c);
	if (rc == 0 && result)
		*result = c->result;
	relay__completion_unref(c);
	return rc;
}

void relay__loop_wake(struct relay__tdata *t)
{
	relay__queue_wake_if_sleeping(&t->q);
}

/* ---- delivery ---- */

/* The object an event is for, NULL once it is destroyed. */
static relay_object *event_target(const struct relay__event *ev)
{
	if (ev->conn)
		return atomic_load(&ev->conn->rweak->obj) ? ev->conn->receiver : NULL;
	return ev->weak ? atomic_load(&ev->weak->obj) : NULL;
}

/* The target moved away while the event was queued here (a post that
 * raced with move_to_thread): send it on. */
static void forward(struct relay__tdata *self, relay_object *target, struct relay__event *ev)
{
	/* A blocking call follows only to a thread that will serve it (D8);
	 * otherwise its waiter is released. */
	int rc = relay__post_to_object(target, ev,
				       ev->done ? RELAY__POST_SERVING : RELAY__POST_ALWAYS);
	if (rc < 0)
		drop(self, ev);
}

static void deliver_slot(struct relay__event *ev)
{
	if (ev->done && !relay__completion_claim(ev->done))
		return;   /* the waiter gave up (its thread stopped meanwhile) */
	relay__conn_call(ev->conn, ev->sender, ev->argsize ? ev->payload : NULL);
	if (ev->done)
		relay__completion_signal(ev->done, 0, 0);
}

static void deliver_invoke(struct relay__event *ev)
{
	if (!ev->done) {
		ev->u.invoke.fn(ev->u.invoke.data);
	} else if (relay__completion_claim(ev->done)) {
		int r = ev->u.call.fn(ev->u.call.data);
		relay__completion_signal(ev->done, 0, r);
	}
}

void relay__dispatch(struct relay__tdata *self, struct relay__event *ev)
{
	if (ev->kind == RELAY__EV_TIMER_ARM) {
		relay__timer_arm_event(self, ev);
		return;
	}
	if (ev->kind == RELAY__EV_SINGLE_SHOT) {
		relay__single_shot_event(self, ev);
		return;
	}
	/* Liveness needs no lock here: the target can only be destroyed or
	 * moved away by this thread, and a disconnect from elsewhere that lands
	 * after this check is a slot call that had already started (D6). */
	relay_object *target = event_target(ev);
	bool live = target && (!ev->conn || atomic_load(&ev->conn->alive));
	if (!live) {
		if (ev->kind == RELAY__EV_DELETE)
			relay__event_free(ev, 0);   /* already destroyed: nothing lost */
		else
			drop(self, ev);
		return;
	}
	if (relay__obj_thread(target) != self) {
		forward(self, target, ev);
		return;
	}
	bump(&self->delivered);
	switch (ev->kind) {
	case RELAY__EV_SLOT:
		deliver_slot(ev);
		break;
	case RELAY__EV_INVOKE:
		deliver_invoke(ev);
		ev->u.invoke.free_data = NULL;   /* fn ran: data is fn's now */
		break;
	case RELAY__EV_DELETE:
		/* Refused (the handle of a thread that still runs, with its
		 * diagnostic): a later delete_later may try again. */
		if (relay_object_destroy(target) < 0)
			atomic_fetch_and(&target->relay__flags,
					 ~(unsigned)RELAY__OBJ_DELETE_PENDING);
		break;
	default:
		break;
	}
	relay__event_free(ev, 0);
}

/* ---- ring records ---- */

/* Connection references of delivered records are returned in batches:
 * one atomic operation per run of records on the same connection. */
static void unref_flush(struct relay__tdata *self)
{
	if (self->unref_conn)
		relay__conn_unref_n(self->unref_conn, self->unref_n);
	self->unref_conn = NULL;
	self->unref_n = 0;
}

static void unref_later(struct relay__tdata *self, struct relay__conn *c)
{
	if (self->unref_conn != c) {
		unref_flush(self);
		self->unref_conn = c;
	}
	self->unref_n++;
}


/* A slot record as a heap event (it has to move elsewhere). Takes over
 * the record's references; NULL on ENOMEM (the record is untouched). */
static struct relay__event *materialize(const struct relay__rec *rec)
{
	struct relay__event *ev = relay__event_new(RELAY__EV_SLOT, rec->argsize);
	if (!ev)
		return NULL;
	memcpy(ev->payload, RELAY__REC_PAYLOAD(rec), rec->argsize);
	ev->payload_live = rec->argsize && rec->conn->ops && rec->conn->ops->free;
	ev->conn = rec->conn;
	ev->sender = rec->u.sender;
	ev->target = rec->conn->receiver;
	return ev;
}

static void drop_slot_rec(struct relay__tdata *self, struct relay__rec *rec)
{
	struct relay__conn *c = rec->conn;
	atomic_fetch_add_explicit(&self->dropped, 1, memory_order_relaxed);
	if (rec->argsize && c->ops && c->ops->free)
		c->ops->free(RELAY__REC_PAYLOAD(rec));
	unref_later(self, c);
}

static void deliver_slot_rec(struct relay__tdata *self, struct relay__rec *rec)
{
	struct relay__conn *c = rec->conn;
	relay_object *target = atomic_load_explicit(&c->rweak->obj, memory_order_relaxed);
	if (!target || !atomic_load_explicit(&c->alive, memory_order_relaxed)) {
		drop_slot_rec(self, rec);
		return;
	}
	if (relay__obj_thread(target) != self) {   /* moved while queued */
		struct relay__event *ev = materialize(rec);
		if (!ev)
			drop_slot_rec(self, rec);
		else
			forward(self, target, ev);
		return;
	}
	bump(&self->delivered);
	relay__conn_call(c, rec->u.sender, rec->argsize ? RELAY__REC_PAYLOAD(rec) : NULL);
	if (rec->argsize && c->ops && c->ops->free)
		c->ops->free(RELAY__REC_PAYLOAD(rec));
	unref_later(self, c);
}

static void take_posted(struct relay__tdata *self);
static int deliver_list(struct relay__tdata *self);

/* A ring record for an object that has just moved here must not overtake
 * the events move_to_thread brought along: wait for the move to finish,
 * then deliver the moved events (the slow list) first. */
static void settle(struct relay__tdata *self, relay_object *target)
{
	if (target)
		while (atomic_load_explicit(&target->relay__flags, memory_order_acquire) &
		       RELAY__OBJ_IN_TRANSIT)
			sched_yield();
	if (atomic_load_explicit(&self->q.slow_pending, memory_order_acquire)) {
		take_posted(self);
		deliver_list(self);
	}
}

static void prepare_rec(struct relay__tdata *self, struct relay__rec *rec)
{
	relay_object *target = rec->kind == RELAY__REC_SLOT
				       ? (atomic_load_explicit(&rec->conn->rweak->obj, memory_order_relaxed)
						  ? rec->conn->receiver : NULL)
				       : event_target(rec->u.ev);
	settle(self, target);
}

static void deliver_rec(struct relay__tdata *self, struct relay__rec *rec)
{
	if (rec->kind == RELAY__REC_SLOT)
		deliver_slot_rec(self, rec);
	else
		relay__dispatch(self, rec->u.ev);
}

/* Appends the slow list to the batch being delivered. */
static void take_posted(struct relay__tdata *self)
{
	struct relay__event *fresh = relay__queue_take_slow(&self->q);
	if (!fresh)
		return;
	struct relay__event **tail = &self->batch;
	while (*tail)
		tail = &(*tail)->next;
	*tail = fresh;
}

/* Delivers one batch: what was posted before this pass started. Events
 * are unlinked one at a time so that a slot may run a nested loop (which
 * continues the same batch, in order) or move an object (which takes its
 * events out of the batch). Stops early when the loop is told to quit. */
static int deliver_list(struct relay__tdata *self)
{
	struct relay__event *last = self->batch;
	if (!last)
		return 0;
	while (last->next)
		last = last->next;
	/* `last` bounds the pass; a nested pass may deliver it first. */
	int n = 0;
	struct relay__event *ev;
	bool end = false;
	while (!end && (ev = self->batch) != NULL) {
		end = ev == last;
		self->batch = ev->next;
		ev->next = NULL;
		relay__dispatch(self, ev);
		n++;
		if (atomic_load_explicit(&self->exit_pending, memory_order_relaxed))
			break;
	}
	return n;
}

/* One pass's events: the slow list is taken before the rings' snapshot,
 * so a ring record posted before a slow event is in this pass too. */
static int deliver_batch(struct relay__tdata *self)
{
	take_posted(self);
	relay__queue_snapshot(self);
	int n = deliver_list(self);
	if (!atomic_load_explicit(&self->exit_pending, memory_order_relaxed))
		n += relay__queue_deliver(self, prepare_rec, deliver_rec, &self->exit_pending);
	unref_flush(self);
	return n;
}

static int sleep_timeout(struct relay__tdata *self, int timeout_ms)
{
	int t = relay__timers_timeout(self, relay__now_ns());
	if (timeout_ms < 0)
		return t;
	if (t < 0 || t > timeout_ms)
		return timeout_ms;
	return t;
}

/* Idle: let go of what only speeds up a busy thread (emit cache, bulk
 * references, rings to threads that are gone), at most every 100 ms so a
 * ping-pong does not refill the cache on every message. Spare chunks stay:
 * a flow that pauses allocates nothing when it resumes. */
static void idle_trim(struct relay__tdata *self, uint64_t now)
{
	if (now - self->trimmed_ns < 100000000u)
		return;
	self->trimmed_ns = now;
	relay__signal_thread_exit();
	relay__producer_trim(&self->prod);
}

static inline void cpu_relax(void)
{
#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
	__builtin_ia32_pause();
#endif
}

/* Spin then block: before sleeping in the kernel, watch the queue for a
 * while. A wake-up across cores costs tens of microseconds on a virtual
 * machine; work that arrives sooner is taken without it (a spin bounded by
 * the cost it saves is at most twice the best choice, the classic
 * competitive argument for adaptive locks). sched_yield lets the thread we
 * wait for run when it shares our core. An idle loop spins once, then
 * sleeps without waking. */
#define SPIN_NS 20000u

static bool spin_for_work(struct relay__tdata *self, int timeout_ms)
{
	uint64_t budget = SPIN_NS, start = relay__now_ns();
	if (timeout_ms >= 0 && (uint64_t)timeout_ms * 1000000u < budget)
		budget = (uint64_t)timeout_ms * 1000000u;
	do {
		if (relay__queue_pending(self) ||
		    atomic_load_explicit(&self->exit_pending, memory_order_relaxed))
			return true;
		sched_yield();
		cpu_relax();
	} while (relay__now_ns() - start < budget);
	return false;
}

int relay__loop_pass(struct relay__tdata *self, int timeout_ms)
{
	bump(&self->passes);
	if (self->adopted && !atomic_load_explicit(&self->pumps, memory_order_relaxed))
		atomic_store(&self->pumps, true);   /* it serves blocking calls now */
	uint64_t now = relay__now_ns();
	int n = relay__timers_run(self, now);
	n += deliver_batch(self);
	if (n == 0)
		idle_trim(self, now);
	if (n > 0 || atomic_load(&self->exit_pending) || timeout_ms == 0 || self->batch)
		return n;

	int t = sleep_timeout(self, timeout_ms);
	if (t != 0 && !spin_for_work(self, t) &&
	    relay__queue_prepare_sleep(self, &self->exit_pending)) {
		int rc = relay__poll_wait(self, t);
		relay__queue_awake(&self->q);
		bump(&self->wakeups);
		if (rc < 0)
			return rc;
	}
	n += relay__timers_run(self, relay__now_ns());
	n += deliver_batch(self);
	return n;
}

int relay__loop_run(struct relay__tdata *self)
{
	self->loop_depth++;
	for (;;) {
		if (atomic_exchange(&self->exit_pending, false))
			break;
		int rc = relay__loop_pass(self, -1);
		if (rc < 0) {
			self->loop_depth--;
			return rc;
		}
	}
	self->loop_depth--;
	return atomic_load(&self->exit_code);
}

/* ---- scanning what is queued (thread's end, destroy, move) ---- */

static void append(struct relay__event ***tail, struct relay__event *ev)
{
	ev->next = NULL;
	**tail = ev;
	*tail = &ev->next;
}

/* Moves the events of list *pp for which pick() holds onto out. */
static void extract(struct relay__event **pp, bool (*pick)(const struct relay__event *, void *),
		    void *arg, struct relay__event ***out)
{
	while (*pp) {
		struct relay__event *ev = *pp;
		if (pick(ev, arg)) {
			*pp = ev->next;
			append(out, ev);
		} else {
			pp = &ev->next;
		}
	}
}

struct ring_pick {
	bool (*pick_ev)(const struct relay__event *, void *);
	bool (*pick_slot)(const struct relay__rec *, void *);
	void *arg;
	struct relay__event **tail_head, ***tail;
	bool drop_slots;   /* dropped in place instead of taken */
};

/* Takes the picked ring records: events onto the list, slot records
 * materialized (or dropped, counted, when asked or out of memory). */
static void ring_visit(struct relay__tdata *t, struct relay__rec *rec, void *arg)
{
	struct ring_pick *rp = arg;
	if (rec->kind == RELAY__REC_EVENT) {
		if (rp->pick_ev && rp->pick_ev(rec->u.ev, rp->arg)) {
			append(rp->tail, rec->u.ev);
			relay__queue_take_rec(rec);
		}
		return;
	}
	if (!rp->pick_slot || !rp->pick_slot(rec, rp->arg))
		return;
	struct relay__event *ev = rp->drop_slots ? NULL : materialize(rec);
	if (ev)
		append(rp->tail, ev);
	else
		drop_slot_rec(t, rec);
	relay__queue_take_rec(rec);
}

/* Takes the picked events of the batch, the slow list and the rings (in
 * that order: oldest first) onto *out. */
static void take_picked(struct relay__tdata *t, struct ring_pick *rp, struct relay__event **out)
{
	struct relay__event **tail = out;
	*out = NULL;
	take_posted(t);
	if (rp->pick_ev)
		extract(&t->batch, rp->pick_ev, rp->arg, &tail);
	rp->tail = &tail;
	relay__queue_scan(t, ring_visit, rp);
	unref_flush(t);
}

static bool is_delete(const struct relay__event *ev, void *arg)
{
	(void)arg;
	return ev->kind == RELAY__EV_DELETE;
}

/* Runs the DELETE events queued for this thread, leaving the others in
 * order for a later run. Repeats while destructors queue more. */
int relay__run_deferred_deletes(struct relay__tdata *self)
{
	int n = 0;
	for (;;) {
		struct relay__event *deletes;
		struct ring_pick rp = { .pick_ev = is_delete };
		take_picked(self, &rp, &deletes);
		if (!deletes)
			return n;
		while (deletes) {
			struct relay__event *ev = deletes;
			deletes = ev->next;
			ev->next = NULL;
			relay__dispatch(self, ev);
			n++;
		}
	}
}

static bool is_dead(const struct relay__event *ev, void *arg)
{
	(void)arg;
	if (ev->done)
		return true;   /* a blocking poster waits: release it */
	if (ev->kind != RELAY__EV_SLOT && ev->kind != RELAY__EV_INVOKE)
		return false;
	return !event_target(ev) || (ev->conn && !atomic_load(&ev->conn->alive));
}

static bool is_dead_slot(const struct relay__rec *rec, void *arg)
{
	(void)arg;
	const struct relay__conn *c = rec->conn;
	return !atomic_load(&c->alive) || !atomic_load(&c->rweak->obj);
}

static void drop_list(struct relay__tdata *t, struct relay__event *list)
{
	while (list) {
		struct relay__event *ev = list;
		list = ev->next;
		drop(t, ev);
	}
}

/* At the thread's end: blocking posters are released, and what can no
 * longer be delivered is freed now rather than when the thread goes. */
void relay__release_blocking(struct relay__tdata *t)
{
	struct relay__event *dead;
	struct ring_pick rp = { .pick_ev = is_dead, .pick_slot = is_dead_slot, .drop_slots = true };
	take_picked(t, &rp, &dead);
	drop_list(t, dead);
}

static bool is_for_obj(const struct relay__event *ev, void *obj)
{
	return ev->target == obj && (ev->kind == RELAY__EV_SLOT || ev->kind == RELAY__EV_INVOKE);
}

static bool is_slot_for_obj(const struct relay__rec *rec, void *obj)
{
	return rec->conn->receiver == obj;
}

void relay__purge_events(struct relay__tdata *self, relay_object *obj)
{
	struct relay__event *gone;
	struct ring_pick rp = { .pick_ev = is_for_obj, .pick_slot = is_slot_for_obj,
				.arg = obj, .drop_slots = true };
	take_picked(self, &rp, &gone);
	drop_list(self, gone);
}

static bool any_event(const struct relay__event *ev, void *arg)
{
	(void)ev;
	(void)arg;
	return true;
}

static bool any_slot(const struct relay__rec *rec, void *arg)
{
	(void)rec;
	(void)arg;
	return true;
}

void relay__drain_on_teardown(struct relay__tdata *t)
{
	struct relay__event *all;
	struct ring_pick rp = { .pick_ev = any_event, .pick_slot = any_slot, .drop_slots = true };
	take_picked(t, &rp, &all);
	relay__queue_release_rings(t);   /* the thread is gone: producers' rings close */
	while (all) {
		struct relay__event *ev = all;
		all = ev->next;
		ev->next = NULL;
		relay_object *target = ev->kind == RELAY__EV_DELETE ? event_target(ev) : NULL;
		if (target && relay__obj_thread(target) == t) {
			/* T4: the object is destroyed even though its thread is gone. */
			relay__destroy_foreign(target);
			relay__event_free(ev, 0);
		} else if (target) {
			forward(t, target, ev);
		} else if (ev->kind == RELAY__EV_DELETE) {
			relay__event_free(ev, 0);
		} else {
			drop(t, ev);
		}
	}
}

/* ---- move_to_thread support ---- */

static bool in_tree(const struct relay__event *ev, void *root)
{
	relay_object *target = event_target(ev);
	return target && relay__is_in_tree(target, root);
}

static bool slot_in_tree(const struct relay__rec *rec, void *root)
{
	relay_object *target = atomic_load(&rec->conn->rweak->obj) ? rec->conn->receiver : NULL;
	return target && relay__is_in_tree(target, root);
}

void relay__move_events(struct relay__tdata *from, struct relay__tdata *to, relay_object *obj)
{
	struct relay__event *moved;
	struct ring_pick rp = { .pick_ev = in_tree, .pick_slot = slot_in_tree, .arg = obj };
	take_picked(from, &rp, &moved);
	/* They go ahead of what `to` has in its rings: its next pass delivers
	 * the slow list first, and a ring record for the tree waits for it. */
	struct relay__event *released = NULL;
	pthread_mutex_lock(&to->q.lock);
	bool any = moved != NULL, serves = relay__tdata_serves(to);
	while (moved) {
		struct relay__event *ev = moved;
		moved = ev->next;
		if (ev->done && !serves) {
			/* A blocking call does not follow into a thread that runs no
			 * loop (D8): its waiter is released, after the unlock. */
			ev->next = released;
			released = ev;
			continue;
		}
		relay__queue_push_slow_locked(&to->q, ev);
		atomic_fetch_add_explicit(&to->posted, 1, memory_order_relaxed);
	}
	/* Under the lock: `to` cannot take (and act on) the moved events
	 * before the transit is over - a move it starts from one of their
	 * slots must not be ended by this one. */
	relay__tree_set_flag(obj, RELAY__OBJ_IN_TRANSIT, false);
	pthread_mutex_unlock(&to->q.lock);
	drop_list(from, released);
	if (any)
		relay__queue_wake_if_sleeping(&to->q);
}

/* ---- public: running the calling thread's loop ---- */

int relay_loop_run(void)
{
	struct relay__tdata *self = relay__tdata_current();
	if (!self)
		return -ENOMEM;
	return relay__loop_run(self);
}

int relay_loop_run_once(int timeout_ms)
{
	struct relay__tdata *self = relay__tdata_current();
	if (!self)
		return -ENOMEM;
	return relay__loop_pass(self, timeout_ms);
}

int relay_process_events(void)
{
	return relay_loop_run_once(0);
}

int relay_release_caches(void)
{
	struct relay__tdata *self = relay__tdata_current();
	if (!self)
		return -ENOMEM;
	relay__signal_thread_exit();
	relay__producer_trim(&self->prod);
	relay__queue_trim(self);
	return 0;
}

int relay_loop_quit(void)
{
	return relay_loop_exit(0);
}

int relay_loop_exit(int code)
{
	struct relay__tdata *self = relay__tdata_current();
	if (!self)
		return -ENOMEM;
	atomic_store(&self->exit_code, code);
	atomic_store(&self->exit_pending, true);
	return 0;
}
