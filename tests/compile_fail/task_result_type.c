/*
 * task_result_type.c - finished takes a result of another type than the
 * kind's R (an int instead of the digest).
 *
 * expect gcc: RELAY_TASK_DEFINE(hash_task): finished must be void
 * expect clang: RELAY_TASK_DEFINE(hash_task): finished must be void
 */
#include "task_common.h"

#ifdef RELAY_GOOD
#define DONE job_done
#else
static void wrong_done(window *w, job *j, int status, const int *result)
{
	(void)w, (void)j, (void)status, (void)result;
}
#define DONE wrong_done
#endif

RELAY_TASK_DEFINE(hash_task, window, job, double, digest, job_run, job_progress, DONE, job_free);

int check(worker *w, window *win)
{
	(void)w;
	static job j;
	return relay_task_submit(NULL, &hash_task, win, &j, 0, NULL);
}
