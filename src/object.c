/*
 * object.c - relay_object: creation, parent/children, destroy,
 * delete_later, names and weak references, with Qt's ownership rules
 * enforced (DESIGN.md O1-O3, T4). move_to_thread is in move.c, anchors in
 * anchor.c.
 *
 * Object locks: a fixed table of mutexes striped by address, as Qt's
 * signalSlotLock, so an object costs no mutex of its own. They guard an
 * object's ext part (name, connection lists). "Is it alive, where does it
 * live" is the anchor's, and needs no lock.
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

struct relay__objext *relay__ext_locked(relay_object *obj, struct relay__objext **spare)
{
	if (!obj->relay__ext && spare && *spare) {
		obj->relay__ext = *spare;
		*spare = NULL;
	}
	return obj->relay__ext;
}

static unsigned flags_of(const relay_object *obj)
{
	return atomic_load(&((relay_object *)obj)->relay__flags);
}

/* ---- diagnostics helpers ---- */

int (relay_object_name)(const relay_object *obj, char *buf, size_t size)
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

/* What a thread other than obj's may read of where obj lives: under the
 * object's lock (destroy lets go of the anchor under it) and in a section
 * (a mover lets go of the old home only after a grace period). */
static void thread_name_of(const relay_object *obj, char *buf, size_t size,
			   relay_thread **handle)
{
	struct relay__tdata *self = relay__tdata_current();
	pthread_mutex_t *l = relay__objlock(obj);
	pthread_mutex_lock(l);
	if (self)
		relay__section_enter(&self->grace);
	struct relay__anchor *a = relay__obj_anchor(obj);
	struct relay__tdata *t = a && self ? relay__anchor_home(a) : NULL;
	snprintf(buf, size, "%s", t ? t->name : "none");
	if (handle)
		*handle = t ? atomic_load(&t->handle) : NULL;
	if (self)
		relay__section_leave(&self->grace);
	pthread_mutex_unlock(l);
}

const char *relay__describe(const relay_object *obj, char *buf, size_t size)
{
	char name[80], thread[16];
	relay_object_name(obj, name, sizeof name);
	thread_name_of(obj, thread, sizeof thread, NULL);
	snprintf(buf, size, "object '%s' (thread '%s')", name, thread);
	return buf;
}

int relay__obj_check(const relay_object *obj, const char *what)
{
	if (!obj || !obj->relay__class)
		return -EINVAL;
	if (!(flags_of(obj) & RELAY__OBJ_DESTROYING))
		return 0;
	char who[160];
	return relay__diag(RELAY_EDESTROYED, "%s: %s is being or has been destroyed; "
			   "keep a relay_weak to it and check it before use",
			   what, relay__describe(obj, who, sizeof who));
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

int (relay_object_init)(relay_object *obj, const relay_class *cls, relay_object *parent)
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
	if (parent) {
		int rc = relay__obj_check(parent, "relay_object_init");
		if (rc < 0)
			return rc;
		if (!is_own_thread(parent)) {
			char who[160];
			return relay__diag(RELAY_EPARENTTHREAD, "relay_object_init: parent %s lives "
					   "in another thread than '%s'; create the child in the "
					   "parent's thread",
					   relay__describe(parent, who, sizeof who), self->name);
		}
	}
	struct relay__anchor *a = relay__anchor_new(obj, self);
	if (!a)
		return -ENOMEM;
	obj->relay__class = cls;
	atomic_store(&obj->relay__flags, 0);
	obj->relay__first_child = obj->relay__next_sibling = obj->relay__parent = NULL;
	obj->relay__ext = NULL;
	atomic_store(&obj->relay__anchor, a);
	if (parent)
		link_child(parent, obj);
	return 0;
}

/* out is a T ** of the caller's type: written with memcpy, as the bytes
 * of a pointer, so that no pointer type is accessed as another. */
int relay_object_alloc(size_t size, const relay_class *cls, relay_object *parent, void *out)
{
	relay_object *obj = NULL;
	if (out)
		memcpy(out, &obj, sizeof obj);
	if (!out || !cls || size < sizeof(relay_object))
		return -EINVAL;
	if (size < cls->size)
		return relay__diag(-EINVAL, "relay_object_new: %zu bytes for a '%s' of %zu: "
				   "declare the pointer as the class's own struct type, "
				   "not relay_object *", size, cls->name ? cls->name : "?",
				   cls->size);
	obj = relay__calloc(size);
	if (!obj)
		return -ENOMEM;
	int rc = relay_object_init(obj, cls, parent);
	if (rc < 0) {
		relay__free(obj);
		return rc;
	}
	atomic_fetch_or(&obj->relay__flags, RELAY__OBJ_OWNED_MEMORY);
	memcpy(out, &obj, sizeof obj);
	return 0;
}

/* ---- weak references: a counted reference on the anchor ---- */

