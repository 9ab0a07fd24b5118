/*
 * relay_glib.c - one GSource drives the attaching thread's relay loop
 * inside a GMainContext, through relay's embedding calls (relay.h,
 * "Embedding"; docs/design.md, "Embedding in a host loop").
 *
 * The source is the uv_backend_fd model (node-gtk's libuv source, Qt's
 * GLib dispatcher in spirit): relay's loop fd, an epoll fd that holds the
 * queue's eventfd and the watched fds, is one of the source's unix fds, so
 * GLib's own poll is relay's sleep and no g_main_context_wakeup is needed.
 *
 *   prepare   relay_loop_prepare: arms relay's wake-up, then looks; the
 *             poll timeout is the time to relay's next timer. GLib polls
 *             right after, so a post that comes after the look makes the
 *             fd readable and ends that poll: no wake-up is lost.
 *   check     the fd is readable, or relay_loop_prepare again (a timer
 *             became due while GLib polled).
 *   dispatch  relay_loop_dispatch(RELAY_GLIB_BUDGET_MS); it reads the fd
 *             quiet, so GLib does not spin on it.
 *
 * GLib calls all three with the context acquired by the iterating thread
 * and its lock NOT held (gmain.c: g_main_context_prepare_unlocked,
 * _check_unlocked and g_main_dispatch drop the lock around each call), so
 * the source may call into GLib (g_main_context_is_owner,
 * g_source_modify_unix_fd) and dispatch may run user code, nested loops
 * and relay_glib_detach. relay_loop_prepare runs no user code.
 *
 * Thread binding: relay's embedding calls work on the calling thread's
 * loop, so the source may only act in the thread that attached it (a
 * thread-local pointer says which). If another thread iterates the
 * context, the source runs nothing, masks its fd there (or that thread
 * would see it readable and spin), and reports once; the bound thread's
 * next prepare unmasks it.
 *
 * Lifetime: the attaching thread holds a reference on the source (in
 * rg_self) from attach to detach; GLib holds its own while it dispatches,
 * so a slot may detach during the source's dispatch. The source holds a
 * reference on its context and on the hooks' GMainLoop until detach.
 */
#define _GNU_SOURCE 1
#include "relay_glib.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RG_DOMAIN "relay-glib"

typedef struct rg_source {
	GSource source;
	GMainContext *ctx;               /* referenced until detach */
	relay_glib_hooks hooks;          /* hooks.loop referenced until detach */
	gpointer fd_tag;
	char thread_name[32];            /* the bound thread, for diagnostics */
	atomic_bool masked;              /* fd events 0: a wrong thread iterated */
	atomic_bool wrong_reported;      /* the one wrong-thread diagnostic */
	atomic_bool broken;              /* relay refused a call: run nothing more */
} rg_source;

/* The calling thread's source (bound thread only). */
static _Thread_local rg_source *rg_self;

/* ---- diagnostics ---- */

static bool fatal_warnings(void)
{
	const char *v = getenv("RELAY_FATAL_WARNINGS");
	return v && *v && strcmp(v, "0") != 0;
}

/* One line through GLib's log (domain "relay-glib", a warning): relay.h
 * offers add-ons no way to report through relay's own handler. */
