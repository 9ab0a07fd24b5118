/*
 * relay_roundtrip.c - case B for relay: a pinger object in one
 * relay_thread and a ponger in another exchange queued signals; each
 * round trip (ping emitted -> pong's slot ran in the pinger's thread) is
 * timed. --pin same|diff places both threads on one CPU or on two.
 * Median and p99 in µs; --histogram FILE writes every round trip (ns).
 */
#include <relay.h>

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "bench.h"

typedef struct pinger {
	relay_object base;
	RELAY_SIGNAL(ping, int64_t);
	long warmup, left;        /* pinger thread only */
	int64_t expect;           /* the value the next pong must carry */
	uint64_t sent_ns;
	struct bench_lat lat;
} pinger;

typedef struct ponger {
	relay_object base;
	RELAY_SIGNAL(pong, int64_t);
} ponger;

static const relay_class pinger_class = { .name = "pinger" };
static const relay_class ponger_class = { .name = "ponger" };

static struct bench_args args;
static struct bench_done done;

static void must(int rc, const char *what)
{
	if (rc < 0)
		bench_fail("%s: %s", what, relay_strerror(rc));
}

static void pinger_send(pinger *self)
{
	int64_t v = self->expect;
	self->sent_ns = bench_now_ns();
	must(relay_emit(self, ping, &v), "emit ping");
}

static void ponger_on_ping(ponger *self, const int64_t *v)
{
	int64_t back = *v + 1;
	must(relay_emit(self, pong, &back), "emit pong");
}

static void pinger_on_pong(pinger *self, const int64_t *v)
{
	uint64_t now = bench_now_ns();

	if (*v != self->expect + 1)
		bench_fail("relay: pong carried %lld, expected %lld", (long long)*v,
			   (long long)self->expect + 1);
	self->expect = *v + 1;
	if (self->warmup) {
		self->warmup--;
	} else {
		bench_lat_add(&self->lat, now - self->sent_ns);
		self->left--;
	}
	if (self->left)
		pinger_send(self);
	else
		bench_done_mark(&done);
}

static void kick(void *data)
{
	pinger_send(data);
}

static int pin_first(void *data)
{
	bench_pin_apply(args.pin, (int)(intptr_t)data);
	return 0;
}

static relay_thread *start_thread(const char *name, relay_object *obj, int index)
{
	relay_thread *t;

	must(relay_thread_create(name, NULL, &t), "thread_create");
	must(relay_object_move_to_thread(obj, t), "move_to_thread");
	must(relay_thread_start(t), "thread_start");
	must(relay_invoke_blocking(obj, pin_first, (void *)(intptr_t)index, NULL), "pin");
	return t;
}

static void stop_thread(relay_thread *t)
{
	must(relay_thread_stop(t, 5000), "thread_stop");
	must(relay_thread_destroy(t), "thread_destroy");
}

int main(int argc, char **argv)
{
	pinger *a;
	ponger *b;

	bench_parse(argc, argv, &args, "roundtrips", 100000);
	bench_watchdog(60);
	const char *variant = args.variant ? args.variant : "signal";
	if (strcmp(variant, "signal"))
		bench_fail("unknown variant %s", variant);

	must(relay_object_new(sizeof *a, &pinger_class, NULL, &a), "pinger");
	must(relay_object_new(sizeof *b, &ponger_class, NULL, &b), "ponger");
	a->left = args.count;
	a->warmup = args.count / 100 + 10;   /* first wake-ups fault pages in */
	bench_lat_init(&a->lat, args.count);
	must(relay_connect_ex(a, ping, b, ponger_on_ping, RELAY_QUEUED, 0u, NULL), "connect");
	must(relay_connect_ex(b, pong, a, pinger_on_pong, RELAY_QUEUED, 0u, NULL), "connect");
	relay_thread *ta = start_thread("pinger", &a->base, 0);
	relay_thread *tb = start_thread("ponger", &b->base, 1);

	bench_done_init(&done);
	must(relay_invoke(&a->base, kick, a, NULL), "invoke");
	bench_done_wait(&done, 50000, "relay ping-pong");

	char keys[64];
	snprintf(keys, sizeof keys, "variant=%s pin=%s", variant, args.pin);
	bench_lat_report(&a->lat, &args, "B", "relay", keys);
	relay_object_delete_later(&a->base);
	relay_object_delete_later(&b->base);
	stop_thread(ta);
	stop_thread(tb);
	return 0;
}
