/*
 * relay_fuzz.c - libFuzzer target: the input bytes drive sequences of
 * relay calls, legal and illegal, performed by the main thread and by two
 * relay threads, and check relay's promises while they run.
 *
 * Input: one header byte (which threads start, how the input ends), then
 * operations of six bytes each: code, actor, four arguments. The actor
 * says which thread performs it: the main thread does it itself; for a
 * relay thread the main thread sends it there with relay_invoke_blocking
 * into an "agent" object living in that thread, so only one thread runs
 * fuzzer operations at a time while the others deliver what was queued to
 * them, fire their timers and run their deferred deletions concurrently.
 * BURST has all three work at once; FOREIGN runs the next operations in a
 * pthread relay adopts. An actor byte >= 0xf0 also makes one allocation of
 * the operation's relay call fail (relay_set_allocator).
 *
 * Every object the input makes is tracked in a table (ents[]). Objects
 * from relay_object_new are touched only while the table says they cannot
 * be freed meanwhile (see may_vanish); caller-owned objects (our memory,
 * relay_object_init) may be used after they were destroyed, and relay must
 * refuse those calls with an error. Each input ends by stopping and
 * destroying everything it made (teardown), so inputs are independent.
 *
 * Checks (any failure aborts with the last operations, so libFuzzer saves
 * the input):
 *   - every call returns 0 or a negative code; refused misuse returns the
 *     documented code with a one-line diagnostic;
 *   - no slot, function, invoke or single shot runs for a destroyed
 *     receiver or context, or in a thread its receiver does not live in
 *     (unless DIRECT), or inside the call that queued it (D5), or after
 *     relay_disconnect returned (D6); a single-shot connection runs once;
 *     queued calls from one thread arrive in order (D4);
 *   - payloads arrive intact; every copy the hooks make is freed once;
 *   - every object is finalized exactly once; weak references read NULL
 *     after destruction; a child never outlives its parent;
 *   - relay's allocator is balanced after each input (relay_release_caches);
 *   - no hang: every wait is bounded, and a watchdog aborts an input that
 *     runs over WATCHDOG_MS.
 *
 * Environment: FUZZ_TRACE=1 prints every operation as it runs (replaying
 * an input); FUZZ_VERBOSE=1 also prints relay's diagnostics;
 * FUZZ_ALLOC_TRACE=1 names where leaked blocks were allocated;
 * FUZZ_WATCHDOG_MS changes the watchdog's limit.
 *
 * Compile-time switches (-D...=1, all off by default) avoid one pattern
 * each, so that a known crash does not hide the rest: see fuzz/README.md.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <relay.h>

#include <errno.h>
#include <execinfo.h>
#include <pthread.h>
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Built without ASan (a coverage build, say): no report callback. */
#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define FUZZ_ASAN 1
#endif
#endif

#ifndef FUZZ_AVOID_MOVE_DESTROYED
#define FUZZ_AVOID_MOVE_DESTROYED 0   /* move_to_thread of a destroyed caller-owned object */
#endif
#ifndef FUZZ_AVOID_NAME_DESTROYED
#define FUZZ_AVOID_NAME_DESTROYED 0   /* relay_object_set_name on a destroyed caller-owned object */
#endif
#ifndef FUZZ_AVOID_SINGLE_SHOT_MOVE
#define FUZZ_AVOID_SINGLE_SHOT_MOVE 0 /* moving the receiver of a single shot */
#endif
#ifndef FUZZ_AVOID_FIFO_RESTART
#define FUZZ_AVOID_FIFO_RESTART 0     /* order of what a relay thread sent before and after a restart */
#endif
#ifndef FUZZ_AVOID_MAIN_RUN_OOM
#define FUZZ_AVOID_MAIN_RUN_OOM 0     /* an allocation failing in relay_main_run */
#endif

#define MAX_ENT 40          /* objects per input */
#define MAX_CONN 80         /* connections per input */
#define MAX_OPS 120         /* operations per input */
#define MAX_AGENTS 8        /* agents per input (one per thread created) */
#define MAX_FOREIGN 16      /* foreign (adopted) threads per input */
#define EMITTERS 64         /* emitting threads per input told apart by check_fifo */
#define WATCHDOG_MS 5000    /* one input longer than this is a hang (FUZZ_WATCHDOG_MS) */
#define STOP_MS 3000        /* teardown's bound on a thread stopping */

/* ======================================================================
 * Per-thread state of the harness
 * ====================================================================== */

static _Thread_local struct {
	int actor;           /* 0 main, 1/2 the relay threads while running an op, -1 */
	bool in_op;          /* this thread runs a fuzzer operation (owns the table) */
	int posting;         /* inside relay_emit/relay_invoke/relay_single_shot */
	int blocked_emit;    /* inside an emit of a sender whose signals are blocked */
	int nest;            /* nested loop passes run from slots */
	int echo_depth;      /* nested echo emissions from slots */
	unsigned long diags; /* diagnostics reported in this thread */
	int arm;             /* the operation's injected failure: its n-th allocation */
	int countdown;       /* allocations until the injected failure (0: none armed) */
	int injected;        /* failures injected during this operation */
} tls = { .actor = -1 };

/* ======================================================================
 * Failure reports and the operation log
 * ====================================================================== */

#define LOG_LINES 64
#define LOG_WIDTH 160
static char log_ring[LOG_LINES][LOG_WIDTH];
static unsigned log_pos;          /* written by the thread running an operation */
static bool trace, verbose;

static void dump_log(void);

#ifdef FUZZ_ASAN
static void asan_report(const char *report)
{
	(void)report;   /* ASan prints it too */
	dump_log();
}
#endif

static void dump_log(void)
{
	fprintf(stderr, "relay-fuzz: last operations of this input (oldest first):\n");
	unsigned end = log_pos, start = end > LOG_LINES ? end - LOG_LINES : 0;
	for (unsigned i = start; i < end; i++)
		fprintf(stderr, "  %s\n", log_ring[i % LOG_LINES]);
}

