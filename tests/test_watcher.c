/*
 * test_watcher.c - relay_watcher (QSocketNotifier): level-triggered read
 * and write readiness on pipes, socketpairs and eventfds, in the
 * watcher's thread; enable/disable rules; one watcher per fd and type;
 * disabled-in-pass; hang-up; closed fds; moves; many watchers; storms;
 * the embedded loop. Tags: W (watchers, docs/design.md).
 */
#include "support.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

typedef struct sink {
	relay_object base;
	atomic_long fired;
	atomic_int last_fd;
	atomic_long wrong_thread;
	relay_thread *home;            /* expected thread, NULL: any */
	bool drain;                    /* read what is there */
	bool disable_on_eof;
	relay_watcher *victim;         /* disabled by this sink's slot */
	bool destroy_victim;
	long bytes;
} sink;

static const relay_class sink_class = { .name = "sink", .size = sizeof(sink) };

static void on_activated(sink *self, const int *fd)
{
	if (self->home && relay_thread_current() != self->home)
		atomic_fetch_add(&self->wrong_thread, 1);
	atomic_store(&self->last_fd, *fd);
	atomic_fetch_add(&self->fired, 1);
	if (self->victim) {
		if (self->destroy_victim)
			assert_int_equal(relay_object_destroy(self->victim), 0);
		else
			assert_int_equal(relay_watcher_set_enabled(self->victim, false), 0);
		self->victim = NULL;
	}
	if (self->drain) {
		char buf[4096];
		ssize_t n = read(*fd, buf, sizeof buf);
		if (n > 0)
			self->bytes += n;
		if (n == 0 && self->disable_on_eof) {
			relay_watcher *w = (relay_watcher *)relay_sender();
			assert_int_equal(relay_watcher_set_enabled(w, false), 0);
		}
	}
}

static sink *sink_new(void)
{
	sink *s = NULL;
	assert_int_equal(relay_object_new(&s, &sink_class, NULL), 0);
	return s;
}

static relay_watcher *watch(int fd, int type, sink *s)
{
	relay_watcher *w = NULL;
	assert_int_equal(relay_watcher_create(fd, type, NULL, &w), 0);
	assert_non_null(w);
	assert_int_equal(relay_connect(w, activated, s, on_activated), 0);
	return w;
}

static void passes(int n)
{
	for (int i = 0; i < n; i++)
		assert_true(relay_loop_run_once(0) >= 0);
}

static void put(int fd, const char *what)
{
	assert_true(write(fd, what, strlen(what)) == (ssize_t)strlen(what));
}

/* Readable fires, in this thread, with the fd; not drained fires again
 * next pass (level-triggered); drained, it is quiet. */
static void test_W1_read_level_triggered(void **state)
{
	(void)state;
	int p[2];
	assert_int_equal(pipe(p), 0);
	sink *s = sink_new();
	s->home = relay_thread_current();
	relay_watcher *w = watch(p[0], RELAY_WATCH_READ, s);
	assert_true(relay_watcher_is_enabled(w));
	assert_int_equal(relay_watcher_fd(w), p[0]);
	passes(3);
	assert_int_equal(atomic_load(&s->fired), 0);
	put(p[1], "x");
	assert_true(support_run_until_count(&s->fired, 1, SUPPORT_TIMEOUT_MS));
	assert_int_equal(atomic_load(&s->last_fd), p[0]);
	long before = atomic_load(&s->fired);
	passes(3);
	assert_int_equal(atomic_load(&s->fired), before + 3);   /* once per pass */
	s->drain = true;
	passes(1);
	long drained = atomic_load(&s->fired);
	passes(3);
	assert_int_equal(atomic_load(&s->fired), drained);
	assert_int_equal(s->bytes, 1);
	assert_int_equal(atomic_load(&s->wrong_thread), 0);
	assert_int_equal(relay_object_destroy(w), 0);
	assert_int_equal(relay_object_destroy(s), 0);
	close(p[0]);
	close(p[1]);
}

/* Write readiness on a socketpair; disabled, it stops. READ and WRITE on
 * one fd share it. */
