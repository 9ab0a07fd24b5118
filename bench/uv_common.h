/*
 * uv_common.h - a libuv message queue: a mutex-protected list that
 * producers append to and a uv_async_t that wakes the loop, whose
 * callback drains the whole list (uv_async_send alone coalesces, so it
 * is not a queue). Also a thread running a uv loop. Shared by the libuv
 * programs.
 */
#ifndef RELAY_BENCH_UV_COMMON_H
#define RELAY_BENCH_UV_COMMON_H

#include <stdint.h>
#include <stdlib.h>
#include <uv.h>

#include "bench.h"

struct uv_msg {
	struct uv_msg *next;
	int64_t value;
};

struct uv_mailbox {
	uv_async_t async;             /* loop thread only, send from any */
	uv_mutex_t lock;
	struct uv_msg *head, *tail;   /* guarded by lock */
	void (*on_value)(struct uv_mailbox *mb, int64_t value);
	void *user;
};

static void uv_mailbox_drain(uv_async_t *async)
{
	struct uv_mailbox *mb = async->data;

	uv_mutex_lock(&mb->lock);
	struct uv_msg *m = mb->head;
	mb->head = mb->tail = NULL;
	uv_mutex_unlock(&mb->lock);
	while (m) {
		struct uv_msg *next = m->next;
		mb->on_value(mb, m->value);
		free(m);
		m = next;
	}
}

/* In the loop's thread (or before the loop runs). */
static inline void uv_mailbox_init(struct uv_mailbox *mb, uv_loop_t *loop,
				   void (*on_value)(struct uv_mailbox *, int64_t))
{
	mb->head = mb->tail = NULL;
	mb->on_value = on_value;
	if (uv_mutex_init(&mb->lock) || uv_async_init(loop, &mb->async, uv_mailbox_drain))
		bench_fail("uv: mailbox init failed");
	mb->async.data = mb;
}

/* Any thread. */
static inline void uv_mailbox_send(struct uv_mailbox *mb, int64_t value)
{
	struct uv_msg *m = malloc(sizeof *m);
	if (!m)
		bench_fail("out of memory");
	m->next = NULL;
	m->value = value;
	uv_mutex_lock(&mb->lock);
	if (mb->tail)
		mb->tail->next = m;
	else
		mb->head = m;
	mb->tail = m;
	uv_mutex_unlock(&mb->lock);
	uv_async_send(&mb->async);
}

/* A thread that runs a loop with one mailbox until the mailbox receives
 * UV_LOOP_QUIT; UV_LOOP_SYNC marks `synced` (uv_loop_thread_sync). */
#define UV_LOOP_QUIT INT64_MIN
#define UV_LOOP_SYNC (INT64_MIN + 1)

struct uv_loop_thread {
	uv_loop_t loop;
	struct uv_mailbox mb;
	uv_thread_t thread;
	int cpu;                         /* pin first; -1: no pinning */
	void (*on_value)(struct uv_loop_thread *t, int64_t value);
	void *user;
	struct bench_done synced;
};

static void uv_loop_thread_value(struct uv_mailbox *mb, int64_t value)
{
	struct uv_loop_thread *t = mb->user;

	if (value == UV_LOOP_QUIT) {
		uv_close((uv_handle_t *)&mb->async, NULL);
		return;
	}
	if (value == UV_LOOP_SYNC) {
		bench_done_mark(&t->synced);
		return;
	}
	t->on_value(t, value);
}

static void uv_loop_thread_main(void *arg)
{
	struct uv_loop_thread *t = arg;

	if (t->cpu >= 0 && bench_pin_self(t->cpu))
		bench_fail("uv: pinning failed");
	uv_run(&t->loop, UV_RUN_DEFAULT);
}

/* The loop and its mailbox exist when this returns; messages sent before
 * the thread reaches uv_run wait in the list (the async stays pending). */
static inline void uv_loop_thread_start(struct uv_loop_thread *t, int cpu,
					void (*on_value)(struct uv_loop_thread *, int64_t))
{
	t->cpu = cpu;
	t->on_value = on_value;
	if (uv_loop_init(&t->loop))
		bench_fail("uv: loop init failed");
	uv_mailbox_init(&t->mb, &t->loop, uv_loop_thread_value);
	t->mb.user = t;
	if (uv_thread_create(&t->thread, uv_loop_thread_main, t))
		bench_fail("uv: thread create failed");
}

/* Returns once the loop has handled everything sent before: the loop
 * serves, and what it wrote is visible to the caller. */
static inline void uv_loop_thread_sync(struct uv_loop_thread *t)
{
	bench_done_init(&t->synced);
	uv_mailbox_send(&t->mb, UV_LOOP_SYNC);
	bench_done_wait(&t->synced, 10000, "uv loop sync");
}

static inline void uv_loop_thread_stop(struct uv_loop_thread *t)
{
	uv_mailbox_send(&t->mb, UV_LOOP_QUIT);
	uv_thread_join(&t->thread);
	uv_loop_close(&t->loop);
	uv_mutex_destroy(&t->mb.lock);
}

#endif
