/*
 * test_pool.c - pools and tasks that report back (P1-P11, docs/design.md).
 *
 * Every wait here has a safety-net timeout; nothing asserts on time. A
 * task that must still be running when the test acts waits on a flag the
 * test sets (gate), so the order is forced, not hoped for.
 */
#include "support.h"

#include <unistd.h>

/* ---- a context object, living where it is created ---- */

typedef struct tctx {
	relay_object base;
	atomic_long progress_calls, finished_calls;
	atomic_long last_progress;      /* value of the last progress call */
	atomic_int status;
	atomic_int result;              /* -1: none */
	atomic_long finished_at_progress;   /* progress calls when finished ran */
	_Atomic(relay_thread *) thread; /* where finished ran */
	atomic_long seq;                /* order of calls: progress, finished */
} tctx;
static const relay_class tctx_class = { .name = "tctx", .size = sizeof(tctx) };

static tctx *tctx_new(void)
{
	tctx *c = NULL;
	assert_int_equal(relay_object_new(&c, &tctx_class, NULL), 0);
	atomic_store(&c->result, -1);
	atomic_store(&c->status, 12345);
	return c;
}

/* ---- task data ---- */

typedef struct tjob {
	int mode;                 /* what run does */
	long n;                   /* progress steps, spins */
	int ret;                  /* run's return value */
	atomic_int *gate;         /* run waits until *gate != 0 (if set) */
	atomic_int started, running;
	atomic_long *freed;       /* free_data calls */
	atomic_long *ran;         /* run calls */
	int invoke_rc;            /* blocking call's return value (mode BLOCK) */
	relay_object *target;     /* blocking call target */
	int order;                /* priority test: its label */
	int *log;                 /* priority test: run order */
	atomic_int *log_n;
	relay_task *self;         /* for the refusal tests */
	relay_pool *pool;
	int refusals[3];
} tjob;

enum { RUN_PLAIN, RUN_PROGRESS, RUN_UNTIL_CANCEL, RUN_BLOCK, RUN_REFUSE, RUN_LOG, RUN_IGNORE };

static void wait_gate(tjob *j)
{
	if (!j->gate)
		return;
	int64_t end = support_now_ms() + SUPPORT_TIMEOUT_MS;
	while (!atomic_load(j->gate) && support_now_ms() < end)
		support_sleep_ms(1);
}

static int answer(void *data)
{
	(void)data;
	return 42;
}

static int tjob_run(relay_task *task, tjob *j)
{
	atomic_store(&j->started, 1);
	atomic_store(&j->running, 1);
	if (j->ran)
		atomic_fetch_add(j->ran, 1);
	int ret = j->ret;
	switch (j->mode) {
	case RUN_PROGRESS:
		for (long i = 1; i <= j->n; i++)
			WCHECK(relay_task_progress(task, &i) == 0);
		break;
	case RUN_UNTIL_CANCEL: {
		int64_t end = support_now_ms() + SUPPORT_TIMEOUT_MS;
		while (!relay_task_cancelled(task) && support_now_ms() < end)
			;
		support_sleep_ms(2);   /* still running after it saw the flag */
		break;
	}
	case RUN_BLOCK: {
		int r = 0;
		j->invoke_rc = relay_invoke_blocking(j->target, answer, NULL, &r);
		break;
	}
	case RUN_REFUSE:
		j->refusals[0] = relay_task_wait(task, 0, NULL);
		j->refusals[1] = relay_pool_wait_for_done(j->pool, 0);
		j->refusals[2] = relay_task_cancel_and_wait(task, 0);
		break;
	case RUN_LOG:
		j->log[atomic_fetch_add(j->log_n, 1)] = j->order;
		break;
	case RUN_IGNORE:
		break;
	default:
		break;
	}
	wait_gate(j);
	int result = 7;
	if (j->mode == RUN_PLAIN)
		WCHECK(relay_task_set_result(task, &result) == 0);
	atomic_store(&j->running, 0);
	return ret;
}

static void tjob_progress(tctx *c, tjob *j, const long *v)
{
	(void)j;
	atomic_store(&c->last_progress, *v);
	atomic_fetch_add(&c->progress_calls, 1);
	atomic_fetch_add(&c->seq, 1);
}

static void tjob_finished(tctx *c, tjob *j, int status, const int *result)
{
	(void)j;
	atomic_store(&c->status, status);
	atomic_store(&c->result, result ? *result : -1);
	atomic_store(&c->thread, relay_thread_current());
	atomic_store(&c->finished_at_progress, atomic_load(&c->progress_calls));
	atomic_fetch_add(&c->finished_calls, 1);
	atomic_fetch_add(&c->seq, 1);
}

static void tjob_free(tjob *j)
{
	if (j->freed)
		atomic_fetch_add(j->freed, 1);
}

RELAY_TASK_DEFINE(test_task, tctx, tjob, long, int, tjob_run, tjob_progress, tjob_finished,
		  tjob_free);

static relay_pool *pool_new(const char *name, int threads, int expiry_ms)
{
	relay_pool_config cfg = { .name = name, .max_threads = threads, .expiry_ms = expiry_ms };
	relay_pool *p = NULL;
	assert_int_equal(relay_pool_create(&cfg, &p), 0);
	return p;
}

static bool run_until_finished(tctx *c, long n)
{
	return support_run_until_count(&c->finished_calls, n, SUPPORT_TIMEOUT_MS);
}

/* ---- P1: the report, in the context's thread, once ---- */

static void test_P1_finished_once_in_context_thread_never_inside_submit(void **state)
{
	(void)state;
	relay_pool *p = pool_new("p1", 2, 0);
	tctx *c = tctx_new();
	atomic_long freed = 0;
	tjob j = { .mode = RUN_PLAIN, .ret = 0, .freed = &freed };
	relay_task *t = NULL;
	assert_int_equal(relay_task_submit(p, &test_task, c, &j, 0, &t), 0);
	assert_non_null(t);
	int st = 1;
	assert_int_equal(relay_task_wait(t, SUPPORT_TIMEOUT_MS, &st), 0);
	assert_int_equal(st, 0);
	/* run returned, but the report waits for this thread's loop */
	assert_int_equal(atomic_load(&c->finished_calls), 0);
	assert_true(run_until_finished(c, 1));
	support_drain(10);
	assert_int_equal(atomic_load(&c->finished_calls), 1);
	assert_int_equal(atomic_load(&c->status), 0);
	assert_int_equal(atomic_load(&c->result), 7);
	assert_ptr_equal(atomic_load(&c->thread), relay_thread_current());
	assert_int_equal(atomic_load(&freed), 1);
	relay_task_release(t);
	assert_int_equal(relay_pool_destroy(p), 0);
	relay_object_destroy(c);
}

