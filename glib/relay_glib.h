/*
 * relay_glib.h - relay-glib: a GLib main loop (GTK's, GApplication's, a
 * plain GMainLoop's) drives the calling thread's relay loop.
 *
 * This header is the manual of librelay-glib.so; read it top to bottom.
 * relay.h's conventions hold here too: a function returns 0 or a negative
 * code (RELAY_E*, or a negated errno such as -EINVAL; relay_strerror()
 * names it), never aborts and says which threads may call it.
 *
 * What it does. relay_glib_attach() adds one GSource, named "[relay] loop",
 * to a GMainContext. The source polls the thread's relay loop fd
 * (relay_loop_fd) and runs relay's embedding calls (relay.h, "Embedding"):
 * prepare -> relay_loop_prepare, check -> relay_loop_prepare again (or the
 * fd is readable), dispatch -> relay_loop_dispatch(RELAY_GLIB_BUDGET_MS).
 * While GLib iterates the context, in the thread that attached:
 *   - queued slots, relay_invoke calls and delete_later run in that thread,
 *     as under relay_main_run;
 *   - relay timers and single shots fire (the source gives GLib the time
 *     to the next one as its poll timeout, so an idle loop sleeps);
 *   - other threads' blocking calls (RELAY_BLOCKING, relay_invoke_blocking)
 *     into the thread are served; after relay_glib_detach none is left
 *     hanging: new ones are refused with RELAY_ENOTRUNNING, and those
 *     already waiting are released without running (relay 0.1 returns
 *     RELAY_ENOTDELIVERED to them);
 *   - relay_main_quit / relay_main_exit reach the host loop (see the hooks).
 * Blocking calls FROM this thread (relay_invoke_blocking to a worker) do
 * not run GLib while they wait, as in Qt: the window freezes meanwhile.
 *
 * A GTK 4 program (the main thread):
 *
 *     static void on_activate(GtkApplication *app, gpointer data)
 *     {
 *         ... build the window; move workers to relay_threads, connect
 *             their signals to objects living in the main thread ...
 *     }
 *     static void on_quit(void *app, int code) { g_application_quit(app); }
 *
 *     GtkApplication *app = gtk_application_new("org.example.x", 0);
 *     relay_glib_hooks hooks = { .quit = on_quit, .user = app };
 *     relay_glib_attach(NULL, RELAY_GLIB_PRIORITY, &hooks);
 *     g_signal_connect(app, "activate", G_CALLBACK(on_activate), NULL);
 *     int status = g_application_run(G_APPLICATION(app), argc, argv);
 *     relay_main_shutdown(-1);     // stops the relay_threads, serving them
 *     relay_glib_detach();
 *     g_object_unref(app);
 *
 * Copyright (c) 2026 the relay authors. MIT licence, see LICENSE.
 */
#ifndef RELAY_GLIB_H
#define RELAY_GLIB_H

#include <glib.h>
#include <relay.h>

