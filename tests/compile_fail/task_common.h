/*
 * task_common.h - a task kind for the compile-fail cases: hashing a job
 * for a window, reporting a double and ending with a digest.
 */
#ifndef COMPILE_FAIL_TASK_COMMON_H
#define COMPILE_FAIL_TASK_COMMON_H
#include "common.h"

typedef struct job { const char *path; } job;
typedef struct digest { unsigned char bytes[32]; } digest;

static inline int job_run(relay_task *task, job *j)
{
	(void)task, (void)j;
	return 0;
}
static inline void job_progress(window *w, job *j, const double *fraction)
{
	(void)j;
	w->percent = (int)(*fraction * 100);
}
static inline void job_done(window *w, job *j, int status, const digest *d)
{
	(void)w, (void)j, (void)status, (void)d;
}
static inline void job_free(job *j)
{
	(void)j;
}
#endif
