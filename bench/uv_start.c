/*
 * uv_start.c - case E for libuv: from uv_thread_create to the new
 * thread's notification arriving in the main thread's loop (a mailbox:
 * list + uv_async_send, uv_common.h). The new thread sets up its own
 * loop and mailbox first, notifies, then runs its loop until told to
 * quit. --pin same|none.
 */
#include <string.h>

#include "bench.h"
#include "uv_common.h"

#define STARTED 1

static struct uv_mailbox main_mb;
static bool got;             /* main thread only */
static uint64_t at_ns;

static void on_main_value(struct uv_mailbox *mb, int64_t v)
{
	(void)mb;
	if (v == STARTED) {
		at_ns = bench_now_ns();
		got = true;
	}
}

static void on_thread_value(struct uv_loop_thread *t, int64_t v)
{
	(void)t;
	(void)v;
}

static void thread_main(void *arg)
{
	struct uv_loop_thread *t = arg;

	/* What uv_loop_thread_start does, but in the new thread. */
	t->on_value = on_thread_value;
	t->cpu = -1;
	if (uv_loop_init(&t->loop))
		bench_fail("uv: loop init failed");
	uv_mailbox_init(&t->mb, &t->loop, uv_loop_thread_value);
	t->mb.user = t;
	uv_mailbox_send(&main_mb, STARTED);
	uv_run(&t->loop, UV_RUN_DEFAULT);
}

static uint64_t start_once(void *ctx)
{
	uv_loop_t *main_loop = ctx;
	struct uv_loop_thread t;

	got = false;
	uint64_t t0 = bench_now_ns();
	if (uv_thread_create(&t.thread, thread_main, &t))
		bench_fail("uv: thread create failed");
	while (!got) {
		if (bench_now_ns() - t0 > 10000000000ull)
			bench_fail("uv: not notified within 10 s");
		uv_run(main_loop, UV_RUN_ONCE);
	}
	/* The mailbox exists: it was made before the notification. */
	uv_loop_thread_stop(&t);
	return at_ns - t0;
}

int main(int argc, char **argv)
{
	struct bench_args args;
	uv_loop_t main_loop;

	bench_parse(argc, argv, &args, "iterations", 1000, "uv-thread");
	const char *variant = args.variant;
	bench_pin_apply(args.pin, 0);
	if (uv_loop_init(&main_loop))
		bench_fail("uv: loop init failed");
	uv_mailbox_init(&main_mb, &main_loop, on_main_value);
	bench_repeat(&args, "E", "uv", variant, start_once, &main_loop);
	return 0;
}
