/*
 * move.c - relay_object_move_to_thread: one mechanism, whose invariant is
 * that an object's events are always in the queue of the thread its
 * anchor names (so delivery never has to forward them).
 *
 * Run by the object's thread (the owner of its loop), for the whole tree:
 *   1. transit: every anchor of the tree is marked; a post that reads the
 *      mark leaves its section and waits for the move (it is short: the
 *      mover runs relay code only);
 *   2. a grace period: every post that read the old home before the mark
 *      has committed its record (grace.h);
 *   3. reserve: count the tree's ring records (no new one can arrive now)
 *      and allocate the heap events they will travel in. Without memory
 *      the marks are taken off and nothing has changed (-ENOMEM);
 *   4. take the tree's events (oldest first), its timers, its single shots
 *      and its pending deletion out of the old loop;
 *   5. under the new thread's queue lock: append them to its moved list
 *      and name it in every anchor (which ends the transit), so the new
 *      thread cannot act on the moved events - and move the object on
 *      again from one of their slots - before this move is over. The new
 *      thread delivers its moved list before any ring record (loop.c), so
 *      a post made after the move cannot overtake the events made before.
 * An object with no thread (never had one, detached, or its thread's
 * handle was destroyed) has no events to carry: it is just renamed.
 */
#include "internal.h"

#include <string.h>

static unsigned flags_of(const relay_object *obj)
{
	return atomic_load(&((relay_object *)obj)->relay__flags);
}

static void tree_transit(relay_object *obj, bool on)
{
	relay__anchor_transit(relay__obj_anchor(obj), on);
	for (relay_object *c = obj->relay__first_child; c; c = c->relay__next_sibling)
		tree_transit(c, on);
}

/* Names `to` in every anchor of the tree (ending a transit). The old
 * home's references (a tree lives in one thread: one record) are counted
 * in *n for the caller to drop after it unlocked (the last one frees the
 * record, which drains) - once no section can still be using it, that is
 * after a grace period since the transit began. */
static struct relay__tdata *tree_rehome(relay_object *obj, struct relay__tdata *to, int *n)
{
	struct relay__tdata *old = relay__anchor_rehome(relay__obj_anchor(obj), (uintptr_t)to);
	if (old)
		(*n)++;
	for (relay_object *c = obj->relay__first_child; c; c = c->relay__next_sibling)
		tree_rehome(c, to, n);
	return old;
}

static void unref_n(struct relay__tdata *t, int n)
{
	while (t && n-- > 0)
		relay__tdata_unref(t);
}

static void free_spares(struct relay__event *spare)
{
	while (spare) {
		struct relay__event *n = spare->next;
		relay__free(spare);
		spare = n;
	}
}

/* n heap events with room for any inline payload, or NULL (none made). */
static int alloc_spares(size_t n, struct relay__event **out)
{
	*out = NULL;
	for (size_t i = 0; i < n; i++) {
		struct relay__event *ev = relay__event_new(RELAY__EV_SLOT, RELAY__INLINE_MAX, 0);
		if (!ev) {
			free_spares(*out);
			*out = NULL;
			return -ENOMEM;
		}
		ev->next = *out;
		*out = ev;
	}
	return 0;
}

/* The tree's deletions waiting in the old loop's mailbox or held list. */
static struct relay__anchor *take_deletes(struct relay__tdata *from, relay_object *root)
{
	/* The mailbox joins the held list first (the mover owns the loop). */
	struct relay__anchor *fresh = relay__queue_take_mail(&from->q);
	struct relay__anchor **tail = &from->held;
	while (*tail)
		tail = &(*tail)->mail_next;
	*tail = fresh;
	uint64_t n = 0;
	for (; fresh; fresh = fresh->mail_next)
		n++;
	atomic_fetch_add_explicit(&from->posted, n, memory_order_relaxed);
	struct relay__anchor *taken = NULL;
	for (struct relay__anchor **pp = &from->held; *pp;) {
		struct relay__anchor *a = *pp;
		relay_object *obj = relay__anchor_obj(a);
		if (obj && relay__is_in_tree(obj, root)) {
			*pp = a->mail_next;
			a->mail_next = taken;
			taken = a;
		} else {
			pp = &a->mail_next;
		}
	}
	atomic_store(&from->held_pending, from->held != NULL);
	return taken;
}

