/*
 * task.c - a task's life: submit, its reports to the context's thread
 * (progress as the latest value, the end exactly once), cancel and wait.
 *
 * The end travels as an event kept inside the task (RELAY__EV_TASK), so
 * it needs no memory when it is sent: a task that ran always reports.
 * Progress travels as one small event at a time: while one is on its way
 * (pposted), a new value only replaces the copy it will read. The end's
 * delivery first delivers a value not yet read, so the last progress
 * always comes before the end, whichever threads posted them; a progress
 * event that arrives after the end finds `ended` and does nothing.
 *
 * References (refs): the pool's, from submit until the end is delivered
 * or dropped; the handle's (relay_task_release); one per progress event
 * on its way.
 */
#include "pool.h"

#include <string.h>
#include <time.h>

#define FRESH 4u   /* pmid: the slot holds a value not yet read */

static size_t round_up(size_t n, size_t a)
{
	return (n + a - 1) / a * a;
}

static void *pslot(struct relay_task *t, unsigned i)
{
	return t->pslots + (size_t)i * t->pstride;
}

struct relay_task *relay__task_new(relay_pool *p, const relay_task_ops *ops, unsigned njobs,
				   size_t extra, void **extra_out)
{
	const size_t A = _Alignof(max_align_t);
	size_t off_ev = round_up(sizeof(struct relay_task) + njobs * sizeof(struct relay__job), A);
	size_t off_res = round_up(off_ev + sizeof(struct relay__event), A);
	size_t rsize = ops && ops->result_size ? round_up(ops->result_size, A) : 0;
	size_t stride = ops && ops->progress && ops->progress_size ?
			round_up(ops->progress_size, A) : 0;
	size_t off_p = off_res + rsize;
	size_t off_x = off_p + 3 * stride;
	struct relay_task *t = relay__calloc(off_x + extra);
	if (!t)
		return NULL;
	unsigned char *base = (unsigned char *)t;
	atomic_init(&t->refs, 1);   /* the pool's */
	t->pool = p;
	t->ops = ops;
	if (ops) {
		t->progress = ops->progress;
		t->free_data = ops->free_data;
	}
	t->njobs = njobs;
	for (unsigned i = 0; i < njobs; i++)
		t->jobs[i].task = t;
	t->end_ev = (struct relay__event *)(base + off_ev);
	t->end_ev->kind = RELAY__EV_TASK;
	if (rsize)
		t->result = base + off_res;
	if (stride) {
		t->pslots = base + off_p;
		t->pstride = stride;
		t->pback = 0;
		atomic_init(&t->pmid, 1);
		t->pfront = 2;
	}
	if (extra_out)
		*extra_out = extra ? base + off_x : NULL;
	return t;
}

int relay__task_bind(struct relay_task *t, relay_object *context)
{
	char who[160];
	if (!context)
		return 0;
	int rc = relay__obj_check(context, "relay_pool_submit");
	if (rc < 0)
		return rc;
	struct relay__anchor *a = relay__anchor_get(context);
	if (!a)
		return RELAY_EDESTROYED;
	if (!relay__anchor_home(a)) {
		relay__anchor_unref(a);
		return relay__diag(RELAY_ENOTRUNNING, "relay_pool_submit: the context %s has no "
				   "thread to report to; move it to one first",
				   relay__describe(context, who, sizeof who));
	}
	t->ctx = a;
	return 0;
}

void relay__task_ref(struct relay_task *t)
{
	atomic_fetch_add_explicit(&t->refs, 1, memory_order_relaxed);
}

static void free_copy(const relay_payload_ops *ops, void *v)
{
	if (ops && ops->free)
		ops->free(v);
}

void relay__task_unref(struct relay_task *t)
{
	if (atomic_fetch_sub_explicit(&t->refs, 1, memory_order_acq_rel) != 1)
		return;
	/* Nobody reads it any more: a progress value never read is freed. */
	unsigned m = atomic_load(&t->pmid);
	if (t->pslots && (m & FRESH))
		free_copy(t->ops->progress_ops, pslot(t, m & 3));
	if (t->has_result)
		free_copy(t->ops->result_ops, t->result);
	if (t->ctx)
		relay__anchor_unref(t->ctx);
	relay__free(t);
}

void relay__task_discard(struct relay_task *t)
{
	t->free_data = NULL;   /* the caller keeps its data */
	relay__task_unref(t);
}

