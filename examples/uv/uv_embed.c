/*
 * uv_embed.c - relay inside a libuv loop. The main thread belongs to
 * uv_run; relay's loop of that thread is driven by three libuv handles,
 * with no helper library (the embedding API is not GLib-shaped):
 *
 *	uv_prepare_t  before libuv polls: relay_loop_prepare arms relay's
 *	              wake-up and gives its timeout; a uv_timer_t is
 *	              (re)started with it, so libuv's poll waits no longer
 *	uv_poll_t     relay_loop_fd() readable: work arrived while libuv
 *	              slept (a post from the worker, a blocking call, a quit)
 *	uv_check_t    after libuv polled: relay_loop_dispatch runs what is
 *	              ready, 8 ms at most, so libuv's own work keeps its turn
 *
 * relay_host.quit stops libuv (uv_stop) when relay_main_quit reaches the
 * main thread.
 *
 * What runs on top: a relay single shot in the main thread fires 10 ms
 * into uv_run (through the wake timer: nothing else wakes libuv then) and
 * starts a libuv heartbeat timer, the main thread's own work, and the
 * worker's thread. Then the worker model of examples/worker.c: a worker
 * object moved into a relay_thread, started by the thread's started
 * signal, counts the primes below 1000000 in ten chunks, emits
 * progress(int percent) after each and result(struct tally) at the end,
 * and makes three relay_invoke_blocking calls into the main thread, which
 * answer while libuv runs. The output shows both loops' work interleave.
 * When the result arrives the main object calls relay_main_quit(); then
 * the program detaches, shuts relay down, closes libuv and checks what
 * happened.
 *
 * Build: examples/uv/CMakeLists.txt (needs libuv1-dev: bash scripts/need).
 * Run:   ./uv_embed    exit code 0 when every check passed, 1 otherwise.
 */
#define _POSIX_C_SOURCE 200809L /* uv.h uses pthread_rwlock_t; flockfile */

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <uv.h>

#include "relay.h"

#define LIMIT 1000000L          /* count the primes below this */
#define EXPECTED_PRIMES 78498L  /* pi(10^6), the known answer */
#define CHUNKS 10               /* one progress signal per chunk */
#define ASK_EVERY 3             /* a blocking call after every third chunk */
#define ASKS (CHUNKS / ASK_EVERY)
#define START_MS 10             /* the relay single shot that starts it all */
#define HEARTBEAT_MS 5          /* the main thread's own libuv timer */
/* Longest stretch relay runs in one dispatch before libuv gets its turn
 * back: half a 60 Hz frame, as a GUI host would choose. */
#define DISPATCH_BUDGET_MS 8
#define SHUTDOWN_MS 5000

/* Print one line prefixed with the name of the thread running it. */
static void say(const char *fmt, ...)
{
	char name[16] = "?";
	relay_thread *self = relay_thread_current();
	va_list ap;

	if (!self || relay_thread_name(self, name, sizeof(name)) < 0)
		snprintf(name, sizeof(name), "?");
	/* One locked line: the two threads' lines never mix. */
	va_start(ap, fmt);
	flockfile(stdout);
	printf("[%-6s] ", name);
	vprintf(fmt, ap);
	putchar('\n');
	fflush(stdout);
	funlockfile(stdout);
	va_end(ap);
}

/* Report a failed relay or libuv call; true when rc is an error. */
static bool relay_failed(int rc, const char *what)
{
	if (rc >= 0)
		return false;
	fprintf(stderr, "uv_embed: %s: %s\n", what, relay_strerror(rc));
	return true;
}

static bool uv_failed(int rc, const char *what)
{
	if (rc >= 0)
		return false;
	fprintf(stderr, "uv_embed: %s: %s\n", what, uv_strerror(rc));
	return true;
}

/* ---- the host: libuv drives the main thread's relay loop -------------- */

