/*
 * gtk_progress.c - examples/progress.c as a GTK 4 application: a worker
 * object in a relay_thread counts primes and reports to widgets that live
 * in the main thread, whose loop is GTK's (relay-glib drives relay's main
 * loop inside GLib's default GMainContext).
 *
 *	gtk_progress [N]		a window; Start counts the primes below N
 *					(default 30000000, about 4 s)
 *	gtk_progress --selftest DIR [--flood EMITS] [--priority P] [N]
 *					the same window driven by itself:
 *					screenshots in DIR, exit 0 or 1
 *
 * The model is Qt's (the seed's "Using threads with PyQt"): GUI objects
 * live in the main thread and are only touched there; the work runs in a
 * worker object moved to a thread, and talks to the GUI through signals,
 * which relay queues to the main thread with a copy of the payload.
 *
 *   Start   creates a worker and a relay_thread, moves the worker into
 *           it, connects thread.started to the worker's run, and starts
 *           the thread. The worker counts primes one chunk at a time and
 *           emits progress(int percent) when the percentage changed, then
 *           finished(struct prime_result).
 *   ui      (struct ui, RELAY_CLASS_MAIN_THREAD_ONLY) receives them: its
 *           slots set the GtkProgressBar and the result label, and check
 *           that they run in the main thread.
 *   Cancel  relay_thread_request_interruption: the worker polls it between
 *           chunks and reports the partial count, which the label shows.
 *   Close   while a job runs: interruption again; the window hides and the
 *           GMainLoop ends when the thread has finished; then
 *           relay_main_shutdown (which would stop any thread left),
 *           relay_glib_detach, and every object and widget is destroyed.
 *           Ctrl-C (SIGINT) and SIGTERM close the window the same way
 *           (g_unix_signal_add: the handler runs in the GLib loop).
 *
 * Why gtk_init and a plain GMainLoop rather than GtkApplication: the
 * program owns its loop, so the shutdown order above is written out in
 * main(), in one place, and the program needs no D-Bus session. With a
 * GtkApplication the same calls go around g_application_run (relay_glib.h
 * shows it).
 *
 * The self-test (--selftest DIR), in three jobs, prints what it sees on
 * stdout for examples/gtk/test-xvfb.sh:
 *   1. Start is clicked (its "clicked" signal, emitted as a click does;
 *      gtk_widget_activate would emit it 250 ms later). At 50% the worker
 *      pauses: it emits paused(50) and runs a nested relay loop in its thread
 *      until the ui's resume signal reaches it, so the bar stays put,
 *      deterministically, with no sleeps. The ui waits for the next frame
 *      to be painted, saves the window rendered in-process to DIR/p50.png,
 *      prints "READY p50 ..." and waits for a line on stdin (the script
 *      takes its own shot of the X screen meanwhile; EOF on stdin means
 *      "don't wait"). Then resume; at 75% Cancel is clicked, the partial
 *      result is shown, and DIR/final.png is saved the same way
 *      ("READY final ...").
 *   2. A flood: a worker emits progress events back to back, unthrottled
 *      (--flood EMITS, default 10^6), and the ui shows each one (bar and
 *      label), so they come faster than the main thread can run them; a
 *      tick callback counts the frames GTK draws meanwhile, and how many
 *      of them found events still waiting; "FLOOD ... ticks_per_s=" is
 *      printed. With relay-glib at GLib's default priority 0 instead of
 *      RELAY_GLIB_PRIORITY (--priority 0) the window is not painted
 *      until the flood is over.
 *   3. A job started, and the window closed at 20%: the shutdown path.
 * It ends with "PASS" (exit 0) or "FAIL: ..." (exit 1).
 */
#define _POSIX_C_SOURCE 200809L /* SIGINT, SIGTERM */

#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <glib-unix.h>
#include <gtk/gtk.h>

#include "relay.h"
#include "relay_glib.h"

#define DEFAULT_LIMIT 30000000u
#define DEFAULT_FLOOD 1000000u

/* Numbers tested per chunk (as examples/progress.c): a few ms of work, so
 * Cancel is obeyed at once and the interruption poll costs nothing. */
#define CHUNK 65536u
#define MAX_BASE_PRIMES 6542

/* How long a closing window waits for the worker before giving up on it
 * (relay_main_shutdown then names the thread that does not stop). */
#define CLOSE_TIMEOUT_MS 5000

/* The bar in colours a test can count: a red progress in a blue trough,
 * no borders, no rounded corners. CSS nodes of GtkProgressBar in GTK 4:
 * progressbar > trough > progress (gtk/gtkprogressbar.c). */
static const char bar_css[] =
	"progressbar > trough {\n"
	"  background: #0000ff; min-height: 24px; min-width: 300px;\n"
	"  border: none; border-radius: 0; box-shadow: none; padding: 0; margin: 0;\n"
	"}\n"
	"progressbar > trough > progress {\n"
	"  background: #ff0000; min-height: 24px; min-width: 0;\n"
	"  border: none; border-radius: 0; box-shadow: none; margin: 0;\n"
	"}\n";

static _Atomic unsigned long relay_failures;   /* both threads count */

/* Report a refused relay call; true when rc is an error. */
static bool failed(int rc, const char *what)
{
	if (rc >= 0)
		return false;
	relay_failures++;
	fprintf(stderr, "gtk_progress: %s: %s\n", what, relay_strerror(rc));
	return true;
}

