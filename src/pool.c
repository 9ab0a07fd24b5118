/*
 * pool.c - thread pools: the queue, the threads (started on demand, ended
 * after an idle period), waiting for work to be done, shutdown.
 *
 * A pool thread is a relay thread like any adopted one: between tasks and
 * while idle it runs relay loop passes, so objects a task created in it
 * get their events, timers and deletions (Qt's pool threads run no loop:
 * there they silently never come). An idle thread waits in a loop pass;
 * a submit that finds one takes it off the idle list and nudges it
 * (relay__loop_nudge: one wake-up per idle-to-busy transition, none while
 * threads are busy); a submit that finds none starts a thread, up to
 * max_threads.
 *
 * The lock (pool.h) is taken for every queue change; what it protects is
 * listed there. Threads are joinable: one that ends puts itself on the
 * dead list, joined by the next start or by shutdown, so that a pool's
 * end waits for its threads' relay records to be gone too.
 */
#define _GNU_SOURCE 1
#include "pool.h"

#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ---- the registry: every pool, for relay_main_shutdown ---- */

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t registry_cond = PTHREAD_COND_INITIALIZER;   /* a pool is not busy */
static relay_pool *registry;
static relay_pool *_Atomic default_pool;

static void registry_add(relay_pool *p)
{
	pthread_mutex_lock(&registry_lock);
	p->next_pool = registry;
	registry = p;
	pthread_mutex_unlock(&registry_lock);
}

static void registry_remove_locked(relay_pool *p)
{
	for (relay_pool **pp = &registry; *pp; pp = &(*pp)->next_pool)
		if (*pp == p) {
			*pp = p->next_pool;
			return;
		}
}

/* ---- time ---- */

uint64_t relay__pool_deadline(int timeout_ms)
{
	return timeout_ms < 0 ? 0 : relay__now_ns() + (uint64_t)timeout_ms * 1000000u;
}

bool relay__pool_wait_locked(relay_pool *p, uint64_t deadline_ns)
{
	p->waiters++;
	int rc = 0;
	if (!deadline_ns) {
		pthread_cond_wait(&p->cond, &p->lock);
	} else {
		struct timespec ts = { (time_t)(deadline_ns / 1000000000u),
				       (long)(deadline_ns % 1000000000u) };
		rc = pthread_cond_timedwait(&p->cond, &p->lock, &ts);
	}
	p->waiters--;
	return rc == 0 || relay__now_ns() < deadline_ns || !deadline_ns;
}

/* ---- creation ---- */

static int online_cpus(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	return n > 0 ? (int)n : 1;
}

static int pool_init(relay_pool *p, const relay_pool_config *cfg)
{
	pthread_condattr_t ca;
	if (pthread_condattr_init(&ca) != 0)
		return -ENOMEM;
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);   /* relay__now_ns's clock */
	int rc = pthread_cond_init(&p->cond, &ca);
	pthread_condattr_destroy(&ca);
	if (rc != 0)
		return -ENOMEM;
	pthread_mutex_init(&p->lock, NULL);
	relay__link_init(&p->queue);
	relay__link_init(&p->workers);
	relay__link_init(&p->idle);
	snprintf(p->name, sizeof p->name, "%s", cfg && cfg->name ? cfg->name : "pool");
	p->max_threads = cfg && cfg->max_threads > 0 ? cfg->max_threads : online_cpus();
	p->expiry_ms = !cfg || cfg->expiry_ms == 0 ? 30000 : cfg->expiry_ms;
	p->stack_size = cfg ? cfg->stack_size : 0;
	return 0;
}

int relay_pool_create(const relay_pool_config *cfg, relay_pool **out)
{
	if (!out)
		return -EINVAL;
	*out = NULL;
	if (cfg && cfg->max_threads < 0)
		return relay__diag(-EINVAL, "relay_pool_create: max_threads is %d; give 0 (one "
				   "thread per CPU) or a positive count", cfg->max_threads);
	relay_pool *p = relay__calloc(sizeof *p);
	if (!p)
		return -ENOMEM;
	int rc = pool_init(p, cfg);
	if (rc < 0) {
		relay__free(p);
		return rc;
	}
	registry_add(p);
	*out = p;
	return 0;
}