static void test_W2_write_and_read_on_one_fd(void **state)
{
	(void)state;
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	sink *sw = sink_new(), *sr = sink_new();
	relay_watcher *ww = watch(sv[0], RELAY_WATCH_WRITE, sw);
	relay_watcher *wr = watch(sv[0], RELAY_WATCH_READ, sr);
	sr->drain = true;
	passes(1);
	assert_int_equal(atomic_load(&sw->fired), 1);
	assert_int_equal(atomic_load(&sr->fired), 0);
	assert_int_equal(relay_watcher_set_enabled(ww, false), 0);
	assert_false(relay_watcher_is_enabled(ww));
	passes(2);
	assert_int_equal(atomic_load(&sw->fired), 1);
	put(sv[1], "hello");
	passes(1);
	assert_int_equal(atomic_load(&sr->fired), 1);
	assert_int_equal(sr->bytes, 5);
	assert_int_equal(relay_watcher_set_enabled(ww, true), 0);
	passes(1);
	assert_int_equal(atomic_load(&sw->fired), 2);
	assert_int_equal(relay_object_destroy(ww), 0);
	put(sv[1], "again");
	passes(1);
	assert_int_equal(atomic_load(&sr->fired), 2);   /* the READ one lives on */
	assert_int_equal(relay_object_destroy(wr), 0);
	assert_int_equal(relay_object_destroy(sw), 0);
	assert_int_equal(relay_object_destroy(sr), 0);
	close(sv[0]);
	close(sv[1]);
}

static void test_W3_duplicate_refused_bad_args(void **state)
{
	(void)state;
	int p[2];
	assert_int_equal(pipe(p), 0);
	static support_diag d;   /* static: a failed assertion leaves it installed */
	support_diag_begin(&d);
	relay_watcher *a = NULL, *b = (relay_watcher *)(void *)0x1;
	assert_int_equal(relay_watcher_create(p[0], RELAY_WATCH_READ, NULL, &a), 0);
	assert_int_equal(relay_watcher_create(p[0], RELAY_WATCH_READ, NULL, &b), -EEXIST);
	assert_null(b);
	assert_int_equal(support_diag_count(&d), 1);
	assert_int_equal(relay_watcher_create(-1, RELAY_WATCH_READ, NULL, &b), -EINVAL);
	assert_int_equal(relay_watcher_create(p[0], 3, NULL, &b), -EINVAL);
	assert_int_equal(relay_watcher_fd(NULL), -EINVAL);
	assert_false(relay_watcher_is_enabled(NULL));
	assert_int_equal(relay_watcher_set_enabled(NULL, true), -EINVAL);
	/* A regular file is always ready: epoll refuses it. */
	char path[] = "/tmp/relay-watch-XXXXXX";
	int f = mkstemp(path);
	assert_true(f >= 0);
	unlink(path);
	assert_int_equal(relay_watcher_create(f, RELAY_WATCH_READ, NULL, &b), -EPERM);
	close(f);
	/* Disabled, the fd and type are still taken in this thread. */
	assert_int_equal(relay_watcher_set_enabled(a, false), 0);
	assert_int_equal(relay_watcher_create(p[0], RELAY_WATCH_READ, NULL, &b), -EEXIST);
	assert_int_equal(relay_object_destroy(a), 0);
	/* Destroyed, they are free again. */
	assert_int_equal(relay_watcher_create(p[0], RELAY_WATCH_READ, NULL, &b), 0);
	assert_int_equal(relay_object_destroy(b), 0);
	support_diag_end(&d);
	close(p[0]);
	close(p[1]);
}

static int toggle_from_elsewhere(void *data)
{
	return relay_watcher_set_enabled((relay_watcher *)data, false);
}

static void test_W4_enable_from_other_thread_refused(void **state)
{
	(void)state;
	int p[2];
	assert_int_equal(pipe(p), 0);
	relay_thread *t = support_thread_start("w4");
	relay_watcher *w = NULL;
	assert_int_equal(relay_watcher_create(p[0], RELAY_WATCH_READ, NULL, &w), 0);
	static support_diag d;   /* static: a failed assertion leaves it installed */
	support_diag_begin(&d);
	support_app *ctx = support_app_new();
	assert_int_equal(relay_object_move_to_thread(ctx, t), 0);
	int result = 0;
	assert_int_equal(relay_invoke_blocking(ctx, toggle_from_elsewhere, w, &result), 0);
	assert_int_equal(result, RELAY_EWRONGTHREAD);
	assert_int_equal(support_diag_count(&d), 1);
	assert_true(relay_watcher_is_enabled(w));
	support_diag_end(&d);
	assert_int_equal(relay_object_delete_later(ctx), 0);
	support_thread_stop(t);
	assert_int_equal(relay_object_destroy(w), 0);
	close(p[0]);
	close(p[1]);
}

