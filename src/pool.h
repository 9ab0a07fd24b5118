/*
 * pool.h - private to pool.c (threads, the queue, waits, shutdown), task.c
 * (a task's life and its reports) and map.c (relay_pool_map, relay_run).
 *
 * One lock per pool, a leaf (internal.h's level 3): it guards the queue,
 * the workers' lists and every task's phase and job counts. No user code
 * and no allocation run under it; a task's end (its report, free_data) is
 * decided under it and carried out after it is released.
 *
 * Who runs what at the same time on a task:
 *   - submit (any thread) creates it and queues its jobs: nobody else
 *     sees it before the lock is released;
 *   - a worker takes a job (lock), runs it (no lock: run reads the cancel
 *     flag, writes its progress slots and result), ends it (lock);
 *   - cancel, wait, shutdown (any thread) read and change phase and jobs
 *     under the lock; cancel sets the flag (relaxed for the task's polls;
 *     the lock orders it against the job's end);
 *   - the context's thread delivers progress and the end (no lock: the
 *     progress slots are a single-writer, single-reader triple buffer,
 *     the result is written before the end is decided, under the lock,
 *     and read after its event crossed a queue).
 */
#ifndef RELAY_POOL_H
#define RELAY_POOL_H

#include "internal.h"

/* A map has at most this many jobs (one per thread it may use), and a
 * submit wakes at most this many idle threads. */
#define RELAY__POOL_WAKE_MAX 64

/* An intrusive, circular, doubly linked list around a sentinel (no NULL
 * cases) for the pool's queue, idle threads and threads; a node that is in
 * no list has next NULL (zeroed memory is "not linked"). */
struct relay__link {
	struct relay__link *prev, *next;
};
static inline void relay__link_init(struct relay__link *head)
{
	head->prev = head->next = head;
}
static inline bool relay__link_linked(const struct relay__link *n)
{
	return n->next != NULL;
}
static inline void relay__link_after(struct relay__link *at, struct relay__link *n)
{
	n->prev = at;
	n->next = at->next;
	at->next->prev = n;
	at->next = n;
}
static inline void relay__link_remove(struct relay__link *n)
{
	n->prev->next = n->next;
	n->next->prev = n->prev;
	n->prev = n->next = NULL;
}
#define RELAY__CONTAINER(ptr, T, member) ((T *)(void *)((char *)(ptr) - offsetof(T, member)))

/* One unit of work in a pool's queue: a task has one, a map several. */
struct relay__job {
	struct relay__link link;          /* the queue, by priority then age; lock */
	struct relay_task *task;
	int prio;
};

struct relay__worker {
	relay_pool *pool;
	struct relay__tdata *td;          /* its thread's record (lock) */
	struct relay__link all;           /* the pool's live workers; lock */
	struct relay__link idle;          /* linked while waiting for a task; lock */
	struct relay__worker *dead_next;  /* ended, to be joined; lock */
	struct relay_task *task;          /* running now; lock */
	struct relay__completion *blocked;   /* its blocking call; lock */
	pthread_t pthread;
	char name[16];
};

enum relay__task_phase { RELAY__TASK_QUEUED, RELAY__TASK_RUNNING, RELAY__TASK_RAN };
/* What kind of work: a task (ops), relay_run (fn, then), a map. */
enum relay__task_kind { RELAY__TASK_KIND_TASK, RELAY__TASK_KIND_RUN, RELAY__TASK_KIND_MAP };

struct relay__map;

struct relay_task {
	atomic_int refs;                  /* handle, the pool's (until the end is
					   * delivered or dropped), progress events */
	atomic_bool cancel;               /* polled by run */
	relay_pool *pool;
	const relay_task_ops *ops;        /* a task's (submit's caller keeps it valid);
					   * NULL for relay_run and maps */
	void (*progress)(relay_object *context, void *data, const void *value);
	void (*free_data)(void *data);    /* NULL once run (or given back) */
	void *data;
	struct relay__anchor *ctx;        /* the context (counted), NULL for none */
	/* lock: */
	int phase;                        /* relay__task_phase */
	unsigned jobs_left;               /* queued or running */
	unsigned jobs_running;
	int status;                       /* the end's, once RAN */
	struct relay_task *end_next;      /* ends decided, to carry out after unlock */
	/* the end's report, inside the task (it cannot fail for memory) */
	struct relay__event *end_ev;
	/* the result: written by run's thread, read by the end */
	void *result;
	bool has_result;
	/* progress: a triple buffer of copies; the writer owns back, the
	 * reader front, mid is exchanged (bit 2: fresh, not yet read) */
	unsigned char *pslots;
	size_t pstride;
	unsigned pback, pfront;
	atomic_uint pmid;
	atomic_bool pposted;              /* a progress event is on its way */
	atomic_bool ended;                /* the end was delivered: later progress is late */
	int kind;                         /* relay__task_kind */
	union {
		struct {                  /* relay_run */
			int (*fn)(void *data);
			void (*then)(relay_object *context, void *data, int result);
		} run;
		struct relay__map *map;   /* relay_pool_map */
	} u;
	unsigned njobs;
	struct relay__job jobs[];
};