relay_pool *relay_pool_default(void)
{
	relay_pool *p = atomic_load_explicit(&default_pool, memory_order_acquire);
	if (p)
		return p;
	relay_pool_config cfg = { .name = "relay-pool" };
	if (relay_pool_create(&cfg, &p) < 0)
		return NULL;
	relay_pool *expected = NULL;
	if (!atomic_compare_exchange_strong(&default_pool, &expected, p)) {
		relay_pool_destroy(p);   /* another thread made it first */
		return expected;
	}
	return p;
}

/* ---- the queue: by priority, then FIFO ---- */

static void queue_insert_locked(relay_pool *p, struct relay__job *j)
{
	/* Usually all tasks have one priority: the tail is the place. */
	struct relay__link *after = p->queue.prev;
	while (after != &p->queue &&
	       RELAY__CONTAINER(after, struct relay__job, link)->prio < j->prio)
		after = after->prev;
	relay__link_after(after, &j->link);
	p->queued++;
}

static void queue_unlink_locked(relay_pool *p, struct relay__job *j)
{
	relay__link_remove(&j->link);
	p->queued--;
}

void relay__pool_unqueue_locked(relay_pool *p, struct relay_task *t)
{
	for (unsigned i = 0; i < t->njobs; i++)
		if (relay__link_linked(&t->jobs[i].link)) {
			queue_unlink_locked(p, &t->jobs[i]);
			t->jobs_left--;
		}
}

static struct relay__job *queue_pop_locked(relay_pool *p)
{
	if (p->queue.next == &p->queue)
		return NULL;
	struct relay__job *j = RELAY__CONTAINER(p->queue.next, struct relay__job, link);
	queue_unlink_locked(p, j);
	struct relay_task *t = j->task;
	t->jobs_running++;
	if (t->phase == RELAY__TASK_QUEUED)
		t->phase = RELAY__TASK_RUNNING;
	p->running++;
	return j;
}

/* ---- idle threads ---- */

static void idle_push_locked(relay_pool *p, struct relay__worker *w)
{
	relay__link_after(&p->idle, &w->idle);
	p->idle_n++;
}

static void idle_remove_locked(relay_pool *p, struct relay__worker *w)
{
	relay__link_remove(&w->idle);
	p->idle_n--;
}

/* The most recently idle thread (its cache is warm; the others may
 * expire), taken off the list, its record referenced: the caller nudges
 * it after unlocking (nudge_put). Once unlocked, the thread may end and
 * its record go at any moment (it sees it was taken, finds no job, and a
 * stopping pool lets it end): the reference keeps the record for the
 * nudge. */
static struct relay__tdata *idle_take_locked(relay_pool *p)
{
	if (p->idle.next == &p->idle)
		return NULL;
	struct relay__worker *w = RELAY__CONTAINER(p->idle.next, struct relay__worker, idle);
	if (!w->td)
		return NULL;
	idle_remove_locked(p, w);
	relay__tdata_ref(w->td);
	return w->td;
}

static void nudge_put(struct relay__tdata *td)
{
	relay__loop_nudge(td);
	relay__tdata_unref(td);
}

/* ---- the threads ---- */

/* Joins the threads that ended (outside the lock: a join waits for the
 * thread's relay record to be released, which runs relay code). */
static void join_dead(relay_pool *p)
{
	pthread_mutex_lock(&p->lock);
	struct relay__worker *dead = p->dead;
	p->dead = NULL;
	pthread_mutex_unlock(&p->lock);
	while (dead) {
		struct relay__worker *w = dead;
		dead = w->dead_next;
		pthread_join(w->pthread, NULL);
		relay__free(w);
	}
}

static bool expired(relay_pool *p, uint64_t idle_since, uint64_t now)
{
	return p->expiry_ms >= 0 && now - idle_since >= (uint64_t)p->expiry_ms * 1000000u;
}

static int idle_timeout(relay_pool *p, uint64_t idle_since, uint64_t now)
{
	if (p->expiry_ms < 0)
		return -1;
	uint64_t end = idle_since + (uint64_t)p->expiry_ms * 1000000u;
	return now >= end ? 0 : (int)((end - now + 999999u) / 1000000u);
}

