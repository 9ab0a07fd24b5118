/*
 * embed.c - a host loop (GLib, libuv, SDL, a custom one) drives the
 * calling thread's relay loop: attach / detach, the loop fd, prepare,
 * dispatch, the waker thread for hosts without an fd, and the main
 * thread's shutdown as a call of its own.
 *
 * The handshake is the one a relay loop uses before it sleeps (queue.c,
 * models/wakeup.pml): prepare is the consumer's "arm, then look" half
 * (the sleep flag set by a seq_cst exchange, then every request loaded
 * seq_cst), and the host's poll on the loop fd is the sleep. A producer
 * that posts after the look sees the flag and writes the eventfd, which
 * is in the loop's epoll set, so the loop fd turns readable; one that
 * posted before it is seen by the look. There is no query without the
 * arm: the timeout prepare returns is only given together with the flag
 * that makes a later post wake the host. dispatch clears the flag and
 * reads the eventfd before running anything, so the fd is readable again
 * only for new work (a post while armed, a watched fd, a quit).
 *
 * Who runs what: attach, detach, prepare and dispatch run in the thread
 * they are called from, on its own loop; the waker thread only polls the
 * loop fd and calls the host's wakeup hook, and waits for the next
 * dispatch before it polls again (a level-triggered fd that stays readable
 * until the host dispatches would otherwise call the hook in a loop).
 */
#include "internal.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

struct relay__embed {
	relay_host host;
	/* the waker thread (host->wakeup only) */
	bool has_waker;
	pthread_t waker;
	int stopfd;                      /* eventfd: the waker ends */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	uint64_t dispatches;             /* guarded by lock */
	bool stopping;                   /* guarded by lock */
	int epfd;
};

static void *waker_main(void *arg)
{
	struct relay__embed *e = arg;
	for (;;) {
		struct pollfd p[2] = { { e->epfd, POLLIN, 0 }, { e->stopfd, POLLIN, 0 } };
		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (p[1].revents)
			break;
		pthread_mutex_lock(&e->lock);
		uint64_t seen = e->dispatches;
		pthread_mutex_unlock(&e->lock);
		/* No relay lock is held: the hook is the host's code. */
		e->host.wakeup(e->host.user);
		pthread_mutex_lock(&e->lock);
		while (e->dispatches == seen && !e->stopping)
			pthread_cond_wait(&e->cond, &e->lock);
		bool stop = e->stopping;
		pthread_mutex_unlock(&e->lock);
		if (stop)
			break;
	}
	return NULL;
}

static void waker_stop(struct relay__embed *e)
{
	if (!e->has_waker)
		return;
	pthread_mutex_lock(&e->lock);
	e->stopping = true;
	pthread_cond_signal(&e->cond);
	pthread_mutex_unlock(&e->lock);
	uint64_t one = 1;
	while (write(e->stopfd, &one, sizeof one) < 0 && errno == EINTR)
		;
	pthread_join(e->waker, NULL);
	e->has_waker = false;
}

static void embed_free(struct relay__embed *e)
{
	waker_stop(e);
	if (e->stopfd >= 0)
		close(e->stopfd);
	pthread_mutex_destroy(&e->lock);
	pthread_cond_destroy(&e->cond);
	relay__free(e);
}

static struct relay__embed *embed_new(const relay_host *host, int epfd, int *err)
{
	struct relay__embed *e = relay__calloc(sizeof *e);
	if (!e) {
		*err = -ENOMEM;
		return NULL;
	}
	if (host)
		e->host = *host;
	e->epfd = epfd;
	e->stopfd = -1;
	pthread_mutex_init(&e->lock, NULL);
	pthread_cond_init(&e->cond, NULL);
	if (!e->host.wakeup)
		return e;
	e->stopfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (e->stopfd < 0) {
		*err = -errno;
		embed_free(e);
		return NULL;
	}
	int rc = pthread_create(&e->waker, NULL, waker_main, e);
	if (rc != 0) {
		*err = -rc;
		embed_free(e);
		return NULL;
	}
	e->has_waker = true;
	pthread_setname_np(e->waker, "relay-waker");
	return e;
}

/* The calling thread, attached: NULL (and a diagnostic) otherwise. */
static struct relay__tdata *attached(const char *fn, int *rc)
{
	struct relay__tdata *self = relay__tdata_current();
	if (!self) {
		*rc = -ENOMEM;
		return NULL;
	}
	if (!self->embed) {
		*rc = relay__diag(-EINVAL, "%s: the loop of thread '%s' is not attached to a host "
				  "loop; call relay_loop_attach first", fn, self->name);
		return NULL;
	}
	return self;
}