/* Two fds ready in one pass; the first slot disables (or destroys) the
 * other watcher: it does not fire in that pass, nor later. */
static void disabled_in_pass(bool destroy)
{
	int a[2], b[2];
	assert_int_equal(pipe(a), 0);
	assert_int_equal(pipe(b), 0);
	sink *sa = sink_new(), *sb = sink_new();
	relay_watcher *wa = watch(a[0], RELAY_WATCH_READ, sa);
	relay_watcher *wb = watch(b[0], RELAY_WATCH_READ, sb);
	sa->victim = wb;
	sb->victim = wa;
	sa->destroy_victim = sb->destroy_victim = destroy;
	put(a[1], "1");
	put(b[1], "1");
	/* Both are reported by one epoll call; whichever fires first stops
	 * the other. */
	passes(1);
	assert_int_equal(atomic_load(&sa->fired) + atomic_load(&sb->fired), 1);
	passes(3);
	long fa = atomic_load(&sa->fired), fb = atomic_load(&sb->fired);
	assert_true((fa == 4 && fb == 0) || (fa == 0 && fb == 4));
	if (!destroy) {
		assert_int_equal(relay_object_destroy(wa), 0);
		assert_int_equal(relay_object_destroy(wb), 0);
	} else {
		assert_int_equal(relay_object_destroy(fa ? wa : wb), 0);
	}
	assert_int_equal(relay_object_destroy(sa), 0);
	assert_int_equal(relay_object_destroy(sb), 0);
	close(a[0]);
	close(a[1]);
	close(b[0]);
	close(b[1]);
}

static void test_W5_disabled_earlier_in_pass_does_not_fire(void **state)
{
	(void)state;
	disabled_in_pass(false);
}

static void test_W5_destroyed_earlier_in_pass_does_not_fire(void **state)
{
	(void)state;
	disabled_in_pass(true);
}

/* The writer hangs up: READ fires, the slot reads end of file and
 * disables; the loop then sleeps, it does not spin. */
static void test_W6_hangup_reported_as_read(void **state)
{
	(void)state;
	int p[2];
	assert_int_equal(pipe(p), 0);
	sink *s = sink_new();
	s->drain = true;
	s->disable_on_eof = true;
	relay_watcher *w = watch(p[0], RELAY_WATCH_READ, s);
	put(p[1], "bye");
	close(p[1]);
	assert_true(support_run_until_count(&s->fired, 2, SUPPORT_TIMEOUT_MS));
	assert_int_equal(s->bytes, 3);
	assert_false(relay_watcher_is_enabled(w));
	long fired = atomic_load(&s->fired);
	relay_loop_stats st0, st1;
	assert_int_equal(relay_thread_stats(relay_thread_current(), &st0), 0);
	assert_true(relay_loop_run_once(50) >= 0);
	assert_int_equal(relay_thread_stats(relay_thread_current(), &st1), 0);
	assert_int_equal(atomic_load(&s->fired), fired);
	assert_true(st1.passes - st0.passes <= 2);
	assert_int_equal(relay_object_destroy(w), 0);
	assert_int_equal(relay_object_destroy(s), 0);
	close(p[0]);
}

/* Misuse: the watched fd is closed while a dup keeps its file open and
 * readable. The watcher is disabled with a diagnostic, and the loop goes
 * back to sleeping (no spin). */
static void test_W7_closed_watched_fd_disabled_no_spin(void **state)
{
	(void)state;
	int p[2];
	assert_int_equal(pipe(p), 0);
	int keep = dup(p[0]);
	sink *s = sink_new();
	relay_watcher *w = watch(p[0], RELAY_WATCH_READ, s);
	put(p[1], "data");
	close(p[0]);
	static support_diag d;   /* static: a failed assertion leaves it installed */
	support_diag_begin(&d);
	passes(3);
	assert_false(relay_watcher_is_enabled(w));
	assert_true(support_diag_count(&d) >= 1);
	assert_int_equal(atomic_load(&s->fired), 0);
	relay_loop_stats st0, st1;
	assert_int_equal(relay_thread_stats(relay_thread_current(), &st0), 0);
	assert_true(relay_loop_run_once(50) >= 0);
	assert_int_equal(relay_thread_stats(relay_thread_current(), &st1), 0);
	assert_true(st1.passes - st0.passes <= 2);
	support_diag_end(&d);
	assert_int_equal(relay_object_destroy(w), 0);
	assert_int_equal(relay_object_destroy(s), 0);
	close(keep);
	close(p[1]);
}

