/*
 * timer.c - relay_timer objects and one-call single shots, fired by the
 * loop of the thread they live in from a heap of deadlines (heap.c) on the
 * monotonic clock.
 *
 * Rules (Qt's): a timer is started and stopped only in its own thread
 * (refused otherwise: the heap belongs to that thread's loop and is not
 * locked); it is never fired again while its timeout is being delivered
 * (a slot that runs a nested pass does not re-enter itself); when its
 * object moves, move_to_thread takes it out of the old heap and the new
 * thread arms it, keeping its deadline. Arming never allocates (the heap
 * is intrusive), so it never fails.
 *
 * A single shot is armed in its receiver's thread and listed on the
 * receiver's anchor (shots): destroying the receiver frees it at once, and
 * moving the receiver carries it along.
 */
#include "internal.h"

#include <limits.h>

#define NS_PER_MS 1000000ull

/* ---- arming ---- */

static void arm(struct relay__tdata *self, struct relay__timerdata *td)
{
	relay__heap_push(&self->timers, td);
	td->armed_in = self;
}

static void disarm(struct relay__timerdata *td)
{
	if (td->armed_in) {
		relay__heap_remove(&td->armed_in->timers, td);
		td->armed_in = NULL;
	}
}

static void shot_link(struct relay__timerdata *td)
{
	struct relay__anchor *a = td->anchor;
	td->shot_prev = NULL;
	td->shot_next = a->shots;
	if (a->shots)
		a->shots->shot_prev = td;
	a->shots = td;
}

static void shot_unlink(struct relay__timerdata *td)
{
	struct relay__anchor *a = td->anchor;
	if (td->shot_prev)
		td->shot_prev->shot_next = td->shot_next;
	else if (a->shots == td)
		a->shots = td->shot_next;
	if (td->shot_next)
		td->shot_next->shot_prev = td->shot_prev;
	td->shot_prev = td->shot_next = NULL;
}

/* A single shot armed in its receiver's thread (the caller, its owner). */
static void arm_shot(struct relay__tdata *self, struct relay__timerdata *td)
{
	arm(self, td);
	shot_link(td);
}

void relay__single_shot_free(struct relay__timerdata *td)
{
	relay__anchor_unref(td->anchor);
	relay__free(td);
}

void relay__shots_cancel(struct relay__anchor *a)
{
	while (a->shots) {
		struct relay__timerdata *td = a->shots;
		shot_unlink(td);
		disarm(td);
		relay__single_shot_free(td);
	}
}

/* ---- firing ---- */

/* A repeating timer is re-armed *after* its timeout was delivered, so a
 * slot that runs a nested pass never re-enters it (Qt's rule); its next
 * deadline is set before, strictly after this pass's `now`, so a zero
 * interval cannot fire twice in one pass. Missed ticks are not replayed
 * (as Qt): the next is one interval on. The slot may stop, restart, move
 * or destroy the timer: then it is not re-armed here. */
static void fire_timer(struct relay__tdata *self, struct relay__timerdata *td, uint64_t now)
{
	relay_timer *t = td->owner;
	bool repeat = !atomic_load(&td->single_shot);
	if (repeat) {
		uint64_t iv = (uint64_t)atomic_load(&td->interval_ms) * NS_PER_MS;
		td->deadline_ns += iv;
		if (td->deadline_ns <= now)
			td->deadline_ns = now + (iv ? iv : 1);
	} else {
		atomic_store(&td->active, false);
	}
	/* The slot may destroy the timer (freeing td): its anchor tells. */
	struct relay__anchor *a = relay__obj_anchor(&t->base);
	relay__anchor_ref(a);
	self->scope++;
	relay_emit(t, timeout);
	self->scope--;
	if (repeat && relay__anchor_obj(a) && relay__anchor_home(a) == self &&
	    atomic_load(&td->active) && !td->armed_in)
		arm(self, td);
	relay__anchor_unref(a);
}

static void fire_single_shot(struct relay__tdata *self, struct relay__timerdata *td)
{
	shot_unlink(td);
	relay_object *obj = relay__anchor_obj(td->anchor);
	if (obj && relay__anchor_home(td->anchor) == self) {
		relay_object *prev = relay__set_sender(NULL);
		self->scope++;
		((void (*)(void *))td->slot)(obj);
		self->scope--;
		relay__set_sender(prev);
	}
	relay__single_shot_free(td);
}

int relay__timers_run(struct relay__tdata *self, uint64_t now)
{
	struct relay__timerheap *h = &self->timers;
	int n = 0;
	struct relay__timerdata *td;
	while ((td = relay__heap_top(h)) != NULL && td->deadline_ns <= now) {
		relay__heap_remove(h, td);
		td->armed_in = NULL;
		n++;
		atomic_fetch_add_explicit(&self->timers_fired, 1, memory_order_relaxed);
		if (td->owner)
			fire_timer(self, td, now);
		else
			fire_single_shot(self, td);
	}
	return n;
}