/* Between two jobs, unlocked: the previous job's end to report, and the
 * events, timers and deletions of objects living here (only when there
 * are some: a pass costs more than an empty task). */
static void between_jobs(struct relay__tdata *self, struct relay_task *ended, bool pass)
{
	if (ended)
		relay__task_end(ended);
	if (pass)
		relay__loop_pass(self, 0);
}

/* One pool thread: tasks while there are any, relay loop passes between
 * them and while idle, until the idle period expires with nothing living
 * here that needs the loop, or the pool stops. */
static void *worker_main(void *arg)
{
	struct relay__worker *w = arg;
	relay_pool *p = w->pool;
	pthread_setname_np(pthread_self(), w->name);
	struct relay__tdata *self = relay__tdata_current();   /* adopts it, by that name */
	relay__tls.worker = w;
	uint64_t idle_since = relay__now_ns();   /* 0 while busy */
	pthread_mutex_lock(&p->lock);
	w->td = self;
	struct relay_task *ended = NULL;   /* decided, not yet reported */
	bool pass = false;
	for (;;) {
		/* One lock round per job: the previous one's end and the next
		 * one's start are decided together; the end is reported right
		 * after, before the next job runs. */
		struct relay__job *j = queue_pop_locked(p);
		if (j) {
			struct relay_task *t = j->task;
			w->task = t;
			pthread_mutex_unlock(&p->lock);
			between_jobs(self, ended, pass);
			relay__tls.task = t;
			int rc = relay__task_run_job(j);
			relay__tls.task = NULL;
			pthread_mutex_lock(&p->lock);
			w->task = NULL;
			p->running--;
			ended = relay__task_job_done_locked(p, t, rc) ? t : NULL;
			pass = self && relay__loop_keeps(self);
			idle_since = 0;
			continue;
		}
		if (ended || pass) {   /* nothing queued: report now */
			pthread_mutex_unlock(&p->lock);
			between_jobs(self, ended, pass);
			ended = NULL;
			pass = false;
			pthread_mutex_lock(&p->lock);
			continue;
		}
		if (!idle_since)
			idle_since = relay__now_ns();
		if (p->stopping)
			break;
		uint64_t now = relay__now_ns();
		if (self && expired(p, idle_since, now) && !relay__loop_keeps(self))
			break;
		idle_push_locked(p, w);
		if (self)
			atomic_store(&self->nudge, false);
		pthread_mutex_unlock(&p->lock);
		if (self) {
			/* Expired but kept by its loop (timers, watchers): until
			 * something happens there, which runs a pass. */
			int to = idle_timeout(p, idle_since, now);
			relay__loop_pass(self, to == 0 ? -1 : to);
		} else {   /* out of memory for a record: try again soon */
			struct timespec ts = { 0, 1000000 };
			nanosleep(&ts, NULL);
			self = relay__tdata_current();
		}
		pthread_mutex_lock(&p->lock);
		w->td = self;
		if (relay__link_linked(&w->idle))
			idle_remove_locked(p, w);   /* nobody took it */
	}
	relay__link_remove(&w->all);
	p->threads--;
	w->dead_next = p->dead;
	p->dead = w;
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->lock);
	relay__tls.worker = NULL;
	return NULL;   /* relay's end of an adopted thread runs now, before the join */
}

/* Starts a thread for a slot the caller reserved (threads++). Returns 0 or
 * -EAGAIN/-ENOMEM with the slot given back. */
static int start_thread(relay_pool *p, int index)
{
	join_dead(p);
	struct relay__worker *w = relay__calloc(sizeof *w);
	int rc = w ? 0 : -ENOMEM;
	if (w) {
		w->pool = p;
		snprintf(w->name, sizeof w->name, "%.*s-%d", 10, p->name, index);
		pthread_attr_t attr;
		pthread_attr_init(&attr);
		if (p->stack_size)
			pthread_attr_setstacksize(&attr, p->stack_size);
		pthread_mutex_lock(&p->lock);
		relay__link_after(&p->workers, &w->all);
		pthread_mutex_unlock(&p->lock);
		rc = pthread_create(&w->pthread, &attr, worker_main, w) == 0 ? 0 : -EAGAIN;
		pthread_attr_destroy(&attr);
	}
	if (rc == 0)
		return 0;
	pthread_mutex_lock(&p->lock);
	if (w)
		relay__link_remove(&w->all);
	p->threads--;
	pthread_mutex_unlock(&p->lock);
	relay__free(w);
	return rc;
}