/* Moved while its fd is readable: it fires in the new thread only. */
typedef struct mover {
	relay_object base;
	relay_watcher *w;
	relay_thread *to;
	atomic_int moved;
} mover;

static void test_W8_moved_while_readable(void **state)
{
	(void)state;
	int p[2];
	assert_int_equal(pipe(p), 0);
	relay_thread *t = support_thread_start("w8");
	sink *s = sink_new();
	s->drain = true;
	s->home = t;
	assert_int_equal(relay_object_move_to_thread(s, t), 0);
	relay_watcher *w = NULL;
	assert_int_equal(relay_watcher_create(p[0], RELAY_WATCH_READ, NULL, &w), 0);
	assert_int_equal(relay_connect(w, activated, s, on_activated), 0);
	put(p[1], "moving");
	/* No pass here: the fd is readable, not yet reported. */
	assert_int_equal(relay_object_move_to_thread(w, t), 0);
	assert_true(support_wait_count(&s->fired, 1, SUPPORT_TIMEOUT_MS));
	assert_int_equal(atomic_load(&s->wrong_thread), 0);
	assert_true(relay_watcher_is_enabled(w));
	passes(3);   /* nothing left here */
	put(p[1], "more");
	assert_true(support_wait_count(&s->fired, 2, SUPPORT_TIMEOUT_MS));
	assert_int_equal(atomic_load(&s->wrong_thread), 0);
	assert_int_equal(relay_object_delete_later(w), 0);
	assert_int_equal(relay_object_delete_later(s), 0);
	support_thread_stop(t);
	close(p[0]);
	close(p[1]);
}

/* Many watchers, all ready at once: each fires and drains. */
static void test_W9_many_watchers(void **state)
{
	(void)state;
	enum { N = 200 };
	int fds[N];
	relay_watcher *w[N];
	sink *s = sink_new();
	s->drain = true;
	for (int i = 0; i < N; i++) {
		fds[i] = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		assert_true(fds[i] >= 0);
		w[i] = watch(fds[i], RELAY_WATCH_READ, s);
	}
	uint64_t one = 1;
	for (int i = 0; i < N; i++)
		assert_true(write(fds[i], &one, sizeof one) == sizeof one);
	assert_true(support_run_until_count(&s->fired, N, SUPPORT_TIMEOUT_MS));
	passes(3);
	assert_int_equal(atomic_load(&s->fired), N);   /* each once: all drained */
	assert_int_equal(s->bytes, N * 8);
	for (int i = 0; i < N; i++) {
		assert_int_equal(relay_object_destroy(w[i]), 0);
		close(fds[i]);
	}
	assert_int_equal(relay_object_destroy(s), 0);
}

/* Enable/disable storm while a writer thread keeps the fd busy: no crash,
 * no event while disabled, all data read once left enabled. */
typedef struct storm {
	int fd;
	atomic_int stop;
	atomic_long written;
} storm;

static void *storm_writer(void *arg)
{
	storm *st = arg;
	while (!atomic_load(&st->stop)) {
		if (write(st->fd, "z", 1) == 1)
			atomic_fetch_add(&st->written, 1);
		sched_yield();
	}
	return NULL;
}

static void test_W10_enable_disable_storm(void **state)
{
	(void)state;
	int p[2];
	assert_int_equal(pipe(p), 0);
	assert_int_equal(fcntl(p[0], F_SETFL, O_NONBLOCK), 0);
	storm st = { .fd = p[1] };
	sink *s = sink_new();
	s->drain = true;
	relay_watcher *w = watch(p[0], RELAY_WATCH_READ, s);
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, storm_writer, &st), 0);
	int rounds = (int)support_param("WATCH_STORM", 3000);
	for (int i = 0; i < rounds; i++) {
		bool on = (i % 3) != 0;
		assert_int_equal(relay_watcher_set_enabled(w, on), 0);
		long f = atomic_load(&s->fired);
		passes(1);
		if (!on)
			assert_int_equal(atomic_load(&s->fired), f);
	}
	atomic_store(&st.stop, 1);
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_int_equal(relay_watcher_set_enabled(w, true), 0);
	int64_t end = support_now_ms() + SUPPORT_TIMEOUT_MS;
	while (s->bytes < atomic_load(&st.written) && support_now_ms() < end)
		passes(1);
	assert_int_equal(s->bytes, atomic_load(&st.written));
	assert_int_equal(relay_object_destroy(w), 0);
	assert_int_equal(relay_object_destroy(s), 0);
	close(p[0]);
	close(p[1]);
}