static void test_P1_error_status_and_context_in_another_thread(void **state)
{
	(void)state;
	relay_pool *p = pool_new("p1b", 1, 0);
	relay_thread *th = support_thread_start("ctx-thread");
	tctx *c = tctx_new();
	assert_int_equal(relay_object_move_to_thread(c, th), 0);
	atomic_long freed = 0;
	tjob j = { .mode = RUN_IGNORE, .ret = -EIO, .freed = &freed };
	assert_int_equal(relay_task_submit(p, &test_task, c, &j, 0, NULL), 0);
	assert_true(support_wait_count(&c->finished_calls, 1, SUPPORT_TIMEOUT_MS));
	assert_int_equal(atomic_load(&c->status), -EIO);
	assert_int_equal(atomic_load(&c->result), -1);
	assert_ptr_equal(atomic_load(&c->thread), th);
	assert_true(support_wait_count(&freed, 1, SUPPORT_TIMEOUT_MS));
	assert_int_equal(relay_pool_destroy(p), 0);
	relay_object_delete_later(c);
	support_thread_stop(th);
}

static void no_ctx_free(tjob *j)
{
	atomic_store(&j->running, 2);   /* freed in the pool thread, after run */
	atomic_fetch_add(j->freed, 1);
}
RELAY_TASK_DEFINE(no_ctx_task, tctx, tjob, relay_none, relay_none, tjob_run, NULL, NULL,
		  no_ctx_free);

static void test_P1_fire_and_forget_without_context(void **state)
{
	(void)state;
	relay_pool *p = pool_new("p1c", 1, 0);
	atomic_long freed = 0;
	tjob j = { .mode = RUN_IGNORE, .freed = &freed };
	assert_int_equal(relay_task_submit(p, &no_ctx_task, NULL, &j, 0, NULL), 0);
	assert_int_equal(relay_pool_wait_for_done(p, SUPPORT_TIMEOUT_MS), 0);
	assert_true(support_wait_count(&freed, 1, SUPPORT_TIMEOUT_MS));
	assert_int_equal(atomic_load(&j.running), 2);
	assert_int_equal(relay_pool_destroy(p), 0);
}

static void test_P1_submit_errors_keep_data(void **state)
{
	(void)state;
	support_diag d;
	support_diag_begin(&d);
	relay_pool *p = pool_new("p1d", 1, 0);
	atomic_long freed = 0;
	tjob j = { .freed = &freed };
	relay_task *t = (relay_task *)&j;
	relay_task_ops none = { 0 };
	assert_int_equal(relay_pool_submit(p, &none, NULL, &j, 0, &t), -EINVAL);
	assert_null(t);
	/* callbacks need a context */
	assert_int_equal(relay_task_submit(p, &test_task, NULL, &j, 0, NULL), -EINVAL);
	tctx *c = tctx_new();
	relay_object_destroy(c);
	assert_int_equal(relay_task_submit(p, &test_task, (tctx *)NULL, &j, 0, NULL), -EINVAL);
	assert_int_equal(relay_pool_shutdown(p, SUPPORT_TIMEOUT_MS), 0);
	tctx *c2 = tctx_new();
	assert_int_equal(relay_task_submit(p, &test_task, c2, &j, 0, NULL), -ESHUTDOWN);
	assert_int_equal(atomic_load(&freed), 0);   /* the caller kept it each time */
	assert_true(support_diag_count(&d) >= 3);
	assert_int_equal(relay_pool_destroy(p), 0);
	relay_object_destroy(c2);
	support_diag_end(&d);
}

/* ---- P2: the context destroyed first ---- */

static void test_P2_context_destroyed_first_skips_callbacks_frees_data(void **state)
{
	(void)state;
	relay_pool *p = pool_new("p2", 1, 0);
	tctx *c = tctx_new();
	atomic_int gate = 0;
	atomic_long freed = 0;
	tjob j = { .mode = RUN_PROGRESS, .n = 10, .gate = &gate, .freed = &freed };
	relay_task *t;
	assert_int_equal(relay_task_submit(p, &test_task, c, &j, 0, &t), 0);
	assert_true(support_wait_flag(&j.started, 1, SUPPORT_TIMEOUT_MS));
	relay_object_destroy(c);   /* while it runs, a progress event maybe queued */
	atomic_store(&gate, 1);
	assert_int_equal(relay_task_wait(t, SUPPORT_TIMEOUT_MS, NULL), 0);
	support_drain(20);
	assert_true(support_wait_count(&freed, 1, SUPPORT_TIMEOUT_MS));
	support_drain(20);
	assert_int_equal(atomic_load(&freed), 1);
	relay_task_release(t);
	assert_int_equal(relay_pool_destroy(p), 0);
}

/* ---- P3: progress is the latest value ---- */

static void test_P3_tight_progress_loop_costs_copies_not_events(void **state)
{
	(void)state;
	relay_pool *p = pool_new("p3", 1, 0);
	tctx *c = tctx_new();
	relay_loop_stats before, after;
	assert_int_equal(relay_thread_stats(relay_thread_current(), &before), 0);
	const long n = 200000;
	tjob j = { .mode = RUN_PROGRESS, .n = n };
	relay_task *t;
	assert_int_equal(relay_task_submit(p, &test_task, c, &j, 0, &t), 0);
	/* Not pumping while it reports: one event can be on its way. */
	assert_int_equal(relay_task_wait(t, SUPPORT_TIMEOUT_MS, NULL), 0);
	assert_true(run_until_finished(c, 1));
	assert_int_equal(relay_thread_stats(relay_thread_current(), &after), 0);
	/* one progress event and the end */
	assert_true(after.posted - before.posted <= 2);
	assert_int_equal(atomic_load(&c->last_progress), n);
	assert_true(atomic_load(&c->progress_calls) >= 1);
	/* the last value came before the end */
	assert_int_equal(atomic_load(&c->finished_at_progress), atomic_load(&c->progress_calls));
	relay_task_release(t);
	assert_int_equal(relay_pool_destroy(p), 0);
	relay_object_destroy(c);
}

static void test_P3_last_progress_always_before_finished(void **state)
{
	(void)state;
	relay_pool *p = pool_new("p3b", 2, 0);
	tctx *c = tctx_new();
	long rounds = support_param("P3_ROUNDS", 200);
	for (long r = 0; r < rounds; r++) {
		atomic_store(&c->progress_calls, 0);
		atomic_store(&c->finished_calls, 0);
		atomic_store(&c->last_progress, 0);
		tjob j = { .mode = RUN_PROGRESS, .n = 1 + r % 7 };
		assert_int_equal(relay_task_submit(p, &test_task, c, &j, 0, NULL), 0);
		assert_true(run_until_finished(c, 1));
		assert_int_equal(atomic_load(&c->last_progress), j.n);
		assert_int_equal(atomic_load(&c->finished_at_progress),
				 atomic_load(&c->progress_calls));
		support_drain(2);
		assert_int_equal(atomic_load(&c->finished_at_progress),
				 atomic_load(&c->progress_calls));   /* none after */
	}
	assert_int_equal(relay_pool_destroy(p), 0);
	relay_object_destroy(c);
}

/* Progress values owning memory: every copy is freed exactly once. */
typedef struct msg { char *text; } msg;
static atomic_long msg_copies, msg_frees;
static int msg_copy(void *dst, const void *src)
{
	const msg *s = src;
	msg *d = dst;
	d->text = strdup(s->text);
	if (!d->text)
		return -ENOMEM;
	atomic_fetch_add(&msg_copies, 1);
	return 0;
}
static void msg_free(void *v)
{
	free(((msg *)v)->text);
	atomic_fetch_add(&msg_frees, 1);
}
static const relay_payload_ops msg_ops = { msg_copy, msg_free };

