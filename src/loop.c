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
#include <string.h>

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
	if (ev->done)
		relay__completion_signal(ev->done, status, 0);
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

void relay__completion_init(struct relay__completion *c)
{
	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->cond, NULL);
	c->done = false;
	c->status = 0;
	c->result = 0;
}

void relay__completion_signal(struct relay__completion *c, int status, int result)
{
	pthread_mutex_lock(&c->lock);
	c->status = status;
	c->result = result;
	c->done = true;
	/* Signal under the lock: the waiter destroys c as soon as it sees done. */
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

void relay__completion_destroy(struct relay__completion *c)
{
	pthread_cond_destroy(&c->cond);
	pthread_mutex_destroy(&c->lock);
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

int relay__post_to_object(relay_object *obj, struct relay__event *ev, enum relay__post_mode mode)
{
	pthread_mutex_t *ol = relay__objlock(obj);
	pthread_mutex_lock(ol);
	if (!event_live_locked(ev)) {
		pthread_mutex_unlock(ol);
		return RELAY_ENOTDELIVERED;
	}
	for (;;) {
		struct relay__tdata *t = relay__obj_thread(obj);
		if (!t) {
			pthread_mutex_unlock(ol);
			return RELAY_ENOTRUNNING;
		}
		pthread_mutex_lock(&t->q.lock);
		/* move_to_thread changes the affinity while holding the old
		 * thread's queue lock: re-check it under that lock so an event is
		 * never queued to a thread its target has just left. */
		if (relay__obj_thread(obj) != t) {
			pthread_mutex_unlock(&t->q.lock);
			continue;
		}
		if (mode_refuses(t, mode) || atomic_load(&t->state) == RELAY__T_GONE) {
			if (mode == RELAY__POST_ALWAYS)   /* its thread is gone for good */
				atomic_fetch_add_explicit(&t->dropped, 1, memory_order_relaxed);
			pthread_mutex_unlock(&t->q.lock);
			pthread_mutex_unlock(ol);
			return RELAY_ENOTRUNNING;
		}
		ev->posted_ns = 0;
		bool wake = relay__queue_push_locked(&t->q, ev);
		atomic_fetch_add_explicit(&t->posted, 1, memory_order_relaxed);
		pthread_mutex_unlock(&t->q.lock);
		pthread_mutex_unlock(ol);
		if (wake)
			relay__queue_wake(&t->q);
		return 0;
	}
}

void relay__post_to_thread(struct relay__tdata *t, struct relay__event *ev)
{
	pthread_mutex_lock(&t->q.lock);
	bool wake = relay__queue_push_locked(&t->q, ev);
	atomic_fetch_add_explicit(&t->posted, 1, memory_order_relaxed);
	pthread_mutex_unlock(&t->q.lock);
	if (wake)
		relay__queue_wake(&t->q);
}

void relay__loop_wake(struct relay__tdata *t)
{
	relay__queue_kick(&t->q);
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
	int rc = relay__post_to_object(target, ev, RELAY__POST_ALWAYS);
	if (rc < 0)
		drop(self, ev);
}

static void deliver_slot(struct relay__event *ev)
{
	relay__conn_call(ev->conn, ev->sender, ev->argsize ? ev->payload : NULL);
}

static void deliver_invoke(struct relay__event *ev)
{
	if (ev->done) {
		int r = ev->u.call.fn(ev->u.call.data);
		struct relay__completion *c = ev->done;
		ev->done = NULL;
		relay__completion_signal(c, 0, r);
	} else {
		ev->u.invoke.fn(ev->u.invoke.data);
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
	atomic_fetch_add_explicit(&self->delivered, 1, memory_order_relaxed);
	switch (ev->kind) {
	case RELAY__EV_SLOT:
		deliver_slot(ev);
		break;
	case RELAY__EV_INVOKE:
		deliver_invoke(ev);
		ev->u.invoke.free_data = NULL;   /* fn ran: data is fn's now */
		break;
	case RELAY__EV_DELETE:
		relay_object_destroy(target);
		break;
	default:
		break;
	}
	relay__event_free(ev, 0);
}

/* Appends the events posted so far to the batch being delivered. */
static void take_posted(struct relay__tdata *self)
{
	struct relay__event *fresh = relay__queue_take_all(&self->q);
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
static int deliver_batch(struct relay__tdata *self)
{
	take_posted(self);
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

static int sleep_timeout(struct relay__tdata *self, int timeout_ms)
{
	int t = relay__timers_timeout(self, relay__now_ns());
	if (timeout_ms < 0)
		return t;
	if (t < 0 || t > timeout_ms)
		return timeout_ms;
	return t;
}

int relay__loop_pass(struct relay__tdata *self, int timeout_ms)
{
	atomic_fetch_add_explicit(&self->passes, 1, memory_order_relaxed);
	if (self->adopted && !atomic_load_explicit(&self->pumps, memory_order_relaxed))
		atomic_store(&self->pumps, true);   /* it serves blocking calls now */
	int n = relay__timers_run(self, relay__now_ns());
	n += deliver_batch(self);
	if (n > 0 || atomic_load(&self->exit_pending) || timeout_ms == 0 || self->batch)
		return n;

	int t = sleep_timeout(self, timeout_ms);
	if (t != 0 && relay__queue_prepare_sleep(&self->q, &self->exit_pending)) {
		int rc = relay__poll_wait(self, t);
		relay__queue_awake(&self->q);
		atomic_fetch_add_explicit(&self->wakeups, 1, memory_order_relaxed);
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

/* ---- deferred deletions at a thread's end ---- */

/* Runs the DELETE events queued for this thread, leaving the others in
 * order for a later run. Repeats while destructors queue more. */
int relay__run_deferred_deletes(struct relay__tdata *self)
{
	int n = 0;
	for (;;) {
		take_posted(self);
		struct relay__event *deletes = NULL, **dtail = &deletes;
		struct relay__event **pp = &self->batch;
		while (*pp) {
			struct relay__event *ev = *pp;
			if (ev->kind == RELAY__EV_DELETE) {
				*pp = ev->next;
				ev->next = NULL;
				*dtail = ev;
				dtail = &ev->next;
			} else {
				pp = &ev->next;
			}
		}
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

static bool is_dead(const struct relay__event *ev)
{
	if (ev->kind != RELAY__EV_SLOT && ev->kind != RELAY__EV_INVOKE)
		return false;
	return !event_target(ev) || (ev->conn && !atomic_load(&ev->conn->alive));
}

/* Takes every blocking or undeliverable event out of a list and drops it. */
static void release_blocking_list(struct relay__tdata *t, struct relay__event **pp)
{
	while (*pp) {
		struct relay__event *ev = *pp;
		if (ev->done || is_dead(ev)) {
			*pp = ev->next;
			drop(t, ev);
		} else {
			pp = &ev->next;
		}
	}
}

void relay__release_blocking(struct relay__tdata *t)
{
	take_posted(t);
	release_blocking_list(t, &t->batch);
}

void relay__purge_events(struct relay__tdata *self, relay_object *obj)
{
	take_posted(self);
	struct relay__event **pp = &self->batch;
	while (*pp) {
		struct relay__event *ev = *pp;
		if (ev->target == obj && (ev->kind == RELAY__EV_SLOT || ev->kind == RELAY__EV_INVOKE)) {
			*pp = ev->next;
			drop(self, ev);
		} else {
			pp = &ev->next;
		}
	}
}

void relay__drain_on_teardown(struct relay__tdata *t)
{
	take_posted(t);
	while (t->batch) {
		struct relay__event *ev = t->batch;
		t->batch = ev->next;
		ev->next = NULL;
		relay_object *target = ev->kind == RELAY__EV_DELETE ? event_target(ev) : NULL;
		if (target && relay__obj_thread(target) == t) {
			/* T4: the object is destroyed even though its thread is gone. */
			relay__object_destroy_unchecked(target);
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

static void append(struct relay__event ***tail, struct relay__event *ev)
{
	ev->next = NULL;
	**tail = ev;
	*tail = &ev->next;
}

/* Moves the events of list *pp whose target is in obj's tree onto out. */
static void extract_tree(struct relay__event **pp, relay_object *obj, struct relay__event ***out)
{
	while (*pp) {
		struct relay__event *ev = *pp;
		relay_object *target = event_target(ev);
		if (target && relay__is_in_tree(target, obj)) {
			*pp = ev->next;
			append(out, ev);
		} else {
			pp = &ev->next;
		}
	}
}

void relay__move_events_locked(struct relay__tdata *from, struct relay__tdata *to,
			       relay_object *obj)
{
	struct relay__event *moved = NULL, **tail = &moved;
	/* The batch being delivered is older than anything still queued. */
	extract_tree(&from->batch, obj, &tail);
	struct relay__event *queued = from->q.head;
	from->q.head = from->q.tail = NULL;
	struct relay__event **qp = &queued;
	extract_tree(qp, obj, &tail);
	/* Put back what stays, in order. */
	for (struct relay__event *ev = queued; ev;) {
		struct relay__event *next = ev->next;
		relay__queue_push_locked(&from->q, ev);
		ev = next;
	}
	bool wake = false;
	for (struct relay__event *ev = moved; ev;) {
		struct relay__event *next = ev->next;
		wake |= relay__queue_push_locked(&to->q, ev);
		atomic_fetch_add_explicit(&to->posted, 1, memory_order_relaxed);
		ev = next;
	}
	if (wake)
		relay__queue_wake(&to->q);
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
