/*
 * test_diag.c - errors and diagnostics (O3) and the allocator: every
 * relay error code has its own string; the diagnostic handler gets the
 * code and one line; relay_diag_count grows by one per refusal; NULL
 * restores the default handler (stderr, "relay: " prefix); a counting
 * allocator sees every allocation freed; a failure-injecting allocator
 * makes the allocating calls fail with -ENOMEM and leak nothing.
 *
 * main() installs the counting allocator before any other relay call.
 */
#include "objtest.h"

#include <fcntl.h>

/* ---------------------------------------------------------------------
 * The counting, failure-injecting allocator
 * --------------------------------------------------------------------- */

static atomic_long g_allocs, g_releases, g_failed;
static atomic_bool g_inject;     /* failures armed */
static atomic_long g_budget;     /* successes left while armed */
static int g_set_incomplete_rc = 1, g_set_rc = 1;

static void *count_alloc(size_t size, void *user)
{
	(void)user;
	if (atomic_load(&g_inject) && atomic_fetch_sub(&g_budget, 1) <= 0) {
		atomic_fetch_add(&g_failed, 1);
		return NULL;
	}
	void *p = malloc(size);
	if (p)
		atomic_fetch_add(&g_allocs, 1);
	return p;
}

static void count_release(void *p, void *user)
{
	(void)user;
	if (p) {
		atomic_fetch_add(&g_releases, 1);
		free(p);
	}
}

static const relay_allocator counting = { count_alloc, count_release, NULL };

static long outstanding(void)
{
	/* What the calling thread keeps for steady flows (spare ring chunks,
	 * its emit cache) is not a leak: give it back before counting. */
	(void)relay_release_caches();
	return atomic_load(&g_allocs) - atomic_load(&g_releases);
}

static void inject(long budget)
{
	atomic_store(&g_budget, budget);
	atomic_store(&g_inject, true);
}

static void inject_off(void)
{
	atomic_store(&g_inject, false);
}

/* ---------------------------------------------------------------------
 * relay_strerror
 * --------------------------------------------------------------------- */

static const int relay_codes[] = {
	RELAY_EWRONGTHREAD, RELAY_EHASPARENT, RELAY_EMAINONLY, RELAY_EPARENTTHREAD,
	RELAY_EDEADLOCK, RELAY_ENOTRUNNING, RELAY_EWAITSELF, RELAY_ERUNNING,
	RELAY_ENOTDELIVERED, RELAY_EDESTROYED, RELAY_ETIMERTHREAD,
};
#define NCODES (sizeof relay_codes / sizeof relay_codes[0])

static void *foreign_strerror(void *p)
{
	(void)p;
	return (void *)relay_strerror(RELAY_EWRONGTHREAD);
}

static void test_strerror_every_code_distinct(void **state)
{
	(void)state;
	const int generic[] = { -EINVAL, -ENOMEM, -ETIMEDOUT, -ENOENT, -EEXIST, -EBUSY, -EAGAIN };
	const char *all[NCODES + 7];
	size_t n = 0;
	for (size_t i = 0; i < NCODES; i++)
		all[n++] = relay_strerror(relay_codes[i]);
	for (size_t i = 0; i < 7; i++)
		all[n++] = relay_strerror(generic[i]);
	for (size_t i = 0; i < n; i++) {
		assert_non_null(all[i]);
		assert_true(strlen(all[i]) > 0);
		assert_null(strchr(all[i], '\n'));
		for (size_t k = 0; k < i; k++)
			if (strcmp(all[i], all[k]) == 0)
				fail_msg("codes #%zu and #%zu share the string \"%s\"", k, i, all[i]);
	}
	/* The same string every time, from any thread. */
	assert_string_equal(relay_strerror(RELAY_EWAITSELF), all[6]);
	pthread_t th;
	void *s = NULL;
	assert_int_equal(pthread_create(&th, NULL, foreign_strerror, NULL), 0);
	pthread_join(th, &s);
	assert_string_equal((const char *)s, all[0]);

	/* -EINVAL says what it is. */
	const char *inval = relay_strerror(-EINVAL);
	assert_non_null(strcasestr(inval, "invalid"));
	/* Unknown codes get a non-empty string distinct from the known ones. */
	const int unknown[] = { -99999, -1000, -1012, -5000, 12345, INT32_MIN };
	for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
		const char *u = relay_strerror(unknown[i]);
		assert_non_null(u);
		assert_true(strlen(u) > 0);
		for (size_t k = 0; k < NCODES; k++)
			assert_string_not_equal(u, all[k]);
		assert_string_not_equal(u, inval);
	}
	assert_non_null(relay_strerror(0));
}

