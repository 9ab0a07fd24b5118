/*
 * object_not_object.c - an object function given a pointer to something
 * that is not an object at all (an int).
 *
 * expect gcc: relay: not an object: pass a relay_object *
 * expect clang: relay: not an object: pass a relay_object *
 */
#include "common.h"

int check(worker *w, window *win)
{
	int *percent = &win->percent;
	(void)w;
#ifdef RELAY_GOOD
	(void)percent;
	return relay_object_destroy(win);
#else
	return relay_object_destroy(percent);
#endif
}