/* Embedded: a watched fd makes the loop fd readable; dispatch fires it;
 * drained, the loop fd is quiet again. */
static void test_W11_watcher_through_embedding(void **state)
{
	(void)state;
	int p[2];
	assert_int_equal(pipe(p), 0);
	assert_int_equal(relay_loop_attach(NULL), 0);
	sink *s = sink_new();
	s->drain = true;
	relay_watcher *w = watch(p[0], RELAY_WATCH_READ, s);
	int timeout;
	assert_int_equal(relay_loop_prepare(&timeout), 0);
	struct pollfd pf = { relay_loop_fd(), POLLIN, 0 };
	assert_int_equal(poll(&pf, 1, 0), 0);
	put(p[1], "e");
	assert_int_equal(poll(&pf, 1, SUPPORT_TIMEOUT_MS), 1);
	assert_true(relay_loop_dispatch(-1) >= 1);
	assert_int_equal(atomic_load(&s->fired), 1);
	assert_int_equal(relay_loop_prepare(&timeout), 0);
	assert_int_equal(poll(&pf, 1, 0), 0);
	assert_int_equal(relay_loop_detach(), 0);
	assert_int_equal(relay_object_destroy(w), 0);
	assert_int_equal(relay_object_destroy(s), 0);
	close(p[0]);
	close(p[1]);
}

/* A thread that ends with watchers enabled: they live on unregistered,
 * and can be destroyed afterwards. */
static int make_watcher(void *data)
{
	int *fd = data;
	relay_watcher *w = NULL;
	int rc = relay_watcher_create(*fd, RELAY_WATCH_READ, NULL, &w);
	if (rc == 0)
		rc = relay_object_delete_later(w) == 0 ? 0 : -1;
	return rc;
}

static void test_W12_thread_ends_with_watchers(void **state)
{
	(void)state;
	int p[2];
	assert_int_equal(pipe(p), 0);
	relay_thread *t = support_thread_start("w12");
	support_app *ctx = support_app_new();
	assert_int_equal(relay_object_move_to_thread(ctx, t), 0);
	int result = -1;
	assert_int_equal(relay_invoke_blocking(ctx, make_watcher, &p[0], &result), 0);
	assert_int_equal(result, 0);
	put(p[1], "x");
	assert_int_equal(relay_object_delete_later(ctx), 0);
	support_thread_stop(t);
	close(p[0]);
	close(p[1]);
}

/* A watcher of a stopped thread, deleted later from main: main serves
 * that loop and the watcher leaves its own thread's set (it once left
 * main's and freed a registration still in its thread's list: ASan). */
static relay_watcher *w13;

static int make_w13(void *data)
{
	return relay_watcher_create(*(int *)data, RELAY_WATCH_READ, NULL, &w13);
}

static void test_W13_watcher_of_stopped_thread_deleted_from_main(void **state)
{
	(void)state;
	int p[2];
	assert_int_equal(pipe(p), 0);
	relay_thread *t = support_thread_start("w13");
	support_app *ctx = support_app_new();
	assert_int_equal(relay_object_move_to_thread(ctx, t), 0);
	int result = -1;
	assert_int_equal(relay_invoke_blocking(ctx, make_w13, &p[0], &result), 0);
	assert_int_equal(result, 0);
	assert_int_equal(relay_thread_stop(t, SUPPORT_TIMEOUT_MS), 0);
	assert_int_equal(relay_object_delete_later(w13), 0);   /* runs here, now */
	assert_int_equal(relay_thread_start(t), 0);            /* its set, used again */
	put(p[1], "x");
	assert_int_equal(relay_invoke_blocking(ctx, make_w13, &p[0], &result), 0);
	assert_int_equal(result, 0);                           /* the fd is free again */
	assert_int_equal(relay_object_delete_later(w13), 0);
	assert_int_equal(relay_object_delete_later(ctx), 0);
	support_thread_stop(t);
	close(p[0]);
	close(p[1]);
}