struct host {
	uv_loop_t loop;
	uv_poll_t fd_watch;      /* relay_loop_fd(), UV_READABLE */
	uv_prepare_t prepare;    /* relay_loop_prepare, restarts wake */
	uv_timer_t wake;         /* bounds libuv's poll by relay's timeout */
	uv_check_t check;        /* relay_loop_dispatch */
	uv_timer_t heartbeat;    /* the main thread's own work */
	bool quit_called;        /* relay_host.quit ran */
	int quit_code;
	bool broken;             /* a call from a callback failed */
};

/* Something failed inside a callback: stop libuv, main reports it. */
static void host_break(struct host *h)
{
	h->broken = true;
	uv_stop(&h->loop);
}

/* The wake timer only cuts libuv's poll short; the check handle, which
 * runs after every poll, does relay's work. */
static void on_wake(uv_timer_t *timer)
{
	(void)timer;
}

/*
 * Right before libuv computes its poll timeout and sleeps. Every libuv
 * poll is preceded by this, which is what relay asks (relay.h: no
 * wake-up is lost if every wait is preceded by a prepare): work posted
 * before relay_loop_prepare is reported by it, work posted after makes
 * relay_loop_fd() readable, and that wakes the poll.
 *
 * The timer is restarted here, on every iteration, because relay's next
 * deadline changes all the time: a relay timer started or stopped by a
 * slot, a single shot, a dispatch cut short by its budget (ready again:
 * timeout 0). A libuv timer set once would be stale; libuv computes its
 * poll timeout from its timers right after the prepare handles ran, so
 * the one set here is the one that counts.
 */
static void on_prepare(uv_prepare_t *prepare)
{
	struct host *h = prepare->data;
	int timeout = -1;
	int ready = relay_loop_prepare(&timeout);

	if (relay_failed(ready, "relay_loop_prepare")) {
		host_break(h);
		return;
	}
	if (ready)
		timeout = 0;                /* work now: libuv must not sleep */
	if (timeout < 0) {
		uv_timer_stop(&h->wake);    /* no relay timer: the fd alone wakes us */
		return;
	}
	/* Counted from libuv's cached loop time, the clock its poll timeout
	 * is computed from: libuv sleeps at most `timeout` ms. */
	uv_timer_start(&h->wake, on_wake, (uint64_t)timeout, 0);
}

/* The fd woke libuv. Nothing to do here: the check handle dispatches
 * right after the poll phase, whatever woke it. */
static void on_fd(uv_poll_t *watch, int status, int events)
{
	(void)events;
	if (uv_failed(status, "poll on relay_loop_fd"))
		host_break(watch->data);
}

/* Right after libuv's poll: run relay's ready work, within the budget;
 * what is left, prepare reports as ready on the next iteration. A
 * relay_main_quit reaches relay_host.quit from in here. */
static void on_check(uv_check_t *check)
{
	if (relay_failed(relay_loop_dispatch(DISPATCH_BUDGET_MS), "relay_loop_dispatch"))
		host_break(check->data);
}

/* relay_host.quit: relay_main_quit (from any thread) arrives here, in the
 * main thread, from on_check's dispatch. uv_stop ends uv_run after this
 * iteration. */
static void host_quit(void *user, int code)
{
	struct host *h = user;

	h->quit_called = true;
	h->quit_code = code;
	uv_stop(&h->loop);
}

/* ---- app: lives in the main thread, receives the worker's signals ---- */

/* What the worker sends at the end. */
struct tally {
	long primes;
	int asked;                  /* blocking calls that returned 0 */
};

struct app {
	relay_object base;
	struct host *host;          /* main thread only, as everything here */
	relay_thread *thread;       /* the worker's */
	uint64_t t0;                /* uv_hrtime() as uv_run began */
	bool started;               /* app_start started the worker's thread */
	long heartbeats;
	int progress_seen;
	bool progress_in_order;
	int questions_answered;
	bool got_result;
	struct tally result;
};

static const relay_class app_class = {
	.name = "app",
	.flags = RELAY_CLASS_MAIN_THREAD_ONLY,
	.size = sizeof(struct app),
};