/* ---------------------------------------------------------------------
 * The diagnostic handler
 * --------------------------------------------------------------------- */

static int g_user_marker;
static _Atomic(void *) g_seen_user;
static atomic_int g_seen_other_thread;
static pthread_t g_main_pthread;

static void diag_cb_user(int code, const char *line, void *user)
{
	atomic_store(&g_seen_user, user);
	if (!pthread_equal(pthread_self(), g_main_pthread))
		atomic_fetch_add(&g_seen_other_thread, 1);
	diag_cb(code, line, NULL);
}

typedef struct misuse {
	obj *victim;
	int n;
	int wrong;   /* refusals that did not return EWRONGTHREAD */
} misuse;

static void *foreign_misuse(void *p)
{
	misuse *m = p;
	for (int i = 0; i < m->n; i++)
		if (relay_object_destroy(&m->victim->base) != RELAY_EWRONGTHREAD)
			m->wrong++;
	return NULL;
}

static void test_O3_diag_handler_gets_code_and_one_line(void **state)
{
	(void)state;
	g_main_pthread = pthread_self();
	atomic_store(&g_seen_user, NULL);
	atomic_store(&g_seen_other_thread, 0);
	assert_int_equal(relay_set_diag_handler(diag_cb_user, &g_user_marker), 0);

	obj *p = new_obj(NULL, 1);
	obj *c = new_obj(&p->base, 2);
	assert_int_equal(relay_object_set_name(&c->base, "diag-child"), 0);
	unsigned long before = relay_diag_count();
	assert_int_equal(relay_object_move_to_thread(&c->base, NULL), RELAY_EHASPARENT);
	expect_one_diag(RELAY_EHASPARENT, "diag-child");
	assert_ptr_equal(atomic_load(&g_seen_user), &g_user_marker);
	assert_int_equal(relay_diag_count(), before + 1);

	/* Concurrent refusals from several threads: one report each. */
	assert_int_equal(relay_object_set_name(&p->base, "diag-parent"), 0);
	enum { THREADS = 4, EACH = 50 };
	misuse ms[THREADS];
	pthread_t th[THREADS];
	before = relay_diag_count();
	for (int i = 0; i < THREADS; i++) {
		ms[i] = (misuse){ .victim = p, .n = EACH };
		assert_int_equal(pthread_create(&th[i], NULL, foreign_misuse, &ms[i]), 0);
	}
	for (int i = 0; i < THREADS; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(ms[i].wrong, 0);
	}
	assert_int_equal(diag_count(), THREADS * EACH);
	assert_int_equal(relay_diag_count(), before + THREADS * EACH);
	assert_int_equal(g_diag.with_newline, 0);
	assert_int_equal(g_diag.last_code, RELAY_EWRONGTHREAD);
	assert_non_null(strstr(g_diag.last_line, "diag-parent"));
	assert_int_equal(atomic_load(&g_seen_other_thread), THREADS * EACH);
	diag_reset();

	/* The object survived all of it. */
	assert_ptr_equal(relay_object_parent(&c->base), &p->base);
	assert_int_equal(relay_object_destroy(&p->base), 0);
	assert_int_equal(atomic_load(&g_fin_count), 2);
	assert_int_equal(diag_count(), 0);
}