/* ---- the end ---- */

void relay__task_decide_locked(relay_pool *p, struct relay_task *t)
{
	t->phase = RELAY__TASK_RAN;
	if (atomic_load_explicit(&t->cancel, memory_order_relaxed)) {
		t->status = -ECANCELED;
		p->cancelled++;
	}
	p->completed++;
	if (p->waiters)
		pthread_cond_broadcast(&p->cond);
}

bool relay__task_job_done_locked(relay_pool *p, struct relay_task *t, int rc)
{
	t->jobs_running--;
	t->jobs_left--;
	if (t->kind == RELAY__TASK_KIND_RUN)
		t->status = rc;   /* fn's value, whatever it is, goes to then */
	else if (rc < 0 && t->status == 0)
		t->status = rc;   /* the first error */
	if (t->jobs_left != 0)
		return false;
	relay__task_decide_locked(p, t);
	return true;
}

/* The end without a context, or when the report cannot reach it: the data
 * and the result go here (callbacks skipped). */
static void end_here(struct relay_task *t)
{
	if (t->has_result) {
		free_copy(t->ops->result_ops, t->result);
		t->has_result = false;
	}
	if (t->free_data)
		t->free_data(t->data);
	t->free_data = NULL;
	atomic_store(&t->ended, true);
}

void relay__task_end(struct relay_task *t)
{
	if (t->status == -ECANCELED && t->has_result) {   /* discarded */
		free_copy(t->ops->result_ops, t->result);
		t->has_result = false;
	}
	if (!t->ctx) {
		end_here(t);
		relay__task_unref(t);   /* the pool's */
		return;
	}
	struct relay__event *ev = t->end_ev;
	ev->anchor = t->ctx;
	relay__anchor_ref(t->ctx);
	ev->u.invoke.data = t;
	/* A task that ran always reports: out of memory (a new ring chunk)
	 * delays the report, it does not lose it. */
	unsigned tries = 0;
	for (;;) {
		int rc = relay__post(t->ctx, ev, RELAY__POST_ALWAYS, NULL);
		if (rc == 0)
			return;
		if (rc != -ENOMEM) {   /* the context is gone: nobody to tell */
			relay__task_event_free(ev, rc);
			return;
		}
		if (tries++ == 0)
			relay__diag(-ENOMEM, "relay pool: out of memory reporting a task's end; "
				    "trying again every millisecond");
		struct timespec ts = { 0, 1000000 };
		nanosleep(&ts, NULL);
	}
}

/* ---- progress ---- */

static void deliver_latest(struct relay_task *t, relay_object *obj)
{
	if (!t->progress)
		return;
	if (t->kind == RELAY__TASK_KIND_MAP) {
		relay__map_report(t, obj);
		return;
	}
	if (!t->pslots || !(atomic_load(&t->pmid) & FRESH))
		return;
	unsigned m = atomic_exchange(&t->pmid, t->pfront);
	t->pfront = m & 3;
	void *v = pslot(t, t->pfront);
	t->progress(obj, t->data, v);
	free_copy(t->ops->progress_ops, v);
}

static void progress_deliver(void *arg)
{
	struct relay_task *t = arg;
	/* Cleared before reading (seq_cst, against the writer's exchange of
	 * pmid then of pposted): a value published after the read finds the
	 * flag clear and posts again. */
	atomic_store(&t->pposted, false);
	if (!atomic_load(&t->ended))
		deliver_latest(t, relay__anchor_obj(t->ctx));
	relay__task_unref(t);
}

static void progress_dropped(void *arg)
{
	relay__task_unref(arg);   /* pposted stays set: the context is gone */
}

int relay__task_post_progress(struct relay_task *t)
{
	if (atomic_exchange(&t->pposted, true))
		return 0;   /* one is on its way: it will read the latest */
	struct relay__event *ev = relay__event_new(RELAY__EV_INVOKE, 0, 0);
	if (!ev) {
		atomic_store(&t->pposted, false);
		return -ENOMEM;
	}
	relay__anchor_ref(t->ctx);
	ev->anchor = t->ctx;
	ev->u.invoke.fn = progress_deliver;
	ev->u.invoke.data = t;
	ev->u.invoke.free_data = progress_dropped;
	relay__task_ref(t);
	int rc = relay__post(t->ctx, ev, RELAY__POST_ALWAYS, NULL);
	if (rc == 0)
		return 0;
	ev->u.invoke.free_data = NULL;
	relay__event_free(ev, rc);
	relay__task_unref(t);
	if (rc != -ENOMEM)
		return 0;   /* the context is gone: its end is dropped too */
	atomic_store(&t->pposted, false);
	return -ENOMEM;
}

