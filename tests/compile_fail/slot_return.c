/*
 * slot_return.c - the slot returns a value: relay calls slots as functions
 * returning void, so a value-returning function would be called through
 * the wrong type. (GCC lets a slot that returns int through, see
 * RELAY__RETOK in relay.h, so the case returns a long.)
 *
 * expect gcc: relay: a slot returns void
 * expect clang: relay: a slot returns void
 */
#include "common.h"

#ifdef RELAY_GOOD
static void window_on_progress(window *self, const int *percent)
{
	self->percent = *percent;
}
#else
static long window_on_progress(window *self, const int *percent)
{
	self->percent = *percent;
	return 0;
}
#endif

int check(worker *w, window *win)
{
	return relay_connect(w, progress, win, window_on_progress);
}
