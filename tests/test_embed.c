/*
 * test_embed.c - a host loop drives the main thread's relay loop
 * (relay_loop_attach, _fd, _prepare, _dispatch, _detach, relay_host's
 * hooks, relay_main_shutdown). The host here is the smallest honest one:
 * poll(2) on relay_loop_fd() for the timeout prepare gave, as GLib's and
 * libuv's are. Tags: E (embedding, docs/design.md).
 */
#include "support.h"

#include <poll.h>
#include <sys/epoll.h>
#include <unistd.h>

static void sleep_us(long us)
{
	struct timespec ts = { us / 1000000, (us % 1000000) * 1000 };
	nanosleep(&ts, NULL);
}

/* ---- the host ---- */

typedef struct host {
	atomic_long quits, wakeups;
	atomic_int quit_code;
	bool stop;
	pthread_mutex_t lock;          /* the fd-less host's queue */
	pthread_cond_t cond;
	bool woken;
} host;

static void host_quit(void *user, int code)
{
	host *h = user;
	atomic_store(&h->quit_code, code);
	atomic_fetch_add(&h->quits, 1);
	h->stop = true;
}

/* One iteration of a poll(2) host: prepare, wait on the fd, dispatch.
 * Returns what dispatch ran. */
static int host_iterate(int max_wait_ms)
{
	int timeout = -1;
	int ready = relay_loop_prepare(&timeout);
	assert_true(ready >= 0);
	if (ready)
		timeout = 0;
	if (timeout < 0 || timeout > max_wait_ms)
		timeout = max_wait_ms;
	struct pollfd p = { relay_loop_fd(), POLLIN, 0 };
	assert_true(poll(&p, 1, timeout) >= 0);
	return relay_loop_dispatch(8);
}

static bool host_run_until_count(atomic_long *c, long target, int timeout_ms)
{
	int64_t end = support_now_ms() + timeout_ms;
	while (atomic_load(c) < target) {
		if (support_now_ms() > end)
			return false;
		host_iterate(100);
	}
	return true;
}

/* ---- workers: plain pthreads calling into the main thread ---- */

typedef struct calls {
	support_app *app;
	int n;
	atomic_long done, errors;
	atomic_int last_rc;
	unsigned seed;
} calls;

static int add_one(void *data)
{
	calls *c = data;
	assert_true(relay_is_main_thread());
	return (int)atomic_fetch_add(&c->done, 1) + 1;
}

/* Blocking calls at random small delays: each needs the host to be woken
 * (the call waits, so nothing else would wake it). */
static void *blocking_caller(void *arg)
{
	calls *c = arg;
	unsigned r = c->seed;
	for (int i = 0; i < c->n; i++) {
		r = r * 1103515245u + 12345u;
		if ((r >> 16) % 4 == 0)
			sleep_us((r >> 20) % 200);
		int result = 0;
		int rc = relay_invoke_blocking(c->app, add_one, c, &result);
		atomic_store(&c->last_rc, rc);
		if (rc != 0)
			atomic_fetch_add(&c->errors, 1);
	}
	return NULL;
}

static void test_E1_blocking_calls_into_embedded_main_no_lost_wakeup(void **state)
{
	(void)state;
	assert_int_equal(relay_loop_attach(NULL), 0);
	calls c = { .app = support_app_new(), .n = (int)support_param("EMBED_CALLS", 3000),
		    .seed = 7 };
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, blocking_caller, &c), 0);
	assert_true(host_run_until_count(&c.done, c.n, SUPPORT_TIMEOUT_MS * 4));
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_int_equal(atomic_load(&c.errors), 0);
	assert_int_equal(relay_loop_detach(), 0);
	support_app_destroy(c.app);
}

/* After a dispatch that ran everything, the fd is quiet and prepare says
 * "nothing, no timer": a host polling it sleeps, it does not spin. */
