/*
 * raw_start.c - case E's limit: pthread_create of a thread whose first
 * act is to write an eventfd that the starting thread waits on with
 * epoll (its "loop"). --pin same|none as for relay_start.
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "bench.h"

static int efd, epfd;

static void *thread_main(void *arg)
{
	uint64_t one = 1;

	(void)arg;
	if (write(efd, &one, sizeof one) != sizeof one)
		bench_fail("eventfd write: %s", strerror(errno));
	return NULL;
}

static uint64_t start_once(void *ctx)
{
	struct epoll_event ev;
	pthread_t t;
	uint64_t v;

	(void)ctx;
	uint64_t t0 = bench_now_ns();
	if (pthread_create(&t, NULL, thread_main, NULL))
		bench_fail("pthread_create failed");
	if (epoll_wait(epfd, &ev, 1, 10000) != 1)
		bench_fail("raw: no notification within 10 s");
	if (read(efd, &v, sizeof v) != sizeof v)
		bench_fail("eventfd read: %s", strerror(errno));
	uint64_t t1 = bench_now_ns();
	pthread_join(t, NULL);
	return t1 - t0;
}

int main(int argc, char **argv)
{
	struct bench_args args;
	struct epoll_event ev = { .events = EPOLLIN };

	bench_parse(argc, argv, &args, "iterations", 1000, "pthread-eventfd");
	const char *variant = args.variant;
	bench_pin_apply(args.pin, 0);
	efd = eventfd(0, EFD_CLOEXEC);
	epfd = epoll_create1(EPOLL_CLOEXEC);
	if (efd < 0 || epfd < 0 || epoll_ctl(epfd, EPOLL_CTL_ADD, efd, &ev))
		bench_fail("eventfd/epoll: %s", strerror(errno));
	bench_repeat(&args, "E", "raw", variant, start_once, NULL);
	return 0;
}