static atomic_long msg_seen;
static int msg_run(relay_task *task, void *data)
{
	long n = *(long *)data;
	char buf[32];
	for (long i = 0; i < n; i++) {
		snprintf(buf, sizeof buf, "step %ld", i);
		msg m = { buf };
		WCHECK(relay_task_progress(task, &m) == 0);
	}
	msg r = { "done" };
	WCHECK(relay_task_set_result(task, &r) == 0);
	WCHECK(relay_task_set_result(task, &r) == 0);   /* replaces the first */
	return 0;
}
static void msg_progress(relay_object *ctx, void *data, const void *v)
{
	(void)ctx, (void)data;
	WCHECK(strncmp(((const msg *)v)->text, "step ", 5) == 0);
	atomic_fetch_add(&msg_seen, 1);
}
static void msg_finished(relay_object *ctx, void *data, int status, const void *r)
{
	(void)ctx, (void)data;
	WCHECK(status == 0 && r && strcmp(((const msg *)r)->text, "done") == 0);
	atomic_fetch_add(&((tctx *)ctx)->finished_calls, 1);
}

static void test_P3_progress_and_result_copies_freed_exactly_once(void **state)
{
	(void)state;
	relay_pool *p = pool_new("p3c", 1, 0);
	tctx *c = tctx_new();
	relay_task_ops ops = {
		.run = msg_run, .progress = msg_progress, .finished = msg_finished,
		.progress_size = sizeof(msg), .progress_align = _Alignof(msg),
		.result_size = sizeof(msg), .result_align = _Alignof(msg),
		.progress_ops = &msg_ops, .result_ops = &msg_ops,
	};
	long n = 5000;
	for (int r = 0; r < 5; r++)
		assert_int_equal(relay_pool_submit(p, &ops, &c->base, &n, 0, NULL), 0);
	assert_true(run_until_finished(c, 5));
	assert_int_equal(relay_pool_destroy(p), 0);
	support_drain(5);
	assert_true(atomic_load(&msg_seen) >= 5);
	assert_int_equal(atomic_load(&msg_copies), atomic_load(&msg_frees));
	assert_int_equal(atomic_load(&msg_copies), 5 * (n + 2));
	relay_object_destroy(c);
}

/* ---- P4: cancel ---- */

static void test_P4_cancel_queued_task_never_runs(void **state)
{
	(void)state;
	relay_pool *p = pool_new("p4", 1, 0);
	tctx *c = tctx_new();
	atomic_int gate = 0;
	atomic_long freed = 0, ran = 0;
	tjob blocker = { .mode = RUN_IGNORE, .gate = &gate, .freed = &freed, .ran = &ran };
	tjob queued = { .mode = RUN_IGNORE, .freed = &freed, .ran = &ran };
	relay_task *tb, *tq;
	assert_int_equal(relay_task_submit(p, &test_task, c, &blocker, 0, &tb), 0);
	assert_true(support_wait_flag(&blocker.started, 1, SUPPORT_TIMEOUT_MS));
	assert_int_equal(relay_task_submit(p, &test_task, c, &queued, 0, &tq), 0);
	assert_int_equal(relay_task_cancel(tq), 0);
	assert_int_equal(relay_task_cancel(tq), 0);   /* still cancelled */
	int st = 0;
	assert_int_equal(relay_task_wait(tq, 0, &st), 0);   /* it will never run */
	assert_int_equal(st, -ECANCELED);
	assert_true(run_until_finished(c, 1));
	assert_int_equal(atomic_load(&c->status), -ECANCELED);
	atomic_store(&gate, 1);
	assert_int_equal(relay_task_wait(tb, SUPPORT_TIMEOUT_MS, &st), 0);
	assert_int_equal(st, 0);
	assert_int_equal(relay_task_cancel(tb), -EALREADY);   /* it had returned */
	assert_true(run_until_finished(c, 2));
	assert_int_equal(atomic_load(&ran), 1);
	assert_int_equal(atomic_load(&queued.started), 0);
	support_drain(5);
	assert_int_equal(atomic_load(&freed), 2);
	relay_pool_stats s;
	assert_int_equal(relay_pool_stats_get(p, &s), 0);
	assert_int_equal(s.cancelled, 1);
	assert_int_equal(s.completed, 2);
	relay_task_release(tb);
	relay_task_release(tq);
	assert_int_equal(relay_pool_destroy(p), 0);
	relay_object_destroy(c);
}

static void test_P4_cancel_running_task_flags_it(void **state)
{
	(void)state;
	relay_pool *p = pool_new("p4b", 1, 0);
	tctx *c = tctx_new();
	tjob j = { .mode = RUN_UNTIL_CANCEL, .ret = 0 };
	relay_task *t;
	assert_int_equal(relay_task_submit(p, &test_task, c, &j, 0, &t), 0);
	assert_true(support_wait_flag(&j.started, 1, SUPPORT_TIMEOUT_MS));
	assert_false(relay_task_cancelled(t));
	assert_int_equal(relay_task_cancel(t), 0);
	assert_true(relay_task_cancelled(t));
	int st = 0;
	assert_int_equal(relay_task_wait(t, SUPPORT_TIMEOUT_MS, &st), 0);
	assert_int_equal(st, -ECANCELED);   /* whatever run returned */
	assert_true(run_until_finished(c, 1));
	assert_int_equal(atomic_load(&c->status), -ECANCELED);
	assert_int_equal(atomic_load(&c->result), -1);   /* discarded */
	relay_task_release(t);
	assert_int_equal(relay_pool_destroy(p), 0);
	relay_object_destroy(c);
}

/* ---- P5: cancel and wait ---- */

static void test_P5_cancel_and_wait_returns_only_when_run_is_not_running(void **state)
{
	(void)state;
	relay_pool *p = pool_new("p5", 2, 0);
	tctx *c = tctx_new();
	long rounds = support_param("P5_ROUNDS", 40);
	tjob *jobs = calloc((size_t)rounds, sizeof *jobs);   /* until their ends are delivered */
	for (long r = 0; r < rounds; r++) {
		tjob *j = &jobs[r];
		j->mode = RUN_UNTIL_CANCEL;
		relay_task *t;
		assert_int_equal(relay_task_submit(p, &test_task, c, j, 0, &t), 0);
		if (r % 2)   /* half of them certainly running */
			assert_true(support_wait_flag(&j->started, 1, SUPPORT_TIMEOUT_MS));
		assert_int_equal(relay_task_cancel_and_wait(t, SUPPORT_TIMEOUT_MS), 0);
		assert_int_equal(atomic_load(&j->running), 0);
		int st = 0;
		assert_int_equal(relay_task_wait(t, 0, &st), 0);
		assert_int_equal(st, -ECANCELED);
		relay_task_release(t);
	}
	assert_true(run_until_finished(c, rounds));
	assert_int_equal(relay_pool_destroy(p), 0);
	relay_object_destroy(c);
	free(jobs);
}

