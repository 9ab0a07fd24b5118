/*
 * support.h - shared helpers for relay's cmocka tests (header only).
 *
 * Provides: the cmocka includes, a tiny "app" object living in the thread
 * that creates it (normally the main thread), helpers that drive the
 * calling thread's loop until a predicate holds (the timeout is a safety
 * net, never an assertion about speed), relay_thread start/stop helpers,
 * atomic counters, a diagnostic capture, and iteration-count parameters
 * that can be overridden from argv ("NAME=value") or the environment.
 *
 * Rules for tests using it: never assert on timing; assert on counts,
 * order, thread identity and return codes. Shared counters are C11
 * atomics so the suite is clean under TSan.
 *
 * Everything here is static (inline), so including it costs nothing that
 * a test does not use. The interface is stable: other test files rely on
 * it; add, do not change.
 */
#ifndef RELAY_TEST_SUPPORT_H
#define RELAY_TEST_SUPPORT_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "relay.h"

/* Generous safety-net timeout for waits (ms). A test that hits it fails
 * with a message; it never measures speed. */
#ifndef SUPPORT_TIMEOUT_MS
#define SUPPORT_TIMEOUT_MS 30000
#endif

/* ----------------------------------------------------------------------
 * Time and sleeping (for safety nets and for yielding, never asserted)
 * ---------------------------------------------------------------------- */

static inline int64_t support_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static inline void support_sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
	}
}

/* ----------------------------------------------------------------------
 * Atomic counters and flags
 * ---------------------------------------------------------------------- */

static inline long support_count_inc(atomic_long *c)
{
	return atomic_fetch_add(c, 1) + 1;
}

static inline long support_count_get(atomic_long *c)
{
	return atomic_load(c);
}

/* Wait (without running any loop: for plain pthreads or for a thread that
 * must not dispatch) until *flag == value. Returns true if it did. */
static inline bool support_wait_flag(atomic_int *flag, int value, int timeout_ms)
{
	int64_t end = support_now_ms() + timeout_ms;
	while (atomic_load(flag) != value) {
		if (support_now_ms() > end)
			return false;
		support_sleep_ms(1);
	}
	return true;
}

/* The same for a counter reaching at least `target`. */
static inline bool support_wait_count(atomic_long *c, long target, int timeout_ms)
{
	int64_t end = support_now_ms() + timeout_ms;
	while (atomic_load(c) < target) {
		if (support_now_ms() > end)
			return false;
		support_sleep_ms(1);
	}
	return true;
}

/* ----------------------------------------------------------------------
 * Driving the calling thread's loop
 * ---------------------------------------------------------------------- */

/* Run the calling thread's loop (relay_loop_run_once(10) repeatedly) until
 * pred(arg) holds or timeout_ms passed. pred is checked before each pass.
 * Returns true if the predicate held. */
static inline bool support_run_until(bool (*pred)(void *), void *arg, int timeout_ms)
{
	int64_t end = support_now_ms() + timeout_ms;
	for (;;) {
		if (pred(arg))
			return true;
		if (support_now_ms() > end)
			return pred(arg);
		int rc = relay_loop_run_once(10);
		if (rc < 0)
			return pred(arg);
	}
}

typedef struct support_count_target {
	atomic_long *counter;
	long target;
} support_count_target;

static inline bool support_pred_count_ge(void *arg)
{
	support_count_target *t = (support_count_target *)arg;
	return atomic_load(t->counter) >= t->target;
}

/* Run the calling thread's loop until *c >= target (or timeout). */
static inline bool support_run_until_count(atomic_long *c, long target, int timeout_ms)
{
	support_count_target t = { c, target };
	return support_run_until(support_pred_count_ge, &t, timeout_ms);
}

static inline bool support_pred_flag_set(void *arg)
{
	return atomic_load((atomic_int *)arg) != 0;
}

/* Run the calling thread's loop until *flag != 0 (or timeout). */
static inline bool support_run_until_flag(atomic_int *flag, int timeout_ms)
{
	return support_run_until(support_pred_flag_set, flag, timeout_ms);
}

/* Run the calling thread's loop for about ms milliseconds, delivering
 * whatever comes (for "nothing else arrives" checks after a sync point;
 * never a substitute for waiting on a predicate). */
static inline void support_run_for(int ms)
{
	int64_t end = support_now_ms() + ms;
	while (support_now_ms() < end)
		(void)relay_loop_run_once(5);
}

/* Deliver everything already posted to the calling thread, without
 * waiting: passes until one handles nothing (at most `max_passes`). */
static inline void support_drain(int max_passes)
{
	for (int i = 0; i < max_passes; i++)
		if (relay_loop_run_once(0) <= 0)
			break;
}

/* ----------------------------------------------------------------------
 * Threads
 * ---------------------------------------------------------------------- */

/* Create and start a relay_thread (asserts on failure). */
static inline relay_thread *support_thread_start(const char *name)
{
	relay_thread *t = NULL;
	assert_int_equal(relay_thread_create(name, NULL, &t), 0);
	assert_non_null(t);
	assert_int_equal(relay_thread_start(t), 0);
	return t;
}

/* Stop (quit + wait) and destroy a thread made by support_thread_start.
 * NULL is ignored. Asserts both succeed. */
static inline void support_thread_stop(relay_thread *t)
{
	if (!t)
		return;
	assert_int_equal(relay_thread_stop(t, SUPPORT_TIMEOUT_MS), 0);
	assert_int_equal(relay_thread_destroy(t), 0);
}

/* Wait until a started relay_thread reports it is running (its loop may
 * still be about to start: events posted to it are queued either way). */
