/*
 * run_then_type.c - relay_run's then takes the data as another type than
 * the one passed (a window * for a job *).
 *
 * expect gcc: relay_run: then must be void then(C *context, D *data, int result)
 * expect clang: relay_run: then must be void then(C *context, D *data, int result)
 */
#include "task_common.h"

static int count_bytes(job *j)
{
	(void)j;
	return 3;
}
#ifdef RELAY_GOOD
static void show(window *w, job *j, int n)
{
	(void)j;
	w->percent = n;
}
#else
static void show(window *w, window *j, int n)
{
	(void)j;
	w->percent = n;
}
#endif

int check(worker *w, window *win)
{
	(void)w;
	static job j;
	return relay_run(NULL, win, count_bytes, &j, show, NULL, NULL);
}
