/*
 * uv_roundtrip.c - case B for libuv: two loop threads, each with a
 * mailbox (mutex-protected list + uv_async_send, uv_common.h), ping-pong
 * one int64_t; each round trip is timed in the pinging thread.
 * --pin same|diff.
 */
#include <stdint.h>
#include <string.h>

#include "bench.h"
#include "uv_common.h"

static struct bench_args args;
static struct uv_loop_thread ta, tb;
static struct bench_pingpong pp;   /* pinger thread only */

/* The first message to the pinger (any value < 0 other than the
 * sentinels) starts the exchange. */
#define KICK (-1)

static void send_ping(void)
{
	uv_mailbox_send(&tb.mb, bench_pp_ping(&pp));
}

static void on_pong(struct uv_loop_thread *t, int64_t v)
{
	(void)t;
	if (v == KICK || bench_pp_pong(&pp, "uv", v))
		send_ping();
}

static void on_ping(struct uv_loop_thread *t, int64_t v)
{
	(void)t;
	uv_mailbox_send(&ta.mb, v + 1);
}

int main(int argc, char **argv)
{
	bench_parse(argc, argv, &args, "roundtrips", 100000, "list-async");
	const char *variant = args.variant;

	bench_pp_init(&pp, args.count);
	uv_loop_thread_start(&ta, bench_pin_cpu(args.pin, 0), on_pong);
	uv_loop_thread_start(&tb, bench_pin_cpu(args.pin, 1), on_ping);
	uv_loop_thread_sync(&ta);
	uv_loop_thread_sync(&tb);

	uv_mailbox_send(&ta.mb, KICK);
	bench_done_wait(&pp.done, 50000, "uv ping-pong");
	bench_lat_report(&pp.lat, &args, "B", "uv", variant);
	uv_loop_thread_stop(&ta);
	uv_loop_thread_stop(&tb);
	return 0;
}