static void test_E2_fd_quiet_after_dispatch(void **state)
{
	(void)state;
	assert_int_equal(relay_loop_attach(NULL), 0);
	support_app *a = support_app_new();
	assert_int_equal(relay_connect_ex(a, ping, a, support_app_on_ping, RELAY_QUEUED, 0, NULL),
			 0);
	for (int i = 0; i < 10; i++)
		assert_int_equal(relay_emit(a, ping), 0);
	int timeout = 123;
	assert_int_equal(relay_loop_prepare(&timeout), 1);
	assert_int_equal(timeout, 0);
	assert_int_equal(relay_loop_dispatch(-1), 10);
	assert_int_equal(atomic_load(&a->pings), 10);
	assert_int_equal(relay_loop_prepare(&timeout), 0);
	assert_int_equal(timeout, -1);
	struct pollfd p = { relay_loop_fd(), POLLIN, 0 };
	assert_int_equal(poll(&p, 1, 0), 0);
	/* Prepare twice (as GLib's check does): still quiet. */
	assert_int_equal(relay_loop_prepare(&timeout), 0);
	assert_int_equal(poll(&p, 1, 0), 0);
	assert_int_equal(relay_loop_dispatch(-1), 0);
	assert_int_equal(poll(&p, 1, 0), 0);
	assert_int_equal(relay_loop_detach(), 0);
	support_app_destroy(a);
}

static void *post_after(void *arg)
{
	support_app *a = arg;
	sleep_us(20000);
	int v = 42;
	assert_int_equal(relay_emit(a, value, &v), 0);
	return NULL;
}

/* Armed, then a post from another thread: the fd turns readable. */
static void test_E3_post_while_armed_makes_fd_readable(void **state)
{
	(void)state;
	assert_int_equal(relay_loop_attach(NULL), 0);
	support_app *a = support_app_new();
	assert_int_equal(relay_connect(a, value, a, support_app_on_value), 0);
	int timeout;
	assert_int_equal(relay_loop_prepare(&timeout), 0);
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, post_after, a), 0);
	struct pollfd p = { relay_loop_fd(), POLLIN, 0 };
	assert_int_equal(poll(&p, 1, SUPPORT_TIMEOUT_MS), 1);
	assert_int_equal(relay_loop_dispatch(-1), 1);
	assert_int_equal(atomic_load(&a->last_value), 42);
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_int_equal(poll(&p, 1, 0), 0);
	assert_int_equal(relay_loop_detach(), 0);
	support_app_destroy(a);
}

static void on_single_shot(support_app *self)
{
	atomic_fetch_add(&self->pings, 1);
}

/* A timer: prepare gives the time to it, rounded up, and reports it
 * ready once due. */
static void test_E4_prepare_gives_timer_timeout(void **state)
{
	(void)state;
	assert_int_equal(relay_loop_attach(NULL), 0);
	support_app *a = support_app_new();
	assert_int_equal(relay_single_shot(60, a, on_single_shot), 0);
	int timeout = -1;
	assert_int_equal(relay_loop_prepare(&timeout), 0);
	assert_true(timeout > 0 && timeout <= 60);
	assert_true(host_run_until_count(&a->pings, 1, SUPPORT_TIMEOUT_MS));
	assert_int_equal(relay_loop_prepare(&timeout), 0);
	assert_int_equal(timeout, -1);
	assert_int_equal(relay_loop_detach(), 0);
	support_app_destroy(a);
}

/* A budget cuts a long backlog into several dispatches, in order, and
 * prepare reports the rest as ready. */
static void test_E5_budget_leaves_rest_for_next_dispatch(void **state)
{
	(void)state;
	assert_int_equal(relay_loop_attach(NULL), 0);
	support_app *a = support_app_new();
	assert_int_equal(relay_connect_ex(a, value, a, support_app_on_value, RELAY_QUEUED, 0, NULL),
			 0);
	const int n = 200000;
	for (int i = 0; i < n; i++)
		assert_int_equal(relay_emit(a, value, &i), 0);
	int first = relay_loop_dispatch(0);
	assert_true(first > 0 && first < n);
	int timeout = -1;
	assert_int_equal(relay_loop_prepare(&timeout), 1);
	assert_int_equal(timeout, 0);
	int total = first, rounds = 1;
	while (total < n) {
		int k = relay_loop_dispatch(0);
		assert_true(k > 0);
		total += k;
		rounds++;
	}
	assert_int_equal(total, n);
	assert_true(rounds > 1);
	assert_int_equal(atomic_load(&a->last_value), n - 1);
	assert_int_equal(relay_loop_prepare(&timeout), 0);
	assert_int_equal(relay_loop_detach(), 0);
	support_app_destroy(a);
}

