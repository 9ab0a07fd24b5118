/*
 * loop.c - the per-thread event loop: a pass, run / quit, dispatching
 * events, deferred deletions, and serving a loop whose thread has stopped.
 *
 * A pass reads as its phases (as libuv's uv_run):
 *   1. due timers;
 *   2. take the moved list and the delete mailbox, then snapshot the rings
 *      (so a deletion runs after what its poster posted before it);
 *   3. deliver: moved events first, then ring records up to the snapshot
 *      (one batch, so a flood of posts cannot starve timers: D4);
 *   4. the deferred deletions that are due at this loop level;
 *   5. only if nothing was ready: idle trim, spin a little, then sleep in
 *      the poller until an event, a timer deadline or a quit. A loop with
 *      nothing to do sleeps in epoll_wait(-1) and is never woken.
 *
 * Loop levels (Qt's loopLevel + scopeLevel, for deferred deletions): the
 * level is the number of nested relay_loop_run (at least 1 inside a pass)
 * plus the number of relay callbacks into user code running on this
 * thread's stack (events dispatched, timers fired, started/finished). A
 * deletion asked for by the object's own thread at level L runs only at a
 * level below L, so a slot that deletes its receiver and then pumps events
 * keeps its receiver until it returns (D9); one asked for from elsewhere,
 * or from plain code, runs at the next pass.
 *
 * Relies on: queue.c (transport, wake-up handshake, owner token), post.c
 * (forwarding), scan.c, timer.c, signal.c (slot calls), object.c.
 */
#include "internal.h"

#include <limits.h>
#include <sched.h>
#include <string.h>

static void bump(atomic_uint_fast64_t *counter, uint64_t n)
{
	/* Single writer (the loop's owner): no read-modify-write needed. */
	atomic_store_explicit(counter, atomic_load_explicit(counter, memory_order_relaxed) + n,
			      memory_order_relaxed);
}

static bool quit_requested(struct relay__tdata *self)
{
	if (atomic_load_explicit(&self->exit_req, memory_order_seq_cst) & RELAY__EXIT_PENDING)
		return true;
	return self->loops && self->loops->quit;
}

/* A pass waiting for work returns for a quit, or when nudged. */
static bool wake_requested(struct relay__tdata *self)
{
	return quit_requested(self) ||
	       atomic_load_explicit(&self->nudge, memory_order_seq_cst);
}

/* A pass stops early for a quit, or when an embedding host's budget is
 * spent (the clock is read every 32 records: a slot costs more than that
 * read, a record may cost less). */
static bool pass_stop(struct relay__tdata *self)
{
	if (quit_requested(self))
		return true;
	if (!self->pass_deadline || ++self->pass_polls < 32)
		return false;
	self->pass_polls = 0;
	return relay__now_ns() >= self->pass_deadline;
}

int relay__loop_level(const struct relay__tdata *t)
{
	int depth = atomic_load_explicit(&((struct relay__tdata *)t)->loop_depth,
					 memory_order_relaxed);
	return (depth > 0 ? depth : 1) + t->scope;
}

/* ---- dispatch ---- */

/* Connection references of delivered records are returned in batches:
 * one atomic operation per run of records on the same connection. */
static void unref_flush(struct relay__tdata *self)
{
	if (self->unref_conn)
		relay__conn_unref_n(self->unref_conn, self->unref_n);
	self->unref_conn = NULL;
	self->unref_n = 0;
}

static void unref_later(struct relay__tdata *self, struct relay__conn *c)
{
	if (self->unref_conn != c) {
		unref_flush(self);
		self->unref_conn = c;
	}
	self->unref_n++;
}

/* The target does not live here: send the event on, through its anchor
 * (memory-safe whatever became of the target). move_to_thread takes a
 * tree's events along, so this is a second line of defence, not a path. */
static void forward(struct relay__tdata *self, struct relay__event *ev)
{
	/* A blocking call follows only to a thread that will serve it (D8). */
	int rc = relay__post(relay__event_anchor(ev), ev,
			     ev->done ? RELAY__POST_SERVING : RELAY__POST_ALWAYS, NULL);
	if (rc < 0)
		relay__event_drop(self, ev);
}

static void drop_slot_rec(struct relay__tdata *self, struct relay__rec *rec)
{
	struct relay__conn *c = rec->conn;
	relay__count_drop(self);
	if (rec->argsize && c->ops && c->ops->free)
		c->ops->free(RELAY__REC_PAYLOAD(rec));
	unref_later(self, c);
}