int relay__timers_timeout(struct relay__tdata *self, uint64_t now)
{
	struct relay__timerdata *td = relay__heap_top(&self->timers);
	if (!td)
		return -1;
	if (td->deadline_ns <= now)
		return 0;
	uint64_t ms = (td->deadline_ns - now + NS_PER_MS - 1) / NS_PER_MS;   /* round up */
	return ms > INT_MAX ? INT_MAX : (int)ms;
}

/* ---- relay_timer ---- */

static void timer_finalize(relay_object *obj)
{
	relay_timer *t = (relay_timer *)obj;
	struct relay__timerdata *td = t->relay__data;
	if (td) {
		disarm(td);
		relay__queue_unlink_timer(td);   /* moved here, not armed yet */
		relay__free(td);
		t->relay__data = NULL;
	}
}

static const relay_class timer_class = { .name = "relay_timer", .finalize = timer_finalize };

int (relay_timer_create)(relay_object *parent, relay_timer **out)
{
	if (!out)
		return -EINVAL;
	*out = NULL;
	struct relay__timerdata *td = relay__calloc(sizeof *td);
	if (!td)
		return -ENOMEM;
	relay_timer *t;
	int rc = relay_object_new(&t, &timer_class, parent);
	if (rc < 0) {
		relay__free(td);
		return rc;
	}
	td->owner = t;
	t->relay__data = td;
	atomic_fetch_or(&t->base.relay__flags, RELAY__OBJ_IS_TIMER);
	*out = t;
	return 0;
}

static int check_timer_thread(relay_timer *t, const char *what)
{
	int rc = relay__obj_check(t ? &t->base : NULL, what);
	if (rc < 0)
		return rc;
	if (!t->relay__data)
		return -EINVAL;
	if (relay__tdata_is_current(relay__obj_thread(&t->base)))
		return 0;
	char who[160];
	return relay__diag(RELAY_ETIMERTHREAD, "%s: timers cannot be started or stopped from "
			   "another thread: %s; use relay_invoke() to do it in its thread",
			   what, relay__describe(&t->base, who, sizeof who));
}

int relay_timer_start(relay_timer *t, int ms)
{
	int rc = check_timer_thread(t, "relay_timer_start");
	if (rc < 0)
		return rc;
	struct relay__timerdata *td = t->relay__data;
	if (ms >= 0)
		atomic_store(&td->interval_ms, ms);
	disarm(td);
	td->deadline_ns = relay__now_ns() + (uint64_t)atomic_load(&td->interval_ms) * NS_PER_MS;
	arm(relay__obj_thread(&t->base), td);
	atomic_store(&td->active, true);
	return 0;
}

int relay_timer_stop(relay_timer *t)
{
	int rc = check_timer_thread(t, "relay_timer_stop");
	if (rc < 0)
		return rc;
	disarm(t->relay__data);
	atomic_store(&t->relay__data->active, false);
	return 0;
}

int relay_timer_set_interval(relay_timer *t, int ms)
{
	if (ms < 0)
		return -EINVAL;
	int rc = check_timer_thread(t, "relay_timer_set_interval");
	if (rc < 0)
		return rc;
	atomic_store(&t->relay__data->interval_ms, ms);
	if (atomic_load(&t->relay__data->active))
		return relay_timer_start(t, ms);
	return 0;
}

int relay_timer_set_single_shot(relay_timer *t, bool single)
{
	int rc = check_timer_thread(t, "relay_timer_set_single_shot");
	if (rc < 0)
		return rc;
	atomic_store(&t->relay__data->single_shot, single);
	return 0;
}

bool relay_timer_is_active(const relay_timer *t)
{
	return t && t->relay__data && atomic_load(&t->relay__data->active);
}

int relay_timer_interval(const relay_timer *t)
{
	if (!t || !t->relay__data)
		return -EINVAL;
	return atomic_load(&t->relay__data->interval_ms);
}

/* ---- following a moved object ---- */

static void take_one(relay_object *obj, struct relay__tdata *from,
		     struct relay__timerdata **list)
{
	if (atomic_load(&obj->relay__flags) & RELAY__OBJ_IS_TIMER) {
		struct relay__timerdata *td = ((relay_timer *)obj)->relay__data;
		/* Active: armed in the old thread, or unarmed for lack of one. */
		if (td && atomic_load(&td->active) && (td->armed_in == from || !td->armed_in)) {
			disarm(td);
			relay__queue_unlink_timer(td);   /* moved here, not armed yet */
			td->move_next = *list;
			*list = td;
		}
	}
	struct relay__anchor *a = relay__obj_anchor(obj);
	while (a && a->shots) {
		struct relay__timerdata *td = a->shots;
		shot_unlink(td);
		disarm(td);
		td->move_next = *list;
		*list = td;
	}
	for (relay_object *c = obj->relay__first_child; c; c = c->relay__next_sibling)
		take_one(c, from, list);
}

