/*
 * test_alloc_sweep.c - the allocation-failure sweep: every realistic flow
 * survives any one failed allocation.
 *
 * For each scenario of the table at the end (the seed's worker flow, also
 * ending in relay_main_run; queued payloads with and without copy/free
 * hooks; timers; invoke; weak references; move_to_thread under traffic;
 * adoption of plain pthreads)
 * the harness runs the flow once unarmed (warm-up: relay keeps some state
 * of the main thread for good), once counting the allocations it makes (N,
 * across all threads), then once for each k = 1 .. N + margin with exactly
 * the k-th allocation failing. Every run must end with
 *   - no crash and no hang: every wait is bounded, and a watchdog aborts
 *     the program, naming the scenario and k, if a relay call never returns;
 *   - nothing leaked: once the flow has shut down, whatever it could not
 *     destroy has been destroyed, every thread it used has run
 *     relay_release_caches() and its threads are gone, the live allocation
 *     count is back where it was before the run (the program also runs
 *     under LeakSanitizer in the ASan build);
 *   - every call returned 0, -ENOMEM or its documented code;
 *   - no event silently lost: per receiving thread, slot calls + dropped
 *     (relay_thread_stats) cover every accepted emit or invoke, and a
 *     refused one was not delivered;
 *   - every payload copy made by a copy hook freed exactly once.
 *
 * Relay threads make allocation counts vary from run to run (ring chunks
 * and their spares, caches, who wins a race), so the k-th allocation of one
 * run is not exactly the k-th of another, and a run in which the k-th
 * allocation never happens simply passes.
 *
 * Environment:
 *   RELAY_SWEEP_SCENARIOS=a,b   only the scenarios whose names start so
 *   RELAY_SWEEP_MAX_K=n         run k = 1..n instead of 1..N + margin
 *   RELAY_SWEEP_K=k             run only this k (to reproduce one failure)
 *   RELAY_SWEEP_VERBOSE=1       print every failed check and relay's diagnostics
 *   RELAY_SWEEP_TRACE=1         print the stack of each failed allocation and
 *                               of each block a run leaks
 *   RELAY_SWEEP_ALIGN=16        align blocks as malloc does (default 64, below)
 *
 * A failed check does not stop the sweep, nor does a lost event (a wait
 * that runs out); a thread that does not stop does, since the state it
 * leaves is unknown. Each failing run prints one line: scenario, k, the
 * first failed check.
 * Never asserts on timing: timeouts are safety nets. Counters shared
 * between threads are C11 atomics (TSan clean).
 */
#include "objtest.h"

#include <execinfo.h>

/* =====================================================================
 * Knobs
 * ===================================================================== */

#define WAIT_MS 3000          /* safety net of every bounded wait */
#define RUN_LIMIT_MS 60000    /* the watchdog's limit for one run */
#define MAX_REPORTS 40        /* failing runs printed per scenario */

/* =====================================================================
 * The allocator: counts live allocations and the allocations made while
 * armed (in every thread), and fails the one whose index is g_fail_at.
 * Installed once, before the first relay call; only the index changes
 * from run to run.
 * ===================================================================== */

/* A header right in front of each block marks it live, so a release of a
 * block that is not live (a double free) is caught in builds without ASan.
 *
 * Blocks are aligned to g_align: 64 by default, although the hook's
 * contract is "like malloc" (16 here), because relay allocates its rings
 * (struct relay__ring, members declared _Alignas(64)) through the hook and
 * UBSan stops at the first misaligned access: the sweep is about failed
 * allocations. RELAY_SWEEP_ALIGN=16 gives what malloc promises. */
typedef struct ahdr {
	uint64_t magic;
	uint64_t size;
} ahdr;
static size_t g_align = 64;   /* a power of two, >= sizeof(ahdr) */
#define MAGIC_LIVE 0x4c4956452d72656cull
#define MAGIC_DEAD 0x444541442d72656cull

static atomic_long g_live;          /* blocks not yet released */
static atomic_long g_seq;           /* allocations attempted while armed */
static atomic_long g_fail_at;       /* the index that fails (0: none) */
static atomic_bool g_armed;
static atomic_long g_hit;           /* the failing index was reached */
static atomic_long g_bad_release;   /* releases of blocks that were not live */
/* > 0: the calling thread allocates for the harness's own plumbing (a
 * connection that runs relay_release_caches at a thread's end): counted
 * as live, never failed, not part of N. */
static _Thread_local int tl_quiet;
/* RELAY_SWEEP_TRACE: the stack of the failed allocation, and of each block
 * a run leaks (every live block remembers where it was made). */
static bool g_trace;

static void trace_failure(long n)
{
	void *frames[24];
	int depth = backtrace(frames, 24);
	fprintf(stderr, "[sweep] allocation %ld fails here:\n", n);
	backtrace_symbols_fd(frames, depth, 2);
}

typedef struct origin {
	struct origin *next;
	void *block;
	long run;
	int depth;
	void *frames[16];
} origin;
static pthread_mutex_t g_origin_lock = PTHREAD_MUTEX_INITIALIZER;
static origin *g_origins;    /* live blocks, when tracing */
static atomic_long g_run_id;

static void origin_add(void *block)
{
	origin *o = malloc(sizeof *o);
	if (!o)
		return;
	o->block = block;
	o->run = atomic_load(&g_run_id);
	o->depth = backtrace(o->frames, 16);
	pthread_mutex_lock(&g_origin_lock);
	o->next = g_origins;
	g_origins = o;
	pthread_mutex_unlock(&g_origin_lock);
}

static void origin_remove(void *block)
{
	pthread_mutex_lock(&g_origin_lock);
	for (origin **pp = &g_origins; *pp; pp = &(*pp)->next) {
		if ((*pp)->block == block) {
			origin *o = *pp;
			*pp = o->next;
			free(o);
			break;
		}
	}
	pthread_mutex_unlock(&g_origin_lock);
}

static void origins_print(long run)
{
	pthread_mutex_lock(&g_origin_lock);
	for (origin *o = g_origins; o; o = o->next) {
		if (o->run != run)
			continue;
		fprintf(stderr, "[sweep] block %p of this run still live, made at:\n", o->block);
		backtrace_symbols_fd(o->frames, o->depth, 2);
	}
	pthread_mutex_unlock(&g_origin_lock);
}

static void *sweep_alloc(size_t size, void *user)
{
	(void)user;
	if (atomic_load(&g_armed) && tl_quiet == 0) {
		long n = atomic_fetch_add(&g_seq, 1) + 1;
		if (n == atomic_load(&g_fail_at)) {
			atomic_fetch_add(&g_hit, 1);
			if (g_trace)
				trace_failure(n);
			return NULL;
		}
	}
	void *raw = NULL;
	if (posix_memalign(&raw, g_align, g_align + size) != 0)
		return NULL;
	unsigned char *p = (unsigned char *)raw + g_align;
	ahdr *h = (ahdr *)p - 1;
	h->magic = MAGIC_LIVE;
	h->size = size;
	atomic_fetch_add(&g_live, 1);
	if (g_trace)
		origin_add(p);
	return p;
}

static void sweep_release(void *p, void *user)
{
	(void)user;
	if (!p)
		return;
	ahdr *h = (ahdr *)p - 1;
	if (h->magic != MAGIC_LIVE) {
		atomic_fetch_add(&g_bad_release, 1);   /* leak it rather than corrupt the heap */
		return;
	}
	h->magic = MAGIC_DEAD;
	atomic_fetch_sub(&g_live, 1);
	if (g_trace)
		origin_remove(p);
	free((unsigned char *)p - g_align);
}

static const relay_allocator sweep_allocator = { sweep_alloc, sweep_release, NULL };

static void arm(long k)
{
	atomic_store(&g_seq, 0);
	atomic_store(&g_hit, 0);
	atomic_store(&g_fail_at, k);
	atomic_store(&g_armed, true);
}

static void disarm(void)
{
	atomic_store(&g_armed, false);
}

/* =====================================================================
 * Runs and failure reports
 * ===================================================================== */

struct scenario;

typedef struct run {
	const struct scenario *sc;
	long k;                  /* failing allocation; 0: none (baseline); -1: warm-up */
	atomic_int fails;        /* checks that failed */
	atomic_bool stalled;     /* a bounded wait ran out: later waits give up at once */
	atomic_bool hung;        /* a thread did not stop: stop this scenario */
	uint64_t main_drop0;     /* the main thread's dropped count at the start */
	uint64_t main_dropped;   /* ... and its growth over the whole run */
	char first[480];         /* the first failure, printed after the run */
} run;

static run g_run;
static pthread_mutex_t g_report_lock = PTHREAD_MUTEX_INITIALIZER;
static bool g_verbose;

/* Records a failed check; any thread. */
static void failf(int line, const char *fmt, ...)
{
	char msg[400];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	pthread_mutex_lock(&g_report_lock);
	if (atomic_fetch_add(&g_run.fails, 1) == 0)
		snprintf(g_run.first, sizeof g_run.first, "line %d: %s", line, msg);
	if (g_verbose)
		printf("[sweep]   k=%ld line %d: %s\n", g_run.k, line, msg);
	pthread_mutex_unlock(&g_report_lock);
}

#define CHECK(cond, ...) ((cond) ? true : (failf(__LINE__, __VA_ARGS__), false))