/* A queued slot call, D6-checked: false when the connection is dead. */
static RELAY__ALWAYS_INLINE bool call_slot(struct relay__tdata *self, struct relay__conn *c,
					   relay_object *sender, const void *arg)
{
	self->scope++;
	relay_object *prev = relay__set_sender(sender);
	bool called = relay__conn_call_checked(self->frame->slot, self->frame->asymmetric, c, arg);
	relay__set_sender(prev);
	self->scope--;
	if (called)
		bump(&self->delivered, 1);
	return called;
}

static RELAY__ALWAYS_INLINE void deliver_slot_rec(struct relay__tdata *self, struct relay__rec *rec)
{
	struct relay__conn *c = rec->conn;
	struct relay__anchor *a = c->ranchor;
	if (RELAY__UNLIKELY(!relay__anchor_obj(a))) {
		drop_slot_rec(self, rec);   /* its destruction began (D7) */
		return;
	}
	if (RELAY__UNLIKELY(relay__anchor_home(a) != self)) {
		struct relay__event *ev = relay__event_from_rec(rec);
		if (ev)
			forward(self, ev);
		else
			drop_slot_rec(self, rec);
		return;
	}
	if (!call_slot(self, c, rec->u.sender, rec->argsize ? RELAY__REC_PAYLOAD(rec) : NULL)) {
		drop_slot_rec(self, rec);   /* disconnected (D6) */
		return;
	}
	if (rec->argsize && c->ops && c->ops->free)
		c->ops->free(RELAY__REC_PAYLOAD(rec));
	unref_later(self, c);
}

static void deliver_slot_event(struct relay__tdata *self, struct relay__event *ev)
{
	struct relay__conn *c = ev->conn;
	if (ev->done && !relay__completion_claim(ev->done)) {
		relay__event_drop(self, ev);   /* the waiter gave up: its thread stopped */
		return;
	}
	if (!call_slot(self, c, ev->sender, ev->argsize ? ev->payload : NULL)) {
		if (ev->done)   /* claimed: release the waiter, undelivered */
			relay__completion_signal(ev->done, RELAY_ENOTDELIVERED, 0);
		relay__event_drop(self, ev);   /* disconnected (D6) */
		return;
	}
	if (ev->done)
		relay__completion_signal(ev->done, 0, 0);
	relay__event_free(ev, 0);
}

static void deliver_invoke(struct relay__tdata *self, struct relay__event *ev)
{
	bump(&self->delivered, 1);
	self->scope++;
	ev->u.invoke.fn(ev->u.invoke.data);
	self->scope--;
	ev->u.invoke.free_data = NULL;   /* fn ran: data is fn's now */
	relay__event_free(ev, 0);
}

static void deliver_call(struct relay__tdata *self, struct relay__event *ev)
{
	if (!relay__completion_claim(ev->done)) {
		relay__event_drop(self, ev);   /* the waiter gave up */
		return;
	}
	bump(&self->delivered, 1);
	self->scope++;
	int r = ev->u.call.fn(ev->u.call.data);
	self->scope--;
	relay__completion_signal(ev->done, 0, r);
	relay__event_free(ev, 0);
}

void relay__dispatch(struct relay__tdata *self, struct relay__event *ev)
{
	if (ev->kind == RELAY__EV_SINGLE_SHOT) {
		relay__single_shot_event(self, ev);
		return;
	}
	struct relay__anchor *a = relay__event_anchor(ev);
	if (!relay__anchor_obj(a)) {
		relay__event_drop(self, ev);   /* its destruction began (D7) */
		return;
	}
	if (relay__anchor_home(a) != self) {
		forward(self, ev);
		return;
	}
	switch (ev->kind) {
	case RELAY__EV_SLOT:
		deliver_slot_event(self, ev);
		break;
	case RELAY__EV_INVOKE:
		deliver_invoke(self, ev);
		break;
	case RELAY__EV_CALL:
		deliver_call(self, ev);
		break;
	case RELAY__EV_TASK:
		bump(&self->delivered, 1);
		self->scope++;
		relay__task_deliver(self, ev);
		self->scope--;
		relay__event_free(ev, 0);
		break;
	default:
		relay__event_drop(self, ev);
		break;
	}
}

/* ---- one pass's events ---- */

static int deliver_list(struct relay__tdata *self);

void relay__loop_take_moved(struct relay__tdata *self)
{
	struct relay__timerdata *timers;
	struct relay__event *fresh = relay__queue_take_moved(&self->q, &timers);
	relay__timers_arm_list(self, timers);
	if (!fresh)
		return;
	struct relay__event **tail = &self->batch;
	while (*tail)
		tail = &(*tail)->next;
	*tail = fresh;
}