static void test_O3_diag_count_grows_per_refusal(void **state)
{
	(void)state;
	obj *p = new_obj(NULL, 1);
	obj *c = new_obj(&p->base, 2);
	unsigned long before = relay_diag_count();
	for (int i = 1; i <= 3; i++) {
		assert_int_equal(relay_object_move_to_thread(&c->base, NULL), RELAY_EHASPARENT);
		assert_int_equal(relay_diag_count(), before + (unsigned long)i);
	}
	/* Plain bad arguments and successes are not diagnostics. */
	assert_int_equal(relay_object_set_parent(&c->base, &c->base), -EINVAL);
	assert_int_equal(relay_object_set_parent(&c->base, NULL), 0);
	assert_int_equal(relay_diag_count(), before + 3 + (unsigned long)(diag_count() - 3));
	assert_int_equal(diag_count(), 3);
	assert_int_equal(relay_object_destroy(&c->base), 0);
	assert_int_equal(relay_object_destroy(&p->base), 0);
	diag_reset();
}

/* Runs fn with fd 2 redirected to a temporary file; returns what was
 * written (malloc'd). */
static char *capture_stderr(void (*fn)(void *), void *arg)
{
	fflush(stderr);
	char path[] = "/tmp/relay-diag-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	unlink(path);
	int saved = dup(2);
	assert_true(saved >= 0);
	assert_true(dup2(fd, 2) >= 0);
	fn(arg);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	off_t len = lseek(fd, 0, SEEK_END);
	char *buf = calloc(1, (size_t)len + 1);
	assert_non_null(buf);
	assert_true(pread(fd, buf, (size_t)len, 0) == (ssize_t)len);
	close(fd);
	return buf;
}

static void misuse_once(void *arg)
{
	obj *c = arg;
	relay_object_move_to_thread(&c->base, NULL);
}

static void test_O3_default_handler_restored_with_null(void **state)
{
	(void)state;
	obj *p = new_obj(NULL, 1);
	obj *c = new_obj(&p->base, 2);
	assert_int_equal(relay_object_set_name(&c->base, "stderr-child"), 0);

	/* Our handler: nothing on stderr. */
	char *out = capture_stderr(misuse_once, c);
	assert_int_equal(diag_count(), 1);
	assert_string_equal(out, "");
	free(out);
	diag_reset();

	/* NULL restores the default: one "relay: " line on stderr. */
	assert_int_equal(relay_set_diag_handler(NULL, NULL), 0);
	unsigned long before = relay_diag_count();
	out = capture_stderr(misuse_once, c);
	assert_int_equal(diag_count(), 0);
	assert_int_equal(relay_diag_count(), before + 1);
	if (strncmp(out, "relay: ", 7) != 0 || strstr(out, "stderr-child") == NULL)
		fail_msg("default handler wrote \"%s\"", out);
	char *nl = strchr(out, '\n');
	assert_non_null(nl);
	assert_int_equal(nl[1], '\0');   /* exactly one line */
	free(out);

	assert_int_equal(relay_set_diag_handler(diag_cb, NULL), 0);
	assert_int_equal(relay_object_destroy(&p->base), 0);
}

/* ---------------------------------------------------------------------
 * The allocator: balance
 * --------------------------------------------------------------------- */

static void test_allocator_installed_before_first_use(void **state)
{
	(void)state;
	assert_int_equal(g_set_incomplete_rc, -EINVAL);
	assert_int_equal(g_set_rc, 0);
	/* relay allocates through it. */
	long a0 = atomic_load(&g_allocs);
	obj *o = new_obj(NULL, 1);
	assert_true(atomic_load(&g_allocs) > a0);
	long r0 = atomic_load(&g_releases);
	assert_int_equal(relay_object_destroy(&o->base), 0);
	assert_true(atomic_load(&g_releases) > r0);
}

static void *foreign_adopt(void *p)
{
	(void)p;
	obj *o = NULL;
	if (relay_object_new(&o, &obj_class, NULL) != 0)
		return (void *)1;
	relay_loop_run_once(0);
	relay_object_destroy(&o->base);
	return NULL;
}

static int job_nothing(void *p)
{
	(void)p;
	return 1;
}

/* The main thread keeps some state it makes on first use (its record,
 * the array of its timer heap, its ring to itself for queued calls):
 * make it before taking a baseline. */
