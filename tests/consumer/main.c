/*
 * main.c - a program that uses an installed relay, built by .ci/run twice:
 * through find_package(relay) (CMakeLists.txt beside it) and through
 * `pkg-config --cflags --libs relay`. It starts a worker thread, stops it
 * and destroys it; it exits 0 when each step succeeds.
 */
#include <relay.h>
#include <stdio.h>

static int check(int rc, const char *what)
{
	if (rc != 0)
		fprintf(stderr, "consumer: %s: %s\n", what, relay_strerror(rc));
	return rc;
}

int main(void)
{
	relay_thread *thread;

	if (check(relay_thread_create("consumer", NULL, &thread), "relay_thread_create"))
		return 1;
	if (check(relay_thread_start(thread), "relay_thread_start") ||
	    check(relay_thread_stop(thread, 5000), "relay_thread_stop") ||
	    check(relay_thread_destroy(thread), "relay_thread_destroy"))
		return 1;
	printf("consumer: relay %d.%d.%d thread started, stopped and destroyed\n",
	       RELAY_VERSION_MAJOR, RELAY_VERSION_MINOR, RELAY_VERSION_PATCH);
	return 0;
}