/* Detached, the thread serves no blocking calls: refused at once, and a
 * caller already waiting is released, never left hanging. */
static void test_E6_detach_refuses_and_releases_blocking_calls(void **state)
{
	(void)state;
	assert_int_equal(relay_loop_attach(NULL), 0);
	calls c = { .app = support_app_new(), .n = 1 };
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, blocking_caller, &c), 0);
	/* Wait until the call is queued (without running it), then detach. */
	int64_t end = support_now_ms() + SUPPORT_TIMEOUT_MS;
	int timeout;
	while (!relay_loop_prepare(&timeout) && support_now_ms() < end)
		sleep_us(1000);
	assert_int_equal(relay_loop_detach(), 0);
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_int_equal(atomic_load(&c.errors), 1);
	assert_int_equal(atomic_load(&c.last_rc), RELAY_ENOTDELIVERED);
	assert_int_equal(atomic_load(&c.done), 0);
	/* And refused afterwards. */
	atomic_store(&c.errors, 0);
	assert_int_equal(pthread_create(&th, NULL, blocking_caller, &c), 0);
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_int_equal(atomic_load(&c.last_rc), RELAY_ENOTRUNNING);
	assert_int_equal(relay_loop_prepare(&timeout), -EINVAL);
	support_app_destroy(c.app);
	relay_process_events();   /* what the refused calls left */
}

static void *quit_from_worker(void *arg)
{
	(void)arg;
	assert_int_equal(relay_main_exit(7), 0);
	return NULL;
}

/* relay_main_exit reaches the host through its quit hook, in the main
 * thread, from a dispatch. */
static void test_E7_main_quit_reaches_host_hook(void **state)
{
	(void)state;
	static host h;
	memset(&h, 0, sizeof h);
	relay_host hooks = { .quit = host_quit, .user = &h };
	assert_int_equal(relay_loop_attach(&hooks), 0);
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, quit_from_worker, NULL), 0);
	int64_t end = support_now_ms() + SUPPORT_TIMEOUT_MS;
	while (!h.stop && support_now_ms() < end)
		host_iterate(100);
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_int_equal(atomic_load(&h.quits), 1);
	assert_int_equal(atomic_load(&h.quit_code), 7);
	/* Taken: it does not end a later relay loop. */
	assert_int_equal(relay_loop_detach(), 0);
	assert_int_equal(relay_loop_run_once(0), 0);
}

/* relay_loop_quit from the host's own code (a button, a host timer), with
 * no relay loop running: prepare reports it, dispatch passes it on. */
static void test_E7_loop_quit_from_host_callback_reported(void **state)
{
	(void)state;
	static host h;
	memset(&h, 0, sizeof h);
	relay_host hooks = { .quit = host_quit, .user = &h };
	assert_int_equal(relay_loop_attach(&hooks), 0);
	assert_true(relay_loop_dispatch(0) >= 0);
	assert_int_equal(relay_loop_exit(3), 0);
	int timeout = -1;
	assert_int_equal(relay_loop_prepare(&timeout), 1);
	assert_int_equal(timeout, 0);
	assert_true(relay_loop_dispatch(8) >= 0);
	assert_int_equal(atomic_load(&h.quits), 1);
	assert_int_equal(atomic_load(&h.quit_code), 3);
	assert_int_equal(relay_loop_prepare(&timeout), 0);
	assert_int_equal(relay_loop_detach(), 0);
}

/* A thread quit that arrives while a slot runs a relay loop ends that
 * loop and then still reaches the host. */
static host nested_host;

static void run_nested(support_app *self)
{
	(void)self;
	int rc = relay_loop_run();
	assert_int_equal(rc, 5);
}

static void *exit_later(void *arg)
{
	(void)arg;
	sleep_us(20000);
	assert_int_equal(relay_main_exit(5), 0);
	return NULL;
}