/* A return code must be 0, -ENOMEM or the call's documented alternative
 * `alt` (0: none). Returns rc. */
static int rc_check(const char *call, int line, int rc, int alt)
{
	if (rc != 0 && rc != -ENOMEM && (alt == 0 || rc != alt))
		failf(line, "%s returned %d (%s), expected 0 or -ENOMEM%s", call, rc,
		      relay_strerror(rc), alt ? " or its documented code" : "");
	return rc;
}
#define RC(call) rc_check(#call, __LINE__, (call), 0)
#define RC_OR(call, alt) rc_check(#call, __LINE__, (call), (alt))

static void diag_quiet(int code, const char *line, void *user)
{
	(void)user;
	if (g_verbose)
		printf("[sweep]   diagnostic %d: %s\n", code, line);
}

/* ---------------------------------------------------------------------
 * Bounded waits. A wait that runs out is reported (an event was lost, or
 * something hangs) and ends; later waits of the run give up at once, so a
 * lost event costs one WAIT_MS. The flow then shuts down: if its threads
 * stop, the run is checked as any other and the sweep goes on; a thread
 * that does not stop is a hang, and the sweep of the scenario ends.
 * --------------------------------------------------------------------- */

static bool late(uint64_t deadline, int line, const char *what)
{
	if (now_ms() <= deadline)
		return false;
	failf(line, "no progress in %d ms waiting for %s (an event lost, or a hang)", WAIT_MS,
	      what);
	atomic_store(&g_run.stalled, true);
	return true;
}

static void pump_once(int ms)
{
	int rc = relay_loop_run_once(ms);
	if (rc < 0)
		RC(rc);
}