static int check_running_task(relay_task *t, const char *what)
{
	if (relay__tls.task != t)
		return relay__diag(RELAY_EWRONGTHREAD, "%s: called outside the task's run; call it "
				   "from the task's own run function", what);
	return 0;
}

int relay_task_progress(relay_task *t, const void *value)
{
	if (!t || !value)
		return -EINVAL;
	if (!t->pslots)
		return relay__diag(-EINVAL, "relay_task_progress: the task's kind has no progress "
				   "callback or no progress type");
	int rc = check_running_task(t, "relay_task_progress");
	if (rc < 0)
		return rc;
	void *dst = pslot(t, t->pback);
	const relay_payload_ops *po = t->ops->progress_ops;
	if (po && po->copy) {
		rc = po->copy(dst, value);
		if (rc < 0)
			return rc;
	} else {
		memcpy(dst, value, t->ops->progress_size);
	}
	unsigned old = atomic_exchange(&t->pmid, t->pback | FRESH);
	t->pback = old & 3;
	if (old & FRESH) {   /* never read: replaced */
		free_copy(po, pslot(t, t->pback));
	}
	return relay__task_post_progress(t);
}

int relay_task_set_result(relay_task *t, const void *value)
{
	if (!t || !value)
		return -EINVAL;
	if (!t->result)
		return relay__diag(-EINVAL, "relay_task_set_result: the task's kind has no result "
				   "type");
	int rc = check_running_task(t, "relay_task_set_result");
	if (rc < 0)
		return rc;
	const relay_payload_ops *ro = t->ops->result_ops;
	if (t->has_result) {
		free_copy(ro, t->result);
		t->has_result = false;
	}
	if (ro && ro->copy) {
		rc = ro->copy(t->result, value);
		if (rc < 0)
			return rc;
	} else {
		memcpy(t->result, value, t->ops->result_size);
	}
	t->has_result = true;
	return 0;
}

/* ---- the end's event (loop.c, event.c) ---- */

void relay__task_deliver(struct relay__tdata *self, struct relay__event *ev)
{
	(void)self;
	struct relay_task *t = ev->u.invoke.data;
	relay_object *obj = relay__anchor_obj(ev->anchor);
	deliver_latest(t, obj);   /* the last value comes before the end */
	atomic_store(&t->ended, true);
	/* The progress callback may have destroyed the context (P2). */
	obj = relay__anchor_obj(ev->anchor);
	if (!obj)
		return;
	switch (t->kind) {
	case RELAY__TASK_KIND_TASK:
		if (t->ops->finished)
			t->ops->finished(obj, t->data, t->status, t->has_result ? t->result : NULL);
		break;
	case RELAY__TASK_KIND_RUN:
		if (t->u.run.then)
			t->u.run.then(obj, t->data, t->status);
		break;
	case RELAY__TASK_KIND_MAP:
		relay__map_finished(t, obj);
		break;
	}
}

void relay__task_event_free(struct relay__event *ev, int status)
{
	(void)status;   /* delivered or not, what is left is the same */
	struct relay_task *t = ev->u.invoke.data;
	end_here(t);
	relay__anchor_unref(ev->anchor);
	ev->anchor = NULL;
	relay__task_unref(t);   /* the pool's */
}

/* ---- running ---- */

int relay__task_run_job(struct relay__job *job)
{
	struct relay_task *t = job->task;
	switch (t->kind) {
	case RELAY__TASK_KIND_RUN:
		return t->u.run.fn(t->data);
	case RELAY__TASK_KIND_MAP:
		return relay__map_run(t);
	default: {
		int rc = t->ops->run(t, t->data);
		return rc < 0 ? rc : 0;
	}
	}
}

/* ---- submitting ---- */

