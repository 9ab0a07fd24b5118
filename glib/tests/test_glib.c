/*
 * test_glib.c - relay-glib: a plain GMainLoop on GLib's default context
 * (no display) drives the main thread's relay loop; one test drives a
 * thread of its own through a context of its own. Tags: G (relay-glib).
 *
 * Every wait is a g_main_loop_run that a slot ends when its condition
 * holds, under one guard timeout at G_PRIORITY_HIGH that fails the test
 * (never a periodic wake-up, which would hide a lost one). Counts, order,
 * threads and return codes are asserted; the two measurements (ticks
 * under a flood, CPU while idle) have wide margins and are printed.
 */
#include "support.h"

#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include "relay_glib.h"

/* ---- GLib's side: the loop, the guard, relay-glib's diagnostics ---- */

static GMainLoop *g_loop;      /* the test's loop on the default context */
static GMainLoop *g_nested;    /* a modal stand-in, while one runs */
static bool g_guard_fired;

static gboolean guard_fire(gpointer data)
{
	(void)data;
	g_guard_fired = true;
	if (g_nested)
		g_main_loop_quit(g_nested);
	g_main_loop_quit(g_loop);
	return G_SOURCE_REMOVE;
}

/* Run g_loop until a slot quits it; false if the guard had to. */
static bool run_loop(int timeout_ms)
{
	g_guard_fired = false;
	guint guard = g_timeout_add_full(G_PRIORITY_HIGH, (guint)timeout_ms, guard_fire, NULL,
					 NULL);
	g_main_loop_run(g_loop);
	if (!g_guard_fired)
		g_source_remove(guard);
	return !g_guard_fired;
}

static atomic_long g_glib_diags;

static void count_glib_diag(const gchar *domain, GLogLevelFlags level, const gchar *msg,
			    gpointer user)
{
	(void)domain;
	(void)level;
	(void)user;
	atomic_fetch_add(&g_glib_diags, 1);
	printf("  (captured) %s\n", msg);
}

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void sleep_us(long us)
{
	struct timespec ts = { us / 1000000, (us % 1000000) * 1000 };
	nanosleep(&ts, NULL);
}

/* ---- relay's side: a worker in a relay_thread, a sink in main ---- */

typedef struct worker {
	relay_object base;
	RELAY_SIGNAL(progress, int);
	RELAY_SIGNAL(complete);
} worker;

static const relay_class worker_class = { .name = "worker", .size = sizeof(worker) };

/* Lives in the thread that creates it; its slots check where they run. */
typedef struct sink {
	relay_object base;
	long count;                /* progress received (the sink's thread) */
	int last;
	bool out_of_order, off_thread, not_owner;
	int min_depth;             /* smallest g_main_depth() seen in a slot */
	long target;               /* quit `quit` when count reaches it (0: never) */
	GMainLoop *quit;
	long work_ns;              /* each progress costs this much (a flood's slot) */
	long completes;
	atomic_long served;        /* blocking calls served */
	long served_target;
	long served_at_detach;
	pthread_t thread;
	GSource *source;           /* the source that dispatched a slot, referenced */
} sink;

static const relay_class sink_class = { .name = "sink", .size = sizeof(sink) };

static sink *sink_new(void)
{
	sink *s = NULL;
	assert_int_equal(relay_object_new(&s, &sink_class, NULL), 0);
	s->last = -1;
	s->min_depth = 1000;
	s->thread = pthread_self();
	return s;
}

static void sink_check_here(sink *s)
{
	if (!pthread_equal(pthread_self(), s->thread))
		s->off_thread = true;
	if (!g_main_context_is_owner(g_main_context_get_thread_default()
					     ? g_main_context_get_thread_default()
					     : g_main_context_default()))
		s->not_owner = true;
	if (g_main_depth() < s->min_depth)
		s->min_depth = g_main_depth();
	if (!s->source && g_main_current_source())
		s->source = g_source_ref(g_main_current_source());
}

static void sink_destroy(sink *s)
{
	if (s->source)
		g_source_unref(s->source);
	assert_int_equal(relay_object_destroy(s), 0);
}

/* The source that ran s's slots is relay-glib's, and destroyed once
 * detached. */
static void check_source(sink *s, int priority, bool destroyed)
{
	assert_non_null(s->source);
	assert_string_equal(g_source_get_name(s->source), "[relay] loop");
	assert_int_equal(g_source_get_priority(s->source), priority);
	assert_true(g_source_get_can_recurse(s->source));
	assert_true(g_source_is_destroyed(s->source) == destroyed);
}

static void sink_on_progress(sink *s, const int *v)
{
	sink_check_here(s);
	if (*v != s->last + 1)
		s->out_of_order = true;
	s->last = *v;
	s->count++;
	if (s->work_ns) {
		int64_t until = now_ns() + s->work_ns;   /* a slot that costs: work */
		while (now_ns() < until) {
		}
	}
	if (s->target && s->count == s->target && s->quit)
		g_main_loop_quit(s->quit);
}

static void sink_on_complete(sink *s)
{
	sink_check_here(s);
	s->completes++;
	if (s->quit)
		g_main_loop_quit(s->quit);
}

static int sink_serve(void *data)
{
	sink *s = data;
	sink_check_here(s);
	long n = atomic_fetch_add(&s->served, 1) + 1;
	if (s->served_target && n == s->served_target && s->quit)
		g_main_loop_quit(s->quit);
	return (int)n;
}

static void sink_check_clean(sink *s)
{
	assert_false(s->off_thread);
	assert_false(s->not_owner);
	assert_false(s->out_of_order);
}

/* The worker and its thread. */
typedef struct crew {
	relay_thread *thread;
	worker *w;
} crew;

