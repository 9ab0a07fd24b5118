/*
 * thread_out.c - relay_thread_create given the handle instead of its
 * address.
 *
 * expect gcc: relay_thread_create: the last argument receives the new relay_thread: pass the address of a relay_thread * (&t)
 * expect clang: relay_thread_create: the last argument receives the new relay_thread: pass the address of a relay_thread * (&t)
 */
#include "common.h"

int check(worker *w, window *win)
{
	relay_thread *t = NULL;
	(void)w;
	(void)win;
#ifdef RELAY_GOOD
	return relay_thread_create("worker", NULL, &t);
#else
	return relay_thread_create("worker", NULL, t);
#endif
}