/* GUI objects are the main thread's: every slot touching a widget checks
 * it, in every build (assert() would vanish with NDEBUG). */
#define ASSERT_MAIN_THREAD()                                                          \
	do {                                                                          \
		if (!relay_is_main_thread()) {                                        \
			fprintf(stderr, "gtk_progress: %s ran outside the main thread\n", \
				__func__);                                            \
			abort();                                                      \
		}                                                                     \
	} while (0)

/* ======================================================================
 * Counting primes (worker thread), as in examples/progress.c
 * ====================================================================== */

struct prime_result {
	uint64_t count;         /* primes below limit_reached */
	uint64_t limit_reached; /* every number below this one was tested */
	bool interrupted;       /* stopped before the limit */
	double seconds;         /* the worker's time on the job */
};

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

static bool is_odd_prime(uint32_t n, const struct base_primes *b)
{
	for (size_t i = 0; i < b->count; i++) {
		uint32_t p = b->p[i];

		if (p * p > n)
			return true;
		if (n % p == 0)
			return false;
	}
	return true;
}

static void base_primes_init(struct base_primes *b, uint32_t max)
{
	b->count = 0;
	for (uint32_t q = 3; q <= max && b->count < MAX_BASE_PRIMES; q += 2)
		if (is_odd_prime(q, b))
			b->p[b->count++] = (uint16_t)q;
}

static int percent_of(uint64_t done, uint64_t total)
{
	return total ? (int)(done * 100 / total) : 100;
}

/* ======================================================================
 * The worker: lives in its relay_thread once moved there
 * ====================================================================== */

struct prime_worker {
	relay_object base;
	RELAY_SIGNAL(progress, int);                 /* percent, 0..100 */
	RELAY_SIGNAL(paused, int);                   /* self-test: waiting at percent */
	RELAY_SIGNAL(finished, struct prime_result);
	uint32_t limit;
	bool flood;          /* emit `limit` progress events, unthrottled */
	int pause_at;        /* pause once at this percent (self-test), -1 never */
	int pause_next;      /* then once more at this one, -1 never */
	bool waiting;        /* in its nested loop; worker thread only */
	unsigned long emit_errors;
	struct base_primes primes;
};

static const relay_class prime_worker_class = {
	.name = "PrimeWorker",
	.size = sizeof(struct prime_worker),
};

static void emit_progress(struct prime_worker *self, int percent)
{
	if (relay_emit(self, progress, &percent) < 0)
		self->emit_errors++;
}

/* The end of a job, in the worker thread: the result to the ui. */
static void worker_finish(struct prime_worker *self, struct prime_result *res, gint64 t0)
{
	res->seconds = (double)(g_get_monotonic_time() - t0) / 1e6;
	if (self->emit_errors)
		fprintf(stderr, "gtk_progress: %lu progress emits failed\n", self->emit_errors);
	/* If finished cannot be queued, nobody would quit this thread. */
	if (failed(relay_emit(self, finished, res), "emit finished"))
		failed(relay_thread_quit(relay_thread_current()), "relay_thread_quit");
}

/* Primes in [lo, hi). */
static uint64_t count_chunk(struct prime_worker *self, uint32_t lo, uint32_t hi)
{
	uint64_t count = 0;

	if (lo <= 2 && hi > 2)
		count++;
	if (lo < 3)
		lo = 3;
	for (uint32_t n = lo | 1; n < hi; n += 2)
		count += is_odd_prime(n, &self->primes);
	return count;
}

/* Flood mode (self-test): `limit` progress events back to back, what a
 * worker reporting every item does to a GUI thread: events arrive without
 * a pause, so relay's GSource is ready at every iteration of GLib's loop
 * for the whole flood. The result counts the events. */
static void prime_worker_flood(struct prime_worker *self)
{
	struct prime_result res = { 0 };
	gint64 t0 = g_get_monotonic_time();

	for (uint32_t i = 0; i < self->limit; i++) {
		if (i % CHUNK == 0 && relay_interruption_requested()) {
			res.interrupted = true;
			break;
		}
		emit_progress(self, percent_of(i + 1, self->limit));
		res.count++;
	}
	res.limit_reached = res.count;
	worker_finish(self, &res, t0);
}

/* Self-test: wait here, in a loop of this thread, until the ui's resume
 * signal reaches worker_resume (or the thread is told to quit). The bar
 * then shows exactly this percentage while the ui takes its screenshots. */
static void worker_pause(struct prime_worker *self, int percent)
{
	self->pause_at = self->pause_next;
	self->pause_next = -1;
	if (failed(relay_emit(self, paused, &percent), "emit paused"))
		return;
	self->waiting = true;
	failed(relay_loop_run(), "relay_loop_run (paused worker)");
	self->waiting = false;
}

/* Slot for ui.resume, queued: runs in the worker thread. */
static void worker_resume(struct prime_worker *self)
{
	if (!self->waiting)
		return;
	self->waiting = false;
	failed(relay_loop_quit(), "relay_loop_quit");
}