static void test_P5_cancel_releases_a_blocking_call_into_the_waiter(void **state)
{
	(void)state;
	relay_pool *p = pool_new("p5b", 1, 0);
	tctx *c = tctx_new();
	relay_loop_run_once(0);   /* this thread pumps: blocking calls into it are taken */
	tjob j = { .mode = RUN_BLOCK, .target = &c->base };
	relay_task *t;
	assert_int_equal(relay_task_submit(p, &test_task, c, &j, 0, &t), 0);
	assert_true(support_wait_flag(&j.started, 1, SUPPORT_TIMEOUT_MS));
	/* The task waits for this thread, which waits for the task: the
	 * cancel releases the task's call. */
	assert_int_equal(relay_task_cancel_and_wait(t, SUPPORT_TIMEOUT_MS), 0);
	assert_int_equal(j.invoke_rc, -ECANCELED);
	assert_true(run_until_finished(c, 1));
	assert_int_equal(atomic_load(&c->status), -ECANCELED);
	relay_task_release(t);
	assert_int_equal(relay_pool_destroy(p), 0);
	relay_object_destroy(c);
}

/* ---- P6: refused waits ---- */

static void test_P6_waits_from_the_task_or_its_pool_are_refused(void **state)
{
	(void)state;
	support_diag d;
	support_diag_begin(&d);
	relay_pool *p = pool_new("p6", 1, 0);
	tctx *c = tctx_new();
	tjob j = { .mode = RUN_REFUSE, .pool = p };
	assert_int_equal(relay_task_submit(p, &test_task, c, &j, 0, NULL), 0);
	assert_true(run_until_finished(c, 1));
	assert_int_equal(j.refusals[0], RELAY_EWAITSELF);
	assert_int_equal(j.refusals[1], RELAY_EDEADLOCK);
	assert_int_equal(j.refusals[2], RELAY_EWAITSELF);
	assert_int_equal(atomic_load(&c->status), 0);   /* nothing was cancelled */
	assert_true(support_diag_count(&d) >= 3);
	assert_int_equal(relay_pool_destroy(p), 0);
	relay_object_destroy(c);
	support_diag_end(&d);
}

/* ---- P7: priorities ---- */

static void test_P7_higher_priority_first_fifo_among_equals(void **state)
{
	(void)state;
	relay_pool *p = pool_new("p7", 1, 0);
	tctx *c = tctx_new();
	atomic_int gate = 0, n = 0;
	int log[16];
	tjob blocker = { .mode = RUN_IGNORE, .gate = &gate };
	assert_int_equal(relay_task_submit(p, &test_task, c, &blocker, 0, NULL), 0);
	assert_true(support_wait_flag(&blocker.started, 1, SUPPORT_TIMEOUT_MS));
	static const int prio[] = { 0, 5, 5, 1, 10, 0, -3, 5 };
	tjob jobs[8];
	for (int i = 0; i < 8; i++) {
		jobs[i] = (tjob){ .mode = RUN_LOG, .order = i, .log = log, .log_n = &n };
		assert_int_equal(relay_task_submit(p, &test_task, c, &jobs[i], prio[i], NULL), 0);
	}
	atomic_store(&gate, 1);
	assert_true(run_until_finished(c, 9));
	static const int expect[] = { 4, 1, 2, 7, 3, 0, 5, 6 };
	assert_int_equal(atomic_load(&n), 8);
	for (int i = 0; i < 8; i++)
		assert_int_equal(log[i], expect[i]);
	assert_int_equal(relay_pool_destroy(p), 0);
	relay_object_destroy(c);
}

/* ---- P8: pool threads serve a loop ---- */

typedef struct pobj {
	relay_object base;
	atomic_long ticks, calls;
	_Atomic(relay_thread *) tick_thread, call_thread;
	atomic_int *destroyed;
} pobj;
static void pobj_finalize(relay_object *o)
{
	atomic_store(((pobj *)o)->destroyed, 1);
}
static const relay_class pobj_class = { .name = "pobj", .finalize = pobj_finalize,
					.size = sizeof(pobj) };
static void pobj_tick(pobj *o)
{
	atomic_store(&o->tick_thread, relay_thread_current());
	atomic_fetch_add(&o->ticks, 1);
}
static void pobj_call(void *arg)
{
	pobj *o = arg;
	atomic_store(&o->call_thread, relay_thread_current());
	atomic_fetch_add(&o->calls, 1);
}

typedef struct p8 {
	pobj *obj;
	atomic_int made;
	_Atomic(relay_thread *) task_thread;
	atomic_int destroyed;
	atomic_int temp_destroyed;
	int later_rc;
} p8;

static int p8_run(relay_task *task, void *data)
{
	(void)task;
	p8 *s = data;
	pobj *o = NULL, *temp = NULL;
	WCHECK(relay_object_new(&o, &pobj_class, NULL) == 0);
	o->destroyed = &s->destroyed;
	atomic_store(&s->task_thread, relay_thread_current());
	WCHECK(relay_single_shot(5, o, pobj_tick) == 0);
	WCHECK(relay_object_new(&temp, &pobj_class, NULL) == 0);
	temp->destroyed = &s->temp_destroyed;
	s->later_rc = relay_object_delete_later(temp);   /* runs after run returns */
	WCHECK(atomic_load(&s->temp_destroyed) == 0);
	s->obj = o;
	atomic_store(&s->made, 1);
	return 0;
}

static void test_P8_objects_made_in_a_task_get_events_timers_deletions(void **state)
{
	(void)state;
	relay_pool *p = pool_new("p8", 1, -1);
	p8 s = { 0 };
	relay_task_ops ops = { .run = p8_run };
	assert_int_equal(relay_pool_submit(p, &ops, NULL, &s, 0, NULL), 0);
	assert_true(support_wait_flag(&s.made, 1, SUPPORT_TIMEOUT_MS));
	assert_int_equal(s.later_rc, 0);
	assert_true(support_wait_flag(&s.temp_destroyed, 1, SUPPORT_TIMEOUT_MS));
	assert_true(support_wait_count(&s.obj->ticks, 1, SUPPORT_TIMEOUT_MS));
	assert_ptr_equal(atomic_load(&s.obj->tick_thread), atomic_load(&s.task_thread));
	assert_int_equal(relay_invoke(s.obj, pobj_call, s.obj, NULL), 0);
	assert_true(support_wait_count(&s.obj->calls, 1, SUPPORT_TIMEOUT_MS));
	assert_ptr_equal(atomic_load(&s.obj->call_thread), atomic_load(&s.task_thread));
	assert_int_equal(relay_object_delete_later(s.obj), 0);
	assert_true(support_wait_flag(&s.destroyed, 1, SUPPORT_TIMEOUT_MS));
	assert_int_equal(relay_pool_destroy(p), 0);
}

static int main_answer(void *data)
{
	*(relay_thread **)data = relay_thread_current();
	return 99;
}
typedef struct p8b { relay_object *target; atomic_int rc; int result;
		     relay_thread *ran_in; } p8b;
static int p8b_run(relay_task *task, void *data)
{
	(void)task;
	p8b *s = data;
	atomic_store(&s->rc, relay_invoke_blocking(s->target, main_answer, &s->ran_in,
						   &s->result) + 1000);
	return 0;
}

