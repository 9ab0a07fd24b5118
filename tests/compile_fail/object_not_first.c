/*
 * object_not_first.c - a user struct whose relay_object is not its first
 * member: a pointer to it is not a pointer to the object.
 *
 * expect gcc: relay: the base of an object must be the first member of its struct
 * expect clang: relay: the base of an object must be the first member of its struct
 */
#include "common.h"

typedef struct job {
#ifdef RELAY_GOOD
	relay_object base;
	int id;
#else
	int id;
	relay_object base;
#endif
} job;

int check(worker *w, window *win)
{
	job *j = (job *)(void *)win;
	(void)w;
	return relay_object_delete_later(j);
}