static void warm_up_main(void)
{
	(void)relay_thread_current();
	obj *o = new_obj(NULL, 99);
	assert_int_equal(relay_single_shot(0, o, on_ping), 0);
	RUN_UNTIL(atomic_load(&o->hits) == 1);
	assert_int_equal(relay_connect_ex(o, sig, o, on_sig, RELAY_QUEUED, 0u, NULL), 0);
	int v = 1;
	assert_int_equal(relay_emit(o, sig, &v), 0);
	RUN_UNTIL(atomic_load(&o->hits) == 2);
	assert_int_equal(relay_object_destroy(&o->base), 0);
	drain();
	assert_int_equal(relay_release_caches(), 0);
}

static void test_allocator_every_allocation_freed(void **state)
{
	(void)state;
	warm_up_main();
	long out0 = outstanding();
	long a0 = atomic_load(&g_allocs);

	/* Objects, names, weak references, connections, queued emits. */
	obj *p = new_obj(NULL, 1);
	obj *c = new_obj(&p->base, 2);
	obj *r = new_obj(NULL, 3);
	assert_int_equal(relay_object_set_name(&c->base, "balance"), 0);
	relay_weak wk = { 0 };
	assert_int_equal(relay_weak_set(&wk, &c->base), 0);
	assert_int_equal(relay_connect(p, sig, r, on_sig), 0);
	assert_int_equal(relay_connect_ex(c, sig, r, on_sig, RELAY_QUEUED, 0u, NULL), 0);
	for (int i = 0; i < 10; i++) {
		assert_int_equal(relay_emit(p, sig, &i), 0);
		assert_int_equal(relay_emit(c, sig, &i), 0);
	}
	drain();
	assert_int_equal(atomic_load(&r->hits), 20);

	/* Timers and single shots. */
	relay_timer *tm = NULL;
	assert_int_equal(relay_timer_create(&p->base, &tm), 0);
	assert_int_equal(relay_connect(tm, timeout, r, on_ping), 0);
	assert_int_equal(relay_timer_start(tm, 0), 0);
	assert_int_equal(relay_single_shot(0, r, on_ping), 0);
	RUN_UNTIL(atomic_load(&r->hits) >= 25);

	/* A thread, with an object, invokes and delete_later. */
	relay_thread *t = start_thread("balance");
	obj *w = worker_obj(t, 4);
	assert_int_equal(relay_connect(r, sig, w, on_sig), 0);
	int v = 5;
	assert_int_equal(relay_emit(r, sig, &v), 0);
	assert_int_equal(run_in(w, job_nothing, NULL), 1);
	WAIT_UNTIL(atomic_load(&w->hits) == 1);
	assert_int_equal(relay_object_delete_later(&w->base), 0);
	stop_thread(t);

	/* An adopted pthread. */
	pthread_t th;
	void *ret = (void *)1;
	assert_int_equal(pthread_create(&th, NULL, foreign_adopt, NULL), 0);
	pthread_join(th, &ret);
	assert_null(ret);

	assert_int_equal(relay_object_destroy(&p->base), 0);
	assert_null(relay_weak_get(&wk));
	relay_weak_clear(&wk);
	assert_int_equal(relay_object_destroy(&r->base), 0);
	drain();
	/* What the main thread keeps for speed goes back on request. */
	assert_int_equal(relay_release_caches(), 0);

	assert_true(atomic_load(&g_allocs) > a0);
	if (outstanding() != out0)
		fail_msg("%ld allocations not freed (before: %ld outstanding, after: %ld)",
			 outstanding() - out0, out0, outstanding());
}

/* A single shot whose receiver is destroyed first is skipped; what it
 * holds is released by the time its deadline has passed. */
static void test_allocator_skipped_single_shot_released(void **state)
{
	(void)state;
	warm_up_main();
	long out0 = outstanding();
	obj *r = new_obj(NULL, 1);
	assert_int_equal(relay_single_shot(5, r, on_ping), 0);
	assert_int_equal(relay_object_destroy(&r->base), 0);
	RUN_UNTIL(outstanding() == out0);
}

