/*
 * qt_start.cpp - case E for Qt 6: from QThread::start to the thread's
 * started() signal arriving (Qt::QueuedConnection) at a receiver in the
 * main thread, whose event loop runs (a QEventLoop). Each
 * iteration creates, starts, quits, waits and deletes one QThread.
 * --pin same|none; lib= is qt-glib or qt-unix.
 */
#include <QAbstractEventDispatcher>
#include <QCoreApplication>
#include <QEventLoop>
#include <QObject>
#include <QThread>

#include <cstring>
#include <string>

#include "bench.h"

class Receiver : public QObject {
	Q_OBJECT
public:
	QEventLoop *loop = nullptr;
	uint64_t at_ns = 0;
public slots:
	void onStarted()
	{
		at_ns = bench_now_ns();
		loop->quit();
	}
};

static uint64_t start_once(void *ctx)
{
	Receiver *r = static_cast<Receiver *>(ctx);
	QThread t;
	QObject::connect(&t, &QThread::started, r, &Receiver::onStarted, Qt::QueuedConnection);
	// A QEventLoop quit by the slot: processEvents(WaitForMoreEvents)
	// can sleep through a posted event with the UNIX dispatcher.
	QEventLoop loop;
	r->loop = &loop;
	uint64_t t0 = bench_now_ns();
	t.start();
	loop.exec();
	t.quit();
	t.wait();
	return r->at_ns - t0;
}

// The main thread's dispatcher: QT_NO_GLIB decides it as for any thread.
static std::string lib_name()
{
	QAbstractEventDispatcher *d = QAbstractEventDispatcher::instance();
	std::string cls = d ? d->metaObject()->className() : "none";
	return cls.find("Glib") != std::string::npos ? "qt-glib" : "qt-unix";
}

int main(int argc, char **argv)
{
	bench_args args;

	bench_parse(argc, argv, &args, "iterations", 1000, "qthread");
	const char *variant = args.variant;
	bench_pin_apply(args.pin, 0);
	QCoreApplication app(argc, argv);
	Receiver r;
	bench_repeat(&args, "E", lib_name().c_str(), variant, start_once, &r);
	return 0;
}

#include "qt_start.moc"
