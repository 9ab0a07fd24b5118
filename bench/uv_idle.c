/*
 * uv_idle.c - case D for libuv: a loop thread (uv_run with one async
 * handle, its mailbox) with nothing to do for --ms milliseconds; its
 * context switches and CPU time.
 */
#include <string.h>

#include "bench.h"
#include "uv_common.h"

#define PROBE 1

static struct bench_probe probe;
static struct bench_done probed;

static void on_value(struct uv_loop_thread *t, int64_t v)
{
	(void)t;
	if (v == PROBE) {
		bench_probe_self(&probe);
		bench_done_mark(&probed);
	}
}

int main(int argc, char **argv)
{
	struct bench_args args;
	struct uv_loop_thread t;

	bench_parse(argc, argv, &args, "ms", 2000, "run");
	const char *variant = args.variant;
	uv_loop_thread_start(&t, -1, on_value);
	bench_done_init(&probed);
	uv_mailbox_send(&t.mb, PROBE);
	bench_done_wait(&probed, 10000, "uv probe");

	bench_idle_measure(&probe, args.count, "uv", variant);
	uv_loop_thread_stop(&t);
	return 0;
}
