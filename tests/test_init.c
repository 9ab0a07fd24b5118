/*
 * test_init.c - the first relay call of a process (T3: the main thread,
 * the process's initial thread, is adopted as the main thread; the
 * allocator promise: an allocating call that fails leaves nothing broken,
 * a retry works).
 *
 * If the very first allocations fail (an allocator installed before any
 * other relay call, as the header asks, failing the first N allocations
 * and then succeeding), the failed first call must not break the main
 * thread for good: a retry succeeds and then the calling thread is the
 * main thread, relay_thread_main() is its handle, relay_main_run works and
 * new objects live in it. Today the main thread's record is made once
 * (pthread_once) and a failure there is final: the retry adopts the
 * process's initial thread as a foreign thread, relay_is_main_thread() is
 * false, relay_thread_main() NULL and relay_main_run is refused - a wrong
 * result in any build.
 *
 * Each scenario needs a process in which relay was never called: it runs
 * in a forked child (this program calls relay only in children), which
 * reports the first check that failed as its exit status.
 */
#include "objtest.h"

#include <sys/wait.h>

static atomic_long g_fail_left;

static void *failing_alloc(size_t size, void *user)
{
	(void)user;
	if (atomic_load(&g_fail_left) > 0) {
		atomic_fetch_sub(&g_fail_left, 1);
		return NULL;
	}
	return malloc(size);
}

static void plain_release(void *p, void *user)
{
	(void)user;
	free(p);
}

static const char *const g_checks[] = {
	"ok",
	"relay_set_allocator refused the allocator",
	"relay_thread_current() still NULL once allocations succeed",
	"relay_is_main_thread() is false in the process's initial thread",
	"relay_thread_main() is NULL",
	"relay_thread_main() is not the initial thread's handle",
	"relay_main_quit() failed",
	"relay_main_run() did not return the quit's code",
	"relay_object_new failed",
	"a new object does not live in the main thread",
	"relay_object_destroy failed",
};

/* In a fresh process: the first `n` allocations fail; the first call is
 * retried until it succeeds. Returns 0 or the index of the failed check. */
static int first_call_with_failing_allocations(long n)
{
	static const relay_allocator failing = { failing_alloc, plain_release, NULL };
	if (relay_set_allocator(&failing) != 0)
		return 1;
	atomic_store(&g_fail_left, n);
	relay_thread *cur = NULL;
	for (int i = 0; i <= n && !cur; i++)
		cur = relay_thread_current();   /* NULL only on -ENOMEM */
	if (!cur)
		return 2;
	if (!relay_is_main_thread())
		return 3;
	if (!relay_thread_main())
		return 4;
	if (relay_thread_main() != cur)
		return 5;
	if (relay_main_exit(3) != 0)
		return 6;
	if (relay_main_run(100) != 3)
		return 7;
	obj *o = NULL;
	if (relay_object_new(&o, &obj_class, NULL) != 0)
		return 8;
	if (relay_object_thread(&o->base) != relay_thread_main())
		return 9;
	if (relay_object_destroy(&o->base) != 0)
		return 10;
	return 0;
}

static void test_T3_failed_first_call_leaves_main_thread_usable(void **state)
{
	(void)state;
	/* n = 0 is the control: nothing fails, every check must hold, so a
	 * failure below comes from the failed first call, not the checks. */
	int failures = 0;
	for (long n = 0; n <= 3; n++) {
		fflush(NULL);
		pid_t pid = fork();
		assert_true(pid >= 0);
		if (pid == 0)
			_exit(first_call_with_failing_allocations(n));
		int status = 0;
		assert_int_equal(waitpid(pid, &status, 0), pid);
		int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
		if (code == 0)
			continue;
		failures++;
		fprintf(stderr, "first %ld allocations failing, then a retry: %s\n", n,
			code < 0 ? "the child died"
			: code < (int)(sizeof g_checks / sizeof g_checks[0]) ? g_checks[code] : "?");
		if (n == 0)
			fail_msg("the control (no failing allocation) failed: the checks are wrong");
	}
	assert_int_equal(failures, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_T3_failed_first_call_leaves_main_thread_usable),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
