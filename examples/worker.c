/*
 * worker.c - the seed's worker model ("Using threads with PyQt") in C, step
 * for step. Each Python line stands as a comment beside its C equivalent,
 * and every step prints the thread it runs in, so the output shows the
 * model at work:
 *
 *	[main  ] (main thread) worker created in the main thread
 *	...
 *	[worker] a_method_to_run_in_the_thread: your code runs here
 *	[main  ] (main thread) run_on_complete: ...
 *
 * After the seed's last line (thread.start()) comes what the seed leaves
 * out and a real program needs: a clean shutdown. run_on_complete quits
 * the main loop, the worker is deleted later in its own thread, the
 * thread is stopped and destroyed, and nothing leaks (valgrind clean).
 *
 * Build: examples/CMakeLists.txt makes every .c file there a program.
 * Run:   ./worker        exit code 0 on success, 1 if relay refused a step.
 */
#define _POSIX_C_SOURCE 200809L /* flockfile */

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "relay.h"

/* Print one step prefixed with the name of the thread running it. */
static void say(const char *fmt, ...)
{
	char name[16] = "?";
	relay_thread *self = relay_thread_current();
	va_list ap;

	if (!self || relay_thread_name(self, name, sizeof(name)) < 0)
		snprintf(name, sizeof(name), "?");
	/* One printf per line: stdio locks the stream per call, so lines
	 * from the two threads never mix. */
	va_start(ap, fmt);
	flockfile(stdout);
	printf("[%-6s] %s", name, relay_is_main_thread() ? "(main thread) " : "");
	vprintf(fmt, ap);
	putchar('\n');
	fflush(stdout);
	funlockfile(stdout);
	va_end(ap);
}

/* Report a refused relay call; true when rc is an error. */
static bool failed(int rc, const char *what)
{
	if (rc >= 0)
		return false;
	fprintf(stderr, "worker: %s: %s\n", what, relay_strerror(rc));
	return true;
}

/* ---- run_on_complete ------------------------------------------------ */

/*
 * The seed's run_on_complete is a free function. Python runs it in the
 * main thread because PyQt gives the connection an implicit receiver
 * living there. C has no such magic: a plain function runs in the thread
 * chosen by its *context object*. So the "app" below, a small object that
 * lives in the main thread (like a QCoreApplication), is the context of
 * the connection, and run_on_complete runs in the main thread's loop.
 *
 * Beware: relay_connect_func(sender, signal, fn, data), without a
 * context, is a DIRECT connection: fn would run inside the emit, in the
 * worker thread - the trap Qt users know from lambdas without a context.
 */
struct app {
	relay_object base;
};

/* Main-thread-only, as a GUI object would be: relay refuses to move it. */
static const relay_class app_class = {
	.name = "app",
	.flags = RELAY_CLASS_MAIN_THREAD_ONLY,
	.size = sizeof(struct app),   /* relay_object_new checks the pointer's type */
};

/* @pyqtSlot()
 * def run_on_complete(): */
static void run_on_complete(void *data)
{
	struct app *app = data;

	(void)app;
	say("run_on_complete: the worker is done, quitting the main loop");
	/* The seed leaves this empty; we end the program here. */
	if (failed(relay_main_quit(), "relay_main_quit"))
		exit(1);
}

/* ---- Worker ------------------------------------------------------------ */

/* class Worker(QObject): */
struct worker {
	relay_object base;
	RELAY_SIGNAL(complete);                 /* complete = pyqtSignal() */
};

/* Called by relay when the worker is destroyed, in its own thread. */
static void worker_finalize(relay_object *self)
{
	(void)self;
	say("worker destroyed (deleted later, in the thread it lives in)");
}

static const relay_class worker_class = {
	.name = "Worker",
	.finalize = worker_finalize,
	.size = sizeof(struct worker),
};

/* @pyqtSlot()
 * def a_method_to_run_in_the_thread(self): */
static void a_method_to_run_in_the_thread(struct worker *self)
{
	unsigned long sum = 0;

	say("a_method_to_run_in_the_thread: your code runs here");
	/* # your code */
	for (unsigned long i = 1; i <= 1000000; i++)
		sum += i;
	say("a_method_to_run_in_the_thread: done (sum 1..1e6 = %lu), "
	    "emitting complete", sum);

	/* self.complete.emit() */
	failed(relay_emit(self, complete), "emit complete");
}

