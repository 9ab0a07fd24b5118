/*
 * uv_roundtrip.c - case B for libuv: two loop threads, each with a
 * mailbox (mutex-protected list + uv_async_send, uv_common.h), ping-pong
 * one int64_t; each round trip is timed in the pinging thread.
 * --pin same|diff.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "bench.h"
#include "uv_common.h"

static struct bench_args args;
static struct bench_done done;
static struct uv_loop_thread ta, tb;
/* pinger thread only: */
static long warmup, left;
static int64_t expect;
static uint64_t sent_ns;
static struct bench_lat lat;

/* The first message to the pinger (any value < 0 other than the
 * sentinels) starts the exchange. */
#define KICK (-1)

static void send_ping(void)
{
	sent_ns = bench_now_ns();
	uv_mailbox_send(&tb.mb, expect);
}

static void on_pong(struct uv_loop_thread *t, int64_t v)
{
	uint64_t now = bench_now_ns();

	(void)t;
	if (v == KICK) {
		send_ping();
		return;
	}
	if (v != expect + 1)
		bench_fail("uv: pong carried %lld, expected %lld", (long long)v,
			   (long long)expect + 1);
	expect = v + 1;
	if (warmup) {
		warmup--;
	} else {
		bench_lat_add(&lat, now - sent_ns);
		left--;
	}
	if (left)
		send_ping();
	else
		bench_done_mark(&done);
}

static void on_ping(struct uv_loop_thread *t, int64_t v)
{
	(void)t;
	uv_mailbox_send(&ta.mb, v + 1);
}

int main(int argc, char **argv)
{
	bench_parse(argc, argv, &args, "roundtrips", 100000);
	bench_watchdog(60);
	const char *variant = args.variant ? args.variant : "list-async";
	if (strcmp(variant, "list-async"))
		bench_fail("unknown variant %s", variant);

	left = args.count;
	warmup = args.count / 100 + 10;
	bench_lat_init(&lat, args.count);
	uv_loop_thread_start(&ta, bench_pin_cpu(args.pin, 0), on_pong);
	uv_loop_thread_start(&tb, bench_pin_cpu(args.pin, 1), on_ping);
	uv_loop_thread_sync(&ta);
	uv_loop_thread_sync(&tb);

	bench_done_init(&done);
	uv_mailbox_send(&ta.mb, KICK);
	bench_done_wait(&done, 50000, "uv ping-pong");

	char keys[64];
	snprintf(keys, sizeof keys, "variant=%s pin=%s", variant, args.pin);
	bench_lat_report(&lat, &args, "B", "uv", keys);
	uv_loop_thread_stop(&ta);
	uv_loop_thread_stop(&tb);
	return 0;
}