/* The main thread's own libuv work, between relay's. */
static void on_heartbeat(uv_timer_t *timer)
{
	struct app *app = timer->data;

	app->heartbeats++;
}

/* Single-shot slot, main thread: a relay timer, fired inside libuv. */
static void app_start(struct app *self)
{
	unsigned long ms = (unsigned long)((uv_hrtime() - self->t0) / 1000000u);

	say("relay timer fired %lu ms into uv_run: starting the heartbeat and the worker", ms);
	if (uv_failed(uv_timer_start(&self->host->heartbeat, on_heartbeat, 0, HEARTBEAT_MS),
		      "uv_timer_start(heartbeat)") ||
	    relay_failed(relay_thread_start(self->thread), "relay_thread_start"))
		host_break(self->host);
	else
		self->started = true;
}

/* Slot, main thread (queued from the worker). */
static void app_on_progress(struct app *self, const int *percent)
{
	int expected = (self->progress_seen + 1) * 100 / CHUNKS;

	if (*percent != expected)
		self->progress_in_order = false;
	self->progress_seen++;
	say("progress %3d%%   (the main thread's heartbeat: %ld)", *percent, self->heartbeats);
}

/* Slot, main thread: the worker is done; end the program's loop. */
static void app_on_result(struct app *self, const struct tally *t)
{
	self->result = *t;
	self->got_result = true;
	say("result: %ld primes below %ld; quitting", t->primes, LIMIT);
	relay_failed(relay_main_quit(), "relay_main_quit");
}

/* Run by relay_invoke_blocking in the main thread, inside a dispatch,
 * while the worker waits: the heartbeat count, or -1 if relay ran it in
 * the wrong thread. */
static int app_answer(void *data)
{
	struct app *app = data;

	if (!relay_is_main_thread())
		return -1;
	app->questions_answered++;
	return (int)app->heartbeats;
}

/* ---- worker: lives in the relay_thread, does the counting ------------- */

struct worker {
	relay_object base;
	RELAY_SIGNAL(progress, int);
	RELAY_SIGNAL(result, struct tally);
	struct app *app;            /* set before the thread starts; read only */
};

static const relay_class worker_class = {
	.name = "worker",
	.size = sizeof(struct worker),
};

static bool is_prime(long n)
{
	if (n < 2)
		return false;
	if (n % 2 == 0)
		return n == 2;
	for (long d = 3; d * d <= n; d += 2)
		if (n % d == 0)
			return false;
	return true;
}

/* Ask the main thread a question and wait for the answer: the call is
 * queued to the main thread's relay loop, so it wakes libuv through the
 * fd, runs in on_check's dispatch, and the worker goes on after it. */
static void worker_ask(struct worker *self, struct tally *t)
{
	int answer = 0;
	int rc = relay_invoke_blocking(self->app, app_answer, self->app, &answer);

	if (relay_failed(rc, "relay_invoke_blocking") || answer < 0)
		return;
	t->asked++;
	say("blocking call %d returned: the main thread's heartbeat is at %d", t->asked, answer);
}

/* Slot, worker thread: connected to the thread's started signal. */
static void worker_run(struct worker *self)
{
	struct tally t = { 0 };

	say("counting the primes below %ld in %d chunks", LIMIT, CHUNKS);
	for (int c = 0; c < CHUNKS; c++) {
		long lo = LIMIT * c / CHUNKS, hi = LIMIT * (c + 1) / CHUNKS;
		int percent = (c + 1) * 100 / CHUNKS;

		for (long n = lo; n < hi; n++)
			t.primes += is_prime(n);
		relay_failed(relay_emit(self, progress, &percent), "emit progress");
		if ((c + 1) % ASK_EVERY == 0)
			worker_ask(self, &t);
	}
	relay_failed(relay_emit(self, result, &t), "emit result");
}

/* ---- main --------------------------------------------------------------- */