/* Slot for thread.started: the whole job, in the worker thread. */
static void prime_worker_run(struct prime_worker *self)
{
	struct prime_result res = { 0 };
	gint64 t0 = g_get_monotonic_time();
	int last = -1;
	uint32_t lo, hi;

	if (self->flood) {
		prime_worker_flood(self);
		return;
	}
	base_primes_init(&self->primes, isqrt32(self->limit ? self->limit - 1 : 0));
	for (lo = 0; lo < self->limit; lo = hi) {
		if (relay_interruption_requested()) {
			res.interrupted = true;
			break;
		}
		hi = self->limit - lo > CHUNK ? lo + CHUNK : self->limit;
		res.count += count_chunk(self, lo, hi);
		res.limit_reached = hi;
		int percent = percent_of(hi, self->limit);
		if (percent != last) {
			last = percent;
			emit_progress(self, percent);
		}
		if (self->pause_at >= 0 && percent >= self->pause_at)
			worker_pause(self, percent);
	}
	worker_finish(self, &res, t0);
}

/* ======================================================================
 * The ui: lives in the main thread, with the widgets
 * ====================================================================== */

struct job {
	uint32_t limit;
	bool flood;
	int pause_at, pause_next;
};

struct selftest;

struct ui {
	relay_object base;
	RELAY_SIGNAL(resume);         /* to a paused worker (self-test) */
	GtkWidget *window, *bar, *label, *start, *cancel;
	GMainLoop *loop;
	relay_thread *thread;         /* the running job's, NULL between jobs */
	struct job next;              /* what Start starts */
	int shown;                    /* last percent shown, -1 none */
	bool have_result;
	struct prime_result result;
	bool closing;                 /* the window was closed during a job */
	guint close_timeout;
	struct selftest *test;        /* NULL unless --selftest */
};

static const relay_class ui_class = {
	.name = "ui",
	.flags = RELAY_CLASS_MAIN_THREAD_ONLY,   /* as a Qt widget: never moved */
	.size = sizeof(struct ui),
};

static void selftest_on_progress(struct ui *ui, int percent);
static void selftest_on_paused(struct ui *ui, int percent);
static void selftest_on_job_done(struct ui *ui);

/* 1234567 -> "1,234,567" */
static const char *grouped(uint64_t v, char *buf, size_t size)
{
	char digits[32];
	int n = snprintf(digits, sizeof(digits), "%" PRIu64, v);
	size_t o = 0;

	for (int i = 0; i < n && o + 2 < size; i++) {
		if (i > 0 && (n - i) % 3 == 0)
			buf[o++] = ',';
		buf[o++] = digits[i];
	}
	buf[o] = '\0';
	return buf;
}

static void ui_set_running(struct ui *ui, bool running)
{
	gtk_widget_set_sensitive(ui->start, !running);
	gtk_widget_set_sensitive(ui->cancel, running);
}

/* Slot for worker.progress, queued: runs in the main thread. */
static void ui_on_progress(struct ui *self, const int *percent)
{
	ASSERT_MAIN_THREAD();
	gtk_progress_bar_set_fraction(GTK_PROGRESS_BAR(self->bar), *percent / 100.0);
	if (*percent != self->shown && !self->closing) {
		char text[64];

		snprintf(text, sizeof(text), "Counting primes... %d%%", *percent);
		gtk_label_set_text(GTK_LABEL(self->label), text);
		self->shown = *percent;
	}
	if (self->test)
		selftest_on_progress(self, *percent);
}

/* Slot for worker.paused (self-test), queued: runs in the main thread. */
static void ui_on_paused(struct ui *self, const int *percent)
{
	ASSERT_MAIN_THREAD();
	if (self->test)
		selftest_on_paused(self, *percent);
	else
		failed(relay_emit(self, resume), "emit resume");
}

/* Slot for worker.finished, queued: runs in the main thread. */
static void ui_on_result(struct ui *self, const struct prime_result *r)
{
	char count[32], below[32], text[160];

	ASSERT_MAIN_THREAD();
	self->result = *r;
	self->have_result = true;
	grouped(r->count, count, sizeof(count));
	grouped(r->limit_reached, below, sizeof(below));
	if (self->next.flood)
		snprintf(text, sizeof(text), "%s progress events%s", count,
			 r->interrupted ? ", cancelled" : "");
	else if (r->interrupted)
		snprintf(text, sizeof(text), "Cancelled at %d%%: %s primes below %s (%.1f s)",
			 percent_of(r->limit_reached, self->next.limit), count, below, r->seconds);
	else
		snprintf(text, sizeof(text), "%s primes below %s (%.1f s)", count, below,
			 r->seconds);
	gtk_label_set_text(GTK_LABEL(self->label), text);
}

/* Slot for thread.finished, queued: the worker thread has ended (and the
 * worker was deleted in it). Free the handle; the next job gets a new one. */
static void ui_on_thread_finished(struct ui *self)
{
	ASSERT_MAIN_THREAD();
	if (self->thread) {
		/* The thread is at its very end: the wait is short. */
		failed(relay_thread_wait(self->thread, 5000), "relay_thread_wait");
		failed(relay_thread_destroy(self->thread), "relay_thread_destroy");
		self->thread = NULL;
	}
	if (self->closing) {
		g_main_loop_quit(self->loop);
		return;
	}
	ui_set_running(self, false);
	if (self->test)
		selftest_on_job_done(self);
}