/* ---------------------------------------------------------------------
 * The allocator: failure injection
 *
 * For each allocating operation, allow k successful allocations and fail
 * the next, for k = 0, 1, 2, ... until the operation succeeds: every
 * failure must be -ENOMEM (or the documented alternative) and leave the
 * allocation count where it was once cleaned up.
 * --------------------------------------------------------------------- */

typedef struct op {
	const char *name;
	void (*prepare)(void *ctx);
	int (*run)(void *ctx);
	void (*check_failed)(void *ctx, int rc);
	void (*cleanup)(void *ctx, bool ok);
} op;

static void sweep(const op *o, void *ctx)
{
	drain();
	for (long k = 0; k < 200; k++) {
		long out0 = outstanding();
		if (o->prepare)
			o->prepare(ctx);
		inject(k);
		int rc = o->run(ctx);
		inject_off();
		if (rc != 0 && o->check_failed)
			o->check_failed(ctx, rc);
		else if (rc != 0 && rc != -ENOMEM)
			fail_msg("%s with %ld allocations allowed: %d (%s), expected -ENOMEM",
				 o->name, k, rc, relay_strerror(rc));
		o->cleanup(ctx, rc == 0);
		drain();
		if (outstanding() != out0)
			fail_msg("%s with %ld allocations allowed (rc %d): %ld allocations leaked",
				 o->name, k, rc, outstanding() - out0);
		if (rc == 0)
			return;
	}
	fail_msg("%s never succeeded", o->name);
}

typedef struct ctx {
	obj *o, *parent, *r;
	relay_thread *t;
	relay_timer *tm;
	relay_weak wk;
	relay_connection c;
	atomic_int cnt;
	atomic_int freed;
	relay_loop_stats s0;
} ctx;

/* relay_object_new, as a child, then named */
static int run_object_new(void *p)
{
	ctx *x = p;
	x->o = NULL;
	int rc = relay_object_new(&x->o, &obj_class, &x->parent->base);
	if (rc == 0 && x->o == NULL)
		return -12345;
	if (rc != 0 && x->o != NULL)
		return -12346;
	return rc;
}
static void prep_parent(void *p)
{
	ctx *x = p;
	x->parent = new_obj(NULL, 1);
}
static void clean_parent(void *p, bool ok)
{
	ctx *x = p;
	(void)ok;
	assert_int_equal(relay_object_destroy(&x->parent->base), 0);
}

static int run_set_name(void *p)
{
	ctx *x = p;
	return relay_object_set_name(&x->parent->base, "named-under-pressure");
}

static int run_weak_set(void *p)
{
	ctx *x = p;
	int rc = relay_weak_set(&x->wk, &x->parent->base);
	return rc;
}
static void clean_weak(void *p, bool ok)
{
	ctx *x = p;
	if (ok)
		assert_ptr_equal(relay_weak_get(&x->wk), &x->parent->base);
	relay_weak_clear(&x->wk);
	clean_parent(p, ok);
}

static int run_thread_create(void *p)
{
	ctx *x = p;
	x->t = NULL;
	return relay_thread_create("inject", NULL, &x->t);
}
static void clean_thread_create(void *p, bool ok)
{
	ctx *x = p;
	if (ok)
		assert_int_equal(relay_thread_destroy(x->t), 0);
	else
		assert_null(x->t);
}

static void prep_thread(void *p)
{
	ctx *x = p;
	x->t = NULL;
	assert_int_equal(relay_thread_create("inject-start", NULL, &x->t), 0);
}
static int run_thread_start(void *p)
{
	ctx *x = p;
	return relay_thread_start(x->t);
}
static void failed_thread_start(void *p, int rc)
{
	ctx *x = p;
	if (rc != -ENOMEM && rc != -EAGAIN)
		fail_msg("relay_thread_start under allocation failure: %d (%s)", rc,
			 relay_strerror(rc));
	assert_false(relay_thread_is_running(x->t));
}
static void clean_thread(void *p, bool ok)
{
	ctx *x = p;
	(void)ok;
	assert_int_equal(relay_thread_stop(x->t, SAFETY_MS), 0);
	assert_int_equal(relay_thread_destroy(x->t), 0);
}