static crew crew_start(sink *s)
{
	crew c = { support_thread_start("glib-worker"), NULL };
	assert_int_equal(relay_object_new(&c.w, &worker_class, NULL), 0);
	assert_int_equal(relay_object_move_to_thread(c.w, c.thread), 0);
	if (s) {
		assert_int_equal(relay_connect(c.w, progress, s, sink_on_progress), 0);
		assert_int_equal(relay_connect(c.w, complete, s, sink_on_complete), 0);
	}
	return c;
}

static void crew_stop(crew *c)
{
	assert_int_equal(relay_object_delete_later(c->w), 0);
	support_thread_stop(c->thread);
}

/* Runs in the worker's thread (relay_invoke). */
typedef struct emit_job {
	worker *w;
	int n;
	int blocking;              /* then this many blocking calls into `to` */
	sink *to;
	atomic_int done;
	atomic_long errors;
} emit_job;

static void emit_run(void *data)
{
	emit_job *j = data;
	for (int i = 0; i < j->n; i++)
		WCHECK(relay_emit(j->w, progress, &i) == 0);
	for (int i = 0; i < j->blocking; i++) {
		int result = 0;
		if (relay_invoke_blocking(j->to, sink_serve, j->to, &result) != 0)
			atomic_fetch_add(&j->errors, 1);
	}
	atomic_store(&j->done, 1);
	WCHECK(relay_emit(j->w, complete) == 0);   /* j is not used after it */
}

/* Deliver what a test left queued to the main thread (its loop is not
 * attached then). */
static void drain_main(void)
{
	support_drain(1000);
}

/* ---- G1: queued signals ---- */

static void test_G1_queued_signals_arrive_in_main_inside_g_main_loop_run(void **state)
{
	(void)state;
	sink *s = sink_new();
	s->quit = g_loop;
	crew c = crew_start(s);
	assert_int_equal(relay_glib_attach(NULL, RELAY_GLIB_PRIORITY, NULL), 0);
	assert_true(relay_glib_is_attached());

	emit_job j = { .w = c.w, .n = (int)support_param("GLIB_EVENTS", 20000) };
	assert_int_equal(relay_invoke(c.w, emit_run, &j, NULL), 0);
	assert_true(run_loop(SUPPORT_TIMEOUT_MS));
	assert_int_equal(s->completes, 1);
	assert_int_equal(s->count, j.n);
	assert_int_equal(s->last, j.n - 1);
	assert_int_equal(s->min_depth, 1);   /* dispatched by GLib */
	sink_check_clean(s);
	check_source(s, G_PRIORITY_DEFAULT_IDLE, false);

	assert_int_equal(relay_glib_detach(), 0);
	assert_false(relay_glib_is_attached());
	check_source(s, G_PRIORITY_DEFAULT_IDLE, true);
	crew_stop(&c);
	drain_main();
	sink_destroy(s);
}

/* ---- G2: timers ---- */

typedef struct ticker {
	relay_object base;
	int shots, ticks, single;
	int64_t t0, shot_at, single_at;
	relay_timer *repeat, *once;
} ticker;

static const relay_class ticker_class = { .name = "ticker", .size = sizeof(ticker) };

static void ticker_maybe_done(ticker *t)
{
	if (t->shots == 1 && t->ticks >= 5 && t->single == 1)
		g_main_loop_quit(g_loop);
}

static void ticker_on_shot(ticker *t)
{
	t->shots++;
	t->shot_at = now_ns();
	ticker_maybe_done(t);
}

static void ticker_on_repeat(ticker *t)
{
	if (++t->ticks == 5)
		assert_int_equal(relay_timer_stop(t->repeat), 0);
	ticker_maybe_done(t);
}

static void ticker_on_once(ticker *t)
{
	t->single++;
	t->single_at = now_ns();
	ticker_maybe_done(t);
}

static void test_G2_relay_timers_fire_under_glib(void **state)
{
	(void)state;
	ticker *t = NULL;
	assert_int_equal(relay_object_new(&t, &ticker_class, NULL), 0);
	assert_int_equal(relay_timer_create(t, &t->repeat), 0);
	assert_int_equal(relay_timer_create(t, &t->once), 0);
	assert_int_equal(relay_connect(t->repeat, timeout, t, ticker_on_repeat), 0);
	assert_int_equal(relay_connect(t->once, timeout, t, ticker_on_once), 0);
	assert_int_equal(relay_timer_set_single_shot(t->once, true), 0);
	assert_int_equal(relay_glib_attach(NULL, RELAY_GLIB_PRIORITY, NULL), 0);

	t->t0 = now_ns();
	assert_int_equal(relay_single_shot(30, t, ticker_on_shot), 0);
	assert_int_equal(relay_timer_start(t->repeat, 5), 0);
	assert_int_equal(relay_timer_start(t->once, 50), 0);
	assert_true(run_loop(SUPPORT_TIMEOUT_MS));
	assert_int_equal(t->shots, 1);
	assert_int_equal(t->single, 1);
	assert_int_equal(t->ticks, 5);
	/* Never early (a lower bound: the clock is monotonic). */
	assert_true(t->shot_at - t->t0 >= 30 * 1000000LL);
	assert_true(t->single_at - t->t0 >= 50 * 1000000LL);
	assert_false(relay_timer_is_active(t->repeat));

	assert_int_equal(relay_glib_detach(), 0);
	assert_int_equal(relay_object_destroy(t), 0);
}

/* ---- G3: blocking calls into main ---- */

typedef struct caller {
	sink *to;
	int n;
	unsigned seed;
	atomic_long errors;
	atomic_long released;      /* waiting when the loop was detached */
	atomic_int last_rc;
	atomic_int done;
} caller;