int relay__pool_enqueue(relay_pool *p, struct relay_task *t)
{
	pthread_mutex_lock(&p->lock);
	if (p->shut) {
		pthread_mutex_unlock(&p->lock);
		return relay__diag(-ESHUTDOWN, "relay_pool_submit: pool '%s' is shut down; submit "
				   "to another pool", p->name);
	}
	for (unsigned i = 0; i < t->njobs; i++)
		queue_insert_locked(p, &t->jobs[i]);
	t->jobs_left = t->njobs;
	p->submitted++;
	/* One thread per job at most: an idle one, else a new one. */
	struct relay__tdata *wake[RELAY__POOL_WAKE_MAX];
	unsigned nwake = 0, nstart = 0;
	int first_index = 0;
	for (unsigned i = 0; i < t->njobs && nwake < RELAY__POOL_WAKE_MAX; i++) {
		struct relay__tdata *td = idle_take_locked(p);
		if (td) {
			wake[nwake++] = td;
		} else if (p->threads < p->max_threads) {
			if (!nstart)
				first_index = p->spawned + 1;
			p->threads++;
			p->spawned++;
			nstart++;
		} else {
			break;
		}
	}
	if (p->threads > p->peak)
		p->peak = p->threads;
	pthread_mutex_unlock(&p->lock);
	for (unsigned i = 0; i < nwake; i++)
		nudge_put(wake[i]);
	int rc = 0;
	for (unsigned i = 0; i < nstart; i++) {
		int r = start_thread(p, first_index + (int)i);
		if (r < 0)
			rc = r;
	}
	if (rc == 0)
		return 0;
	/* No thread could be started: if none is there to take the jobs, take
	 * them back (the caller keeps its data). */
	pthread_mutex_lock(&p->lock);
	bool orphaned = p->threads == 0 && t->jobs_left == t->njobs && t->jobs_running == 0;
	if (orphaned) {
		relay__pool_unqueue_locked(p, t);
		p->submitted--;
		if (p->waiters)   /* a wait_for_done that saw it queued */
			pthread_cond_broadcast(&p->cond);
	}
	pthread_mutex_unlock(&p->lock);
	if (!orphaned)
		return 0;
	return relay__diag(rc, "relay_pool_submit: pool '%s' could not start a thread (%s)",
			   p->name, relay_strerror(rc));
}

/* ---- blocking calls from pool threads (post.c) ---- */

bool relay__pool_block_enter(struct relay__completion *c)
{
	struct relay__worker *w = relay__tls.worker;
	relay_pool *p = w->pool;
	pthread_mutex_lock(&p->lock);
	bool cancelled = atomic_load_explicit(&relay__tls.task->cancel, memory_order_relaxed);
	if (!cancelled)
		w->blocked = c;
	pthread_mutex_unlock(&p->lock);
	if (!cancelled)
		return true;
	if (relay__completion_claim(c))
		return false;   /* the event, met later, is skipped */
	return true;   /* the receiver claimed it first: it runs, wait for it */
}

void relay__pool_block_leave(void)
{
	struct relay__worker *w = relay__tls.worker;
	pthread_mutex_lock(&w->pool->lock);
	w->blocked = NULL;
	pthread_mutex_unlock(&w->pool->lock);
}

void relay__pool_collect_blocked_locked(relay_pool *p, struct relay_task *t,
					struct relay__completion **list, size_t *n, size_t cap)
{
	for (struct relay__link *l = p->workers.next; l != &p->workers && *n < cap;
	     l = l->next) {
		struct relay__worker *w = RELAY__CONTAINER(l, struct relay__worker, all);
		if (w->blocked && (!t || w->task == t)) {
			/* released once: the worker's leave finds it gone */
			atomic_fetch_add(&w->blocked->refs, 1);
			list[(*n)++] = w->blocked;
			w->blocked = NULL;
		}
	}
}

void relay__pool_release_blocked(struct relay__completion **list, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (relay__completion_claim(list[i]))
			relay__completion_signal(list[i], -ECANCELED, 0);
		relay__completion_unref(list[i]);
	}
}

