/*
 * progress.c - the pattern users build from the seed's worker model: a
 * CPU-bound job in a worker thread reporting progress to the main thread,
 * which draws it, with a clean shutdown and Ctrl-C.
 *
 *	progress [N]	count the primes below N (default 20000000)
 *
 * The worker counts primes by trial division, one chunk of numbers at a
 * time. Between chunks it emits progress(int percent) when the percentage
 * changed and polls relay_interruption_requested(); at the end it emits
 * finished(struct prime_result). Both signals reach the main thread as
 * queued events with a copy of the payload: the main thread's "ui" object
 * draws a progress bar (when stderr is a terminal; otherwise a line per
 * 10%) and prints the result.
 *
 * Shutdown, as in Qt:
 *	worker.finished -> thread.quit          (relay_slot_quit)
 *	thread.finished -> worker.deleteLater   (relay_slot_delete_later)
 *	thread.finished -> ui: quit the main loop
 * then main stops and destroys the thread and returns.
 *
 * Ctrl-C requests interruption: the worker stops at the next chunk and
 * reports a partial result. Exit code 0 when done, 130 when interrupted
 * (128 + SIGINT, as a shell reports it), 1 on a relay error, 2 on bad
 * arguments.
 */
#define _POSIX_C_SOURCE 200809L /* sigaction, isatty */

#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "relay.h"

#define DEFAULT_LIMIT 20000000u

/* Numbers tested per chunk: about 5 ms of work for small numbers, 30 ms
 * near 2^32, so Ctrl-C is obeyed well within a human's patience and the
 * interruption poll costs nothing next to the chunk. */
#define CHUNK 65536u

/* pi(2^16) = 6542 primes below 2^16 (6541 odd ones): enough trial
 * divisors for any 32-bit n. */
#define MAX_BASE_PRIMES 6542

#define BAR_WIDTH 40
#define SIGINT_POLL_MS 50
#define EXIT_INTERRUPTED 130

/* Report a refused relay call; true when rc is an error. */
static bool failed(int rc, const char *what)
{
	if (rc >= 0)
		return false;
	fprintf(stderr, "progress: %s: %s\n", what, relay_strerror(rc));
	return true;
}

/* ======================================================================
 * Counting primes (worker thread)
 * ====================================================================== */

struct prime_result {
	uint64_t count;         /* primes below limit_reached */
	uint64_t limit_reached; /* every number below this one was tested */
	bool interrupted;       /* stopped before the limit */
};

/* The odd primes up to sqrt of the largest candidate. */
struct base_primes {
	uint16_t p[MAX_BASE_PRIMES];
	size_t count;
};

static uint32_t isqrt32(uint32_t n)
{
	uint32_t r = 0;

	while ((uint64_t)(r + 1) * (r + 1) <= n)
		r++;
	return r;
}

/* n odd, n >= 3, every prime divisor candidate up to sqrt(n) in b. */
static bool is_odd_prime(uint32_t n, const struct base_primes *b)
{
	for (size_t i = 0; i < b->count; i++) {
		uint32_t p = b->p[i];

		if (p * p > n)	/* p < 2^16: no overflow */
			return true;
		if (n % p == 0)
			return false;
	}
	return true;
}

/* Built by trial division too: a few thousand numbers, instant. */
static void base_primes_init(struct base_primes *b, uint32_t max)
{
	b->count = 0;
	for (uint32_t q = 3; q <= max && b->count < MAX_BASE_PRIMES; q += 2)
		if (is_odd_prime(q, b))
			b->p[b->count++] = (uint16_t)q;
}

/* Primes in [lo, hi). */
static uint64_t count_primes(uint32_t lo, uint32_t hi, const struct base_primes *b)
{
	uint64_t count = 0;

	if (lo <= 2 && hi > 2)
		count++;
	if (lo < 3)
		lo = 3;
	/* n < hi <= UINT32_MAX and n odd: n + 2 cannot wrap. */
	for (uint32_t n = lo | 1; n < hi; n += 2)
		count += is_odd_prime(n, b);
	return count;
}

/* ======================================================================
 * The worker object: lives in the worker thread once moved there
 * ====================================================================== */