static void test_P8_task_block_invokes_into_main_thread(void **state)
{
	(void)state;
	relay_pool *p = pool_new("p8b", 1, 0);
	tctx *c = tctx_new();
	p8b s = { .target = &c->base };
	relay_task_ops ops = { .run = p8b_run };
	relay_loop_run_once(0);
	assert_int_equal(relay_pool_submit(p, &ops, NULL, &s, 0, NULL), 0);
	support_count_target tg;
	(void)tg;
	int64_t end = support_now_ms() + SUPPORT_TIMEOUT_MS;
	while (atomic_load(&s.rc) == 0 && support_now_ms() < end)
		relay_loop_run_once(10);
	assert_int_equal(atomic_load(&s.rc), 1000);
	assert_int_equal(s.result, 99);
	assert_ptr_equal(s.ran_in, relay_thread_current());
	assert_int_equal(relay_pool_destroy(p), 0);
	relay_object_destroy(c);
}

/* ---- P9: threads ---- */

typedef struct p9 {
	atomic_int now, peak;
	char names[8][16];
	atomic_int n;
	atomic_int *gate;
} p9;
static int p9_run(relay_task *task, void *data)
{
	(void)task;
	p9 *s = data;
	int now = atomic_fetch_add(&s->now, 1) + 1;
	int peak = atomic_load(&s->peak);
	while (now > peak && !atomic_compare_exchange_weak(&s->peak, &peak, now))
		;
	int i = atomic_fetch_add(&s->n, 1);
	if (i < 8)
		pthread_getname_np(pthread_self(), s->names[i], sizeof s->names[i]);
	int64_t end = support_now_ms() + SUPPORT_TIMEOUT_MS;
	while (s->gate && !atomic_load(s->gate) && support_now_ms() < end)
		support_sleep_ms(1);
	atomic_fetch_sub(&s->now, 1);
	return 0;
}

static void test_P9_threads_named_and_bounded(void **state)
{
	(void)state;
	relay_pool *p = pool_new("hash", 2, 0);
	atomic_int gate = 0;
	p9 s = { .gate = &gate };
	relay_task_ops ops = { .run = p9_run };
	for (int i = 0; i < 6; i++)
		assert_int_equal(relay_pool_submit(p, &ops, NULL, &s, 0, NULL), 0);
	assert_true(support_wait_flag(&s.now, 2, SUPPORT_TIMEOUT_MS));
	support_sleep_ms(20);   /* a third thread, if one were allowed, would show */
	atomic_store(&gate, 1);
	assert_int_equal(relay_pool_wait_for_done(p, SUPPORT_TIMEOUT_MS), 0);
	assert_int_equal(atomic_load(&s.peak), 2);
	for (int i = 0; i < 6; i++)
		assert_true(strcmp(s.names[i], "hash-1") == 0 || strcmp(s.names[i], "hash-2") == 0);
	relay_pool_stats st;
	assert_int_equal(relay_pool_stats_get(p, &st), 0);
	assert_int_equal(st.peak_threads, 2);
	assert_int_equal(st.completed, 6);
	assert_int_equal(relay_pool_destroy(p), 0);
}

static bool pool_threads_are(relay_pool *p, int n)
{
	int64_t end = support_now_ms() + SUPPORT_TIMEOUT_MS;
	relay_pool_stats st;
	do {
		relay_pool_stats_get(p, &st);
		if (st.threads == n)
			return true;
		support_sleep_ms(2);
	} while (support_now_ms() < end);
	return false;
}

static void test_P9_idle_threads_expire_and_come_back(void **state)
{
	(void)state;
	relay_pool *p = pool_new("exp", 2, 30);
	p9 s = { 0 };
	relay_task_ops ops = { .run = p9_run };
	assert_int_equal(relay_pool_submit(p, &ops, NULL, &s, 0, NULL), 0);
	assert_int_equal(relay_pool_wait_for_done(p, SUPPORT_TIMEOUT_MS), 0);
	assert_true(pool_threads_are(p, 0));   /* expired */
	assert_int_equal(relay_pool_submit(p, &ops, NULL, &s, 0, NULL), 0);
	assert_int_equal(relay_pool_wait_for_done(p, SUPPORT_TIMEOUT_MS), 0);
	relay_pool_stats st;
	assert_int_equal(relay_pool_stats_get(p, &st), 0);
	assert_int_equal(st.threads_started, 2);
	assert_int_equal(st.completed, 2);
	assert_int_equal(relay_pool_destroy(p), 0);
}

typedef struct p9t { relay_timer *timer; atomic_long ticks; atomic_int stop; } p9t;
static void p9t_tick(relay_object *timer)
{
	p9t *s = (p9t *)relay_object_parent(timer);
	(void)s;
}
static p9t *g_p9t;
static void p9t_on_timeout(relay_timer *t)
{
	atomic_fetch_add(&g_p9t->ticks, 1);
	if (atomic_load(&g_p9t->stop))
		relay_object_destroy(t);   /* then the thread may expire */
}
static int p9t_run(relay_task *task, void *data)
{
	(void)task;
	p9t *s = data;
	WCHECK(relay_timer_create(NULL, &s->timer) == 0);
	relay_connect(s->timer, timeout, s->timer, p9t_on_timeout);
	WCHECK(relay_timer_start(s->timer, 5) == 0);
	return 0;
}

static void test_P9_thread_with_an_active_timer_does_not_expire(void **state)
{
	(void)state;
	(void)p9t_tick;
	relay_pool *p = pool_new("tmr", 1, 20);
	p9t s = { 0 };
	g_p9t = &s;
	relay_task_ops ops = { .run = p9t_run };
	assert_int_equal(relay_pool_submit(p, &ops, NULL, &s, 0, NULL), 0);
	assert_true(support_wait_count(&s.ticks, 20, SUPPORT_TIMEOUT_MS));   /* > 5 expiries */
	relay_pool_stats st;
	assert_int_equal(relay_pool_stats_get(p, &st), 0);
	assert_int_equal(st.threads, 1);
	assert_int_equal(st.threads_started, 1);
	atomic_store(&s.stop, 1);
	assert_true(pool_threads_are(p, 0));   /* timer gone: it expires */
	assert_int_equal(relay_pool_destroy(p), 0);
}

/* ---- P10: waiting for done, shutdown ---- */

static void test_P10_wait_for_done(void **state)
{
	(void)state;
	relay_pool *p = pool_new("p10", 2, 0);
	p9 s = { 0 };
	relay_task_ops ops = { .run = p9_run };
	for (int i = 0; i < 50; i++)
		assert_int_equal(relay_pool_submit(p, &ops, NULL, &s, i % 3, NULL), 0);
	assert_int_equal(relay_pool_wait_for_done(p, SUPPORT_TIMEOUT_MS), 0);
	relay_pool_stats st;
	assert_int_equal(relay_pool_stats_get(p, &st), 0);
	assert_int_equal(st.completed, 50);
	assert_int_equal(st.queued, 0);
	assert_int_equal(st.running, 0);
	assert_int_equal(relay_pool_destroy(p), 0);
}

