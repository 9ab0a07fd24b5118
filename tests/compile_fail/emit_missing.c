/*
 * emit_missing.c - a signal that carries a payload emitted without one.
 *
 * expect gcc: relay_emit: this signal carries a payload: relay_emit(obj, signal, &value)
 * expect clang: relay_emit: this signal carries a payload: relay_emit(obj, signal, &value)
 */
#include "common.h"

int check(worker *w, window *win)
{
	(void)win;
#ifdef RELAY_GOOD
	int percent = 100;
	return relay_emit(w, progress, &percent);
#else
	return relay_emit(w, progress);
#endif
}