static void test_E7_quit_ends_nested_loop_then_reaches_host(void **state)
{
	(void)state;
	memset(&nested_host, 0, sizeof nested_host);
	relay_host hooks = { .quit = host_quit, .user = &nested_host };
	assert_int_equal(relay_loop_attach(&hooks), 0);
	support_app *a = support_app_new();
	assert_int_equal(relay_single_shot(0, a, run_nested), 0);
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, exit_later, NULL), 0);
	int64_t end = support_now_ms() + SUPPORT_TIMEOUT_MS;
	while (!nested_host.stop && support_now_ms() < end)
		host_iterate(100);
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_int_equal(atomic_load(&nested_host.quits), 1);
	assert_int_equal(atomic_load(&nested_host.quit_code), 5);
	assert_int_equal(relay_loop_detach(), 0);
	support_app_destroy(a);
}

/* ---- a host without an fd: the wakeup hook ---- */

static void host_wakeup(void *user)
{
	host *h = user;
	atomic_fetch_add(&h->wakeups, 1);
	pthread_mutex_lock(&h->lock);
	h->woken = true;
	pthread_cond_signal(&h->cond);
	pthread_mutex_unlock(&h->lock);
}

static void host_wait(host *h, int timeout_ms)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += timeout_ms / 1000;
	ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&h->lock);
	while (!h->woken)
		if (pthread_cond_timedwait(&h->cond, &h->lock, &ts) != 0)
			break;
	h->woken = false;
	pthread_mutex_unlock(&h->lock);
}

static void test_E8_wakeup_hook_for_fdless_host(void **state)
{
	(void)state;
	static host h;
	memset(&h, 0, sizeof h);
	pthread_mutex_init(&h.lock, NULL);
	pthread_cond_init(&h.cond, NULL);
	relay_host hooks = { .wakeup = host_wakeup, .user = &h };
	assert_int_equal(relay_loop_attach(&hooks), 0);
	calls c = { .app = support_app_new(), .n = (int)support_param("EMBED_CALLS", 3000) / 3,
		    .seed = 11 };
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, blocking_caller, &c), 0);
	long dispatches = 0;
	int64_t end = support_now_ms() + SUPPORT_TIMEOUT_MS * 4;
	while (atomic_load(&c.done) < c.n && support_now_ms() < end) {
		int timeout;
		if (!relay_loop_prepare(&timeout))
			/* A guard only: with no timer, the hook alone wakes us. */
			host_wait(&h, timeout < 0 ? 1000 : timeout);
		relay_loop_dispatch(8);
		dispatches++;
	}
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_int_equal(atomic_load(&c.done), c.n);
	assert_int_equal(atomic_load(&c.errors), 0);
	/* At most one hook call per dispatch (the waker waits for it). */
	assert_true(atomic_load(&h.wakeups) <= dispatches + 1);
	assert_true(atomic_load(&h.wakeups) > 0);
	assert_int_equal(relay_loop_detach(), 0);
	support_app_destroy(c.app);
	pthread_mutex_destroy(&h.lock);
	pthread_cond_destroy(&h.cond);
}

/* ---- fairness and a host's own epoll ---- */

static atomic_long a_jobs, b_jobs;

static void job_a(void *data)
{
	(void)data;
	atomic_fetch_add(&a_jobs, 1);
}

static void job_b(void *data)
{
	(void)data;
	atomic_fetch_add(&b_jobs, 1);
}

typedef struct poster {
	support_app *to;
	int n;
	void (*fn)(void *);
} poster;

static void *post_n(void *arg)
{
	poster *p = arg;
	for (int i = 0; i < p->n; i++)
		assert_int_equal(relay_invoke(p->to, p->fn, NULL, NULL), 0);
	return NULL;
}

/* A budget that keeps cutting passes short goes round the producers: one
 * event of a second producer runs within a few dispatches, not after the
 * first producer's whole backlog. */
static void test_E11_budget_goes_round_the_producers(void **state)
{
	(void)state;
	assert_int_equal(relay_loop_attach(NULL), 0);
	support_app *a = support_app_new();
	atomic_store(&a_jobs, 0);
	atomic_store(&b_jobs, 0);
	poster pa = { a, 20000, job_a }, pb = { a, 1, job_b };
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, post_n, &pa), 0);
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_int_equal(pthread_create(&th, NULL, post_n, &pb), 0);
	assert_int_equal(pthread_join(th, NULL), 0);
	int dispatches = 0;
	while (atomic_load(&b_jobs) == 0 && dispatches < 100) {
		assert_true(relay_loop_dispatch(0) > 0);
		dispatches++;
	}
	assert_int_equal(atomic_load(&b_jobs), 1);
	assert_true(dispatches <= 3);
	assert_true(atomic_load(&a_jobs) < 20000);
	while (atomic_load(&a_jobs) < 20000)
		assert_true(relay_loop_dispatch(-1) >= 0);
	assert_int_equal(relay_loop_detach(), 0);
	support_app_destroy(a);
}

