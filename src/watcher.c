/*
 * watcher.c - relay_watcher (Qt's QSocketNotifier): an object whose
 * `activated(int fd)` signal fires in its thread while its fd is ready.
 *
 * Each thread keeps one registration per fd in its epoll set (READ and
 * WRITE watchers of one fd share it, as redis' ae merges masks: epoll
 * takes an fd once), level-triggered. The poller (poll_epoll.c) marks the
 * registrations epoll reports and queues them; a pass then fires them
 * (relay__watchers_run), after due timers and before events. A pass that
 * has work does not sleep, so while watchers are enabled every pass first
 * asks epoll without waiting: a busy loop still hears its fds.
 *
 * Who runs what: a registration, its thread's ready list and a watcher's
 * registration pointer belong to the thread that holds the loop's owner
 * token (queue.h: the thread itself, or whoever drains it when it is
 * gone); enable, disable, fire and unregister all run there. `enabled` is
 * read by any thread (relay_watcher_is_enabled), written there only.
 *
 * A slot may disable or destroy a watcher - its own or another one - while
 * a pass fires: a registration left with no watcher is not freed until
 * the firing loop ends (the graveyard), and every watcher is checked for
 * being enabled and registered right before its signal (ae's re-check), so
 * one disabled earlier in a pass does not fire later in it.
 */
#include "internal.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>

struct relay__watchdata {
	relay_watcher *owner;
	int fd, type;
	atomic_bool enabled;
	bool firing;                     /* its slot runs: not fired again inside */
	struct relay__fdreg *reg;        /* registered here, or NULL */
};

struct relay__fdreg {
	int fd;
	dev_t dev;                       /* the file it was registered for: */
	ino_t ino;                       /* a reused fd number is another file */
	uint32_t slot, gen;              /* its epoll key (fdtab) */
	uint32_t revents;                /* reported by epoll, not yet fired */
	bool queued;                     /* on the thread's ready list */
	bool dead;                       /* no watcher left: freed after the run */
	struct relay__watchdata *w[2];   /* [0] READ, [1] WRITE */
	struct relay__fdreg *next;       /* the thread's registrations */
	struct relay__fdreg *ready_next;
};

/* epoll's data is a key (slot + 1, generation), never a pointer: a closed
 * fd whose file a dup keeps open cannot be taken out of the epoll set
 * (epoll(7) Q6) and goes on being reported; with a key that nobody holds
 * any more such a report is recognised, never followed to freed memory,
 * and the set is rebuilt without it. */
struct relay__fdslot {
	struct relay__fdreg *reg;
	uint32_t gen;
	uint32_t next_free;
};

static uint64_t key_of(const struct relay__fdreg *r)
{
	return ((uint64_t)(r->slot + 1) << 32) | r->gen;
}

static int slot_take(struct relay__tdata *t, struct relay__fdreg *r)
{
	uint32_t i = t->fdtab_free;
	if (i == UINT32_MAX) {
		uint32_t n = t->fdtab_n, cap = n ? n * 2 : 16;
		struct relay__fdslot *tab = relay__alloc(cap * sizeof *tab);
		if (!tab)
			return -ENOMEM;
		if (n)
			memcpy(tab, t->fdtab, n * sizeof *tab);
		for (uint32_t k = n; k < cap; k++)
			tab[k] = (struct relay__fdslot){ NULL, 0, k + 1 < cap ? k + 1 : UINT32_MAX };
		relay__free(t->fdtab);
		t->fdtab = tab;
		t->fdtab_n = cap;
		i = n;
	}
	t->fdtab_free = t->fdtab[i].next_free;
	t->fdtab[i].reg = r;
	r->slot = i;
	r->gen = ++t->fdtab[i].gen;
	return 0;
}

static void slot_give(struct relay__tdata *t, struct relay__fdreg *r)
{
	struct relay__fdslot *sl = &t->fdtab[r->slot];
	sl->reg = NULL;
	sl->next_free = t->fdtab_free;
	t->fdtab_free = r->slot;
}

/* Is fd still the file r was registered for? */
static bool same_file(const struct relay__fdreg *r)
{
	struct stat st;
	return fstat(r->fd, &st) == 0 && st.st_dev == r->dev && st.st_ino == r->ino;
}

