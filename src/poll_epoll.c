/*
 * poll_epoll.c - the poller backend: epoll, with the queue's eventfd
 * registered once. Three functions (init, close, wait) are the whole
 * backend interface, so a poll/kqueue backend can replace this file
 * (as redis' ae_epoll.c sits behind ae.c).
 */
#include "internal.h"

#include <errno.h>
#include <sys/epoll.h>
#include <unistd.h>

int relay__poll_init(struct relay__tdata *t)
{
	t->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (t->epfd < 0)
		return -errno;
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL };
	if (epoll_ctl(t->epfd, EPOLL_CTL_ADD, atomic_load(&t->q.wakefd), &ev) < 0) {
		int err = -errno;
		close(t->epfd);
		t->epfd = -1;
		return err;
	}
	return 0;
}

void relay__poll_close(struct relay__tdata *t)
{
	if (t->epfd >= 0)
		close(t->epfd);
	t->epfd = -1;
}

int relay__poll_wait(struct relay__tdata *t, int timeout_ms)
{
	struct epoll_event evs[8];
	int n = epoll_wait(t->epfd, evs, 8, timeout_ms);
	if (n < 0)
		return errno == EINTR ? 0 : -errno;
	for (int i = 0; i < n; i++)
		if (evs[i].data.ptr == NULL)
			relay__queue_clear_wake(&t->q);
	return n;
}
