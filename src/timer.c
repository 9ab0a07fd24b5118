/*
 * timer.c - relay_timer objects and one-call single shots, fired by the
 * loop of the thread they live in from a heap of deadlines (heap.c) on the
 * monotonic clock.
 *
 * Rules (Qt's): a timer is started and stopped only in its own thread
 * (refused otherwise: the heap belongs to that thread and is not locked);
 * when its object moves, it is taken out of the old thread's heap and an
 * arm event is queued to the new thread, which keeps its deadline.
 */
#include "internal.h"

#include <limits.h>

#define NS_PER_MS 1000000ull

/* ---- arming ---- */

static int arm(struct relay__tdata *self, struct relay__timerdata *td)
{
	int rc = relay__heap_push(&self->timers, td);
	if (rc == 0)
		td->armed_in = self;
	return rc;
}

static void disarm(struct relay__timerdata *td)
{
	if (td->armed_in) {
		relay__heap_remove(&td->armed_in->timers, td);
		td->armed_in = NULL;
	}
}

void relay__single_shot_free(struct relay__timerdata *td)
{
	relay__weak_release(td->weak);
	relay__free(td);
}

/* ---- firing ---- */

static void fire_timer(struct relay__tdata *self, struct relay__timerdata *td, uint64_t now)
{
	relay_timer *t = td->owner;
	if (atomic_load(&td->single_shot)) {
		atomic_store(&td->active, false);
	} else {
		/* Re-arm before emitting: the slot may stop or destroy it. Missed
		 * ticks are not replayed (as Qt): the next is one interval on. */
		uint64_t iv = (uint64_t)atomic_load(&td->interval_ms) * NS_PER_MS;
		td->deadline_ns += iv;
		if (td->deadline_ns <= now)
			td->deadline_ns = now + iv;
		if (arm(self, td) < 0)
			atomic_store(&td->active, false);
	}
	relay_emit(t, timeout);
}

static void fire_single_shot(struct relay__tdata *self, struct relay__timerdata *td)
{
	relay_object *obj = atomic_load(&td->weak->obj);
	if (obj && relay__obj_thread(obj) != self) {
		/* The receiver moved since: fire in its new thread. */
		struct relay__event *ev = relay__event_new(RELAY__EV_SINGLE_SHOT, 0);
		if (ev) {
			ev->u.timer = td;
			ev->target = obj;
			if (relay__post_to_object(obj, ev, RELAY__POST_ALWAYS) == 0)
				return;
			relay__free(ev);
		}
		relay__single_shot_free(td);
		return;
	}
	if (obj) {
		relay_object *prev = relay__set_sender(NULL);
		((void (*)(void *))td->slot)(obj);
		relay__set_sender(prev);
	}
	relay__single_shot_free(td);
}

int relay__timers_run(struct relay__tdata *self, uint64_t now)
{
	struct relay__timerheap *h = &self->timers;
	uint64_t round = ++h->round;
	int n = 0;
	struct relay__timerdata *td;
	while ((td = relay__heap_top(h)) != NULL && td->deadline_ns <= now && td->round != round) {
		relay__heap_remove(h, td);
		td->armed_in = NULL;
		td->round = round;
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
		relay__free(td);
		t->relay__data = NULL;
	}
}

static const relay_class timer_class = { "relay_timer", timer_finalize, 0 };

int relay_timer_create(relay_object *parent, relay_timer **out)
{
	if (!out)
		return -EINVAL;
	*out = NULL;
	struct relay__timerdata *td = relay__calloc(sizeof *td);
	if (!td)
		return -ENOMEM;
	relay_timer *t;
	int rc = relay_object_new(sizeof *t, &timer_class, parent, &t);
	if (rc < 0) {
		relay__free(td);
		return rc;
	}
	td->owner = t;
	td->heap_index = (size_t)-1;
	t->relay__data = td;
	atomic_fetch_or(&t->base.relay__flags, RELAY__OBJ_IS_TIMER);
	*out = t;
	return 0;
}

