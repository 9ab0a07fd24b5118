/*
 * diag.c - error strings and the one-line diagnostics for refused misuse
 * (DESIGN.md O3), routed through a replaceable handler; RELAY_FATAL_WARNINGS=1
 * makes them abort, like QT_FATAL_WARNINGS.
 */
#include "internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct handler {
	relay_diag_fn fn;
	void *user;
};

static pthread_mutex_t handler_lock = PTHREAD_MUTEX_INITIALIZER;
static struct handler handler;            /* guarded by handler_lock */
static atomic_ulong diag_count;

const char *relay_strerror(int code)
{
	switch (code) {
	case 0: return "success";
	case RELAY_EWRONGTHREAD: return "called from a thread that does not own the object";
	case RELAY_EHASPARENT: return "object has a parent (move the parent instead)";
	case RELAY_EMAINONLY: return "object must stay in the main thread";
	case RELAY_EPARENTTHREAD: return "parent and child would live in different threads";
	case RELAY_EDEADLOCK: return "blocking call into the calling thread's own loop";
	case RELAY_ENOTRUNNING: return "target thread runs no event loop";
	case RELAY_EWAITSELF: return "a thread cannot wait for itself";
	case RELAY_ERUNNING: return "thread is running";
	case RELAY_ENOTDELIVERED: return "call was not delivered (receiver gone or disconnected)";
	case RELAY_EDESTROYED: return "object is being destroyed";
	case RELAY_ETIMERTHREAD: return "timers cannot be started or stopped from another thread";
	default: break;
	}
	if (code < 0 && code > -4096) {
		switch (-code) {
		case EINVAL: return "invalid argument";
		case ENOMEM: return "out of memory";
		case ETIMEDOUT: return "timed out";
		case ENOENT: return "no such connection";
		case EEXIST: return "connection already exists";
		case EBUSY: return "busy";
		case EAGAIN: return "resource temporarily unavailable";
		case ECANCELED: return "cancelled";
		case ESHUTDOWN: return "pool is shut down";
		case EALREADY: return "already done";
		default: return "system error";
		}
	}
	return "unknown error";
}

int relay_set_diag_handler(relay_diag_fn fn, void *user)
{
	pthread_mutex_lock(&handler_lock);
	handler.fn = fn;
	handler.user = user;
	pthread_mutex_unlock(&handler_lock);
	return 0;
}

unsigned long relay_diag_count(void)
{
	return atomic_load(&diag_count);
}

static bool fatal_warnings(void)
{
	const char *v = getenv("RELAY_FATAL_WARNINGS");
	return v && *v && strcmp(v, "0") != 0;
}

int relay__diag(int code, const char *fmt, ...)
{
	char line[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	for (char *p = line; *p; p++)   /* one line, whatever the names hold */
		if (*p == '\n' || *p == '\r')
			*p = ' ';
	atomic_fetch_add(&diag_count, 1);

	pthread_mutex_lock(&handler_lock);
	struct handler h = handler;
	pthread_mutex_unlock(&handler_lock);
	if (h.fn)
		h.fn(code, line, h.user);
	else
		fprintf(stderr, "relay: %s\n", line);
	if (fatal_warnings()) {
		fprintf(stderr, "relay: RELAY_FATAL_WARNINGS is set: aborting\n");
		abort();
	}
	return code;
}

uint64_t relay__now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}