#define READ_EVENTS (EPOLLIN | EPOLLRDHUP | EPOLLPRI)
#define READ_FIRES (EPOLLIN | EPOLLRDHUP | EPOLLPRI | EPOLLHUP | EPOLLERR)
#define WRITE_FIRES (EPOLLOUT | EPOLLHUP | EPOLLERR)

static int slot_of(int type)
{
	return type == RELAY_WATCH_WRITE ? 1 : 0;
}

static uint32_t mask_of(const struct relay__fdreg *r)
{
	uint32_t m = 0;
	if (r->w[0] && atomic_load(&r->w[0]->enabled))
		m |= READ_EVENTS;
	if (r->w[1] && atomic_load(&r->w[1]->enabled))
		m |= EPOLLOUT;
	return m;
}

static struct relay__fdreg *reg_find(struct relay__tdata *t, int fd)
{
	for (struct relay__fdreg *r = t->fdregs; r; r = r->next)
		if (r->fd == fd && !r->dead && same_file(r))
			return r;
	return NULL;
}

static void reg_unlink(struct relay__tdata *t, struct relay__fdreg *r)
{
	for (struct relay__fdreg **pp = &t->fdregs; *pp; pp = &(*pp)->next)
		if (*pp == r) {
			*pp = r->next;
			return;
		}
}

/* Frees r now, or after the firing loop (which may still hold it). */
static void reg_bury(struct relay__tdata *t, struct relay__fdreg *r)
{
	reg_unlink(t, r);
	slot_give(t, r);
	r->dead = true;
	if (t->firing || r->queued) {
		r->next = t->fdgrave;
		t->fdgrave = r;
	} else {
		relay__free(r);
	}
}

/* The epoll interest of r, after a change. Returns 0 or a negative errno. */
static int reg_apply(struct relay__tdata *t, struct relay__fdreg *r, bool was_in)
{
	uint32_t m = mask_of(r);
	struct epoll_event ev = { .events = m, .data.u64 = key_of(r) };
	int rc = 0;
	if (m && was_in)
		rc = epoll_ctl(t->epfd, EPOLL_CTL_MOD, r->fd, &ev);
	else if (m)
		rc = epoll_ctl(t->epfd, EPOLL_CTL_ADD, r->fd, &ev);
	else if (was_in)
		rc = epoll_ctl(t->epfd, EPOLL_CTL_DEL, r->fd, &ev);
	return rc < 0 ? -errno : 0;
}

/* After a watcher of r left or was disabled: r's interest shrinks. A
 * closed fd (EBADF, ENOENT: epoll dropped it already, or cannot any more:
 * see fdslot) is not an error. */
static void reg_shrink(struct relay__tdata *t, struct relay__fdreg *r, bool was_in)
{
	int rc = reg_apply(t, r, was_in);
	if (rc < 0 && rc != -EBADF && rc != -ENOENT)
		relay__diag(rc, "relay_watcher: epoll_ctl for fd %d failed: %s", r->fd,
			    relay_strerror(rc));
}

static int watch_failed(const struct relay__watchdata *wd, int rc)
{
	char who[160];
	return relay__diag(rc, "relay_watcher: %s: cannot watch fd %d: %s",
			   relay__describe(&wd->owner->base, who, sizeof who), wd->fd,
			   relay_strerror(rc));
}

/* Takes wd out of t's epoll set (t's loop owner). */
static void unregister(struct relay__tdata *t, struct relay__watchdata *wd)
{
	struct relay__fdreg *r = wd->reg;
	if (!r)
		return;
	bool was_in = mask_of(r) != 0;
	bool was_enabled = atomic_load(&wd->enabled);
	r->w[slot_of(wd->type)] = NULL;
	wd->reg = NULL;
	if (was_enabled)
		t->watching--;
	reg_shrink(t, r, was_in);
	if (!r->w[0] && !r->w[1])
		reg_bury(t, r);
}

