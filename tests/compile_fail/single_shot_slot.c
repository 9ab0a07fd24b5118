/*
 * single_shot_slot.c - relay_single_shot given a slot that takes more
 * than its receiver.
 *
 * expect gcc: too few arguments to function 'window_refresh'
 * expect clang: too few arguments to function call, expected 2, have 1
 */
#include "common.h"

#ifdef RELAY_GOOD
static void window_refresh(window *self)
{
	self->percent = 0;
}
#else
static void window_refresh(window *self, const int *percent)
{
	self->percent = *percent;
}
#endif

int check(worker *w, window *win)
{
	(void)w;
	return relay_single_shot(100, win, window_refresh);
}