int relay_loop_attach(const relay_host *host)
{
	struct relay__tdata *self = relay__tdata_current();
	if (!self)
		return -ENOMEM;
	if (!self->adopted)
		return relay__diag(-EINVAL, "relay_loop_attach: thread '%s' is a relay_thread, "
				   "which runs its own loop; attach from the main thread or "
				   "from a thread of yours", self->name);
	if (self->embed)
		return relay__diag(-EEXIST, "relay_loop_attach: the loop of thread '%s' is "
				   "attached already; relay_loop_detach first", self->name);
	int fd = relay__poll_host_fd(self);
	if (fd < 0)
		return fd;
	int err = 0;
	struct relay__embed *e = embed_new(host, fd, &err);
	if (!e)
		return err;
	self->embed = e;
	/* It serves blocking calls from now on (seq_cst: posters check it). */
	atomic_store(&self->pumps, true);
	return 0;
}

int relay_loop_detach(void)
{
	int rc = 0;
	struct relay__tdata *self = attached("relay_loop_detach", &rc);
	if (!self)
		return rc;
	struct relay__embed *e = self->embed;
	self->embed = NULL;
	/* Blocking callers that came in before this store are released by
	 * the scan; later ones see pumps false after their commit (post.c)
	 * and give up with RELAY_ENOTRUNNING. */
	atomic_store(&self->pumps, false);
	relay__release_blocking(self);
	relay__queue_awake(&self->q);
	embed_free(e);
	return 0;
}

void relay__embed_release(struct relay__tdata *t)
{
	if (t->embed) {
		embed_free(t->embed);
		t->embed = NULL;
	}
}

int relay_loop_fd(void)
{
	struct relay__tdata *self = relay__tdata_current();
	if (!self)
		return -ENOMEM;
	return relay__poll_host_fd(self);
}

int relay_loop_prepare(int *timeout_ms)
{
	int rc = 0;
	struct relay__tdata *self = attached("relay_loop_prepare", &rc);
	if (!self)
		return rc;
	uint64_t now = relay__now_ns();
	int t = 0;
	int ready = relay__loop_has_work(self, now) || !relay__loop_arm(self);
	if (!ready)
		t = relay__loop_timeout(self, now);
	if (timeout_ms)
		*timeout_ms = t;
	return ready;
}

/* A quit for this loop with no relay loop running here reaches the host
 * through its hook; without one it is reported and dropped, so that it
 * does not hold up every later pass. */
static void pass_quit_to_host(struct relay__tdata *self)
{
	if (atomic_load(&self->loop_depth) > 0)
		return;   /* a nested relay_loop_run takes it, as ever */
	int code;
	uint_fast64_t x = atomic_load(&self->exit_req);
	if (x & RELAY__EXIT_PENDING) {
		if (!atomic_compare_exchange_strong(&self->exit_req, &x, 0))
			return;   /* a new one: the next dispatch */
		code = (int)(uint32_t)x;
	} else if (self->quit_next) {
		self->quit_next = false;
		code = self->quit_next_code;
	} else {
		return;
	}
	relay_host *h = &self->embed->host;
	if (h->quit)
		h->quit(h->user, code);
	else
		relay__diag(0, "relay: a quit (code %d) reached thread '%s', whose loop a host "
			    "drives with no quit hook (relay_host.quit); the host loop goes on",
			    code, self->name);
}

int relay_loop_dispatch(int budget_ms)
{
	int rc = 0;
	struct relay__tdata *self = attached("relay_loop_dispatch", &rc);
	if (!self)
		return rc;
	struct relay__embed *e = self->embed;
	relay__queue_awake(&self->q);
	rc = relay__poll_wait(self, 0);   /* reads the eventfd: the fd goes quiet */
	if (rc < 0)
		return rc;
	pass_quit_to_host(self);
	int n = relay__loop_dispatch(self, budget_ms);
	/* A slot may have detached (or detached and attached again). */
	if (self->embed)
		pass_quit_to_host(self);
	if (self->embed == e && e->has_waker) {
		pthread_mutex_lock(&e->lock);
		e->dispatches++;
		pthread_cond_signal(&e->cond);
		pthread_mutex_unlock(&e->lock);
	}
	return n;
}
