/*
 * object.c - relay_object: thread affinity, parent/children, destroy,
 * delete_later, move_to_thread, names and weak references, with Qt's
 * ownership rules enforced (DESIGN.md O1-O3, T4).
 *
 * Object locks: a fixed table of mutexes striped by address, as Qt's
 * signalSlotLock, so an object costs no mutex of its own and a zero-filled
 * struct is ready to use. They guard an object's ext part (connections,
 * weak block, name) and make "is it alive, where does it live" stable
 * while an event is posted to it (loop.c).
 */
#include "internal.h"

#include <stdio.h>
#include <string.h>

/* ---- object locks ---- */

#define NLOCKS 64   /* power of two; a few per core is plenty */
static pthread_mutex_t locks[NLOCKS] = {
#define L4 PTHREAD_MUTEX_INITIALIZER, PTHREAD_MUTEX_INITIALIZER, \
	   PTHREAD_MUTEX_INITIALIZER, PTHREAD_MUTEX_INITIALIZER
#define L16 L4, L4, L4, L4
	L16, L16, L16, L16
#undef L16
#undef L4
};

pthread_mutex_t *relay__objlock(const void *obj)
{
	uintptr_t a = (uintptr_t)obj;
	/* Objects are at least 64 bytes apart: drop the low bits, mix the rest. */
	a = (a >> 6) ^ (a >> 12);
	return &locks[a & (NLOCKS - 1)];
}

void relay__lock2(pthread_mutex_t *a, pthread_mutex_t *b)
{
	if (a == b) {
		pthread_mutex_lock(a);
	} else if (a < b) {
		pthread_mutex_lock(a);
		pthread_mutex_lock(b);
	} else {
		pthread_mutex_lock(b);
		pthread_mutex_lock(a);
	}
}

void relay__unlock2(pthread_mutex_t *a, pthread_mutex_t *b)
{
	pthread_mutex_unlock(a);
	if (a != b)
		pthread_mutex_unlock(b);
}

struct relay__objext *relay__ext_locked(relay_object *obj)
{
	if (!obj->relay__ext)
		obj->relay__ext = relay__calloc(sizeof *obj->relay__ext);
	return obj->relay__ext;
}

static unsigned flags_of(const relay_object *obj)
{
	return atomic_load(&((relay_object *)obj)->relay__flags);
}

/* ---- diagnostics helpers ---- */

int relay_object_name(const relay_object *obj, char *buf, size_t size)
{
	if (!obj || !buf || size == 0)
		return -EINVAL;
	pthread_mutex_t *l = relay__objlock(obj);
	pthread_mutex_lock(l);
	if (obj->relay__ext && obj->relay__ext->name[0])
		snprintf(buf, size, "%s", obj->relay__ext->name);
	else
		snprintf(buf, size, "%s@%p",
			 obj->relay__class && obj->relay__class->name ? obj->relay__class->name
								      : "object",
			 (const void *)obj);
	pthread_mutex_unlock(l);
	return 0;
}

const char *relay__describe(const relay_object *obj, char *buf, size_t size)
{
	char name[80];
	relay_object_name(obj, name, sizeof name);
	struct relay__tdata *t = relay__obj_thread(obj);
	snprintf(buf, size, "object '%s' (thread '%s')", name, t ? t->name : "none");
	return buf;
}

static int wrong_thread(const relay_object *obj, const char *what, const char *instead)
{
	char who[160];
	struct relay__tdata *self = relay__tdata_current();
	return relay__diag(RELAY_EWRONGTHREAD, "%s: %s does not live in the calling thread '%s'; %s",
			   what, relay__describe(obj, who, sizeof who), self ? self->name : "?",
			   instead);
}

static bool is_own_thread(const relay_object *obj)
{
	return relay__tdata_is_current(relay__obj_thread(obj));
}

/* ---- creation ---- */

static void link_child(relay_object *parent, relay_object *child)
{
	child->relay__parent = parent;
	child->relay__next_sibling = NULL;
	relay_object **pp = &parent->relay__first_child;
	while (*pp)   /* append: children are destroyed in creation order */
		pp = &(*pp)->relay__next_sibling;
	*pp = child;
}

static void unlink_child(relay_object *child)
{
	relay_object *p = child->relay__parent;
	if (!p)
		return;
	for (relay_object **pp = &p->relay__first_child; *pp; pp = &(*pp)->relay__next_sibling) {
		if (*pp == child) {
			*pp = child->relay__next_sibling;
			break;
		}
	}
	child->relay__parent = NULL;
	child->relay__next_sibling = NULL;
}

