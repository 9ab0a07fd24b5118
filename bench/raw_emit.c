/*
 * raw_emit.c - case C's limit: what an emit cannot beat, a plain indirect
 * call per connected slot. --slots N function pointers (0, 1 or 10) are
 * called in a loop with the value; each adds it to its own sum. The
 * table is read through a volatile pointer so the compiler can neither
 * inline the slots nor hoist the loads out of the loop.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

typedef void (*slot_fn)(int64_t *sum, int64_t v);

__attribute__((noinline)) static void slot_add(int64_t *sum, int64_t v)
{
	*sum += v;
}

struct conn {
	slot_fn fn;
	int64_t *sum;
};

static void emit_values(struct conn *volatile *table, const volatile int *n, long count)
{
	for (long v = 1; v <= count; v++) {
		struct conn *c = *table;
		for (int i = 0; i < *n; i++)
			c[i].fn(c[i].sum, v);
	}
}

int main(int argc, char **argv)
{
	struct bench_args args;

	bench_parse(argc, argv, &args, "emits", 2000000, "indirect");
	const char *variant = args.variant;
	int n = args.nslots;
	int64_t *sums = calloc((size_t)n + 1, sizeof *sums);
	struct conn *conns = calloc((size_t)n + 1, sizeof *conns);
	for (int i = 0; i < n; i++)
		conns[i] = (struct conn){ slot_add, &sums[i] };
	struct conn *volatile table = conns;
	volatile int nv = n;

	emit_values(&table, &nv, args.count / 100);
	memset(sums, 0, sizeof *sums * (size_t)n);
	uint64_t t0 = bench_now_ns();
	emit_values(&table, &nv, args.count);
	uint64_t t1 = bench_now_ns();

	for (int i = 0; i < n; i++)
		if (sums[i] != bench_expected_sum(args.count))
			bench_fail("raw: slot %d summed %lld", i, (long long)sums[i]);
	bench_result("C", "raw", (double)(t1 - t0) / (double)args.count, "ns",
		     "variant=%s slots=%d count=%ld", variant, n, args.count);
	free(sums);
	free(conns);
	return 0;
}