/* D4 across a cut-short pass: a relay_thread run twice posts through two
 * rings (its first run's ring is closed); the budget's round of the
 * producers must not deliver the second run's events before the first
 * run's rest. */
typedef struct d4src {
	relay_object base;
	RELAY_SIGNAL(val, int);
	int run;
} d4src;

typedef struct d4rcv {
	relay_object base;
	int last, n, inversions;
} d4rcv;

static const relay_class d4src_class = { .name = "d4src", .size = sizeof(d4src) };
static const relay_class d4rcv_class = { .name = "d4rcv", .size = sizeof(d4rcv) };

enum { D4_N = 3000 };

static void d4_on_val(d4rcv *r, const int *v)
{
	if (r->n++ && *v < r->last)
		r->inversions++;
	r->last = *v;
}

static void d4_job(void *data)
{
	d4src *s = data;
	s->run++;
	for (int i = 0; i < D4_N; i++) {
		int v = s->run * 100000 + i;
		assert_int_equal(relay_emit(s, val, &v), 0);
	}
	assert_int_equal(relay_thread_quit(relay_thread_current()), 0);
}

static void test_D4_restarted_producer_order_across_cut_passes(void **state)
{
	(void)state;
	d4src *s = NULL;
	d4rcv *r = NULL;
	assert_int_equal(relay_object_new(&s, &d4src_class, NULL), 0);
	assert_int_equal(relay_object_new(&r, &d4rcv_class, NULL), 0);
	assert_int_equal(relay_connect(s, val, r, d4_on_val), 0);
	assert_int_equal(relay_loop_attach(NULL), 0);
	relay_thread *t = NULL;
	assert_int_equal(relay_thread_create("d4-jobs", NULL, &t), 0);
	assert_int_equal(relay_connect_func(t, started, d4_job, s), 0);
	for (int job = 0; job < 2; job++) {
		assert_int_equal(relay_thread_start(t), 0);
		assert_int_equal(relay_thread_wait(t, SUPPORT_TIMEOUT_MS), 0);
	}
	int dispatches = 0;
	while (r->n < 2 * D4_N && dispatches < 100000) {
		assert_true(relay_loop_dispatch(0) >= 0);
		dispatches++;
	}
	assert_int_equal(r->n, 2 * D4_N);
	assert_true(dispatches > 2);   /* the budget did cut */
	assert_int_equal(r->inversions, 0);
	assert_int_equal(relay_loop_detach(), 0);
	assert_int_equal(relay_thread_destroy(t), 0);
	assert_int_equal(relay_object_destroy(s), 0);
	assert_int_equal(relay_object_destroy(r), 0);
}

static void on_stale(support_app *self, const int *fd)
{
	(void)self;
	(void)fd;
}

/* A host that put relay_loop_fd() in its own epoll set (libuv does) keeps
 * hearing relay after relay rebuilt its set (a watched fd closed while a
 * dup kept it reported). */