/* Create the worker and its thread, wire them, move, start. */
static int ui_start_job(struct ui *ui)
{
	struct prime_worker *w;
	relay_thread *thread;
	int rc;

	rc = relay_thread_create("primes", NULL, &thread);
	if (failed(rc, "relay_thread_create"))
		return rc;
	rc = relay_object_new(&w, &prime_worker_class, NULL);
	if (failed(rc, "relay_object_new(worker)")) {
		failed(relay_thread_destroy(thread), "relay_thread_destroy");
		return rc;
	}
	w->limit = ui->next.limit;
	w->flood = ui->next.flood;
	w->pause_at = ui->next.pause_at;
	w->pause_next = ui->next.pause_next;

	/* Connections do not depend on where the objects live (AUTO picks
	 * direct or queued at each emit), so they are made before the move. */
	if (failed(rc = relay_connect(thread, started, w, prime_worker_run), "connect started") ||
	    failed(rc = relay_connect(w, progress, ui, ui_on_progress), "connect progress") ||
	    failed(rc = relay_connect(w, paused, ui, ui_on_paused), "connect paused") ||
	    failed(rc = relay_connect(w, finished, ui, ui_on_result), "connect finished") ||
	    /* queued after ui_on_result: same sender and receiver threads */
	    failed(rc = relay_connect(w, finished, thread, relay_slot_quit), "connect quit") ||
	    failed(rc = relay_connect(ui, resume, w, worker_resume), "connect resume") ||
	    /* direct, in the worker thread as it ends */
	    failed(rc = relay_connect(thread, finished, w, relay_slot_delete_later),
		   "connect delete_later") ||
	    failed(rc = relay_connect(thread, finished, ui, ui_on_thread_finished),
		   "connect thread finished") ||
	    failed(rc = relay_object_move_to_thread(w, thread), "relay_object_move_to_thread")) {
		failed(relay_object_destroy(w), "relay_object_destroy(worker)");
		failed(relay_thread_destroy(thread), "relay_thread_destroy");
		return rc;
	}
	rc = relay_thread_start(thread);
	if (failed(rc, "relay_thread_start")) {
		/* relay destroys objects left in a never-started thread when its
		 * handle is destroyed. */
		failed(relay_object_delete_later(w), "relay_object_delete_later");
		failed(relay_thread_destroy(thread), "relay_thread_destroy");
		return rc;
	}
	ui->thread = thread;
	ui->have_result = false;
	ui->shown = -1;
	gtk_progress_bar_set_fraction(GTK_PROGRESS_BAR(ui->bar), 0.0);
	gtk_label_set_text(GTK_LABEL(ui->label), "Counting primes...");
	ui_set_running(ui, true);
	return 0;
}

/* Ask the running job to stop; a paused worker is resumed so it sees it. */
static void ui_interrupt(struct ui *ui)
{
	if (!ui->thread)
		return;
	failed(relay_thread_request_interruption(ui->thread),
	       "relay_thread_request_interruption");
	failed(relay_emit(ui, resume), "emit resume");
}

static void on_start_clicked(GtkButton *button, gpointer data)
{
	struct ui *ui = data;

	(void)button;
	if (!ui->thread && ui_start_job(ui) < 0)
		gtk_label_set_text(GTK_LABEL(ui->label), "Could not start the worker");
}

static void on_cancel_clicked(GtkButton *button, gpointer data)
{
	struct ui *ui = data;

	(void)button;
	if (!ui->thread)
		return;
	gtk_label_set_text(GTK_LABEL(ui->label), "Cancelling...");
	gtk_widget_set_sensitive(ui->cancel, FALSE);
	ui_interrupt(ui);
}

static gboolean on_close_timeout(gpointer data)
{
	struct ui *ui = data;

	ui->close_timeout = 0;
	fprintf(stderr, "gtk_progress: the worker did not stop within %d ms\n",
		CLOSE_TIMEOUT_MS);
	g_main_loop_quit(ui->loop);
	return G_SOURCE_REMOVE;
}

/* The window is never destroyed by GTK: main() does it after relay's
 * shutdown, when no slot can touch a widget any more. */
static gboolean on_close_request(GtkWindow *window, gpointer data)
{
	struct ui *ui = data;

	if (ui->closing)
		return TRUE;
	ui->closing = true;
	gtk_widget_set_visible(GTK_WIDGET(window), FALSE);
	if (!ui->thread) {
		g_main_loop_quit(ui->loop);
		return TRUE;
	}
	/* ui_on_thread_finished quits the loop once the worker has stopped. */
	ui_interrupt(ui);
	ui->close_timeout = g_timeout_add(CLOSE_TIMEOUT_MS, on_close_timeout, ui);
	return TRUE;
}

/* SIGINT, SIGTERM: as if the window were closed. */
static gboolean on_unix_signal(gpointer data)
{
	struct ui *ui = data;

	gtk_window_close(GTK_WINDOW(ui->window));
	return G_SOURCE_CONTINUE;
}

