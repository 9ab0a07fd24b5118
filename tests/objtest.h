/*
 * objtest.h - helpers shared by the object, thread, timer, loop and diag
 * tests (header only; everything is static or static inline).
 *
 * Provides: the cmocka and system includes those tests all need, and
 * relay.h; SAFETY_MS, now_ms, sleep_ms; RUN_UNTIL (run the calling
 * thread's loop until a condition holds) and WAIT_UNTIL (sleep until it
 * holds), both failing the test after SAFETY_MS - a safety net, never an
 * assertion about speed; a diagnostic capture (diag_cb, diag_reset,
 * diag_count, expect_one_diag); the test object `obj` (signals sig(int)
 * and ping, a log of slot calls: value, relay thread, pthread) with its
 * class obj_class and a finalizer log (g_fin_count, g_fin_ids,
 * g_fin_threads, g_fin_pthreads under g_fin_lock); the slots record,
 * on_sig, on_ping; new_obj, new_thread, start_thread, stop_thread,
 * worker_obj, run_in; cmocka setup / teardown (diag handler installed,
 * finalizer log cleared; loop drained afterwards) and drain.
 *
 * Knobs, defined by the test before it includes this file:
 * - OBJTEST_EXTRA_CHECKS: expect_one_diag also asserts the line is not
 *   empty, and worker_obj asserts the object now lives in its thread.
 * - OBJTEST_FIN_HOOK name: obj_finalize also calls `static void name(void)`
 *   (defined by the test), under g_fin_lock, before the count is published.
 * - OBJTEST_SETUP_HOOK name: setup also calls `static void name(void)`,
 *   under g_fin_lock, after clearing the finalizer log.
 *
 * Never assert on timing: counts, order, thread identity, return codes.
 * Shared counters are C11 atomics so the tests are clean under TSan.
 */
#ifndef RELAY_TEST_OBJTEST_H
#define RELAY_TEST_OBJTEST_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "relay.h"

/* ---------------------------------------------------------------------
 * Time, sleeping and bounded waits
 * --------------------------------------------------------------------- */

/* Generous: sanitizer builds on a loaded 2-core machine run tens of times
 * slower, and a safety net must not trip on a slow run, only a stuck one. */
#define SAFETY_MS 30000