/* libuv's handles on the main thread's relay loop; the heartbeat is
 * initialised here and started by app_start. */
static int host_start(struct host *h, struct app *app)
{
	int fd = relay_loop_fd();
	int rc;

	if (relay_failed(fd, "relay_loop_fd"))
		return fd;
	/* One poll handle for the fd, registered once (libuv: several active
	 * handles on one fd busy-loop). */
	if (uv_failed(rc = uv_poll_init(&h->loop, &h->fd_watch, fd), "uv_poll_init") ||
	    uv_failed(rc = uv_prepare_init(&h->loop, &h->prepare), "uv_prepare_init") ||
	    uv_failed(rc = uv_timer_init(&h->loop, &h->wake), "uv_timer_init") ||
	    uv_failed(rc = uv_check_init(&h->loop, &h->check), "uv_check_init") ||
	    uv_failed(rc = uv_timer_init(&h->loop, &h->heartbeat), "uv_timer_init"))
		return rc;
	h->fd_watch.data = h->prepare.data = h->wake.data = h->check.data = h;
	h->heartbeat.data = app;
	if (uv_failed(rc = uv_poll_start(&h->fd_watch, UV_READABLE, on_fd), "uv_poll_start") ||
	    uv_failed(rc = uv_prepare_start(&h->prepare, on_prepare), "uv_prepare_start") ||
	    uv_failed(rc = uv_check_start(&h->check, on_check), "uv_check_start"))
		return rc;
	return 0;
}

/* Close every handle that was initialised; the close callbacks run in
 * one more uv_run, which returns once they have. */
static void host_close(struct host *h)
{
	uv_handle_t *handles[] = {
		(uv_handle_t *)&h->fd_watch, (uv_handle_t *)&h->prepare,
		(uv_handle_t *)&h->wake, (uv_handle_t *)&h->check,
		(uv_handle_t *)&h->heartbeat,
	};

	for (size_t i = 0; i < sizeof(handles) / sizeof(handles[0]); i++)
		if (handles[i]->type != UV_UNKNOWN_HANDLE && !uv_is_closing(handles[i]))
			uv_close(handles[i], NULL);
	uv_run(&h->loop, UV_RUN_DEFAULT);
}

/* The worker in its thread, wired as in examples/worker.c; app_start
 * starts the thread. */
static int wire_worker(struct app *app, relay_thread **thread, struct worker **worker)
{
	int rc;

	if (relay_failed(rc = relay_thread_create("worker", NULL, thread), "relay_thread_create") ||
	    relay_failed(rc = relay_object_new(worker, &worker_class, NULL), "relay_object_new"))
		return rc;
	app->thread = *thread;
	(*worker)->app = app;
	if (relay_failed(rc = relay_object_move_to_thread(*worker, *thread), "move_to_thread") ||
	    relay_failed(rc = relay_connect(*thread, started, *worker, worker_run), "connect started") ||
	    relay_failed(rc = relay_connect(*worker, progress, app, app_on_progress),
			 "connect progress") ||
	    relay_failed(rc = relay_connect(*worker, result, app, app_on_result), "connect result") ||
	    /* The worker is destroyed by its own thread, after its result. */
	    relay_failed(rc = relay_connect(*worker, result, *worker, relay_slot_delete_later),
			 "connect delete_later") ||
	    relay_failed(rc = relay_single_shot(START_MS, app, app_start), "relay_single_shot"))
		return rc;
	return 0;
}

/* A worker whose thread never started does not delete itself: destroy
 * it here if it still lives in this thread, else delete it later, which
 * relay does when its thread goes. */
static void discard_worker(struct worker *worker)
{
	if (relay_object_thread(worker) == relay_thread_current())
		relay_failed(relay_object_destroy(worker), "relay_object_destroy(worker)");
	else
		relay_failed(relay_object_delete_later(worker), "delete_later(worker)");
}