static void ui_build(struct ui *ui)
{
	GtkWidget *box, *buttons, *title;

	ui->window = gtk_window_new();
	gtk_window_set_title(GTK_WINDOW(ui->window), "relay: counting primes");
	gtk_window_set_default_size(GTK_WINDOW(ui->window), 420, -1);
	g_signal_connect(ui->window, "close-request", G_CALLBACK(on_close_request), ui);

	box = gtk_box_new(GTK_ORIENTATION_VERTICAL, 12);
	gtk_widget_set_margin_top(box, 18);
	gtk_widget_set_margin_bottom(box, 18);
	gtk_widget_set_margin_start(box, 18);
	gtk_widget_set_margin_end(box, 18);
	gtk_window_set_child(GTK_WINDOW(ui->window), box);

	char text[96], below[32];
	snprintf(text, sizeof(text), "Primes below %s, counted in a relay_thread",
		 grouped(ui->next.limit, below, sizeof(below)));
	title = gtk_label_new(text);
	gtk_widget_set_halign(title, GTK_ALIGN_START);
	gtk_box_append(GTK_BOX(box), title);

	ui->bar = gtk_progress_bar_new();
	gtk_box_append(GTK_BOX(box), ui->bar);

	ui->label = gtk_label_new("Press Start");
	gtk_widget_set_halign(ui->label, GTK_ALIGN_START);
	gtk_box_append(GTK_BOX(box), ui->label);

	buttons = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 6);
	gtk_widget_set_halign(buttons, GTK_ALIGN_END);
	ui->start = gtk_button_new_with_mnemonic("_Start");
	ui->cancel = gtk_button_new_with_mnemonic("_Cancel");
	gtk_box_append(GTK_BOX(buttons), ui->cancel);
	gtk_box_append(GTK_BOX(buttons), ui->start);
	gtk_box_append(GTK_BOX(box), buttons);
	g_signal_connect(ui->start, "clicked", G_CALLBACK(on_start_clicked), ui);
	g_signal_connect(ui->cancel, "clicked", G_CALLBACK(on_cancel_clicked), ui);
	ui_set_running(ui, false);
}

/* ======================================================================
 * The self-test
 * ====================================================================== */

enum { PHASE_PAUSE_CANCEL = 1, PHASE_FLOOD, PHASE_CLOSE, PHASE_DONE };

struct selftest {
	const char *dir;
	uint32_t limit;
	uint32_t flood_emits;
	int priority;                 /* relay-glib's */
	int phase;
	int failures;
	bool cancel_sent, close_sent;
	/* waiting for a frame, then for a line on stdin */
	void (*after_frame)(struct ui *ui);
	GdkFrameClock *clock;
	gulong paint_handler;
	void (*after_line)(struct ui *ui);
	GIOChannel *in;
	guint in_watch;
	bool stdin_eof;
	char tag[16];
	/* the flood */
	guint tick_id;
	uint64_t ticks, delivered;
	uint64_t max_backlog;         /* events queued to the main thread, at a tick */
	uint64_t backlog_ticks;       /* ticks with events waiting */
	gint64 t0;
	guint watchdog;
};

#define SELFTEST_CANCEL_AT 75
#define SELFTEST_CLOSE_AT 20
#define SELFTEST_TIMEOUT_S 120

static void selftest_fail(struct ui *ui, const char *fmt, ...)
{
	va_list ap;

	ui->test->failures++;
	fprintf(stdout, "FAIL: ");
	va_start(ap, fmt);
	vfprintf(stdout, fmt, ap);
	va_end(ap);
	fputc('\n', stdout);
	fflush(stdout);
}

static void selftest_say(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfprintf(stdout, fmt, ap);
	va_end(ap);
	fputc('\n', stdout);
	fflush(stdout);
}

/* The window as GTK draws it, rendered in-process by its own renderer. */
static bool save_window_png(GtkWidget *window, const char *path)
{
	int w = gtk_widget_get_width(window), h = gtk_widget_get_height(window);
	GdkPaintable *paintable = gtk_widget_paintable_new(window);
	GtkSnapshot *snapshot = gtk_snapshot_new();
	GskRenderNode *node;
	GdkTexture *texture;
	bool ok = false;

	gdk_paintable_snapshot(paintable, GDK_SNAPSHOT(snapshot), w, h);
	node = gtk_snapshot_free_to_node(snapshot);
	if (node) {
		graphene_rect_t bounds = GRAPHENE_RECT_INIT(0, 0, (float)w, (float)h);
		GskRenderer *renderer = gtk_native_get_renderer(GTK_NATIVE(window));

		texture = gsk_renderer_render_texture(renderer, node, &bounds);
		ok = texture && gdk_texture_save_to_png(texture, path);
		if (texture)
			g_object_unref(texture);
		gsk_render_node_unref(node);
	}
	g_object_unref(paintable);
	return ok;
}

static gboolean selftest_run_after_frame(gpointer data)
{
	struct ui *ui = data;
	void (*fn)(struct ui *) = ui->test->after_frame;

	ui->test->after_frame = NULL;
	/* The X server has drawn what GTK sent before the script looks. */
	gdk_display_sync(gtk_widget_get_display(ui->window));
	fn(ui);
	return G_SOURCE_REMOVE;
}

static void selftest_on_after_paint(GdkFrameClock *clock, gpointer data)
{
	struct ui *ui = data;

	g_signal_handler_disconnect(clock, ui->test->paint_handler);
	ui->test->paint_handler = 0;
	g_object_unref(ui->test->clock);
	ui->test->clock = NULL;
	g_idle_add_full(G_PRIORITY_HIGH_IDLE, selftest_run_after_frame, ui, NULL);
}

/* fn(ui) once a frame painted after everything changed so far: a frame
 * cycle runs all its phases in one dispatch, so the first after-paint
 * following this call belongs to a frame that drew the current state. */
static void selftest_after_next_frame(struct ui *ui, void (*fn)(struct ui *))
{
	struct selftest *t = ui->test;

	t->after_frame = fn;
	t->clock = g_object_ref(gtk_widget_get_frame_clock(ui->window));
	t->paint_handler = g_signal_connect(t->clock, "after-paint",
					    G_CALLBACK(selftest_on_after_paint), ui);
	gtk_widget_queue_draw(ui->window);
}

