/*
 * slot_payload.c - the slot's payload type is not the signal's: progress
 * carries an int, the slot takes a string.
 *
 * expect gcc: passing argument 2 of 'window_on_progress' from incompatible pointer type
 * expect clang: incompatible pointer types passing 'const relay_signal_payload *' (aka 'const int *') to parameter of type 'const char *'
 */
#include "common.h"

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

int check(worker *w, window *win)
{
	return relay_connect(w, progress, win, window_on_progress);
}