int relay_object_init(relay_object *obj, const relay_class *cls, relay_object *parent)
{
	if (!obj || !cls)
		return -EINVAL;
	struct relay__tdata *self = relay__tdata_current();
	if (!self)
		return -ENOMEM;
	if ((cls->flags & RELAY_CLASS_MAIN_THREAD_ONLY) && !self->is_main)
		return relay__diag(RELAY_EMAINONLY, "relay_object_init: a '%s' must be created in "
				   "the main thread, not in '%s'; create it there and send it data "
				   "through signals", cls->name ? cls->name : "object", self->name);
	if (parent && !is_own_thread(parent)) {
		char who[160];
		return relay__diag(RELAY_EPARENTTHREAD, "relay_object_init: parent %s lives in "
				   "another thread than '%s'; create the child in the parent's thread",
				   relay__describe(parent, who, sizeof who), self->name);
	}
	obj->relay__class = cls;
	relay__tdata_ref(self);
	atomic_store(&obj->relay__thread, self);
	atomic_store(&obj->relay__flags, 0);
	obj->relay__first_child = obj->relay__next_sibling = obj->relay__parent = NULL;
	obj->relay__ext = NULL;
	if (parent)
		link_child(parent, obj);
	return 0;
}

int relay_object_new(size_t size, const relay_class *cls, relay_object *parent, void *out)
{
	if (!out || !cls || size < sizeof(relay_object))
		return -EINVAL;
	*(void **)out = NULL;
	relay_object *obj = relay__calloc(size);
	if (!obj)
		return -ENOMEM;
	int rc = relay_object_init(obj, cls, parent);
	if (rc < 0) {
		relay__free(obj);
		return rc;
	}
	atomic_fetch_or(&obj->relay__flags, RELAY__OBJ_OWNED_MEMORY);
	*(void **)out = obj;
	return 0;
}

/* ---- weak references ---- */

struct relay__weakblock *relay__weak_acquire(relay_object *obj)
{
	pthread_mutex_t *l = relay__objlock(obj);
	pthread_mutex_lock(l);
	struct relay__weakblock *b = NULL;
	struct relay__objext *x = NULL;
	/* Once destroy has released the ext part, a new one would never be
	 * cleared: a dying object hands out no new references. */
	if (obj->relay__ext || !(flags_of(obj) & RELAY__OBJ_DESTROYING))
		x = relay__ext_locked(obj);
	if (x) {
		if (!x->weak) {
			x->weak = relay__calloc(sizeof *x->weak);
			if (x->weak) {
				atomic_init(&x->weak->obj, obj);
				atomic_init(&x->weak->refs, 1);   /* the object's */
			}
		}
		b = x->weak;
		if (b)
			atomic_fetch_add(&b->refs, 1);
	}
	pthread_mutex_unlock(l);
	return b;
}

void relay__weak_release(struct relay__weakblock *b)
{
	if (b && atomic_fetch_sub_explicit(&b->refs, 1, memory_order_acq_rel) == 1)
		relay__free(b);
}

int relay_weak_set(relay_weak *w, relay_object *obj)
{
	if (!w)
		return -EINVAL;
	struct relay__weakblock *b = NULL;
	if (obj && !(b = relay__weak_acquire(obj)))
		return (flags_of(obj) & RELAY__OBJ_DESTROYING) ? RELAY_EDESTROYED : -ENOMEM;
	relay__weak_release(w->relay__b);
	w->relay__b = b;
	return 0;
}

relay_object *relay_weak_get(const relay_weak *w)
{
	if (!w || !w->relay__b)
		return NULL;
	return atomic_load_explicit(&w->relay__b->obj, memory_order_acquire);
}

void relay_weak_clear(relay_weak *w)
{
	if (!w)
		return;
	relay__weak_release(w->relay__b);
	w->relay__b = NULL;
}

/* ---- destruction ---- */

bool relay__is_in_tree(const relay_object *obj, const relay_object *root)
{
	for (const relay_object *o = obj; o; o = o->relay__parent)
		if (o == root)
			return true;
	return false;
}

/* Clears weak references and frees the ext part. */
static void release_ext(relay_object *obj)
{
	pthread_mutex_t *l = relay__objlock(obj);
	pthread_mutex_lock(l);
	struct relay__objext *x = obj->relay__ext;
	obj->relay__ext = NULL;
	if (x && x->weak)
		atomic_store_explicit(&x->weak->obj, NULL, memory_order_release);
	pthread_mutex_unlock(l);
	if (x) {
		relay__weak_release(x->weak);
		relay__free(x);
	}
}