struct prime_worker {
	relay_object base;
	RELAY_SIGNAL(progress, int);                    /* percent, 0..100 */
	RELAY_SIGNAL(finished, struct prime_result);
	uint32_t limit;
	struct base_primes primes;
};

static const relay_class prime_worker_class = {
	.name = "PrimeWorker",
	.size = sizeof(struct prime_worker),   /* relay_object_new checks it */
};

static int percent_of(uint64_t done, uint64_t total)
{
	return total ? (int)(done * 100 / total) : 100;
}

/* Emit progress only when the percentage changed: at most 101 events,
 * whatever N is, so the main thread is never flooded. */
static void report_progress(struct prime_worker *self, int percent, int *last)
{
	if (percent == *last)
		return;
	*last = percent;
	failed(relay_emit(self, progress, &percent), "emit progress");
}

/* The slot connected to thread.started: the whole job, in the worker
 * thread. Its loop runs only after this returns, which is fine: nothing
 * needs to reach the worker meanwhile, and the interruption flag is
 * polled, not delivered as an event. */
static void prime_worker_run(struct prime_worker *self)
{
	struct prime_result res = { 0 };
	int last = -1;
	uint32_t lo, hi;

	base_primes_init(&self->primes, isqrt32(self->limit ? self->limit - 1 : 0));
	for (lo = 0; lo < self->limit; lo = hi) {
		if (relay_interruption_requested()) {
			res.interrupted = true;
			break;
		}
		hi = self->limit - lo > CHUNK ? lo + CHUNK : self->limit;
		res.count += count_primes(lo, hi, &self->primes);
		res.limit_reached = hi;
		report_progress(self, percent_of(hi, self->limit), &last);
	}
	if (!res.interrupted)
		report_progress(self, 100, &last);

	/* If finished cannot be queued (out of memory), nobody would quit
	 * this thread: quit it here so the program still ends (exit 1). */
	if (failed(relay_emit(self, finished, &res), "emit finished"))
		failed(relay_thread_quit(relay_thread_current()), "relay_thread_quit");
}

/* ======================================================================
 * SIGINT
 *
 * Two clean ways exist, since relay functions are not async-signal-safe:
 *  (a) a handler that only sets a flag, polled by a timer in the main
 *      loop, which then calls relay_thread_request_interruption;
 *  (b) SIGINT blocked in every thread and a dedicated thread in
 *      sigwait() calling relay_thread_request_interruption.
 * We use (a). (b) needs SIGINT blocked before relay starts any thread,
 * and a third thread whose end must be arranged (sigwait never returns by
 * itself: pthread_kill and join at exit) and which relay adopts as soon
 * as it calls it. (a) keeps every relay call in the two threads we
 * already have, at the cost of 20 cheap wake-ups a second while the job
 * runs and up to 50 ms of latency, which no human notices.
 * ====================================================================== */

static volatile sig_atomic_t sigint_seen;

static void on_sigint(int sig)
{
	(void)sig;
	sigint_seen = 1;
}

/* No SA_RESETHAND ("a second Ctrl-C kills"): one request can arrive
 * twice - timeout(1) signals both the child and its process group - and
 * the second copy would kill us before the partial result is printed. A
 * chunk takes milliseconds, so a stubborn user is never kept waiting; Ctrl-\
 * remains for the impatient. */
static int install_sigint_handler(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_sigint;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	return sigaction(SIGINT, &sa, NULL);
}

/* ======================================================================
 * The ui object: lives in the main thread, like a window in Qt
 * ====================================================================== */

struct ui {
	relay_object base;
	relay_thread *thread;       /* the worker's, for interruption */
	relay_timer *sigint_poll;   /* child of ui */
	uint64_t limit;
	bool tty;                   /* stderr is a terminal: draw a bar */
	bool bar_open;              /* a bar line is on screen, unterminated */
	bool interrupt_sent;
	int shown;                  /* last percentage drawn, -1 none */
	bool have_result;
	struct prime_result result;
};

/* Main-thread-only, as a GUI object would be: relay refuses to move it. */
static const relay_class ui_class = {
	.name = "ui",
	.flags = RELAY_CLASS_MAIN_THREAD_ONLY,
	.size = sizeof(struct ui),
};