static void *blocking_caller(void *arg)
{
	caller *c = arg;
	unsigned r = c->seed;
	for (int i = 0; i < c->n; i++) {
		r = r * 1103515245u + 12345u;
		if ((r >> 16) % 4 == 0)
			sleep_us((r >> 20) % 200);   /* jitter, not synchronisation */
		int result = 0;
		int rc = relay_invoke_blocking(c->to, sink_serve, c->to, &result);
		atomic_store(&c->last_rc, rc);
		if (rc != 0)
			atomic_fetch_add(&c->errors, 1);
	}
	atomic_store(&c->done, 1);
	return NULL;
}

static void test_G3_blocking_calls_into_main_no_lost_wakeup(void **state)
{
	(void)state;
	sink *s = sink_new();
	s->quit = g_loop;
	enum { CALLERS = 4 };
	int per = (int)support_param("GLIB_CALLS", 4000) / CALLERS;
	s->served_target = (long)per * CALLERS;
	assert_int_equal(relay_glib_attach(NULL, RELAY_GLIB_PRIORITY, NULL), 0);
	caller c[CALLERS];
	pthread_t th[CALLERS];
	for (int i = 0; i < CALLERS; i++) {
		c[i] = (caller){ .to = s, .n = per, .seed = 7u + (unsigned)i };
		assert_int_equal(pthread_create(&th[i], NULL, blocking_caller, &c[i]), 0);
	}
	/* Nothing else wakes this loop: every call needs its wake-up. */
	assert_true(run_loop(SUPPORT_TIMEOUT_MS * 4));
	for (int i = 0; i < CALLERS; i++) {
		assert_int_equal(pthread_join(th[i], NULL), 0);
		assert_int_equal(atomic_load(&c[i].errors), 0);
	}
	assert_int_equal(atomic_load(&s->served), s->served_target);
	sink_check_clean(s);
	assert_int_equal(s->min_depth, 1);
	printf("  G3: %ld blocking calls from %d threads served under GLib\n",
	       s->served_target, CALLERS);
	assert_int_equal(relay_glib_detach(), 0);
	sink_destroy(s);
}

/* ---- G4: a nested GLib loop inside a slot ---- */

typedef struct modal {
	relay_object base;
	sink *s;
	crew *c;
	emit_job *job;
	int depth_outside;
	long count_inside;
	long served_inside;
} modal;

static const relay_class modal_class = { .name = "modal", .size = sizeof(modal) };

static void modal_open(void *data)   /* a slot of the main thread: a dialog */
{
	modal *m = data;
	m->depth_outside = g_main_depth();
	g_nested = g_main_loop_new(NULL, FALSE);
	m->s->quit = g_nested;               /* its complete ends the dialog */
	WCHECK(relay_invoke(m->c->w, emit_run, m->job, NULL) == 0);
	g_main_loop_run(g_nested);           /* relay events keep coming here */
	m->count_inside = m->s->count;
	m->served_inside = atomic_load(&m->s->served);
	g_main_loop_unref(g_nested);
	g_nested = NULL;
	m->s->quit = NULL;
	g_main_loop_quit(g_loop);
}

static void test_G4_nested_g_main_loop_in_a_slot_still_gets_relay_events(void **state)
{
	(void)state;
	sink *s = sink_new();
	crew c = crew_start(s);
	emit_job j = { .w = c.w, .n = 5000, .blocking = 200, .to = s };
	modal *m = NULL;
	assert_int_equal(relay_object_new(&m, &modal_class, NULL), 0);
	m->s = s;
	m->c = &c;
	m->job = &j;
	assert_int_equal(relay_glib_attach(NULL, RELAY_GLIB_PRIORITY, NULL), 0);
	assert_int_equal(relay_invoke(m, modal_open, m, NULL), 0);
	assert_true(run_loop(SUPPORT_TIMEOUT_MS));
	assert_int_equal(m->depth_outside, 1);
	/* Everything arrived inside the nested loop, dispatched by it. */
	assert_int_equal(m->count_inside, j.n);
	assert_int_equal(m->served_inside, j.blocking);
	assert_int_equal(s->completes, 1);
	assert_int_equal(s->min_depth, 2);
	assert_int_equal(atomic_load(&j.errors), 0);
	sink_check_clean(s);
	assert_int_equal(relay_glib_detach(), 0);
	crew_stop(&c);
	drain_main();
	assert_int_equal(relay_object_destroy(m), 0);
	sink_destroy(s);
}

/* ---- G5: relay_main_quit / relay_main_exit reach the host ---- */

typedef struct quits {
	int calls;
	int code;
} quits;

static void on_quit(void *user, int code)
{
	quits *q = user;
	q->calls++;
	q->code = code;
	assert_true(relay_is_main_thread());
}

static void *exit_from_worker(void *arg)
{
	int code = *(int *)arg;
	WCHECK((code ? relay_main_exit(code) : relay_main_quit()) == 0);
	return NULL;
}

static void quit_in_slot(void *data)
{
	(void)data;
	WCHECK(relay_loop_quit() == 0);   /* no relay loop runs: the host's */
}

static void quit_g_loop(void *data)
{
	(void)data;
	g_main_loop_quit(g_loop);
}

