/*
 * map.c - QtConcurrent's conveniences: relay_run (a function on the pool,
 * its value to a context's thread) and relay_pool_map (a parallel map).
 *
 * A map is one task with one job per thread it may use; each job claims
 * the next chunk (an atomic counter) until none is left, so the chunks go
 * to whichever threads are free and out[i] is written by whoever claimed
 * i's chunk: the order of out is the order of in, whatever the timing.
 * Progress is the count of items done, read by the context's thread when
 * the progress event arrives (nothing to copy: a counter).
 */
#include "pool.h"

#include <string.h>

struct relay__map {
	const unsigned char *in;
	unsigned char *out;
	size_t in_size, out_size, count, chunk, nchunks;
	int (*item)(const void *in, void *out, void *user);
	atomic_size_t next;     /* the next chunk to claim */
	atomic_size_t done;     /* items done */
	atomic_int error;       /* the first item error */
	void (*finished)(relay_object *context, void *user, int status);
	size_t reported;        /* items done at the last progress (context's thread) */
};

int relay__map_run(struct relay_task *t)
{
	struct relay__map *m = t->u.map;
	for (;;) {
		if (atomic_load_explicit(&t->cancel, memory_order_relaxed) ||
		    atomic_load_explicit(&m->error, memory_order_relaxed))
			break;
		size_t c = atomic_fetch_add_explicit(&m->next, 1, memory_order_relaxed);
		if (c >= m->nchunks)
			break;
		size_t lo = c * m->chunk, hi = lo + m->chunk < m->count ? lo + m->chunk : m->count;
		size_t i = lo;
		for (; i < hi; i++) {
			if (atomic_load_explicit(&t->cancel, memory_order_relaxed))
				break;
			int rc = m->item(m->in + i * m->in_size, m->out + i * m->out_size, t->data);
			if (rc < 0) {
				int none = 0;
				atomic_compare_exchange_strong(&m->error, &none, rc);
				break;
			}
		}
		atomic_fetch_add_explicit(&m->done, i - lo, memory_order_relaxed);
		if (t->progress)
			relay__task_post_progress(t);   /* no memory: the end reports it */
		if (i < hi)
			break;
	}
	return atomic_load(&m->error);
}

void relay__map_report(struct relay_task *t, relay_object *context)
{
	struct relay__map *m = t->u.map;
	relay_map_progress v = { atomic_load_explicit(&m->done, memory_order_relaxed), m->count };
	if (v.done == m->reported)
		return;
	m->reported = v.done;
	t->progress(context, t->data, &v);
}

void relay__map_finished(struct relay_task *t, relay_object *context)
{
	if (t->u.map->finished)
		t->u.map->finished(context, t->data, t->status);
}

int relay_pool_map(relay_pool *p, const relay_map_ops *mops, relay_object *context,
		   const void *in, size_t in_size, void *out, size_t out_size, size_t count,
		   void *user, relay_task **task)
{
	if (task)
		*task = NULL;
	if (!mops || !mops->item)
		return relay__diag(-EINVAL, "relay_pool_map: no item function");
	if (count && (!in_size || !out_size || !in || !out))
		return relay__diag(-EINVAL, "relay_pool_map: %zu items need an input and an "
				   "output array of elements of a non-zero size", count);
	if (!p && !(p = relay_pool_default()))
		return -ENOMEM;
	size_t threads = (size_t)p->max_threads;
	size_t chunk = mops->chunk ? mops->chunk : count / (threads * 8);
	if (chunk == 0)
		chunk = 1;
	size_t nchunks = count ? (count - 1) / chunk + 1 : 0;
	size_t njobs = nchunks < threads ? nchunks : threads;
	if (njobs > RELAY__POOL_WAKE_MAX)
		njobs = RELAY__POOL_WAKE_MAX;
	if (njobs == 0)
		njobs = 1;   /* an empty map still ends, in order */
	void *extra;
	struct relay_task *t = relay__task_new(p, NULL, (unsigned)njobs, sizeof(struct relay__map),
					       &extra);
	if (!t)
		return -ENOMEM;
	t->progress = (void (*)(relay_object *, void *, const void *))mops->progress;
	t->free_data = mops->free_user;
	struct relay__map *m = extra;
	m->in = in;
	m->out = out;
	m->in_size = in_size;
	m->out_size = out_size;
	m->count = count;
	m->chunk = chunk;
	m->nchunks = nchunks;
	m->item = mops->item;
	m->finished = mops->finished;
	t->kind = RELAY__TASK_KIND_MAP;
	t->u.map = m;
	t->data = user;
	return relay__task_submit(p, t, context, mops->progress || mops->finished, task);
}

int relay_pool_run(relay_pool *p, relay_object *context, int (*fn)(void *data), void *data,
		   void (*then)(relay_object *context, void *data, int result),
		   void (*free_data)(void *data), relay_task **out)
{
	if (out)
		*out = NULL;
	if (!fn)
		return relay__diag(-EINVAL, "relay_run: no function to run");
	if (!p && !(p = relay_pool_default()))
		return -ENOMEM;
	struct relay_task *t = relay__task_new(p, NULL, 1, 0, NULL);
	if (!t)
		return -ENOMEM;
	t->free_data = free_data;
	t->kind = RELAY__TASK_KIND_RUN;
	t->u.run.fn = fn;
	t->u.run.then = then;
	t->data = data;
	return relay__task_submit(p, t, context, then != NULL, out);
}