/* Did everything happen as it should? Prints one line per failed check. */
static bool checks_pass(const struct host *h, const struct app *app)
{
	bool ok = true;

#define CHECK(cond, what) \
	do { \
		if (!(cond)) { \
			fprintf(stderr, "uv_embed: check failed: %s\n", what); \
			ok = false; \
		} \
	} while (0)
	CHECK(!h->broken, "no relay or libuv call failed in a callback");
	CHECK(app->started, "a relay single shot fired inside libuv, started the worker");
	CHECK(h->quit_called && h->quit_code == 0, "relay_main_quit reached relay_host.quit");
	CHECK(app->progress_seen == CHUNKS, "every progress signal arrived");
	CHECK(app->progress_in_order, "progress arrived in order");
	CHECK(app->got_result && app->result.primes == EXPECTED_PRIMES, "the result is right");
	CHECK(app->result.asked == ASKS && app->questions_answered == ASKS,
	      "every blocking call returned, answered in the main thread");
	/* Started due at once, the heartbeat runs in uv_run's next timer
	 * phase, before any later relay dispatch could deliver the result:
	 * at least one beat, however fast the worker. */
	CHECK(app->heartbeats > 0, "the main thread's libuv timer ran");
#undef CHECK
	return ok;
}

int main(void)
{
	static struct host host;    /* zeroed: handle types UV_UNKNOWN_HANDLE */
	relay_host hooks = { .quit = host_quit, .user = &host };
	struct app *app = NULL;
	relay_thread *thread = NULL;
	struct worker *worker = NULL;
	bool ok = false;

	if (uv_failed(uv_loop_init(&host.loop), "uv_loop_init"))
		return 1;
	if (relay_failed(relay_object_new(&app, &app_class, NULL), "relay_object_new(app)"))
		goto out_loop;
	app->host = &host;
	app->progress_in_order = true;
	/* From here libuv drives this thread's relay loop, and the thread
	 * serves blocking calls (they wait for libuv to dispatch them). */
	if (relay_failed(relay_loop_attach(&hooks), "relay_loop_attach"))
		goto out_app;
	say("libuv %s drives this thread's relay loop (fd %d)", uv_version_string(),
	    relay_loop_fd());
	if (host_start(&host, app) == 0 && wire_worker(app, &thread, &worker) == 0) {
		app->t0 = uv_hrtime();
		/* Returns when host_quit (or a failure) calls uv_stop. */
		ok = !uv_failed(uv_run(&host.loop, UV_RUN_DEFAULT), "uv_run");
	}
	if (worker && !app->started)
		discard_worker(worker);
	/* The host no longer drives this loop (a blocking call that still
	 * came would be refused, not left hanging); then stop the worker's
	 * thread and run what it sent back, as relay_main_run does after its
	 * loop. */
	relay_failed(relay_loop_detach(), "relay_loop_detach");
	relay_failed(relay_main_shutdown(SHUTDOWN_MS), "relay_main_shutdown");
	say("uv_run returned; relay detached and shut down; %ld heartbeats in all",
	    app->heartbeats);
	ok = ok && checks_pass(&host, app);
	/* Destroying the handle joins the worker's OS thread, which hands its
	 * queue to this thread back as it exits - possibly after
	 * relay_main_shutdown returned. One more pass frees that queue and
	 * relay_release_caches the spare chunks: valgrind finds nothing of
	 * relay's at exit. */
	if (thread && relay_failed(relay_thread_destroy(thread), "relay_thread_destroy"))
		ok = false;
	relay_failed(relay_process_events(), "relay_process_events");
	relay_failed(relay_release_caches(), "relay_release_caches");
	host_close(&host);
out_app:
	if (relay_failed(relay_object_destroy(app), "relay_object_destroy(app)"))
		ok = false;
out_loop:
	if (uv_failed(uv_loop_close(&host.loop), "uv_loop_close"))
		ok = false;
	say("%s", ok ? "all checks passed" : "FAILED");
	return ok ? 0 : 1;
}