struct relay_pool {
	pthread_mutex_t lock;
	pthread_cond_t cond;              /* a task ran, a thread ended (broadcast) */
	char name[32];
	int max_threads, expiry_ms;
	size_t stack_size;
	/* lock: */
	bool shut;                        /* submissions refused */
	bool stopping;                    /* threads end instead of idling */
	struct relay__link queue;         /* relay__job.link */
	struct relay__link workers;       /* relay__worker.all */
	struct relay__link idle;          /* relay__worker.idle, the latest first */
	struct relay__worker *dead;
	int threads, idle_n, peak, spawned, waiters;
	uint64_t queued, running, submitted, completed, cancelled;
	struct relay_pool *next_pool;     /* the registry (pool.c); registry lock: */
	unsigned shutdown_round;          /* relay_main_shutdown's that did it */
	int busy;                         /* being shut down by it */
};

/* ---- pool.c ---- */
/* Queue the task's jobs; wakes or starts a thread. -ESHUTDOWN, -EAGAIN. */
int relay__pool_enqueue(relay_pool *p, struct relay_task *t);
/* Under the lock: takes the task's queued jobs out of the queue. */
void relay__pool_unqueue_locked(relay_pool *p, struct relay_task *t);
/* Under the lock: releases (after unlock) the blocking calls of the
 * workers running t, collected on *list with a reference each. */
void relay__pool_collect_blocked_locked(relay_pool *p, struct relay_task *t,
					struct relay__completion **list, size_t *n, size_t cap);
void relay__pool_release_blocked(struct relay__completion **list, size_t n);
/* Waits on the pool's condition until deadline_ns (0: none); lock held.
 * Returns false on timeout. */
bool relay__pool_wait_locked(relay_pool *p, uint64_t deadline_ns);
uint64_t relay__pool_deadline(int timeout_ms);
/* Refused waits: from the task itself, or from any thread of the pool. */
int relay__pool_check_wait(relay_pool *p, struct relay_task *t, const char *what);

/* ---- task.c ---- */
/* ops: a task's (its sizes give the progress slots and the result), or
 * NULL. */
struct relay_task *relay__task_new(relay_pool *p, const relay_task_ops *ops, unsigned njobs,
				   size_t extra, void **extra_out);
/* Takes the context's anchor; RELAY_EDESTROYED etc. */
int relay__task_bind(struct relay_task *t, relay_object *context);
void relay__task_ref(struct relay_task *t);
void relay__task_unref(struct relay_task *t);
/* Frees a task that was never queued (submit failed): free_data not run. */
void relay__task_discard(struct relay_task *t);
/* A worker ran one of its jobs (rc: run's value); lock held. true: the
 * task's end is decided (carry it out with relay__task_end after unlock). */
bool relay__task_job_done_locked(relay_pool *p, struct relay_task *t, int rc);
/* Under the lock: the end is decided now for a task with no job left. */
void relay__task_decide_locked(relay_pool *p, struct relay_task *t);
/* After unlock: delivers (posts) or carries out the decided end. */
void relay__task_end(struct relay_task *t);
/* Queues a progress event unless one is on its way. Any thread. */
int relay__task_post_progress(struct relay_task *t);
/* Binds the context, takes the handle's reference, queues; on an error
 * the task is discarded (free_data not run). */
int relay__task_submit(relay_pool *p, struct relay_task *t, relay_object *context,
		       bool has_callbacks, relay_task **out);
/* Runs a job's work in the calling (pool) thread. */
int relay__task_run_job(struct relay__job *job);

/* ---- map.c ---- */
int relay__map_run(struct relay_task *t);
/* The context's thread: calls the map's progress if items were done
 * since the last call; its end. */
void relay__map_report(struct relay_task *t, relay_object *context);
void relay__map_finished(struct relay_task *t, relay_object *context);

#endif