static void draw_bar(int percent)
{
	char bar[BAR_WIDTH + 1];
	int filled = percent * BAR_WIDTH / 100;

	memset(bar, '#', (size_t)filled);
	memset(bar + filled, '.', (size_t)(BAR_WIDTH - filled));
	bar[BAR_WIDTH] = '\0';
	fprintf(stderr, "\r[%s] %3d%%", bar, percent);
	fflush(stderr);
}

/* Slot for worker.progress, queued: runs in the main thread. */
static void ui_on_progress(struct ui *self, const int *percent)
{
	if (self->tty) {
		draw_bar(*percent);
		self->bar_open = true;
	} else if (*percent / 10 > self->shown / 10) {
		/* Not a terminal (a pipe, a log): a line per 10%. */
		fprintf(stderr, "progress: %3d%%\n", *percent / 10 * 10);
	}
	self->shown = *percent;
}

static void ui_print_result(const struct prime_result *r, uint64_t limit)
{
	if (r->interrupted)
		printf("interrupted at %d%%: %" PRIu64 " primes below %" PRIu64 "\n",
		       percent_of(r->limit_reached, limit), r->count, r->limit_reached);
	else
		printf("%" PRIu64 " primes below %" PRIu64 "\n", r->count, r->limit_reached);
	fflush(stdout);
}

/* Slot for worker.finished, queued: runs in the main thread. */
static void ui_on_finished(struct ui *self, const struct prime_result *r)
{
	if (self->bar_open) {
		fputc('\n', stderr);
		self->bar_open = false;
	}
	self->result = *r;
	self->have_result = true;
	ui_print_result(r, self->limit);
	/* No more need to watch for Ctrl-C. */
	failed(relay_timer_stop(self->sigint_poll), "relay_timer_stop");
}

/* Slot for thread.finished, queued: the worker thread is over (and the
 * worker deleted), so the application can end. */
static void ui_on_thread_finished(struct ui *self)
{
	(void)self;
	failed(relay_main_quit(), "relay_main_quit");
}

/* Slot for the timer: the main-thread half of the SIGINT handling. */
static void ui_poll_sigint(struct ui *self)
{
	if (!sigint_seen || self->interrupt_sent)
		return;
	self->interrupt_sent = true;
	failed(relay_thread_request_interruption(self->thread),
	       "relay_thread_request_interruption");
	failed(relay_timer_stop(self->sigint_poll), "relay_timer_stop");
}

/* ======================================================================
 * main
 * ====================================================================== */

static int usage(const char *prog)
{
	fprintf(stderr,
		"usage: %s [N]\n"
		"  count the primes below N in a worker thread (default %u),\n"
		"  0 <= N <= 4294967295; Ctrl-C stops with the partial count\n",
		prog, DEFAULT_LIMIT);
	return 2;
}

/* Digits only: strtoul would accept " 12", "+12" and "-12". */
static bool parse_limit(const char *s, uint32_t *out)
{
	uint64_t v = 0;

	if (*s == '\0')
		return false;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return false;
		v = v * 10 + (uint64_t)(*s - '0');
		if (v > UINT32_MAX)
			return false;
	}
	*out = (uint32_t)v;
	return true;
}

/* The ui with its Ctrl-C poll timer. */
static int ui_create(uint32_t limit, struct ui **out)
{
	struct ui *ui;
	int rc;

	rc = relay_object_new(&ui, &ui_class, NULL);
	if (failed(rc, "relay_object_new(ui)"))
		return rc;
	ui->limit = limit;
	ui->tty = isatty(STDERR_FILENO);
	ui->shown = -1;
	*out = ui;

	rc = relay_timer_create(ui, &ui->sigint_poll);
	if (failed(rc, "relay_timer_create"))
		return rc;
	rc = relay_connect(ui->sigint_poll, timeout, ui, ui_poll_sigint);
	if (failed(rc, "connect timeout"))
		return rc;
	rc = relay_timer_start(ui->sigint_poll, SIGINT_POLL_MS);
	failed(rc, "relay_timer_start");
	return rc;
}