/* ---- waiting ---- */

int relay__pool_check_wait(relay_pool *p, struct relay_task *t, const char *what)
{
	if (t && relay__tls.task == t)
		return relay__diag(RELAY_EWAITSELF, "%s: called from the task itself, which would "
				   "wait for itself; return from run instead", what);
	struct relay__worker *w = relay__tls.worker;
	if (w && w->pool == p)
		return relay__diag(RELAY_EDEADLOCK, "%s: called from thread '%s' of pool '%s', "
				   "which may be the one the wait needs; report back to a context "
				   "object instead, or give the awaited work another pool",
				   what, w->name, p->name);
	return 0;
}

int relay_pool_wait_for_done(relay_pool *p, int timeout_ms)
{
	if (!p)
		return -EINVAL;
	int rc = relay__pool_check_wait(p, NULL, "relay_pool_wait_for_done");
	if (rc < 0)
		return rc;
	uint64_t deadline = relay__pool_deadline(timeout_ms);
	pthread_mutex_lock(&p->lock);
	while ((p->queued || p->running) && rc == 0)
		if (!relay__pool_wait_locked(p, deadline))
			rc = -ETIMEDOUT;
	if (rc < 0 && !p->queued && !p->running)
		rc = 0;
	pthread_mutex_unlock(&p->lock);
	return rc;
}

/* ---- shutdown ---- */

#define SHUTDOWN_BATCH 64

/* Cancels what is queued and running, in batches (no allocation: the
 * ends and the blocked calls collected are carried out after unlock). */
static void cancel_everything(relay_pool *p)
{
	for (;;) {
		struct relay_task *ends = NULL;
		struct relay__completion *blocked[SHUTDOWN_BATCH];
		size_t nb = 0;
		unsigned n = 0;
		pthread_mutex_lock(&p->lock);
		while (p->queue.next != &p->queue && n < SHUTDOWN_BATCH) {
			struct relay_task *t =
				RELAY__CONTAINER(p->queue.next, struct relay__job, link)->task;
			atomic_store_explicit(&t->cancel, true, memory_order_relaxed);
			relay__pool_unqueue_locked(p, t);
			if (t->jobs_left == 0) {
				relay__task_decide_locked(p, t);
				t->end_next = ends;
				ends = t;
			}
			n++;
		}
		for (struct relay__link *l = p->workers.next; l != &p->workers; l = l->next) {
			struct relay__worker *w = RELAY__CONTAINER(l, struct relay__worker, all);
			if (w->task)
				atomic_store_explicit(&w->task->cancel, true, memory_order_relaxed);
		}
		relay__pool_collect_blocked_locked(p, NULL, blocked, &nb, SHUTDOWN_BATCH);
		bool more = p->queue.next != &p->queue || nb == SHUTDOWN_BATCH;
		struct relay__tdata *wake[SHUTDOWN_BATCH];
		size_t nw = 0;
		while (nw < SHUTDOWN_BATCH) {
			struct relay__tdata *td = idle_take_locked(p);
			if (!td)
				break;
			wake[nw++] = td;
		}
		pthread_mutex_unlock(&p->lock);
		for (size_t i = 0; i < nw; i++)
			nudge_put(wake[i]);
		relay__pool_release_blocked(blocked, nb);
		while (ends) {
			struct relay_task *t = ends;
			ends = t->end_next;
			relay__task_end(t);
		}
		if (!more)
			return;
	}
}

#define STRAGGLERS_NAMED 16

/* The names are copied under the lock and reported after it: the
 * diagnostic handler is user code. */
static void name_stragglers(relay_pool *p, int timeout_ms)
{
	char names[STRAGGLERS_NAMED][16];
	int n = 0, more = 0;
	pthread_mutex_lock(&p->lock);
	for (struct relay__link *l = p->workers.next; l != &p->workers; l = l->next) {
		struct relay__worker *w = RELAY__CONTAINER(l, struct relay__worker, all);
		if (!w->task && !w->blocked)
			continue;
		if (n < STRAGGLERS_NAMED)
			memcpy(names[n++], w->name, sizeof names[0]);
		else
			more++;
	}
	pthread_mutex_unlock(&p->lock);
	for (int i = 0; i < n; i++)
		relay__diag(-ETIMEDOUT, "relay_pool_shutdown: thread '%s' of pool '%s' still runs "
			    "a task after %d ms; its run must poll relay_task_cancelled and return",
			    names[i], p->name, timeout_ms);
	if (more)
		relay__diag(-ETIMEDOUT, "relay_pool_shutdown: and %d more threads of pool '%s'",
			    more, p->name);
}

