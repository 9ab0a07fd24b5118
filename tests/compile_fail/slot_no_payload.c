/*
 * slot_no_payload.c - the slot takes a payload the signal does not carry:
 * complete carries nothing.
 *
 * expect gcc: too few arguments to function 'window_on_complete'
 * expect clang: too few arguments to function call, expected 2, have 1
 */
#include "common.h"

#ifdef RELAY_GOOD
static void window_on_complete(window *self)
{
	self->percent = 100;
}
#else
static void window_on_complete(window *self, const int *percent)
{
	self->percent = *percent;
}
#endif

int check(worker *w, window *win)
{
	return relay_connect(w, complete, win, window_on_complete);
}
