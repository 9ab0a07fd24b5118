/*
 * emit_value.c - the payload is passed by value, not by its address.
 *
 * expect gcc: relay_emit: pass the address of the payload: relay_emit(obj, signal, &value)
 * expect clang: relay_emit: pass the address of the payload: relay_emit(obj, signal, &value)
 */
#include "common.h"

int check(worker *w, window *win)
{
	int percent = 50;
	(void)win;
#ifdef RELAY_GOOD
	return relay_emit(w, progress, &percent);
#else
	return relay_emit(w, progress, percent);
#endif
}