struct carried {
	struct relay__event *events;
	struct relay__timerdata *timers;
	relay_watcher *watchers;   /* enabled: they register again where they arrive */
	struct relay__anchor *deletes;
	size_t count;            /* events and deletions, for the statistics */
};

static void take_tree(struct relay__tdata *from, relay_object *obj, struct relay__event **spare,
		      struct carried *k)
{
	k->events = relay__take_tree(from, obj, spare);
	k->timers = relay__timers_take_tree(from, obj);
	k->watchers = relay__watchers_take_tree(from, obj);
	k->deletes = take_deletes(from, obj);
	k->count = 0;
	for (struct relay__event *ev = k->events; ev; ev = ev->next)
		k->count++;
	for (struct relay__anchor *a = k->deletes; a; a = a->mail_next)
		k->count++;
}

/* Step 5. Blocking calls do not follow into a thread that runs no loop
 * (D8): their waiters are released, onto *released. Returns false when
 * `to` is gone (an adopted thread that exited meanwhile): nothing was
 * handed over. */
static bool hand_over(struct relay__tdata *to, relay_object *obj, struct carried *k,
		      struct relay__event **released)
{
	int olds = 0;
	struct relay__tdata *old;
	relay__queue *q = &to->q;
	pthread_mutex_lock(&q->lock);
	bool gone = relay__tstate_gone(atomic_load(&to->state));
	bool serves = relay__tstate_serves(to);
	while (!gone && k->events) {
		struct relay__event *ev = k->events;
		k->events = ev->next;
		if (ev->done && !serves) {
			ev->next = *released;
			*released = ev;
			continue;
		}
		relay__queue_push_moved_locked(q, ev);
	}
	while (!gone && k->timers) {
		struct relay__timerdata *td = k->timers;
		k->timers = td->move_next;
		relay__queue_push_timer_locked(to, td);
	}
	old = tree_rehome(obj, to, &olds);
	pthread_mutex_unlock(&q->lock);
	unref_n(old, olds);
	return !gone;
}

static void mail_deletes(struct relay__tdata *to, struct relay__anchor *list)
{
	while (list) {
		struct relay__anchor *a = list;
		list = a->mail_next;
		atomic_store(&a->del_level, 0);
		relay__queue_mail(&to->q, a);
	}
}

/* What was carried to a thread that is gone, or to no thread at all: the
 * events are dropped and counted, single shots freed, timers stay active
 * but unarmed (they start again where the object is moved next), and
 * deletions run now (nobody else would). */
static void carry_nowhere(struct relay__tdata *from, struct carried *k)
{
	relay__event_drop_list(from, k->events);
	k->events = NULL;
	while (k->timers) {
		struct relay__timerdata *td = k->timers;
		k->timers = td->move_next;
		td->move_next = NULL;
		if (!td->owner)
			relay__single_shot_free(td);
	}
}

static int move_from_here(relay_object *obj, struct relay__tdata *from, struct relay__tdata *to)
{
	tree_transit(obj, true);                              /* 1 */
	relay__grace_period(from);                            /* 2 */
	struct relay__event *spare;                           /* 3 */
	if (alloc_spares(relay__count_tree(from, obj), &spare) < 0) {
		tree_transit(obj, false);
		return -ENOMEM;
	}
	struct carried k;
	take_tree(from, obj, &spare, &k);                     /* 4 */
	free_spares(spare);
	struct relay__event *released = NULL;
	atomic_fetch_add_explicit(&from->moved, k.count, memory_order_relaxed);
	if (to && hand_over(to, obj, &k, &released)) {        /* 5 */
		atomic_fetch_add_explicit(&to->posted, k.count, memory_order_relaxed);
		mail_deletes(to, k.deletes);
		relay__loop_wake(to);
		if (relay__tstate_stopped(relay__tstate(to)))
			relay__loop_serve(to);   /* a deletion to a finished thread runs now */
	} else {
		if (!to) {
			int olds = 0;
			relay__tdata_ref(from);
			struct relay__tdata *old = tree_rehome(obj, NULL, &olds);
			unref_n(old, olds);
		}
		carry_nowhere(from, &k);
		/* Deletions asked for the tree: it lives nowhere now, run them. */
		while (k.deletes) {
			struct relay__anchor *a = k.deletes;
			k.deletes = a->mail_next;
			a->mail_next = NULL;
			relay__delete_now(from, a);
		}
		if (!to)
			relay__tdata_unref(from);
	}
	relay__event_drop_list(from, released);
	relay__watchers_follow(k.watchers);
	return 0;
}