static int run_timer_create(void *p)
{
	ctx *x = p;
	x->tm = NULL;
	return relay_timer_create(&x->parent->base, &x->tm);
}

static void prep_pair(void *p)
{
	ctx *x = p;
	x->o = new_obj(NULL, 1);
	x->r = new_obj(NULL, 2);
	x->c = 0;
}
static void clean_pair(void *p, bool ok)
{
	ctx *x = p;
	(void)ok;
	assert_int_equal(relay_object_destroy(&x->o->base), 0);
	assert_int_equal(relay_object_destroy(&x->r->base), 0);
}
static int run_connect(void *p)
{
	ctx *x = p;
	int rc = relay_connect_ex(x->o, sig, x->r, on_sig, RELAY_QUEUED, 0u, &x->c);
	if (rc != 0 && x->c != 0)
		return -12347;
	return rc;
}
static void clean_connect(void *p, bool ok)
{
	ctx *x = p;
	if (ok) {
		int v = 1;
		assert_int_equal(relay_emit(x->o, sig, &v), 0);
		drain();
		assert_int_equal(atomic_load(&x->r->hits), 1);
	}
	clean_pair(p, ok);
}

static void prep_connected(void *p)
{
	ctx *x = p;
	prep_pair(p);
	assert_int_equal(relay_connect_ex(x->o, sig, x->r, on_sig, RELAY_QUEUED, 0u, NULL), 0);
	/* settle lazily made per-thread state outside the measured window */
	assert_int_equal(relay_thread_stats(relay_thread_main(), &x->s0), 0);
}
static int run_emit(void *p)
{
	ctx *x = p;
	int v = 42;
	return relay_emit(x->o, sig, &v);
}
static void clean_emit(void *p, bool ok)
{
	ctx *x = p;
	drain();
	relay_loop_stats s1;
	assert_int_equal(relay_thread_stats(relay_thread_main(), &s1), 0);
	if (ok) {
		assert_int_equal(atomic_load(&x->r->hits), 1);
		assert_int_equal(x->r->values[0], 42);
	} else {
		/* skipped and counted as dropped */
		assert_int_equal(atomic_load(&x->r->hits), 0);
		assert_int_equal(s1.dropped - x->s0.dropped, 1);
	}
	clean_pair(p, ok);
}

static void inc_cb(void *p)
{
	atomic_fetch_add(&((ctx *)p)->cnt, 1);
}
static void free_cb(void *p)
{
	atomic_fetch_add(&((ctx *)p)->freed, 1);
}
static int run_invoke(void *p)
{
	ctx *x = p;
	atomic_store(&x->cnt, 0);
	atomic_store(&x->freed, 0);
	return relay_invoke(&x->parent->base, inc_cb, x, free_cb);
}
static void clean_invoke(void *p, bool ok)
{
	ctx *x = p;
	drain();
	/* Ran once when accepted; never when refused. */
	assert_int_equal(atomic_load(&x->cnt), ok ? 1 : 0);
	if (ok)
		assert_int_equal(atomic_load(&x->freed), 0);
	clean_parent(p, ok);
}

static int run_delete_later(void *p)
{
	ctx *x = p;
	return relay_object_delete_later(&x->parent->base);
}
static void clean_delete_later(void *p, bool ok)
{
	ctx *x = p;
	drain();
	if (ok) {
		/* it is gone: a new parent for the next round is made by prepare */
		return;
	}
	/* refused: still alive, and a later request works */
	int before = atomic_load(&g_fin_count);
	assert_int_equal(relay_object_delete_later(&x->parent->base), 0);
	drain();
	assert_int_equal(atomic_load(&g_fin_count), before + 1);
}