/* Puts an enabled wd into the calling thread's epoll set. */
static int do_register(struct relay__tdata *t, struct relay__watchdata *wd)
{
	struct relay__fdreg *r = reg_find(t, wd->fd);
	bool fresh = !r;
	if (fresh) {
		struct stat st;
		if (fstat(wd->fd, &st) < 0)
			return -errno;
		r = relay__calloc(sizeof *r);
		if (!r)
			return -ENOMEM;
		if (slot_take(t, r) < 0) {
			relay__free(r);
			return -ENOMEM;
		}
		r->fd = wd->fd;
		r->dev = st.st_dev;
		r->ino = st.st_ino;
	} else if (r->w[slot_of(wd->type)]) {
		char who[160];
		return relay__diag(-EEXIST, "relay_watcher: %s: fd %d already has a %s watcher in "
				   "this thread; use one watcher per fd and type",
				   relay__describe(&wd->owner->base, who, sizeof who), wd->fd,
				   wd->type == RELAY_WATCH_READ ? "read" : "write");
	}
	bool was_in = !fresh && mask_of(r) != 0;
	r->w[slot_of(wd->type)] = wd;
	int rc = reg_apply(t, r, was_in);
	if (rc < 0) {
		r->w[slot_of(wd->type)] = NULL;
		if (fresh) {
			slot_give(t, r);
			relay__free(r);
		}
		return watch_failed(wd, rc);
	}
	if (fresh) {
		r->next = t->fdregs;
		t->fdregs = r;
	}
	wd->reg = r;
	t->watching++;
	return 0;
}

/* Re-adds every live registration to a new epoll set (relay__poll_rebuild). */
static int add_all(struct relay__tdata *t, int epfd)
{
	for (struct relay__fdreg *r = t->fdregs; r; r = r->next) {
		uint32_t m = mask_of(r);
		if (!m || !same_file(r))
			continue;   /* a closed fd: its watchers are disabled when they fire */
		struct epoll_event ev = { .events = m, .data.u64 = key_of(r) };
		if (epoll_ctl(epfd, EPOLL_CTL_ADD, r->fd, &ev) < 0 && errno != EBADF)
			return -errno;
	}
	return 0;
}

/* A closed fd stays in the epoll set while a dup of it is open, and keeps
 * it readable: the loop would never sleep. Start a new set without it. */
static void drop_stuck(struct relay__tdata *t)
{
	int rc = relay__poll_rebuild(t, add_all);
	if (rc < 0) {
		relay__diag(rc, "relay_watcher: cannot rebuild the poll set of thread '%s': %s",
			    t->name, relay_strerror(rc));
		return;
	}
}

/* ---- the poller and the pass ---- */

void relay__watchers_collect(struct relay__tdata *t, uint64_t key, uint32_t events)
{
	uint32_t i = (uint32_t)(key >> 32) - 1, gen = (uint32_t)key;
	struct relay__fdreg *r = i < t->fdtab_n ? t->fdtab[i].reg : NULL;
	if (!r || t->fdtab[i].gen != gen) {
		t->fdstale = true;   /* a file nobody watches: rebuild after the run */
		return;
	}
	r->revents |= events;
	if (!r->queued) {
		r->queued = true;
		r->ready_next = NULL;
		*t->fdready_tail = r;
		t->fdready_tail = &r->ready_next;
	}
}

static void fire(struct relay__tdata *t, struct relay__watchdata *wd)
{
	relay_watcher *w = wd->owner;
	int fd = wd->fd;
	wd->firing = true;
	t->scope++;
	relay_emit(w, activated, &fd);
	t->scope--;
	wd->firing = false;
	if (!wd->owner)   /* its slot destroyed it: finalize left wd to us */
		relay__free(wd);
}

static int fire_reg(struct relay__tdata *t, struct relay__fdreg *r)
{
	uint32_t ev = r->revents;
	r->revents = 0;
	int n = 0;
	for (int i = 0; i < 2; i++) {
		/* Looked at again for each: a slot may have disabled, destroyed
		 * or moved either watcher since the pass began. */
		struct relay__watchdata *wd = r->w[i];
		if (r->dead || !wd || !wd->owner || !atomic_load(&wd->enabled) || wd->reg != r ||
		    wd->firing)
			continue;
		if (!(ev & (i == 0 ? READ_FIRES : WRITE_FIRES)))
			continue;
		/* A closed fd that epoll still reports (a dup of it is open),
		 * or whose number is another file's now: Qt's "Invalid socket,
		 * disabling". */
		if (!same_file(r)) {
			char who[160];
			relay__diag(-EBADF, "relay_watcher: %s: fd %d was closed while watched; "
				    "disabling the watcher (disable or destroy it before closing)",
				    relay__describe(&wd->owner->base, who, sizeof who), r->fd);
			relay_watcher_set_enabled(wd->owner, false);
			t->fdstale = true;   /* its file may stay in the set */
			continue;
		}
		fire(t, wd);
		n++;
	}
	return n;
}

