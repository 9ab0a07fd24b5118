/*
 * good_forms.c - everything relay accepts must compile cleanly, with every
 * warning an error: user structs, relay_object *, relay_thread and
 * relay_timer handles, a struct derived from a user object, const objects
 * for queries, NULL, void *, base-class slots, slots that ignore the
 * payload, functions with data. There is no failing variant.
 *
 * expect gcc: (compiles)
 * expect clang: (compiles)
 */
#include "common.h"

typedef struct special {
	worker base;      /* derived from a user object */
	int extra;
} special;

static void window_on_progress(window *self, const int *percent)
{
	self->percent = *percent;
}
static void window_on_any(window *self)
{
	self->percent = -1;
}
static void object_on_progress(relay_object *self, const int *percent)
{
	(void)self;
	(void)percent;
}
static void on_progress_fn(void *data, const int *percent)
{
	*(int *)data = *percent;
}
static void on_complete_fn(window *data)
{
	data->percent = 100;
}

int check(worker *w, window *win)
{
	static const relay_class cls = { .name = "special" };
	relay_thread *t = NULL;
	relay_timer *tm = NULL;
	special *s = NULL;
	const window *cwin = win;
	void *anything = win;
	char name[32];
	int rc = 0;
	rc |= relay_object_new(&s, &cls, NULL);
	rc |= relay_thread_create("worker", NULL, &t);
	rc |= relay_timer_create(win, &tm);
	rc |= relay_object_move_to_thread(w, t);
	rc |= relay_object_move_to_thread(s, t);
	rc |= relay_object_set_parent(s, w);
	rc |= relay_object_set_parent(s, NULL);
	rc |= relay_object_name(cwin, name, sizeof name);
	rc |= relay_object_thread(cwin) != NULL;
	rc |= relay_object_parent(&w->base) != NULL;
	rc |= relay_object_set_name(t, "thread");
	rc |= relay_object_set_name(tm, "timer");
	rc |= relay_object_block_signals(anything, false, NULL);
	rc |= relay_connect(w, progress, win, window_on_progress);
	rc |= relay_connect(s, base.progress, win, window_on_progress);
	rc |= relay_connect(w, progress, win, window_on_any);
	rc |= relay_connect(w, progress, win, object_on_progress);
	rc |= relay_connect(w, progress, w, relay_slot_delete_later);
	rc |= relay_connect(w, complete, t, relay_slot_quit);
	rc |= relay_connect(w, base.destroyed, win, window_on_any);
	rc |= relay_connect(t, started, win, window_on_any);
	rc |= relay_connect_func(w, progress, on_progress_fn, &win->percent);
	rc |= relay_connect_func_ex(w, complete, win, on_complete_fn, win, RELAY_QUEUED, 0u, NULL);
	rc |= relay_emit(w, progress, &win->percent);
	rc |= relay_emit(w, progress, &cwin->percent);
	rc |= relay_emit(w, complete);
	rc |= relay_emit(s, base.complete);
	rc |= relay_single_shot(10, win, window_on_any);
	rc |= relay_disconnect_receiver(win);
	rc |= relay_object_delete_later(s);
	rc |= relay_object_destroy(tm);
	return rc;
}
