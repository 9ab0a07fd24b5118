/*
 * wrong_slot.c - relay_connect must refuse, at compile time, a slot whose
 * payload parameter does not match the signal: progress carries an int,
 * the slot takes a string. With -DRELAY_GOOD the slot takes const int *
 * and the file compiles. Not linked: built by tests/CMakeLists.txt with
 * -fsyntax-only.
 */
#include "relay.h"

typedef struct worker {
	relay_object base;
	RELAY_SIGNAL(progress, int);
} worker;

typedef struct window {
	relay_object base;
	int percent;
} window;

#ifdef RELAY_GOOD
static void window_on_progress(window *self, const int *percent)
{
	self->percent = *percent;
}
#else
static void window_on_progress(window *self, const char *text)
{
	self->percent = text[0];
}
#endif

int connect_progress(worker *w, window *win);

int connect_progress(worker *w, window *win)
{
	return relay_connect(w, progress, win, window_on_progress);
}