static gboolean selftest_on_stdin(GIOChannel *ch, GIOCondition cond, gpointer data)
{
	struct ui *ui = data;
	struct selftest *t = ui->test;
	void (*fn)(struct ui *) = t->after_line;
	gchar *line = NULL;
	GIOStatus st = G_IO_STATUS_EOF;

	if (cond & G_IO_IN)
		st = g_io_channel_read_line(ch, &line, NULL, NULL, NULL);
	g_free(line);
	if (st == G_IO_STATUS_AGAIN)
		return G_SOURCE_CONTINUE;
	if (st != G_IO_STATUS_NORMAL)
		t->stdin_eof = true;
	t->in_watch = 0;
	t->after_line = NULL;
	fn(ui);
	return G_SOURCE_REMOVE;
}

/* Say the shot is ready, then fn(ui) once a line came on stdin (at once
 * if stdin has ended). */
static void selftest_wait_line(struct ui *ui, void (*fn)(struct ui *))
{
	struct selftest *t = ui->test;

	if (t->stdin_eof) {
		fn(ui);
		return;
	}
	t->after_line = fn;
	t->in_watch = g_io_add_watch(t->in, G_IO_IN | G_IO_HUP | G_IO_ERR,
				     selftest_on_stdin, ui);
}

/* Save DIR/<tag>.png and print "READY <tag> percent=P fraction=F png=PATH". */
static void selftest_shoot(struct ui *ui, const char *tag)
{
	struct selftest *t = ui->test;
	char *path = g_strdup_printf("%s/%s.png", t->dir, tag);
	double fraction = gtk_progress_bar_get_fraction(GTK_PROGRESS_BAR(ui->bar));

	if (!save_window_png(ui->window, path))
		selftest_fail(ui, "could not save %s", path);
	selftest_say("READY %s percent=%d fraction=%.4f png=%s label=\"%s\"", tag, ui->shown,
		     fraction, path, gtk_label_get_text(GTK_LABEL(ui->label)));
	g_free(path);
}

static void selftest_start_phase(struct ui *ui, int phase);

static void selftest_resume_worker(struct ui *ui)
{
	failed(relay_emit(ui, resume), "emit resume");
}

static void selftest_pause_shot(struct ui *ui)
{
	selftest_shoot(ui, "p50");
	selftest_wait_line(ui, selftest_resume_worker);
}

static void selftest_on_paused(struct ui *ui, int percent)
{
	if (ui->test->phase != PHASE_PAUSE_CANCEL || percent < 50) {
		selftest_fail(ui, "paused at %d%% in phase %d", percent, ui->test->phase);
		selftest_resume_worker(ui);
		return;
	}
	if (percent >= SELFTEST_CANCEL_AT) {
		/* ui_on_progress clicked Cancel already (its slot ran first):
		 * the worker sees the request at its next chunk. */
		selftest_resume_worker(ui);
		return;
	}
	/* ui_on_progress(percent) ran before this (emit order). */
	selftest_after_next_frame(ui, selftest_pause_shot);
}

static gboolean selftest_on_tick(GtkWidget *widget, GdkFrameClock *clock, gpointer data)
{
	struct ui *ui = data;

	struct selftest *t = ui->test;
	relay_loop_stats st;

	(void)widget;
	(void)clock;
	t->ticks++;
	/* What the main thread has not run yet: a frame drawn while the
	 * flood is queued shows GTK is not starved. */
	if (relay_thread_stats(relay_thread_main(), &st) == 0) {
		uint64_t backlog = st.posted - st.delivered - st.dropped - st.moved;

		if (backlog > t->max_backlog)
			t->max_backlog = backlog;
		if (backlog > 0)
			t->backlog_ticks++;
	}
	return G_SOURCE_CONTINUE;
}

static void selftest_on_progress(struct ui *ui, int percent)
{
	struct selftest *t = ui->test;

	switch (t->phase) {
	case PHASE_PAUSE_CANCEL:
		if (percent >= SELFTEST_CANCEL_AT && !t->cancel_sent) {
			t->cancel_sent = true;
			g_signal_emit_by_name(ui->cancel, "clicked");   /* clicks Cancel */
		}
		break;
	case PHASE_FLOOD: {
		/* What a GUI does with every event it gets: shows it. */
		char text[64], n[32];

		t->delivered++;
		snprintf(text, sizeof(text), "Progress event %s", grouped(t->delivered, n, sizeof(n)));
		gtk_label_set_text(GTK_LABEL(ui->label), text);
		break;
	}
	case PHASE_CLOSE:
		if (percent >= SELFTEST_CLOSE_AT && !t->close_sent) {
			t->close_sent = true;
			selftest_say("CLOSE at=%d", percent);
			gtk_window_close(GTK_WINDOW(ui->window));
		}
		break;
	default:
		break;
	}
}

static void selftest_next_phase(struct ui *ui)
{
	selftest_start_phase(ui, ui->test->phase + 1);
}

static void selftest_final_shot(struct ui *ui)
{
	selftest_shoot(ui, "final");
	selftest_wait_line(ui, selftest_next_phase);
}