/* ---- the seed's script, then the shutdown ------------------------------ */

/* Wire everything as the seed does; 0 or the first relay error. */
static int setup(struct app *app, relay_thread **thread, struct worker **worker)
{
	int rc;

	/* thread = QThread() */
	rc = relay_thread_create("worker", NULL, thread);
	if (failed(rc, "relay_thread_create"))
		return rc;
	say("thread 'worker' created (not started yet)");

	/* worker = Worker() */
	rc = relay_object_new(worker, &worker_class, NULL);
	if (failed(rc, "relay_object_new(Worker)"))
		return rc;
	say("worker created: it lives in the thread that made it, this one");

	/* worker.moveToThread(thread) */
	rc = relay_object_move_to_thread(*worker, *thread);
	if (failed(rc, "relay_object_move_to_thread"))
		return rc;
	say("worker moved to thread 'worker': its slots will run there");

	/* thread.started.connect(worker.a_method_to_run_in_the_thread) */
	rc = relay_connect(*thread, started, *worker, a_method_to_run_in_the_thread);
	if (failed(rc, "connect started"))
		return rc;

	/* worker.complete.connect(run_on_complete)
	 * (app is the context: run_on_complete runs in the main thread) */
	rc = relay_connect_func_ex(*worker, complete, app, run_on_complete, app,
				   RELAY_AUTO, 0u, NULL);
	if (failed(rc, "connect complete to run_on_complete"))
		return rc;

	/* Not in the seed - worker.complete.connect(worker.deleteLater):
	 * the worker is destroyed by its own thread's loop, on the pass after
	 * complete, because only its thread may destroy it. */
	rc = relay_connect(*worker, complete, *worker, relay_slot_delete_later);
	if (failed(rc, "connect complete to delete_later"))
		return rc;

	/* thread.start() */
	rc = relay_thread_start(*thread);
	if (failed(rc, "relay_thread_start"))
		return rc;
	say("thread started: it emits started, which runs the worker's method");
	return 0;
}

/*
 * Free a worker that never ran (setup failed): destroy it here if it
 * still lives in this thread, else delete it later, which relay does when
 * its thread goes. A worker that ran has deleted itself already.
 */
static int discard_worker(struct worker *worker)
{
	int rc;

	if (relay_object_thread(worker) == relay_thread_current())
		rc = relay_object_destroy(worker);
	else
		rc = relay_object_delete_later(worker);
	return failed(rc, "discard worker") ? 1 : 0;
}

/*
 * Stop and free the thread. By now the worker is gone: its delete_later
 * ran in the thread's loop or, at the latest, as the thread finished.
 */
static int teardown(relay_thread *thread, struct worker *worker, bool started)
{
	int rc = 0;

	if (!started && worker)
		rc = discard_worker(worker);
	if (!thread)
		return rc;
	/* relay_main_run already quit and waited for it; this is the
	 * explicit form, a no-op here, needed if the main loop never ran. */
	if (failed(relay_thread_stop(thread, 5000), "relay_thread_stop"))
		return 1;
	if (failed(relay_thread_destroy(thread), "relay_thread_destroy"))
		return 1;
	say("thread 'worker' stopped and destroyed");
	return rc;
}

int main(void)
{
	struct app *app = NULL;
	relay_thread *thread = NULL;
	struct worker *worker = NULL;
	bool started;
	int status = 1;
	int rc;

	rc = relay_object_new(&app, &app_class, NULL);
	if (failed(rc, "relay_object_new(app)"))
		return 1;
	say("app created");

	started = setup(app, &thread, &worker) == 0;
	if (started) {
		/* app.exec(): run the main loop until run_on_complete quits it.
		 * It then quits and waits for the threads it started. */
		rc = relay_main_run(5000);
		if (!failed(rc, "relay_main_run")) {
			say("main loop returned %d", rc);
			status = rc;
		}
	}
	if (teardown(thread, worker, started) != 0)
		status = 1;
	if (failed(relay_object_destroy(app), "relay_object_destroy(app)"))
		status = 1;
	return status;
}
