/*
 * qt_throughput.cpp - case A for Qt 6: producer threads send calls
 * carrying one qint64 to a receiver moved to a QThread running exec();
 * its slot adds the value to a sum.
 *
 * Variants:
 *   queued  a Producer object per producer thread (a plain pthread that
 *           Qt adopts), its signal connected with Qt::QueuedConnection
 *   invoke  QMetaObject::invokeMethod(receiver, functor, QueuedConnection)
 *
 * Qt's dispatcher on Linux is GLib's unless QT_NO_GLIB=1 is set; the
 * runner measures both, and lib= says which one ran (qt-glib / qt-unix),
 * read from the receiver thread's actual dispatcher.
 */
#include <QAbstractEventDispatcher>
#include <QCoreApplication>
#include <QObject>
#include <QThread>

#include <cstring>
#include <string>

#include "bench.h"
#include "qt_common.h"

class Consumer : public QObject {
	Q_OBJECT
public:
	qint64 sum = 0;   // receiver thread only
	long count = 0;
	long expected = 0;
	bench_done *done = nullptr;

	void take(qint64 v)
	{
		sum += v;
		if (++count == expected)
			bench_done_mark(done);
	}
public slots:
	void onValue(qint64 v) { take(v); }
};

class Producer : public QObject {
	Q_OBJECT
signals:
	void value(qint64 v);
};

static bench_args args;
static bench_producers prods;
static bench_done done;
static Consumer *sink;
static bool use_invoke;

static thread_local Producer *mine;

static void send_signal(int64_t v)
{
	emit mine->value(v);
}

static void send_invoke(int64_t v)
{
	QMetaObject::invokeMethod(sink, [v] { sink->take(v); }, Qt::QueuedConnection);
}

static void *producer_main(void *arg)
{
	int index = (int)(intptr_t)arg;

	if (use_invoke) {
		bench_producer_loop(&prods, index, args.count, send_invoke);
		return nullptr;
	}
	Producer p;
	mine = &p;
	QObject::connect(&p, &Producer::value, sink, &Consumer::onValue, Qt::QueuedConnection);
	bench_producer_loop(&prods, index, args.count, send_signal);
	return nullptr;
}

int main(int argc, char **argv)
{
	bench_parse(argc, argv, &args, "messages", 2000000, "queued|invoke");
	QCoreApplication app(argc, argv);
	const char *variant = args.variant;
	use_invoke = !strcmp(variant, "invoke");

	QThread thread;
	sink = new Consumer;
	sink->expected = args.count;
	sink->done = &done;
	sink->moveToThread(&thread);
	thread.start();
	// The receiver's loop runs before the clock starts.
	std::string lib = qt_lib_name(sink);

	bench_done_init(&done);
	bench_producers_start(&prods, args.producers, producer_main);
	bench_producers_go(&prods);
	uint64_t end = bench_done_wait(&done, 50000, "qt receiver");
	uint64_t start = bench_producers_join(&prods);

	qt_sync(sink);
	bench_check_flood(lib.c_str(), sink->count, args.count, sink->sum);
	bench_result("A", lib.c_str(), (double)args.count / (double)(end - start) * 1e3,
		     "Mcalls/s", "variant=%s producers=%d rss_kib=%ld count=%ld", variant,
		     args.producers, bench_peak_rss_kib(), args.count);

	sink->deleteLater();
	thread.quit();
	thread.wait();
	return 0;
}

#include "qt_throughput.moc"
