/*
 * anchor.c - an object's anchor: its identity for everything that may
 * outlive it (internal.h says what it holds and why).
 *
 * Who may run what at the same time:
 *   - obj is set at init and cleared once, by destroy, at its start;
 *     anyone holding a reference reads it.
 *   - home is changed only by move_to_thread, run by the object's thread
 *     (or by any thread for an object with no thread); anyone holding a
 *     reference reads it, inside a section when it will use the thread
 *     record it names (the mover drops the old record's reference only
 *     after a grace period).
 *   - the reference count is atomic; the last holder frees the anchor and
 *     drops its reference on the home record.
 *   - shots belong to the owner of the home loop.
 */
#include "internal.h"

struct relay__anchor *relay__anchor_new(relay_object *obj, struct relay__tdata *home)
{
	struct relay__anchor *a = relay__calloc(sizeof *a);
	if (!a)
		return NULL;
	atomic_init(&a->obj, obj);
	atomic_init(&a->refs, 1);   /* the object's */
	if (home)
		relay__tdata_ref(home);
	atomic_init(&a->home, (uintptr_t)home);
	return a;
}

void relay__anchor_ref(struct relay__anchor *a)
{
	atomic_fetch_add_explicit(&a->refs, 1, memory_order_relaxed);
}

void relay__anchor_unref(struct relay__anchor *a)
{
	if (!a || atomic_fetch_sub_explicit(&a->refs, 1, memory_order_acq_rel) != 1)
		return;
	struct relay__tdata *home = relay__anchor_home(a);
	relay__free(a);
	if (home)
		relay__tdata_unref(home);
}

struct relay__tdata *relay__anchor_rehome(struct relay__anchor *a, uintptr_t home)
{
	struct relay__tdata *to = relay__home_of(home);
	if (to)
		relay__tdata_ref(to);
	/* seq_cst: the changer's store of the Dekker pair with the posts'
	 * sections (grace.h). */
	uintptr_t old = atomic_exchange_explicit(&a->home, home, memory_order_seq_cst);
	return relay__home_of(old);
}

void relay__anchor_transit(struct relay__anchor *a, bool on)
{
	/* seq_cst: as relay__anchor_rehome. */
	if (on)
		atomic_fetch_or_explicit(&a->home, RELAY__HOME_TRANSIT, memory_order_seq_cst);
	else
		atomic_fetch_and_explicit(&a->home, ~RELAY__HOME_TRANSIT, memory_order_seq_cst);
}

struct relay__anchor *relay__anchor_get(relay_object *obj)
{
	/* Under the object's lock: destroy clears the pointer under it before
	 * it drops the object's reference, so the anchor read here is alive. */
	pthread_mutex_t *l = relay__objlock(obj);
	pthread_mutex_lock(l);
	struct relay__anchor *a = relay__obj_anchor(obj);
	if (a && relay__anchor_obj(a))
		relay__anchor_ref(a);
	else
		a = NULL;
	pthread_mutex_unlock(l);
	return a;
}

void relay__anchor_detach(relay_object *obj)
{
	pthread_mutex_t *l = relay__objlock(obj);
	pthread_mutex_lock(l);
	atomic_store(&obj->relay__anchor, NULL);
	pthread_mutex_unlock(l);
}