static void selftest_on_job_done(struct ui *ui)
{
	struct selftest *t = ui->test;
	const struct prime_result *r = &ui->result;

	if (!ui->have_result) {
		selftest_fail(ui, "job of phase %d ended without a result", t->phase);
		selftest_next_phase(ui);
		return;
	}
	switch (t->phase) {
	case PHASE_PAUSE_CANCEL:
		selftest_say("RESULT phase=cancel interrupted=%d count=%" PRIu64 " below=%" PRIu64,
			     r->interrupted, r->count, r->limit_reached);
		if (!r->interrupted)
			selftest_fail(ui, "Cancel at %d%% did not interrupt the worker",
				      SELFTEST_CANCEL_AT);
		selftest_after_next_frame(ui, selftest_final_shot);
		break;
	case PHASE_FLOOD: {
		double s = (double)(g_get_monotonic_time() - t->t0) / 1e6;
		double rate = s > 0 ? (double)t->ticks / s : 0;
		double busy_rate = s > 0 ? (double)t->backlog_ticks / s : 0;

		gtk_widget_remove_tick_callback(ui->bar, t->tick_id);
		t->tick_id = 0;
		selftest_say("FLOOD emits=%" PRIu32 " delivered=%" PRIu64 " seconds=%.3f "
			     "ticks=%" PRIu64 " ticks_per_s=%.1f backlog_ticks=%" PRIu64
			     " backlog_ticks_per_s=%.1f max_backlog=%" PRIu64 " priority=%d worker_s=%.3f count=%" PRIu64,
			     t->flood_emits, t->delivered, s, t->ticks, rate, t->backlog_ticks,
			     busy_rate, t->max_backlog, t->priority, r->seconds, r->count);
		if (r->interrupted || t->delivered != t->flood_emits || r->count != t->flood_emits)
			selftest_fail(ui, "flood: %" PRIu64 " of %" PRIu32 " events delivered",
				      t->delivered, t->flood_emits);
		selftest_next_phase(ui);
		break;
	}
	default:
		selftest_fail(ui, "a job ended in phase %d", t->phase);
		selftest_next_phase(ui);
		break;
	}
}

static void selftest_start_phase(struct ui *ui, int phase)
{
	struct selftest *t = ui->test;

	t->phase = phase;
	ui->next.flood = false;
	ui->next.pause_at = ui->next.pause_next = -1;
	ui->next.limit = t->limit;
	switch (phase) {
	case PHASE_PAUSE_CANCEL:
		/* Paused at 50% for the shots, and at 75% to click Cancel: the
		 * worker is then sure to see it before it could finish. */
		ui->next.pause_at = 50;
		ui->next.pause_next = SELFTEST_CANCEL_AT;
		break;
	case PHASE_FLOOD:
		/* one emit per odd number below the limit */
		ui->next.limit = t->flood_emits;
		ui->next.flood = true;
		t->ticks = t->delivered = t->max_backlog = t->backlog_ticks = 0;
		t->tick_id = gtk_widget_add_tick_callback(ui->bar, selftest_on_tick, ui, NULL);
		t->t0 = g_get_monotonic_time();
		break;
	case PHASE_CLOSE:
		break;
	default:
		/* PHASE_CLOSE ends the program by closing the window. */
		selftest_fail(ui, "phase %d", phase);
		g_main_loop_quit(ui->loop);
		return;
	}
	selftest_say("PHASE %d", phase);
	g_signal_emit_by_name(ui->start, "clicked");   /* clicks Start */
	if (!ui->thread) {
		selftest_fail(ui, "Start did not start a job");
		g_main_loop_quit(ui->loop);
	}
}

static void selftest_begin(struct ui *ui)
{
	selftest_start_phase(ui, PHASE_PAUSE_CANCEL);
}

static gboolean selftest_on_watchdog(gpointer data)
{
	struct ui *ui = data;

	ui->test->watchdog = 0;
	selftest_fail(ui, "not done after %d s", SELFTEST_TIMEOUT_S);
	ui->closing = true;
	ui_interrupt(ui);
	g_main_loop_quit(ui->loop);
	return G_SOURCE_REMOVE;
}

static void selftest_init(struct ui *ui, struct selftest *t)
{
	ui->test = t;
	t->in = g_io_channel_unix_new(0);
	t->watchdog = g_timeout_add_seconds(SELFTEST_TIMEOUT_S, selftest_on_watchdog, ui);
	selftest_say("ENV DISPLAY=%s XAUTHORITY=%s", g_getenv("DISPLAY") ? g_getenv("DISPLAY") : "",
		     g_getenv("XAUTHORITY") ? g_getenv("XAUTHORITY") : "");
	/* Start once the window is on the screen. */
	selftest_after_next_frame(ui, selftest_begin);
}

static void selftest_fini(struct ui *ui)
{
	struct selftest *t = ui->test;

	if (t->watchdog)
		g_source_remove(t->watchdog);
	if (t->in_watch)
		g_source_remove(t->in_watch);
	if (t->paint_handler)
		g_signal_handler_disconnect(t->clock, t->paint_handler);
	if (t->clock)
		g_object_unref(t->clock);
	if (t->tick_id)
		gtk_widget_remove_tick_callback(ui->bar, t->tick_id);
	g_io_channel_unref(t->in);
	t->watchdog = t->in_watch = t->tick_id = 0;
	t->paint_handler = 0;
	t->clock = NULL;
}

/* ======================================================================
 * main
 * ====================================================================== */