static inline bool support_thread_wait_running(relay_thread *t, int timeout_ms)
{
	int64_t end = support_now_ms() + timeout_ms;
	while (!relay_thread_is_running(t)) {
		if (support_now_ms() > end)
			return false;
		support_sleep_ms(1);
	}
	return true;
}

/* ----------------------------------------------------------------------
 * A tiny "app" object: lives in the thread that creates it (normally the
 * main thread), counts what its slots receive and records the thread.
 * ---------------------------------------------------------------------- */

typedef struct support_app {
	relay_object base;
	RELAY_SIGNAL(ping);
	RELAY_SIGNAL(value, int);
	atomic_long pings;      /* calls of support_app_on_ping */
	atomic_long values;     /* calls of support_app_on_value */
	atomic_int last_value;
	_Atomic(relay_thread *) last_thread; /* thread the last slot ran in */
} support_app;

static inline const relay_class *support_app_class(void)
{
	static const relay_class cls = { .name = "support_app" };
	return &cls;
}

static inline support_app *support_app_new(void)
{
	support_app *a = NULL;
	assert_int_equal(relay_object_new(&a, support_app_class(), NULL), 0);
	assert_non_null(a);
	return a;
}

/* Destroy in the calling thread (must be its owner thread). */
static inline void support_app_destroy(support_app *a)
{
	if (a)
		assert_int_equal(relay_object_destroy(&a->base), 0);
}

/* Slots, usable with any sender whose signal matches. */
static inline void support_app_on_ping(support_app *self)
{
	atomic_store(&self->last_thread, relay_thread_current());
	atomic_fetch_add(&self->pings, 1);
}

static inline void support_app_on_value(support_app *self, const int *v)
{
	atomic_store(&self->last_value, *v);
	atomic_store(&self->last_thread, relay_thread_current());
	atomic_fetch_add(&self->values, 1);
}

/* ----------------------------------------------------------------------
 * Diagnostic capture: counts diagnostics reported through the handler and
 * keeps the last code and line. Install with support_diag_begin, remove
 * with support_diag_end (restores the default handler).
 * ---------------------------------------------------------------------- */

typedef struct support_diag {
	atomic_long count;
	atomic_int last_code;
	pthread_mutex_t lock;   /* guards last_line */
	char last_line[512];
} support_diag;

static inline void support_diag_handler(int code, const char *line, void *user)
{
	support_diag *d = (support_diag *)user;
	pthread_mutex_lock(&d->lock);
	snprintf(d->last_line, sizeof d->last_line, "%s", line ? line : "(null)");
	atomic_store(&d->last_code, code);
	atomic_fetch_add(&d->count, 1);
	pthread_mutex_unlock(&d->lock);
}

static inline void support_diag_begin(support_diag *d)
{
	atomic_init(&d->count, 0);
	atomic_init(&d->last_code, 0);
	pthread_mutex_init(&d->lock, NULL);
	d->last_line[0] = '\0';
	assert_int_equal(relay_set_diag_handler(support_diag_handler, d), 0);
}

static inline void support_diag_end(support_diag *d)
{
	assert_int_equal(relay_set_diag_handler(NULL, NULL), 0);
	pthread_mutex_destroy(&d->lock);
}

static inline long support_diag_count(support_diag *d)
{
	return atomic_load(&d->count);
}

static inline int support_diag_last_code(support_diag *d)
{
	return atomic_load(&d->last_code);
}

/* Copies the last line into buf (size bytes). */
static inline void support_diag_last_line(support_diag *d, char *buf, size_t size)
{
	pthread_mutex_lock(&d->lock);
	snprintf(buf, size, "%s", d->last_line);
	pthread_mutex_unlock(&d->lock);
}

/* ----------------------------------------------------------------------
 * Parameters (iteration and thread counts of stress tests)
 * ---------------------------------------------------------------------- */

static inline char ***support__argv_slot(void)
{
	static char **argv;
	return &argv;
}

/* Remember main's argv (NULL-terminated) so support_param can read
 * "NAME=value" arguments. */
static inline void support_set_args(int argc, char **argv)
{
	(void)argc;
	*support__argv_slot() = argv;
}

/* A numeric parameter: argv "NAME=value" first, then the environment
 * variable NAME, else dflt. */
static inline long support_param(const char *name, long dflt)
{
	size_t n = strlen(name);
	char **argv = *support__argv_slot();
	const char *val = NULL;
	if (argv) {
		for (int i = 1; argv[i]; i++)
			if (strncmp(argv[i], name, n) == 0 && argv[i][n] == '=')
				val = argv[i] + n + 1;
	}
	if (!val)
		val = getenv(name);
	if (!val || !*val)
		return dflt;
	char *end = NULL;
	long v = strtol(val, &end, 0);
	return (end && *end == '\0') ? v : dflt;
}

/* ----------------------------------------------------------------------
 * Checks in helper threads: cmocka's asserts only work in the thread that
 * runs the test, so a helper thread counts its failures with WCHECK and
 * the test's teardown (check_worker_errors) fails if there were any.
 * ---------------------------------------------------------------------- */

static atomic_long g_worker_errors;
#define WCHECK(cond)                                                           \
	do {                                                                   \
		if (!(cond)) {                                                 \
			fprintf(stderr, "%s:%d: check failed in a helper thread: %s\n", \
				__FILE__, __LINE__, #cond);                    \
			atomic_fetch_add(&g_worker_errors, 1);                 \
		}                                                              \
	} while (0)

static inline int check_worker_errors(void **state)
{
	(void)state;
	long n = atomic_exchange(&g_worker_errors, 0);
	assert_int_equal(n, 0);
	return 0;
}

#endif /* RELAY_TEST_SUPPORT_H */
