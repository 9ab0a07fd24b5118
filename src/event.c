/*
 * event.c - the lifetimes of what travels to a loop: heap events, ring
 * records dropped undelivered, and blocking calls' completions.
 *
 * Every event holds a counted reference on what it needs to answer "is
 * the target alive, and where does it live": a SLOT event its connection
 * (whose ranchor is the receiver's anchor), the other kinds the target's
 * anchor. Freeing an event releases them, frees the payload copy with the
 * connection's hook, runs an undelivered invoke's free_data and releases
 * a waiting blocking caller: exactly once, delivered or dropped.
 */
#include "internal.h"

#include <string.h>

/* ---- events ---- */

struct relay__event *relay__event_new(enum relay__event_kind kind, size_t argsize,
				      size_t argalign)
{
	/* A payload aligned beyond max_align_t gets slack to align it in. */
	size_t slack = argalign > _Alignof(max_align_t) ? argalign - 1 : 0;
	struct relay__event *ev = relay__alloc(sizeof *ev + argsize + slack);
	if (!ev)
		return NULL;
	memset(ev, 0, sizeof *ev);
	ev->kind = kind;
	ev->argsize = argsize;
	uintptr_t p = (uintptr_t)ev->inline_payload;
	if (slack)
		p = (p + argalign - 1) & ~(uintptr_t)(argalign - 1);
	ev->payload = (void *)p;
	return ev;
}

static void free_payload(struct relay__event *ev)
{
	if (ev->payload_live && ev->conn && ev->conn->ops && ev->conn->ops->free)
		ev->conn->ops->free(ev->payload);
	ev->payload_live = false;
}

void relay__event_free(struct relay__event *ev, int status)
{
	if (ev->kind == RELAY__EV_TASK) {   /* it lives in its task */
		relay__task_event_free(ev, status);
		return;
	}
	free_payload(ev);
	if (ev->kind == RELAY__EV_SINGLE_SHOT && ev->u.shot)
		relay__single_shot_free(ev->u.shot);   /* never armed: skipped */
	if (ev->kind == RELAY__EV_INVOKE && status != 0 && ev->u.invoke.free_data)
		ev->u.invoke.free_data(ev->u.invoke.data);
	if (ev->done) {
		if (relay__completion_claim(ev->done))
			relay__completion_signal(ev->done, status, 0);
		relay__completion_unref(ev->done);
	}
	if (ev->conn)
		relay__conn_unref(ev->conn);
	if (ev->anchor)
		relay__anchor_unref(ev->anchor);
	relay__free(ev);
}

void relay__count_drop(struct relay__tdata *t)
{
	if (t)   /* several threads drop for one loop: a read-modify-write */
		atomic_fetch_add_explicit(&t->dropped, 1, memory_order_relaxed);
}

void relay__event_drop(struct relay__tdata *t, struct relay__event *ev)
{
	relay__count_drop(t);
	relay__event_free(ev, RELAY_ENOTDELIVERED);
}

void relay__event_drop_list(struct relay__tdata *t, struct relay__event *list)
{
	while (list) {
		struct relay__event *ev = list;
		list = ev->next;
		relay__event_drop(t, ev);
	}
}

struct relay__event *relay__event_from_rec(const struct relay__rec *rec)
{
	struct relay__conn *c = rec->conn;
	struct relay__event *ev = relay__event_new(RELAY__EV_SLOT, rec->argsize, 0);
	if (!ev)
		return NULL;
	memcpy(ev->payload, RELAY__REC_PAYLOAD(rec), rec->argsize);
	ev->payload_live = rec->argsize && c->ops && c->ops->free;
	ev->conn = c;
	ev->sender = rec->u.sender;
	return ev;
}

void relay__rec_drop(struct relay__tdata *t, struct relay__rec *rec)
{
	if (rec->kind == RELAY__REC_SLOT) {
		struct relay__conn *c = rec->conn;
		relay__count_drop(t);
		if (rec->argsize && c->ops && c->ops->free)
			c->ops->free(RELAY__REC_PAYLOAD(rec));
		relay__conn_unref(c);
	} else if (rec->kind == RELAY__REC_EVENT) {
		relay__event_drop(t, rec->u.ev);
	}
	rec->kind = RELAY__REC_DEAD;
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