/* The mailbox joins the held deletions, oldest last. */
static void take_mail(struct relay__tdata *self)
{
	struct relay__anchor *fresh = relay__queue_take_mail(&self->q);
	if (!fresh)
		return;
	uint64_t n = 0;
	struct relay__anchor **tail = &self->held;
	while (*tail)
		tail = &(*tail)->mail_next;
	*tail = fresh;
	for (; fresh; fresh = fresh->mail_next)
		n++;
	/* movers add to it too: a read-modify-write */
	atomic_fetch_add_explicit(&self->posted, n, memory_order_relaxed);
	atomic_store_explicit(&self->held_pending, true, memory_order_seq_cst);
}

/* A ring record must not overtake the events move_to_thread brought
 * along: they were pushed before the target's anchor named this thread,
 * and the record was posted after its poster read that name, so the push
 * is visible here; deliver them first. */
static void prepare_rec(struct relay__tdata *self, struct relay__rec *rec)
{
	(void)rec;
	if (atomic_load_explicit(&self->q.moved_pending, memory_order_relaxed)) {
		relay__loop_take_moved(self);
		deliver_list(self);
	}
}

static void deliver_rec(struct relay__tdata *self, struct relay__rec *rec)
{
	if (rec->kind == RELAY__REC_SLOT)
		deliver_slot_rec(self, rec);
	else
		relay__dispatch(self, rec->u.ev);
}

/* Delivers the batch (moved events). Events are unlinked one at a time so
 * that a slot may run a nested loop (which continues the same batch, in
 * order) or move an object (which takes its events out of the batch).
 * Stops early when the loop is told to quit. */
static int deliver_list(struct relay__tdata *self)
{
	int n = 0;
	struct relay__event *ev;
	while ((ev = self->batch) != NULL) {
		self->batch = ev->next;
		ev->next = NULL;
		relay__dispatch(self, ev);
		n++;
		if (pass_stop(self))
			break;
	}
	return n;
}

static int deliver_batch(struct relay__tdata *self)
{
	relay__loop_take_moved(self);
	take_mail(self);
	relay__queue_snapshot(self);
	/* One call frame for the pass's slot calls (a nested pass has its own). */
	struct relay__frame frame, *outer = self->frame;
	relay__frame_open(&self->grace, &frame);
	self->frame = &frame;
	int n = deliver_list(self);
	if (!pass_stop(self))
		n += relay__queue_deliver(self, prepare_rec, deliver_rec, pass_stop);
	self->frame = outer;
	relay__frame_close(&frame);
	unref_flush(self);
	return n;
}

/* ---- deferred deletions ---- */

static bool due(const struct relay__anchor *a, int level)
{
	int at = atomic_load_explicit(&((struct relay__anchor *)a)->del_level, memory_order_relaxed);
	return at == 0 || at > level;
}

/* Detaches the held deletions due now (all: every one), oldest first. */
static struct relay__anchor *take_due(struct relay__tdata *self, bool all)
{
	int level = relay__loop_level(self);
	struct relay__anchor *list = NULL, **tail = &list;
	for (struct relay__anchor **pp = &self->held; *pp;) {
		struct relay__anchor *a = *pp;
		if (all || due(a, level)) {
			*pp = a->mail_next;
			a->mail_next = NULL;
			*tail = a;
			tail = &a->mail_next;
		} else {
			pp = &a->mail_next;
		}
	}
	atomic_store_explicit(&self->held_pending, self->held != NULL, memory_order_seq_cst);
	return list;
}

static bool deletes_due(struct relay__tdata *self)
{
	int level = relay__loop_level(self);
	for (struct relay__anchor *a = self->held; a; a = a->mail_next)
		if (due(a, level))
			return true;
	return false;
}

/* Runs the due deletions; destructors may ask for more: look again. With
 * `all` (a thread's end, a drain) the mailbox is taken too and every
 * deletion runs, whatever its level. */
int relay__run_deletes(struct relay__tdata *self, bool all)
{
	int ran = 0;
	for (;;) {
		if (all)
			take_mail(self);
		struct relay__anchor *list = take_due(self, all);
		if (!list)
			return ran;
		while (list) {
			struct relay__anchor *a = list;
			list = a->mail_next;
			a->mail_next = NULL;
			relay__delete_now(self, a);
			ran++;
		}
	}
}

/* ---- a pass ---- */

static int sleep_timeout(struct relay__tdata *self, int timeout_ms)
{
	int t = relay__timers_timeout(self, relay__now_ns());
	if (timeout_ms < 0)
		return t;
	if (t < 0 || t > timeout_ms)
		return timeout_ms;
	return t;
}