int (relay_weak_set)(relay_weak *w, relay_object *obj)
{
	if (!w)
		return -EINVAL;
	struct relay__anchor *a = NULL;
	if (obj) {
		int rc = relay__obj_check(obj, "relay_weak_set");
		if (rc < 0)
			return rc;
		if (!(a = relay__anchor_get(obj)))
			return RELAY_EDESTROYED;   /* destroyed meanwhile */
	}
	relay__anchor_unref(w->relay__b);
	w->relay__b = a;
	return 0;
}

relay_object *relay_weak_get(const relay_weak *w)
{
	if (!w || !w->relay__b)
		return NULL;
	return relay__anchor_obj(w->relay__b);
}

void relay_weak_clear(relay_weak *w)
{
	if (!w)
		return;
	relay__anchor_unref(w->relay__b);
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

static void release_ext(relay_object *obj)
{
	pthread_mutex_t *l = relay__objlock(obj);
	pthread_mutex_lock(l);
	struct relay__objext *x = obj->relay__ext;
	obj->relay__ext = NULL;
	pthread_mutex_unlock(l);
	relay__free(x);
}

static void destroy_children(relay_object *obj)
{
	while (obj->relay__first_child) {
		relay_object *c = obj->relay__first_child;
		/* A running thread's handle is never destroyed (its finalizer
		 * would join a thread nobody asked to quit): it is orphaned. */
		if ((flags_of(c) & RELAY__OBJ_IS_THREAD) && relay__thread_check_destroy(c) < 0) {
			unlink_child(c);
			continue;
		}
		relay__object_destroy_unchecked(c);
		if (obj->relay__first_child == c)   /* re-entrant: unlink anyway */
			unlink_child(c);
	}
}

int relay__object_destroy_unchecked(relay_object *obj)
{
	unsigned old = atomic_fetch_or(&obj->relay__flags, RELAY__OBJ_DESTROYING);
	if (old & RELAY__OBJ_DESTROYING)
		return 0;   /* re-entrant destroy from a destroyed slot */
	struct relay__anchor *a = relay__obj_anchor(obj);
	/* From here on nothing is delivered to it and weak references read
	 * NULL (as Qt's QPointer, already in destroyed slots). */
	atomic_store_explicit(&a->obj, NULL, memory_order_release);
	relay__signal_abort_emissions(obj);
	relay_emit(obj, destroyed);
	/* Connections go before the children (Qt's order): a parent that
	 * listens to its child's destroyed is not called half destroyed. */
	relay__object_cut_connections(obj);
	destroy_children(obj);
	unlink_child(obj);
	release_ext(obj);
	relay__shots_cancel(a);
	/* What was queued for it is dropped when met (its anchor is dead); a
	 * loop nobody runs is purged now, so it does not keep the copies. */
	struct relay__tdata *home = relay__anchor_home(a);
	if (home && relay__tls.serving == home)
		relay__purge_events(home, a);

	const relay_class *cls = obj->relay__class;
	bool owned = old & RELAY__OBJ_OWNED_MEMORY;
	if (cls && cls->finalize)
		cls->finalize(obj);
	relay__anchor_detach(obj);
	if (owned)
		relay__free(obj);
	relay__anchor_unref(a);
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

int (relay_object_destroy)(relay_object *obj)
{
	if (!obj || !obj->relay__class)
		return -EINVAL;
	if (flags_of(obj) & RELAY__OBJ_DESTROYING)
		return 0;
	if (relay__obj_owner_thread(obj) && !is_own_thread(obj))
		return wrong_thread(obj, "relay_object_destroy",
				    "use relay_object_delete_later() from other threads");
	int rc = check_no_running_thread(obj);
	if (rc < 0)
		return rc;
	return relay__object_destroy_unchecked(obj);
}

/* ---- deferred deletion ---- */

/* The loop level a deletion asked for now waits for (0: the next pass):
 * from inside the object's own thread's slots, until control is back at
 * a level below this one (loop.c). */
static int delete_level(struct relay__tdata *home, struct relay__tdata *self)
{
	if (home != self)
		return 0;
	bool inside = atomic_load(&self->loop_depth) > 0 || self->scope > 0;
	return inside ? relay__loop_level(self) : 0;
}

/* The anchor's home, referenced (read in a section: a mover drops the old
 * home's reference only after a grace period). */
static struct relay__tdata *home_ref(struct relay__tdata *self, struct relay__anchor *a)
{
	relay__section_enter(&self->grace);
	struct relay__tdata *h = relay__anchor_home(a);
	if (h)
		relay__tdata_ref(h);
	relay__section_leave(&self->grace);
	return h;
}

/* Leaves the deletion (a referenced anchor) in home's mailbox: its thread
 * runs it, or - stopped - the calling thread serves the loop now. */
static void mail_delete(struct relay__tdata *home, struct relay__anchor *a)
{
	relay__queue_mail(&home->q, a);
	if (relay__tstate_stopped(relay__tstate(home)))
		relay__loop_serve(home);
	else
		relay__loop_wake(home);
}

int (relay_object_delete_later)(relay_object *obj)
{
	if (!obj || !obj->relay__class)
		return -EINVAL;
	struct relay__tdata *self = relay__tdata_current();
	if (!self)
		return -ENOMEM;
	unsigned old = atomic_fetch_or(&obj->relay__flags, RELAY__OBJ_DELETE_PENDING);
	if (old & (RELAY__OBJ_DELETE_PENDING | RELAY__OBJ_DESTROYING))
		return 0;   /* T4: repeated calls collapse into one */
	/* Its owner may destroy it right now: hold the anchor (the mailbox's
	 * reference, if it goes there). */
	struct relay__anchor *a = relay__anchor_get(obj);
	if (!a)
		return 0;   /* destroyed meanwhile */
	struct relay__tdata *home = home_ref(self, a);
	if (!home) {   /* no thread: nobody else will ever destroy it */
		if (check_no_running_thread(obj) < 0)
			atomic_fetch_and(&obj->relay__flags, ~(unsigned)RELAY__OBJ_DELETE_PENDING);
		else
			relay__object_destroy_unchecked(obj);
		relay__anchor_unref(a);
		return 0;
	}
	atomic_store(&a->del_level, delete_level(home, self));
	mail_delete(home, a);
	relay__tdata_unref(home);
	return 0;
}

void relay__delete_now(struct relay__tdata *self, struct relay__anchor *a)
{
	relay_object *obj = relay__anchor_obj(a);
	struct relay__tdata *home = obj ? relay__anchor_home(a) : NULL;
	if (obj && home && home != self) {
		/* It moved after the deletion was mailed: it follows (memory-safe:
		 * only the anchor is used). */
		struct relay__tdata *self_rec = relay__tdata_current();
		struct relay__tdata *h = self_rec ? home_ref(self_rec, a) : NULL;
		if (h) {
			mail_delete(h, a);
			relay__tdata_unref(h);
			return;
		}
	}
	atomic_fetch_add_explicit(&self->delivered, 1, memory_order_relaxed);
	if (obj && (home == self || !home)) {   /* no thread: nobody else will */
		self->scope++;
		/* Refused (the handle of a thread that still runs, with its
		 * diagnostic): a later delete_later may try again. */
		if (check_no_running_thread(obj) < 0)
			atomic_fetch_and(&obj->relay__flags, ~(unsigned)RELAY__OBJ_DELETE_PENDING);
		else
			relay__object_destroy_unchecked(obj);
		self->scope--;
	}
	relay__anchor_unref(a);
}

void relay_slot_delete_later(relay_object *obj)
{
	relay_object_delete_later(obj);
}

/* ---- affinity ---- */

relay_thread *(relay_object_thread)(const relay_object *obj)
{
	if (!obj)
		return NULL;
	char unused[16];
	relay_thread *h;
	thread_name_of(obj, unused, sizeof unused, &h);
	return h;
}

relay_object *(relay_object_parent)(const relay_object *obj)
{
	return obj ? obj->relay__parent : NULL;
}

int (relay_object_set_parent)(relay_object *obj, relay_object *parent)
{
	int rc = relay__obj_check(obj, "relay_object_set_parent");
	if (rc < 0)
		return rc;
	if (!is_own_thread(obj))
		return wrong_thread(obj, "relay_object_set_parent", "call it in the object's thread");
	if (parent) {
		rc = relay__obj_check(parent, "relay_object_set_parent");
		if (rc < 0)
			return rc;
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

int (relay_object_set_name)(relay_object *obj, const char *name)
{
	if (!name)
		return -EINVAL;
	int rc = relay__obj_check(obj, "relay_object_set_name");
	if (rc < 0)
		return rc;
	/* The ext part is allocated before the lock is taken. */
	struct relay__objext *spare = relay__calloc(sizeof *spare);
	pthread_mutex_t *l = relay__objlock(obj);
	pthread_mutex_lock(l);
	struct relay__objext *x = relay__ext_locked(obj, &spare);
	if (x)
		snprintf(x->name, sizeof x->name, "%s", name);
	pthread_mutex_unlock(l);
	relay__free(spare);
	return x ? 0 : -ENOMEM;
}

int (relay_object_block_signals)(relay_object *obj, bool block, bool *was)
{
	if (!obj)
		return -EINVAL;
	unsigned old = block ? atomic_fetch_or(&obj->relay__flags, RELAY__OBJ_BLOCKED)
			     : atomic_fetch_and(&obj->relay__flags, ~(unsigned)RELAY__OBJ_BLOCKED);
	if (was)
		*was = old & RELAY__OBJ_BLOCKED;
	return 0;
}
