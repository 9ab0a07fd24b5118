/*
 * qt_roundtrip.cpp - case B for Qt 6: a Pinger in one QThread and a
 * Ponger in another exchange queued signals; each round trip is timed in
 * the pinger's thread. --pin same|diff, --histogram FILE as for relay.
 * lib= is qt-glib or qt-unix, the dispatcher that actually ran.
 */
#include <QCoreApplication>
#include <QObject>
#include <QThread>

#include <cstring>
#include <string>

#include "bench.h"
#include "qt_common.h"

static bench_args args;

class Pinger : public QObject {
	Q_OBJECT
public:
	bench_pingpong pp{};   // pinger thread only

	void send() { emit ping(bench_pp_ping(&pp)); }
signals:
	void ping(qint64 v);
public slots:
	void onPong(qint64 v)
	{
		if (bench_pp_pong(&pp, "qt", v))
			send();
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
	bench_parse(argc, argv, &args, "roundtrips", 100000, "signal");
	QCoreApplication app(argc, argv);
	const char *variant = args.variant;

	QThread ta, tb;
	Pinger *a = new Pinger;
	Ponger *b = new Ponger;
	bench_pp_init(&a->pp, args.count);
	QObject::connect(a, &Pinger::ping, b, &Ponger::onPing, Qt::QueuedConnection);
	QObject::connect(b, &Ponger::pong, a, &Pinger::onPong, Qt::QueuedConnection);
	start_in(&ta, a, 0);
	start_in(&tb, b, 1);
	std::string lib = qt_lib_name(a);

	QMetaObject::invokeMethod(a, [a] { a->send(); }, Qt::QueuedConnection);
	bench_done_wait(&a->pp.done, 50000, "qt ping-pong");
	bench_lat_report(&a->pp.lat, &args, "B", lib.c_str(), variant);
	a->deleteLater();
	b->deleteLater();
	ta.quit();
	tb.quit();
	ta.wait();
	tb.wait();
	return 0;
}

#include "qt_roundtrip.moc"