int relay__object_destroy_unchecked(relay_object *obj)
{
	unsigned old = atomic_fetch_or(&obj->relay__flags, RELAY__OBJ_DESTROYING);
	if (old & RELAY__OBJ_DESTROYING)
		return 0;   /* re-entrant destroy from a destroyed slot */

	relay_emit(obj, destroyed);
	while (obj->relay__first_child) {
		relay_object *c = obj->relay__first_child;
		/* A running thread's handle is never destroyed (its finalizer
		 * would join a thread nobody asked to quit): it is orphaned. */
		if ((atomic_load(&c->relay__flags) & RELAY__OBJ_IS_THREAD) &&
		    relay__thread_check_destroy(c) < 0) {
			unlink_child(c);
			continue;
		}
		relay__object_destroy_unchecked(c);
		if (obj->relay__first_child == c)   /* re-entrant: unlink anyway */
			unlink_child(c);
	}
	relay__object_cut_connections(obj);
	unlink_child(obj);
	release_ext(obj);
	/* As Qt's removePostedEvents: what was queued for it goes now, not
	 * when its thread ends. */
	struct relay__tdata *home = relay__obj_thread(obj);
	if (home && (relay__tdata_is_current(home) || !relay__tdata_loops(home)))
		relay__purge_events(home, obj);

	const relay_class *cls = obj->relay__class;
	struct relay__tdata *t = atomic_exchange(&obj->relay__thread, NULL);
	bool owned = old & RELAY__OBJ_OWNED_MEMORY;
	bool adopted_handle = (old & RELAY__OBJ_IS_THREAD) && t && t->adopted &&
			      t->handle == (relay_thread *)obj;
	if (cls && cls->finalize)
		cls->finalize(obj);
	if (owned)
		relay__free(obj);
	if (t && !adopted_handle)
		relay__tdata_unref(t);
	return 0;
}

/* T3: refuses (with the thread's diagnostic) to destroy a tree that holds
 * the handle of a running thread. Owner thread. */
static int check_no_running_thread(relay_object *obj)
{
	if (flags_of(obj) & RELAY__OBJ_IS_THREAD) {
		int rc = relay__thread_check_destroy(obj);
		if (rc < 0)
			return rc;
	}
	for (relay_object *c = obj->relay__first_child; c; c = c->relay__next_sibling) {
		int rc = check_no_running_thread(c);
		if (rc < 0)
			return rc;
	}
	return 0;
}

int relay_object_destroy(relay_object *obj)
{
	if (!obj || !obj->relay__class)
		return -EINVAL;
	if (flags_of(obj) & RELAY__OBJ_DESTROYING)
		return 0;
	if (relay__obj_thread(obj) && !is_own_thread(obj))
		return wrong_thread(obj, "relay_object_destroy",
				    "use relay_object_delete_later() from other threads");
	int rc = check_no_running_thread(obj);
	if (rc < 0)
		return rc;
	return relay__object_destroy_unchecked(obj);
}

int relay_object_delete_later(relay_object *obj)
{
	if (!obj || !obj->relay__class)
		return -EINVAL;
	unsigned old = atomic_fetch_or(&obj->relay__flags, RELAY__OBJ_DELETE_PENDING);
	if (old & (RELAY__OBJ_DELETE_PENDING | RELAY__OBJ_DESTROYING))
		return 0;   /* T4: repeated calls collapse into one */
	struct relay__event *ev = relay__event_new(RELAY__EV_DELETE, 0);
	if (ev)
		ev->weak = relay__weak_acquire(obj);
	if (!ev || !ev->weak) {
		if (ev)
			relay__free(ev);
		atomic_fetch_and(&obj->relay__flags, ~(unsigned)RELAY__OBJ_DELETE_PENDING);
		return -ENOMEM;
	}
	ev->target = obj;
	int rc = relay__post_to_object(obj, ev, RELAY__POST_LIVE);
	if (rc == 0)
		return 0;
	relay__event_free(ev, 0);
	if (rc == RELAY_ENOTDELIVERED)
		return 0;   /* destroyed meanwhile */
	if (rc != RELAY_ENOTRUNNING) {
		atomic_fetch_and(&obj->relay__flags, ~(unsigned)RELAY__OBJ_DELETE_PENDING);
		return rc;
	}
	/* T4: its thread has finished (or it has none): nobody else will ever
	 * destroy it, so do it here rather than leak it as Qt does. Callers in
	 * several threads may do this for objects of the same thread at once:
	 * the record's foreign lock serialises what destroy does to that
	 * thread's queue and to the parent/child links. */
	return relay__destroy_foreign(obj);
}

int relay__destroy_foreign(relay_object *obj)
{
	struct relay__tdata *home = relay__obj_thread(obj);
	if (home) {
		relay__tdata_ref(home);
		pthread_mutex_lock(&home->foreign_lock);
	}
	int rc = relay__object_destroy_unchecked(obj);
	if (home) {
		pthread_mutex_unlock(&home->foreign_lock);
		relay__tdata_unref(home);
	}
	return rc;
}

void relay_slot_delete_later(relay_object *obj)
{
	relay_object_delete_later(obj);
}

/* ---- affinity ---- */

relay_thread *relay_object_thread(const relay_object *obj)
{
	if (!obj)
		return NULL;
	struct relay__tdata *t = relay__obj_thread(obj);
	return t ? t->handle : NULL;
}

