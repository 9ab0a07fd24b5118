/*
 * slot_const.c - the slot's payload parameter is not const: every slot of
 * an emission sees the same value, so none may change it.
 *
 * expect gcc: passing argument 2 of 'window_on_progress' discards 'const' qualifier
 * expect clang: passing 'const relay_signal_payload *' (aka 'const int *') to parameter of type 'int *' discards qualifiers
 */
#include "common.h"

#ifdef RELAY_GOOD
static void window_on_progress(window *self, const int *percent)
#else
static void window_on_progress(window *self, int *percent)
#endif
{
	self->percent = *percent;
}

int check(worker *w, window *win)
{
	return relay_connect(w, progress, win, window_on_progress);
}