/* Idle: let go of what only speeds up a busy thread (emit cache, bulk
 * references, rings to threads that are gone), at most every 100 ms so a
 * ping-pong does not refill the cache on every message. Spare chunks stay:
 * a flow that pauses allocates nothing when it resumes. */
static void idle_trim(struct relay__tdata *self, uint64_t now)
{
	if (now - self->trimmed_ns < 100000000u)
		return;
	self->trimmed_ns = now;
	relay__signal_cache_trim();
	relay__producer_trim(&self->prod);
}

static inline void cpu_relax(void)
{
#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
	__builtin_ia32_pause();
#endif
}

/* Spin then block: before sleeping in the kernel, watch the queue for a
 * while. A wake-up across cores costs tens of microseconds on a virtual
 * machine; work that arrives sooner is taken without it (a spin bounded by
 * the cost it saves is at most twice the best choice, the classic
 * competitive argument for adaptive locks). sched_yield lets the thread we
 * wait for run when it shares our core. An idle loop spins once, then
 * sleeps without waking. */
#define SPIN_NS 20000u

static bool spin_for_work(struct relay__tdata *self, int timeout_ms)
{
	uint64_t budget = SPIN_NS, start = relay__now_ns();
	if (timeout_ms >= 0 && (uint64_t)timeout_ms * 1000000u < budget)
		budget = (uint64_t)timeout_ms * 1000000u;
	do {
		if (relay__queue_pending(self) || wake_requested(self))
			return true;
		sched_yield();
		cpu_relax();
	} while (relay__now_ns() - start < budget);
	return false;
}

static int run_ready(struct relay__tdata *self, uint64_t now)
{
	int n = relay__timers_run(self, now);
	n += relay__watchers_run(self);
	n += deliver_batch(self);
	n += relay__run_deletes(self, false);
	return n;
}

int relay__loop_pass(struct relay__tdata *self, int timeout_ms)
{
	bump(&self->passes, 1);
	if (self->adopted && !atomic_load_explicit(&self->pumps, memory_order_relaxed))
		atomic_store(&self->pumps, true);   /* it serves blocking calls now */
	uint64_t now = relay__now_ns();
	int n = run_ready(self, now);
	if (n == 0)
		idle_trim(self, now);
	if (n > 0 || wake_requested(self) || timeout_ms == 0 || self->batch)
		return n;

	int t = sleep_timeout(self, timeout_ms);
	if (t != 0 && !spin_for_work(self, t) &&
	    relay__queue_prepare_sleep(self, wake_requested)) {
		int rc = relay__poll_wait(self, t);
		relay__queue_awake(&self->q);
		bump(&self->wakeups, 1);
		if (rc < 0)
			return rc;
	}
	return n + run_ready(self, relay__now_ns());
}

/* ---- for a host loop (embed.c) ---- */

bool relay__loop_has_work(struct relay__tdata *self, uint64_t now)
{
	/* quit_next: relay_loop_quit with no relay loop running, here a quit
	 * for the host (set by this thread: nothing to arm for it). */
	return self->batch || quit_requested(self) || self->quit_next ||
	       relay__queue_pending(self) ||
	       relay__watchers_ready(self) || relay__timers_timeout(self, now) == 0 ||
	       deletes_due(self);
}

/* The consumer's half of the wake-up handshake, as before a sleep: false
 * when work arrived (the flag is cleared again). */
bool relay__loop_arm(struct relay__tdata *self)
{
	return !deletes_due(self) && !self->batch &&
	       relay__queue_prepare_sleep(self, quit_requested);
}

int relay__loop_timeout(struct relay__tdata *self, uint64_t now)
{
	return relay__timers_timeout(self, now);
}

/* One pass that never sleeps, cut short after budget_ms (< 0: none). */
int relay__loop_dispatch(struct relay__tdata *self, int budget_ms)
{
	bump(&self->passes, 1);
	uint64_t now = relay__now_ns();
	uint64_t outer = self->pass_deadline;
	self->pass_deadline = budget_ms < 0 ? 0 : now + (uint64_t)budget_ms * 1000000u + 1;
	self->pass_polls = 0;
	int n = run_ready(self, now);
	self->pass_deadline = outer;
	if (n == 0)
		idle_trim(self, now);
	return n;
}

