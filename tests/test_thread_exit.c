/*
 * test_thread_exit.c - a thread's exit code (T2):
 *
 *     int relay_thread_exit_code(const relay_thread *t, int *code);
 *         0 and *code = what the thread's last finished run returned
 *         (relay_thread_exit(t, 7) -> 7, a quit -> 0); -EINVAL for NULL.
 *     relay_thread_exit(t, code) with code < 0 -> -EINVAL (a run's exit
 *         code is >= 0: relay_loop_run returns negative values for errors).
 */
#include "objtest.h"

#include <limits.h>

static int ret_one(void *p)
{
	(void)p;
	return 1;
}

static atomic_int g_nested_in, g_nested_rc;

static void run_nested_loop(void *p)
{
	(void)p;
	atomic_store(&g_nested_in, 1);
	atomic_store(&g_nested_rc, relay_loop_run());
}

/* T2: the exit code of a thread's last finished run, from any thread:
 * exit(7) -> 7, a later run ended by quit -> 0, and exit(9) sent while a
 * nested loop runs ends every loop of the thread, the run returning 9. */
static void test_T2_thread_exit_code_of_last_finished_run(void **state)
{
	(void)state;
	int code = -1;
	relay_thread *t = start_thread("lcn-code");
	assert_int_equal(relay_thread_exit(t, 7), 0);
	assert_int_equal(relay_thread_wait(t, SAFETY_MS), 0);
	assert_int_equal(relay_thread_exit_code(t, &code), 0);
	assert_int_equal(code, 7);

	assert_int_equal(relay_thread_start(t), 0);
	assert_int_equal(relay_thread_stop(t, SAFETY_MS), 0);
	code = -1;
	assert_int_equal(relay_thread_exit_code(t, &code), 0);
	assert_int_equal(code, 0);

	atomic_store(&g_nested_in, 0);
	atomic_store(&g_nested_rc, -1);
	assert_int_equal(relay_thread_start(t), 0);
	obj *w = worker_obj(t, 1);
	assert_int_equal(relay_invoke(&w->base, run_nested_loop, NULL, NULL), 0);
	WAIT_UNTIL(atomic_load(&g_nested_in) == 1);
	assert_int_equal(relay_thread_exit(t, 9), 0);
	assert_int_equal(relay_thread_wait(t, SAFETY_MS), 0);
	assert_int_equal(atomic_load(&g_nested_rc), 9);
	code = -1;
	assert_int_equal(relay_thread_exit_code(t, &code), 0);
	assert_int_equal(code, 9);

	assert_int_equal(relay_thread_exit_code(NULL, &code), -EINVAL);
	assert_int_equal(relay_thread_exit_code(t, NULL), -EINVAL);
	assert_int_equal(relay_object_delete_later(&w->base), 0);   /* thread finished: now */
	assert_int_equal(relay_thread_destroy(t), 0);
}

/* T2: a negative exit code is refused with -EINVAL and does not quit the
 * thread (today it is accepted, and the run "returns" a value that reads
 * as an error). */
static void test_T2_thread_exit_negative_code_refused(void **state)
{
	(void)state;
	relay_thread *t = start_thread("lcn-neg");
	obj *w = worker_obj(t, 1);
	assert_int_equal(relay_thread_exit(t, -1), -EINVAL);
	assert_int_equal(relay_thread_exit(t, INT_MIN), -EINVAL);
	assert_int_equal(relay_thread_exit(NULL, 1), -EINVAL);
	/* still running: the refused calls did not quit it */
	assert_int_equal(run_in(w, ret_one, NULL), 1);
	assert_true(relay_thread_is_running(t));
	assert_int_equal(relay_object_delete_later(&w->base), 0);
	assert_int_equal(relay_thread_stop(t, SAFETY_MS), 0);
	int code = -1;
	assert_int_equal(relay_thread_exit_code(t, &code), 0);
	assert_int_equal(code, 0);
	assert_int_equal(relay_thread_destroy(t), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_T2_thread_exit_code_of_last_finished_run, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_T2_thread_exit_negative_code_refused, setup,
						teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
