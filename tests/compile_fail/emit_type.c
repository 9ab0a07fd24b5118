/*
 * emit_type.c - the payload's type is not the signal's: progress carries
 * an int, the emit passes a double.
 *
 * expect gcc: relay_emit: the payload type does not match the signal
 * expect clang: relay_emit: the payload type does not match the signal
 */
#include "common.h"

int check(worker *w, window *win)
{
#ifdef RELAY_GOOD
	int value = 50;
#else
	double value = 0.5;
#endif
	(void)win;
	return relay_emit(w, progress, &value);
}