int relay__watchers_run(struct relay__tdata *self)
{
	if (self->watching > 0)
		relay__poll_wait(self, 0);   /* a busy loop still hears its fds */
	if (self->fdstale && self->firing == 0) {
		self->fdstale = false;
		drop_stuck(self);
	}
	if (!self->fdready)
		return 0;
	/* The list as it is now: fds reported during the run wait for the
	 * next pass (a level-triggered fd a slot did not drain would
	 * otherwise keep this pass going). */
	struct relay__fdreg *list = self->fdready;
	self->fdready = NULL;
	self->fdready_tail = &self->fdready;
	int n = 0;
	self->firing++;
	while (list) {
		struct relay__fdreg *r = list;
		list = r->ready_next;
		r->ready_next = NULL;
		r->queued = false;
		n += fire_reg(self, r);
	}
	if (--self->firing == 0) {
		/* Kept: those on the new ready list (freed after the next run). */
		for (struct relay__fdreg **pp = &self->fdgrave; *pp;) {
			struct relay__fdreg *r = *pp;
			if (r->queued) {
				pp = &r->next;
			} else {
				*pp = r->next;
				relay__free(r);
			}
		}
	}
	return n;
}

bool relay__watchers_ready(const struct relay__tdata *t)
{
	return t->fdready != NULL;
}

void relay__watchers_teardown(struct relay__tdata *t)
{
	while (t->fdregs) {
		struct relay__fdreg *r = t->fdregs;
		t->fdregs = r->next;
		for (int i = 0; i < 2; i++)
			if (r->w[i])
				r->w[i]->reg = NULL;
		relay__free(r);
	}
	while (t->fdgrave) {
		struct relay__fdreg *r = t->fdgrave;
		t->fdgrave = r->next;
		relay__free(r);
	}
	relay__free(t->fdtab);
	t->fdtab = NULL;
	t->fdtab_n = 0;
	t->fdtab_free = UINT32_MAX;
	t->fdready = NULL;
	t->fdready_tail = &t->fdready;
	t->watching = 0;
}

/* ---- following a moved object (move.c) ---- */

static void rearm(void *data)
{
	relay_watcher *w = data;
	struct relay__watchdata *wd = w->relay__data;
	struct relay__tdata *self = relay__tdata_current();
	if (!wd || !atomic_load(&wd->enabled) || wd->reg ||
	    !relay__tdata_is_current(relay__obj_thread(&w->base)))
		return;
	if (do_register(self, wd) < 0)
		atomic_store(&wd->enabled, false);   /* reported by do_register */
}

static void take_one(relay_object *obj, struct relay__tdata *from, relay_watcher **list)
{
	if (atomic_load(&obj->relay__flags) & RELAY__OBJ_IS_WATCHER) {
		relay_watcher *w = (relay_watcher *)obj;
		struct relay__watchdata *wd = w->relay__data;
		if (wd && wd->reg && from)
			unregister(from, wd);   /* it stays enabled: registered again there */
		if (wd && atomic_load(&wd->enabled)) {
			w->relay__move_next = *list;
			*list = w;
		}
	}
	for (relay_object *c = obj->relay__first_child; c; c = c->relay__next_sibling)
		take_one(c, from, list);
}

relay_watcher *relay__watchers_take_tree(struct relay__tdata *from, relay_object *root)
{
	relay_watcher *list = NULL;
	take_one(root, from, &list);
	return list;
}

/* After the move: each enabled watcher registers again in its new thread,
 * from there (Qt queues setEnabled(true) the same way). */
void relay__watchers_follow(relay_watcher *list)
{
	while (list) {
		relay_watcher *w = list;
		list = w->relay__move_next;
		w->relay__move_next = NULL;
		int rc = relay_invoke(w, rearm, w, NULL);
		if (rc < 0 && rc != RELAY_ENOTRUNNING) {
			char who[160];
			relay__diag(rc, "relay_watcher: %s was moved but cannot be enabled in its "
				    "new thread (%s); enable it there again",
				    relay__describe(&w->base, who, sizeof who), relay_strerror(rc));
			atomic_store(&w->relay__data->enabled, false);
		}
	}
}