/* An object with no thread - or whose thread is gone: posts to it are
 * refused, but one may be reading that gone home inside its section, so
 * the old home is let go only after a transit and a grace period, as in a
 * move. Nothing to carry but its unarmed timers. */
static void move_homeless(relay_object *obj, struct relay__tdata *to)
{
	tree_transit(obj, true);
	relay__grace_period(relay__tdata_current());
	struct relay__timerdata *timers = relay__timers_take_tree(NULL, obj);
	relay_watcher *watchers = relay__watchers_take_tree(NULL, obj);
	int olds = 0;
	struct relay__tdata *old;
	if (to) {
		pthread_mutex_lock(&to->q.lock);
		while (timers) {
			struct relay__timerdata *td = timers;
			timers = td->move_next;
			relay__queue_push_timer_locked(to, td);
		}
		old = tree_rehome(obj, to, &olds);
		pthread_mutex_unlock(&to->q.lock);
		relay__loop_wake(to);
	} else {
		old = tree_rehome(obj, NULL, &olds);
	}
	unref_n(old, olds);
	relay__watchers_follow(watchers);
}

static int check_move(relay_object *obj, struct relay__tdata *from, struct relay__tdata *to)
{
	char who[160];
	if (from && !relay__tdata_is_current(from)) {
		const char *instead = relay__tstate_stopped(relay__tstate(from))
			? "its thread has finished: restart it, or delete_later the object"
			: "move it from its own thread (\"push\", not \"pull\")";
		struct relay__tdata *self = relay__tdata_current();
		return relay__diag(RELAY_EWRONGTHREAD, "relay_object_move_to_thread: %s does not live "
				   "in the calling thread '%s'; %s",
				   relay__describe(obj, who, sizeof who), self ? self->name : "?",
				   instead);
	}
	if (obj->relay__parent)
		return relay__diag(RELAY_EHASPARENT, "relay_object_move_to_thread: %s has a "
				   "parent; move the parent, or unparent it first",
				   relay__describe(obj, who, sizeof who));
	if (obj->relay__class->flags & RELAY_CLASS_MAIN_THREAD_ONLY && (!to || !to->is_main))
		return relay__diag(RELAY_EMAINONLY, "relay_object_move_to_thread: %s must stay in "
				   "the main thread; move a worker object instead",
				   relay__describe(obj, who, sizeof who));
	if ((flags_of(obj) & RELAY__OBJ_IS_THREAD) && to &&
	    ((relay_thread *)obj)->relay__data == to)
		return relay__diag(-EINVAL, "relay_object_move_to_thread: %s cannot live in the "
				   "thread it manages (it would have to wait for itself)",
				   relay__describe(obj, who, sizeof who));
	return 0;
}

int (relay_object_move_to_thread)(relay_object *obj, relay_thread *thread)
{
	int rc = relay__obj_check(obj, "relay_object_move_to_thread");
	if (rc < 0)
		return rc;
	struct relay__tdata *to = thread ? thread->relay__data : NULL;
	if (thread && !to)
		return -EINVAL;
	if (thread && (rc = relay__obj_check(&thread->base, "relay_object_move_to_thread")) < 0)
		return rc;
	struct relay__tdata *from = relay__obj_owner_thread(obj);   /* NULL: none, or gone */
	rc = check_move(obj, from, to);
	if (rc < 0)
		return rc;
	if (relay__obj_thread(obj) == to)
		return 0;
	if (!from) {
		move_homeless(obj, to);
		return 0;
	}
	return move_from_here(obj, from, to);
}
