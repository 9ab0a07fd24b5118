/*
 * post.c - posting to the thread an object lives in.
 *
 * Every post asks the target's anchor "alive, and where" inside a section
 * (grace.h) and commits its record to that thread's ring before leaving
 * it, so move_to_thread - which changes the anchor's home and then waits a
 * grace period - collects every record posted to the old thread. Inside a
 * section nothing blocks and no user code runs: when the ring needs memory
 * the post leaves the section, makes room (the allocator is user code) and
 * starts again; when the target is being moved it leaves and waits for the
 * move (short: the mover runs relay code only) and starts again. A post
 * takes no lock.
 *
 * Inside a section the home thread's record is alive: the anchor holds a
 * reference on it, and a mover drops that reference only after a grace
 * period, which waits for this section.
 */
#include "internal.h"

#include <errno.h>
#include <sched.h>
#include <string.h>

/* Outcomes inside a section that make the post go round again. */
enum { AGAIN_TRANSIT = 1, AGAIN_ROOM = 2 };

static void wait_transit(struct relay__anchor *a)
{
	while (atomic_load_explicit(&a->home, memory_order_acquire) & RELAY__HOME_TRANSIT)
		sched_yield();
}

/* Inside a section: the thread to post to in *t, or why not. */
static inline int locate(struct relay__anchor *a, struct relay__tdata **t)
{
	uintptr_t h = atomic_load_explicit(&a->home, memory_order_seq_cst);
	if (h & RELAY__HOME_TRANSIT)
		return AGAIN_TRANSIT;
	*t = relay__home_of(h);
	if (!atomic_load_explicit(&a->obj, memory_order_seq_cst))
		return RELAY_ENOTDELIVERED;
	if (!*t || relay__tstate_gone(relay__tstate(*t)))
		return RELAY_ENOTRUNNING;
	return 0;
}

/* After a section that ended in AGAIN_*: wait, or make room in the ring to
 * `room_for` (referenced inside the section; released here). A slot call
 * that cannot get memory is counted as dropped there (`count`). */
static int go_again(int why, struct relay__anchor *a, struct relay__tdata *self,
		    struct relay__tdata *room_for, size_t size, bool count)
{
	if (why == AGAIN_TRANSIT) {
		wait_transit(a);
		return 0;
	}
	int rc = relay__queue_make_room(self, room_for, size);
	if (rc < 0 && count)
		relay__count_drop(room_for);
	relay__tdata_unref(room_for);
	return rc;
}

int relay__post(struct relay__anchor *a, struct relay__event *ev, enum relay__post_mode mode,
		struct relay__tdata **home_out)
{
	struct relay__tdata *self = relay__tdata_current();
	if (!self)
		return -ENOMEM;
	const size_t size = relay__rec_size(0);
	for (;;) {
		struct relay__tdata *t = NULL;
		relay__section_enter(&self->grace);
		int rc = locate(a, &t);
		/* A blocking call whose target moved into the calling thread
		 * since the caller's check would wait for itself. */
		if (rc == 0 && mode == RELAY__POST_SERVING)
			rc = t == self ? RELAY_EDEADLOCK
			     : !relay__tstate_serves(t) ? RELAY_ENOTRUNNING : 0;
		if (rc == 0) {
			if (!relay__queue_push_event(self, t, ev)) {
				relay__tdata_ref(t);
				rc = AGAIN_ROOM;
			} else if (home_out) {
				relay__tdata_ref(t);   /* alive: we are inside a section */
				*home_out = t;
			}
		}
		relay__section_leave(&self->grace);
		if (rc <= 0)
			return rc;
		if (go_again(rc, a, self, t, size, false) < 0)
			return -ENOMEM;
	}
}

int relay__post_slot(struct relay__tdata *self, struct relay__conn *c, relay_object *sender,
		     size_t argsize, const void *arg)
{
	struct relay__anchor *a = c->ranchor;
	const size_t size = relay__rec_size(argsize);
	for (;;) {
		struct relay__tdata *t = NULL;
		relay__section_enter(&self->grace);
		int rc = locate(a, &t);
		if (rc == 0) {
			if (RELAY__UNLIKELY(!relay__queue_push_slot(self, t, c, sender, argsize, arg))) {
				relay__tdata_ref(t);
				rc = AGAIN_ROOM;
			}
		} else if (rc == RELAY_ENOTDELIVERED && t) {
			relay__count_drop(t);   /* its destruction began */
		}
		relay__section_leave(&self->grace);
		if (RELAY__UNLIKELY(self->prod.stale != NULL))
			relay__queue_release_stale(&self->prod);
		if (rc == RELAY_ENOTRUNNING)   /* no loop will ever take it */
			atomic_fetch_add_explicit(&self->refused, 1, memory_order_relaxed);
		if (rc <= 0)
			return rc;
		if (go_again(rc, a, self, t, size, true) < 0)
			return -ENOMEM;
	}
}

int relay__post_blocking(struct relay__anchor *a, struct relay__event *ev, int *result)
{
	struct relay__completion *c = relay__completion_new();
	if (!c) {
		relay__event_free(ev, -ENOMEM);
		return -ENOMEM;
	}
	ev->done = c;
	struct relay__tdata *t = NULL;
	int rc = relay__post(a, ev, RELAY__POST_SERVING, &t);
	if (rc < 0) {
		relay__event_free(ev, rc);   /* claims and drops the event's reference */
		relay__completion_unref(c);
		return rc;
	}
	/* The thread may have stopped serving between the check and the
	 * commit: it turns FINISHING (seq_cst) before its last scan, which
	 * loads the rings seq_cst, and the commit was a seq_cst exchange, so
	 * either that scan releases this call or this load sees it stopped.
	 * Whoever claims first decides; the event, if met later, is skipped. */
	bool stopped = !relay__tstate_serves(t);
	relay__tdata_unref(t);
	if (stopped && relay__completion_claim(c)) {
		relay__completion_unref(c);
		return RELAY_ENOTRUNNING;
	}
	/* A pool task's call: its cancel releases it (the event, met later,
	 * is skipped: the canceller claimed the completion). */
	bool registered = relay__tls.worker && relay__tls.task;
	if (registered && !relay__pool_block_enter(c)) {
		relay__completion_unref(c);
		return -ECANCELED;
	}
	rc = relay__completion_wait(c);
	if (registered)
		relay__pool_block_leave();
	if (rc == 0 && result)
		*result = c->result;
	relay__completion_unref(c);
	return rc;
}
