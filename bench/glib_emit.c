/*
 * glib_emit.c - case C for GLib/GObject: ns per g_signal_emit of a
 * "value" signal carrying a gint64 with --slots 0, 1 or 10 handlers
 * connected (g_signal_connect, each with its own sum). The sums are
 * checked. The signal id is looked up once, as fast GObject code does.
 */
#include <glib-object.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

typedef struct { GObject parent; } BenchSender;
typedef struct { GObjectClass parent_class; } BenchSenderClass;

G_DEFINE_TYPE(BenchSender, bench_sender, G_TYPE_OBJECT)

static guint value_signal;

static void bench_sender_class_init(BenchSenderClass *klass)
{
	value_signal = g_signal_new("value", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0,
				    NULL, NULL, NULL, G_TYPE_NONE, 1, G_TYPE_INT64);
}

static void bench_sender_init(BenchSender *self)
{
	(void)self;
}

static void on_value(BenchSender *s, gint64 v, gpointer data)
{
	(void)s;
	*(int64_t *)data += v;
}

static void emit_values(BenchSender *s, long n)
{
	for (long v = 1; v <= n; v++)
		g_signal_emit(s, value_signal, 0, (gint64)v);
}

int main(int argc, char **argv)
{
	struct bench_args args;

	bench_parse(argc, argv, &args, "emits", 2000000, "emit");
	const char *variant = args.variant;
	BenchSender *s = g_object_new(bench_sender_get_type(), NULL);
	int64_t *sums = calloc((size_t)args.nslots + 1, sizeof *sums);
	for (int i = 0; i < args.nslots; i++)
		g_signal_connect(s, "value", G_CALLBACK(on_value), &sums[i]);

	emit_values(s, args.count / 100);
	memset(sums, 0, sizeof *sums * (size_t)args.nslots);
	uint64_t t0 = bench_now_ns();
	emit_values(s, args.count);
	uint64_t t1 = bench_now_ns();

	for (int i = 0; i < args.nslots; i++)
		if (sums[i] != bench_expected_sum(args.count))
			bench_fail("glib: handler %d summed %lld, expected %lld", i,
				   (long long)sums[i], (long long)bench_expected_sum(args.count));
	bench_result("C", "glib", (double)(t1 - t0) / (double)args.count, "ns",
		     "variant=%s slots=%d count=%ld", variant, args.nslots, args.count);
	g_object_unref(s);
	free(sums);
	return 0;
}
