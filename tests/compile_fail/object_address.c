/*
 * object_address.c - an object function given the address of the object
 * pointer (&w) instead of the pointer (w).
 *
 * expect gcc: relay: pass the object pointer (w), not its address (&w)
 * expect clang: relay: pass the object pointer (w), not its address (&w)
 */
#include "common.h"

int check(worker *w, window *win)
{
	(void)win;
#ifdef RELAY_GOOD
	return relay_object_delete_later(w);
#else
	return relay_object_delete_later(&w);
#endif
}