int relay__loop_run(struct relay__tdata *self)
{
	int depth = atomic_load_explicit(&self->loop_depth, memory_order_relaxed) + 1;
	struct relay__loopframe frame = { false, 0, self->loops };
	if (self->quit_next) {   /* relay_loop_exit before any loop ran */
		self->quit_next = false;
		frame.quit = true;
		frame.code = self->quit_next_code;
	}
	self->loops = &frame;
	atomic_store(&self->loop_depth, depth);
	int code;
	for (;;) {
		/* Its own quit first: the thread's, if pending too, then ends the
		 * outer loops. */
		if (frame.quit) {
			code = frame.code;
			break;
		}
		uint_fast64_t x = atomic_load(&self->exit_req);
		if (x & RELAY__EXIT_PENDING) {
			code = (int)(uint32_t)x;
			/* The outermost loop takes the thread's quit (unless a new
			 * one came meanwhile: that one is kept for the next run).
			 * Under a host loop (embed.c) the host is outermost: the
			 * quit stays for relay_loop_dispatch to pass on. In a
			 * relay_thread, a loop run by a slot of `started` is at
			 * depth 1 too, before the thread's own loop: the quit
			 * stays for that one, which then returns at once (as
			 * QThread::exec after an exit). */
			if (depth == 1 && !self->embed && (self->adopted || self->scope == 0))
				atomic_compare_exchange_strong(&self->exit_req, &x, 0);
			break;
		}
		int rc = relay__loop_pass(self, -1);
		if (rc < 0) {
			code = rc;
			break;
		}
	}
	self->loops = frame.outer;
	atomic_store(&self->loop_depth, depth - 1);
	return code;
}

void relay__loop_wake(struct relay__tdata *t)
{
	relay__queue_wake_if_sleeping(&t->q);
}

/* The request half of the wake-up handshake: a seq_cst store, then the
 * load of the sleep flag (relay__queue_prepare_sleep's busy check reads
 * the nudge after announcing its sleep). */
void relay__loop_nudge(struct relay__tdata *t)
{
	atomic_store_explicit(&t->nudge, true, memory_order_seq_cst);
	relay__queue_wake_if_sleeping(&t->q);
}

bool relay__loop_keeps(struct relay__tdata *t)
{
	return t->batch || t->held || relay__heap_top(&t->timers) || t->watching > 0 ||
	       relay__queue_pending(t) || atomic_load(&t->q.mail);
}

/* ---- serving a loop nobody runs ---- */

static bool serve_work(struct relay__tdata *t, int st)
{
	return atomic_load(&t->q.mail) || atomic_load(&t->held_pending) ||
	       (relay__tstate_gone(st) && !atomic_load(&t->drained));
}

void relay__loop_serve(struct relay__tdata *t)
{
	relay__tdata_ref(t);
	for (;;) {
		/* Look for work, then take the token: a thread that leaves work
		 * after our look either takes the token itself or, finding it
		 * taken, is seen by our look after we give it back (the token and
		 * every request are seq_cst). */
		int st = relay__tstate(t);
		if (!relay__tstate_stopped(st) || !serve_work(t, st) || !relay__queue_own(&t->q))
			break;
		st = relay__tstate(t);
		struct relay__tdata *prev = relay__tls.serving;
		relay__tls.serving = t;
		if (relay__tstate_gone(st) && !atomic_exchange(&t->drained, true))
			relay__drain(t);
		else if (relay__tstate_stopped(st))
			relay__run_deletes(t, true);
		relay__tls.serving = prev;
		relay__queue_disown(&t->q);
	}
	relay__tdata_unref(t);
}

bool relay__loop_owned_here(const struct relay__tdata *t)
{
	return t && (relay__tls.serving == t || relay__tls.self == t);
}

/* ---- public: running the calling thread's loop ---- */

int relay_loop_run(void)
{
	struct relay__tdata *self = relay__tdata_current();
	if (!self)
		return -ENOMEM;
	return relay__loop_run(self);
}

int relay_loop_run_once(int timeout_ms)
{
	struct relay__tdata *self = relay__tdata_current();
	if (!self)
		return -ENOMEM;
	return relay__loop_pass(self, timeout_ms);
}

int relay_process_events(void)
{
	return relay_loop_run_once(0);
}

int relay_release_caches(void)
{
	struct relay__tdata *self = relay__tdata_current();
	if (!self)
		return -ENOMEM;
	relay__signal_cache_trim();
	relay__producer_trim(&self->prod);
	relay__queue_reap(self);
	relay__queue_trim(self);
	return 0;
}

int relay_loop_quit(void)
{
	return relay_loop_exit(0);
}

int relay_loop_exit(int code)
{
	if (code < 0)
		return -EINVAL;
	struct relay__tdata *self = relay__tdata_current();
	if (!self)
		return -ENOMEM;
	if (self->loops) {
		self->loops->quit = true;
		self->loops->code = code;
	} else {
		self->quit_next = true;
		self->quit_next_code = code;
	}
	return 0;
}