static void test_G5_main_quit_from_worker_quits_the_host_loop(void **state)
{
	(void)state;
	quits q = { 0, -1 };
	relay_glib_hooks hooks = { .quit = on_quit, .user = &q, .loop = g_loop };
	assert_int_equal(relay_glib_attach(NULL, RELAY_GLIB_PRIORITY, &hooks), 0);
	pthread_t th;
	int seven = 7, zero = 0;

	assert_int_equal(pthread_create(&th, NULL, exit_from_worker, &seven), 0);
	assert_true(run_loop(SUPPORT_TIMEOUT_MS));   /* the hook quit it */
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_int_equal(q.calls, 1);
	assert_int_equal(q.code, 7);

	assert_int_equal(pthread_create(&th, NULL, exit_from_worker, &zero), 0);
	assert_true(run_loop(SUPPORT_TIMEOUT_MS));
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_int_equal(q.calls, 2);
	assert_int_equal(q.code, 0);

	/* relay_loop_quit in a slot, with no relay loop running: the host. */
	sink *s = sink_new();
	assert_int_equal(relay_invoke(s, quit_in_slot, NULL, NULL), 0);
	assert_true(run_loop(SUPPORT_TIMEOUT_MS));
	assert_int_equal(q.calls, 3);
	assert_int_equal(relay_glib_detach(), 0);

	/* Without hooks relay reports the quit and the host goes on. */
	support_diag d;
	support_diag_begin(&d);
	assert_int_equal(relay_glib_attach(NULL, RELAY_GLIB_PRIORITY, NULL), 0);
	assert_int_equal(pthread_create(&th, NULL, exit_from_worker, &zero), 0);
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_int_equal(relay_invoke(s, quit_g_loop, NULL, NULL), 0);
	assert_true(run_loop(SUPPORT_TIMEOUT_MS));
	assert_int_equal(support_diag_count(&d), 1);
	support_diag_end(&d);
	assert_int_equal(q.calls, 3);
	assert_int_equal(relay_glib_detach(), 0);
	sink_destroy(s);
}

/* ---- G6: detach while workers post ---- */

typedef struct spammer {
	worker *w;
	sink *to;
	atomic_int stop;
	atomic_int done;
	long emitted;
} spammer;

static int pace(void *data)
{
	(void)data;
	return 0;
}

/* Emits until told to stop (at most 200000), waiting every 500 events
 * until the main thread has caught up (a blocking call behind them), so
 * that the queue stays short while the main thread serves: then refused. */
static void spam_run(void *data)
{
	spammer *sp = data;
	int i = 0;
	bool paced = true;
	while (!atomic_load(&sp->stop) && i < 200000) {
		WCHECK(relay_emit(sp->w, progress, &i) == 0);
		i++;
		if (paced && i % 500 == 0) {
			int rc = relay_invoke_blocking(sp->to, pace, NULL, NULL);
			WCHECK(rc == 0 || rc == RELAY_ENOTRUNNING || rc == RELAY_ENOTDELIVERED);
			paced = rc == 0;
		}
	}
	sp->emitted = i;
	WCHECK(relay_emit(sp->w, complete) == 0);
	atomic_store(&sp->done, 1);
}

/* Keeps calling until refused: returns with the refusal. */
static void *call_until_refused(void *arg)
{
	caller *c = arg;
	for (int i = 0; i < 1000000; i++) {
		int result = 0;
		int rc = relay_invoke_blocking(c->to, sink_serve, c->to, &result);
		atomic_store(&c->last_rc, rc);
		if (rc == RELAY_ENOTRUNNING)
			break;
		/* Waiting when the detach came: released, fn did not run (relay
		 * says RELAY_ENOTDELIVERED; relay.h promises RELAY_ENOTRUNNING). */
		if (rc == RELAY_ENOTDELIVERED) {
			atomic_fetch_add(&c->released, 1);
			continue;
		}
		if (rc != 0) {
			fprintf(stderr, "call_until_refused: %s\n", relay_strerror(rc));
			atomic_fetch_add(&c->errors, 1);
		}
	}
	atomic_store(&c->done, 1);
	return NULL;
}

static int serve_then_detach(void *data)
{
	sink *s = data;
	sink_check_here(s);
	long n = atomic_fetch_add(&s->served, 1) + 1;
	if (n >= s->served_target && relay_glib_is_attached()) {
		/* Inside the source's own dispatch. */
		s->served_at_detach = n;
		WCHECK(relay_glib_detach() == 0);
		WCHECK(!relay_glib_is_attached());
		g_main_loop_quit(g_loop);
	}
	return (int)n;
}

static void *call_detaching(void *arg)
{
	caller *c = arg;
	for (int i = 0; i < 1000000; i++) {
		int result = 0;
		int rc = relay_invoke_blocking(c->to, serve_then_detach, c->to, &result);
		atomic_store(&c->last_rc, rc);
		if (rc == RELAY_ENOTRUNNING)
			break;
		/* Waiting when the detach came: released, fn did not run (relay
		 * says RELAY_ENOTDELIVERED; relay.h promises RELAY_ENOTRUNNING). */
		if (rc == RELAY_ENOTDELIVERED) {
			atomic_fetch_add(&c->released, 1);
			continue;
		}
		if (rc != 0) {
			fprintf(stderr, "call_detaching: %s\n", relay_strerror(rc));
			atomic_fetch_add(&c->errors, 1);
		}
	}
	atomic_store(&c->done, 1);
	return NULL;
}