static inline uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static inline void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* Run the calling thread's loop until cond holds; fail after SAFETY_MS. */
#define RUN_UNTIL(cond)                                                        \
	do {                                                                   \
		const uint64_t dl_ = now_ms() + SAFETY_MS;                     \
		while (!(cond)) {                                              \
			if (now_ms() > dl_)                                    \
				fail_msg("safety timeout waiting for: %s", #cond); \
			(void)relay_loop_run_once(10);                         \
		}                                                              \
	} while (0)

/* Wait without running a loop until cond holds; fail after SAFETY_MS. */
#define WAIT_UNTIL(cond)                                                       \
	do {                                                                   \
		const uint64_t dl_ = now_ms() + SAFETY_MS;                     \
		while (!(cond)) {                                              \
			if (now_ms() > dl_)                                    \
				fail_msg("safety timeout waiting for: %s", #cond); \
			sleep_ms(1);                                           \
		}                                                              \
	} while (0)

/* ---------------------------------------------------------------------
 * Diagnostic capture. The handler may run in any thread.
 * --------------------------------------------------------------------- */

static struct {
	pthread_mutex_t lock;
	int count;
	int last_code;
	int with_newline;
	char last_line[512];
} g_diag = { PTHREAD_MUTEX_INITIALIZER, 0, 0, 0, { 0 } };

static inline void diag_cb(int code, const char *line, void *user)
{
	(void)user;
	pthread_mutex_lock(&g_diag.lock);
	g_diag.count++;
	g_diag.last_code = code;
	if (line == NULL)
		line = "(null)";
	if (strchr(line, '\n') != NULL)
		g_diag.with_newline++;
	snprintf(g_diag.last_line, sizeof g_diag.last_line, "%s", line);
	pthread_mutex_unlock(&g_diag.lock);
}

static inline void diag_reset(void)
{
	pthread_mutex_lock(&g_diag.lock);
	g_diag.count = 0;
	g_diag.last_code = 0;
	g_diag.with_newline = 0;
	g_diag.last_line[0] = '\0';
	pthread_mutex_unlock(&g_diag.lock);
}

static inline int diag_count(void)
{
	pthread_mutex_lock(&g_diag.lock);
	int n = g_diag.count;
	pthread_mutex_unlock(&g_diag.lock);
	return n;
}

/* Asserts exactly one diagnostic since the last diag_reset, with `code`,
 * one line, naming `name` (if not NULL). Resets afterwards. */
static inline void expect_one_diag(int code, const char *name)
{
	pthread_mutex_lock(&g_diag.lock);
	int count = g_diag.count, last = g_diag.last_code, nl = g_diag.with_newline;
	char line[512];
	memcpy(line, g_diag.last_line, sizeof line);
	pthread_mutex_unlock(&g_diag.lock);
	if (count != 1)
		fail_msg("expected exactly 1 diagnostic (code %d), got %d; last: \"%s\"",
			 code, count, line);
	assert_int_equal(last, code);
	assert_int_equal(nl, 0);
#ifdef OBJTEST_EXTRA_CHECKS
	assert_true(line[0] != '\0');
#endif
	if (name != NULL && strstr(line, name) == NULL)
		fail_msg("diagnostic does not name \"%s\": \"%s\"", name, line);
	diag_reset();
}

/* ---------------------------------------------------------------------
 * The test object
 * --------------------------------------------------------------------- */

#define MAXLOG 64

typedef struct obj {
	relay_object base;
	RELAY_SIGNAL(sig, int);
	RELAY_SIGNAL(ping);
	int id;
	atomic_int hits;                     /* slot calls */
	int values[MAXLOG];                  /* payloads, in arrival order */
	relay_thread *threads[MAXLOG];       /* relay_thread_current() per call */
	pthread_t pthreads[MAXLOG];
} obj;

/* Finalizer log: ids in finalization order and the thread each ran in. */
static pthread_mutex_t g_fin_lock = PTHREAD_MUTEX_INITIALIZER;
static atomic_int g_fin_count;
static int g_fin_ids[MAXLOG];
static relay_thread *g_fin_threads[MAXLOG];
static pthread_t g_fin_pthreads[MAXLOG];

#ifdef OBJTEST_FIN_HOOK
static void OBJTEST_FIN_HOOK(void);
#endif
#ifdef OBJTEST_SETUP_HOOK
static void OBJTEST_SETUP_HOOK(void);
#endif

static inline void obj_finalize(relay_object *self)
{
	obj *o = (obj *)self;
	pthread_mutex_lock(&g_fin_lock);
	int i = atomic_load(&g_fin_count);
	if (i < MAXLOG) {
		g_fin_ids[i] = o->id;
		g_fin_threads[i] = relay_thread_current();
		g_fin_pthreads[i] = pthread_self();
	}
#ifdef OBJTEST_FIN_HOOK
	OBJTEST_FIN_HOOK();
#endif
	atomic_store(&g_fin_count, i + 1);
	pthread_mutex_unlock(&g_fin_lock);
}

static const relay_class obj_class = { .name = "tobj", .finalize = obj_finalize, .size = sizeof(obj) };

/* Logs one slot call: v, the relay thread and the pthread it ran in. */
static inline void record(obj *self, int v)
{
	int i = atomic_load(&self->hits);
	if (i < MAXLOG) {
		self->values[i] = v;
		self->threads[i] = relay_thread_current();
		self->pthreads[i] = pthread_self();
	}
	atomic_store(&self->hits, i + 1);   /* publishes the entries above */
}

static inline void on_sig(obj *self, const int *v)
{
	record(self, *v);
}

static inline void on_ping(obj *self)
{
	record(self, -1);
}

static inline obj *new_obj(relay_object *parent, int id)
{
	obj *o = NULL;
	assert_int_equal(relay_object_new(&o, &obj_class, parent), 0);
	assert_non_null(o);
	o->id = id;
	return o;
}

static inline relay_thread *new_thread(const char *name)
{
	relay_thread *t = NULL;
	assert_int_equal(relay_thread_create(name, NULL, &t), 0);
	assert_non_null(t);
	return t;
}

static inline relay_thread *start_thread(const char *name)
{
	relay_thread *t = new_thread(name);
	assert_int_equal(relay_thread_start(t), 0);
	return t;
}

static inline void stop_thread(relay_thread *t)
{
	assert_int_equal(relay_thread_stop(t, SAFETY_MS), 0);
	assert_int_equal(relay_thread_destroy(t), 0);
}

/* An object living in thread t (created here, moved there). */
static inline obj *worker_obj(relay_thread *t, int id)
{
	obj *o = new_obj(NULL, id);
	assert_int_equal(relay_object_move_to_thread(&o->base, t), 0);
#ifdef OBJTEST_EXTRA_CHECKS
	assert_ptr_equal(relay_object_thread(&o->base), t);
#endif
	return o;
}

/* Run fn(data) in ctx's thread and wait for it; returns fn's result. */
static inline int run_in(void *ctx, int (*fn)(void *), void *data)
{
	int result = -77777;
	int rc = relay_invoke_blocking((relay_object *)ctx, fn, data, &result);
	if (rc != 0)
		fail_msg("relay_invoke_blocking: %d (%s)", rc, relay_strerror(rc));
	return result;
}

/* ---------------------------------------------------------------------
 * cmocka fixtures
 * --------------------------------------------------------------------- */

static inline int setup(void **state)
{
	(void)state;
	diag_reset();
	relay_set_diag_handler(diag_cb, NULL);
	pthread_mutex_lock(&g_fin_lock);
	atomic_store(&g_fin_count, 0);
	memset(g_fin_ids, 0, sizeof g_fin_ids);
#ifdef OBJTEST_SETUP_HOOK
	OBJTEST_SETUP_HOOK();
#endif
	pthread_mutex_unlock(&g_fin_lock);
	return 0;
}

static inline int teardown(void **state)
{
	(void)state;
	/* Drain what earlier steps left for the main thread. */
	for (int i = 0; i < 100 && relay_loop_run_once(0) > 0; i++)
		;
	relay_set_diag_handler(NULL, NULL);
	return 0;
}

/* Runs what is pending for the calling thread (bounded). */
static inline void drain(void)
{
	for (int i = 0; i < 1000 && relay_loop_run_once(0) > 0; i++)
		;
}

#endif /* RELAY_TEST_OBJTEST_H */