static void test_P10_shutdown_cancels_queued_and_running(void **state)
{
	(void)state;
	relay_pool *p = pool_new("p10b", 1, 0);
	tctx *c = tctx_new();
	atomic_long freed = 0, ran = 0;
	tjob running = { .mode = RUN_UNTIL_CANCEL, .freed = &freed, .ran = &ran };
	tjob queued[5];
	assert_int_equal(relay_task_submit(p, &test_task, c, &running, 0, NULL), 0);
	assert_true(support_wait_flag(&running.started, 1, SUPPORT_TIMEOUT_MS));
	for (int i = 0; i < 5; i++) {
		queued[i] = (tjob){ .mode = RUN_IGNORE, .freed = &freed, .ran = &ran };
		assert_int_equal(relay_task_submit(p, &test_task, c, &queued[i], 0, NULL), 0);
	}
	assert_int_equal(relay_pool_shutdown(p, SUPPORT_TIMEOUT_MS), 0);
	assert_int_equal(atomic_load(&running.running), 0);
	assert_int_equal(relay_task_submit(p, &test_task, c, &queued[0], 0, NULL), -ESHUTDOWN);
	assert_true(run_until_finished(c, 6));
	assert_int_equal(atomic_load(&c->status), -ECANCELED);
	assert_int_equal(atomic_load(&ran), 1);
	support_drain(5);
	assert_int_equal(atomic_load(&freed), 6);
	relay_pool_stats st;
	assert_int_equal(relay_pool_stats_get(p, &st), 0);
	assert_int_equal(st.cancelled, 6);
	assert_int_equal(st.threads, 0);
	assert_int_equal(relay_pool_destroy(p), 0);
	relay_object_destroy(c);
}

static atomic_int straggle_gate;
static int straggler_run(relay_task *task, void *data)
{
	(void)task, (void)data;
	int64_t end = support_now_ms() + SUPPORT_TIMEOUT_MS;
	while (!atomic_load(&straggle_gate) && support_now_ms() < end)
		support_sleep_ms(1);   /* ignores its cancel */
	return 0;
}

static void test_P10_shutdown_names_a_task_that_does_not_stop(void **state)
{
	(void)state;
	support_diag d;
	support_diag_begin(&d);
	relay_pool *p = pool_new("slow", 1, 0);
	relay_task_ops ops = { .run = straggler_run };
	relay_task *t;
	assert_int_equal(relay_pool_submit(p, &ops, NULL, NULL, 0, &t), 0);
	int64_t end = support_now_ms() + SUPPORT_TIMEOUT_MS;
	relay_pool_stats st;
	do {
		relay_pool_stats_get(p, &st);
	} while (st.running == 0 && support_now_ms() < end);
	assert_int_equal(relay_pool_shutdown(p, 20), -ETIMEDOUT);
	char line[512];
	support_diag_last_line(&d, line, sizeof line);
	assert_non_null(strstr(line, "slow-1"));
	assert_int_equal(support_diag_last_code(&d), -ETIMEDOUT);
	atomic_store(&straggle_gate, 1);
	assert_int_equal(relay_pool_shutdown(p, SUPPORT_TIMEOUT_MS), 0);
	int status = 0;
	assert_int_equal(relay_task_wait(t, 0, &status), 0);
	assert_int_equal(status, -ECANCELED);
	relay_task_release(t);
	assert_int_equal(relay_pool_destroy(p), 0);
	support_diag_end(&d);
}

static void test_P10_shutdown_while_tasks_block_invoke_into_main(void **state)
{
	(void)state;
	relay_pool *p = pool_new("p10d", 2, 0);
	tctx *c = tctx_new();
	relay_loop_run_once(0);
	tjob j[4];
	for (int i = 0; i < 4; i++) {
		j[i] = (tjob){ .mode = RUN_BLOCK, .target = &c->base };
		assert_int_equal(relay_task_submit(p, &test_task, c, &j[i], 0, NULL), 0);
	}
	assert_true(support_wait_flag(&j[0].started, 1, SUPPORT_TIMEOUT_MS));
	/* This thread does not pump: the tasks' calls into it are released. */
	assert_int_equal(relay_pool_shutdown(p, SUPPORT_TIMEOUT_MS), 0);
	for (int i = 0; i < 4; i++)
		if (atomic_load(&j[i].started))
			assert_int_equal(j[i].invoke_rc, -ECANCELED);
	assert_true(run_until_finished(c, 4));
	assert_int_equal(relay_pool_destroy(p), 0);
	relay_object_destroy(c);
}

/* ---- P11: relay_run and relay_map ---- */

typedef struct rdata { int x; atomic_int freed; } rdata;
static int square(rdata *d)
{
	return d->x * d->x;
}
static void got_square(tctx *c, rdata *d, int r)
{
	(void)d;
	atomic_store(&c->status, r);
	atomic_store(&c->thread, relay_thread_current());
	atomic_fetch_add(&c->finished_calls, 1);
}
static void rdata_free(rdata *d)
{
	atomic_fetch_add(&d->freed, 1);
}

static void test_P11_run_delivers_the_value_in_the_context_thread(void **state)
{
	(void)state;
	tctx *c = tctx_new();
	rdata d = { .x = 12 };
	assert_int_equal(relay_run(NULL, c, square, &d, got_square, rdata_free, NULL), 0);
	assert_true(run_until_finished(c, 1));
	assert_int_equal(atomic_load(&c->status), 144);
	assert_ptr_equal(atomic_load(&c->thread), relay_thread_current());
	assert_int_equal(atomic_load(&d.freed), 1);
	assert_non_null(relay_pool_default());
	assert_ptr_equal(relay_pool_default(), relay_pool_default());
	assert_int_equal(relay_pool_destroy(relay_pool_default()), -EINVAL);
	relay_object_destroy(c);
}

typedef struct mstate { atomic_long progress_calls; size_t last_done, total;
			atomic_int finished; int status; long fail_at; atomic_int in_item; } mstate;
static int sq_item(const void *in, void *out, void *user)
{
	mstate *m = user;
	atomic_fetch_add(&m->in_item, 1);
	long v = *(const long *)in;
	if (v == m->fail_at) {
		atomic_fetch_sub(&m->in_item, 1);
		return -EIO;
	}
	*(long *)out = v * v;
	atomic_fetch_sub(&m->in_item, 1);
	return 0;
}
static void m_progress(relay_object *ctx, void *user, const relay_map_progress *pr)
{
	(void)ctx;
	mstate *m = user;
	WCHECK(pr->done >= m->last_done);
	m->last_done = pr->done;
	m->total = pr->total;
	atomic_fetch_add(&m->progress_calls, 1);
}
static void m_finished(relay_object *ctx, void *user, int status)
{
	(void)ctx;
	mstate *m = user;
	m->status = status;
	atomic_store(&m->finished, 1);
}