static void test_G6_detach_while_workers_post_refuses_blocking_calls(void **state)
{
	(void)state;
	sink *s = sink_new();
	crew c = crew_start(s);
	spammer sp = { .w = c.w, .to = s };
	s->served_target = 300;
	assert_int_equal(relay_glib_attach(NULL, RELAY_GLIB_PRIORITY, NULL), 0);
	assert_int_equal(relay_invoke(c.w, spam_run, &sp, NULL), 0);
	caller k[2] = { { .to = s }, { .to = s } };
	pthread_t th[2];
	assert_int_equal(pthread_create(&th[0], NULL, call_detaching, &k[0]), 0);
	assert_int_equal(pthread_create(&th[1], NULL, call_until_refused, &k[1]), 0);
	/* The 300th served call detaches, from a slot, and quits. */
	assert_true(run_loop(SUPPORT_TIMEOUT_MS));
	assert_false(relay_glib_is_attached());
	check_source(s, RELAY_GLIB_PRIORITY, true);
	/* Both callers come back refused, waiting or not: none hangs. This
	 * thread runs no relay pass meanwhile (a pass would make it serve
	 * blocking calls again). */
	for (int i = 0; i < 2; i++) {
		assert_true(support_wait_flag(&k[i].done, 1, SUPPORT_TIMEOUT_MS));
		assert_int_equal(pthread_join(th[i], NULL), 0);
		assert_int_equal(atomic_load(&k[i].last_rc), RELAY_ENOTRUNNING);
		assert_int_equal(atomic_load(&k[i].errors), 0);
	}
	long served = atomic_load(&s->served);
	assert_true(s->served_at_detach >= s->served_target);
	printf("  G6: served %ld blocking calls before the detach, %ld after it in the same "
	       "dispatch\n", s->served_at_detach, served - s->served_at_detach);
	long released = atomic_load(&k[0].released) + atomic_load(&k[1].released);

	/* What was posted meanwhile stayed queued: attach again, it all
	 * arrives, in order, then complete. */
	atomic_store(&sp.stop, 1);
	assert_true(support_wait_flag(&sp.done, 1, SUPPORT_TIMEOUT_MS));
	s->quit = g_loop;
	assert_int_equal(relay_glib_attach(NULL, RELAY_GLIB_PRIORITY, NULL), 0);
	assert_true(run_loop(SUPPORT_TIMEOUT_MS));
	assert_int_equal(s->completes, 1);
	assert_int_equal(s->count, sp.emitted);
	sink_check_clean(s);
	printf("  G6: %ld events across detach and attach, %ld blocking calls served, "
	       "%ld released by the detach\n", sp.emitted, served, released);
	assert_int_equal(relay_glib_detach(), 0);
	crew_stop(&c);
	drain_main();
	sink_destroy(s);
}

/* ---- G7: a flood does not starve GTK's redraw priority ---- */

typedef struct frames {
	long ticks;
} frames;

static gboolean frame_tick(gpointer data)
{
	((frames *)data)->ticks++;
	return G_SOURCE_CONTINUE;
}

static gboolean window_end(gpointer data)
{
	(void)data;
	g_main_loop_quit(g_loop);
	return G_SOURCE_REMOVE;
}

/* GDK_PRIORITY_REDRAW, without GTK: gdk/gdkevents.h. */
#define REDRAW_PRIORITY (G_PRIORITY_HIGH_IDLE + 20)

/* Ticks per second of a 60 Hz timeout at the redraw priority while a
 * worker floods the main thread; *delivered: events run meanwhile. */
static double flood_tick_rate(int priority, long *delivered)
{
	sink *s = sink_new();
	crew c = crew_start(s);
	emit_job j = { .w = c.w, .n = (int)support_param("GLIB_FLOOD", 1000000) };
	s->work_ns = 2000;      /* a slot that does something: 2 us */
	assert_int_equal(relay_glib_attach(NULL, priority, NULL), 0);
	assert_int_equal(relay_invoke(c.w, emit_run, &j, NULL), 0);

	frames f = { 0 };
	const int window_ms = 2000;
	guint tick = g_timeout_add_full(REDRAW_PRIORITY, 16, frame_tick, &f, NULL);
	/* The window's end outranks relay at any priority given here. */
	g_timeout_add_full(G_PRIORITY_HIGH, window_ms, window_end, NULL, NULL);
	int64_t t0 = now_ns();
	g_main_loop_run(g_loop);
	double secs = (double)(now_ns() - t0) / 1e9;
	g_source_remove(tick);
	*delivered = s->count;

	/* The rest, cheaply, to the worker's complete. */
	s->work_ns = 0;
	s->quit = g_loop;
	if (!s->completes)
		assert_true(run_loop(SUPPORT_TIMEOUT_MS * 4));
	assert_int_equal(s->count, j.n);
	sink_check_clean(s);
	assert_int_equal(relay_glib_detach(), 0);
	crew_stop(&c);
	drain_main();
	sink_destroy(s);
	relay_release_caches();
	return (double)f.ticks / secs;
}

static void test_G7_flood_keeps_redraw_ticking_at_default_priority(void **state)
{
	(void)state;
	long at_idle = 0, at_default = 0;
	double rate_idle = flood_tick_rate(RELAY_GLIB_PRIORITY, &at_idle);
	double rate_default = flood_tick_rate(G_PRIORITY_DEFAULT, &at_default);
	printf("  G7: 60 Hz timeout at priority %d under a flood of %ld events:\n"
	       "      relay at RELAY_GLIB_PRIORITY (%d): %.1f ticks/s (%ld events run in the window)\n"
	       "      relay at G_PRIORITY_DEFAULT (%d):   %.1f ticks/s (%ld events run in the window)\n",
	       REDRAW_PRIORITY, support_param("GLIB_FLOOD", 1000000), RELAY_GLIB_PRIORITY,
	       rate_idle, at_idle, G_PRIORITY_DEFAULT, rate_default, at_default);
	assert_true(rate_idle >= 10.0);
	assert_true(at_idle > 0);
}

/* ---- G8: an idle loop sleeps ---- */