G_GNUC_PRINTF(2, 3)
static int rg_diag(int code, const char *fmt, ...)
{
	char line[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	g_log(RG_DOMAIN, G_LOG_LEVEL_WARNING, "%s", line);
	if (fatal_warnings()) {
		fprintf(stderr, "relay-glib: RELAY_FATAL_WARNINGS is set: aborting\n");
		abort();
	}
	return code;
}

static void current_thread_name(char *buf, size_t size)
{
	if (pthread_getname_np(pthread_self(), buf, size) != 0)
		snprintf(buf, size, "?");
}

/* ---- the thread check ---- */

static void set_masked(rg_source *s, bool masked)
{
	if (atomic_load(&s->masked) == masked)
		return;
	atomic_store(&s->masked, masked);
	g_source_modify_unix_fd(&s->source, s->fd_tag, masked ? (GIOCondition)0 : G_IO_IN);
}

/* True when the source may act here: the bound thread, owning the
 * context, with relay still taking calls. Otherwise the fd is masked (so
 * this thread's poll does not spin on it) and it is reported once. */
static bool acting_here(rg_source *s, const char *phase)
{
	if (atomic_load(&s->broken))
		return false;
	bool bound = rg_self == s;
	if (bound && g_main_context_is_owner(s->ctx))
		return true;
	set_masked(s, true);
	if (!atomic_exchange(&s->wrong_reported, true)) {
		char name[32];
		current_thread_name(name, sizeof name);
		rg_diag(RELAY_EWRONGTHREAD, "relay-glib: %s of the source \"[relay] loop\" "
			"(attached in thread '%s') %s thread '%s'; relay runs nothing "
			"there: iterate the context in the thread that called "
			"relay_glib_attach", phase, s->thread_name,
			bound ? "without the context acquired, in" : "called from", name);
	}
	return false;
}

/* relay refused a call (its loop was detached behind relay-glib's back):
 * stop polling it, say so once. */
static void mark_broken(rg_source *s, const char *call, int rc)
{
	if (atomic_exchange(&s->broken, true))
		return;
	set_masked(s, true);
	rg_diag(rc, "relay-glib: %s failed in thread '%s' (%s); the source \"[relay] loop\" "
		"runs nothing more: detach with relay_glib_detach, not relay_loop_detach",
		call, s->thread_name, relay_strerror(rc));
}

/* ---- GSourceFuncs ---- */

static gboolean rg_prepare(GSource *src, gint *timeout)
{
	rg_source *s = (rg_source *)src;
	*timeout = -1;
	if (!acting_here(s, "prepare"))
		return FALSE;
	set_masked(s, false);   /* before the poll this prepare precedes */
	int t = -1;
	int rc = relay_loop_prepare(&t);
	if (rc < 0) {
		mark_broken(s, "relay_loop_prepare", rc);
		return FALSE;
	}
	*timeout = t;
	return rc > 0;
}

static gboolean rg_check(GSource *src)
{
	rg_source *s = (rg_source *)src;
	if (!acting_here(s, "check"))
		return FALSE;
	if (g_source_query_unix_fd(src, s->fd_tag) & G_IO_IN)
		return TRUE;
	/* Time has passed since prepare: a timer may be due. */
	int rc = relay_loop_prepare(NULL);
	if (rc < 0) {
		mark_broken(s, "relay_loop_prepare", rc);
		return FALSE;
	}
	return rc > 0;
}

static gboolean rg_dispatch(GSource *src, GSourceFunc callback, gpointer data)
{
	(void)callback;
	(void)data;
	rg_source *s = (rg_source *)src;
	if (!acting_here(s, "dispatch"))
		return G_SOURCE_CONTINUE;
	/* Slots run in here; one may detach (GLib keeps src alive until we
	 * return) or run a nested GLib loop (the source can recurse). */
	int rc = relay_loop_dispatch(RELAY_GLIB_BUDGET_MS);
	if (rc < 0 && rg_self == s)
		mark_broken(s, "relay_loop_dispatch", rc);
	return G_SOURCE_CONTINUE;
}

static GSourceFuncs rg_funcs = {
	.prepare = rg_prepare,
	.check = rg_check,
	.dispatch = rg_dispatch,
	.finalize = NULL,
};

/* relay_host.quit: in the bound thread, from relay_loop_dispatch. The
 * user's hook may detach, which drops the source's reference on the
 * loop: hold one of our own across it. */
static void rg_host_quit(void *user, int code)
{
	rg_source *s = user;
	GMainLoop *loop = s->hooks.loop ? g_main_loop_ref(s->hooks.loop) : NULL;
	if (s->hooks.quit)
		s->hooks.quit(s->hooks.user, code);
	if (loop) {
		g_main_loop_quit(loop);
		g_main_loop_unref(loop);
	}
}

/* ---- public ---- */

static void thread_name(char *buf, size_t size)
{
	relay_thread *t = relay_thread_current();
	if (!t || relay_thread_name(t, buf, size) < 0)
		snprintf(buf, size, "?");
}

int relay_glib_attach(GMainContext *ctx, int priority, const relay_glib_hooks *hooks)
{
	char name[32];
	thread_name(name, sizeof name);
	if (rg_self)
		return rg_diag(-EEXIST, "relay_glib_attach: relay-glib is attached in thread '%s' "
			       "already; relay_glib_detach first", name);
	if (!ctx)
		ctx = g_main_context_default();
	/* Fails only while another thread owns (iterates) the context. */
	if (!g_main_context_acquire(ctx))
		return rg_diag(RELAY_EWRONGTHREAD, "relay_glib_attach: another thread owns the "
			       "GMainContext (it is iterating it); attach in the thread that "
			       "iterates the context (thread '%s' called)", name);

	rg_source *s = (rg_source *)g_source_new(&rg_funcs, sizeof *s);
	if (hooks)
		s->hooks = *hooks;
	snprintf(s->thread_name, sizeof s->thread_name, "%s", name);
	relay_host host = { .quit = s->hooks.quit || s->hooks.loop ? rg_host_quit : NULL,
			    .user = s };
	int rc = relay_loop_attach(&host);
	int fd = rc == 0 ? relay_loop_fd() : -1;
	if (rc == 0 && fd < 0) {
		relay_loop_detach();
		rc = fd;
	}
	if (rc < 0) {
		g_source_unref(&s->source);
		g_main_context_release(ctx);
		return rc;
	}
	s->ctx = g_main_context_ref(ctx);
	if (s->hooks.loop)
		g_main_loop_ref(s->hooks.loop);
	s->fd_tag = g_source_add_unix_fd(&s->source, fd, G_IO_IN);
	g_source_set_priority(&s->source, priority);
	g_source_set_can_recurse(&s->source, TRUE);
	g_source_set_name(&s->source, "[relay] loop");
	g_source_attach(&s->source, ctx);
	rg_self = s;
	g_main_context_release(ctx);
	return 0;
}

int relay_glib_detach(void)
{
	rg_source *s = rg_self;
	if (!s) {
		char name[32];
		thread_name(name, sizeof name);
		return rg_diag(-EINVAL, "relay_glib_detach: relay-glib is not attached in thread "
			       "'%s'; detach in the thread that called relay_glib_attach", name);
	}
	rg_self = NULL;
	/* Stop polling first, then release relay's blocking callers. */
	g_source_destroy(&s->source);
	if (!atomic_load(&s->broken))
		relay_loop_detach();
	if (s->hooks.loop)
		g_main_loop_unref(s->hooks.loop);
	s->hooks.loop = NULL;
	GMainContext *ctx = s->ctx;
	s->ctx = NULL;
	g_source_unref(&s->source);
	g_main_context_unref(ctx);
	return 0;
}

bool relay_glib_is_attached(void)
{
	return rg_self != NULL;
}