/* The worker's connections; they do not depend on where the objects live
 * (AUTO picks direct or queued at each emit), so they are made before the
 * move, while a failure still leaves the worker destroyable here. */
static int connect_worker(struct ui *ui, relay_thread *thread, struct prime_worker *w)
{
	int rc;

	/* thread.started.connect(worker.run): direct, in the new thread */
	rc = relay_connect(thread, started, w, prime_worker_run);
	if (failed(rc, "connect started"))
		return rc;
	/* worker.progress.connect(ui.on_progress): queued to main */
	rc = relay_connect(w, progress, ui, ui_on_progress);
	if (failed(rc, "connect progress"))
		return rc;
	/* worker.finished.connect(ui.on_finished): queued to main */
	rc = relay_connect(w, finished, ui, ui_on_finished);
	if (failed(rc, "connect finished"))
		return rc;
	/* worker.finished.connect(thread.quit): the handle lives in main, so
	 * this is queued too; it runs after ui_on_finished (same sender
	 * thread, same receiver thread: emit order). */
	rc = relay_connect(w, finished, thread, relay_slot_quit);
	if (failed(rc, "connect finished to quit"))
		return rc;
	/* thread.finished.connect(worker.deleteLater): direct, in the
	 * worker thread as it ends; relay runs it before the thread is gone. */
	rc = relay_connect(thread, finished, w, relay_slot_delete_later);
	if (failed(rc, "connect thread finished to delete_later"))
		return rc;
	/* thread.finished.connect(app.quit): queued to main */
	rc = relay_connect(thread, finished, ui, ui_on_thread_finished);
	failed(rc, "connect thread finished to ui");
	return rc;
}

/* Create the worker and its thread, wire them, move, start. */
static int start_worker(struct ui *ui, uint32_t limit, relay_thread **thread)
{
	struct prime_worker *w;
	int rc;

	rc = relay_thread_create("primes", NULL, thread);
	if (failed(rc, "relay_thread_create"))
		return rc;
	ui->thread = *thread;

	rc = relay_object_new(&w, &prime_worker_class, NULL);
	if (failed(rc, "relay_object_new(worker)"))
		return rc;
	w->limit = limit;

	rc = connect_worker(ui, *thread, w);
	if (rc == 0) {
		rc = relay_object_move_to_thread(w, *thread);
		failed(rc, "relay_object_move_to_thread");
	}
	if (rc < 0) {
		failed(relay_object_destroy(w), "relay_object_destroy(worker)");
		return rc;
	}
	/* From here only the worker's thread may destroy it: normally
	 * thread.finished deletes it later. If the thread cannot start,
	 * delete_later still frees it: relay destroys objects left in a
	 * never-started thread when its handle is destroyed (in main). */
	rc = relay_thread_start(*thread);
	if (failed(rc, "relay_thread_start"))
		failed(relay_object_delete_later(w), "relay_object_delete_later");
	return rc;
}

static int exit_status(const struct ui *ui)
{
	if (!ui->have_result)
		return 1;
	return ui->result.interrupted ? EXIT_INTERRUPTED : 0;
}

int main(int argc, char **argv)
{
	uint32_t limit = DEFAULT_LIMIT;
	relay_thread *thread = NULL;
	struct ui *ui = NULL;
	int status = 1;
	int rc;

	if (argc > 2 || (argc == 2 && !parse_limit(argv[1], &limit)))
		return usage(argv[0]);
	if (install_sigint_handler() != 0) {
		perror("progress: sigaction");
		return 1;
	}

	rc = ui_create(limit, &ui);
	if (rc == 0)
		rc = start_worker(ui, limit, &thread);
	if (rc == 0) {
		rc = relay_main_run(5000);
		if (!failed(rc, "relay_main_run"))
			status = exit_status(ui);
	}

	if (thread) {
		/* Already finished (its end quit the main loop): stop is the
		 * explicit, bounded wait that makes destroy legal. */
		if (failed(relay_thread_stop(thread, 5000), "relay_thread_stop") ||
		    failed(relay_thread_destroy(thread), "relay_thread_destroy"))
			status = 1;
	}
	if (ui && failed(relay_object_destroy(ui), "relay_object_destroy(ui)"))
		status = 1;
	return status;
}
