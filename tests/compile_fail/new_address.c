/*
 * new_address.c - relay_object_new given the pointer instead of its
 * address.
 *
 * expect gcc: relay_object_new: pass the address of your object pointer: relay_object_new(&w, &w_class, parent)
 * expect clang: relay_object_new: pass the address of your object pointer: relay_object_new(&w, &w_class, parent)
 */
#include "common.h"

static const relay_class worker_class = { .name = "worker" };

int check(worker *w, window *win)
{
	(void)win;
#ifdef RELAY_GOOD
	return relay_object_new(&w, &worker_class, NULL);
#else
	return relay_object_new(w, &worker_class, NULL);
#endif
}