/* ---- the object ---- */

static void watcher_finalize(relay_object *obj)
{
	relay_watcher *w = (relay_watcher *)obj;
	struct relay__watchdata *wd = w->relay__data;
	if (!wd)
		return;
	/* Its registration is in its thread's set, which only that loop's
	 * owner touches: the thread itself, or one serving its stopped loop
	 * (delete_later of a watcher of a finished thread). */
	struct relay__tdata *home = relay__obj_thread(&w->base);
	if (wd->reg) {
		if (!home || !relay__loop_owned_here(home)) {
			wd->owner = NULL;   /* cannot happen; kept, never freed under it */
			w->relay__data = NULL;
			return;
		}
		unregister(home, wd);
	}
	w->relay__data = NULL;
	if (wd->firing) {   /* destroyed by its own slot: fire() frees it */
		wd->owner = NULL;
		return;
	}
	relay__free(wd);
}

static const relay_class watcher_class = { .name = "relay_watcher",
					   .finalize = watcher_finalize,
					   .size = sizeof(relay_watcher) };

int (relay_watcher_create)(int fd, int type, relay_object *parent, relay_watcher **out)
{
	if (!out)
		return -EINVAL;
	*out = NULL;
	if (fd < 0 || (type != RELAY_WATCH_READ && type != RELAY_WATCH_WRITE))
		return -EINVAL;
	struct relay__tdata *self = relay__tdata_current();
	if (!self)
		return -ENOMEM;
	struct relay__watchdata *wd = relay__calloc(sizeof *wd);
	if (!wd)
		return -ENOMEM;
	relay_watcher *w;
	int rc = relay_object_new(&w, &watcher_class, parent);
	if (rc < 0) {
		relay__free(wd);
		return rc;
	}
	wd->owner = w;
	wd->fd = fd;
	wd->type = type;
	w->relay__data = wd;
	atomic_fetch_or(&w->base.relay__flags, RELAY__OBJ_IS_WATCHER);
	atomic_store(&wd->enabled, true);
	rc = do_register(self, wd);
	if (rc < 0) {
		atomic_store(&wd->enabled, false);
		relay_object_destroy(w);
		return rc;
	}
	*out = w;
	return 0;
}

int relay_watcher_set_enabled(relay_watcher *w, bool on)
{
	int rc = relay__obj_check(w ? &w->base : NULL, "relay_watcher_set_enabled");
	if (rc < 0)
		return rc;
	struct relay__watchdata *wd = w->relay__data;
	if (!wd)
		return -EINVAL;
	struct relay__tdata *self = relay__tdata_current();
	if (!self || !relay__tdata_is_current(relay__obj_thread(&w->base))) {
		char who[160];
		return relay__diag(RELAY_EWRONGTHREAD, "relay_watcher_set_enabled: watchers cannot "
				   "be enabled or disabled from another thread: %s; use "
				   "relay_invoke() to do it in its thread",
				   relay__describe(&w->base, who, sizeof who));
	}
	if (on == atomic_load(&wd->enabled))
		return 0;
	if (!on) {
		struct relay__fdreg *r = wd->reg;
		if (r) {
			bool was_in = mask_of(r) != 0;
			atomic_store(&wd->enabled, false);
			self->watching--;
			reg_shrink(self, r, was_in);
		} else {
			atomic_store(&wd->enabled, false);
		}
		return 0;
	}
	if (wd->reg) {   /* disabled, still registered: its fd's mask grows */
		bool was_in = mask_of(wd->reg) != 0;
		atomic_store(&wd->enabled, true);
		rc = reg_apply(self, wd->reg, was_in);
		if (rc < 0) {
			atomic_store(&wd->enabled, false);
			return watch_failed(wd, rc);
		}
		self->watching++;
		return 0;
	}
	atomic_store(&wd->enabled, true);
	rc = do_register(self, wd);
	if (rc < 0)
		atomic_store(&wd->enabled, false);
	return rc;
}

bool relay_watcher_is_enabled(const relay_watcher *w)
{
	return w && w->relay__data && atomic_load(&w->relay__data->enabled);
}

int relay_watcher_fd(const relay_watcher *w)
{
	if (!w || !w->relay__data)
		return -EINVAL;
	return w->relay__data->fd;
}
