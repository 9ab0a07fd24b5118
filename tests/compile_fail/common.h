/*
 * common.h - the types every compile-fail case uses: a worker that reports
 * progress (an int) and a window that shows it, as in the README.
 */
#ifndef COMPILE_FAIL_COMMON_H
#define COMPILE_FAIL_COMMON_H
#include "relay.h"

typedef struct worker {
	relay_object base;
	RELAY_SIGNAL(progress, int);
	RELAY_SIGNAL(complete);
} worker;

typedef struct window {
	relay_object base;
	int percent;
} window;

int check(worker *w, window *win);
#endif
