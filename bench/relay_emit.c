/*
 * relay_emit.c - case C for relay: ns per same-thread emit of an int64_t
 * signal with --slots 0, 1 or 10 connected receivers (RELAY_AUTO, so
 * direct: sender and receivers live in the emitting thread). Each slot
 * adds the value to its receiver's sum; the sums are checked.
 */
#include <relay.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

typedef struct sender {
	relay_object base;
	RELAY_SIGNAL(value, int64_t);
} sender;

typedef struct receiver {
	relay_object base;
	int64_t sum;
} receiver;

static const relay_class sender_class = { .name = "sender" };
static const relay_class receiver_class = { .name = "receiver" };

static void must(int rc, const char *what)
{
	if (rc < 0)
		bench_fail("%s: %s", what, relay_strerror(rc));
}

static void receiver_add(receiver *self, const int64_t *v)
{
	self->sum += *v;
}

static void emit_values(sender *s, long n)
{
	for (long v = 1; v <= n; v++) {
		int64_t x = v;
		must(relay_emit(s, value, &x), "emit");
	}
}

int main(int argc, char **argv)
{
	struct bench_args args;
	sender *s;

	bench_parse(argc, argv, &args, "emits", 2000000, "emit");
	const char *variant = args.variant;
	int n = args.nslots;
	receiver **r = calloc((size_t)n + 1, sizeof *r);
	must(relay_object_new(&s, &sender_class, NULL), "sender");
	for (int i = 0; i < n; i++) {
		must(relay_object_new(&r[i], &receiver_class, NULL), "receiver");
		must(relay_connect(s, value, r[i], receiver_add), "connect");
	}

	emit_values(s, args.count / 100);   /* warm caches and branch predictors */
	for (int i = 0; i < n; i++)
		r[i]->sum = 0;
	uint64_t t0 = bench_now_ns();
	emit_values(s, args.count);
	uint64_t t1 = bench_now_ns();

	for (int i = 0; i < n; i++)
		if (r[i]->sum != bench_expected_sum(args.count))
			bench_fail("relay: receiver %d summed %lld, expected %lld", i,
				   (long long)r[i]->sum, (long long)bench_expected_sum(args.count));
	bench_result("C", "relay", (double)(t1 - t0) / (double)args.count, "ns",
		     "variant=%s slots=%d count=%ld", variant, n, args.count);
	for (int i = 0; i < n; i++)
		relay_object_destroy(&r[i]->base);
	relay_object_destroy(&s->base);
	free(r);
	return 0;
}