static int run_single_shot(void *p)
{
	ctx *x = p;
	atomic_store(&x->parent->hits, 0);
	return relay_single_shot(0, x->parent, on_ping);
}
static void clean_single_shot(void *p, bool ok)
{
	ctx *x = p;
	if (ok)
		RUN_UNTIL(atomic_load(&x->parent->hits) == 1);
	drain();
	assert_int_equal(atomic_load(&x->parent->hits), ok ? 1 : 0);
	clean_parent(p, ok);
}

static void test_allocator_failure_injection(void **state)
{
	(void)state;
	ctx x;
	memset(&x, 0, sizeof x);
	const op ops[] = {
		{ "relay_object_new", prep_parent, run_object_new, NULL, clean_parent },
		{ "relay_object_set_name", prep_parent, run_set_name, NULL, clean_parent },
		{ "relay_weak_set", prep_parent, run_weak_set, NULL, clean_weak },
		{ "relay_thread_create", NULL, run_thread_create, NULL, clean_thread_create },
		{ "relay_thread_start", prep_thread, run_thread_start, failed_thread_start, clean_thread },
		{ "relay_timer_create", prep_parent, run_timer_create, NULL, clean_parent },
		{ "relay_connect", prep_pair, run_connect, NULL, clean_connect },
		{ "relay_emit (queued)", prep_connected, run_emit, NULL, clean_emit },
		{ "relay_invoke", prep_parent, run_invoke, NULL, clean_invoke },
		{ "relay_object_delete_later", prep_parent, run_delete_later, NULL, clean_delete_later },
		{ "relay_single_shot", prep_parent, run_single_shot, NULL, clean_single_shot },
	};
	for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++)
		sweep(&ops[i], &x);
	assert_true(atomic_load(&g_failed) > 0);
}

typedef struct starved {
	relay_thread *cur;
	int rc;
	obj *o;
} starved;

static void *foreign_starved(void *p)
{
	starved *s = p;
	s->cur = relay_thread_current();
	s->o = (obj *)(void *)0x1;
	s->rc = relay_object_new(&s->o, &obj_class, NULL);
	return NULL;
}

/* A pthread that cannot even be adopted: NULL handle, -ENOMEM, no leak. */
static void test_allocator_failure_adopting_foreign_thread(void **state)
{
	(void)state;
	drain();
	long out0 = outstanding();
	starved s = { 0 };
	pthread_t th;
	inject(0);
	int prc = pthread_create(&th, NULL, foreign_starved, &s);
	if (prc == 0)
		pthread_join(th, NULL);
	inject_off();
	assert_int_equal(prc, 0);
	assert_null(s.cur);
	assert_int_equal(s.rc, -ENOMEM);
	assert_true(s.o == NULL || s.o == (obj *)(void *)0x1);
	assert_int_equal(outstanding(), out0);

	/* A later pthread is adopted normally. */
	void *ret = (void *)1;
	assert_int_equal(pthread_create(&th, NULL, foreign_adopt, NULL), 0);
	pthread_join(th, &ret);
	assert_null(ret);
	assert_int_equal(outstanding(), out0);
}

int main(void)
{
	/* Before any other relay call. */
	relay_allocator incomplete = { count_alloc, NULL, NULL };
	g_set_incomplete_rc = relay_set_allocator(&incomplete);
	g_set_rc = relay_set_allocator(&counting);

	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_allocator_installed_before_first_use, setup, teardown),
		cmocka_unit_test_setup_teardown(test_strerror_every_code_distinct, setup, teardown),
		cmocka_unit_test_setup_teardown(test_O3_diag_handler_gets_code_and_one_line, setup, teardown),
		cmocka_unit_test_setup_teardown(test_O3_diag_count_grows_per_refusal, setup, teardown),
		cmocka_unit_test_setup_teardown(test_O3_default_handler_restored_with_null, setup, teardown),
		cmocka_unit_test_setup_teardown(test_allocator_every_allocation_freed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_allocator_skipped_single_shot_released, setup, teardown),
		cmocka_unit_test_setup_teardown(test_allocator_failure_injection, setup, teardown),
		cmocka_unit_test_setup_teardown(test_allocator_failure_adopting_foreign_thread, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