static void test_P11_map_keeps_input_order_reports_progress(void **state)
{
	(void)state;
	relay_pool *p = pool_new("map", 2, 0);
	tctx *c = tctx_new();
	enum { N = 100000 };
	long *in = malloc(N * sizeof *in), *out = calloc(N, sizeof *out);
	for (long i = 0; i < N; i++)
		in[i] = i;
	mstate m = { .fail_at = -1 };
	relay_map_ops ops = { .item = sq_item, .progress = m_progress, .finished = m_finished };
	assert_int_equal(relay_map(p, &ops, c, in, out, N, &m, NULL), 0);
	assert_true(support_run_until_flag(&m.finished, SUPPORT_TIMEOUT_MS));
	assert_int_equal(m.status, 0);
	for (long i = 0; i < N; i++)
		assert_int_equal(out[i], i * i);
	assert_true(atomic_load(&m.progress_calls) >= 1);
	assert_int_equal(m.last_done, N);   /* the last value before the end */
	assert_int_equal(m.total, N);
	/* an empty map ends too */
	atomic_store(&m.finished, 0);
	assert_int_equal(relay_map(p, &ops, c, in, out, 0, &m, NULL), 0);
	assert_true(support_run_until_flag(&m.finished, SUPPORT_TIMEOUT_MS));
	assert_int_equal(m.status, 0);
	free(in);
	free(out);
	assert_int_equal(relay_pool_destroy(p), 0);
	relay_object_destroy(c);
}

static void test_P11_map_first_error_and_cancel(void **state)
{
	(void)state;
	relay_pool *p = pool_new("map2", 2, 0);
	tctx *c = tctx_new();
	enum { N = 200000 };
	long *in = malloc(N * sizeof *in), *out = calloc(N, sizeof *out);
	for (long i = 0; i < N; i++)
		in[i] = i;
	mstate m = { .fail_at = 500 };
	relay_map_ops ops = { .item = sq_item, .finished = m_finished, .chunk = 100 };
	assert_int_equal(relay_map(p, &ops, c, in, out, N, &m, NULL), 0);
	assert_true(support_run_until_flag(&m.finished, SUPPORT_TIMEOUT_MS));
	assert_int_equal(m.status, -EIO);
	/* cancel and wait: no item runs once it returns */
	mstate m2 = { .fail_at = -1 };
	relay_task *t;
	assert_int_equal(relay_map(p, &ops, c, in, out, N, &m2, &t), 0);
	assert_int_equal(relay_task_cancel_and_wait(t, SUPPORT_TIMEOUT_MS), 0);
	assert_int_equal(atomic_load(&m2.in_item), 0);
	assert_true(support_run_until_flag(&m2.finished, SUPPORT_TIMEOUT_MS));
	assert_true(m2.status == -ECANCELED || m2.status == 0);   /* it may have ended first */
	relay_task_release(t);
	free(in);
	free(out);
	assert_int_equal(relay_pool_destroy(p), 0);
	relay_object_destroy(c);
}

/* ---- stress: submit, cancel, cancel-and-wait, release from threads ---- */

static atomic_long st_freed, st_finished, st_ran;
static int st_run(relay_task *task, void *data)
{
	(void)data;
	atomic_fetch_add(&st_ran, 1);
	for (int i = 0; i < 100 && !relay_task_cancelled(task); i++)
		;
	return 0;
}
static void st_finished_cb(relay_object *ctx, void *data, int status, const void *r)
{
	(void)ctx, (void)data, (void)r;
	WCHECK(status == 0 || status == -ECANCELED);
	atomic_fetch_add(&st_finished, 1);
}
static void st_free(void *data)
{
	(void)data;
	atomic_fetch_add(&st_freed, 1);
}

typedef struct st_arg { relay_pool *pool; tctx *ctx; long n; unsigned seed; } st_arg;
static void *st_thread(void *arg)
{
	st_arg *a = arg;
	/* static: a task may outlive this thread (the kind must outlive its tasks) */
	static const relay_task_ops ops = { .run = st_run, .finished = st_finished_cb,
					    .free_data = st_free };
	for (long i = 0; i < a->n; i++) {
		relay_task *t = NULL;
		unsigned r = rand_r(&a->seed) % 5;
		int rc = relay_pool_submit(a->pool, &ops, &a->ctx->base, NULL, (int)(r % 3),
					   r == 0 ? NULL : &t);
		WCHECK(rc == 0);
		if (!t)
			continue;
		if (r == 1) {
			int c = relay_task_cancel(t);
			WCHECK(c == 0 || c == -EALREADY);
		} else if (r == 2) {
			WCHECK(relay_task_cancel_and_wait(t, SUPPORT_TIMEOUT_MS) == 0);
		} else if (r == 3) {
			WCHECK(relay_task_wait(t, SUPPORT_TIMEOUT_MS, NULL) == 0);
		}
		relay_task_release(t);
	}
	return NULL;
}

static void test_P_stress_submit_cancel_wait_shutdown_from_threads(void **state)
{
	(void)state;
	relay_pool *p = pool_new("stress", 2, 5);
	relay_thread *th = support_thread_start("ctx");
	tctx *c = tctx_new();
	assert_int_equal(relay_object_move_to_thread(c, th), 0);
	enum { T = 4 };
	long n = support_param("POOL_STRESS_N", 3000);
	pthread_t tids[T];
	st_arg args[T];
	for (int i = 0; i < T; i++) {
		args[i] = (st_arg){ p, c, n, (unsigned)i * 7919u + 1 };
		pthread_create(&tids[i], NULL, st_thread, &args[i]);
	}
	for (int i = 0; i < T; i++)
		pthread_join(tids[i], NULL);
	assert_int_equal(relay_pool_shutdown(p, SUPPORT_TIMEOUT_MS), 0);
	assert_true(support_wait_count(&st_finished, T * n, SUPPORT_TIMEOUT_MS));
	assert_true(support_wait_count(&st_freed, T * n, SUPPORT_TIMEOUT_MS));
	support_sleep_ms(5);
	assert_int_equal(atomic_load(&st_finished), T * n);
	assert_int_equal(atomic_load(&st_freed), T * n);
	relay_pool_stats s;
	assert_int_equal(relay_pool_stats_get(p, &s), 0);
	assert_int_equal(s.completed, (uint64_t)(T * n));
	assert_int_equal((uint64_t)atomic_load(&st_ran) + s.cancelled >= s.completed, 1);
	assert_int_equal(relay_pool_destroy(p), 0);
	relay_object_delete_later(c);
	support_thread_stop(th);
}

/* Context destroyed in its own thread while many tasks report to it. */
static void test_P2_context_destroyed_while_tasks_run(void **state)
{
	(void)state;
	relay_pool *p = pool_new("p2b", 2, 0);
	tctx *c = tctx_new();
	atomic_long freed = 0;
	enum { N = 200 };
	tjob *j = calloc(N, sizeof *j);
	for (int i = 0; i < N; i++) {
		j[i] = (tjob){ .mode = RUN_PROGRESS, .n = 50, .freed = &freed };
		assert_int_equal(relay_task_submit(p, &test_task, c, &j[i], 0, NULL), 0);
	}
	support_run_for(2);
	long seen = atomic_load(&c->finished_calls);
	relay_object_destroy(c);
	assert_int_equal(relay_pool_wait_for_done(p, SUPPORT_TIMEOUT_MS), 0);
	/* ends posted before the destroy are dropped by this thread's loop */
	assert_true(support_run_until_count(&freed, N, SUPPORT_TIMEOUT_MS));
	support_drain(10);
	assert_int_equal(atomic_load(&freed), N);
	assert_true(seen <= N);
	assert_int_equal(relay_pool_destroy(p), 0);
	free(j);
}