static void test_E12_host_epoll_survives_rebuild(void **state)
{
	(void)state;
	assert_int_equal(relay_loop_attach(NULL), 0);
	int hep = epoll_create1(EPOLL_CLOEXEC);
	assert_true(hep >= 0);
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = 1 };
	assert_int_equal(epoll_ctl(hep, EPOLL_CTL_ADD, relay_loop_fd(), &ev), 0);
	int p[2];
	assert_int_equal(pipe(p), 0);
	int keep = dup(p[0]);
	support_app *a = support_app_new();
	relay_watcher *w = NULL;
	assert_int_equal(relay_watcher_create(p[0], RELAY_WATCH_READ, NULL, &w), 0);
	assert_int_equal(relay_connect(w, activated, a, on_stale), 0);
	assert_true(write(p[1], "x", 1) == 1);
	close(p[0]);   /* misuse: the dup keeps it reported */
	static support_diag d;   /* static: a failed assertion leaves it installed */
	support_diag_begin(&d);
	for (int i = 0; i < 3; i++)
		assert_true(relay_loop_dispatch(-1) >= 0);   /* disabled, set rebuilt */
	support_diag_end(&d);
	assert_false(relay_watcher_is_enabled(w));
	int timeout;
	assert_int_equal(relay_loop_prepare(&timeout), 0);
	struct epoll_event out;
	assert_int_equal(epoll_wait(hep, &out, 1, 0), 0);   /* quiet: no spin */
	pthread_t th;
	assert_int_equal(relay_connect(a, value, a, support_app_on_value), 0);
	assert_int_equal(pthread_create(&th, NULL, post_after, a), 0);
	assert_int_equal(epoll_wait(hep, &out, 1, SUPPORT_TIMEOUT_MS), 1);
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_true(relay_loop_dispatch(-1) >= 1);
	assert_int_equal(atomic_load(&a->last_value), 42);
	assert_int_equal(relay_object_destroy(w), 0);
	assert_int_equal(relay_loop_detach(), 0);
	support_app_destroy(a);
	close(hep);
	close(keep);
	close(p[1]);
}

/* ---- misuse ---- */

static void test_E9_misuse_refused_with_diagnostic(void **state)
{
	(void)state;
	static support_diag d;   /* static: a failed assertion leaves it installed */
	support_diag_begin(&d);
	assert_int_equal(relay_loop_dispatch(0), -EINVAL);
	assert_int_equal(relay_loop_detach(), -EINVAL);
	assert_int_equal(relay_loop_attach(NULL), 0);
	assert_int_equal(relay_loop_attach(NULL), -EEXIST);
	assert_int_equal(support_diag_count(&d), 3);
	assert_int_equal(relay_loop_detach(), 0);
	support_diag_end(&d);
}

static int attach_in_relay_thread(void *data)
{
	(void)data;
	return relay_loop_attach(NULL);
}

static void test_E9_attach_refused_in_relay_thread(void **state)
{
	(void)state;
	relay_thread *t = support_thread_start("embed-worker");
	support_app *a = support_app_new();
	assert_int_equal(relay_object_move_to_thread(a, t), 0);
	int result = 0;
	assert_int_equal(relay_invoke_blocking(a, attach_in_relay_thread, NULL, &result), 0);
	assert_int_equal(result, -EINVAL);
	assert_int_equal(relay_object_delete_later(a), 0);
	support_thread_stop(t);
}

/* ---- shutdown as a call of its own ---- */

static void test_E10_main_shutdown_stops_threads(void **state)
{
	(void)state;
	relay_thread *t = support_thread_start("embed-shutdown");
	assert_true(relay_thread_is_running(t));
	assert_int_equal(relay_main_shutdown(SUPPORT_TIMEOUT_MS), 0);
	assert_true(relay_thread_is_finished(t));
	assert_int_equal(relay_thread_destroy(t), 0);
}

int main(int argc, char **argv)
{
	support_set_args(argc, argv);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_E2_fd_quiet_after_dispatch),
		cmocka_unit_test(test_E3_post_while_armed_makes_fd_readable),
		cmocka_unit_test(test_E4_prepare_gives_timer_timeout),
		cmocka_unit_test(test_E5_budget_leaves_rest_for_next_dispatch),
		cmocka_unit_test(test_E1_blocking_calls_into_embedded_main_no_lost_wakeup),
		cmocka_unit_test(test_E6_detach_refuses_and_releases_blocking_calls),
		cmocka_unit_test(test_E7_main_quit_reaches_host_hook),
		cmocka_unit_test(test_E7_loop_quit_from_host_callback_reported),
		cmocka_unit_test(test_E7_quit_ends_nested_loop_then_reaches_host),
		cmocka_unit_test(test_E8_wakeup_hook_for_fdless_host),
		cmocka_unit_test(test_E11_budget_goes_round_the_producers),
		cmocka_unit_test(test_D4_restarted_producer_order_across_cut_passes),
		cmocka_unit_test(test_E12_host_epoll_survives_rebuild),
		cmocka_unit_test(test_E9_misuse_refused_with_diagnostic),
		cmocka_unit_test(test_E9_attach_refused_in_relay_thread),
		cmocka_unit_test(test_E10_main_shutdown_stops_threads),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