/* Runs the main thread's loop until cond holds (or the wait runs out). */
#define PUMP_UNTIL(cond)                                                     \
	for (uint64_t dl_ = now_ms() + WAIT_MS;                              \
	     !(cond) && !atomic_load(&g_run.stalled) && !late(dl_, __LINE__, #cond);) \
	pump_once(5)

/* Sleeps (no loop) until cond holds; for threads that must not pump. */
#define SLEEP_UNTIL(cond)                                                     \
	for (uint64_t dl_ = now_ms() + WAIT_MS;                              \
	     !(cond) && !atomic_load(&g_run.stalled) && !late(dl_, __LINE__, #cond);) \
	sleep_ms(1)

/* A few passes of the main loop (what they run is checked elsewhere). */
static void pump_passes(int n)
{
	for (int i = 0; i < n; i++)
		pump_once(0);
}

static uint64_t dropped_of(relay_thread *t)
{
	relay_loop_stats s;
	memset(&s, 0, sizeof s);
	if (t)
		CHECK(relay_thread_stats(t, &s) == 0, "relay_thread_stats failed");
	return s.dropped;
}

static uint64_t main_dropped_delta(void)
{
	return dropped_of(relay_thread_main()) - g_run.main_drop0;
}

/* =====================================================================
 * Event accounting
 * ===================================================================== */

/* One stream of events into one receiving thread: emits (or invokes)
 * tried, accepted (returned 0) and slot calls. */
typedef struct tally {
	atomic_long tried, ok, ran;
} tally;

static void tally_rc(tally *t, int rc)
{
	atomic_fetch_add(&t->tried, 1);
	if (rc == 0)
		atomic_fetch_add(&t->ok, 1);
}

/* Everything accepted has run or been counted as dropped. */
static bool accounted(tally *t, uint64_t dropped)
{
	return atomic_load(&t->ran) + (long)dropped >= atomic_load(&t->ok);
}

/* The final word on a stream, once everything is gone: nothing accepted
 * was lost, nothing refused was delivered, nothing counted twice.
 * `dropped` is the growth of the receiving thread's dropped counter. */
static void tally_check(const char *what, tally *t, uint64_t dropped)
{
	long tried = atomic_load(&t->tried), ok = atomic_load(&t->ok), ran = atomic_load(&t->ran);
	CHECK(ran <= ok, "%s: %ld slot calls for %ld accepted emits (a refused one was delivered, "
	      "or one twice)", what, ran, ok);
	CHECK(ran + (long)dropped >= ok, "%s: event lost: %ld accepted, %ld delivered, %lu counted "
	      "as dropped", what, ok, ran, (unsigned long)dropped);
	CHECK(ran + (long)dropped <= tried, "%s: %ld delivered + %lu dropped > %ld emitted",
	      what, ran, (unsigned long)dropped, tried);
}

/* Problems slots find in whatever thread they run: counted, reported at
 * the end of the run. */
static atomic_long g_wrong_thread, g_corrupt, g_disorder;

/* =====================================================================
 * Payloads, and copy/free hooks that allocate through the same counted
 * allocator (so the k-th allocation may be theirs).
 * ===================================================================== */

typedef struct big {           /* > 64 bytes: travels as a heap event */
	int seq;
	unsigned char fill[100];
} big;

typedef struct owned {         /* owns memory; small enough to go inline */
	int seq;
	int id;                    /* 0: the emitter's value; > 0: a copy */
	char *text;
} owned;

typedef struct big_owned {     /* owns memory and travels as a heap event */
	int seq;
	int id;
	char *text;
	unsigned char fill[80];
} big_owned;

/* Every copy gets an id; its state goes 0 -> 1 (made) -> 2 (freed). */
#define MAXCOPIES 8192
static atomic_int g_copy_state[MAXCOPIES];
static atomic_int g_copy_next;
static atomic_long g_copy_bad;     /* a free of a copy that was not live */

static void copies_reset(void)
{
	int n = atomic_load(&g_copy_next);
	for (int i = 0; i <= n && i < MAXCOPIES; i++)
		atomic_store(&g_copy_state[i], 0);
	atomic_store(&g_copy_next, 0);
	atomic_store(&g_copy_bad, 0);
}

static int copy_text(char **dst, int *id, const char *src)
{
	size_t n = strlen(src) + 1;
	char *t = sweep_alloc(n, NULL);
	if (!t)
		return -ENOMEM;
	memcpy(t, src, n);
	*dst = t;
	*id = atomic_fetch_add(&g_copy_next, 1) + 1;
	if (*id < MAXCOPIES)
		atomic_store(&g_copy_state[*id], 1);
	return 0;
}

static void free_text(char *text, int id)
{
	if (id > 0 && id < MAXCOPIES && atomic_exchange(&g_copy_state[id], 2) != 1)
		atomic_fetch_add(&g_copy_bad, 1);
	sweep_release(text, NULL);
}

static int owned_copy(void *dst, const void *src)
{
	const owned *s = src;
	owned *d = dst;
	*d = *s;
	return copy_text(&d->text, &d->id, s->text);
}

static void owned_free(void *p)
{
	owned *m = p;
	free_text(m->text, m->id);
}

static int big_owned_copy(void *dst, const void *src)
{
	const big_owned *s = src;
	big_owned *d = dst;
	*d = *s;
	return copy_text(&d->text, &d->id, s->text);
}

static void big_owned_free(void *p)
{
	big_owned *m = p;
	free_text(m->text, m->id);
}

static const relay_payload_ops owned_ops = { owned_copy, owned_free };
static const relay_payload_ops big_owned_ops = { big_owned_copy, big_owned_free };

static void fill_for(unsigned char *fill, size_t n, int seq)
{
	for (size_t i = 0; i < n; i++)
		fill[i] = (unsigned char)(seq + (int)i);
}

static bool fill_ok(const unsigned char *fill, size_t n, int seq)
{
	for (size_t i = 0; i < n; i++)
		if (fill[i] != (unsigned char)(seq + (int)i))
			return false;
	return true;
}

/* A delivered owned payload: the text the emitter wrote, in a copy that is
 * still live. */
static bool text_ok(const char *text, int id, int seq)
{
	char want[32];
	snprintf(want, sizeof want, "owned %d", seq);
	if (!text || strcmp(text, want) != 0)
		return false;
	return id <= 0 || id >= MAXCOPIES || atomic_load(&g_copy_state[id]) == 1;
}

/* =====================================================================
 * The scenarios' object: a node with one signal of each payload kind.
 * Its finalizer clears the scenario's reference to it, so the harness
 * knows what is left to destroy.
 * ===================================================================== */

enum { STREAMS = 5 };

typedef struct node {
	relay_object base;
	RELAY_SIGNAL(small, int);
	RELAY_SIGNAL(large, big);
	RELAY_SIGNAL(owned_sig, owned);
	RELAY_SIGNAL(big_owned_sig, big_owned);
	RELAY_SIGNAL(done);
	struct node *_Atomic *ref;   /* the scenario's reference, cleared at finalize */
	tally *in;                   /* slot calls counted here */
	void *ctx;                   /* the scenario's context */
	atomic_int last[STREAMS];    /* per stream, the last seq delivered (order) */
} node;

static void node_finalize(relay_object *self)
{
	node *n = (node *)self;
	if (n->ref)
		atomic_store(n->ref, NULL);
}

static const relay_class node_class = { .name = "sweep_node", .finalize = node_finalize };

/* Every slot runs in its receiver's thread. */
static void slot_where(node *n)
{
	if (relay_thread_current() != relay_object_thread(&n->base))
		atomic_fetch_add(&g_wrong_thread, 1);
}

/* A slot call of a stream: in its receiver's thread, in order, counted. */
static void slot_seen(node *n, int stream, int seq)
{
	slot_where(n);
	if (stream >= 0 && seq <= atomic_exchange(&n->last[stream], seq))
		atomic_fetch_add(&g_disorder, 1);
	if (n->in)
		atomic_fetch_add(&n->in->ran, 1);
}

static void on_small(node *n, const int *v)
{
	slot_seen(n, 0, *v);
}

static void on_small2(node *n, const int *v)   /* a second sender's stream */
{
	slot_seen(n, 4, *v);
}

static void on_large(node *n, const big *b)
{
	if (!fill_ok(b->fill, sizeof b->fill, b->seq))
		atomic_fetch_add(&g_corrupt, 1);
	slot_seen(n, 1, b->seq);
}

static void on_owned(node *n, const owned *m)
{
	if (!text_ok(m->text, m->id, m->seq))
		atomic_fetch_add(&g_corrupt, 1);
	slot_seen(n, 2, m->seq);
}

static void on_big_owned(node *n, const big_owned *m)
{
	if (!text_ok(m->text, m->id, m->seq) || !fill_ok(m->fill, sizeof m->fill, m->seq))
		atomic_fetch_add(&g_corrupt, 1);
	slot_seen(n, 3, m->seq);
}

/* Emits of each payload kind, counted into t. */
static void emit_small(node *s, int seq, tally *t)
{
	tally_rc(t, RC(relay_emit(s, small, &seq)));
}

static void emit_large(node *s, int seq, tally *t)
{
	big b;
	b.seq = seq;
	fill_for(b.fill, sizeof b.fill, seq);
	tally_rc(t, RC(relay_emit(s, large, &b)));
}

static void emit_owned(node *s, int seq, tally *t)
{
	char text[32];
	snprintf(text, sizeof text, "owned %d", seq);
	owned m = { seq, 0, text };
	tally_rc(t, RC(relay_emit(s, owned_sig, &m)));
}

static void emit_big_owned(node *s, int seq, tally *t)
{
	char text[32];
	snprintf(text, sizeof text, "owned %d", seq);
	big_owned m = { seq, 0, text, { 0 } };
	fill_for(m.fill, sizeof m.fill, seq);
	tally_rc(t, RC(relay_emit(s, big_owned_sig, &m)));
}

/* =====================================================================
 * What every scenario's context starts with: its threads, its nodes and
 * its weak references, so the harness can destroy what a flow left.
 * ===================================================================== */

enum { MAXTHREADS = 3, MAXNODES = 10, MAXWEAKS = 4 };

typedef struct hthread {
	relay_thread *t;
	uint64_t dropped;    /* its loop's dropped count when it stopped */
} hthread;

typedef struct common {
	hthread th[MAXTHREADS];
	node *_Atomic nodes[MAXNODES];
	relay_weak weaks[MAXWEAKS];
} common;

/* A node in the calling thread, referenced from c->nodes[idx]. */
static node *node_new(common *c, int idx, relay_object *parent, tally *in)
{
	node *n = NULL;
	if (RC(relay_object_new(&n, &node_class, parent)) != 0) {
		CHECK(n == NULL, "relay_object_new failed but set *out");
		return NULL;
	}
	if (!CHECK(n != NULL, "relay_object_new returned 0 and no object"))
		return NULL;
	n->ref = &c->nodes[idx];
	n->in = in;
	n->ctx = c;
	atomic_store(&c->nodes[idx], n);
	return n;
}

static node *node_at(common *c, int idx)
{
	return atomic_load(&c->nodes[idx]);
}

/* Makes a node (created here) live in thread t. */
static bool move_node(node *n, relay_thread *t)
{
	return n && t && RC(relay_object_move_to_thread(&n->base, t)) == 0;
}

/* ---------------------------------------------------------------------
 * Threads. Each relay thread the harness starts runs relay_release_caches()
 * as it finishes (a direct function connection on `finished`, made as
 * plumbing: not counted, never failed).
 * --------------------------------------------------------------------- */

static void release_in_thread(void *unused)
{
	(void)unused;
	RC(relay_release_caches());
}

static bool hthread_create(hthread *h, const char *name)
{
	h->t = NULL;
	if (RC(relay_thread_create(name, NULL, &h->t)) != 0) {
		CHECK(h->t == NULL, "relay_thread_create failed but set *out");
		h->t = NULL;
		return false;
	}
	tl_quiet++;
	int rc = relay_connect_func(h->t, finished, release_in_thread, NULL);
	tl_quiet--;
	CHECK(rc == 0, "plumbing: connecting finished failed: %d", rc);
	return true;
}

static bool hthread_start(hthread *h)
{
	int rc = RC_OR(relay_thread_start(h->t), -EAGAIN);
	if (rc != 0)
		CHECK(!relay_thread_is_running(h->t), "relay_thread_start failed, thread runs");
	return rc == 0;
}

static bool hthread_run(hthread *h, const char *name)
{
	return hthread_create(h, name) && hthread_start(h);
}

/* quit + stop + destroy; keeps the loop's dropped count for the checks. */
static void hthread_stop(hthread *h)
{
	if (!h->t)
		return;
	RC(relay_thread_quit(h->t));
	int rc = RC_OR(relay_thread_stop(h->t, WAIT_MS), -ETIMEDOUT);
	if (rc == -ETIMEDOUT) {
		failf(__LINE__, "hang: relay_thread_stop timed out");
		atomic_store(&g_run.hung, true);
		return;
	}
	if (rc != 0)
		return;
	h->dropped = dropped_of(h->t);
	if (RC(relay_thread_destroy(h->t)) == 0)
		h->t = NULL;
}

/* ---------------------------------------------------------------------
 * What the harness does after every flow, unarmed: stop the threads
 * still there, destroy the nodes still alive (in the main thread, or
 * through delete_later, which destroys an object of a finished thread
 * right away), clear the weak references.
 * --------------------------------------------------------------------- */

static void common_cleanup(common *c)
{
	for (int i = 0; i < MAXTHREADS; i++)
		hthread_stop(&c->th[i]);
	if (atomic_load(&g_run.hung))
		return;   /* threads may still run: leave their objects alone */
	for (int i = 0; i < MAXNODES; i++) {
		node *n = node_at(c, i);
		if (!n)
			continue;
		int rc = relay_object_thread(&n->base) == relay_thread_main()
				 ? relay_object_destroy(&n->base)
				 : relay_object_delete_later(&n->base);
		CHECK(rc == 0, "cleanup: destroying a leftover node: %d (%s)", rc, relay_strerror(rc));
		CHECK(node_at(c, i) == NULL, "cleanup: a leftover node survived its destroy");
	}
	for (int i = 0; i < MAXWEAKS; i++)
		relay_weak_clear(&c->weaks[i]);
}

/* =====================================================================
 * (a) The seed's worker flow: a worker moved to a relay_thread, run by
 * `started`, emits progress(int) and complete to an object of the main
 * thread; complete also goes to relay_slot_delete_later on the worker.
 * a_worker_flow: the main thread pumps until everything emitted is
 * accounted for, then shuts down as relay_main_run does: quit, stop,
 * destroy. a_main_run: the app quits the main loop on complete and
 * relay_main_run itself runs the loop and stops the thread.
 * ===================================================================== */

enum { A_APP, A_WORKER };
#define A_PROGRESS 5

typedef struct actx {
	common c;
	tally to_main;             /* progress and complete, into the app */
	atomic_bool worker_done;   /* the worker has emitted everything */
	bool delete_later_connected;
	bool main_run;             /* a_main_run: complete quits the main loop */
	atomic_bool main_returned;
} actx;

static void a_worker_run(node *w)   /* in the worker thread, from started */
{
	actx *x = w->ctx;
	for (int i = 1; i <= A_PROGRESS; i++)
		emit_small(w, i, &x->to_main);
	int rc = RC(relay_emit(w, done));
	tally_rc(&x->to_main, rc);
	/* complete will not come: a careful worker ends the main loop itself */
	if (rc != 0 && x->main_run)
		RC(relay_main_quit());
	atomic_store(&x->worker_done, true);
}

static void a_on_complete(node *app)   /* in the main thread */
{
	actx *x = app->ctx;
	slot_seen(app, -1, 0);
	if (x->main_run)
		RC(relay_main_quit());
}

static bool a_setup(actx *x)
{
	common *c = &x->c;
	node *app = node_new(c, A_APP, NULL, &x->to_main);
	if (!app || !hthread_create(&c->th[0], "sweep-worker"))
		return false;
	relay_thread *t = c->th[0].t;
	node *w = node_new(c, A_WORKER, NULL, NULL);
	if (!move_node(w, t) || RC(relay_connect(t, started, w, a_worker_run)) != 0 ||
	    RC(relay_connect(w, small, app, on_small)) != 0 ||
	    RC(relay_connect(w, done, app, a_on_complete)) != 0)
		return false;
	x->delete_later_connected =
		RC(relay_connect(w, done, &w->base, relay_slot_delete_later)) == 0;
	return hthread_start(&c->th[0]);
}

/* After a_setup: until everything the worker emitted is accounted for. */
static void a_pump(actx *x)
{
	PUMP_UNTIL(atomic_load(&x->worker_done) && accounted(&x->to_main, main_dropped_delta()));
}

/* Quits the main loop if no quit came in WAIT_MS (a lost complete), so
 * relay_main_run cannot hang the sweep. Plumbing: its allocations are
 * neither counted nor failed. */
static void *a_guard(void *p)
{
	actx *x = p;
	tl_quiet++;
	uint64_t dl = now_ms() + WAIT_MS;
	while (!atomic_load(&x->main_returned) && now_ms() <= dl)
		sleep_ms(1);
	if (!atomic_load(&x->main_returned)) {
		failf(__LINE__, "relay_main_run: no quit in %d ms (complete lost)", WAIT_MS);
		atomic_store(&g_run.stalled, true);
		RC(relay_main_quit());
		RC(relay_release_caches());
	}
	return NULL;
}

static void a_main_run(actx *x)
{
	pthread_t guard;
	if (!CHECK(pthread_create(&guard, NULL, a_guard, x) == 0, "pthread_create failed"))
		return;
	int rc = RC(relay_main_run(WAIT_MS));
	atomic_store(&x->main_returned, true);
	pthread_join(guard, NULL);
	CHECK(!relay_thread_is_running(x->c.th[0].t), "relay_main_run returned %d, the worker "
	      "thread still runs", rc);
}

static void a_body(void *p)
{
	actx *x = p;
	if (a_setup(x))
		x->main_run ? a_main_run(x) : a_pump(x);
	hthread_stop(&x->c.th[0]);
	/* complete ran relay_slot_delete_later in the worker thread: the
	 * worker must be gone once its thread has finished. */
	if (x->delete_later_connected && atomic_load(&x->worker_done))
		CHECK(node_at(&x->c, A_WORKER) == NULL,
		      "the worker survived complete -> relay_slot_delete_later "
		      "(its failure has nowhere to go: the object is never deleted)");
	pump_passes(3);
	node *app = node_at(&x->c, A_APP);
	if (app)
		RC(relay_object_destroy(&app->base));
}

static void a_main_run_body(void *p)
{
	((actx *)p)->main_run = true;
	a_body(p);
}

static void a_check(void *p)
{
	actx *x = p;
	tally_check("worker -> main (progress, complete)", &x->to_main, g_run.main_dropped);
}

/* =====================================================================
 * (b) Queued emits of every payload kind - int, > 64 bytes, with copy/free
 * hooks inline and in a heap event - to an object in the same thread
 * (forced queued), to one in a worker thread (auto), from a worker to the
 * main thread (copied there, freed here), to a receiver whose connection
 * is cut or which is destroyed before delivery (copies freed undelivered),
 * plus blocking emits to the worker.
 * ===================================================================== */

enum { B_SM, B_SD, B_SB, B_S1, B_RXM, B_RXM2, B_RXD, B_SW, B_SW2, B_RXW };
#define B_EMITS 6
#define B_BLOCKING 3

typedef struct bctx {
	common c;
	tally to_main, to_worker, blocking;
	tally once;                   /* a single-shot connection: its first emit */
	atomic_bool worker_emitted;   /* the worker's emits to main are done */
} bctx;

static void on_blocking(node *n, const int *v)
{
	bctx *x = n->ctx;
	(void)v;
	atomic_fetch_add(&x->blocking.ran, 1);
	slot_where(n);
}

/* The hooks first (a signal whose ops could not be set is not connected:
 * its payload would be copied shallow), then one connection per signal. */
static bool connect_payloads(node *s, node *rx, relay_connection_type type)
{
	return RC(relay_signal_set_ops(s, owned_sig, &owned_ops)) == 0 &&
	       RC(relay_signal_set_ops(s, big_owned_sig, &big_owned_ops)) == 0 &&
	       RC(relay_connect_ex(s, small, rx, on_small, type, 0u, NULL)) == 0 &&
	       RC(relay_connect_ex(s, large, rx, on_large, type, 0u, NULL)) == 0 &&
	       RC(relay_connect_ex(s, owned_sig, rx, on_owned, type, 0u, NULL)) == 0 &&
	       RC(relay_connect_ex(s, big_owned_sig, rx, on_big_owned, type, 0u, NULL)) == 0;
}

static void emit_payloads(node *s, int seq, tally *t)
{
	emit_small(s, seq, t);
	emit_large(s, seq, t);
	emit_owned(s, seq, t);
	emit_big_owned(s, seq, t);
}

static void on_once(node *n, const int *v)
{
	bctx *x = n->ctx;
	(void)v;
	atomic_fetch_add(&x->once.ran, 1);
	slot_where(n);
}

/* A duplicate of a unique connection is refused, never added. */
static void b_unique(node *s, node *rx)
{
	int rc = RC_OR(relay_connect_ex(s, small, rx, on_small, RELAY_QUEUED, RELAY_UNIQUE, NULL),
		       -EEXIST);
	CHECK(rc != 0, "a duplicate RELAY_UNIQUE connection was accepted");
}

static void b_same_thread(bctx *x)
{
	common *c = &x->c;
	node *s = node_new(c, B_SM, NULL, NULL);
	node *rx = node_new(c, B_RXM, NULL, &x->to_main);
	if (!s || !rx || !connect_payloads(s, rx, RELAY_QUEUED))
		return;
	b_unique(s, rx);
	for (int i = 1; i <= B_EMITS; i++)
		emit_payloads(s, i, &x->to_main);
	CHECK(atomic_load(&x->to_main.ran) == 0, "a queued emit ran inside the emit (D5)");
	PUMP_UNTIL(accounted(&x->to_main, main_dropped_delta()));
}

/* A blocking emit that returned 0 has run its slot; a refused one not. */
static void b_blocking(bctx *x, node *sb)
{
	for (int i = 1; i <= B_BLOCKING; i++) {
		long before = atomic_load(&x->blocking.ran);
		int rc = RC(relay_emit(sb, small, &i));
		long after = atomic_load(&x->blocking.ran);
		CHECK(after == before + (rc == 0), "blocking emit returned %d, its slot ran %ld times",
		      rc, after - before);
		tally_rc(&x->blocking, rc);
	}
}

/* Payloads the main thread will never deliver: a cut connection drops
 * its queued events at delivery (D6), a destroyed receiver its pending
 * ones; their copies are freed all the same. */
static void b_undelivered(bctx *x)
{
	common *c = &x->c;
	node *s = node_new(c, B_SD, NULL, NULL);
	node *rx = node_new(c, B_RXD, NULL, &x->to_main);
	if (!s || !rx || !connect_payloads(s, rx, RELAY_QUEUED))
		return;
	for (int i = 1; i <= 2; i++)
		emit_payloads(s, i, &x->to_main);
	bool cut = RC(relay_disconnect_signal(s, big_owned_sig)) == 0;
	pump_passes(1);   /* delivers all but big_owned_sig's, dropped if cut */
	for (int i = 3; i <= 4; i++) {
		emit_small(s, i, &x->to_main);
		emit_large(s, i, &x->to_main);
		emit_owned(s, i, &x->to_main);
		if (!cut)
			emit_big_owned(s, i, &x->to_main);
	}
	RC(relay_object_destroy(&rx->base));   /* drops these, pending */
}

static void b_worker_emits(void *p)   /* in the worker thread */
{
	bctx *x = p;
	node *s = node_at(&x->c, B_SW2);
	for (int i = 1; i <= B_EMITS; i++) {
		emit_owned(s, i, &x->to_main);
		emit_big_owned(s, i, &x->to_main);
	}
	atomic_store(&x->worker_emitted, true);
}

/* A sender living in the worker: copies made there, freed in main. */
static void b_from_worker(bctx *x)
{
	common *c = &x->c;
	node *s = node_new(c, B_SW2, NULL, NULL);
	node *rx = node_new(c, B_RXM2, NULL, &x->to_main);
	if (!s || !rx || !connect_payloads(s, rx, RELAY_AUTO) || !move_node(s, c->th[0].t) ||
	    RC(relay_invoke(&s->base, b_worker_emits, x, NULL)) != 0)
		return;
	PUMP_UNTIL(atomic_load(&x->worker_emitted) && accounted(&x->to_main, main_dropped_delta()));
	RC(relay_object_delete_later(&s->base));
}

/* A single-shot connection to the worker: the first emit takes it (and
 * unlinks it, which rebuilds the signal's connection array), later ones
 * find nothing. */
static void b_single_shot(bctx *x, node *rx)
{
	node *s = node_new(&x->c, B_S1, NULL, NULL);
	if (!s || RC(relay_connect_ex(s, small, rx, on_once, RELAY_AUTO, RELAY_SINGLE_SHOT,
				      NULL)) != 0)
		return;
	for (int i = 1; i <= 3; i++) {
		int rc = RC(relay_emit(s, small, &i));
		if (i == 1)
			tally_rc(&x->once, rc);
	}
}

static void b_cross_thread(bctx *x)
{
	common *c = &x->c;
	node *s = node_new(c, B_SW, NULL, NULL);
	node *sb = node_new(c, B_SB, NULL, NULL);
	if (!s || !sb || !hthread_run(&c->th[0], "sweep-rx"))
		return;
	node *rx = node_new(c, B_RXW, NULL, &x->to_worker);
	if (!move_node(rx, c->th[0].t) || !connect_payloads(s, rx, RELAY_AUTO))
		return;
	for (int i = 1; i <= B_EMITS; i++)
		emit_payloads(s, i, &x->to_worker);
	if (RC(relay_connect_ex(sb, small, rx, on_blocking, RELAY_BLOCKING, 0u, NULL)) == 0)
		b_blocking(x, sb);
	b_single_shot(x, rx);
	SLEEP_UNTIL(accounted(&x->to_worker, dropped_of(c->th[0].t)) &&
		    accounted(&x->once, dropped_of(c->th[0].t)));
	RC(relay_object_delete_later(&rx->base));
	b_from_worker(x);
}

static void b_body(void *p)
{
	bctx *x = p;
	b_same_thread(x);
	b_undelivered(x);
	b_cross_thread(x);
	hthread_stop(&x->c.th[0]);
	pump_passes(3);
	for (int i = B_SM; i <= B_SW; i++)
		if (node_at(&x->c, i))
			RC(relay_object_destroy(&node_at(&x->c, i)->base));
}

static void b_check(void *p)
{
	bctx *x = p;
	tally_check("main -> main (queued payloads)", &x->to_main, g_run.main_dropped);
	/* The worker's dropped counter is shared by the three streams into it
	 * (an emit refused for lack of memory is counted as dropped too). */
	tally worker = { 0 };
	tally *into[] = { &x->to_worker, &x->blocking, &x->once };
	for (size_t i = 0; i < sizeof into / sizeof into[0]; i++) {
		atomic_fetch_add(&worker.tried, atomic_load(&into[i]->tried));
		atomic_fetch_add(&worker.ok, atomic_load(&into[i]->ok));
		atomic_fetch_add(&worker.ran, atomic_load(&into[i]->ran));
	}
	tally_check("main -> worker (queued payloads, blocking, single-shot)", &worker,
		    x->c.th[0].dropped);
	CHECK(atomic_load(&x->blocking.ran) == atomic_load(&x->blocking.ok),
	      "blocking emits: %ld accepted, %ld ran", atomic_load(&x->blocking.ok),
	      atomic_load(&x->blocking.ran));
	CHECK(atomic_load(&x->once.ran) <= 1, "a single-shot connection ran %ld times",
	      atomic_load(&x->once.ran));
}

/* =====================================================================
 * (c) Timers: a repeating timer started, restarted and stopped; a
 * single-shot timer; relay_single_shot; all in the main thread, then a
 * timer living in a worker thread whose timeout goes to the main thread,
 * and a relay_single_shot from the main thread to a worker object.
 * ===================================================================== */

enum { C_HOST, C_REP, C_SS, C_SHOT, C_XTICK, C_RXW };

typedef struct cctx {
	common c;
	tally rep, ss, shot_main, xtick, shot_worker;
	relay_timer *xtimer;   /* child of the worker node */
} cctx;

static void on_tick(node *n)
{
	slot_seen(n, -1, 0);
}

/* A stopped timer fires no more: a few passes change nothing. */
static void expect_quiet(relay_timer *tm, tally *t)
{
	CHECK(!relay_timer_is_active(tm), "a stopped timer is still active");
	long before = atomic_load(&t->ran);
	for (int i = 0; i < 3; i++)
		pump_once(2);
	CHECK(atomic_load(&t->ran) == before, "a stopped timer fired");
}

static void c_repeating(cctx *x, node *host)
{
	node *rx = node_new(&x->c, C_REP, NULL, &x->rep);
	relay_timer *tm = NULL;
	if (!rx || RC(relay_timer_create(&host->base, &tm)) != 0 ||
	    RC(relay_connect(tm, timeout, rx, on_tick)) != 0)
		return;
	if (RC(relay_timer_start(tm, 1)) == 0)
		PUMP_UNTIL(atomic_load(&x->rep.ran) >= 2);
	if (RC(relay_timer_start(tm, 1)) == 0)   /* restart */
		PUMP_UNTIL(atomic_load(&x->rep.ran) >= 4);
	RC(relay_timer_set_interval(tm, 2));
	RC(relay_timer_stop(tm));
	expect_quiet(tm, &x->rep);
}

static void c_single_shot_timer(cctx *x, node *host)
{
	node *rx = node_new(&x->c, C_SS, NULL, &x->ss);
	relay_timer *tm = NULL;
	if (!rx || RC(relay_timer_create(&host->base, &tm)) != 0 ||
	    RC(relay_timer_set_single_shot(tm, true)) != 0 ||
	    RC(relay_connect(tm, timeout, rx, on_tick)) != 0 || RC(relay_timer_start(tm, 0)) != 0)
		return;
	PUMP_UNTIL(atomic_load(&x->ss.ran) >= 1);
	expect_quiet(tm, &x->ss);
	CHECK(atomic_load(&x->ss.ran) == 1, "a single-shot timer fired %ld times",
	      atomic_load(&x->ss.ran));
}

static void c_relay_single_shot(cctx *x)
{
	uint64_t d0 = main_dropped_delta();
	node *rx = node_new(&x->c, C_SHOT, NULL, &x->shot_main);
	if (!rx)
		return;
	tally_rc(&x->shot_main, RC(relay_single_shot(0, rx, on_tick)));
	PUMP_UNTIL(accounted(&x->shot_main, main_dropped_delta() - d0));
	tally_check("relay_single_shot in the main thread", &x->shot_main,
		    main_dropped_delta() - d0);
}

static int c_start_xtimer(void *p)   /* in the worker thread */
{
	return relay_timer_start(((cctx *)p)->xtimer, 1);
}

static int c_stop_xtimer(void *p)
{
	return relay_timer_stop(((cctx *)p)->xtimer);
}

/* A timer in the worker thread, its timeouts queued to the main thread. */
static void c_cross_timer(cctx *x, node *rxw)
{
	node *rx = node_new(&x->c, C_XTICK, NULL, &x->xtick);
	if (!rx || !x->xtimer || RC(relay_connect(x->xtimer, timeout, rx, on_tick)) != 0)
		return;
	int result = -77777;
	if (RC(relay_invoke_blocking(&rxw->base, c_start_xtimer, x, &result)) != 0)
		return;
	if (RC(result) == 0)
		PUMP_UNTIL(atomic_load(&x->xtick.ran) + (long)main_dropped_delta() >= 2);
	CHECK(relay_timer_stop(x->xtimer) == RELAY_ETIMERTHREAD,
	      "stopping a worker's timer from the main thread was not refused");
	result = -77777;
	if (RC(relay_invoke_blocking(&rxw->base, c_stop_xtimer, x, &result)) == 0)
		CHECK(result == 0, "relay_timer_stop in its thread: %d", result);
}

static void c_cross_thread(cctx *x)
{
	common *c = &x->c;
	if (!hthread_run(&c->th[0], "sweep-timers"))
		return;
	node *rxw = node_new(c, C_RXW, NULL, &x->shot_worker);
	if (!rxw)
		return;
	if (RC(relay_timer_create(&rxw->base, &x->xtimer)) != 0)
		x->xtimer = NULL;
	if (!move_node(rxw, c->th[0].t))
		return;
	tally_rc(&x->shot_worker, RC(relay_single_shot(1, rxw, on_tick)));
	c_cross_timer(x, rxw);
	SLEEP_UNTIL(accounted(&x->shot_worker, dropped_of(c->th[0].t)));
	RC(relay_object_delete_later(&rxw->base));
}

static void c_body(void *p)
{
	cctx *x = p;
	node *host = node_new(&x->c, C_HOST, NULL, NULL);
	if (host) {
		c_repeating(x, host);
		c_single_shot_timer(x, host);
	}
	c_relay_single_shot(x);
	c_cross_thread(x);
	hthread_stop(&x->c.th[0]);
	for (int i = C_HOST; i <= C_XTICK; i++)
		if (node_at(&x->c, i))
			RC(relay_object_destroy(&node_at(&x->c, i)->base));
}

static void c_check(void *p)
{
	cctx *x = p;
	tally_check("relay_single_shot main -> worker", &x->shot_worker, x->c.th[0].dropped);
}

/* =====================================================================
 * (d) relay_invoke to the main thread, to a context destroyed before
 * delivery, to a worker, from the worker back to the main thread;
 * relay_invoke_blocking to the worker and (refused) to one's own thread.
 * ===================================================================== */

/* One invoke: accepted (rc 0) it runs exactly once or, if its context is
 * destroyed first, free_data runs instead; refused, neither runs (the
 * caller keeps data). */
typedef struct inv {
	atomic_int rc;            /* 1: not tried */
	atomic_int ran, freed;
	relay_thread *_Atomic expect;   /* the thread it must run in */
} inv;

static void inv_init(inv *v, int n, relay_thread *expect)
{
	for (int i = 0; i < n; i++) {
		atomic_store(&v[i].rc, 1);
		atomic_store(&v[i].expect, expect);
	}
}

static void inv_fn(void *p)
{
	inv *v = p;
	if (relay_thread_current() != atomic_load(&v->expect))
		atomic_fetch_add(&g_wrong_thread, 1);
	atomic_fetch_add(&v->ran, 1);
}

static void inv_free(void *p)
{
	atomic_fetch_add(&((inv *)p)->freed, 1);
}

static int inv_block_fn(void *p)
{
	inv_fn(p);
	return 42;
}

static void inv_post(inv *v, relay_object *ctx)
{
	atomic_store(&v->rc, RC(relay_invoke(ctx, inv_fn, v, inv_free)));
}

static bool inv_settled(inv *v, int n)
{
	for (int i = 0; i < n; i++)
		if (atomic_load(&v[i].rc) == 0 && atomic_load(&v[i].ran) + atomic_load(&v[i].freed) == 0)
			return false;
	return true;
}

static void inv_check(const char *what, inv *v, int n)
{
	for (int i = 0; i < n; i++) {
		int rc = atomic_load(&v[i].rc), ran = atomic_load(&v[i].ran);
		int freed = atomic_load(&v[i].freed);
		if (rc == 0)
			CHECK(ran + freed == 1, "%s #%d: accepted, then ran %d and freed %d times", what,
			      i, ran, freed);
		else
			CHECK(ran + freed == 0, "%s #%d: refused (%d), then ran %d and freed %d times",
			      what, i, rc, ran, freed);
	}
}

/* A blocking invoke: 0 and 42 when it ran, nothing ran when refused. */
static void inv_blocking(inv *v, relay_object *ctx)
{
	int result = -77777;
	int rc = RC(relay_invoke_blocking(ctx, inv_block_fn, v, &result));
	atomic_store(&v->rc, rc);
	CHECK(atomic_load(&v->ran) == (rc == 0), "relay_invoke_blocking returned %d, fn ran %d times",
	      rc, atomic_load(&v->ran));
	if (rc == 0)
		CHECK(result == 42, "relay_invoke_blocking: result %d, expected 42", result);
}

enum { D_CTXM, D_DOOMED, D_CTXW };
#define D_N 4

typedef struct dctx {
	common c;
	inv same[D_N], doomed[2], cross[D_N], back[2], blocking[3];
} dctx;

static void d_same_thread(dctx *x, node *m)
{
	for (int i = 0; i < D_N; i++)
		inv_post(&x->same[i], &m->base);
	CHECK(atomic_load(&x->same[0].ran) == 0, "relay_invoke ran inside the call (D5)");
	PUMP_UNTIL(inv_settled(x->same, D_N));
	inv deadlock = { 0 };
	atomic_store(&deadlock.expect, relay_thread_main());
	int result = 0;
	CHECK(relay_invoke_blocking(&m->base, inv_block_fn, &deadlock, &result) == RELAY_EDEADLOCK,
	      "relay_invoke_blocking into the calling thread was not refused");
}

/* Invokes to a context destroyed before they are delivered: free_data. */
static void d_doomed(dctx *x)
{
	node *d = node_new(&x->c, D_DOOMED, NULL, NULL);
	if (!d)
		return;
	for (int i = 0; i < 2; i++)
		inv_post(&x->doomed[i], &d->base);
	RC(relay_object_destroy(&d->base));
}

static void d_bounce(void *p)   /* in the worker: invokes back to main */
{
	dctx *x = p;
	node *m = node_at(&x->c, D_CTXM);
	for (int i = 0; i < 2; i++)
		inv_post(&x->back[i], &m->base);
}

static void d_cross_thread(dctx *x)
{
	common *c = &x->c;
	if (!hthread_run(&c->th[0], "sweep-invoke"))
		return;
	node *w = node_new(c, D_CTXW, NULL, NULL);
	if (!move_node(w, c->th[0].t))
		return;
	inv_init(x->cross, D_N, c->th[0].t);
	inv_init(x->blocking, 3, c->th[0].t);
	for (int i = 0; i < D_N; i++)
		inv_post(&x->cross[i], &w->base);
	RC(relay_invoke(&w->base, d_bounce, x, NULL));
	for (int i = 0; i < 3; i++)
		inv_blocking(&x->blocking[i], &w->base);
	PUMP_UNTIL(inv_settled(x->cross, D_N) && inv_settled(x->back, 2));
	RC(relay_object_delete_later(&w->base));
}

static void d_body(void *p)
{
	dctx *x = p;
	/* Every record "not tried" first: a flow cut short leaves them so. */
	inv_init(x->same, D_N, relay_thread_main());
	inv_init(x->doomed, 2, relay_thread_main());
	inv_init(x->cross, D_N, NULL);
	inv_init(x->back, 2, relay_thread_main());
	inv_init(x->blocking, 3, NULL);
	node *m = node_new(&x->c, D_CTXM, NULL, NULL);
	if (m)
		d_same_thread(x, m);
	d_doomed(x);
	if (m)
		d_cross_thread(x);
	hthread_stop(&x->c.th[0]);
	pump_passes(3);
	if (node_at(&x->c, D_CTXM))
		RC(relay_object_destroy(&node_at(&x->c, D_CTXM)->base));
}

static void d_check(void *p)
{
	dctx *x = p;
	inv_check("invoke main -> main", x->same, D_N);
	inv_check("invoke to a context destroyed first", x->doomed, 2);
	inv_check("invoke main -> worker", x->cross, D_N);
	inv_check("invoke worker -> main", x->back, 2);
	long freed = 0;
	for (int i = 0; i < 2; i++)
		freed += atomic_load(&x->doomed[i].freed);
	CHECK((long)g_run.main_dropped >= freed, "%ld invokes freed undelivered, %lu counted as "
	      "dropped in the main thread", freed, (unsigned long)g_run.main_dropped);
}

/* =====================================================================
 * (e) Weak references: set, re-point, share, read NULL once the object
 * is gone; set from a worker thread to a main-thread object.
 * ===================================================================== */

enum { E_A, E_B, E_W };

typedef struct ectx {
	common c;
	node *a;   /* lives in the main thread for the whole flow */
} ectx;

/* After relay_weak_set(w, obj) returned rc: w reads obj, or (refused)
 * what it read before or NULL. */
static void weak_set_checked(relay_weak *w, node *obj)
{
	relay_object *before = relay_weak_get(w);
	int rc = RC(relay_weak_set(w, obj ? &obj->base : NULL));
	relay_object *got = relay_weak_get(w);
	if (rc == 0)
		CHECK(got == (obj ? &obj->base : NULL), "relay_weak_set returned 0, reads another object");
	else
		CHECK(got == before || got == NULL, "a refused relay_weak_set changed the reference");
}

static int e_in_worker(void *p)   /* a worker sets and reads a weak to a */
{
	ectx *x = p;
	relay_weak w = { 0 };
	weak_set_checked(&w, x->a);
	relay_weak_clear(&w);
	return 0;
}

static void e_same_thread(ectx *x)
{
	common *c = &x->c;
	node *b = node_new(c, E_B, NULL, NULL);
	weak_set_checked(&c->weaks[0], x->a);
	if (!b)
		return;
	weak_set_checked(&c->weaks[0], b);   /* re-point */
	weak_set_checked(&c->weaks[1], b);   /* a second reference to b */
	RC(relay_object_destroy(&b->base));
	for (int i = 0; i < 2; i++)
		CHECK(relay_weak_get(&c->weaks[i]) != (relay_object *)b,
		      "a weak reference reads a destroyed object");
}

static void e_cross_thread(ectx *x)
{
	common *c = &x->c;
	if (!hthread_run(&c->th[0], "sweep-weak"))
		return;
	node *w = node_new(c, E_W, NULL, NULL);
	if (!move_node(w, c->th[0].t))
		return;
	weak_set_checked(&c->weaks[2], w);
	int result = 0;
	RC(relay_invoke_blocking(&w->base, e_in_worker, x, &result));
	bool deleting = RC(relay_object_delete_later(&w->base)) == 0;
	hthread_stop(&c->th[0]);
	if (deleting && !atomic_load(&g_run.hung))
		CHECK(relay_weak_get(&c->weaks[2]) == NULL, "a weak reference reads a deleted worker");
}

static void e_body(void *p)
{
	ectx *x = p;
	x->a = node_new(&x->c, E_A, NULL, NULL);
	if (!x->a)
		return;
	e_same_thread(x);
	e_cross_thread(x);
	weak_set_checked(&x->c.weaks[0], NULL);
	for (int i = 0; i < MAXWEAKS; i++)
		relay_weak_clear(&x->c.weaks[i]);
	RC(relay_object_destroy(&x->a->base));
}

/* =====================================================================
 * (f) move_to_thread of an object P with two children, an active timer
 * (a child too) and pending events - queued from the main thread and
 * from a producer thread that keeps emitting while P moves - to a
 * destination thread. Everything must arrive in order in the new thread
 * (or be counted as dropped), and the timer must fire there.
 * ===================================================================== */

enum { F_S, F_P, F_C1, F_C2, F_Q };
#define F_PENDING 6
#define F_HALF 10

typedef struct fctx {
	common c;                        /* th[0]: destination, th[1]: producer */
	tally to_p;                      /* queued to P and its first child */
	relay_timer *tm;
	atomic_int phase;                /* producer: 1 half sent, 2 go on, 3 done */
	relay_thread *_Atomic tick_in;   /* where P's timer fired last */
} fctx;

static void f_on_tick(node *p)
{
	fctx *x = p->ctx;
	slot_where(p);
	atomic_store(&x->tick_in, relay_thread_current());
}

static void f_produce(void *p)   /* in the producer thread */
{
	fctx *x = p;
	node *q = node_at(&x->c, F_Q);
	for (int i = 1; i <= F_HALF; i++)
		emit_small(q, i, &x->to_p);
	atomic_store(&x->phase, 1);
	SLEEP_UNTIL(atomic_load(&x->phase) >= 2);
	for (int i = F_HALF + 1; i <= 2 * F_HALF; i++)
		emit_small(q, i, &x->to_p);
	atomic_store(&x->phase, 3);
}

/* P (main) with children C1, C2 and an active timer; S queues to P. */
static node *f_tree(fctx *x)
{
	common *c = &x->c;
	node *s = node_new(c, F_S, NULL, NULL);
	node *p = node_new(c, F_P, NULL, &x->to_p);
	if (!s || !p)
		return NULL;
	node *c1 = node_new(c, F_C1, &p->base, &x->to_p);
	if (!c1 || !node_new(c, F_C2, &p->base, NULL) ||
	    RC(relay_connect_ex(s, small, p, on_small, RELAY_QUEUED, 0u, NULL)) != 0 ||
	    RC(relay_connect_ex(s, large, c1, on_large, RELAY_QUEUED, 0u, NULL)) != 0 ||
	    RC(relay_timer_create(&p->base, &x->tm)) != 0 ||
	    RC(relay_connect(x->tm, timeout, p, f_on_tick)) != 0 || RC(relay_timer_start(x->tm, 2)) != 0)
		return NULL;
	return p;
}

/* The producer Q in its own thread, connected to P (queued: P is elsewhere). */
static bool f_producer(fctx *x, node *p)
{
	common *c = &x->c;
	if (!hthread_run(&c->th[1], "sweep-producer"))
		return false;
	node *q = node_new(c, F_Q, NULL, NULL);
	return move_node(q, c->th[1].t) && RC(relay_connect(q, small, p, on_small2)) == 0;
}

static bool f_in(node *n, relay_thread *t)
{
	return relay_object_thread(&n->base) == t;
}

/* After the move: the whole tree is where the move said, and the timer,
 * active before, still is. */
static void f_moved(fctx *x, node *p, int rc)
{
	relay_thread *want = rc == 0 ? x->c.th[0].t : relay_thread_main();
	CHECK(f_in(p, want) && f_in(node_at(&x->c, F_C1), want) && f_in(node_at(&x->c, F_C2), want) &&
	      relay_object_thread(&x->tm->base) == want,
	      "move_to_thread returned %d, the tree lives elsewhere", rc);
	CHECK(relay_timer_is_active(x->tm), "move_to_thread returned %d and disarmed the tree's "
	      "active timer", rc);
}

static uint64_t f_dropped(fctx *x)
{
	return main_dropped_delta() + dropped_of(x->c.th[0].t) + dropped_of(x->c.th[1].t);
}

static void f_move(fctx *x, node *p)
{
	node *s = node_at(&x->c, F_S);
	for (int i = 1; i <= F_PENDING; i++) {   /* pending in the main thread */
		emit_small(s, i, &x->to_p);
		emit_large(s, i, &x->to_p);
	}
	bool producing = RC(relay_invoke(&node_at(&x->c, F_Q)->base, f_produce, x, NULL)) == 0;
	if (producing)
		SLEEP_UNTIL(atomic_load(&x->phase) >= 1);   /* no pump: P's events stay pending */
	atomic_store(&x->phase, 2);
	int rc;
	rc = RC(relay_object_move_to_thread(&p->base, x->c.th[0].t));
	atomic_store(&x->tick_in, NULL);
	f_moved(x, p, rc);
	for (int i = F_PENDING + 1; i <= F_PENDING + 3; i++)
		emit_small(s, i, &x->to_p);
	if (relay_timer_is_active(x->tm))
		PUMP_UNTIL(atomic_load(&x->tick_in) != NULL);
	CHECK(atomic_load(&x->tick_in) == NULL || atomic_load(&x->tick_in) == relay_object_thread(&p->base),
	      "P's timer fired outside P's thread");
	PUMP_UNTIL((!producing || atomic_load(&x->phase) == 3) && accounted(&x->to_p, f_dropped(x)));
}

static int f_destroy_p(void *p)   /* in P's thread */
{
	return relay_object_destroy(&node_at(&((fctx *)p)->c, F_P)->base);
}

/* P is destroyed in its own thread (delete_later if that cannot be asked). */
static void f_shutdown(fctx *x)
{
	node *p = node_at(&x->c, F_P);
	if (p && x->c.th[0].t && f_in(p, x->c.th[0].t)) {
		int result = -77777;
		if (RC(relay_invoke_blocking(&p->base, f_destroy_p, x, &result)) == 0)
			CHECK(result == 0, "relay_object_destroy in P's thread: %d", result);
		else
			RC(relay_object_delete_later(&p->base));
	} else if (p) {
		RC(relay_object_destroy(&p->base));
	}
	if (node_at(&x->c, F_Q))
		RC(relay_object_delete_later(&node_at(&x->c, F_Q)->base));
	hthread_stop(&x->c.th[1]);
	hthread_stop(&x->c.th[0]);
	if (node_at(&x->c, F_S))
		RC(relay_object_destroy(&node_at(&x->c, F_S)->base));
}

static void f_body(void *p)
{
	fctx *x = p;
	node *root = f_tree(x);
	if (root && hthread_run(&x->c.th[0], "sweep-dest") && f_producer(x, root))
		f_move(x, root);
	atomic_store(&x->phase, 3);   /* a producer that waits is released */
	f_shutdown(x);
}

static void f_check(void *p)
{
	fctx *x = p;
	tally_check("queued to a moving tree", &x->to_p,
		    g_run.main_dropped + x->c.th[0].dropped + x->c.th[1].dropped);
}

/* =====================================================================
 * (g) Adoption: plain pthreads whose first relay call is an emit, an
 * invoke, a blocking invoke, or creating an object (left alive when the
 * thread exits, then deleted from the main thread).
 * ===================================================================== */

enum { G_S, G_RX, G_ORPHAN };
#define G_EMITS 3

typedef struct gctx {
	common c;
	tally to_rx;
	inv invs[3], blocking[1];
	atomic_bool done;
} gctx;

static void *g_emitter(void *p)
{
	gctx *x = p;
	for (int i = 1; i <= G_EMITS; i++)
		emit_small(node_at(&x->c, G_S), i, &x->to_rx);
	inv_post(&x->invs[0], &node_at(&x->c, G_RX)->base);
	RC(relay_release_caches());
	atomic_store(&x->done, true);
	return NULL;
}

static void *g_invoker(void *p)
{
	gctx *x = p;
	inv_post(&x->invs[1], &node_at(&x->c, G_RX)->base);
	(void)relay_thread_current();   /* NULL only on -ENOMEM: both are fine */
	inv_post(&x->invs[2], &node_at(&x->c, G_RX)->base);
	RC(relay_release_caches());
	atomic_store(&x->done, true);
	return NULL;
}

static void *g_blocker(void *p)   /* the main thread pumps meanwhile */
{
	gctx *x = p;
	inv_blocking(&x->blocking[0], &node_at(&x->c, G_RX)->base);
	RC(relay_release_caches());
	atomic_store(&x->done, true);
	return NULL;
}

static void *g_creator(void *p)   /* leaves its object behind */
{
	gctx *x = p;
	node *o = node_new(&x->c, G_ORPHAN, NULL, NULL);
	if (o && RC(relay_connect(o, small, node_at(&x->c, G_RX), on_small2)) == 0)
		for (int i = 1; i <= G_EMITS; i++)
			emit_small(o, i, &x->to_rx);
	RC(relay_release_caches());
	atomic_store(&x->done, true);
	return NULL;
}

/* One pthread at a time; the main thread pumps until it has exited (it
 * may wait for the main thread: a blocking invoke). One that does not
 * exit is a hang. */
static void g_spawn(gctx *x, void *(*fn)(void *))
{
	pthread_t th;
	atomic_store(&x->done, false);
	if (!CHECK(pthread_create(&th, NULL, fn, x) == 0, "pthread_create failed"))
		return;
	for (uint64_t dl = now_ms() + WAIT_MS; !atomic_load(&x->done) && now_ms() <= dl;)
		pump_once(5);
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += WAIT_MS / 1000;
	if (!atomic_load(&x->done) || pthread_timedjoin_np(th, NULL, &ts) != 0) {
		failf(__LINE__, "hang: an adopted thread did not finish");
		atomic_store(&g_run.hung, true);
		pthread_detach(th);
	}
}

static void g_threads(gctx *x)
{
	common *c = &x->c;
	g_spawn(x, g_emitter);
	g_spawn(x, g_invoker);
	g_spawn(x, g_blocker);
	g_spawn(x, g_creator);
	PUMP_UNTIL(accounted(&x->to_rx, main_dropped_delta()) && inv_settled(x->invs, 3));
	node *o = node_at(c, G_ORPHAN);
	/* Its thread is gone: delete_later destroys it right away. */
	if (o && !atomic_load(&g_run.hung) && RC(relay_object_delete_later(&o->base)) == 0)
		CHECK(node_at(c, G_ORPHAN) == NULL, "delete_later of an exited thread's object "
		      "returned 0 and did not destroy it");
}

static void g_body(void *p)
{
	gctx *x = p;
	common *c = &x->c;
	inv_init(x->invs, 3, relay_thread_main());
	inv_init(x->blocking, 1, relay_thread_main());
	node *s = node_new(c, G_S, NULL, NULL);
	node *rx = node_new(c, G_RX, NULL, &x->to_rx);
	if (s && rx && RC(relay_connect(s, small, rx, on_small)) == 0)
		g_threads(x);
	pump_passes(3);
	for (int i = G_S; i <= G_RX; i++)
		if (node_at(c, i))
			RC(relay_object_destroy(&node_at(c, i)->base));
}

static void g_check(void *p)
{
	gctx *x = p;
	tally_check("adopted threads -> main", &x->to_rx, g_run.main_dropped);
	inv_check("invoke from an adopted thread", x->invs, 3);
}

/* =====================================================================
 * The harness
 * ===================================================================== */

typedef struct scenario {
	const char *name;
	size_t ctx_size;           /* starts with a `common` */
	void (*body)(void *ctx);   /* armed: the flow, up to its own shutdown */
	void (*check)(void *ctx);  /* after cleanup: events accounted (may be NULL) */
} scenario;

static const scenario scenarios[] = {
	{ "a_worker_flow", sizeof(actx), a_body, a_check },
	{ "a_main_run", sizeof(actx), a_main_run_body, a_check },
	{ "b_queued_payloads", sizeof(bctx), b_body, b_check },
	{ "c_timers", sizeof(cctx), c_body, c_check },
	{ "d_invoke", sizeof(dctx), d_body, d_check },
	{ "e_weak_refs", sizeof(ectx), e_body, NULL },   /* checks as it goes */
	{ "f_move_to_thread", sizeof(fctx), f_body, f_check },
	{ "g_adoption", sizeof(gctx), g_body, g_check },
};
#define NSCENARIOS (sizeof scenarios / sizeof scenarios[0])

/* ---- the watchdog: a relay call that never returns ends the program ---- */

static atomic_llong g_deadline;   /* ms; 0: no run in progress */

static void *watchdog(void *unused)
{
	(void)unused;
	for (;;) {
		sleep_ms(100);
		long long d = atomic_load(&g_deadline);
		if (d != 0 && (long long)now_ms() > d) {
			fprintf(stderr, "[sweep] %s k=%ld: hang: the run did not end in %d ms\n",
				g_run.sc ? g_run.sc->name : "?", g_run.k, RUN_LIMIT_MS);
			abort();
		}
	}
	return NULL;
}

/* Delivers what the main thread has pending and gives back its caches. */
static void settle_main(void)
{
	for (int i = 0; i < 100 && relay_loop_run_once(0) > 0; i++)
		;
	RC(relay_release_caches());
}

static void slot_counters_reset(void)
{
	atomic_store(&g_wrong_thread, 0);
	atomic_store(&g_corrupt, 0);
	atomic_store(&g_disorder, 0);
	atomic_store(&g_bad_release, 0);
	copies_reset();
}

/* What the slots, the hooks and the allocator saw in any thread. */
static void shared_checks(void)
{
	CHECK(atomic_load(&g_wrong_thread) == 0, "%ld slot calls ran outside their receiver's thread",
	      atomic_load(&g_wrong_thread));
	CHECK(atomic_load(&g_corrupt) == 0, "%ld payloads arrived corrupted",
	      atomic_load(&g_corrupt));
	CHECK(atomic_load(&g_disorder) == 0, "%ld events arrived out of order",
	      atomic_load(&g_disorder));
	CHECK(atomic_load(&g_bad_release) == 0, "%ld releases of blocks that were not live "
	      "(double free)", atomic_load(&g_bad_release));
	long live = 0;
	int n = atomic_load(&g_copy_next);
	for (int i = 1; i <= n && i < MAXCOPIES; i++)
		live += atomic_load(&g_copy_state[i]) == 1;
	CHECK(live == 0, "%ld payload copies never freed", live);
	CHECK(atomic_load(&g_copy_bad) == 0, "%ld payload copies freed twice",
	      atomic_load(&g_copy_bad));
}

/* One run of sc with the k-th allocation failing (k <= 0: none). Returns
 * the number of allocations it made while armed. */
static long run_once(const scenario *sc, long k)
{
	memset(&g_run, 0, sizeof g_run);
	atomic_fetch_add(&g_run_id, 1);
	g_run.sc = sc;
	g_run.k = k;
	void *ctx = calloc(1, sc->ctx_size);
	assert_non_null(ctx);
	settle_main();
	slot_counters_reset();
	long live0 = atomic_load(&g_live);
	g_run.main_drop0 = dropped_of(relay_thread_main());
	atomic_store(&g_deadline, (long long)now_ms() + RUN_LIMIT_MS);

	arm(k > 0 ? k : 0);
	sc->body(ctx);
	disarm();
	long made = atomic_load(&g_seq);
	common_cleanup(ctx);
	settle_main();
	g_run.main_dropped = main_dropped_delta();

	if (!atomic_load(&g_run.hung)) {
		if (sc->check)
			sc->check(ctx);
		shared_checks();
		long leaked = atomic_load(&g_live) - live0;
		if (!CHECK(leaked <= 0, "%ld allocations leaked", leaked) && g_trace)
			origins_print(atomic_load(&g_run_id));
		if (leaked < 0 && g_verbose)   /* an earlier run's blocks, freed late */
			printf("[sweep]   k=%ld: %ld blocks of earlier runs freed\n", k, -leaked);
	}
	atomic_store(&g_deadline, 0);
	free(ctx);
	return made;
}

static long env_long(const char *name, long dflt)
{
	const char *v = getenv(name);
	return v && *v ? strtol(v, NULL, 10) : dflt;
}

static bool selected(const char *name)
{
	const char *list = getenv("RELAY_SWEEP_SCENARIOS");
	if (!list || !*list)
		return true;
	char buf[256];
	snprintf(buf, sizeof buf, "%s", list);
	for (char *save = NULL, *tok = strtok_r(buf, ", ", &save); tok;
	     tok = strtok_r(NULL, ", ", &save))
		if (strncmp(name, tok, strlen(tok)) == 0)
			return true;
	return false;
}

typedef struct sweep_result {
	long n, runs, injected, failed;
	bool hung;
} sweep_result;

/* After a run: print it if it failed; say whether the sweep goes on. */
static bool note_run(sweep_result *s, const scenario *sc)
{
	if (atomic_load(&g_hit) > 0)
		s->injected++;
	if (atomic_load(&g_run.fails) == 0)
		return true;
	if (s->failed++ < MAX_REPORTS)
		printf("[sweep] FAIL %s k=%ld%s: %s%s\n", sc->name, g_run.k,
		       g_run.k == 0 ? " (baseline, nothing failed)" : "", g_run.first,
		       atomic_load(&g_run.fails) > 1 ? " (and more)" : "");
	fflush(stdout);
	if (atomic_load(&g_run.hung)) {
		s->hung = true;
		printf("[sweep] %s: stopping after a hang at k=%ld\n", sc->name, g_run.k);
		return false;
	}
	return true;
}

static void sweep(void **state)
{
	const scenario *sc = *state;
	if (!selected(sc->name))
		skip();
	sweep_result s = { 0 };
	uint64_t t0 = now_ms();
	run_once(sc, -1);   /* warm-up: the main thread's lasting state */
	s.n = run_once(sc, 0);
	bool go = note_run(&s, sc);
	long only = env_long("RELAY_SWEEP_K", 0);
	long last = env_long("RELAY_SWEEP_MAX_K", s.n + s.n / 8 + 2);
	for (long k = only > 0 ? only : 1; go && k <= (only > 0 ? only : last); k++) {
		run_once(sc, k);
		s.runs++;
		go = note_run(&s, sc);
	}
	printf("[sweep] %s: N=%ld (baseline allocations), %ld runs (k up to %ld), failure injected "
	       "in %ld, %ld failed, %.1f s\n", sc->name, s.n, s.runs, only > 0 ? only : last,
	       s.injected, s.failed, (double)(now_ms() - t0) / 1000.0);
	fflush(stdout);
	if (s.failed)
		fail_msg("%s: %ld of %ld runs failed%s (see [sweep] FAIL lines)", sc->name, s.failed,
			 s.runs + 1, s.hung ? ", then hung" : "");
}

int main(void)
{
	g_verbose = env_long("RELAY_SWEEP_VERBOSE", 0) != 0;
	g_trace = env_long("RELAY_SWEEP_TRACE", 0) != 0;
	long align = env_long("RELAY_SWEEP_ALIGN", 64);
	if (align >= (long)sizeof(ahdr) && (align & (align - 1)) == 0)
		g_align = (size_t)align;
	/* The allocator goes in before any other relay call. */
	if (relay_set_allocator(&sweep_allocator) != 0) {
		fprintf(stderr, "relay_set_allocator failed\n");
		return 1;
	}
	relay_set_diag_handler(diag_quiet, NULL);
	pthread_t wd;
	if (pthread_create(&wd, NULL, watchdog, NULL) != 0)
		return 1;
	pthread_detach(wd);

	struct CMUnitTest tests[NSCENARIOS];
	for (size_t i = 0; i < NSCENARIOS; i++)
		tests[i] = (struct CMUnitTest){ scenarios[i].name, sweep, NULL, NULL,
						(void *)&scenarios[i] };
	return cmocka_run_group_tests(tests, NULL, NULL);
}