static int check_ops(const relay_task_ops *ops)
{
	if (!ops || !ops->run)
		return relay__diag(-EINVAL, "relay_pool_submit: the task has no run function");
	if (ops->progress_align > _Alignof(max_align_t) || ops->result_align > _Alignof(max_align_t))
		return relay__diag(-EINVAL, "relay_pool_submit: progress and result types may be "
				   "aligned to at most %zu bytes; pass a pointer instead",
				   (size_t)_Alignof(max_align_t));
	return 0;
}

int relay__task_submit(relay_pool *p, struct relay_task *t, relay_object *context,
		       bool has_callbacks, relay_task **out)
{
	int rc = 0;
	if (!context && has_callbacks)
		rc = relay__diag(-EINVAL, "relay_pool_submit: a task with progress or finished "
				 "callbacks needs a context object to deliver them in");
	if (rc == 0)
		rc = relay__task_bind(t, context);
	if (rc < 0) {
		relay__task_discard(t);
		return rc;
	}
	if (out)
		relay__task_ref(t);   /* the handle's */
	rc = relay__pool_enqueue(p, t);
	if (rc < 0) {
		if (out)
			relay__task_unref(t);
		relay__task_discard(t);
		return rc;
	}
	if (out)
		*out = t;
	return 0;
}

int relay_pool_submit(relay_pool *p, const relay_task_ops *ops, relay_object *context,
		      void *data, int priority, relay_task **out)
{
	if (out)
		*out = NULL;
	int rc = check_ops(ops);
	if (rc < 0)
		return rc;
	if (!p && !(p = relay_pool_default()))
		return -ENOMEM;
	struct relay_task *t = relay__task_new(p, ops, 1, 0, NULL);
	if (!t)
		return -ENOMEM;
	t->kind = RELAY__TASK_KIND_TASK;
	t->data = data;
	t->jobs[0].prio = priority;
	return relay__task_submit(p, t, context, ops->progress || ops->finished, out);
}

/* ---- through the handle ---- */

bool relay_task_cancelled(const relay_task *t)
{
	return t && atomic_load_explicit(&((relay_task *)t)->cancel, memory_order_relaxed);
}

relay_task *relay_task_current(void)
{
	return relay__tls.task;
}

#define CANCEL_BLOCKED_MAX RELAY__POOL_WAKE_MAX

int relay_task_cancel(relay_task *t)
{
	if (!t)
		return -EINVAL;
	relay_pool *p = t->pool;
	struct relay__completion *blocked[CANCEL_BLOCKED_MAX];
	size_t nb = 0;
	pthread_mutex_lock(&p->lock);
	if (t->phase == RELAY__TASK_RAN) {
		int rc = t->status == -ECANCELED ? 0 : -EALREADY;
		pthread_mutex_unlock(&p->lock);
		return rc;
	}
	atomic_store_explicit(&t->cancel, true, memory_order_relaxed);
	relay__pool_unqueue_locked(p, t);
	bool end = t->jobs_left == 0;
	if (end)
		relay__task_decide_locked(p, t);
	else
		relay__pool_collect_blocked_locked(p, t, blocked, &nb, CANCEL_BLOCKED_MAX);
	pthread_mutex_unlock(&p->lock);
	relay__pool_release_blocked(blocked, nb);
	if (end)
		relay__task_end(t);
	return 0;
}

int relay_task_wait(relay_task *t, int timeout_ms, int *status)
{
	if (!t)
		return -EINVAL;
	relay_pool *p = t->pool;
	int rc = relay__pool_check_wait(p, t, "relay_task_wait");
	if (rc < 0)
		return rc;
	uint64_t deadline = relay__pool_deadline(timeout_ms);
	pthread_mutex_lock(&p->lock);
	while (t->phase != RELAY__TASK_RAN)
		if (!relay__pool_wait_locked(p, deadline))
			break;
	rc = t->phase == RELAY__TASK_RAN ? 0 : -ETIMEDOUT;
	if (rc == 0 && status)
		*status = t->status;
	pthread_mutex_unlock(&p->lock);
	return rc;
}

int relay_task_cancel_and_wait(relay_task *t, int timeout_ms)
{
	if (!t)
		return -EINVAL;
	int rc = relay__pool_check_wait(t->pool, t, "relay_task_cancel_and_wait");
	if (rc < 0)
		return rc;
	relay_task_cancel(t);
	return relay_task_wait(t, timeout_ms, NULL);
}

void relay_task_release(relay_task *t)
{
	if (t)
		relay__task_unref(t);
}