static int usage(const char *prog)
{
	fprintf(stderr,
		"usage: %s [--selftest DIR] [--flood EMITS] [--priority P] [N]\n"
		"  a window that counts the primes below N in a relay_thread (default %u)\n"
		"  --selftest DIR  drive the window, save screenshots in DIR, exit 0 or 1\n"
		"  --flood EMITS   the self-test's flood: EMITS progress events (default %u)\n"
		"  --priority P    relay-glib's GLib priority (default %d, RELAY_GLIB_PRIORITY;\n"
		"                  GTK paints at 120: try 0 with the self-test's flood)\n",
		prog, DEFAULT_LIMIT, DEFAULT_FLOOD, RELAY_GLIB_PRIORITY);
	return 2;
}

static bool parse_u32(const char *s, uint32_t *out)
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

int main(int argc, char **argv)
{
	uint32_t limit = DEFAULT_LIMIT, flood = DEFAULT_FLOOD;
	int priority = RELAY_GLIB_PRIORITY;
	const char *test_dir = NULL;
	struct selftest test;
	struct ui *ui = NULL;
	GtkCssProvider *css;
	GMainLoop *loop;
	int status = 0;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--selftest") == 0 && i + 1 < argc)
			test_dir = argv[++i];
		else if (strcmp(argv[i], "--flood") == 0 && i + 1 < argc) {
			if (!parse_u32(argv[++i], &flood) || flood == 0)
				return usage(argv[0]);
		} else if (strcmp(argv[i], "--priority") == 0 && i + 1 < argc) {
			char *end;
			long p = strtol(argv[++i], &end, 10);

			if (*argv[i] == '\0' || *end != '\0' || p < -1000 || p > 1000)
				return usage(argv[0]);
			priority = (int)p;
		} else if (!parse_u32(argv[i], &limit))
			return usage(argv[0]);
	}
	if (!gtk_init_check()) {
		fprintf(stderr, "gtk_progress: cannot open a display\n");
		return 1;
	}

	css = gtk_css_provider_new();
	gtk_css_provider_load_from_data(css, bar_css, -1);
	gtk_style_context_add_provider_for_display(gdk_display_get_default(),
						   GTK_STYLE_PROVIDER(css),
						   GTK_STYLE_PROVIDER_PRIORITY_APPLICATION);

	/* relay's main loop runs inside GLib's: relay_main_quit ends `loop`. */
	loop = g_main_loop_new(NULL, FALSE);
	relay_glib_hooks hooks = { .loop = loop };
	if (failed(relay_glib_attach(NULL, priority, &hooks), "relay_glib_attach")) {
		g_main_loop_unref(loop);
		g_object_unref(css);
		return 1;
	}

	if (failed(relay_object_new(&ui, &ui_class, NULL), "relay_object_new(ui)")) {
		relay_glib_detach();
		g_main_loop_unref(loop);
		g_object_unref(css);
		return 1;
	}
	ui->loop = loop;
	ui->shown = -1;
	ui->next = (struct job){ .limit = limit, .pause_at = -1, .pause_next = -1 };
	ui_build(ui);
	guint sigint_id = g_unix_signal_add(SIGINT, on_unix_signal, ui);
	guint sigterm_id = g_unix_signal_add(SIGTERM, on_unix_signal, ui);
	gtk_window_present(GTK_WINDOW(ui->window));
	if (test_dir) {
		memset(&test, 0, sizeof(test));
		test.dir = test_dir;
		test.limit = limit;
		test.flood_emits = flood;
		test.priority = priority;
		selftest_init(ui, &test);
	}

	g_main_loop_run(loop);

	/* The shutdown, in order. The loop ended with no job left (the
	 * window waited for the worker), so relay_main_shutdown finds nothing
	 * to stop unless the worker did not stop in time: then it quits and
	 * waits for its thread again, and runs what the thread sent back. */
	if (ui->close_timeout)
		g_source_remove(ui->close_timeout);
	g_source_remove(sigint_id);
	g_source_remove(sigterm_id);
	if (ui->thread)
		status = 1;
	failed(relay_main_shutdown(CLOSE_TIMEOUT_MS), "relay_main_shutdown");
	if (ui->thread) {
		if (failed(relay_thread_stop(ui->thread, CLOSE_TIMEOUT_MS), "relay_thread_stop") ||
		    failed(relay_thread_destroy(ui->thread), "relay_thread_destroy"))
			status = 1;
		ui->thread = NULL;
	}
	failed(relay_glib_detach(), "relay_glib_detach");
	if (test_dir) {
		if (test.phase != PHASE_CLOSE || !test.close_sent)
			selftest_fail(ui, "ended in phase %d", test.phase);
		if (relay_failures)
			selftest_fail(ui, "%lu relay calls failed", (unsigned long)relay_failures);
		selftest_fini(ui);
		if (test.failures == 0)
			selftest_say("PASS");
		else
			status = 1;
	}
	if (relay_failures)
		status = 1;
	gtk_window_destroy(GTK_WINDOW(ui->window));
	ui->window = ui->bar = ui->label = ui->start = ui->cancel = NULL;
	if (failed(relay_object_destroy(ui), "relay_object_destroy(ui)"))
		status = 1;
	/* Let GTK finish with the window (its surface, its frame clock). */
	while (g_main_context_pending(NULL))
		g_main_context_iteration(NULL, FALSE);
	gtk_style_context_remove_provider_for_display(gdk_display_get_default(),
						      GTK_STYLE_PROVIDER(css));
	g_object_unref(css);
	g_main_loop_unref(loop);
	relay_release_caches();
	return status;
}