static int64_t thread_cpu_us(void)
{
	struct rusage ru;
	getrusage(RUSAGE_THREAD, &ru);
	return (int64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000 +
	       ru.ru_utime.tv_usec + ru.ru_stime.tv_usec;
}

static void test_G8_idle_glib_loop_does_not_spin(void **state)
{
	(void)state;
	/* Work first, so that there is something to be done with. */
	sink *s = sink_new();
	s->quit = g_loop;
	crew c = crew_start(s);
	emit_job j = { .w = c.w, .n = 10000, .blocking = 100, .to = s };
	assert_int_equal(relay_glib_attach(NULL, RELAY_GLIB_PRIORITY, NULL), 0);
	assert_int_equal(relay_invoke(c.w, emit_run, &j, NULL), 0);
	assert_true(run_loop(SUPPORT_TIMEOUT_MS));
	assert_int_equal(s->count, j.n);

	/* 1 s with nothing to do, then 1 s with a relay timer every 100 ms. */
	relay_loop_stats before, after;
	for (int round = 0; round < 2; round++) {
		relay_timer *timer = NULL;
		if (round == 1) {
			assert_int_equal(relay_timer_create(NULL, &timer), 0);
			assert_int_equal(relay_connect(timer, timeout, s, sink_on_complete), 0);
			s->quit = NULL;
			s->completes = 0;
			assert_int_equal(relay_timer_start(timer, 100), 0);
		}
		assert_int_equal(relay_thread_stats(relay_thread_main(), &before), 0);
		int64_t cpu0 = thread_cpu_us();
		g_timeout_add_full(G_PRIORITY_HIGH, 1000, window_end, NULL, NULL);
		g_main_loop_run(g_loop);
		int64_t cpu = thread_cpu_us() - cpu0;
		assert_int_equal(relay_thread_stats(relay_thread_main(), &after), 0);
		uint64_t passes = after.passes - before.passes;
		printf("  G8: idle 1 s%s: main thread CPU %.1f ms, %llu relay dispatches\n",
		       round ? " with a 100 ms relay timer" : "", cpu / 1000.0,
		       (unsigned long long)passes);
		assert_true(cpu < 50000);
		if (round == 0) {
			assert_true(passes <= 5);
		} else {
			/* At most one per 100 ms (never early), at least one. */
			assert_true(s->completes >= 1 && s->completes <= 10);
			assert_true(passes <= 30);
			assert_int_equal(relay_object_destroy(timer), 0);
		}
	}
	assert_int_equal(relay_glib_detach(), 0);
	crew_stop(&c);
	drain_main();
	sink_destroy(s);
}

/* ---- G9: the context iterated by the wrong thread ---- */

static int g_marks;

static void mark(void *data)
{
	(void)data;
	g_marks++;
	if (g_loop)
		g_main_loop_quit(g_loop);
}

static gboolean noop_remove(gpointer data)
{
	(void)data;
	return G_SOURCE_REMOVE;
}

typedef struct intruder {
	int iterations;
	atomic_int dispatched_any;
	int64_t cpu_us;
} intruder;

static void *iterate_elsewhere(void *arg)
{
	intruder *in = arg;
	int64_t cpu0 = thread_cpu_us();
	for (int i = 0; i < in->iterations; i++)
		if (g_main_context_iteration(NULL, FALSE))
			atomic_store(&in->dispatched_any, 1);
	/* Blocking now, with nothing of its own to do: relay's fd is masked
	 * for this thread, so it sleeps until this timeout. */
	GSource *t = g_timeout_source_new(200);
	g_source_set_callback(t, noop_remove, NULL, NULL);
	g_source_attach(t, NULL);
	int64_t t0 = now_ns();
	while (now_ns() - t0 < 150 * 1000000LL)
		g_main_context_iteration(NULL, TRUE);
	g_source_destroy(t);
	g_source_unref(t);
	in->cpu_us = thread_cpu_us() - cpu0;
	return NULL;
}

static void test_G9_context_iterated_by_another_thread_runs_nothing_there(void **state)
{
	(void)state;
	sink *s = sink_new();
	g_marks = 0;
	assert_int_equal(relay_glib_attach(NULL, RELAY_GLIB_PRIORITY, NULL), 0);
	assert_int_equal(relay_invoke(s, mark, NULL, NULL), 0);
	long diags = atomic_load(&g_glib_diags);
	intruder in = { .iterations = 50 };
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, iterate_elsewhere, &in), 0);
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_int_equal(g_marks, 0);                       /* nothing ran there */
	assert_int_equal(atomic_load(&g_glib_diags) - diags, 1);   /* said once */
	printf("  G9: the other thread's 150 ms of blocking iterations cost %.1f ms CPU\n",
	       in.cpu_us / 1000.0);
	assert_true(in.cpu_us < 50000);
	/* Back in the bound thread, it runs. */
	assert_true(run_loop(SUPPORT_TIMEOUT_MS));
	assert_int_equal(g_marks, 1);
	assert_int_equal(relay_glib_detach(), 0);
	sink_destroy(s);
}

/* ---- G10: refused attach and detach ---- */

static int attach_here(void *data)
{
	GMainContext *ctx = g_main_context_new();
	int rc = relay_glib_attach(ctx, RELAY_GLIB_PRIORITY, NULL);
	g_main_context_unref(ctx);
	(void)data;
	return rc;
}

typedef struct owner {
	GMainContext *ctx;
	atomic_int owned, release;
} owner;

static void *own_context(void *arg)
{
	owner *o = arg;
	WCHECK(g_main_context_acquire(o->ctx));
	atomic_store(&o->owned, 1);
	support_wait_flag(&o->release, 1, SUPPORT_TIMEOUT_MS);
	g_main_context_release(o->ctx);
	return NULL;
}

