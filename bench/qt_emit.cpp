/*
 * qt_emit.cpp - case C for Qt 6: ns per same-thread emit of a qint64
 * signal with --slots 0, 1 or 10 receivers connected with
 * Qt::DirectConnection. Each slot adds the value to its receiver's sum;
 * the sums are checked. (No loop runs: the dispatcher plays no part.)
 */
#include <QCoreApplication>
#include <QObject>

#include <cstring>
#include <vector>

#include "bench.h"

class Sender : public QObject {
	Q_OBJECT
signals:
	void value(qint64 v);
};

class Receiver : public QObject {
	Q_OBJECT
public:
	qint64 sum = 0;
public slots:
	void add(qint64 v) { sum += v; }
};

static void emit_values(Sender *s, long n)
{
	for (long v = 1; v <= n; v++)
		emit s->value(v);
}

int main(int argc, char **argv)
{
	bench_args args;

	bench_parse(argc, argv, &args, "emits", 2000000, "emit");
	QCoreApplication app(argc, argv);
	const char *variant = args.variant;
	Sender s;
	std::vector<Receiver> r((size_t)args.nslots);
	for (Receiver &x : r)
		QObject::connect(&s, &Sender::value, &x, &Receiver::add, Qt::DirectConnection);

	emit_values(&s, args.count / 100);
	for (Receiver &x : r)
		x.sum = 0;
	uint64_t t0 = bench_now_ns();
	emit_values(&s, args.count);
	uint64_t t1 = bench_now_ns();

	for (Receiver &x : r)
		if (x.sum != bench_expected_sum(args.count))
			bench_fail("qt: a receiver summed %lld, expected %lld", (long long)x.sum,
				   (long long)bench_expected_sum(args.count));
	bench_result("C", "qt", (double)(t1 - t0) / (double)args.count, "ns",
		     "variant=%s slots=%d count=%ld", variant, args.nslots, args.count);
	return 0;
}

#include "qt_emit.moc"
