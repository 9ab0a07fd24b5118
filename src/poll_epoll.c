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

/* A new epoll set at the same fd number (dup2: a host polling the number
 * keeps working), holding the eventfd and `add`'s fds: for an fd that was
 * closed while a dup of it keeps it in the old set, where nothing can
 * take it out any more (epoll(7) Q6). */
int relay__poll_rebuild(struct relay__tdata *t, int (*add)(struct relay__tdata *, int epfd))
{
	int fresh = epoll_create1(EPOLL_CLOEXEC);
	if (fresh < 0)
		return -errno;
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL };
	int rc = 0;
	if (epoll_ctl(fresh, EPOLL_CTL_ADD, atomic_load(&t->q.wakefd), &ev) < 0)
		rc = -errno;
	if (rc == 0)
		rc = add(t, fresh);
	if (rc == 0 && dup2(fresh, t->epfd) < 0)
		rc = -errno;
	close(fresh);
	return rc;
}

void relay__poll_close(struct relay__tdata *t)
{
	if (t->epfd >= 0)
		close(t->epfd);
	t->epfd = -1;
}

int relay__poll_wait(struct relay__tdata *t, int timeout_ms)
{
	struct epoll_event evs[64];
	int n = epoll_wait(t->epfd, evs, 64, timeout_ms);
	if (n < 0)
		return errno == EINTR ? 0 : -errno;
	for (int i = 0; i < n; i++) {
		if (evs[i].data.ptr == NULL)
			relay__queue_clear_wake(&t->q);
		else
			relay__watchers_collect(t, evs[i].data.ptr, evs[i].events);
	}
	return n;
}