static void test_G10_attach_and_detach_misuse_refused(void **state)
{
	(void)state;
	long diags = atomic_load(&g_glib_diags);
	assert_int_equal(relay_glib_detach(), -EINVAL);
	assert_int_equal(relay_glib_attach(NULL, RELAY_GLIB_PRIORITY, NULL), 0);
	assert_int_equal(relay_glib_attach(NULL, RELAY_GLIB_PRIORITY, NULL), -EEXIST);
	assert_int_equal(relay_glib_detach(), 0);
	assert_int_equal(atomic_load(&g_glib_diags) - diags, 2);

	/* Another host has the loop: relay refuses (its own diagnostic). */
	support_diag d;
	support_diag_begin(&d);
	assert_int_equal(relay_loop_attach(NULL), 0);
	assert_int_equal(relay_glib_attach(NULL, RELAY_GLIB_PRIORITY, NULL), -EEXIST);
	assert_false(relay_glib_is_attached());
	assert_int_equal(relay_loop_detach(), 0);

	/* A relay_thread runs its own loop. */
	sink *s = sink_new();
	relay_thread *t = support_thread_start("glib-refused");
	assert_int_equal(relay_object_move_to_thread(s, t), 0);
	int result = 0;
	assert_int_equal(relay_invoke_blocking(s, attach_here, NULL, &result), 0);
	assert_int_equal(result, -EINVAL);
	assert_int_equal(support_diag_count(&d), 2);
	support_diag_end(&d);
	assert_int_equal(relay_object_delete_later(s), 0);
	support_thread_stop(t);

	/* A context another thread owns. */
	owner o = { .ctx = g_main_context_new() };
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, own_context, &o), 0);
	assert_true(support_wait_flag(&o.owned, 1, SUPPORT_TIMEOUT_MS));
	diags = atomic_load(&g_glib_diags);
	assert_int_equal(relay_glib_attach(o.ctx, RELAY_GLIB_PRIORITY, NULL), RELAY_EWRONGTHREAD);
	assert_int_equal(atomic_load(&g_glib_diags) - diags, 1);
	assert_false(relay_glib_is_attached());
	atomic_store(&o.release, 1);
	assert_int_equal(pthread_join(th, NULL), 0);
	g_main_context_unref(o.ctx);
}

/* ---- G11: a thread of yours, with a context of its own ---- */

typedef struct own_loop {
	_Atomic(sink *) s;
	GMainContext *ctx;
	atomic_int attach_rc;
	atomic_int done;
	long served_here;
	bool owner_ok;
} own_loop;

static int serve_own(void *data)
{
	own_loop *ol = data;
	sink *s = atomic_load(&ol->s);
	if (!pthread_equal(pthread_self(), s->thread) || !g_main_context_is_owner(ol->ctx) ||
	    relay_is_main_thread())
		ol->owner_ok = false;
	return (int)++ol->served_here;
}

static void *own_loop_main(void *arg)
{
	own_loop *ol = arg;
	GMainContext *ctx = ol->ctx;
	g_main_context_push_thread_default(ctx);
	GMainLoop *loop = g_main_loop_new(ctx, FALSE);
	sink *s = sink_new();   /* lives in this thread */
	relay_glib_hooks hooks = { .loop = loop };
	int rc = relay_glib_attach(ctx, RELAY_GLIB_PRIORITY, &hooks);
	atomic_store(&ol->attach_rc, rc == 0 ? 1 : rc);
	atomic_store(&ol->s, s);
	if (rc == 0) {
		g_main_loop_unref(loop);   /* relay-glib holds one until detach */
		g_main_loop_run(loop);     /* until relay_thread_quit of this thread */
		WCHECK(relay_glib_detach() == 0);
	} else {
		g_main_loop_unref(loop);
	}
	atomic_store(&ol->s, NULL);
	if (s->source)
		g_source_unref(s->source);
	WCHECK(relay_object_destroy(s) == 0);
	g_main_context_pop_thread_default(ctx);
	atomic_store(&ol->done, 1);
	return NULL;
}

static void test_G11_thread_of_yours_with_its_own_context(void **state)
{
	(void)state;
	own_loop ol = { .ctx = g_main_context_new(), .owner_ok = true };
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, own_loop_main, &ol), 0);
	assert_true(support_wait_flag(&ol.attach_rc, 1, SUPPORT_TIMEOUT_MS));
	sink *s = atomic_load(&ol.s);
	for (int i = 0; i < 500; i++) {
		int result = 0;
		assert_int_equal(relay_invoke_blocking(s, serve_own, &ol, &result), 0);
		assert_int_equal(result, i + 1);
	}
	relay_thread *t = relay_object_thread(s);
	assert_non_null(t);
	assert_int_equal(relay_thread_quit(t), 0);   /* reaches its GMainLoop */
	assert_true(support_wait_flag(&ol.done, 1, SUPPORT_TIMEOUT_MS));
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_true(ol.owner_ok);
	assert_int_equal(ol.served_here, 500);
	g_main_context_unref(ol.ctx);
}

/* ---- G12: relay_main_shutdown while attached ---- */

static void test_G12_main_shutdown_while_attached(void **state)
{
	(void)state;
	sink *s = sink_new();
	s->quit = g_loop;
	crew c = crew_start(s);
	emit_job j = { .w = c.w, .n = 1000, .blocking = 10, .to = s };
	assert_int_equal(relay_glib_attach(NULL, RELAY_GLIB_PRIORITY, NULL), 0);
	assert_int_equal(relay_invoke(c.w, emit_run, &j, NULL), 0);
	assert_true(run_loop(SUPPORT_TIMEOUT_MS));
	/* As after g_application_run: stop the threads, then detach. */
	assert_int_equal(relay_main_shutdown(SUPPORT_TIMEOUT_MS), 0);
	assert_true(relay_thread_is_finished(c.thread));
	assert_int_equal(relay_glib_detach(), 0);
	assert_int_equal(s->count, j.n);
	assert_int_equal(atomic_load(&j.errors), 0);
	assert_int_equal(relay_object_delete_later(c.w), 0);   /* its thread has finished */
	assert_int_equal(relay_thread_destroy(c.thread), 0);
	sink_destroy(s);
}

/* ---- G13: a relay_watcher under GLib ---- */

typedef struct reader {
	relay_object base;
	relay_watcher *w;
	long bytes, target;
	int activations;
	bool eof, off_thread;
} reader;

static const relay_class reader_class = { .name = "reader", .size = sizeof(reader) };

