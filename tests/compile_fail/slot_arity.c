/*
 * slot_arity.c - the slot has too many parameters (a user-data pointer,
 * as a GLib callback would take): a slot takes the receiver, then at most
 * the payload. The compiler says it from the call's side: relay calls the
 * slot with two arguments, and it wants three.
 *
 * expect gcc: too few arguments to function 'window_on_progress'
 * expect clang: too few arguments to function call, expected 3, have 2
 */
#include "common.h"

#ifdef RELAY_GOOD
static void window_on_progress(window *self, const int *percent)
{
	self->percent = *percent;
}
#else
static void window_on_progress(window *self, const int *percent, void *data)
{
	self->percent = *percent + (data != NULL);
}
#endif

int check(worker *w, window *win)
{
	return relay_connect(w, progress, win, window_on_progress);
}
