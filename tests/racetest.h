/*
 * racetest.h - helpers for the tests that reproduce races (header only;
 * include after objtest.h).
 *
 * Provides:
 * - a trial budget: a race test repeats its scenario until either a number
 *   of trials or a number of milliseconds is used up, whichever comes
 *   first. Both are small by default and overridable from the
 *   environment: RELAY_RACE_TRIALS=n replaces the test's trial count,
 *   RELAY_RACE_MS=ms its time budget (for long hunts with a CPU hog
 *   beside the test). The budget bounds the run; no test asserts anything
 *   about time.
 * - CPU pinning: two threads pinned to one CPU run interleaved by
 *   preemption instead of side by side, so a thread can be stopped at any
 *   instruction (a timer or wake-up of the other thread preempts it) and
 *   the other thread runs to completion in between. That turns a window of
 *   a few instructions into one that a few percent of trials hit.
 *
 * - isolation: a test that may crash or corrupt the process today (a
 *   use-after-free in relay) runs in a fresh process of the same program
 *   (RACE_ISOLATED() as its first statement; main calls
 *   race_isolation_init first). The test fails if that process dies, or
 *   does not end within RACE_CHILD_MS; the other tests of the program run
 *   on either way.
 *
 * Never assert on timing: counts, order, thread identity, return codes.
 */
#ifndef RELAY_TEST_RACETEST_H
#define RELAY_TEST_RACETEST_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

extern char **environ;

typedef struct race_budget {
	long trials;        /* at most this many trials */
	uint64_t end_ms;    /* now_ms() deadline */
	long done;          /* trials run */
} race_budget;

static inline long race_env(const char *name, long dflt)
{
	const char *v = getenv(name);
	if (!v || !*v)
		return dflt;
	char *end = NULL;
	long n = strtol(v, &end, 0);
	return (end && *end == '\0' && n > 0) ? n : dflt;
}

static inline void race_budget_init(race_budget *b, long trials, long ms)
{
	b->trials = race_env("RELAY_RACE_TRIALS", trials);
	b->end_ms = now_ms() + (uint64_t)race_env("RELAY_RACE_MS", ms);
	b->done = 0;
}

/* True while there is budget for one more trial (counts it). */
static inline bool race_budget_next(race_budget *b)
{
	if (b->done >= b->trials || now_ms() >= b->end_ms)
		return false;
	b->done++;
	return true;
}

/* The CPUs the process may use, as they were before any test pinned a
 * thread (taken at the first call, which race_pin makes). */
static cpu_set_t race__all;
static pthread_once_t race__once = PTHREAD_ONCE_INIT;

static void race__init(void)
{
	if (sched_getaffinity(0, sizeof race__all, &race__all) != 0 || CPU_COUNT(&race__all) == 0) {
		CPU_ZERO(&race__all);
		CPU_SET(0, &race__all);
	}
}

static inline int race_ncpus(void)
{
	pthread_once(&race__once, race__init);
	return CPU_COUNT(&race__all);
}

/* The index of the n-th CPU the process may run on (wrapping). */
static inline int race_cpu(int n)
{
	pthread_once(&race__once, race__init);
	n %= CPU_COUNT(&race__all);
	for (int i = 0; i < CPU_SETSIZE; i++)
		if (CPU_ISSET(i, &race__all) && n-- == 0)
			return i;
	return 0;
}

/* Pins the calling thread to race_cpu(n); *saved (may be NULL) receives
 * the previous mask for race_unpin. */
static inline void race_pin(int n, cpu_set_t *saved)
{
	pthread_once(&race__once, race__init);
	if (saved)
		pthread_getaffinity_np(pthread_self(), sizeof *saved, saved);
	cpu_set_t s;
	CPU_ZERO(&s);
	CPU_SET(race_cpu(n), &s);
	pthread_setaffinity_np(pthread_self(), sizeof s, &s);
}

static inline void race_unpin(const cpu_set_t *saved)
{
	pthread_setaffinity_np(pthread_self(), sizeof *saved, saved);
}

/* For relay_invoke_blocking / run_in: pins the thread that runs it. */
static inline int race_pin_job(void *cpu_index)
{
	race_pin((int)(intptr_t)cpu_index, NULL);
	return 0;
}

static inline int race_unpin_job(void *unused)
{
	(void)unused;
	pthread_once(&race__once, race__init);
	pthread_setaffinity_np(pthread_self(), sizeof race__all, &race__all);
	return 0;
}

/* A short sleep whose wake-up preempts whatever runs on this CPU. */
static inline void race_nap_us(long us)
{
	struct timespec ts = { 0, us * 1000L };
	nanosleep(&ts, NULL);
}

/* ---- isolation ---- */

#ifndef RACE_CHILD_MS
#define RACE_CHILD_MS 30000   /* a safety net: a child that runs longer hangs */
#endif

static bool race__child;

/* Call first in main. Returns true in a child started by RACE_ISOLATED
 * (argv: --child NAME), with cmocka's filter set to run that test only. */
static inline bool race_isolation_init(int argc, char **argv)
{
	if (argc > 2 && strcmp(argv[1], "--child") == 0) {
		race__child = true;
		cmocka_set_test_filter(argv[2]);
		return true;
	}
	return false;
}

/* In the parent: runs test `name` in a new process of this program and
 * fails if it does not pass; returns false. In the child: returns true
 * (the test's body runs there). */
static inline bool race_in_child(const char *name)
{
	if (race__child)
		return true;
	char *args[] = { (char *)"/proc/self/exe", (char *)"--child", (char *)name, NULL };
	pid_t pid;
	int rc = posix_spawn(&pid, "/proc/self/exe", NULL, NULL, args, environ);
	if (rc != 0)
		fail_msg("%s: cannot start a child process: %s", name, strerror(rc));
	const uint64_t dl = now_ms() + RACE_CHILD_MS;
	int status = 0;
	for (;;) {
		pid_t w = waitpid(pid, &status, WNOHANG);
		if (w == pid)
			break;
		if (w < 0 && errno != EINTR)
			fail_msg("%s: waitpid: %s", name, strerror(errno));
		if (now_ms() > dl) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			fail_msg("%s: still running after %d ms in its own process (hung)", name,
				 RACE_CHILD_MS);
		}
		sleep_ms(5);
	}
	if (WIFSIGNALED(status))
		fail_msg("%s: its process was killed by signal %d (%s)", name, WTERMSIG(status),
			 strsignal(WTERMSIG(status)));
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		fail_msg("%s: failed in its own process (exit status %d)", name,
			 WIFEXITED(status) ? WEXITSTATUS(status) : -1);
	return false;
}

/* First statement of a test that runs in its own process. */
#define RACE_ISOLATED()                                                        \
	do {                                                                   \
		if (!race_in_child(__func__))                                  \
			return;                                                \
	} while (0)

#endif /* RELAY_TEST_RACETEST_H */
