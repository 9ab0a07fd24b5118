/*
 * scan.c - taking events out of a loop's queue: purging what was queued
 * for a destroyed object, releasing blocking callers at a thread's end,
 * draining a queue whose thread is gone, and collecting an object tree's
 * events for move_to_thread.
 *
 * Every function here is for the owner of the queue only (queue.h, the
 * one-owner rule): the loop's own thread, or the thread serving it while
 * it is stopped. That is what makes "walked by two threads at once"
 * impossible rather than unlikely. Events are taken oldest first: the
 * pass's batch, then the moved list, then each ring in order.
 */
#include "internal.h"

#include <string.h>

/* ---- picking ---- */

struct pick {
	/* Whether an event (heap, or a slot record's connection and anchor)
	 * is taken. */
	bool (*pick)(struct relay__anchor *a, const struct relay__conn *c,
		     const struct relay__event *ev, void *arg);
	void *arg;
	bool drop_slots;                 /* slot records dropped in place, not taken */
	struct relay__event **spare;     /* events to materialize slot records into */
	struct relay__event ***tail;     /* where taken events go */
};

static void append(struct relay__event ***tail, struct relay__event *ev)
{
	ev->next = NULL;
	**tail = ev;
	*tail = &ev->next;
}

static void take_from_batch(struct relay__tdata *t, struct pick *p)
{
	for (struct relay__event **pp = &t->batch; *pp;) {
		struct relay__event *ev = *pp;
		if (p->pick(relay__event_anchor(ev), ev->conn, ev, p->arg)) {
			*pp = ev->next;
			append(p->tail, ev);
		} else {
			pp = &ev->next;
		}
	}
}

/* A slot record as a heap event: from the spare ones when given (a move
 * reserved them), else allocated; NULL when out of memory. */
static struct relay__event *materialize(const struct relay__rec *rec, struct pick *p)
{
	if (!p->spare || !*p->spare)
		return relay__event_from_rec(rec);
	struct relay__event *ev = *p->spare;
	*p->spare = ev->next;
	struct relay__conn *c = rec->conn;
	memcpy(ev->payload, RELAY__REC_PAYLOAD(rec), rec->argsize);
	ev->argsize = rec->argsize;
	ev->payload_live = rec->argsize && c->ops && c->ops->free;
	ev->conn = c;
	ev->sender = rec->u.sender;
	return ev;
}

static void ring_visit(struct relay__tdata *t, struct relay__rec *rec, void *arg)
{
	struct pick *p = arg;
	if (rec->kind == RELAY__REC_EVENT) {
		struct relay__event *ev = rec->u.ev;
		if (p->pick(relay__event_anchor(ev), ev->conn, ev, p->arg)) {
			append(p->tail, ev);
			relay__queue_take_rec(rec);
		}
		return;
	}
	if (!p->pick(rec->conn->ranchor, rec->conn, NULL, p->arg))
		return;
	struct relay__event *ev = p->drop_slots ? NULL : materialize(rec, p);
	if (ev) {
		append(p->tail, ev);
		relay__queue_take_rec(rec);
	} else {
		relay__rec_drop(t, rec);   /* counted; only without memory when taken */
	}
}

/* Takes the picked events out of t's queue onto *out, oldest first. */
static void take_picked(struct relay__tdata *t, struct pick *p, struct relay__event **out)
{
	struct relay__event **tail = out;
	*out = NULL;
	p->tail = &tail;
	relay__loop_take_moved(t);   /* everything not delivered: batch + rings */
	take_from_batch(t, p);
	relay__queue_scan(t, ring_visit, p);
}

/* ---- purge: a destroyed object's events ---- */

static bool is_for(struct relay__anchor *a, const struct relay__conn *c,
		   const struct relay__event *ev, void *arg)
{
	(void)c;
	(void)ev;
	return a == arg;
}

void relay__purge_events(struct relay__tdata *t, struct relay__anchor *a)
{
	struct relay__event *gone;
	struct pick p = { .pick = is_for, .arg = a, .drop_slots = true };
	take_picked(t, &p, &gone);
	relay__event_drop_list(t, gone);
}

/* ---- a thread's end: blocking callers and what cannot be delivered ---- */

static bool is_dead(struct relay__anchor *a, const struct relay__conn *c,
		    const struct relay__event *ev, void *arg)
{
	(void)arg;
	if (ev && ev->done)
		return true;   /* a blocking poster waits: release it */
	return !relay__anchor_obj(a) || (c && !atomic_load(&c->alive));
}

void relay__release_blocking(struct relay__tdata *t)
{
	struct relay__event *dead;
	struct pick p = { .pick = is_dead, .drop_slots = true };
	take_picked(t, &p, &dead);
	relay__event_drop_list(t, dead);
}

/* ---- drain: the thread is gone ---- */

static bool any(struct relay__anchor *a, const struct relay__conn *c,
		const struct relay__event *ev, void *arg)
{
	(void)a;
	(void)c;
	(void)ev;
	(void)arg;
	return true;
}

void relay__drain(struct relay__tdata *t)
{
	/* Deferred deletions still run (T4: the object is destroyed even
	 * though its thread is gone); their destructors may queue more, so
	 * look again until nothing is left. */
	for (int round = 0; round < 1000; round++) {
		int ran = relay__run_deletes(t, true);
		struct relay__event *all;
		struct pick p = { .pick = any, .drop_slots = true };
		take_picked(t, &p, &all);
		if (!all && ran == 0)
			break;
		relay__event_drop_list(t, all);
	}
	relay__queue_close(t);   /* late posts are dropped by their producers */
	relay__timers_teardown(t);
	relay__watchers_teardown(t);
	relay__poll_close(t);
}

/* ---- move_to_thread: a tree's events ---- */

static bool in_tree(struct relay__anchor *a, const struct relay__conn *c,
		    const struct relay__event *ev, void *root)
{
	(void)c;
	(void)ev;
	/* The target lives in this (the mover's) thread while it is alive:
	 * its parent links are the mover's to read. */
	relay_object *obj = relay__anchor_obj(a);
	return obj && relay__is_in_tree(obj, root);
}

struct counter {
	relay_object *root;
	size_t n;
};

static void count_visit(struct relay__tdata *t, struct relay__rec *rec, void *arg)
{
	(void)t;
	struct counter *k = arg;
	if (rec->kind == RELAY__REC_SLOT && in_tree(rec->conn->ranchor, rec->conn, NULL, k->root))
		k->n++;
}

size_t relay__count_tree(struct relay__tdata *t, relay_object *root)
{
	struct counter k = { root, 0 };
	relay__queue_scan(t, count_visit, &k);
	return k.n;
}

struct relay__event *relay__take_tree(struct relay__tdata *t, relay_object *root,
				      struct relay__event **spare)
{
	struct relay__event *moved;
	struct pick p = { .pick = in_tree, .arg = root, .spare = spare };
	take_picked(t, &p, &moved);
	return moved;
}
