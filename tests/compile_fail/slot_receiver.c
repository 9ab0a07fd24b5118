/*
 * slot_receiver.c - the slot's first parameter is not the receiver's type:
 * the slot is a window's, the receiver is a worker.
 *
 * expect gcc: passing argument 1 of 'window_on_progress' from incompatible pointer type
 * expect clang: incompatible pointer types passing 'relay_slot_receiver' (aka 'struct worker *') to parameter of type 'window *'
 */
#include "common.h"

static void window_on_progress(window *self, const int *percent)
{
	self->percent = *percent;
}

int check(worker *w, window *win)
{
#ifdef RELAY_GOOD
	return relay_connect(w, progress, win, window_on_progress);
#else
	(void)win;
	return relay_connect(w, progress, w, window_on_progress);
#endif
}