#ifdef __cplusplus
extern "C" {
#endif

/* RELAY_GLIB_API marks what librelay-glib.so exports (it is built with
 * -fvisibility=hidden; glib/librelay-glib.symbols is the list, checked by
 * the test abi_symbols_glib). */
#if defined(__GNUC__) || defined(__clang__)
#define RELAY_GLIB_API __attribute__((visibility("default")))
#else
#define RELAY_GLIB_API
#endif

#define RELAY_GLIB_VERSION_MAJOR 0
#define RELAY_GLIB_VERSION_MINOR 1
#define RELAY_GLIB_VERSION_PATCH 0

/* The priority to attach at: G_PRIORITY_DEFAULT_IDLE (200).
 *
 * GLib dispatches, in each iteration, only the ready sources of the most
 * urgent priority (the smallest number): a source that is ready on every
 * iteration starves every source of a larger number. GTK paints at
 * GDK_PRIORITY_REDRAW (120) and lays out at GTK_PRIORITY_RESIZE (110);
 * input comes at GDK_PRIORITY_EVENTS (0). A worker that floods the main
 * thread with progress events keeps relay's source ready all the time, so
 * at G_PRIORITY_DEFAULT (0, Qt's choice) the window would never be
 * painted until the flood ends (Twisted's GTK reactor had that bug, and
 * moved to 200). At 200 GTK paints and lays out first, and relay runs in
 * between, RELAY_GLIB_BUDGET_MS at a time. Measured by test G7
 * (glib/tests/test_glib.c, glib/README.md): a 60 Hz timeout at 120 keeps
 * ticking under a flood of 10^6 events at 200, and stalls at 0.
 *
 * The price: a GLib source of your own at a priority more urgent than 200
 * that is always ready (an idle at G_PRIORITY_DEFAULT that never returns
 * G_SOURCE_REMOVE) starves relay. Pass G_PRIORITY_DEFAULT (or any value)
 * to relay_glib_attach to rank relay above painting instead. */
#define RELAY_GLIB_PRIORITY G_PRIORITY_DEFAULT_IDLE

/* Each dispatch of relay's source runs relay work for at most this many
 * milliseconds, then gives the iteration back to GLib (the rest stays
 * queued, in order, and is reported ready at once), so input and painting
 * go on during a long backlog. 2 ms, not half a frame (8 ms): a slice is
 * often preempted and ends late, and GLib re-arms a timeout from its late
 * dispatch, so lost time is never made up. Measured with bench case G (a
 * 60 Hz timeout at 120 under a flood, docs/performance.md): 45-48
 * ticks/s with 8 ms slices, 52-54 with 4, 55-56 with 2, the flood's
 * throughput the same. */
#define RELAY_GLIB_BUDGET_MS 2

/* What relay_main_quit / relay_main_exit from any thread (and
 * relay_loop_quit / relay_loop_exit called in a slot with no relay loop
 * running) do to the host. Every member may be NULL.
 *   quit(user, code): called first, in the attached thread, from the
 *     source's dispatch; code is the exit code (0 for a quit). Typically
 *     g_application_quit(user), or store the code and quit your loop.
 *   loop: then g_main_loop_quit(loop). relay_glib_attach takes a
 *     reference on it, relay_glib_detach drops it.
 * With neither, such a quit is reported by relay's diagnostic and dropped
 * (the host loop goes on), as relay.h says of relay_host.quit.
 *
 * g_main_loop_quit ends only the loop it is given: when a quit comes
 * while a nested g_main_loop_run (a modal dialog) runs inside a slot, the
 * nested loop goes on until it ends by itself, then `loop` returns.
 * Two cases do not reach the hooks (relay 0.1, glib/README.md): a quit
 * taken by a relay loop running nested in a slot (relay_loop_run), which
 * returns and keeps it; and relay_loop_quit called outside a slot (in a
 * GLib callback), which waits for the next relay event - use
 * relay_main_quit, or quit your loop yourself, there. */
typedef struct relay_glib_hooks {
	void (*quit)(void *user, int code);
	void *user;
	GMainLoop *loop;
} relay_glib_hooks;

/* Let ctx (NULL: g_main_context_default()) drive the calling thread's
 * relay loop, at `priority` (RELAY_GLIB_PRIORITY unless you have a
 * reason). The calling thread is bound to the source: ctx must be
 * iterated in this thread (as GTK's default context is in the main
 * thread). If another thread iterates it anyway, the source runs nothing
 * there and reports one diagnostic (g_warning, log domain "relay-glib";
 * RELAY_FATAL_WARNINGS=1 then aborts, as relay's own). hooks may be NULL;
 * it is copied.
 *
 * The source can recurse (g_source_set_can_recurse): relay events keep
 * flowing inside a nested g_main_loop_run or g_main_context_iteration
 * started from a slot or from any GLib callback (a modal dialog), so a
 * slot may run while an outer slot of the same thread is still on the
 * stack, as in Qt. A relay loop run inside a slot (relay_loop_run, a
 * relay_invoke_blocking from this thread to another) runs relay's events
 * only: GLib's wait until it returns.
 *
 * The main thread or a thread of yours; not a relay_thread, which runs its
 * own loop. The context is referenced until relay_glib_detach. Returns 0,
 * -EINVAL (called in a relay_thread), -EEXIST (this thread's relay loop
 * is attached already, by relay-glib or another host: detach first),
 * RELAY_EWRONGTHREAD (another thread owns ctx now, g_main_context_acquire
 * fails: iterate and attach it in one thread), -ENOMEM. Nothing is
 * attached on an error. */
RELAY_GLIB_API int relay_glib_attach(GMainContext *ctx, int priority,
				     const relay_glib_hooks *hooks);

/* Undo relay_glib_attach in the calling thread: the source is destroyed
 * (GLib no longer polls relay), relay_loop_detach is called (other
 * threads' blocking calls into this thread are released, see above, and
 * refused with RELAY_ENOTRUNNING from then on), the references to the
 * context and the hooks' loop are dropped. Call it before the thread
 * ends, and after relay_main_shutdown: a relay loop pass run in this
 * thread after the detach (relay_process_events, relay_main_shutdown)
 * makes relay count on the thread to serve blocking calls again. Events posted to the thread stay queued, in order, for a
 * later attach or relay loop pass (relay_main_shutdown runs them).
 * May be called from a slot or any GLib callback running in the attached
 * thread, also during the source's own dispatch (what that dispatch has
 * not run yet stays queued), and attach may follow at once.
 * The attached thread; returns 0, or -EINVAL with a diagnostic when
 * relay-glib is not attached in this thread. */
RELAY_GLIB_API int relay_glib_detach(void);

/* Whether relay-glib is attached in the calling thread. Cannot fail. */
RELAY_GLIB_API bool relay_glib_is_attached(void);

#ifdef __cplusplus
}
#endif
#endif /* RELAY_GLIB_H */
