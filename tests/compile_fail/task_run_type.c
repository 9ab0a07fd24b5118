/*
 * task_run_type.c - the run function takes another data type than the
 * kind's (a window instead of the job).
 *
 * expect gcc: RELAY_TASK_DEFINE(hash_task): run must be int
 * expect clang: RELAY_TASK_DEFINE(hash_task): run must be int
 */
#include "task_common.h"

#ifdef RELAY_GOOD
#define RUN job_run
#else
static int wrong_run(relay_task *task, window *w)
{
	(void)task, (void)w;
	return 0;
}
#define RUN wrong_run
#endif

RELAY_TASK_DEFINE(hash_task, window, job, double, digest, RUN, job_progress, job_done, job_free);

int check(worker *w, window *win)
{
	(void)w;
	static job j;
	return relay_task_submit(NULL, &hash_task, win, &j, 0, NULL);
}