relay_object *relay_object_parent(const relay_object *obj)
{
	return obj ? obj->relay__parent : NULL;
}

/* Sets the affinity of obj's whole tree. */
static void set_tree_thread(relay_object *obj, struct relay__tdata *to)
{
	struct relay__tdata *old = atomic_exchange(&obj->relay__thread, to);
	if (to)
		relay__tdata_ref(to);
	if (old)
		relay__tdata_unref(old);   /* never the last: the mover holds one */
	for (relay_object *c = obj->relay__first_child; c; c = c->relay__next_sibling)
		set_tree_thread(c, to);
}

void relay__tree_set_flag(relay_object *obj, unsigned flag, bool on)
{
	if (on)
		atomic_fetch_or(&obj->relay__flags, flag);
	else   /* release: the new thread then sees the moved events */
		atomic_fetch_and_explicit(&obj->relay__flags, ~flag, memory_order_release);
	for (relay_object *c = obj->relay__first_child; c; c = c->relay__next_sibling)
		relay__tree_set_flag(c, flag, on);
}

static void retarget_tree(relay_object *obj, struct relay__tdata *to)
{
	pthread_mutex_t *l = relay__objlock(obj);
	pthread_mutex_lock(l);
	relay__conns_retarget_locked(obj, to);
	pthread_mutex_unlock(l);
	for (relay_object *c = obj->relay__first_child; c; c = c->relay__next_sibling)
		retarget_tree(c, to);
}

static int check_move(relay_object *obj, struct relay__tdata *to)
{
	char who[160];
	struct relay__tdata *from = relay__obj_thread(obj);
	if (from && !is_own_thread(obj))
		return wrong_thread(obj, "relay_object_move_to_thread",
				    "move it from its own thread (\"push\", not \"pull\")");
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

int relay_object_move_to_thread(relay_object *obj, relay_thread *thread)
{
	if (!obj || !obj->relay__class)
		return -EINVAL;
	struct relay__tdata *to = thread ? thread->relay__data : NULL;
	if (thread && !to)
		return -EINVAL;
	int rc = check_move(obj, to);
	if (rc < 0)
		return rc;
	struct relay__tdata *from = relay__obj_thread(obj);
	if (from == to)
		return 0;
	if (from)
		relay__tdata_ref(from);   /* keep it while we hold its lock */
	if (from && to) {
		/* The new thread holds back records for the tree until its
		 * pending events are moved (loop.c, settle). */
		relay__tree_set_flag(obj, RELAY__OBJ_IN_TRANSIT, true);
		set_tree_thread(obj, to);
		retarget_tree(obj, to);
		relay__timers_move(obj, to);
		/* Posts that read the old thread have landed: take them along.
		 * This ends the transit (under the new thread's queue lock). */
		relay__queue_grace_period(&from->prod);
		relay__move_events(from, to, obj);
	} else {
		set_tree_thread(obj, to);
		retarget_tree(obj, to);
		relay__timers_move(obj, to);
	}
	if (from)
		relay__tdata_unref(from);
	return 0;
}

int relay_object_set_parent(relay_object *obj, relay_object *parent)
{
	if (!obj || !obj->relay__class)
		return -EINVAL;
	if (!is_own_thread(obj))
		return wrong_thread(obj, "relay_object_set_parent", "call it in the object's thread");
	if (parent) {
		if (relay__obj_thread(parent) != relay__obj_thread(obj)) {
			char who[160];
			return relay__diag(RELAY_EPARENTTHREAD, "relay_object_set_parent: %s and its "
					   "new parent live in different threads; move it first",
					   relay__describe(obj, who, sizeof who));
		}
		if (relay__is_in_tree(parent, obj))
			return -EINVAL;   /* would make a cycle */
	}
	unlink_child(obj);
	if (parent)
		link_child(parent, obj);
	return 0;
}

int relay_object_set_name(relay_object *obj, const char *name)
{
	if (!obj || !name)
		return -EINVAL;
	pthread_mutex_t *l = relay__objlock(obj);
	pthread_mutex_lock(l);
	struct relay__objext *x = relay__ext_locked(obj);
	if (x)
		snprintf(x->name, sizeof x->name, "%s", name);
	pthread_mutex_unlock(l);
	return x ? 0 : -ENOMEM;
}

int relay_object_block_signals(relay_object *obj, bool block, bool *was)
{
	if (!obj)
		return -EINVAL;
	unsigned old = block ? atomic_fetch_or(&obj->relay__flags, RELAY__OBJ_BLOCKED)
			     : atomic_fetch_and(&obj->relay__flags, ~(unsigned)RELAY__OBJ_BLOCKED);
	if (was)
		*was = old & RELAY__OBJ_BLOCKED;
	return 0;
}
