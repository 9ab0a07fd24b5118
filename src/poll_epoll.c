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

/* The fd a host polls (relay_loop_fd): an epoll set holding only the
 * thread's own set, made on first use. It never changes, so a host that
 * registered it (libuv's uv_poll_t adds it to its own epoll) keeps
 * hearing relay when the thread's own set is rebuilt. The owner thread. */
int relay__poll_host_fd(struct relay__tdata *t)
{
	if (t->hostfd >= 0)
		return t->hostfd;
	int fd = epoll_create1(EPOLL_CLOEXEC);
	if (fd < 0)
		return -errno;
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL };
	if (epoll_ctl(fd, EPOLL_CTL_ADD, t->epfd, &ev) < 0) {
		int err = -errno;
		close(fd);
		return err;
	}
	t->hostfd = fd;
	return fd;
}

/* A new epoll set holding the eventfd and `add`'s fds, in place of the
 * old one: for an fd that was closed while a dup of it keeps its file in
 * the old set, where nothing can take it out any more (epoll(7) Q6). The
 * host's fd is moved over to the new set. The owner thread. */
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
	if (rc == 0 && t->hostfd >= 0 && epoll_ctl(t->hostfd, EPOLL_CTL_ADD, fresh, &ev) < 0)
		rc = -errno;
	if (rc < 0) {
		close(fresh);
		return rc;
	}
	if (t->hostfd >= 0)
		epoll_ctl(t->hostfd, EPOLL_CTL_DEL, t->epfd, &ev);
	close(t->epfd);
	t->epfd = fresh;
	return 0;
}

void relay__poll_close(struct relay__tdata *t)
{
	if (t->hostfd >= 0)
		close(t->hostfd);
	t->hostfd = -1;
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
		if (evs[i].data.u64 == 0)
			relay__queue_clear_wake(&t->q);
		else
			relay__watchers_collect(t, evs[i].data.u64, evs[i].events);
	}
	return n;
}