struct relay__timerdata *relay__timers_take_tree(struct relay__tdata *from, relay_object *root)
{
	struct relay__timerdata *list = NULL;
	take_one(root, from, &list);
	return list;
}

/* A single shot whose receiver moved on while the shot travelled: it goes
 * to the receiver's thread now (through that thread's moved list); with
 * no thread to go to, it is skipped. */
static void follow_receiver(struct relay__timerdata *td)
{
	struct relay__tdata *self = relay__tdata_current();
	struct relay__tdata *home = NULL;
	if (self) {   /* the home record stays while we use it: a section */
		relay__section_enter(&self->grace);
		home = relay__anchor_home(td->anchor);
		if (home)
			relay__tdata_ref(home);
		relay__section_leave(&self->grace);
	}
	if (!home || relay__tstate_gone(relay__tstate(home))) {
		relay__single_shot_free(td);
	} else {
		pthread_mutex_lock(&home->q.lock);
		relay__queue_push_timer_locked(home, td);
		pthread_mutex_unlock(&home->q.lock);
		relay__loop_wake(home);
	}
	if (home)
		relay__tdata_unref(home);
}

void relay__timers_arm_list(struct relay__tdata *self, struct relay__timerdata *list)
{
	while (list) {
		struct relay__timerdata *td = list;
		list = td->move_next;
		td->move_next = NULL;
		if (td->owner) {
			/* Stopped or destroyed meanwhile? Only its own thread does
			 * either, and it is this one now. */
			if (atomic_load(&td->active) && !td->armed_in)
				arm(self, td);
		} else if (!relay__anchor_obj(td->anchor)) {
			relay__single_shot_free(td);   /* receiver gone: skipped */
		} else if (relay__anchor_home(td->anchor) == self) {
			arm_shot(self, td);
		} else {
			follow_receiver(td);   /* it moved on before we took the list */
		}
	}
}

/* ---- single shots ---- */

void relay__single_shot_event(struct relay__tdata *self, struct relay__event *ev)
{
	struct relay__timerdata *td = ev->u.shot;
	ev->u.shot = NULL;
	relay__timers_arm_list(self, td);   /* arms it, or frees it if the receiver went */
	atomic_fetch_add_explicit(&self->delivered, 1, memory_order_relaxed);
	relay__event_free(ev, 0);
}

int relay__single_shot(int ms, relay_object *receiver, relay_slot_fn slot)
{
	if (!slot || ms < 0)
		return -EINVAL;
	int rc = relay__obj_check(receiver, "relay_single_shot");
	if (rc < 0)
		return rc;
	struct relay__tdata *self = relay__tdata_current();
	if (!self)
		return -ENOMEM;
	struct relay__timerdata *td = relay__calloc(sizeof *td);
	if (!td)
		return -ENOMEM;
	td->slot = slot;
	td->deadline_ns = relay__now_ns() + (uint64_t)ms * NS_PER_MS;
	if (!(td->anchor = relay__anchor_get(receiver))) {
		relay__free(td);
		return RELAY_EDESTROYED;   /* its destruction began meanwhile */
	}
	if (relay__anchor_home(td->anchor) == self) {
		arm_shot(self, td);
		return 0;
	}
	/* Armed in the receiver's thread: the heap is that thread's. */
	struct relay__event *ev = relay__event_new(RELAY__EV_SINGLE_SHOT, 0, 0);
	if (!ev) {
		relay__single_shot_free(td);
		return -ENOMEM;
	}
	ev->u.shot = td;
	ev->anchor = td->anchor;
	relay__anchor_ref(ev->anchor);
	rc = relay__post(ev->anchor, ev, RELAY__POST_ALWAYS, NULL);
	if (rc < 0) {
		relay__event_free(ev, rc);   /* frees td too */
		return rc == RELAY_ENOTDELIVERED ? RELAY_EDESTROYED : rc;
	}
	return 0;
}

void relay__timers_teardown(struct relay__tdata *t)
{
	struct relay__timerheap *h = &t->timers;
	struct relay__timerdata *td;
	while ((td = relay__heap_top(h)) != NULL) {
		relay__heap_remove(h, td);
		td->armed_in = NULL;
		if (!td->owner) {
			shot_unlink(td);
			relay__single_shot_free(td);   /* its thread is gone: skipped */
		}
	}
}