int relay_pool_shutdown(relay_pool *p, int timeout_ms)
{
	if (!p)
		return -EINVAL;
	int rc = relay__pool_check_wait(p, NULL, "relay_pool_shutdown");
	if (rc < 0)
		return rc;
	pthread_mutex_lock(&p->lock);
	p->shut = true;
	p->stopping = true;
	pthread_mutex_unlock(&p->lock);
	cancel_everything(p);
	uint64_t deadline = relay__pool_deadline(timeout_ms);
	pthread_mutex_lock(&p->lock);
	while (p->threads > 0 && rc == 0) {
		/* a thread that went idle meanwhile is nudged to end */
		struct relay__tdata *td = idle_take_locked(p);
		if (td) {
			pthread_mutex_unlock(&p->lock);
			nudge_put(td);
			pthread_mutex_lock(&p->lock);
			continue;
		}
		if (!relay__pool_wait_locked(p, deadline))
			rc = -ETIMEDOUT;
	}
	if (p->threads == 0)
		rc = 0;
	pthread_mutex_unlock(&p->lock);
	if (rc < 0)
		name_stragglers(p, timeout_ms);
	join_dead(p);
	return rc;
}

int relay_pool_destroy(relay_pool *p)
{
	if (!p)
		return -EINVAL;
	if (atomic_load(&default_pool) == p)
		return relay__diag(-EINVAL, "relay_pool_destroy: the default pool is the "
				   "process's; shut it down with relay_pool_shutdown");
	int rc = relay_pool_shutdown(p, -1);
	if (rc < 0)
		return rc;
	pthread_mutex_lock(&registry_lock);
	while (p->busy)   /* relay_main_shutdown is shutting it down */
		pthread_cond_wait(&registry_cond, &registry_lock);
	registry_remove_locked(p);
	pthread_mutex_unlock(&registry_lock);
	pthread_cond_destroy(&p->cond);
	pthread_mutex_destroy(&p->lock);
	relay__free(p);
	return 0;
}

/* One pool at a time, each marked busy (under the registry lock) while it
 * is shut down without that lock: user code (free_data, diagnostics) runs
 * in a shutdown and may create or destroy pools; a destroy waits until
 * its pool is not busy. */
void relay__pools_shutdown(int timeout_ms)
{
	static unsigned rounds;
	pthread_mutex_lock(&registry_lock);
	unsigned round = ++rounds;
	for (;;) {
		relay_pool *p = registry;
		while (p && (p->shutdown_round == round ||
			     (relay__tls.worker && relay__tls.worker->pool == p)))
			p = p->next_pool;
		if (!p)
			break;
		p->shutdown_round = round;
		p->busy++;
		pthread_mutex_unlock(&registry_lock);
		relay_pool_shutdown(p, timeout_ms);
		if (atomic_load(&default_pool) == p) {   /* the process's: usable again */
			pthread_mutex_lock(&p->lock);
			p->shut = false;
			p->stopping = false;
			pthread_mutex_unlock(&p->lock);
		}
		pthread_mutex_lock(&registry_lock);
		p->busy--;
		pthread_cond_broadcast(&registry_cond);
	}
	pthread_mutex_unlock(&registry_lock);
}

int relay_pool_stats_get(const relay_pool *cp, relay_pool_stats *out)
{
	if (!cp || !out)
		return -EINVAL;
	relay_pool *p = (relay_pool *)cp;
	pthread_mutex_lock(&p->lock);
	*out = (relay_pool_stats){
		.threads = p->threads, .idle = p->idle_n, .peak_threads = p->peak,
		.queued = p->queued, .running = p->running, .submitted = p->submitted,
		.completed = p->completed, .cancelled = p->cancelled,
		.threads_started = (uint64_t)p->spawned,
	};
	pthread_mutex_unlock(&p->lock);
	return 0;
}
