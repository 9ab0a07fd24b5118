/*
 * qt_roundtrip.cpp - case B for Qt 6: a Pinger in one QThread and a
 * Ponger in another exchange queued signals; each round trip is timed in
 * the pinger's thread. --pin same|diff, --histogram FILE as for relay.
 * lib= is qt-glib or qt-unix, the dispatcher that actually ran.
 */
#include <QCoreApplication>
#include <QObject>
#include <QThread>

#include <cstdio>
#include <cstring>
#include <string>

#include "bench.h"
#include "qt_common.h"

static bench_args args;
static bench_done done;

class Pinger : public QObject {
	Q_OBJECT
public:
	long warmup = 0, left = 0;   // pinger thread only
	qint64 expect = 0;
	uint64_t sent_ns = 0;
	bench_lat lat{};

	void send()
	{
		sent_ns = bench_now_ns();
		emit ping(expect);
	}
signals:
	void ping(qint64 v);
public slots:
	void onPong(qint64 v)
	{
		uint64_t now = bench_now_ns();

		if (v != expect + 1)
			bench_fail("qt: pong carried %lld, expected %lld", (long long)v,
				   (long long)expect + 1);
		expect = v + 1;
		if (warmup) {
			warmup--;
		} else {
			bench_lat_add(&lat, now - sent_ns);
			left--;
		}
		if (left)
			send();
		else
			bench_done_mark(&done);
	}
};

class Ponger : public QObject {
	Q_OBJECT
signals:
	void pong(qint64 v);
public slots:
	void onPing(qint64 v) { emit pong(v + 1); }
};

static void start_in(QThread *t, QObject *obj, int index)
{
	obj->moveToThread(t);
	t->start();
	qt_run_in(obj, [index] { bench_pin_apply(args.pin, index); });
}

int main(int argc, char **argv)
{
	bench_parse(argc, argv, &args, "roundtrips", 100000);
	bench_watchdog(60);
	QCoreApplication app(argc, argv);
	const char *variant = args.variant ? args.variant : "signal";
	if (strcmp(variant, "signal"))
		bench_fail("unknown variant %s", variant);

	QThread ta, tb;
	Pinger *a = new Pinger;
	Ponger *b = new Ponger;
	a->left = args.count;
	a->warmup = args.count / 100 + 10;
	bench_lat_init(&a->lat, args.count);
	QObject::connect(a, &Pinger::ping, b, &Ponger::onPing, Qt::QueuedConnection);
	QObject::connect(b, &Ponger::pong, a, &Pinger::onPong, Qt::QueuedConnection);
	start_in(&ta, a, 0);
	start_in(&tb, b, 1);
	std::string lib = qt_lib_name(a);

	bench_done_init(&done);
	QMetaObject::invokeMethod(a, [a] { a->send(); }, Qt::QueuedConnection);
	bench_done_wait(&done, 50000, "qt ping-pong");

	char keys[64];
	snprintf(keys, sizeof keys, "variant=%s pin=%s", variant, args.pin);
	bench_lat_report(&a->lat, &args, "B", lib.c_str(), keys);
	a->deleteLater();
	b->deleteLater();
	ta.quit();
	tb.quit();
	ta.wait();
	tb.wait();
	return 0;
}

#include "qt_roundtrip.moc"
