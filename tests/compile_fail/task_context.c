/*
 * task_context.c - the task is submitted with a context of another type
 * than its kind's (the worker instead of the window its callbacks take).
 *
 * expect gcc: relay_task_submit: the context is not of the context type of the task kind
 * expect clang: relay_task_submit: the context is not of the context type of the task kind
 */
#include "task_common.h"

RELAY_TASK_DEFINE(hash_task, window, job, double, digest, job_run, job_progress, job_done,
		  job_free);

int check(worker *w, window *win)
{
	static job j;
#ifdef RELAY_GOOD
	(void)w;
	return relay_task_submit(NULL, &hash_task, win, &j, 0, NULL);
#else
	(void)win;
	return relay_task_submit(NULL, &hash_task, w, &j, 0, NULL);
#endif
}