/* User code in a shutdown (a diagnostic handler, free_data) may use pools:
 * no pool or registry lock is held around it (review). */
static relay_pool *g_diag_pool;
static atomic_long g_diag_calls;
static void pool_touching_diag(int code, const char *line, void *user)
{
	(void)code, (void)line, (void)user;
	relay_pool_stats st;
	relay_pool_stats_get(g_diag_pool, &st);   /* would hang under the pool lock */
	atomic_fetch_add(&g_diag_calls, 1);
}

static void test_P10_diag_handler_may_use_the_pool_during_shutdown(void **state)
{
	(void)state;
	g_diag_pool = pool_new("diag", 1, 0);
	atomic_store(&straggle_gate, 0);
	relay_task_ops ops = { .run = straggler_run };
	assert_int_equal(relay_pool_submit(g_diag_pool, &ops, NULL, NULL, 0, NULL), 0);
	relay_pool_stats st;
	int64_t end = support_now_ms() + SUPPORT_TIMEOUT_MS;
	do {
		relay_pool_stats_get(g_diag_pool, &st);
	} while (st.running == 0 && support_now_ms() < end);
	relay_set_diag_handler(pool_touching_diag, NULL);
	assert_int_equal(relay_pool_shutdown(g_diag_pool, 10), -ETIMEDOUT);
	relay_set_diag_handler(NULL, NULL);
	assert_true(atomic_load(&g_diag_calls) >= 1);
	atomic_store(&straggle_gate, 1);
	assert_int_equal(relay_pool_destroy(g_diag_pool), 0);
}

static atomic_int made_in_free;
static int until_cancelled(relay_task *task, void *data)
{
	(void)data;
	int64_t end = support_now_ms() + SUPPORT_TIMEOUT_MS;
	while (!relay_task_cancelled(task) && support_now_ms() < end)
		support_sleep_ms(1);
	return 0;
}
static void free_makes_a_pool(void *data)
{
	(void)data;
	relay_pool *q = NULL;
	if (relay_pool_create(NULL, &q) == 0 && relay_pool_destroy(q) == 0)
		atomic_fetch_add(&made_in_free, 1);
}

static void test_P10_free_data_may_create_pools_during_main_shutdown(void **state)
{
	(void)state;
	relay_pool *p = pool_new("mainsd", 1, 0);
	relay_task_ops busy = { .run = until_cancelled };
	relay_task_ops queued = { .run = until_cancelled, .free_data = free_makes_a_pool };
	assert_int_equal(relay_pool_submit(p, &busy, NULL, NULL, 0, NULL), 0);
	for (int i = 0; i < 3; i++)
		assert_int_equal(relay_pool_submit(p, &queued, NULL, NULL, 0, NULL), 0);
	assert_int_equal(relay_main_shutdown(SUPPORT_TIMEOUT_MS), 0);   /* cancels them */
	assert_int_equal(atomic_load(&made_in_free), 3);
	assert_int_equal(relay_pool_destroy(p), 0);
	/* the default pool works again after it */
	tctx *c = tctx_new();
	rdata d = { .x = 3 };
	assert_int_equal(relay_run(NULL, c, square, &d, got_square, NULL, NULL), 0);
	assert_true(run_until_finished(c, 1));
	assert_int_equal(atomic_load(&c->status), 9);
	relay_object_destroy(c);
}

int main(int argc, char **argv)
{
	support_set_args(argc, argv);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_P1_finished_once_in_context_thread_never_inside_submit,
					  check_worker_errors),
		cmocka_unit_test_teardown(test_P1_error_status_and_context_in_another_thread,
					  check_worker_errors),
		cmocka_unit_test_teardown(test_P1_fire_and_forget_without_context, check_worker_errors),
		cmocka_unit_test_teardown(test_P1_submit_errors_keep_data, check_worker_errors),
		cmocka_unit_test_teardown(test_P2_context_destroyed_first_skips_callbacks_frees_data,
					  check_worker_errors),
		cmocka_unit_test_teardown(test_P2_context_destroyed_while_tasks_run,
					  check_worker_errors),
		cmocka_unit_test_teardown(test_P3_tight_progress_loop_costs_copies_not_events,
					  check_worker_errors),
		cmocka_unit_test_teardown(test_P3_last_progress_always_before_finished,
					  check_worker_errors),
		cmocka_unit_test_teardown(test_P3_progress_and_result_copies_freed_exactly_once,
					  check_worker_errors),
		cmocka_unit_test_teardown(test_P4_cancel_queued_task_never_runs, check_worker_errors),
		cmocka_unit_test_teardown(test_P4_cancel_running_task_flags_it, check_worker_errors),
		cmocka_unit_test_teardown(test_P5_cancel_and_wait_returns_only_when_run_is_not_running,
					  check_worker_errors),
		cmocka_unit_test_teardown(test_P5_cancel_releases_a_blocking_call_into_the_waiter,
					  check_worker_errors),
		cmocka_unit_test_teardown(test_P6_waits_from_the_task_or_its_pool_are_refused,
					  check_worker_errors),
		cmocka_unit_test_teardown(test_P7_higher_priority_first_fifo_among_equals,
					  check_worker_errors),
		cmocka_unit_test_teardown(test_P8_objects_made_in_a_task_get_events_timers_deletions,
					  check_worker_errors),
		cmocka_unit_test_teardown(test_P8_task_block_invokes_into_main_thread,
					  check_worker_errors),
		cmocka_unit_test_teardown(test_P9_threads_named_and_bounded, check_worker_errors),
		cmocka_unit_test_teardown(test_P9_idle_threads_expire_and_come_back,
					  check_worker_errors),
		cmocka_unit_test_teardown(test_P9_thread_with_an_active_timer_does_not_expire,
					  check_worker_errors),
		cmocka_unit_test_teardown(test_P10_wait_for_done, check_worker_errors),
		cmocka_unit_test_teardown(test_P10_shutdown_cancels_queued_and_running,
					  check_worker_errors),
		cmocka_unit_test_teardown(test_P10_shutdown_names_a_task_that_does_not_stop,
					  check_worker_errors),
		cmocka_unit_test_teardown(test_P10_shutdown_while_tasks_block_invoke_into_main,
					  check_worker_errors),
		cmocka_unit_test_teardown(test_P10_diag_handler_may_use_the_pool_during_shutdown,
					  check_worker_errors),
		cmocka_unit_test_teardown(test_P10_free_data_may_create_pools_during_main_shutdown,
					  check_worker_errors),
		cmocka_unit_test_teardown(test_P11_run_delivers_the_value_in_the_context_thread,
					  check_worker_errors),
		cmocka_unit_test_teardown(test_P11_map_keeps_input_order_reports_progress,
					  check_worker_errors),
		cmocka_unit_test_teardown(test_P11_map_first_error_and_cancel, check_worker_errors),
		cmocka_unit_test_teardown(test_P_stress_submit_cancel_wait_shutdown_from_threads,
					  check_worker_errors),
	};
	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	relay_main_shutdown(SUPPORT_TIMEOUT_MS);
	return rc;
}
