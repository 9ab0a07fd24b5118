/*
 * qt_gmain.cpp - case G for Qt 6 with its GLib event dispatcher
 * (QT_NO_GLIB unset): QCoreApplication::exec in the main thread iterates
 * GLib's default context, so the GLib calls gmain_common.h makes there
 * (the ticking timeout at 120, the kick) run inside Qt's loop. A Worker
 * QObject moved to a QThread running exec() sends to a Sink QObject living
 * in the main thread (gmain_common.h says what each variant measures):
 *
 *   throughput, ticks  the worker's signal value(qint64) connected with
 *                      Qt::QueuedConnection to the sink's slot, which adds
 *                      the value to a sum
 *   roundtrip          QMetaObject::invokeMethod(sink, functor,
 *                      Qt::BlockingQueuedConnection, &ret): the functor
 *                      runs in the main thread and returns v + 1
 *
 * Qt's posted events reach the main thread through its "[Qt]
 * GPostEventSource", attached at G_PRIORITY_DEFAULT (0). When the main
 * thread's dispatcher is not GLib's (QT_NO_GLIB=1, or a Qt built without
 * GLib), the program says so on a SKIP line and exits 0.
 */
#include <QAbstractEventDispatcher>
#include <QCoreApplication>
#include <QObject>
#include <QThread>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "bench.h"
#include "gmain_common.h"
#include "qt_common.h"

class Sink : public QObject {
	Q_OBJECT
public:
	qint64 sum = 0;   // main thread only
	long count = 0;
	long expected = 0;
	uint64_t done_ns = 0;

	int answer(qint64 v)
	{
		gmain_work();
		sum += v;
		count++;
		return (int)(v + 1);
	}
public slots:
	void onValue(qint64 v)
	{
		gmain_work();
		sum += v;
		if (++count == expected) {
			done_ns = bench_now_ns();
			gmain_flood_done(done_ns);
			QCoreApplication::quit();
		}
	}
};

class Worker : public QObject {
	Q_OBJECT
signals:
	void value(qint64 v);
};

static bench_args args;
static Sink *sink;
static Worker *worker;
static bool roundtrip;
// Written in the worker's thread, read by the main thread after the
// thread has finished (QThread::wait).
static uint64_t start_ns;
static bench_lat lat;
static qint64 rt_bad = -1;

// ---- worker thread ----

static void flood()
{
	start_ns = bench_now_ns();
	for (qint64 v = 1; v <= args.count; v++)
		emit worker->value(v);
}

static void roundtrips()
{
	long warm = gmain_warmup(args.count);

	for (qint64 v = 1; v <= warm + args.count; v++) {
		int result = 0;
		uint64_t t = bench_now_ns();
		if (!QMetaObject::invokeMethod(sink, [v] { return sink->answer(v); },
					       Qt::BlockingQueuedConnection, &result))
			bench_fail("qt: invokeMethod(BlockingQueuedConnection) failed");
		uint64_t dt = bench_now_ns() - t;
		if (result != (int)(v + 1) && rt_bad < 0)
			rt_bad = v;
		if (v > warm)
			bench_lat_add(&lat, dt);
	}
	QMetaObject::invokeMethod(sink, [] { QCoreApplication::quit(); }, Qt::QueuedConnection);
}

// From inside the running loop (gmain_common.h).
static void kick()
{
	if (roundtrip)
		QMetaObject::invokeMethod(worker, [] { roundtrips(); }, Qt::QueuedConnection);
	else
		QMetaObject::invokeMethod(worker, [] { flood(); }, Qt::QueuedConnection);
}

int main(int argc, char **argv)
{
	gmain_parse(&argc, argv, &args, GMAIN_VARIANTS);
	QCoreApplication app(argc, argv);
	roundtrip = !strcmp(args.variant, "roundtrip");
	const char *mech = roundtrip ? "invoke-blocking" : "queued";
	const int priority = G_PRIORITY_DEFAULT;

	QAbstractEventDispatcher *d = QAbstractEventDispatcher::instance();
	std::string cls = d ? d->metaObject()->className() : "none";
	if (cls.find("Glib") == std::string::npos) {
		printf("SKIP qt_gmain: the main thread's event dispatcher is %s, not GLib's "
		       "(QT_NO_GLIB set, or Qt built without GLib)\n", cls.c_str());
		return 0;
	}
	QThread thread;
	sink = new Sink;
	sink->expected = roundtrip ? gmain_warmup(args.count) + args.count : args.count;
	worker = new Worker;
	QObject::connect(worker, &Worker::value, sink, &Sink::onValue, Qt::QueuedConnection);
	worker->moveToThread(&thread);
	thread.start();
	// The worker's loop runs before anything is measured.
	qt_sync(worker);
	if (roundtrip)
		bench_lat_init(&lat, args.count);

	gmain_setup(args.variant, kick);
	app.exec();
	gmain_teardown();

	worker->deleteLater();
	thread.quit();
	thread.wait();

	if (roundtrip) {
		if (rt_bad >= 0)
			bench_fail("qt-glib: round trip %lld got a wrong reply", (long long)rt_bad);
		bench_check_flood("qt-glib", sink->count, sink->expected, sink->sum);
		gmain_report_roundtrip(&lat, &args, "qt-glib", mech, priority);
		free(lat.ns);
	} else {
		bench_check_flood("qt-glib", sink->count, args.count, sink->sum);
		if (gmain.ticks_variant)
			gmain_report_ticks("qt-glib", mech, priority, args.count);
		else
			gmain_report_throughput("qt-glib", mech, priority, args.count, start_ns,
						sink->done_ns);
	}
	delete sink;
	return 0;
}

#include "qt_gmain.moc"