static void fz_fail(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
static void fz_fail(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "\nrelay-fuzz: CHECK FAILED: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	dump_log();
	abort();
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

#define CHECK(cond, ...)                  \
	do {                              \
		if (!(cond))              \
			fz_fail(__VA_ARGS__); \
	} while (0)

/* An expected result, which an injected allocation failure in this
 * operation may change into -ENOMEM or anything that follows from it.
 * Invariants (what slots check, exactly-once, balance) stay CHECKs. */
#define EXPECT(cond, ...) CHECK((cond) || tls.injected, __VA_ARGS__)

/* One line per operation, written before relay is called (so a crash
 * inside the call shows what was being done); done() appends the result. */
static void note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void note(const char *fmt, ...)
{
	char *line = log_ring[log_pos % LOG_LINES];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, LOG_WIDTH, fmt, ap);
	va_end(ap);
	/* The first note of an operation precedes its relay call: an
	 * allocation failure asked for is armed for that call only. */
	if (tls.arm) {
		size_t n = strlen(line);
		snprintf(line + n, LOG_WIDTH - n, " [allocation %d fails]", tls.arm);
		tls.countdown = tls.arm;
		tls.arm = 0;
	}
	log_pos++;
	if (trace)
		fprintf(stderr, "op: %s\n", line);
}

static int done(int rc)
{
	tls.countdown = 0;
	char *line = log_ring[(log_pos - 1) % LOG_LINES];
	size_t n = strlen(line);
	snprintf(line + n, LOG_WIDTH - n, " -> %d", rc);
	if (trace)
		fprintf(stderr, "op:   -> %d (%s)\n", rc, rc < 0 ? relay_strerror(rc) : "ok");
	CHECK(rc <= 0, "a relay call returned %d: calls return 0 or a negative code", rc);
	return rc;
}

/* ======================================================================
 * Counting allocator and diagnostics
 * ====================================================================== */

static atomic_long live_blocks;     /* relay's allocations not yet released */
static long baseline_blocks;        /* what the main thread keeps between inputs */
static atomic_uint cur_gen;         /* the input being run */

/* FUZZ_ALLOC_TRACE=1: remember where each live block was allocated, so
 * that a leak report names the allocating code (a debugging aid; slow). */
#define TRACE_SLOTS 4096
#define TRACE_FRAMES 8
static bool alloc_trace;
static pthread_mutex_t trace_lock = PTHREAD_MUTEX_INITIALIZER;
static struct traced {
	void *ptr;
	unsigned gen;
	size_t size;
	void *frames[TRACE_FRAMES];
} traced[TRACE_SLOTS];

static void trace_alloc(void *p, size_t size)
{
	struct traced t = { p, atomic_load(&cur_gen), size, { 0 } };
	backtrace(t.frames, TRACE_FRAMES);
	pthread_mutex_lock(&trace_lock);
	for (int i = 0; i < TRACE_SLOTS; i++) {
		if (!traced[i].ptr) {
			traced[i] = t;
			break;
		}
	}
	pthread_mutex_unlock(&trace_lock);
}

static void trace_release(void *p)
{
	pthread_mutex_lock(&trace_lock);
	for (int i = 0; i < TRACE_SLOTS; i++)
		if (traced[i].ptr == p)
			traced[i].ptr = NULL;
	pthread_mutex_unlock(&trace_lock);
}

/* The blocks allocated during this input that are still live. */
static void trace_report(void)
{
	if (!alloc_trace) {
		fprintf(stderr, "relay-fuzz: (FUZZ_ALLOC_TRACE=1 shows where they were allocated)\n");
		return;
	}
	pthread_mutex_lock(&trace_lock);
	for (int i = 0; i < TRACE_SLOTS; i++) {
		if (!traced[i].ptr || traced[i].gen != atomic_load(&cur_gen))
			continue;
		fprintf(stderr, "relay-fuzz: live block of %zu bytes allocated at:\n", traced[i].size);
		for (int f = 2; f < TRACE_FRAMES && traced[i].frames[f]; f++) {
			char buf[256];
			__sanitizer_symbolize_pc(traced[i].frames[f], "%f %L", buf, sizeof buf);
			fprintf(stderr, "    %s\n", buf);
		}
	}
	pthread_mutex_unlock(&trace_lock);
}

static void *count_alloc(size_t size, void *user)
{
	(void)user;
	if (tls.countdown > 0 && --tls.countdown == 0) {
		tls.injected++;
		return NULL;
	}
	void *p = malloc(size);
	if (p) {
		atomic_fetch_add(&live_blocks, 1);
		if (alloc_trace)
			trace_alloc(p, size);
	}
	return p;
}

static void count_release(void *p, void *user)
{
	(void)user;
	if (p) {
		atomic_fetch_sub(&live_blocks, 1);
		if (alloc_trace)
			trace_release(p);
		free(p);
	}
}

static void on_diag(int code, const char *line, void *user)
{
	(void)user;
	CHECK(line && line[0], "empty diagnostic (code %d)", code);
	CHECK(!strchr(line, '\n'), "diagnostic of more than one line: %s", line);
	CHECK(code < 0, "diagnostic with code %d: %s", code, line);
	tls.diags++;
	if (verbose)
		fprintf(stderr, "relay: %s\n", line);
}

/* A refusal relay documents with a diagnostic. */
static void expect_diag(unsigned long before, int rc)
{
	if (tls.injected)
		return;
	CHECK(tls.diags > before, "refused with %d (%s) but no diagnostic was reported", rc,
	      relay_strerror(rc));
}

/* ======================================================================
 * Payloads: an int, and a struct bigger than relay's inline records with
 * copy/free hooks that own heap memory
 * ====================================================================== */

#define BIG_MAGIC 0xb16b00b5u
#define BIG_FREED 0xdeadb16bu
enum { BIG_HOOKS = 1, BIG_IS_COPY = 2, BIG_FAIL_COPY = 4 };

struct big {
	uint32_t magic, seq, sum, flags;
	unsigned char data[64];
	char *heap;              /* owned by the copy, made by big_copy */
};
_Static_assert(sizeof(struct big) > 64, "the big payload must not fit a ring record");

static const char *const big_words[8] = { "alpha", "bravo", "charlie", "delta",
					  "echo", "foxtrot", "golf", "hotel" };
static atomic_long big_copies, big_frees;

static uint32_t checksum(const unsigned char *p, size_t n)
{
	uint32_t h = 2166136261u;
	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 16777619u;
	return h;
}

static struct big make_big(uint32_t seq, bool hooks, bool fail_copy)
{
	struct big b = { .magic = BIG_MAGIC, .seq = seq };
	for (size_t i = 0; i < sizeof b.data; i++)
		b.data[i] = (unsigned char)(seq * 31u + i);
	b.sum = checksum(b.data, sizeof b.data);
	b.flags = (hooks ? BIG_HOOKS : 0) | (fail_copy ? BIG_FAIL_COPY : 0);
	b.heap = (char *)big_words[seq % 8];
	return b;
}

static int big_copy(void *dst, const void *src)
{
	const struct big *s = src;
	struct big *d = dst;
	CHECK(s->magic == BIG_MAGIC, "copy hook: source is not a live payload");
	if (s->flags & BIG_FAIL_COPY)
		return -ENOMEM;
	*d = *s;
	d->heap = strdup(s->heap);
	CHECK(d->heap, "out of memory");
	d->flags |= BIG_IS_COPY;
	atomic_fetch_add(&big_copies, 1);
	return 0;
}

static void big_free(void *p)
{
	struct big *b = p;
	CHECK(b->magic != BIG_FREED, "free hook: payload copy freed twice (D3)");
	CHECK(b->magic == BIG_MAGIC && (b->flags & BIG_IS_COPY),
	      "free hook: called on storage the copy hook did not fill (D3)");
	free(b->heap);
	b->heap = NULL;
	b->magic = BIG_FREED;
	atomic_fetch_add(&big_frees, 1);
}

static const relay_payload_ops big_ops = { big_copy, big_free };

/* A small payload with hooks: it travels inline in a ring record, where
 * the copy is made in the ring and freed from there. */
#define MID_MAGIC 0x3d3d3d3du
struct mid {
	uint32_t magic, seq, flags, pad;
	char *heap;
};
_Static_assert(sizeof(struct mid) <= 64, "the mid payload must fit a ring record");

static struct mid make_mid(uint32_t seq, bool hooks, bool fail_copy)
{
	return (struct mid){ MID_MAGIC, seq,
			     (hooks ? BIG_HOOKS : 0u) | (fail_copy ? BIG_FAIL_COPY : 0u), 0,
			     (char *)big_words[seq % 8] };
}

static int mid_copy(void *dst, const void *src)
{
	const struct mid *s = src;
	struct mid *d = dst;
	CHECK(s->magic == MID_MAGIC, "copy hook: source is not a live payload");
	if (s->flags & BIG_FAIL_COPY)
		return -ENOMEM;
	*d = *s;
	d->heap = strdup(s->heap);
	CHECK(d->heap, "out of memory");
	d->flags |= BIG_IS_COPY;
	atomic_fetch_add(&big_copies, 1);
	return 0;
}

static void mid_free(void *p)
{
	struct mid *m = p;
	CHECK(m->magic != BIG_FREED, "free hook: payload copy freed twice (D3)");
	CHECK(m->magic == MID_MAGIC && (m->flags & BIG_IS_COPY),
	      "free hook: called on storage the copy hook did not fill (D3)");
	free(m->heap);
	m->heap = NULL;
	m->magic = BIG_FREED;
	atomic_fetch_add(&big_frees, 1);
}

static const relay_payload_ops mid_ops = { mid_copy, mid_free };

static void check_mid(const struct mid *m, int type)
{
	CHECK(m->magic == MID_MAGIC, "slot got a payload that is not live (magic %#x)", m->magic);
	CHECK(m->heap && strcmp(m->heap, big_words[m->seq % 8]) == 0,
	      "slot got a payload whose owned memory is wrong");
	if (m->flags & BIG_HOOKS) {
		if (type == RELAY_QUEUED || type == RELAY_BLOCKING)
			CHECK(m->flags & BIG_IS_COPY, "queued slot got the emitter's value, not a copy");
		if (type == RELAY_DIRECT)
			CHECK(!(m->flags & BIG_IS_COPY), "direct slot got a copy");
	}
}

static void check_big(const struct big *b, int type)
{
	CHECK(b->magic == BIG_MAGIC, "slot got a payload that is not live (magic %#x)", b->magic);
	CHECK(b->sum == checksum(b->data, sizeof b->data), "slot got a corrupted payload");
	CHECK(b->heap && strcmp(b->heap, big_words[b->seq % 8]) == 0,
	      "slot got a payload whose owned memory is wrong");
	if (b->flags & BIG_HOOKS) {
		if (type == RELAY_QUEUED || type == RELAY_BLOCKING)
			CHECK(b->flags & BIG_IS_COPY, "queued slot got the emitter's value, not a copy");
		if (type == RELAY_DIRECT)
			CHECK(!(b->flags & BIG_IS_COPY), "direct slot got a copy");
	}
}

/* ======================================================================
 * The table of objects
 * ====================================================================== */

/* When a disconnect returned, and in which thread (D6). A slot call that
 * starts later in that thread is a violation. In another thread it may be
 * one that passed relay's liveness check just before the disconnect and
 * runs just after (relay counts it as started: loop.c, relay__dispatch),
 * so there it counts only once CUTOFF_GRACE_NS have passed. */
#define CUTOFF_GRACE_NS 1000000000LL
struct cutoff {
	atomic_int tid;
	atomic_llong ns;
};

static long long now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void cutoff_mark(struct cutoff *c)
{
	atomic_store(&c->ns, now_ns());
	atomic_store(&c->tid, (int)gettid());
}

/* Read after the flag that says a cut happened. */
static bool cutoff_passed(struct cutoff *c)
{
	return atomic_load(&c->tid) == (int)gettid() ||
	       now_ns() - atomic_load(&c->ns) > CUTOFF_GRACE_NS;
}

enum kind { K_OBJ, K_MAINONLY, K_TIMER, K_THREAD };
/* S_DYING: a timer or thread handle whose destroyed signal was emitted
 * (the start of its destruction); it is over when track_weak reads NULL. */
enum estate { S_FREE, S_ALIVE, S_DYING, S_DESTROYED };
/* Homes besides 1, 2 (the relay threads). H_FOREIGN: the foreign thread
 * running operations now (its objects' home is H_GONE once it exits). */
enum { H_MAIN = 0, H_FOREIGN = 3, H_NONE = -1, H_GONE = -2 };
enum sig { SIG_PING, SIG_VAL, SIG_BIG, SIG_ECHO, SIG_DESTROYED, SIG_TIMEOUT, SIG_STARTED,
	   SIG_FINISHED, SIG_MID };
static const char *const sig_names[] = { "ping", "val", "big", "echo", "destroyed",
					 "timeout", "started", "finished", "mid" };
static const char *const kind_names[] = { "obj", "mainonly", "timer", "thread" };

#define FOBJ_MAGIC 0xf0b1f0b1u

/* The fuzzer's object type: relay_object first, four signals. */
typedef struct fobj {
	relay_object base;
	RELAY_SIGNAL(ping);
	RELAY_SIGNAL(val, int);
	RELAY_SIGNAL(big, struct big);
	RELAY_SIGNAL(echo, int);   /* emitted by slots: never BLOCKING or DIRECT */
	RELAY_SIGNAL(mid, struct mid);
	uint32_t magic, gen;
	int idx;                   /* its entry */
	int mode;                  /* what its slots do besides checking */
	bool hooks;                /* big has copy/free hooks */
} fobj;

struct entry {
	int kind;
	bool caller;               /* caller-owned memory (pool[]), else relay's */
	uint32_t gen;
	void *ptr;
	_Atomic int state;
	atomic_int finalized;      /* finalizer (or destroyed signal) runs */
	atomic_int calls;          /* slot calls */
	atomic_bool cut;           /* relay_disconnect_receiver returned, nothing new since */
	struct cutoff cut_at;
	atomic_bool blocked;       /* signals blocked (as the executor set it) */
	int home;                  /* 0 main, 1, 2, H_NONE, H_GONE */
	int parent;                /* entry, or -1 */
	atomic_bool pending;       /* delete_later asked: destroyed at its thread's next pass */
	atomic_bool async_del;     /* a relay_slot_delete_later connection targets it */
	bool single;               /* K_TIMER: single-shot flag as set */
	bool shot;                 /* the receiver of a relay_single_shot */
	int wslot;                 /* K_THREAD: which worker slot */
	relay_weak weak;           /* set by OP_WEAK */
	relay_weak track_weak;     /* timers, handles: the end of their destruction */
	atomic_int last_seq[EMITTERS];   /* check_fifo: per emitting thread */
};

static struct entry ents[MAX_ENT];
static int n_ents;
static fobj pool[MAX_ENT];               /* memory of caller-owned objects */
static bool quiescent;                   /* teardown: no thread runs a loop */
static int quit_sources;                 /* slots that can quit a thread (no bursts then) */
static atomic_bool bursting;             /* the main thread loops while the others work */
static int n_foreign;                    /* foreign threads this input ran */

static void fobj_finalize(relay_object *o);
static const relay_class obj_class = { .name = "fobj", .finalize = fobj_finalize };
static const relay_class mainonly_class = { .name = "fmain", .finalize = fobj_finalize,
					       .flags = RELAY_CLASS_MAIN_THREAD_ONLY };

static relay_object *obj_of(int i)
{
	return (relay_object *)ents[i].ptr;   /* relay_object is every kind's first member */
}

static bool alive(int i)
{
	return i >= 0 && atomic_load(&ents[i].state) == S_ALIVE;
}

/* Destroyed, or far enough in its destruction that nothing may reach it:
 * slots of its destroyed signal still run with it as context. */
static bool gone(int i)
{
	int st = atomic_load(&ents[i].state);
	return st == S_DESTROYED || (st == S_DYING && !relay_weak_get(&ents[i].track_weak));
}

static bool is_fobj(int i)
{
	return ents[i].kind == K_OBJ || ents[i].kind == K_MAINONLY;
}

/* Whether another thread may destroy (and relay free) i at any moment:
 * a deletion is pending for it or an ancestor, or a relay_slot_delete_later
 * connection can ask for one, and it lives in a relay thread that runs on
 * its own. Objects in the main thread are destroyed only while the main
 * thread runs an operation, so they never vanish unseen - except in a
 * burst, where the main thread runs its loop while the others work. */
static bool may_vanish(int i)
{
	int home = ents[i].home;
	if (quiescent || !(home == 1 || home == 2 || (home == H_MAIN && atomic_load(&bursting))))
		return false;
	for (int j = i; j >= 0; j = ents[j].parent)
		if (ents[j].pending || ents[j].async_del)
			return true;
	return false;
}

/* May the fuzzer pass i to relay? Caller-owned memory stays valid. */
static bool touchable(int i)
{
	if (atomic_load(&ents[i].state) == S_FREE)
		return false;
	if (ents[i].caller)
		return true;
	return alive(i) && !may_vanish(i);
}

/* Alive and staying so during the call: exact results can be expected. */
static bool stable(int i)
{
	return alive(i) && !may_vanish(i);
}

static bool destroyed_caller(int i)
{
	return ents[i].caller && atomic_load(&ents[i].state) == S_DESTROYED;
}

static bool in_subtree(int i, int root)
{
	for (int j = i; j >= 0; j = ents[j].parent)
		if (j == root)
			return true;
	return false;
}

static bool subtree_has(int root, bool (*pred)(int))
{
	for (int j = 0; j < n_ents; j++)
		if (alive(j) && in_subtree(j, root) && pred(j))
			return true;
	return false;
}

static bool is_handle(int i)
{
	return ents[i].kind == K_THREAD;
}

static void set_subtree_home(int root, int home)
{
	for (int j = 0; j < n_ents; j++)
		if (alive(j) && in_subtree(j, root))
			ents[j].home = home;
}

static struct entry *entry_of(fobj *o, const char *what)
{
	CHECK(o->magic == FOBJ_MAGIC, "%s: receiver is not a live fuzzer object", what);
	CHECK(o->gen == atomic_load(&cur_gen), "%s: receiver is from an earlier input", what);
	CHECK(o->idx >= 0 && o->idx < MAX_ENT, "%s: bad receiver index", what);
	return &ents[o->idx];
}

static void mark_destroyed(struct entry *e, const char *what, int state)
{
	CHECK(atomic_load(&e->state) == S_ALIVE, "%s: an object destroyed twice", what);
	atomic_store(&e->state, state);
	atomic_fetch_add(&e->finalized, 1);
}

static void fobj_finalize(relay_object *o)
{
	mark_destroyed(entry_of((fobj *)o, "finalizer"), "finalizer", S_DESTROYED);
}

/* Timers and thread handles are relay's classes: a direct connection to
 * their destroyed signal tells the table (destroyed is emitted first in
 * destroy, in the destroying thread, also for blocked senders). */
static void track_destroyed(void *data)
{
	struct entry *e = data;
	CHECK(e->gen == atomic_load(&cur_gen), "destroyed signal from an earlier input");
	mark_destroyed(e, "destroyed signal", S_DYING);
}

static int new_entry(int kind, bool caller, int home, int parent)
{
	if (n_ents >= MAX_ENT)
		return -1;
	int i = n_ents++;
	struct entry *e = &ents[i];
	e->kind = kind;
	e->caller = caller;
	e->gen = atomic_load(&cur_gen);
	e->ptr = NULL;
	atomic_store(&e->finalized, 0);
	atomic_store(&e->calls, 0);
	atomic_store(&e->cut, false);
	atomic_store(&e->cut_at.tid, 0);
	atomic_store(&e->blocked, false);
	e->home = home;
	e->parent = parent;
	e->pending = parent >= 0 && ents[parent].pending;
	e->async_del = false;
	e->single = false;
	e->shot = false;
	e->wslot = 0;
	e->weak = (relay_weak){ 0 };
	e->track_weak = (relay_weak){ 0 };
	for (int k = 0; k < EMITTERS; k++)
		atomic_store(&e->last_seq[k], 0);
	return i;   /* state stays S_FREE until the object exists */
}

/* ======================================================================
 * Connections
 * ====================================================================== */

enum ckind { C_SLOT, C_FUNC, C_QUIT, C_DELETE };
enum pkind { PK_NONE, PK_VAL, PK_BIG, PK_MID };
#define CONN_MAGIC 0xc0ecc0ecu

struct conn {
	uint32_t magic, gen;
	int idx;
	_Atomic uint64_t id;
	int kind, sender, sig, recv;   /* recv: receiver or context entry, -1 none */
	int type, pk, mode;
	unsigned flags;
	void *sender_ptr;
	atomic_int calls;
	atomic_bool dead;             /* a disconnect covering it returned */
	struct cutoff cut;            /* ... when and in which thread */
};

static struct conn conns[MAX_CONN];
static int n_conns;

static bool stable(int i);

/* Whether a disconnect that does not find k ends k's life too. Not for a
 * connection already unlinked keeping its life, as relay documents: a
 * single shot an emit took, or one whose sender was destroyed (D7: its
 * queued calls still arrive). */
static bool disconnect_kills(const struct conn *k)
{
	return !(k->flags & RELAY_SINGLE_SHOT) && stable(k->sender);
}

/* After a disconnect by signal or receiver returned: no new call may
 * start for what it covered (D6). */
static void mark_dead(struct conn *k)
{
	cutoff_mark(&k->cut);
	atomic_store(&k->dead, true);
}

static void mark_dead_where(int sender, int sig, int recv)
{
	for (int c = 0; c < n_conns; c++) {
		struct conn *k = &conns[c];
		if ((sender < 0 || k->sender == sender) && (sig < 0 || k->sig == sig) &&
		    (recv < 0 || k->recv == recv) && disconnect_kills(k))
			mark_dead(k);
	}
}

static void mark_cut(struct entry *e)
{
	cutoff_mark(&e->cut_at);
	atomic_store(&e->cut, true);
}

/* After relay_disconnect_receiver(r): slots of r run no more, unless a
 * connection to it may keep its life (see disconnect_kills). */
static bool cut_complete(int r)
{
	for (int c = 0; c < n_conns; c++)
		if (conns[c].recv == r && atomic_load(&conns[c].id) &&
		    !(conns[c].flags & RELAY_SINGLE_SHOT) && !disconnect_kills(&conns[c]))
			return false;
	return true;
}

/* ======================================================================
 * Relay threads: slot 1 and 2, each a handle (a table entry) and an agent
 * ====================================================================== */

enum belief { T_NEW, T_RUN, T_QUIT, T_STOPPED };
static const char *const belief_names[] = { "new", "run", "quit", "stopped" };

struct agent {
	relay_object base;
	uint32_t gen;
	int slot;
	atomic_int finalized;
};

static void agent_finalize(relay_object *o)
{
	atomic_fetch_add(&((struct agent *)o)->finalized, 1);
}
static const relay_class agent_class = { .name = "agent", .finalize = agent_finalize };
static struct agent agents[MAX_AGENTS];
static int n_agents;

struct wthread {
	int ent;                 /* the handle's entry, -1 when there is none */
	struct agent *agent;     /* lives in the thread: operations go through it */
	int belief;              /* what the fuzzer knows of its state */
	bool quit_kept;          /* a quit before the first start: it ends that run (T2) */
	int emitter;             /* check_fifo's id of its current run, 0 none */
};
static struct wthread wt[3];   /* [1] and [2] */

static relay_thread *handle_of(int slot)
{
	/* alive: a deferred deletion may have taken it since the last sync */
	return alive(wt[slot].ent) ? (relay_thread *)ents[wt[slot].ent].ptr : NULL;
}

static relay_thread *foreign_handle;   /* while a foreign thread runs */

static relay_thread *home_handle(int home)
{
	if (home == H_MAIN)
		return relay_thread_main();
	if (home == H_FOREIGN)
		return foreign_handle;
	if (home == 1 || home == 2)
		return handle_of(home);
	return NULL;
}

/* The thread may serve a blocking call (not known to be stopped). */
static bool maybe_serving(int home)
{
	if (home == H_MAIN)
		return true;
	if ((home != 1 && home != 2) || wt[home].ent < 0)
		return false;
	return wt[home].belief == T_RUN || wt[home].belief == T_QUIT;
}

/* ======================================================================
 * Slots and the functions relay calls
 * ====================================================================== */

static void check_home(const relay_object *o, const char *what)
{
	CHECK(relay_object_thread(o) == relay_thread_current(),
	      "%s ran in a thread its receiver does not live in (D1/O1)", what);
}

static void check_not_posting(const char *what)
{
	CHECK(tls.posting == 0, "%s ran inside the call that queued it (D5)", what);
}

static void emit_on(int s, int sig, int value, int d);
static bool emit_would_hang(int s, int sig);
static void check_fifo(struct entry *e, int v);
static void do_delete_later(int i);

/* Loop passes run from a slot may deliver queued calls: they did not
 * come from the emit still open below, so D5's bookkeeping restarts. */
static void nested_pass(void)
{
	if (tls.nest > 0)
		return;
	int posting = tls.posting, blocked = tls.blocked_emit;
	tls.posting = tls.blocked_emit = 0;
	tls.nest++;
	int rc = relay_process_events();
	CHECK(rc >= 0, "relay_process_events in a slot: %d", rc);
	tls.nest--;
	tls.posting = posting;
	tls.blocked_emit = blocked;
}

/* Emissions made by slots, per input: a slot that emits through a queued
 * connection to itself would otherwise feed its own loop for ever. */
#define SLOT_EMITS 64
static atomic_int slot_emits;

static bool take_slot_emit(void)
{
	return atomic_fetch_sub(&slot_emits, 1) > 0;
}

static void emit_echo(fobj *self, int v)
{
	if (tls.echo_depth >= 2 || !take_slot_emit())
		return;
	tls.echo_depth++;
	tls.posting++;
	int rc = relay_emit(self, echo, &v);
	tls.posting--;
	tls.echo_depth--;
	EXPECT(rc == 0, "emit of echo (never blocking) in a slot: %d", rc);
}

static void connect_echo_self(fobj *self);

#define QUITS(mode) (((mode) & 7) == 3 && ((mode) & 0x40))

/* What a slot does besides checking, by the receiver's mode (D9): most
 * actions only while this thread runs an operation, as they change the
 * table, which that thread owns then. */
static void obj_action(struct entry *e, fobj *self, int calls)
{
	int act = self->mode & 7, every = 1 + ((self->mode >> 3) & 3);
	if (act == 0 || calls % every)
		return;
	switch (act) {
	case 1:
		if (tls.in_op) {
			EXPECT(relay_disconnect_receiver(&self->base) == 0, "disconnect_receiver in slot");
			mark_dead_where(-1, -1, self->idx);
			if (cut_complete(self->idx))
				mark_cut(e);
		}
		break;
	case 2:
		emit_echo(self, calls);
		break;
	case 3:   /* rarer (it stops bursts for the input): bit 6 too */
		if (QUITS(self->mode) && !relay_is_main_thread())
			CHECK(relay_loop_quit() == 0, "relay_loop_quit in a slot");
		break;
	case 4:
		if (tls.in_op)
			do_delete_later(self->idx);
		break;
	case 5:
		if (tls.in_op)
			nested_pass();
		break;
	case 6:
		if (tls.in_op)
			connect_echo_self(self);
		break;
	case 7:
		if (tls.in_op && tls.echo_depth == 0 && !emit_would_hang(self->idx, SIG_PING) &&
		    take_slot_emit()) {
			tls.echo_depth++;
			emit_on(self->idx, SIG_PING, calls, 0);
			tls.echo_depth--;
		}
		break;
	}
}

/* ss: a single-shot connection, whose queued call survives a later
 * disconnect (the emit that took it unlinked it, keeping its life). */
static void obj_slot(fobj *self, int type, bool ss, int pk, const void *p)
{
	struct entry *e = entry_of(self, "slot");
	CHECK(atomic_load(&e->state) == S_ALIVE, "slot called on destroyed receiver %d (D7)",
	      self->idx);
	CHECK(ss || !atomic_load(&e->cut) || !cutoff_passed(&e->cut_at),
	      "slot of receiver %d ran after relay_disconnect_receiver (D6)", self->idx);
	if (type != RELAY_DIRECT)
		check_home(&self->base, "slot");
	if (type == RELAY_QUEUED || type == RELAY_BLOCKING)
		check_not_posting("queued slot");
	CHECK(tls.blocked_emit == 0, "slot ran in an emit of a blocked sender");
	CHECK(relay_sender() != NULL, "relay_sender() is NULL in a slot");
	if (pk == PK_BIG)
		check_big(p, type);
	if (pk == PK_MID)
		check_mid(p, type);
	if (pk == PK_VAL && (type == RELAY_QUEUED || type == RELAY_BLOCKING))
		check_fifo(e, *(const int *)p);
	int calls = atomic_fetch_add(&e->calls, 1) + 1;
	obj_action(e, self, calls);
}

/* One slot per connection type and single-shot flag, so that a slot
 * knows how it was connected. */
#define SLOTS_FOR(T, SS, name)                                                        \
	static void slot0_##name(fobj *s) { obj_slot(s, T, SS, PK_NONE, NULL); }      \
	static void slotv_##name(fobj *s, const int *v) { obj_slot(s, T, SS, PK_VAL, v); } \
	static void slotb_##name(fobj *s, const struct big *b) { obj_slot(s, T, SS, PK_BIG, b); } \
	static void slotm_##name(fobj *s, const struct mid *m) { obj_slot(s, T, SS, PK_MID, m); }
SLOTS_FOR(RELAY_AUTO, false, auto)
SLOTS_FOR(RELAY_DIRECT, false, direct)
SLOTS_FOR(RELAY_QUEUED, false, queued)
SLOTS_FOR(RELAY_BLOCKING, false, blocking)
SLOTS_FOR(RELAY_AUTO, true, auto_ss)
SLOTS_FOR(RELAY_DIRECT, true, direct_ss)
SLOTS_FOR(RELAY_QUEUED, true, queued_ss)
SLOTS_FOR(RELAY_BLOCKING, true, blocking_ss)
typedef void (*slot0_fn)(fobj *);
typedef void (*slotv_fn)(fobj *, const int *);
typedef void (*slotb_fn)(fobj *, const struct big *);
typedef void (*slotm_fn)(fobj *, const struct mid *);
static const slot0_fn slot0_tab[2][4] = {
	{ slot0_auto, slot0_direct, slot0_queued, slot0_blocking },
	{ slot0_auto_ss, slot0_direct_ss, slot0_queued_ss, slot0_blocking_ss } };
static const slotv_fn slotv_tab[2][4] = {
	{ slotv_auto, slotv_direct, slotv_queued, slotv_blocking },
	{ slotv_auto_ss, slotv_direct_ss, slotv_queued_ss, slotv_blocking_ss } };
static const slotb_fn slotb_tab[2][4] = {
	{ slotb_auto, slotb_direct, slotb_queued, slotb_blocking },
	{ slotb_auto_ss, slotb_direct_ss, slotb_queued_ss, slotb_blocking_ss } };
static const slotm_fn slotm_tab[2][4] = {
	{ slotm_auto, slotm_direct, slotm_queued, slotm_blocking },
	{ slotm_auto_ss, slotm_direct_ss, slotm_queued_ss, slotm_blocking_ss } };
#define SS_ROW(flags) (((flags) & RELAY_SINGLE_SHOT) ? 1 : 0)

static void func_action(struct conn *c, int calls)
{
	int act = c->mode & 3;
	if (act == 0 || calls % (1 + ((c->mode >> 2) & 1)))
		return;
	if (act == 1) {
		/* The id is published when connect returns; before that, 0. */
		uint64_t id = atomic_load(&c->id);
		int rc = relay_disconnect(id);
		CHECK(rc == 0 || rc == -ENOENT, "relay_disconnect in a slot: %d", rc);
		if (id && rc == 0)
			mark_dead(c);
	} else if (act == 2 && c->recv >= 0 && is_fobj(c->recv) && c->type != RELAY_DIRECT) {
		emit_echo((fobj *)ents[c->recv].ptr, calls);   /* the context lives here */
	} else if (act == 3 && tls.in_op) {
		nested_pass();
	}
}

static void func_slot(struct conn *c, int pk, const void *p)
{
	CHECK(c->magic == CONN_MAGIC && c->gen == atomic_load(&cur_gen),
	      "function slot with stale data (a connection of an earlier input)");
	CHECK(!atomic_load(&c->dead) || !cutoff_passed(&c->cut), "function slot of connection %d "
	      "started after relay_disconnect returned (D6)", c->idx);
	int calls = atomic_fetch_add(&c->calls, 1) + 1;
	if (c->flags & RELAY_SINGLE_SHOT)
		CHECK(calls == 1, "single-shot connection %d called %d times (D1)", c->idx, calls);
	if (c->recv >= 0) {
		/* A context being destroyed may still get the direct calls of its
		 * own destroyed emission (Qt's rule): it is the sender then. */
		CHECK(!gone(c->recv) || relay_sender() == obj_of(c->recv),
		      "function slot ran after its context %d was destroyed (D2)", c->recv);
		if (c->type != RELAY_DIRECT)
			check_home(obj_of(c->recv), "function slot with context");
	}
	if (c->type == RELAY_QUEUED || c->type == RELAY_BLOCKING)
		check_not_posting("queued function slot");
	CHECK(tls.blocked_emit == 0, "function slot ran in an emit of a blocked sender");
	CHECK(relay_sender() == c->sender_ptr, "relay_sender() is not the emitting object");
	/* T1: started and finished come from the thread itself (a function
	 * without context runs where the signal is emitted). */
	if (c->recv < 0 && (c->sig == SIG_STARTED || c->sig == SIG_FINISHED))
		CHECK(relay_thread_current() == c->sender_ptr,
		      "%s was not emitted from its own thread (T1)", sig_names[c->sig]);
	if (pk == PK_BIG)
		check_big(p, c->type);
	if (pk == PK_MID)
		check_mid(p, c->type);
	func_action(c, calls);
}

static void func0(void *d) { func_slot(d, PK_NONE, NULL); }
static void funcv(void *d, const int *v) { func_slot(d, PK_VAL, v); }
static void funcb(void *d, const struct big *b) { func_slot(d, PK_BIG, b); }
static void funcm(void *d, const struct mid *m) { func_slot(d, PK_MID, m); }

/* relay_single_shot's slot. */
static void ss_slot(fobj *self)
{
	struct entry *e = entry_of(self, "single shot");
	CHECK(atomic_load(&e->state) == S_ALIVE, "single shot ran for destroyed receiver %d",
	      self->idx);
	check_home(&self->base, "single shot");
	check_not_posting("single shot");
}

/* relay_invoke's function and data. */
#define INV_MAGIC 0x1badfaceu
struct inv {
	uint32_t magic, gen;
	int ctx;
	int expect;
};
static atomic_long inv_made, inv_freed;

static void inv_release(struct inv *d)
{
	CHECK(d->magic == INV_MAGIC, "invoke data released twice");
	d->magic = 0;
	free(d);
	atomic_fetch_add(&inv_freed, 1);
}

static void inv_check(const struct inv *d, const char *what)
{
	CHECK(d->magic == INV_MAGIC && d->gen == atomic_load(&cur_gen), "%s: stale data", what);
	CHECK(!gone(d->ctx), "%s ran after its context %d was destroyed", what, d->ctx);
	check_home(obj_of(d->ctx), what);
	check_not_posting(what);
}

static void inv_fn(void *data)
{
	inv_check(data, "relay_invoke function");
	inv_release(data);
}

static void inv_free(void *data)
{
	inv_release(data);
}

static int inv_blocking_fn(void *data)
{
	struct inv *d = data;
	inv_check(d, "relay_invoke_blocking function");
	return d->expect;
}

/* ======================================================================
 * Signals by name: relay's macros want the member at compile time
 * ====================================================================== */

static int n_sigs(int kind)
{
	return kind == K_TIMER ? 2 : kind == K_THREAD ? 3 : 6;
}

static int sig_pick(int kind, uint8_t b)
{
	static const int timer_sigs[] = { SIG_TIMEOUT, SIG_DESTROYED };
	static const int thread_sigs[] = { SIG_STARTED, SIG_FINISHED, SIG_DESTROYED };
	int n = n_sigs(kind);
	if (kind == K_TIMER)
		return timer_sigs[b % n];
	if (kind == K_THREAD)
		return thread_sigs[b % n];
	return b % n == 5 ? SIG_MID : b % n;
}

static int sig_payload(int sig)
{
	return sig == SIG_VAL || sig == SIG_ECHO ? PK_VAL : sig == SIG_BIG ? PK_BIG
	       : sig == SIG_MID ? PK_MID : PK_NONE;
}

/* Signals emitted by relay or by slots, at times the fuzzer does not
 * choose: only AUTO or QUEUED to objects (a DIRECT call would reach a
 * receiver that another thread may be destroying, and a BLOCKING one
 * could close a cycle of waiting threads, which relay does not detect). */
static bool async_sig(int sig)
{
	return sig == SIG_ECHO || sig == SIG_DESTROYED || sig == SIG_TIMEOUT ||
	       sig == SIG_STARTED || sig == SIG_FINISHED;
}

/* Every signal, for slots that ignore the payload. */
#define CONNECT_ANY(sig, sp, recv, fn, data, type, flags, out)                               \
	switch (sig) {                                                                   \
	case SIG_PING:                                                                   \
		return CONN_(((fobj *)(sp)), ping, recv, fn, data, type, flags, out);    \
	case SIG_VAL:                                                                    \
		return CONN_(((fobj *)(sp)), val, recv, fn, data, type, flags, out);     \
	case SIG_BIG:                                                                    \
		return CONN_(((fobj *)(sp)), big, recv, fn, data, type, flags, out);     \
	case SIG_MID:                                                                    \
		return CONN_(((fobj *)(sp)), mid, recv, fn, data, type, flags, out);     \
	case SIG_ECHO:                                                                   \
		return CONN_(((fobj *)(sp)), echo, recv, fn, data, type, flags, out);    \
	case SIG_DESTROYED:                                                              \
		return CONN_(((relay_object *)(sp)), destroyed, recv, fn, data, type, flags, out); \
	case SIG_TIMEOUT:                                                                \
		return CONN_(((relay_timer *)(sp)), timeout, recv, fn, data, type, flags, out); \
	case SIG_STARTED:                                                                \
		return CONN_(((relay_thread *)(sp)), started, recv, fn, data, type, flags, out); \
	default:                                                                         \
		return CONN_(((relay_thread *)(sp)), finished, recv, fn, data, type, flags, out); \
	}

#define CONN_(s, m, r, fn, data, t, f, o) relay_connect_ex(s, m, r, fn, t, f, o)
static int connect_slot0(int sig, void *sp, fobj *r, int type, unsigned flags, relay_connection *out)
{
	slot0_fn fn = slot0_tab[SS_ROW(flags)][type & 3];
	CONNECT_ANY(sig, sp, r, fn, NULL, type, flags, out)
}

static int connect_quit(int sig, void *sp, relay_thread *r, int type, unsigned flags,
			relay_connection *out)
{
	CONNECT_ANY(sig, sp, r, relay_slot_quit, NULL, type, flags, out)
}

static int connect_delete(int sig, void *sp, relay_object *r, int type, unsigned flags,
			  relay_connection *out)
{
	CONNECT_ANY(sig, sp, r, relay_slot_delete_later, NULL, type, flags, out)
}
#undef CONN_

#define CONN_(s, m, ctx, fn, data, t, f, o) relay_connect_func_ex(s, m, ctx, fn, data, t, f, o)
static int connect_func0(int sig, void *sp, relay_object *ctx, void *data, int type,
			 unsigned flags, relay_connection *out)
{
	CONNECT_ANY(sig, sp, ctx, func0, data, type, flags, out)
}
#undef CONN_

/* Payload-typed slots, for the signals that carry one. */
static int connect_typed(int sig, fobj *s, fobj *r, int type, unsigned flags,
			 relay_connection *out)
{
	slotv_fn v = slotv_tab[SS_ROW(flags)][type & 3];
	slotb_fn b = slotb_tab[SS_ROW(flags)][type & 3];
	slotm_fn m = slotm_tab[SS_ROW(flags)][type & 3];
	if (sig == SIG_MID)
		return relay_connect_ex(s, mid, r, m, type, flags, out);
	if (sig == SIG_VAL)
		return relay_connect_ex(s, val, r, v, type, flags, out);
	if (sig == SIG_ECHO)
		return relay_connect_ex(s, echo, r, v, type, flags, out);
	return relay_connect_ex(s, big, r, b, type, flags, out);
}

static int connect_func_typed(int sig, fobj *s, relay_object *ctx, void *data, int type,
			      unsigned flags, relay_connection *out)
{
	if (sig == SIG_MID)
		return relay_connect_func_ex(s, mid, ctx, funcm, data, type, flags, out);
	if (sig == SIG_VAL)
		return relay_connect_func_ex(s, val, ctx, funcv, data, type, flags, out);
	if (sig == SIG_ECHO)
		return relay_connect_func_ex(s, echo, ctx, funcv, data, type, flags, out);
	return relay_connect_func_ex(s, big, ctx, funcb, data, type, flags, out);
}

/* ======================================================================
 * Operations
 * ====================================================================== */

#define OPS(X)                                                                      \
	X(NEW_OBJ) X(NEW_TIMER) X(CONNECT) X(CONNECT_FUNC) X(CONNECT_SPECIAL) X(EMIT)   \
	X(DISCONNECT) X(DISCONNECT_SIGNAL) X(DISCONNECT_RECEIVER) X(MOVE) X(SET_PARENT) \
	X(DELETE_LATER) X(DESTROY) X(TIMER) X(SINGLE_SHOT) X(INVOKE) X(INVOKE_BLOCKING) \
	X(THREAD) X(LOOP) X(MAIN_RUN) X(BLOCK) X(WEAK) X(QUERY) X(SLEEP) X(NULLS) X(BURST)  \
	X(FOREIGN)
enum op_code {
#define X(n) OP_##n,
	OPS(X)
#undef X
	OP_COUNT
};
static const char *const op_names[] = {
#define X(n) #n,
	OPS(X)
#undef X
};

struct op {
	uint8_t code, actor, a, b, c, d;
	uint8_t inject;   /* 0, or the n-th allocation of the operation fails */
};

typedef bool (*ent_pred)(int i);

/* The byte-th (modulo) entry that satisfies pred, or -1. */
static int pick(uint8_t byte, ent_pred pred)
{
	int cand[MAX_ENT], n = 0;
	for (int i = 0; i < n_ents; i++)
		if (atomic_load(&ents[i].state) != S_FREE && pred(i))
			cand[n++] = i;
	return n ? cand[byte % n] : -1;
}

static bool p_any(int i) { return touchable(i); }
static bool p_obj(int i) { return touchable(i) && is_fobj(i); }
static bool p_timer(int i) { return touchable(i) && ents[i].kind == K_TIMER; }
static bool p_handle(int i) { return touchable(i) && is_handle(i); }

static const char *who(int i)
{
	static _Thread_local char buf[8][40];
	static _Thread_local int k;
	char *b = buf[k++ & 7];
	if (i < 0)
		return "none";
	snprintf(b, 40, "%s#%d(%s%s,h%d)", kind_names[ents[i].kind], i,
		 ents[i].caller ? "caller" : "relay",
		 alive(i) ? "" : ",destroyed", ents[i].home);
	return b;
}

static void skip(const char *why)
{
	note("  skipped: %s", why);
}
#define SKIP(why)          \
	do {               \
		skip(why); \
		return;    \
	} while (0)

/* ---- objects ---- */

static int actor(void)
{
	return tls.actor;
}

static void op_new_obj(const struct op *op)
{
	int kind = op->a % 3 == 2 ? K_MAINONLY : K_OBJ;
	bool caller = kind == K_MAINONLY ? (op->a & 4) : (op->a % 3 == 1);
	bool hooks = op->a & 8;
	int parent = op->b % 3 == 0 ? -1 : pick(op->b / 3, p_any);
	int i = new_entry(kind, caller, actor(), parent);
	if (i < 0)
		SKIP("table full");
	const relay_class *cls = kind == K_MAINONLY ? &mainonly_class : &obj_class;
	relay_object *p = parent >= 0 ? obj_of(parent) : NULL;
	note("T%d NEW_OBJ %s %s parent=%s hooks=%d mode=%d -> #%d", actor(), kind_names[kind],
	     caller ? "caller" : "relay", who(parent), hooks, op->c, i);
	unsigned long d0 = tls.diags;
	fobj *o = NULL;
	int rc;
	if (caller) {
		o = &pool[i];
		memset(o, 0, sizeof *o);
		rc = relay_object_init(&o->base, cls, p);
	} else {
		rc = relay_object_new(&o, cls, p);
	}
	done(rc);
	int want = 0;
	if (kind == K_MAINONLY && actor() != H_MAIN)
		want = RELAY_EMAINONLY;
	else if (parent >= 0 && destroyed_caller(parent))
		want = RELAY_EDESTROYED;   /* a destroyed parent is refused as such */
	else if (parent >= 0 && !(alive(parent) && ents[parent].home == actor()))
		want = RELAY_EPARENTTHREAD;
	/* A parent another thread may be destroying meanwhile may be refused
	 * either way, destroyed or living elsewhere. */
	if (parent >= 0 && !stable(parent) &&
	    (rc == RELAY_EDESTROYED || rc == RELAY_EPARENTTHREAD) &&
	    (want == RELAY_EDESTROYED || want == RELAY_EPARENTTHREAD))
		want = rc;
	EXPECT(rc == want, "object init/new returned %d, expected %d", rc, want);
	if (rc < 0) {
		expect_diag(d0, rc);
		n_ents--;   /* never existed */
		return;
	}
	o->magic = FOBJ_MAGIC;
	o->gen = atomic_load(&cur_gen);
	o->idx = i;
	o->mode = op->c;
	o->hooks = hooks;
	if (QUITS(o->mode))
		quit_sources++;
	ents[i].ptr = o;
	atomic_store(&ents[i].state, S_ALIVE);
	if (hooks)
		CHECK(relay_signal_set_ops(o, big, &big_ops) == 0 &&
		      relay_signal_set_ops(o, mid, &mid_ops) == 0, "relay_signal_set_ops");
	if (op->d & 1) {
		char name[24];
		snprintf(name, sizeof name, "o%d-%u", i, op->d);
		CHECK(relay_object_set_name(&o->base, name) == 0, "relay_object_set_name");
	}
}

static int track(int i)
{
	void *data = &ents[i];
	if (relay_weak_set(&ents[i].track_weak, obj_of(i)) != 0)
		return -ENOMEM;
	if (ents[i].kind == K_TIMER)
		return relay_connect_func_ex((relay_timer *)ents[i].ptr, base.destroyed, NULL,
					     track_destroyed, data, RELAY_DIRECT, 0u, NULL);
	return relay_connect_func_ex((relay_thread *)ents[i].ptr, base.destroyed, NULL,
				     track_destroyed, data, RELAY_DIRECT, 0u, NULL);
}

static void op_new_timer(const struct op *op)
{
	int parent = op->b % 2 == 0 ? -1 : pick(op->b / 2, p_any);
	int i = new_entry(K_TIMER, false, actor(), parent);
	if (i < 0)
		SKIP("table full");
	note("T%d NEW_TIMER parent=%s -> #%d", actor(), who(parent), i);
	relay_timer *t = NULL;
	unsigned long d0 = tls.diags;
	int rc = done(relay_timer_create(parent >= 0 ? obj_of(parent) : NULL, &t));
	int want = parent >= 0 && destroyed_caller(parent) ? RELAY_EDESTROYED
		   : parent >= 0 && !(alive(parent) && ents[parent].home == actor())
			   ? RELAY_EPARENTTHREAD : 0;
	if (parent >= 0 && !stable(parent) &&
	    (rc == RELAY_EDESTROYED || rc == RELAY_EPARENTTHREAD) &&
	    (want == RELAY_EDESTROYED || want == RELAY_EPARENTTHREAD))
		want = rc;   /* destroyed meanwhile by its thread */
	EXPECT(rc == want, "relay_timer_create returned %d, expected %d", rc, want);
	if (rc < 0) {
		expect_diag(d0, rc);
		n_ents--;
		return;
	}
	ents[i].ptr = t;
	atomic_store(&ents[i].state, S_ALIVE);
	CHECK(track(i) == 0, "connecting the timer's destroyed signal");
	/* A repeating timer of 0 ms fires on every pass (as in Qt): a thread
	 * would spin and flood its receivers, so repeating ones get 1 ms. */
	if (op->c & 1) {
		ents[i].single = true;
		CHECK(relay_timer_set_single_shot(t, true) == 0, "relay_timer_set_single_shot");
	} else {
		CHECK(relay_timer_set_interval(t, 1) == 0, "relay_timer_set_interval");
	}
}

/* ---- connections ---- */

/* A record is filled before relay links the connection: another thread
 * may call its slot before connect returns. */
static struct conn *new_conn(int kind, int s, int sig, int r, int type, unsigned flags, int pk,
			     int mode)
{
	if (n_conns >= MAX_CONN)
		return NULL;
	struct conn *c = &conns[n_conns];
	c->magic = CONN_MAGIC;
	c->gen = atomic_load(&cur_gen);
	c->idx = n_conns++;
	atomic_store(&c->id, 0);
	c->kind = kind;
	c->sender = s;
	c->sig = sig;
	c->recv = r;
	c->type = type;
	c->flags = flags;
	c->pk = pk;
	c->mode = mode;
	c->sender_ptr = ents[s].ptr;
	atomic_store(&c->calls, 0);
	atomic_store(&c->dead, false);
	atomic_store(&c->cut.tid, 0);
	return c;
}

/* relay's duplicate test is (signal, receiver, function, data). */
static bool same_target(const struct conn *k, const struct conn *c)
{
	return k != c && k->kind == c->kind && k->kind != C_FUNC && k->sender == c->sender &&
	       k->sig == c->sig && k->recv == c->recv &&
	       (k->kind != C_SLOT || (k->type == c->type && k->pk == c->pk &&
				      SS_ROW(k->flags) == SS_ROW(c->flags)));
}

/* Whether the fuzzer knows k is still linked. */
static bool surely_linked(const struct conn *k)
{
	return atomic_load(&k->id) && !atomic_load(&k->dead) && !(k->flags & RELAY_SINGLE_SHOT) &&
	       !(k->kind == C_FUNC && (k->mode & 3) == 1) && stable(k->sender) &&
	       (k->recv < 0 || stable(k->recv));
}

static void dup_state(const struct conn *c, bool *maybe, bool *surely)
{
	*maybe = *surely = false;
	for (int i = 0; i < n_conns; i++) {
		const struct conn *k = &conns[i];
		if (!same_target(k, c) || !atomic_load(&k->id) || atomic_load(&k->dead))
			continue;
		*maybe = true;
		if (surely_linked(k))
			*surely = true;
	}
}

/* What a connect may return (D1 flags, refusals of dead ends), known
 * before the call: an end that may vanish may do so during it. */
struct cexp {
	bool invalid, dead_end, stable_ends, maybe_dup, surely_dup;
};

static struct cexp expect_connect(const struct conn *c, bool bogus)
{
	struct cexp x = { 0 };
	dup_state(c, &x.maybe_dup, &x.surely_dup);
	x.invalid = bogus || (c->recv < 0 && (c->type == RELAY_QUEUED || c->type == RELAY_BLOCKING));
	x.dead_end = destroyed_caller(c->sender) || (c->recv >= 0 && destroyed_caller(c->recv));
	x.stable_ends = stable(c->sender) && (c->recv < 0 || stable(c->recv));
	return x;
}

static void check_connect(struct conn *c, int rc, relay_connection id, struct cexp x)
{
	bool unique = c->flags & RELAY_UNIQUE;
	if (x.invalid) {
		EXPECT(rc == -EINVAL, "connect with a bad type or no context to queue to: %d", rc);
	} else if (x.dead_end) {
		EXPECT(rc == RELAY_EDESTROYED, "connect with a destroyed end returned %d", rc);
	} else if (x.stable_ends) {
		if (unique && x.surely_dup)
			EXPECT(rc == -EEXIST, "unique connect of a duplicate returned %d (D1)", rc);
		else
			EXPECT(rc == 0 || (rc == -EEXIST && unique && x.maybe_dup),
			      "connect returned %d", rc);
	} else {
		EXPECT(rc == 0 || rc == RELAY_EDESTROYED || (rc == -EEXIST && unique && x.maybe_dup),
		      "connect returned %d", rc);
	}
	if (rc == 0) {
		CHECK(id != 0, "connect returned 0 and no connection id");
		atomic_store(&c->id, id);
	} else {
		atomic_store(&c->dead, true);   /* never linked */
	}
}

static void conn_type(uint8_t d, int sig, bool to_object, int *type, unsigned *flags)
{
	*type = d & 3;
	*flags = (d >> 2) & 3;
	if (to_object && async_sig(sig)) {
		if (*type == RELAY_DIRECT)
			*type = RELAY_AUTO;
		if (*type == RELAY_BLOCKING)
			*type = RELAY_QUEUED;
	}
}

static const char *const type_names[] = { "auto", "direct", "queued", "blocking" };

static void op_connect(const struct op *op)
{
	int s = pick(op->a, p_any), r = pick(op->c, p_obj);
	if (s < 0 || r < 0)
		SKIP("no sender or receiver");
	int sig = sig_pick(ents[s].kind, op->b), type;
	unsigned flags;
	conn_type(op->d, sig, true, &type, &flags);
	int pk = (op->d & 0x10) ? sig_payload(sig) : PK_NONE;
	bool bogus = (op->d & 0xe0) == 0xe0;
	struct conn *c = new_conn(C_SLOT, s, sig, r, type, flags, pk, 0);
	if (!c)
		SKIP("connections full");
	note("T%d CONNECT %s.%s -> slot%s %s %s flags=%u%s conn#%d", actor(), who(s),
	     sig_names[sig], pk ? "(payload)" : "", who(r), type_names[type], flags,
	     bogus ? " bad-type" : "", c->idx);
	atomic_store(&ents[r].cut, false);
	struct cexp x = expect_connect(c, bogus);
	relay_connection id = 0;
	int rc;
	if (bogus)
		rc = connect_slot0(sig, ents[s].ptr, ents[r].ptr, 5, flags, &id);
	else if (pk != PK_NONE)
		rc = connect_typed(sig, ents[s].ptr, ents[r].ptr, type, flags, &id);
	else
		rc = connect_slot0(sig, ents[s].ptr, ents[r].ptr, type, flags, &id);
	check_connect(c, done(rc), id, x);
}

static void op_connect_func(const struct op *op)
{
	int s = pick(op->a, p_any);
	if (s < 0)
		SKIP("no sender");
	int ctx = op->c % 4 == 0 ? -1 : pick(op->c / 4, p_any), type;
	int sig = sig_pick(ents[s].kind, op->b);
	unsigned flags;
	conn_type(op->d, sig, ctx >= 0, &type, &flags);
	int pk = (op->d & 0x10) ? sig_payload(sig) : PK_NONE;
	struct conn *c = new_conn(C_FUNC, s, sig, ctx, type, flags, pk, op->d >> 5);
	if (!c)
		SKIP("connections full");
	note("T%d CONNECT_FUNC %s.%s ctx=%s %s flags=%u mode=%d conn#%d", actor(), who(s),
	     sig_names[sig], who(ctx), type_names[type], flags, c->mode, c->idx);
	relay_object *co = ctx >= 0 ? obj_of(ctx) : NULL;
	struct cexp x = expect_connect(c, false);
	relay_connection id = 0;
	int rc = pk != PK_NONE ? connect_func_typed(sig, ents[s].ptr, co, c, type, flags, &id)
			       : connect_func0(sig, ents[s].ptr, co, c, type, flags, &id);
	check_connect(c, done(rc), id, x);
}

static bool p_delete_target(int i)
{
	return touchable(i) && (is_fobj(i) || is_handle(i));
}

/* relay's ready-made slots: relay_slot_quit on a thread handle and
 * relay_slot_delete_later on an object (Qt's finished -> deleteLater). */
static void op_connect_special(const struct op *op)
{
	int s = pick(op->a, p_any);
	bool quit = op->c & 1;
	int r = pick(op->c >> 1, quit ? p_handle : p_delete_target);
	if (s < 0 || r < 0)
		SKIP("no sender or receiver");
	int sig = sig_pick(ents[s].kind, op->b), type;
	unsigned flags;
	conn_type(op->d, sig, true, &type, &flags);
	struct conn *c = new_conn(quit ? C_QUIT : C_DELETE, s, sig, r, type, flags, PK_NONE, 0);
	if (!c)
		SKIP("connections full");
	note("T%d CONNECT_SPECIAL %s.%s -> %s(%s) %s flags=%u conn#%d", actor(), who(s),
	     sig_names[sig], quit ? "relay_slot_quit" : "relay_slot_delete_later", who(r),
	     type_names[type], flags, c->idx);
	struct cexp x = expect_connect(c, false);
	if (!quit)
		ents[r].async_del = true;   /* from now on it may be deleted at any time */
	else
		quit_sources++;
	relay_connection id = 0;
	int rc = quit ? connect_quit(sig, ents[s].ptr, ents[r].ptr, type, flags, &id)
		      : connect_delete(sig, ents[s].ptr, obj_of(r), type, flags, &id);
	check_connect(c, done(rc), id, x);
}

/* ---- emit ---- */

/* An emit the fuzzer must not make: it would wait for the main thread,
 * which waits for this one, or call a slot directly on a receiver that
 * another thread may be destroying (the user's business, as in Qt). */
static bool emit_would_hang(int s, int sig)
{
	for (int i = 0; i < n_conns; i++) {
		const struct conn *c = &conns[i];
		if (c->sender != s || c->sig != sig || c->recv < 0 || atomic_load(&c->dead))
			continue;
		int home = ents[c->recv].home;
		if (c->type == RELAY_BLOCKING && home == H_MAIN && actor() != H_MAIN)
			return true;
		if (c->type == RELAY_DIRECT && (c->kind == C_SLOT || c->kind == C_FUNC) &&
		    home != actor() && may_vanish(c->recv))
			return true;
	}
	return false;
}

/* Whether a slot this connection calls may disconnect others during the
 * emission (D9: those are then skipped). */
static bool may_disconnect(const struct conn *c)
{
	if (c->kind == C_FUNC)
		return (c->mode & 3) == 1;
	if (c->kind != C_SLOT)
		return false;
	return !touchable(c->recv) || (((fobj *)ents[c->recv].ptr)->mode & 7) == 1;
}

/* The one case where an emit's result is known: a single blocking
 * connection, to a receiver in the emitting thread (D8), and no slot of
 * the emission that could cut it first. */
static bool surely_deadlocks(int s, int sig)
{
	int n = 0, self = 0;
	for (int i = 0; i < n_conns; i++) {
		const struct conn *c = &conns[i];
		if (c->sender != s || c->sig != sig || !atomic_load(&c->id) || atomic_load(&c->dead))
			continue;
		if (may_disconnect(c))
			return false;
		if (c->type != RELAY_BLOCKING)
			continue;
		n++;
		if (surely_linked(c) && c->recv >= 0 && ents[c->recv].home == actor())
			self++;
	}
	return n == 1 && self == 1 && stable(s) && !atomic_load(&ents[s].blocked);
}

/* val payloads carry the emitting thread and a sequence number, so that
 * queued slots can check the order of what one thread sent (D4, O1). */
#define VAL_SEQ (1 << 30)
static atomic_int val_seq[EMITTERS];
static int next_emitter = 1;   /* 0 is the main thread */
static int foreign_emitter;

/* Each relay thread, each foreign thread: its events have no order with
 * another's. A restarted relay thread is the same relay_thread (D4 makes
 * no exception), unless FUZZ_AVOID_FIFO_RESTART treats each run apart. */
static int new_emitter(void)
{
	return next_emitter < EMITTERS ? next_emitter++ : -1;
}

static int run_emitter(int slot)
{
	if (!FUZZ_AVOID_FIFO_RESTART && wt[slot].emitter)
		return wt[slot].emitter;
	return new_emitter();
}

static int emitter_id(void)
{
	if (actor() == H_FOREIGN)
		return foreign_emitter;
	if (actor() == 1 || actor() == 2)
		return wt[actor()].emitter;
	return 0;
}

/* A payload checked for order, or (ids used up) one that is not. */
static int seq_value(void)
{
	int e = emitter_id();
	if (e < 0)
		return 0x1234;
	int n = atomic_fetch_add(&val_seq[e], 1) + 1;
	return VAL_SEQ | (e << 24) | (n & 0xffffff);
}

static void check_fifo(struct entry *e, int v)
{
	if (!(v & VAL_SEQ))
		return;
	int from = (v >> 24) & (EMITTERS - 1), n = v & 0xffffff;
	if (from >= EMITTERS)
		return;
	int last = atomic_load(&e->last_seq[from]);
	CHECK(n >= last, "queued calls from one thread to receiver #%d out of order: %d after %d "
	      "(D4, O1)", (int)(e - ents), n, last);
	atomic_store(&e->last_seq[from], n);
}

static int do_emit(int s, int sig, int value, bool fail_copy)
{
	fobj *o = ents[s].ptr;
	bool blocked = atomic_load(&ents[s].blocked);
	tls.posting++;
	if (blocked)
		tls.blocked_emit++;
	int rc;
	if (sig == SIG_PING) {
		rc = relay_emit(o, ping);
	} else if (sig == SIG_VAL) {
		rc = relay_emit(o, val, &value);
	} else if (sig == SIG_BIG) {
		struct big b = make_big((uint32_t)value, o->hooks, fail_copy);
		rc = relay_emit(o, big, &b);
	} else if (sig == SIG_MID) {
		struct mid m = make_mid((uint32_t)value, o->hooks, fail_copy);
		rc = relay_emit(o, mid, &m);
	} else {
		rc = relay_emit(o, echo, &value);
	}
	if (blocked)
		tls.blocked_emit--;
	tls.posting--;
	EXPECT(rc == 0 || rc == RELAY_EDEADLOCK || rc == RELAY_ENOTRUNNING ||
	      rc == RELAY_ENOTDELIVERED || (rc == -ENOMEM && fail_copy),
	      "relay_emit returned %d", rc);
	return rc;
}

static void emit_on(int s, int sig, int value, int d)
{
	fobj *o = ents[s].ptr;
	bool blocked = atomic_load(&ents[s].blocked);
	bool fail_copy = (sig == SIG_BIG || sig == SIG_MID) && (d & 1) && o->hooks;
	bool deadlock = !fail_copy && surely_deadlocks(s, sig);
	if (sig == SIG_VAL)
		value = seq_value();
	note("T%d EMIT %s.%s value=%#x%s%s", actor(), who(s), sig_names[sig], value,
	     fail_copy ? " failing-copy" : "", blocked ? " (blocked)" : "");
	int rc = done(do_emit(s, sig, value, fail_copy));
	if (deadlock)
		EXPECT(rc == RELAY_EDEADLOCK, "blocking emit to the emitting thread returned %d (D8)",
		      rc);
	if (blocked)
		CHECK(rc == 0, "emit of a blocked sender returned %d", rc);
}

static void op_emit(const struct op *op)
{
	int s = pick(op->a, p_obj);
	if (s < 0)
		SKIP("no sender");
	int sig = op->b % 5 == 4 ? SIG_MID : op->b % 5;   /* ping, val, big, echo, mid */
	if (emit_would_hang(s, sig))
		SKIP("would wait for the main thread or race a destruction");
	emit_on(s, sig, op->c, op->d);
}

/* ---- disconnect ---- */

static void op_disconnect(const struct op *op)
{
	if (n_conns == 0 || op->a % 16 == 15) {
		uint64_t id = op->b & 1 ? 0 : UINT64_MAX - op->c;
		note("T%d DISCONNECT bogus id %llu", actor(), (unsigned long long)id);
		int rc = done(relay_disconnect(id));
		CHECK(rc == -ENOENT, "relay_disconnect of an unknown id returned %d", rc);
		return;
	}
	struct conn *c = &conns[op->a % n_conns];
	uint64_t id = atomic_load(&c->id);
	bool was_dead = atomic_load(&c->dead), linked = surely_linked(c);
	note("T%d DISCONNECT conn#%d (%s.%s)%s", actor(), c->idx, who(c->sender), sig_names[c->sig],
	     was_dead ? " again" : "");
	int rc = done(relay_disconnect(id));
	CHECK(rc == 0 || rc == -ENOENT, "relay_disconnect returned %d", rc);
	if (was_dead)
		CHECK(rc == -ENOENT, "relay_disconnect of a connection already cut returned %d", rc);
	if (linked)
		CHECK(rc == 0, "relay_disconnect of a linked connection returned %d", rc);
	/* -ENOENT: cut before, or unlinked keeping its life (disconnect_kills) */
	if (rc == 0)
		mark_dead(c);
}

static int disconnect_sig(int sig, void *sp)
{
	switch (sig) {
	case SIG_PING:
		return relay_disconnect_signal((fobj *)sp, ping);
	case SIG_VAL:
		return relay_disconnect_signal((fobj *)sp, val);
	case SIG_BIG:
		return relay_disconnect_signal((fobj *)sp, big);
	case SIG_MID:
		return relay_disconnect_signal((fobj *)sp, mid);
	case SIG_ECHO:
		return relay_disconnect_signal((fobj *)sp, echo);
	case SIG_DESTROYED:
		return relay_disconnect_signal((relay_object *)sp, destroyed);
	case SIG_TIMEOUT:
		return relay_disconnect_signal((relay_timer *)sp, timeout);
	case SIG_STARTED:
		return relay_disconnect_signal((relay_thread *)sp, started);
	default:
		return relay_disconnect_signal((relay_thread *)sp, finished);
	}
}

static void op_disconnect_signal(const struct op *op)
{
	int s = pick(op->a, p_any);
	if (s < 0)
		SKIP("no sender");
	int sig = sig_pick(ents[s].kind, op->b);
	if (sig == SIG_DESTROYED && !is_fobj(s))
		sig = sig_pick(ents[s].kind, 0);   /* the table's own connection stays */
	note("T%d DISCONNECT_SIGNAL %s.%s", actor(), who(s), sig_names[sig]);
	int rc = done(disconnect_sig(sig, ents[s].ptr));
	EXPECT(rc == 0, "relay_disconnect_signal returned %d", rc);
	mark_dead_where(s, sig, -1);
}

static void op_disconnect_receiver(const struct op *op)
{
	int r = pick(op->a, p_any);
	if (r < 0)
		SKIP("no object");
	note("T%d DISCONNECT_RECEIVER %s", actor(), who(r));
	bool was_destroyed = destroyed_caller(r);
	unsigned long d0 = tls.diags;
	int rc = done(relay_disconnect_receiver(obj_of(r)));
	if (was_destroyed) {   /* calls on a destroyed object are refused */
		EXPECT(rc == RELAY_EDESTROYED, "relay_disconnect_receiver on a destroyed object "
		       "returned %d", rc);
		expect_diag(d0, rc);
		return;
	}
	EXPECT(rc == 0 || (rc == RELAY_EDESTROYED && !stable(r)),
	       "relay_disconnect_receiver returned %d", rc);
	mark_dead_where(-1, -1, r);
	if (cut_complete(r))
		mark_cut(&ents[r]);
}

/* ---- affinity and ownership ---- */

static bool p_shot(int i)
{
	return ents[i].shot;
}

static void op_move(const struct op *op)
{
	int i = pick(op->a, p_any), tgt = op->b % 4;   /* main, 1, 2, none */
	if (i < 0)
		SKIP("no object");
	if (is_handle(i) && tgt != ents[i].wslot)
		SKIP("thread handles stay in the main thread");
	if (!is_handle(i) && subtree_has(i, is_handle))
		SKIP("thread handles stay in the main thread");
	if (FUZZ_AVOID_SINGLE_SHOT_MOVE && subtree_has(i, p_shot))
		SKIP("FUZZ_AVOID_SINGLE_SHOT_MOVE");
	if (FUZZ_AVOID_MOVE_DESTROYED && ents[i].caller && !stable(i))
		SKIP("FUZZ_AVOID_MOVE_DESTROYED");   /* destroyed, or maybe before the call */
	relay_thread *th = tgt == 3 ? NULL : home_handle(tgt);
	if (tgt != 3 && !th)
		SKIP("no such thread");
	note("T%d MOVE %s to T%d", actor(), who(i), tgt == 3 ? -1 : tgt);
	bool was_destroyed = destroyed_caller(i), was_stable = stable(i);
	unsigned long d0 = tls.diags;
	int rc = done(relay_object_move_to_thread(obj_of(i), th));
	int home = ents[i].home, want = 0;
	/* An object whose thread's handle was destroyed has no thread: any
	 * thread may move it. */
	if (home != H_NONE && home != H_GONE && home != actor())
		want = RELAY_EWRONGTHREAD;
	else if (ents[i].parent >= 0)
		want = RELAY_EHASPARENT;
	else if (ents[i].kind == K_MAINONLY && tgt != H_MAIN)
		want = RELAY_EMAINONLY;
	else if (is_handle(i))
		want = -EINVAL;
	if (was_destroyed)
		EXPECT(rc < 0, "move_to_thread of a destroyed object returned %d, not an error", rc);
	else if (was_stable)
		EXPECT(rc == want, "move_to_thread returned %d, expected %d", rc, want);
	if (rc < 0 && rc == want)
		expect_diag(d0, rc);
	if (rc == 0 && alive(i))
		set_subtree_home(i, tgt == 3 ? H_NONE : tgt);
}

static void op_set_parent(const struct op *op)
{
	int i = pick(op->a, p_any), p = op->b % 4 == 0 ? -1 : pick(op->b / 4, p_any);
	if (i < 0 || is_handle(i))
		SKIP("no object (handles keep their parent)");
	note("T%d SET_PARENT %s parent=%s", actor(), who(i), who(p));
	bool was_destroyed = destroyed_caller(i);
	bool was_stable = stable(i) && (p < 0 || stable(p) || destroyed_caller(p));
	unsigned long d0 = tls.diags;
	int rc = done(relay_object_set_parent(obj_of(i), p >= 0 ? obj_of(p) : NULL));
	int want = 0;
	if (ents[i].home != actor() || !alive(i))
		want = RELAY_EWRONGTHREAD;
	else if (p >= 0 && destroyed_caller(p))
		want = RELAY_EDESTROYED;   /* a destroyed parent is refused as such */
	else if (p >= 0 && !(alive(p) && ents[p].home == ents[i].home))
		want = RELAY_EPARENTTHREAD;
	else if (p >= 0 && in_subtree(p, i))
		want = -EINVAL;
	if (was_destroyed)
		CHECK(rc < 0, "set_parent of a destroyed object returned %d", rc);
	else if (was_stable)
		CHECK(rc == want, "set_parent returned %d, expected %d", rc, want);
	if (rc < 0 && rc == want && want != -EINVAL)
		expect_diag(d0, rc);
	if (rc == 0)
		ents[i].parent = p;
}

static void do_delete_later(int i)
{
	note("T%d DELETE_LATER %s", actor(), who(i));
	int rc = done(relay_object_delete_later(obj_of(i)));
	EXPECT(rc == 0, "relay_object_delete_later returned %d", rc);
	if (alive(i))
		ents[i].pending = true;
}

static void op_delete_later(const struct op *op)
{
	int i = pick(op->a, p_any);
	if (i < 0)
		SKIP("no object");
	do_delete_later(i);
}

static bool p_running_handle(int i)
{
	return is_handle(i) && (wt[ents[i].wslot].belief == T_RUN ||
				wt[ents[i].wslot].belief == T_QUIT);
}

static void op_destroy(const struct op *op)
{
	int i = pick(op->a, p_any);
	if (i < 0)
		SKIP("no object");
	bool as_thread = is_handle(i) && (op->b & 1);
	note("T%d DESTROY %s%s", actor(), who(i), as_thread ? " (relay_thread_destroy)" : "");
	bool was_stable = stable(i), running = subtree_has(i, p_running_handle);
	int home = ents[i].home;
	unsigned long d0 = tls.diags;
	int rc = done(as_thread ? relay_thread_destroy(ents[i].ptr)
				: relay_object_destroy(obj_of(i)));
	CHECK(rc <= 0, "destroy returned %d", rc);
	if (!was_stable)
		return;
	if (home != H_NONE && home != H_GONE && home != actor()) {   /* gone: no thread */
		EXPECT(rc == RELAY_EWRONGTHREAD, "destroy from the wrong thread returned %d (O2)", rc);
		expect_diag(d0, rc);
	} else if (running) {
		EXPECT(rc == RELAY_ERUNNING || rc == 0, "destroy of a running thread returned %d", rc);
		if (rc < 0)
			expect_diag(d0, rc);
	} else {
		EXPECT(rc == 0, "destroy in the owner thread returned %d", rc);
	}
	if (rc == 0)
		CHECK(!alive(i), "destroy returned 0 and %s was not finalized", who(i));
}

/* ---- timers ---- */

static void op_timer(const struct op *op)
{
	int i = pick(op->a, p_timer), sub = op->b % 6, ms = op->c % 7 - 1;
	if (i < 0)
		SKIP("no timer");
	relay_timer *t = ents[i].ptr;
	if (ms == 0 && !ents[i].single)
		ms = 1;   /* see op_new_timer */
	static const char *const names[] = { "start", "stop", "set_interval", "set_single_shot",
					      "query", "start(-1)" };
	note("T%d TIMER %s %s ms=%d", actor(), who(i), names[sub], ms);
	unsigned long d0 = tls.diags;
	int rc;
	switch (sub) {
	case 0:
		rc = relay_timer_start(t, ms);
		break;
	case 1:
		rc = relay_timer_stop(t);
		break;
	case 2:
		rc = relay_timer_set_interval(t, ms);
		break;
	case 3:
		rc = relay_timer_set_single_shot(t, op->c & 1);
		break;
	case 4:
		(void)relay_timer_is_active(t);
		rc = relay_timer_interval(t);
		done(rc < 0 ? rc : 0);
		CHECK(rc >= 0, "relay_timer_interval of a live timer returned %d", rc);
		return;
	default:
		rc = relay_timer_start(t, -1);
		break;
	}
	done(rc);
	int want = 0;
	if (sub == 2 && ms < 0)
		want = -EINVAL;
	else if (ents[i].home != actor())
		want = RELAY_ETIMERTHREAD;
	EXPECT(rc == want, "timer call returned %d, expected %d", rc, want);
	if (want == RELAY_ETIMERTHREAD)
		expect_diag(d0, rc);
	if (sub == 3 && rc == 0)
		ents[i].single = op->c & 1;
	if (sub == 3 && rc == 0 && !ents[i].single && relay_timer_interval(t) == 0)
		CHECK(relay_timer_set_interval(t, 1) == 0, "relay_timer_set_interval");
}

static void op_single_shot(const struct op *op)
{
	int r = pick(op->a, p_obj), ms = op->b % 6;
	if (r < 0)
		SKIP("no receiver");
	note("T%d SINGLE_SHOT %d ms -> %s", actor(), ms, who(r));
	ents[r].shot = true;
	bool was_destroyed = destroyed_caller(r), was_stable = stable(r);
	tls.posting++;
	int rc = relay_single_shot(ms, (fobj *)ents[r].ptr, ss_slot);
	tls.posting--;
	done(rc);
	int home = ents[r].home;
	if (was_destroyed)
		EXPECT(rc < 0, "single shot for a destroyed receiver returned %d", rc);
	else if (was_stable)
		EXPECT(rc == (home == H_NONE || home == H_GONE ? RELAY_ENOTRUNNING : 0),
		      "relay_single_shot returned %d", rc);
}

/* ---- invoke ---- */

static void op_invoke(const struct op *op)
{
	int ctx = pick(op->a, p_any);
	if (ctx < 0)
		SKIP("no context");
	struct inv *d = malloc(sizeof *d);
	CHECK(d, "out of memory");
	*d = (struct inv){ INV_MAGIC, atomic_load(&cur_gen), ctx, 0 };
	atomic_fetch_add(&inv_made, 1);
	note("T%d INVOKE in %s", actor(), who(ctx));
	bool was_destroyed = destroyed_caller(ctx), was_stable = stable(ctx);
	tls.posting++;
	int rc = relay_invoke(obj_of(ctx), inv_fn, d, inv_free);
	tls.posting--;
	done(rc);
	int home = ents[ctx].home;
	if (was_destroyed)
		EXPECT(rc == RELAY_EDESTROYED, "invoke in a destroyed context returned %d", rc);
	else if (was_stable)
		EXPECT(rc == (home == H_NONE || home == H_GONE ? RELAY_ENOTRUNNING : 0),
		      "relay_invoke returned %d", rc);
	if (rc < 0)
		inv_release(d);   /* refused: the data stays the caller's */
}

static void op_invoke_blocking(const struct op *op)
{
	int ctx = pick(op->a, p_any);
	if (ctx < 0)
		SKIP("no context");
	int home = ents[ctx].home;
	if (home == H_MAIN && actor() != H_MAIN)
		SKIP("would wait for the main thread, which waits for this one");
	/* On the heap, so that a call run after we gave up is a reported use
	 * after free rather than a silent write to a dead stack frame. */
	struct inv *d = malloc(sizeof *d);
	CHECK(d, "out of memory");
	*d = (struct inv){ INV_MAGIC, atomic_load(&cur_gen), ctx, op->b };
	note("T%d INVOKE_BLOCKING in %s", actor(), who(ctx));
	bool was_destroyed = destroyed_caller(ctx), was_stable = stable(ctx);
	unsigned long d0 = tls.diags;
	int result = -1;
	int rc = done(relay_invoke_blocking(obj_of(ctx), inv_blocking_fn, d, &result));
	d->magic = 0;
	free(d);
	if (was_destroyed) {
		EXPECT(rc == RELAY_EDESTROYED, "invoke_blocking in a destroyed context returned %d", rc);
	} else if (was_stable) {
		int want = 1;   /* several outcomes possible */
		if (home == actor())
			want = RELAY_EDEADLOCK;
		else if (!maybe_serving(home))
			want = RELAY_ENOTRUNNING;
		if (want != 1) {
			EXPECT(rc == want, "relay_invoke_blocking returned %d, expected %d (D8)", rc, want);
			expect_diag(d0, rc);
		} else {
			EXPECT(rc == 0 || rc == RELAY_ENOTRUNNING || rc == RELAY_ENOTDELIVERED,
			      "relay_invoke_blocking returned %d", rc);
		}
	}
	if (rc == 0)
		CHECK(result == op->b, "relay_invoke_blocking: result %d, the function returned %d",
		      result, op->b);
}

/* ---- threads ---- */

static int track(int i);

static void make_thread(int k, int parent, bool start)
{
	int i = new_entry(K_THREAD, false, H_MAIN, parent);
	if (i < 0 || n_agents >= MAX_AGENTS)
		SKIP("table full");
	note("T0 THREAD_CREATE slot %d parent=%s -> #%d", k, who(parent), i);
	relay_thread *h = NULL;
	unsigned long d0 = tls.diags;
	int rc = done(relay_thread_create(k == 1 ? "fz1" : "fz2", parent >= 0 ? obj_of(parent) : NULL,
					  &h));
	int want = parent >= 0 && destroyed_caller(parent) ? RELAY_EDESTROYED
		   : parent >= 0 && !(alive(parent) && ents[parent].home == H_MAIN)
			   ? RELAY_EPARENTTHREAD : 0;
	EXPECT(rc == want, "relay_thread_create returned %d, expected %d", rc, want);
	if (rc < 0) {
		expect_diag(d0, rc);
		n_ents--;
		return;
	}
	ents[i].ptr = h;
	ents[i].wslot = k;
	atomic_store(&ents[i].state, S_ALIVE);
	CHECK(track(i) == 0, "connecting the handle's destroyed signal");
	struct agent *a = &agents[n_agents++];
	memset(a, 0, sizeof *a);
	a->gen = atomic_load(&cur_gen);
	a->slot = k;
	CHECK(relay_object_init(&a->base, &agent_class, NULL) == 0, "agent init");
	CHECK(relay_object_move_to_thread(&a->base, h) == 0, "agent move");
	wt[k] = (struct wthread){ i, a, T_NEW, false, 0 };
	if (start) {
		CHECK(relay_thread_start(h) == 0, "relay_thread_start of a new thread");
		wt[k].emitter = run_emitter(k);
		wt[k].belief = T_RUN;
	}
}

/* The handle went (destroyed by an operation, its parent, or a deferred
 * deletion): what lived in that thread now lives in a thread that is gone. */
static void thread_gone(int k)
{
	note("   thread slot %d: handle destroyed", k);
	for (int i = 0; i < n_ents; i++)
		if (alive(i) && ents[i].home == k)
			ents[i].home = H_GONE;
	struct agent *a = wt[k].agent;
	if (a) {
		int rc = relay_object_delete_later(&a->base);
		CHECK(rc == 0, "delete_later of the agent of a gone thread returned %d", rc);
		CHECK(atomic_load(&a->finalized) == 1,
		      "delete_later of an object whose thread is gone did not destroy it (T4)");
	}
	wt[k] = (struct wthread){ -1, NULL, T_NEW, false, 0 };
}

static void op_thread(const struct op *op)
{
	int k = 1 + (op->a & 1), sub = op->b % 9;
	if (wt[k].ent < 0) {
		if (actor() != H_MAIN)
			SKIP("threads are created by the main thread");
		int parent = op->c % 3 == 0 ? pick(op->c / 3, p_any) : -1;
		if (parent >= 0 && ents[parent].home != H_MAIN && !destroyed_caller(parent) &&
		    !stable(parent))
			parent = -1;
		make_thread(k, parent, op->d & 1);
		return;
	}
	relay_thread *h = handle_of(k);
	struct wthread *w = &wt[k];
	static const char *const names[] = { "start", "quit", "exit", "stop", "wait", "destroy",
					      "interrupt", "query", "start" };
	note("T%d THREAD %s slot %d (%s) arg=%d", actor(), names[sub], k, belief_names[w->belief],
	     op->c);
	unsigned long d0 = tls.diags;
	int rc;
	switch (sub) {
	case 0:
	case 8:
		rc = done(relay_thread_start(h));
		if (actor() != H_MAIN) {
			EXPECT(rc == RELAY_EWRONGTHREAD, "relay_thread_start from a thread that does not "
			      "own the handle returned %d", rc);
			expect_diag(d0, rc);
		} else if (w->belief == T_NEW || w->belief == T_STOPPED) {
			EXPECT(rc == 0, "relay_thread_start of a stopped thread returned %d", rc);
		} else {
			EXPECT(rc == 0 || rc == RELAY_ERUNNING, "relay_thread_start returned %d", rc);
		}
		if (rc == 0) {
			w->belief = w->quit_kept ? T_QUIT : T_RUN;
			w->quit_kept = false;
			w->emitter = run_emitter(k);
		}
		break;
	case 1:
	case 2:
		rc = done(sub == 1 ? relay_thread_quit(h) : relay_thread_exit(h, op->c % 4));
		CHECK(rc == 0, "relay_thread_quit/exit returned %d", rc);
		if (w->belief == T_RUN)
			w->belief = T_QUIT;
		if (w->belief == T_NEW)
			w->quit_kept = true;
		break;
	case 3: {
		static const int ms[] = { 0, 10, 1000 };
		int timeout = ms[op->c % 3];
		if (w->belief == T_NEW)
			w->quit_kept = true;
		rc = done(relay_thread_stop(h, timeout));
		if (actor() == k) {
			CHECK(rc == RELAY_EWAITSELF, "relay_thread_stop of the calling thread "
			      "returned %d", rc);
			expect_diag(d0, rc);
		} else {
			CHECK(rc == 0 || rc == -ETIMEDOUT, "relay_thread_stop returned %d", rc);
			CHECK(rc == 0 || timeout < 1000, "thread %d did not stop within 1 s", k);
		}
		if (rc == 0 && w->belief != T_NEW)
			w->belief = T_STOPPED;
		else if (w->belief == T_RUN)
			w->belief = T_QUIT;
		break;
	}
	case 4: {
		static const int ms[] = { 0, 5, 50 };
		bool main_handle = op->c & 0x80;
		relay_thread *target = main_handle ? relay_thread_main() : h;
		rc = done(relay_thread_wait(target, ms[op->c % 3]));
		bool self = main_handle ? actor() == H_MAIN : actor() == k;
		if (self) {
			CHECK(rc == RELAY_EWAITSELF, "relay_thread_wait on itself returned %d", rc);
			expect_diag(d0, rc);
		} else {
			CHECK(rc == 0 || rc == -ETIMEDOUT, "relay_thread_wait returned %d", rc);
			CHECK(!main_handle || rc == -ETIMEDOUT, "wait on the main thread returned %d", rc);
		}
		if (rc == 0 && !main_handle && w->belief != T_NEW)
			w->belief = T_STOPPED;
		break;
	}
	case 5: {
		/* The tree is refused whole if it holds a running thread's handle. */
		bool running = subtree_has(w->ent, p_running_handle);
		rc = done(relay_thread_destroy(h));
		if (actor() != H_MAIN) {
			CHECK(rc == RELAY_EWRONGTHREAD, "relay_thread_destroy from the wrong thread "
			      "returned %d", rc);
			expect_diag(d0, rc);
		} else if (running) {
			CHECK(rc == 0 || rc == RELAY_ERUNNING, "relay_thread_destroy returned %d", rc);
			if (rc < 0)
				expect_diag(d0, rc);
		} else {
			CHECK(rc == 0, "relay_thread_destroy of a stopped thread returned %d (T3)", rc);
		}
		break;
	}
	case 6:
		rc = done(relay_thread_request_interruption(h));
		CHECK(rc == 0, "relay_thread_request_interruption returned %d", rc);
		CHECK(relay_thread_interruption_requested(h), "interruption requested but not seen");
		if (actor() == k)
			CHECK(relay_interruption_requested(), "interruption of this thread not seen");
		break;
	default: {
		bool running = relay_thread_is_running(h), finished = relay_thread_is_finished(h);
		char name[16];
		relay_loop_stats st;
		done(0);
		CHECK(relay_thread_name(h, name, sizeof name) == 0, "relay_thread_name");
		CHECK(relay_thread_stats(h, &st) == 0, "relay_thread_stats");
		if (w->belief == T_STOPPED)
			CHECK(!running && finished, "a stopped thread reads running=%d finished=%d",
			      running, finished);
		if (w->belief == T_NEW)
			CHECK(!running && !finished, "a new thread reads running=%d finished=%d",
			      running, finished);
		break;
	}
	}
}

/* ---- loops ---- */

/* Run by a relay thread's nested loop: ends that loop (the innermost). */
static _Thread_local int nested_exit_code;

static void exit_nested(void *data)
{
	(void)data;
	CHECK(relay_loop_exit(nested_exit_code) == 0, "relay_loop_exit in a nested loop");
}

static void op_loop(const struct op *op)
{
	int sub = op->b % 6;
	static const char *const names[] = { "run_once(0)", "process_events", "run_once(ms)",
					      "quit+run", "release_caches", "main_quit" };
	note("T%d LOOP %s", actor(), names[sub]);
	int rc, code;
	switch (sub) {
	case 0:
		rc = relay_loop_run_once(0);
		break;
	case 1:
		rc = relay_process_events();
		break;
	case 2:
		rc = relay_loop_run_once(op->c % 3);
		break;
	case 3:
		/* A loop quit belongs to the innermost running loop (Qt's
		 * QEventLoop::exit). With none running (the main thread between
		 * operations), one asked for before the run is kept: the loop
		 * returns at once. In a relay thread the operation runs inside a
		 * slot of its loop, so the nested run is quit from inside it (an
		 * invoke it delivers); a quit of the thread, if pending, ends it
		 * too. */
		code = op->c & 1 ? op->c % 4 : 0;
		if (actor() == H_MAIN || actor() == H_FOREIGN) {   /* between operations */
			CHECK((op->c & 1 ? relay_loop_exit(code) : relay_loop_quit()) == 0,
			      "relay_loop_exit");
		} else {
			nested_exit_code = code;
			rc = relay_invoke(&wt[actor()].agent->base, exit_nested, NULL, NULL);
			/* Out of memory (an injected failure): no nested run to end. */
			CHECK(rc == 0 || rc == -ENOMEM, "relay_invoke of a nested loop's exit: %d", rc);
			if (rc < 0) {
				rc = 0;
				break;
			}
		}
		rc = relay_loop_run();
		EXPECT(rc == code || (actor() == 1 || actor() == 2) && rc == 0,
		       "relay_loop_run returned %d, the exit code was %d", rc, code);
		rc = 0;
		break;
	case 4:
		rc = relay_release_caches();
		break;
	default:
		rc = relay_main_quit();
		break;
	}
	done(rc > 0 ? 0 : rc);   /* passes return how much they handled */
	CHECK(rc >= 0, "loop call returned %d", rc);
	if (actor() != H_MAIN && sub == 3)
		for (int k = 1; k <= 2; k++)
			if (k == actor() && wt[k].belief == T_QUIT)
				wt[k].belief = T_RUN;   /* its quit was consumed by the nested run */
}

static void op_main_run(const struct op *op)
{
	(void)op;
	note("T%d MAIN_RUN", actor());
	unsigned long d0 = tls.diags;
	if (actor() != H_MAIN) {
		int rc = done(relay_main_run(100));
		CHECK(rc == RELAY_EWRONGTHREAD, "relay_main_run from a relay thread returned %d", rc);
		expect_diag(d0, rc);
		return;
	}
	int code = op->b & 1 ? op->c % 4 : 0;
	CHECK((op->b & 1 ? relay_main_exit(code) : relay_main_quit()) == 0, "relay_main_exit");
	int rc = relay_main_run(1000);
	done(rc < 0 ? rc : 0);   /* the exit code, >= 0 */
	EXPECT(rc == code, "relay_main_run returned %d, the exit code was %d", rc, code);
	for (int k = 1; k <= 2; k++) {
		relay_thread *h = handle_of(k);
		if (!h || wt[k].belief == T_NEW)
			continue;
		CHECK(!relay_thread_is_running(h), "relay_main_run returned while thread %d runs (T5)",
		      k);
		wt[k].belief = T_STOPPED;
	}
}

/* ---- odds and ends ---- */

static void op_block(const struct op *op)
{
	int i = pick(op->a, p_any);
	if (i < 0)
		SKIP("no object");
	bool on = op->b & 1, was = !on;
	note("T%d BLOCK %s %s", actor(), who(i), on ? "on" : "off");
	int rc = done(relay_object_block_signals(obj_of(i), on, &was));
	CHECK(rc == 0, "relay_object_block_signals returned %d", rc);
	if (alive(i))
		CHECK(was == atomic_load(&ents[i].blocked), "block_signals: previous state %d, "
		      "the fuzzer set %d", was, atomic_load(&ents[i].blocked));
	atomic_store(&ents[i].blocked, on);
}

static void op_weak(const struct op *op)
{
	int i = pick(op->a, p_any), sub = op->b % 3;
	if (i < 0)
		SKIP("no object");
	relay_weak *w = &ents[i].weak;
	note("T%d WEAK %s %s", actor(), who(i), sub == 0 ? "set" : sub == 1 ? "get" : "clear");
	if (sub == 0) {
		bool was_destroyed = destroyed_caller(i), was_stable = stable(i);
		int rc = done(relay_weak_set(w, obj_of(i)));
		if (was_destroyed)
			EXPECT(rc == RELAY_EDESTROYED, "relay_weak_set on a destroyed object returned %d",
			      rc);
		else if (was_stable)
			EXPECT(rc == 0, "relay_weak_set returned %d", rc);
	} else if (sub == 1) {
		relay_object *o = relay_weak_get(w);
		done(0);
		if (w->relay__b && stable(i))
			CHECK(o == obj_of(i), "weak reference to a live object reads %p", (void *)o);
		if (w->relay__b && !alive(i))
			CHECK(o == NULL, "weak reference to a destroyed object is not NULL");
	} else {
		relay_weak_clear(w);
		done(0);
	}
}

static void op_query(const struct op *op)
{
	int i = pick(op->a, p_any);
	if (i < 0)
		SKIP("no object");
	relay_object *o = obj_of(i);
	note("T%d QUERY %s", actor(), who(i));
	char buf[96];
	CHECK(done(relay_object_name(o, buf, sizeof buf)) == 0, "relay_object_name");
	int home = ents[i].home, p = ents[i].parent;
	if (stable(i) && home == actor())
		CHECK(relay_object_parent(o) == (p >= 0 ? obj_of(p) : NULL),
		      "relay_object_parent disagrees with the fuzzer's table");
	if (stable(i) && home != H_GONE)
		CHECK(relay_object_thread(o) == home_handle(home),
		      "relay_object_thread disagrees with the fuzzer's table (home %d)", home);
	if ((op->b & 1) && !(FUZZ_AVOID_NAME_DESTROYED && ents[i].caller && !stable(i))) {
		snprintf(buf, sizeof buf, "q%d", op->c);
		note("T%d SET_NAME %s", actor(), who(i));
		int rc = done(relay_object_set_name(o, buf));
		if (alive(i))
			EXPECT(rc == 0, "relay_object_set_name returned %d", rc);
	}
}

static void op_sleep(const struct op *op)
{
	struct timespec ts = { 0, (long)(op->b % 4) * 1000000L };
	note("T%d SLEEP %d ms", actor(), op->b % 4);
	nanosleep(&ts, NULL);
}

/* No function aborts or hangs on NULL. */
static void op_nulls(const struct op *op)
{
	(void)op;
	note("T%d NULLS", actor());
	relay_timer *t = (relay_timer *)1;
	CHECK(relay_object_destroy(NULL) == -EINVAL, "destroy(NULL)");
	CHECK(relay_object_delete_later(NULL) == -EINVAL, "delete_later(NULL)");
	CHECK(relay_object_move_to_thread(NULL, NULL) == -EINVAL, "move(NULL)");
	CHECK(relay_object_set_parent(NULL, NULL) == -EINVAL, "set_parent(NULL)");
	CHECK(relay_object_init(NULL, &obj_class, NULL) == -EINVAL, "init(NULL)");
	CHECK(relay_object_new(&t, NULL, NULL) == -EINVAL, "new(NULL class)");
	CHECK(relay_object_alloc(1, &obj_class, NULL, &t) == -EINVAL, "new(too small)");
	CHECK(relay_thread_start(NULL) == -EINVAL, "thread_start(NULL)");
	CHECK(relay_thread_quit(NULL) == -EINVAL, "thread_quit(NULL)");
	CHECK(relay_thread_wait(NULL, 0) == -EINVAL, "thread_wait(NULL)");
	CHECK(relay_thread_stop(NULL, 0) == -EINVAL, "thread_stop(NULL)");
	CHECK(relay_thread_destroy(NULL) == -EINVAL, "thread_destroy(NULL)");
	CHECK(relay_thread_create("x", NULL, NULL) == -EINVAL, "thread_create(NULL out)");
	CHECK(!relay_thread_is_running(NULL) && !relay_thread_is_finished(NULL), "thread queries");
	CHECK(relay_timer_create(NULL, NULL) == -EINVAL, "timer_create(NULL out)");
	CHECK(relay_timer_start(NULL, 0) == -EINVAL, "timer_start(NULL)");
	CHECK(relay_timer_stop(NULL) == -EINVAL, "timer_stop(NULL)");
	CHECK(relay_timer_interval(NULL) == -EINVAL, "timer_interval(NULL)");
	CHECK(relay_invoke(NULL, inv_fn, NULL, NULL) == -EINVAL, "invoke(NULL)");
	CHECK(relay_invoke_blocking(NULL, inv_blocking_fn, NULL, NULL) == -EINVAL,
	      "invoke_blocking(NULL)");
	CHECK(relay_single_shot(0, (fobj *)NULL, ss_slot) == -EINVAL, "single_shot(NULL)");
	CHECK(relay_disconnect(0) == -ENOENT, "disconnect(0)");
	CHECK(relay_disconnect_receiver(NULL) == -EINVAL, "disconnect_receiver(NULL)");
	CHECK(relay_object_thread(NULL) == NULL && relay_object_parent(NULL) == NULL, "queries");
	CHECK(relay_weak_get(NULL) == NULL, "weak_get(NULL)");
	CHECK(relay_weak_set(NULL, NULL) == -EINVAL, "weak_set(NULL)");
	CHECK(relay_object_name(NULL, NULL, 0) == -EINVAL, "object_name(NULL)");
	CHECK(relay_object_set_name(NULL, "x") == -EINVAL, "set_name(NULL)");
	CHECK(relay_object_block_signals(NULL, true, NULL) == -EINVAL, "block_signals(NULL)");
	CHECK(relay_strerror(op->b - 2000) != NULL && relay_strerror(RELAY_EDESTROYED) != NULL,
	      "relay_strerror");
	done(0);
}

/* ---- bursts: the three threads at once ---- */

/* During a burst the table is only read (and atomics written): each
 * thread emits on stable or caller-owned senders and may disconnect one
 * connection; the main thread may delete a caller-owned object meanwhile;
 * an object may bounce between the relay threads (moved by its owner each
 * time, O1, maybe through "no thread"); the main thread runs its loop. */
struct burst {
	uint8_t seed, count;
	bool disconnect;
	int victim;              /* deleted by the main thread's part, or -1 */
	bool stopper;            /* the main thread stops thread 1 while thread 2 posts to it */
	bool restart;            /* ... and starts it again */
	struct conn *connect[3]; /* a connection each part makes, or NULL */
	atomic_bool part_done[3];
	atomic_int parts_done;
};

struct burst_job {
	struct burst *b;
	int slot;
};

struct bounce {
	fobj *x;
	relay_thread *th[3];
	struct agent *ag[3];
	bool via_none;           /* each move: to no thread, then pulled in by the other */
	int left;                /* moves still to make */
	atomic_int state;        /* 0 bouncing, 1 done */
};

/* A blocking connection of s.sig to the main thread. */
static bool blocks_main(int s, int sig)
{
	for (int i = 0; i < n_conns; i++)
		if (conns[i].sender == s && conns[i].sig == sig && conns[i].type == RELAY_BLOCKING &&
		    !atomic_load(&conns[i].dead) && conns[i].recv >= 0 &&
		    ents[conns[i].recv].home == H_MAIN)
			return true;
	return false;
}

static bool has_blocking(int s, int sig)
{
	for (int i = 0; i < n_conns; i++)
		if (conns[i].sender == s && conns[i].sig == sig && conns[i].type == RELAY_BLOCKING &&
		    !atomic_load(&conns[i].dead))
			return true;
	return false;
}

static bool p_stable_obj(int i)
{
	return is_fobj(i) && stable(i);
}

/* Emitting on a caller-owned object being destroyed is allowed. */
static bool p_burst_sender(int i)
{
	return is_fobj(i) && (stable(i) || ents[i].caller);
}

static bool has_children(int i)
{
	for (int j = 0; j < n_ents; j++)
		if (alive(j) && ents[j].parent == i)
			return true;
	return false;
}

/* A direct call reaches i from another thread: it may not vanish then. */
static bool called_directly(int i)
{
	for (int c = 0; c < n_conns; c++)
		if (conns[c].recv == i && conns[c].type == RELAY_DIRECT && !atomic_load(&conns[c].dead))
			return true;
	return false;
}

static bool p_victim(int i)
{
	return is_fobj(i) && ents[i].caller && stable(i) && !has_children(i) && !called_directly(i);
}

/* The connection was chosen before the burst (the table does not change
 * during it); the part only makes it. */
static void burst_connect(struct conn *c)
{
	relay_connection id = 0;
	int rc = connect_slot0(c->sig, ents[c->sender].ptr, ents[c->recv].ptr, c->type, c->flags, &id);
	CHECK(rc == 0 || rc == RELAY_EDESTROYED, "connect in a burst returned %d", rc);
	if (rc == 0) {
		atomic_store(&c->id, id);
		atomic_store(&c->dead, false);
	}
}

/* The stopper's blocking calls: only thread 2 makes them, and no other
 * thread waits for thread 2, so no cycle of waiting threads can form. */
static void burst_blocking_invoke(uint8_t x)
{
	int ctx = pick(x, p_stable_obj);
	if (ctx < 0 || ents[ctx].home == H_MAIN)
		return;   /* the main thread may be waiting for thread 1 */
	struct inv *d = malloc(sizeof *d);
	CHECK(d, "out of memory");
	*d = (struct inv){ INV_MAGIC, atomic_load(&cur_gen), ctx, x };
	int result = -1;
	int rc = relay_invoke_blocking(obj_of(ctx), inv_blocking_fn, d, &result);
	/* EDESTROYED: the burst's victim, being destroyed meanwhile */
	CHECK(rc == 0 || rc == RELAY_EDEADLOCK || rc == RELAY_ENOTRUNNING ||
	      rc == RELAY_ENOTDELIVERED || rc == RELAY_EDESTROYED,
	      "relay_invoke_blocking in a burst returned %d", rc);
	CHECK(rc != 0 || result == x, "relay_invoke_blocking: wrong result %d", result);
	d->magic = 0;
	free(d);
}

static void burst_part(struct burst *b)
{
	bool was = tls.in_op;
	tls.in_op = false;   /* slots must not change the table now */
	bool blocker = b->stopper && actor() == 2;
	if (b->connect[actor()])
		burst_connect(b->connect[actor()]);
	for (int n = 0; n < b->count; n++) {
		uint8_t x = (uint8_t)(b->seed * 7 + 37 * n + 101 * actor());
		int s = pick(x, p_burst_sender), sig = x % 4 == 3 ? SIG_MID : x % 4;
		if (s < 0)
			break;
		/* Two threads blocked on each other would be a deadlock relay
		 * does not detect (yet): blocking calls only from the stopper's
		 * thread 2, never into the main thread (it may wait for thread 1). */
		if (!emit_would_hang(s, sig) && (!has_blocking(s, sig) || (blocker && !blocks_main(s, sig))))
			do_emit(s, sig, sig == SIG_VAL ? seq_value() : x, false);
		if (blocker && (x & 3) == 0)
			burst_blocking_invoke(x);
		if (b->disconnect && n == b->count / 2 && n_conns > 0) {
			struct conn *c = &conns[(x >> 2) % n_conns];
			int rc = relay_disconnect(atomic_load(&c->id));
			CHECK(rc == 0 || rc == -ENOENT, "relay_disconnect in a burst: %d", rc);
			if (rc == 0)
				mark_dead(c);
		}
		if (b->victim >= 0 && actor() == H_MAIN && n == b->count / 2) {
			int rc = relay_object_delete_later(obj_of(b->victim));
			CHECK(rc == 0, "relay_object_delete_later in a burst: %d", rc);
			ents[b->victim].pending = true;
		}
	}
	tls.in_op = was;
	atomic_store(&b->part_done[actor()], true);
	atomic_fetch_add(&b->parts_done, 1);
}

/* The stopper: once thread 1 has done its part, stop it (and maybe start
 * it again) while thread 2 still posts and makes blocking calls into it. */
static void burst_stop(struct burst *b)
{
	int64_t deadline = now_ms() + 3000;
	while (!atomic_load(&b->part_done[1])) {
		CHECK(now_ms() < deadline, "thread 1's part of a burst did not run within 3 s");
		relay_loop_run_once(1);
	}
	relay_thread *h = handle_of(1);
	int rc = relay_thread_stop(h, 1000);
	CHECK(rc == 0, "relay_thread_stop in a burst returned %d: thread 1 did not stop", rc);
	if (b->restart) {
		rc = relay_thread_start(h);
		CHECK(rc == 0, "relay_thread_start of a stopped thread returned %d", rc);
		wt[1].emitter = run_emitter(1);   /* the main thread waits: no race */
	}
}

static void burst_fn(void *data)
{
	struct burst_job *j = data;
	tls.actor = j->slot;
	burst_part(j->b);
	tls.actor = -1;
}

static void bounce_step(void *data);

/* The other relay thread takes an object that has no thread (a pull is
 * allowed then) and goes on bouncing it. */
static void bounce_pull(void *data)
{
	struct bounce *b = data;
	int rc = relay_object_move_to_thread(&b->x->base, relay_thread_current());
	CHECK(rc == 0, "move_to_thread of an object with no thread returned %d (O1)", rc);
	rc = relay_invoke(&b->x->base, bounce_step, b, NULL);
	CHECK(rc == 0, "relay_invoke into a running thread returned %d", rc);
}

static void bounce_step(void *data)
{
	struct bounce *b = data;
	check_home(&b->x->base, "a bounce step (relay_invoke)");
	if (b->left == 0) {
		atomic_store(&b->state, 1);
		return;
	}
	b->left--;
	int there = relay_thread_current() == b->th[1] ? 2 : 1;
	int rc;
	if (b->via_none) {
		rc = relay_object_move_to_thread(&b->x->base, NULL);
		CHECK(rc == 0, "move_to_thread(NULL) from the owner thread returned %d", rc);
		rc = relay_invoke(&b->ag[there]->base, bounce_pull, b, NULL);
	} else {
		rc = relay_object_move_to_thread(&b->x->base, b->th[there]);
		CHECK(rc == 0, "move_to_thread from the owner thread in a bounce returned %d", rc);
		rc = relay_invoke(&b->x->base, bounce_step, b, NULL);
	}
	CHECK(rc == 0, "relay_invoke into a running thread returned %d", rc);
}

static bool p_unbounceable(int i)
{
	return is_handle(i) || !stable(i) || (FUZZ_AVOID_SINGLE_SHOT_MOVE && ents[i].shot);
}

/* A tree of stable objects (timers move with it) in a relay thread. */
static bool p_bouncer(int i)
{
	return p_stable_obj(i) && (ents[i].home == 1 || ents[i].home == 2) && ents[i].parent < 0 &&
	       ents[i].kind == K_OBJ && !subtree_has(i, p_unbounceable);
}

/* A connection for a part to make: AUTO or QUEUED (no blocking ones in
 * bursts) between stable objects; the record is ready, dead until made. */
static struct conn *burst_conn(uint8_t a, uint8_t c)
{
	int s = pick(a, p_stable_obj), r = pick(c, p_stable_obj);
	if (s < 0 || r < 0)
		return NULL;
	int sig = sig_pick(ents[s].kind, a >> 3);
	struct conn *k = new_conn(C_SLOT, s, sig, r, c & 1 ? RELAY_QUEUED : RELAY_AUTO,
				  (c & 2) ? RELAY_SINGLE_SHOT : 0u, PK_NONE, 0);
	if (!k)
		return NULL;
	atomic_store(&k->dead, true);   /* until connected: scans skip it */
	atomic_store(&ents[r].cut, false);
	return k;
}

static bool running_for_burst(int k)
{
	return wt[k].ent >= 0 && wt[k].agent && wt[k].belief == T_RUN && quit_sources == 0;
}

static void op_burst(const struct op *op)
{
	if (actor() != H_MAIN)
		SKIP("bursts start from the main thread");
	struct burst b = { .seed = op->a, .count = (uint8_t)(1 + op->b % 16),
			   .disconnect = op->d & 1, .victim = -1 };
	struct burst_job jobs[3];
	struct bounce bo = { 0 };
	int parts = 1, x = -1;
	/* First: what is stable is chosen knowing the main thread will loop. */
	atomic_store(&bursting, true);
	bool both = running_for_burst(1) && running_for_burst(2);
	if ((op->d & 2) && both && (x = pick(op->c, p_bouncer)) >= 0) {
		bo.x = ents[x].ptr;
		for (int k = 1; k <= 2; k++) {
			bo.th[k] = handle_of(k);
			bo.ag[k] = wt[k].agent;
		}
		bo.via_none = op->d & 16;
		bo.left = 2 + 2 * ((op->d >> 2) & 3);   /* even: it ends where it started */
	}
	if (op->d & 32) {
		b.victim = pick(op->c / 2, p_victim);
		if (b.victim >= 0 && x >= 0 && in_subtree(b.victim, x))
			b.victim = -1;
	}
	/* Stopping thread 1 would strand a bouncing object's next step. */
	b.stopper = (op->d & 64) && both && x < 0;
	b.restart = b.stopper && (op->d & 128);
	for (int k = 0; k <= 2 && (op->a & 1); k++)
		b.connect[k] = burst_conn(op->a + 13 * k, op->c + 7 * k);
	note("T0 BURST seed=%d count=%d disconnect=%d bounce=%s%s victim=%s%s%s", b.seed, b.count,
	     b.disconnect, who(x), bo.via_none ? " (via none)" : "", who(b.victim),
	     b.stopper ? " stopper" : "", b.restart ? "+restart" : "");
	for (int k = 1; k <= 2; k++) {
		if (!running_for_burst(k))
			continue;
		jobs[k] = (struct burst_job){ &b, k };
		int rc = relay_invoke(&wt[k].agent->base, burst_fn, &jobs[k], NULL);
		CHECK(rc == 0, "relay_invoke into a running thread's agent returned %d", rc);
		parts++;
	}
	if (x >= 0) {
		int rc = relay_invoke(&bo.x->base, bounce_step, &bo, NULL);
		CHECK(rc == 0, "relay_invoke into a running thread returned %d", rc);
	}
	burst_part(&b);
	bool was = tls.in_op;
	tls.in_op = false;
	if (b.stopper)
		burst_stop(&b);
	int64_t deadline = now_ms() + 3000;
	while (atomic_load(&b.parts_done) < parts || (x >= 0 && !atomic_load(&bo.state))) {
		CHECK(now_ms() < deadline, "a burst did not finish within 3 s (%d of %d parts, "
		      "bounce %d): a lost wake-up or a lost event", atomic_load(&b.parts_done), parts,
		      x >= 0 ? atomic_load(&bo.state) : -1);
		relay_loop_run_once(1);
	}
	atomic_store(&bursting, false);
	tls.in_op = was;
	if (b.stopper)
		wt[1].belief = b.restart ? T_RUN : T_STOPPED;
	done(0);
}

/* ---- foreign threads: made with pthread_create, adopted by relay ---- */

static void exec_op(const struct op *op);

struct foreign_run {
	const struct op *ops;
	size_t n;
};

static void *foreign_main(void *arg)
{
	const struct foreign_run *f = arg;
	tls.actor = H_FOREIGN;
	note("T3 FOREIGN thread runs %zu operations", f->n);
	relay_thread *self = relay_thread_current();
	CHECK(self && !relay_is_main_thread() && self != relay_thread_main(),
	      "a foreign thread was not adopted (T3)");
	foreign_handle = self;
	unsigned long d0 = tls.diags;
	int rc = done(relay_thread_destroy(self));
	CHECK(rc == -EINVAL, "relay_thread_destroy of an adopted thread's handle returned %d", rc);
	expect_diag(d0, rc);
	for (size_t i = 0; i < f->n; i++)
		if (f->ops[i].code != OP_FOREIGN)
			exec_op(&f->ops[i]);
	note("T3 FOREIGN thread exits");
	foreign_handle = NULL;
	return NULL;   /* relay's key destructor ends the adopted thread */
}

/* Runs ops in a new foreign thread while the main thread waits; its
 * objects then live in a thread that is gone. */
static void run_foreign(const struct op *ops, size_t n)
{
	if (n_foreign >= MAX_FOREIGN)
		return;
	struct foreign_run f = { ops, n };
	foreign_emitter = new_emitter();
	pthread_t t;
	CHECK(pthread_create(&t, NULL, foreign_main, &f) == 0, "pthread_create");
	CHECK(pthread_join(t, NULL) == 0, "pthread_join");
	n_foreign++;
	for (int i = 0; i < n_ents; i++)
		if (alive(i) && ents[i].home == H_FOREIGN)
			ents[i].home = H_GONE;
}

static void op_foreign(const struct op *op)
{
	(void)op;   /* run by LLVMFuzzerTestOneInput: it owns the following operations */
}

static void connect_echo_self(fobj *self)
{
	int i = self->idx, type = (atomic_load(&ents[i].calls) & 1) ? RELAY_QUEUED : RELAY_AUTO;
	struct conn *c = new_conn(C_SLOT, i, SIG_ECHO, i, type, 0, PK_VAL, 0);
	if (!c)
		return;
	note("T%d (slot) CONNECT %s.echo -> itself %s conn#%d", actor(), who(i), type_names[type],
	     c->idx);
	atomic_store(&ents[i].cut, false);
	relay_connection id = 0;
	int rc = done(relay_connect_ex(self, echo, self, slotv_tab[0][type], type, 0u, &id));
	EXPECT(rc == 0 || rc == RELAY_EDESTROYED, "connect in a slot returned %d", rc);
	if (rc == 0)
		atomic_store(&c->id, id);
	else
		atomic_store(&c->dead, true);
}

/* ======================================================================
 * Running an input
 * ====================================================================== */

typedef void (*op_fn)(const struct op *);
static const op_fn op_table[OP_COUNT] = {
	op_new_obj, op_new_timer, op_connect, op_connect_func, op_connect_special, op_emit,
	op_disconnect, op_disconnect_signal, op_disconnect_receiver, op_move, op_set_parent,
	op_delete_later, op_destroy, op_timer, op_single_shot, op_invoke, op_invoke_blocking,
	op_thread, op_loop, op_main_run, op_block, op_weak, op_query, op_sleep, op_nulls,
	op_burst, op_foreign,
};

static void exec_op(const struct op *op)
{
	bool was = tls.in_op;
	tls.in_op = true;
	tls.injected = 0;
	tls.arm = op->code == OP_BURST ? 0 : op->inject;
	if (FUZZ_AVOID_MAIN_RUN_OOM && op->code == OP_MAIN_RUN)
		tls.arm = 0;
	op_table[op->code](op);
	tls.countdown = tls.arm = 0;
	tls.in_op = was;
}

/* In a relay thread, through its agent. */
static int agent_exec(void *data)
{
	const struct op *op = data;
	tls.actor = op->actor;
	exec_op(op);
	tls.actor = -1;
	return 0;
}

/* After each operation, in the main thread: what relay destroyed on its
 * own (deferred deletions, parents) is reflected, and checked. */
static void sync_table(void)
{
	for (int k = 1; k <= 2; k++)
		if (wt[k].ent >= 0 && !alive(wt[k].ent))
			thread_gone(k);
	for (int i = 0; i < n_ents; i++) {
		if (atomic_load(&ents[i].state) == S_DYING && gone(i))
			atomic_store(&ents[i].state, S_DESTROYED);
	}
	for (int i = 0; i < n_ents; i++) {
		/* The parent first: once it is gone its children were destroyed
		 * (before it, in the same thread), also for a parent whose
		 * destroyed signal (emitted first) marked it dying. */
		int p = ents[i].parent;
		/* A timer or handle parent reads as gone (its weak reference is
		 * NULL) from the start of its destruction, which may still be
		 * destroying its children in another thread: only a parent whose
		 * finalizer ran is known to be done with them. */
		bool done_with_children = p >= 0 && atomic_load(&ents[p].state) == S_DESTROYED &&
					  (is_fobj(p) || quiescent);
		if (p >= 0 && done_with_children && alive(i)) {
			/* A running thread's handle is orphaned, not destroyed. */
			CHECK(is_handle(i), "%s outlived its parent #%d (O2)", who(i), p);
			ents[i].parent = -1;
		}
		if (atomic_load(&ents[i].state) == S_DESTROYED && ents[i].weak.relay__b)
			CHECK(relay_weak_get(&ents[i].weak) == NULL,
			      "weak reference to destroyed %s is not NULL", who(i));
	}
}

static void run_op(const struct op *op)
{
	if (op->actor == H_MAIN) {
		exec_op(op);
	} else {
		struct wthread *w = &wt[op->actor];
		if (w->ent < 0 || !w->agent) {
			note("T%d %s: no thread in slot %d", op->actor, op_names[op->code], op->actor);
		} else {
			int belief = w->belief, res = -1;
			int rc = relay_invoke_blocking(&w->agent->base, agent_exec, (void *)op, &res);
			if (rc != 0)
				note("T%d %s: not run: %d (%s), thread %s", op->actor,
				     op_names[op->code], rc, relay_strerror(rc), belief_names[belief]);
			CHECK(rc == 0 || rc == RELAY_ENOTRUNNING || rc == RELAY_ENOTDELIVERED,
			      "relay_invoke_blocking into an agent returned %d", rc);
			if (belief == T_NEW || belief == T_STOPPED)
				CHECK(rc == RELAY_ENOTRUNNING, "relay_invoke_blocking into a thread "
				      "that is not running returned %d (D8)", rc);
		}
	}
	sync_table();
}

static atomic_llong input_started_ms;   /* 0 between inputs */

enum { HDR_START1 = 1, HDR_START2 = 2, HDR_INTHREAD_TEARDOWN = 4 };

static void begin_input(uint8_t header)
{
	atomic_fetch_add(&cur_gen, 1);
	log_pos = 0;
	n_ents = n_conns = n_agents = 0;
	for (int i = 0; i < MAX_ENT; i++)
		atomic_store(&ents[i].state, S_FREE);
	atomic_store(&big_copies, 0);
	atomic_store(&big_frees, 0);
	atomic_store(&inv_made, 0);
	atomic_store(&inv_freed, 0);
	atomic_store(&slot_emits, SLOT_EMITS);
	n_foreign = 0;
	next_emitter = 1;
	for (int k = 0; k < EMITTERS; k++)
		atomic_store(&val_seq[k], 0);
	quit_sources = 0;
	quiescent = false;
	tls.actor = H_MAIN;
	note("input: header %#x", header);
	for (int k = 1; k <= 2; k++) {
		wt[k] = (struct wthread){ -1, NULL, T_NEW, false, 0 };
		make_thread(k, -1, header & (k == 1 ? HDR_START1 : HDR_START2));
	}
}

/* In a relay thread that still runs: destroy what lives there, from the
 * thread itself (nothing else can destroy it meanwhile). */
static int destroy_here(void *data)
{
	int k = *(int *)data;
	for (int i = 0; i < n_ents; i++) {
		if (!alive(i) || ents[i].home != k || (ents[i].parent >= 0 && alive(ents[i].parent)))
			continue;
		note("T%d teardown: destroy %s", k, who(i));
		int rc = done(relay_object_destroy(obj_of(i)));
		CHECK(rc == 0, "teardown: destroy in the owner thread returned %d", rc);
		CHECK(!alive(i), "teardown: destroy returned 0 and the object is alive");
	}
	return 0;
}

/* Destroys every root (objects whose parent is gone), from the main
 * thread: directly where it may (main, no thread), else delete_later,
 * which destroys at once an object whose thread has finished (T4). */
static void destroy_all(void)
{
	bool tried[MAX_ENT] = { false };
	for (;;) {
		int root = -1;
		for (int i = 0; i < n_ents && root < 0; i++)
			if (alive(i) && !is_handle(i) && !tried[i] &&
			    (ents[i].parent < 0 || !alive(ents[i].parent)))
				root = i;
		if (root < 0)
			break;
		tried[root] = true;
		int home = ents[root].home;
		bool direct = home == H_MAIN || home == H_NONE;
		note("T0 teardown: %s %s", direct ? "destroy" : "delete_later", who(root));
		int rc = done(direct ? relay_object_destroy(obj_of(root))
				     : relay_object_delete_later(obj_of(root)));
		CHECK(rc == 0, "teardown: destroying %s returned %d", who(root), rc);
		/* Alive now only if a deletion was pending in its thread's queue
		 * (the handle's destruction runs it). */
		CHECK(!alive(root) || ents[root].pending || ents[root].async_del || !direct,
		      "teardown: %s survived its destruction", who(root));
	}
	sync_table();
}

static void drain_main(void)
{
	for (int i = 0; i < 100 && relay_loop_run_once(0) > 0; i++)
		;
}

static void check_balance(void)
{
	int64_t deadline = now_ms() + 500;
	for (;;) {
		relay_release_caches();
		long live = atomic_load(&live_blocks);
		if (live <= baseline_blocks) {
			baseline_blocks = live;
			break;
		}
		/* A single shot armed for a destroyed receiver still waits in the
		 * main thread's timers: let it expire. */
		if (now_ms() >= deadline)
			trace_report();
		CHECK(now_ms() < deadline, "relay's allocator: %ld blocks still allocated after the "
		      "input was torn down (leak)", live - baseline_blocks);
		relay_loop_run_once(1);
	}
	CHECK(atomic_load(&big_copies) == atomic_load(&big_frees),
	      "payload copies %ld, frees %ld (D3: every copy is freed exactly once)",
	      atomic_load(&big_copies), atomic_load(&big_frees));
	CHECK(atomic_load(&inv_made) == atomic_load(&inv_freed),
	      "invoke data: %ld made, %ld released (freed by fn or free_data exactly once)",
	      atomic_load(&inv_made), atomic_load(&inv_freed));
}

static void teardown(uint8_t header)
{
	note("teardown");
	for (int k = 1; k <= 2 && (header & HDR_INTHREAD_TEARDOWN); k++) {
		if (wt[k].ent < 0 || !wt[k].agent || wt[k].belief != T_RUN)
			continue;
		int rc = relay_invoke_blocking(&wt[k].agent->base, destroy_here, &k, NULL);
		CHECK(rc == 0 || rc == RELAY_ENOTRUNNING || rc == RELAY_ENOTDELIVERED,
		      "teardown: invoke into thread %d returned %d", k, rc);
	}
	for (int k = 1; k <= 2; k++) {
		relay_thread *h = handle_of(k);
		if (!h)
			continue;
		note("T0 teardown: stop thread %d", k);
		int rc = done(relay_thread_stop(h, STOP_MS));
		CHECK(rc == 0, "teardown: thread %d did not stop within %d ms (hang?)", k, STOP_MS);
		wt[k].belief = T_STOPPED;
	}
	/* Nothing runs a loop now: nothing is destroyed behind our back. */
	quiescent = true;
	/* A main_quit left pending would hold back the main thread's events:
	 * one more, and a loop run that takes it (whether one was pending or
	 * not, the outermost loop takes the thread's quit and returns). */
	CHECK(relay_main_quit() == 0 && relay_loop_run() >= 0, "clearing the main quit");
	drain_main();
	sync_table();
	destroy_all();
	for (int k = 1; k <= 2; k++) {
		relay_thread *h = handle_of(k);
		if (!h)
			continue;
		note("T0 teardown: destroy thread %d", k);
		int rc = done(relay_thread_destroy(h));
		CHECK(rc == 0, "teardown: relay_thread_destroy of a stopped thread returned %d", rc);
		sync_table();
	}
	destroy_all();
	drain_main();
	sync_table();
	for (int i = 0; i < n_ents; i++) {
		if (atomic_load(&ents[i].state) == S_FREE)
			continue;
		CHECK(atomic_load(&ents[i].state) == S_DESTROYED,
		      "teardown: %s was never destroyed (T4: deferred deletion lost)", who(i));
		CHECK(atomic_load(&ents[i].finalized) == 1, "%s finalized %d times", who(i),
		      atomic_load(&ents[i].finalized));
		relay_weak_clear(&ents[i].weak);
		relay_weak_clear(&ents[i].track_weak);
	}
	for (int a = 0; a < n_agents; a++)
		CHECK(atomic_load(&agents[a].finalized) == 1, "agent %d finalized %d times", a,
		      atomic_load(&agents[a].finalized));
	check_balance();
}

/* ======================================================================
 * libFuzzer entry points and the watchdog
 * ====================================================================== */

static int watchdog_ms = WATCHDOG_MS;

static void *watchdog(void *arg)
{
	(void)arg;
	for (;;) {
		struct timespec ts = { 0, 100 * 1000000L };
		nanosleep(&ts, NULL);
		long long start = atomic_load(&input_started_ms);
		if (start && now_ms() - start > watchdog_ms) {
			fprintf(stderr, "\nrelay-fuzz: WATCHDOG: one input has run for over %d ms "
				"(a hang: a lost wake-up, a blocking call never released, or a "
				"thread that does not stop)\n", watchdog_ms);
			dump_log();
			abort();
		}
	}
	return NULL;
}

static bool env_on(const char *name)
{
	const char *v = getenv(name);
	return v && *v && *v != '0';
}

static void warm_fn(void *data)
{
	(void)data;
}

static void warm_slot(fobj *o)
{
	(void)o;
}

/* What the main thread keeps for the whole process once it has used it -
 * its record, its ring to itself, its timer heap - is made before the
 * allocator's baseline is taken: relay_release_caches frees only rings to
 * threads that are gone and spare chunks. */
static void warm_up(void)
{
	static const relay_class warm_class = { .name = "warm" };
	fobj *o = NULL;
	if (!relay_thread_current() || relay_object_new(&o, &warm_class, NULL) != 0 ||
	    relay_invoke(&o->base, warm_fn, NULL, NULL) != 0 ||
	    relay_single_shot(0, o, warm_slot) != 0)
		abort();
	for (int i = 0; i < 10; i++)
		relay_loop_run_once(1);
	if (relay_object_destroy(&o->base) != 0)
		abort();
	relay_loop_run_once(0);
	relay_release_caches();
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	trace = env_on("FUZZ_TRACE");
	verbose = env_on("FUZZ_VERBOSE");
	alloc_trace = env_on("FUZZ_ALLOC_TRACE");
	if (getenv("FUZZ_WATCHDOG_MS"))
		watchdog_ms = atoi(getenv("FUZZ_WATCHDOG_MS"));
	unsetenv("RELAY_FATAL_WARNINGS");   /* refusals are expected here */
	static const relay_allocator counting = { count_alloc, count_release, NULL };
	if (relay_set_allocator(&counting) != 0)
		abort();
	relay_set_diag_handler(on_diag, NULL);
	tls.actor = H_MAIN;
	/* The main thread's record, and its first loop pass (from then on it
	 * serves blocking calls), belong to the process, not to an input. */
	warm_up();
	baseline_blocks = atomic_load(&live_blocks);
	/* libFuzzer takes the death callback (it saves the input); ASan's
	 * report callback is ours, so reports end with the operations. */
#ifdef FUZZ_ASAN
	__asan_set_error_report_callback(asan_report);
#endif
	pthread_t wd;
	if (pthread_create(&wd, NULL, watchdog, NULL) != 0)
		abort();
	pthread_detach(wd);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	atomic_store(&input_started_ms, now_ms());
	begin_input(data[0]);
	size_t nops = (size - 1) / 6;
	if (nops > MAX_OPS)
		nops = MAX_OPS;
	struct op ops[MAX_OPS];
	for (size_t i = 0; i < nops; i++) {
		const uint8_t *p = data + 1 + 6 * i;
		/* Actor bytes 0xf0 and up also make one allocation fail. */
		ops[i] = (struct op){ (uint8_t)(p[0] % OP_COUNT), (uint8_t)(p[1] % 3), p[2], p[3],
				      p[4], p[5], (uint8_t)(p[1] >= 0xf0 ? 1 + ((p[1] >> 2) & 3) : 0) };
	}
	for (size_t i = 0; i < nops; i++) {
		if (ops[i].code == OP_FOREIGN) {
			/* The next 1 to 4 operations run in a foreign thread. */
			size_t n = 1 + ops[i].b % 4;
			if (n > nops - i - 1)
				n = nops - i - 1;
			run_foreign(&ops[i + 1], n);
			sync_table();
			i += n;
			continue;
		}
		run_op(&ops[i]);
	}
	teardown(data[0]);
	atomic_store(&input_started_ms, 0);
	return 0;
}