static void reader_on_ready(reader *r, const int *fd)
{
	r->activations++;
	if (!relay_is_main_thread())
		r->off_thread = true;
	char buf[256];
	for (;;) {
		ssize_t n = read(*fd, buf, sizeof buf);
		if (n > 0) {
			r->bytes += n;
			continue;
		}
		if (n == 0) {   /* end of file: stop watching, or it fires every pass */
			r->eof = true;
			assert_int_equal(relay_watcher_set_enabled(r->w, false), 0);
			g_main_loop_quit(g_loop);
		}
		break;           /* EAGAIN: drained */
	}
	if (r->target && r->bytes >= r->target) {
		r->target = 0;
		g_main_loop_quit(g_loop);
	}
}

typedef struct writer {
	int fd, n;
} writer;

static void *write_slowly(void *arg)
{
	writer *wr = arg;
	for (int i = 0; i < wr->n; i++) {
		WCHECK(write(wr->fd, "x", 1) == 1);
		if (i % 8 == 0)
			sleep_us(100);   /* jitter: the loop sleeps between bytes */
	}
	return NULL;
}

/* Dispatches of relay's source over ms of GLib with nothing to do. */
static uint64_t idle_dispatches(int ms)
{
	relay_loop_stats before, after;
	assert_int_equal(relay_thread_stats(relay_thread_main(), &before), 0);
	g_timeout_add_full(G_PRIORITY_HIGH, (guint)ms, window_end, NULL, NULL);
	g_main_loop_run(g_loop);
	assert_int_equal(relay_thread_stats(relay_thread_main(), &after), 0);
	return after.passes - before.passes;
}

static void test_G13_watcher_fires_under_glib_and_goes_quiet(void **state)
{
	(void)state;
	int p[2];
	assert_int_equal(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
	reader *r = NULL;
	assert_int_equal(relay_object_new(&r, &reader_class, NULL), 0);
	assert_int_equal(relay_watcher_create(p[0], RELAY_WATCH_READ, r, &r->w), 0);
	assert_int_equal(relay_connect(r->w, activated, r, reader_on_ready), 0);
	assert_int_equal(relay_glib_attach(NULL, RELAY_GLIB_PRIORITY, NULL), 0);

	writer wr = { p[1], 2000 };
	r->target = wr.n;
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, write_slowly, &wr), 0);
	assert_true(run_loop(SUPPORT_TIMEOUT_MS));   /* the watcher's fd woke GLib */
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_int_equal(r->bytes, wr.n);
	assert_false(r->off_thread);

	/* Drained, still enabled: GLib sleeps (a readable fd would spin). */
	uint64_t quiet = idle_dispatches(300);
	/* End of file: the slot disables the watcher; then quiet again. */
	assert_int_equal(close(p[1]), 0);
	assert_true(run_loop(SUPPORT_TIMEOUT_MS));
	assert_true(r->eof);
	uint64_t after_eof = idle_dispatches(300);
	printf("  G13: %ld bytes in %d activations; idle dispatches: %llu drained, %llu after "
	       "EOF and disable\n", r->bytes, r->activations, (unsigned long long)quiet,
	       (unsigned long long)after_eof);
	assert_true(quiet <= 2);
	assert_true(after_eof <= 2);

	assert_int_equal(relay_glib_detach(), 0);
	assert_int_equal(relay_object_destroy(r), 0);   /* its watcher with it */
	assert_int_equal(close(p[0]), 0);
}

/* A failed test leaves nothing attached for the next one. */
static int teardown(void **state)
{
	if (relay_glib_is_attached())
		relay_glib_detach();
	return check_worker_errors(state);
}

int main(int argc, char **argv)
{
	support_set_args(argc, argv);
	setvbuf(stdout, NULL, _IOLBF, 0);
	g_log_set_handler("relay-glib", G_LOG_LEVEL_MASK | G_LOG_FLAG_FATAL, count_glib_diag,
			  NULL);
	g_loop = g_main_loop_new(NULL, FALSE);
	/* GLIB_TEST_FILTER=*G6* runs only the tests whose names match. */
	if (getenv("GLIB_TEST_FILTER"))
		cmocka_set_test_filter(getenv("GLIB_TEST_FILTER"));
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_G1_queued_signals_arrive_in_main_inside_g_main_loop_run,
					  teardown),
		cmocka_unit_test_teardown(test_G2_relay_timers_fire_under_glib, teardown),
		cmocka_unit_test_teardown(test_G3_blocking_calls_into_main_no_lost_wakeup,
					  teardown),
		cmocka_unit_test_teardown(
			test_G4_nested_g_main_loop_in_a_slot_still_gets_relay_events,
			teardown),
		cmocka_unit_test_teardown(test_G5_main_quit_from_worker_quits_the_host_loop,
					  teardown),
		cmocka_unit_test_teardown(test_G6_detach_while_workers_post_refuses_blocking_calls,
					  teardown),
		cmocka_unit_test_teardown(test_G7_flood_keeps_redraw_ticking_at_default_priority,
					  teardown),
		cmocka_unit_test_teardown(test_G8_idle_glib_loop_does_not_spin, teardown),
		cmocka_unit_test_teardown(
			test_G9_context_iterated_by_another_thread_runs_nothing_there,
			teardown),
		cmocka_unit_test_teardown(test_G10_attach_and_detach_misuse_refused,
					  teardown),
		cmocka_unit_test_teardown(test_G11_thread_of_yours_with_its_own_context,
					  teardown),
		cmocka_unit_test_teardown(test_G12_main_shutdown_while_attached,
					  teardown),
		cmocka_unit_test_teardown(test_G13_watcher_fires_under_glib_and_goes_quiet,
					  teardown),
	};
	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	g_main_loop_unref(g_loop);
	return rc;
}