/* The watched fd is closed and its number reused for another file: the
 * watcher is not fired for the new file, the loop sleeps, and a watcher
 * of the new file on that number works. */
static void test_W14_closed_fd_number_reused(void **state)
{
	(void)state;
	int p[2];
	assert_int_equal(pipe(p), 0);
	sink *s = sink_new();
	relay_watcher *w = watch(p[0], RELAY_WATCH_READ, s);
	put(p[1], "old");
	close(p[0]);
	int q[2];
	assert_int_equal(pipe(q), 0);   /* takes p[0]'s number */
	static support_diag d;   /* static: a failed assertion leaves it installed */
	support_diag_begin(&d);
	passes(3);
	support_diag_end(&d);
	/* Closed with no dup open, its file left the epoll set: it never
	 * fires again (nor for the file that took its number). */
	assert_int_equal(atomic_load(&s->fired), 0);
	relay_loop_stats st0, st1;
	assert_int_equal(relay_thread_stats(relay_thread_current(), &st0), 0);
	assert_true(relay_loop_run_once(50) >= 0);
	assert_int_equal(relay_thread_stats(relay_thread_current(), &st1), 0);
	assert_true(st1.passes - st0.passes <= 2);
	/* A watcher for the new file on that number works. */
	sink *s2 = sink_new();
	s2->drain = true;
	relay_watcher *w2 = watch(q[0], RELAY_WATCH_READ, s2);
	put(q[1], "new");
	assert_true(support_run_until_count(&s2->fired, 1, SUPPORT_TIMEOUT_MS));
	assert_int_equal(relay_object_destroy(w2), 0);
	assert_int_equal(relay_object_destroy(w), 0);
	assert_int_equal(relay_object_destroy(s), 0);
	assert_int_equal(relay_object_destroy(s2), 0);
	close(p[1]);
	close(q[0]);
	close(q[1]);
}

/* A slot that runs a nested pass before reading its fd is not fired again
 * inside itself. */
static int reentry_depth, reentry_max;

static void on_reenter(sink *self, const int *fd)
{
	(void)self;
	reentry_depth++;
	if (reentry_depth > reentry_max)
		reentry_max = reentry_depth;
	if (reentry_depth < 50)
		relay_process_events();
	char c;
	assert_true(read(*fd, &c, 1) == 1);
	reentry_depth--;
}

static void test_W15_watcher_not_reentered_by_nested_pass(void **state)
{
	(void)state;
	int p[2];
	assert_int_equal(pipe(p), 0);
	sink *s = sink_new();
	relay_watcher *w = NULL;
	assert_int_equal(relay_watcher_create(p[0], RELAY_WATCH_READ, NULL, &w), 0);
	assert_int_equal(relay_connect(w, activated, s, on_reenter), 0);
	put(p[1], "ab");
	passes(3);
	assert_int_equal(reentry_max, 1);
	assert_int_equal(relay_object_destroy(w), 0);
	assert_int_equal(relay_object_destroy(s), 0);
	close(p[0]);
	close(p[1]);
}

int main(int argc, char **argv)
{
	support_set_args(argc, argv);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_W1_read_level_triggered),
		cmocka_unit_test(test_W2_write_and_read_on_one_fd),
		cmocka_unit_test(test_W3_duplicate_refused_bad_args),
		cmocka_unit_test(test_W4_enable_from_other_thread_refused),
		cmocka_unit_test(test_W5_disabled_earlier_in_pass_does_not_fire),
		cmocka_unit_test(test_W5_destroyed_earlier_in_pass_does_not_fire),
		cmocka_unit_test(test_W6_hangup_reported_as_read),
		cmocka_unit_test(test_W7_closed_watched_fd_disabled_no_spin),
		cmocka_unit_test(test_W8_moved_while_readable),
		cmocka_unit_test(test_W9_many_watchers),
		cmocka_unit_test(test_W10_enable_disable_storm),
		cmocka_unit_test(test_W11_watcher_through_embedding),
		cmocka_unit_test(test_W12_thread_ends_with_watchers),
		cmocka_unit_test(test_W13_watcher_of_stopped_thread_deleted_from_main),
		cmocka_unit_test(test_W14_closed_fd_number_reused),
		cmocka_unit_test(test_W15_watcher_not_reentered_by_nested_pass),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