static int check_timer_thread(relay_timer *t, const char *what)
{
	if (!t || !t->relay__data)
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
	rc = arm(relay__obj_thread(&t->base), td);
	atomic_store(&td->active, rc == 0);
	return rc;
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

static void move_one(relay_timer *t, struct relay__tdata *to)
{
	struct relay__timerdata *td = t->relay__data;
	if (!td || !atomic_load(&td->active))
		return;
	disarm(td);
	if (!to)
		return;   /* no thread: re-armed when it gets one */
	struct relay__event *ev = relay__event_new(RELAY__EV_TIMER_ARM, 0);
	if (ev && (ev->weak = relay__weak_acquire(&t->base)) != NULL) {
		ev->u.timer = td;
		ev->target = &t->base;
		if (relay__post_to_object(&t->base, ev, RELAY__POST_ALWAYS) == 0)
			return;
		relay__event_free(ev, 0);
	} else if (ev) {
		relay__free(ev);
	}
	atomic_store(&td->active, false);   /* out of memory: it stops */
}

static void move_tree(relay_object *obj, struct relay__tdata *to)
{
	if (atomic_load(&obj->relay__flags) & RELAY__OBJ_IS_TIMER)
		move_one((relay_timer *)obj, to);
	for (relay_object *c = obj->relay__first_child; c; c = c->relay__next_sibling)
		move_tree(c, to);
}

void relay__timers_move(relay_object *obj, struct relay__tdata *to)
{
	move_tree(obj, to);
}

void relay__timer_arm_event(struct relay__tdata *self, struct relay__event *ev)
{
	relay_object *obj = ev->weak ? atomic_load(&ev->weak->obj) : NULL;
	/* The timer may have been destroyed, stopped, or moved on again. */
	if (obj && relay__obj_thread(obj) == self) {
		struct relay__timerdata *td = ev->u.timer;
		if (atomic_load(&td->active) && !td->armed_in && arm(self, td) < 0)
			atomic_store(&td->active, false);
	} else if (obj) {
		ev->next = NULL;
		if (relay__post_to_object(obj, ev, RELAY__POST_ALWAYS) == 0)
			return;
	}
	relay__event_free(ev, 0);
}

/* ---- single shots ---- */

void relay__single_shot_event(struct relay__tdata *self, struct relay__event *ev)
{
	struct relay__timerdata *td = ev->u.timer;
	ev->u.timer = NULL;
	relay_object *obj = atomic_load(&td->weak->obj);
	if (obj && arm(self, td) == 0) {
		relay__event_free(ev, 0);
		return;
	}
	relay__event_free(ev, 0);
	relay__single_shot_free(td);   /* receiver gone (skipped) or no memory */
}

int relay__single_shot(int ms, relay_object *receiver, relay_slot_fn slot)
{
	if (!receiver || !slot || ms < 0 || !receiver->relay__class)
		return -EINVAL;
	struct relay__timerdata *td = relay__calloc(sizeof *td);
	if (!td)
		return -ENOMEM;
	td->heap_index = (size_t)-1;
	td->slot = slot;
	td->deadline_ns = relay__now_ns() + (uint64_t)ms * NS_PER_MS;
	if (!(td->weak = relay__weak_acquire(receiver))) {
		relay__free(td);
		return -ENOMEM;
	}
	struct relay__tdata *self = relay__tdata_current();
	if (self && relay__obj_thread(receiver) == self)
		return arm(self, td) == 0 ? 0 : (relay__single_shot_free(td), -ENOMEM);
	/* Arm it in the receiver's thread: the heap is that thread's. */
	struct relay__event *ev = relay__event_new(RELAY__EV_SINGLE_SHOT, 0);
	if (!ev) {
		relay__single_shot_free(td);
		return -ENOMEM;
	}
	ev->u.timer = td;
	ev->target = receiver;
	int rc = relay__post_to_object(receiver, ev, RELAY__POST_ALWAYS);
	if (rc < 0) {
		relay__free(ev);
		relay__single_shot_free(td);
		return rc == RELAY_ENOTDELIVERED ? 0 : rc;
	}
	return 0;
}

void relay__timers_teardown(struct relay__tdata *t)
{
	struct relay__timerheap *h = &t->timers;
	while (h->count) {
		struct relay__timerdata *td = h->items[h->count - 1];
		relay__heap_remove(h, td);
		td->armed_in = NULL;
		if (!td->owner)
			relay__single_shot_free(td);   /* its thread is gone: skipped */
	}
	relay__heap_free(h);
}
