/*
 * qt_pool.cpp - case H for Qt 6 (pool_common.h says what each metric
 * measures): tasks on QThreadPool::globalInstance(), its maxThreadCount
 * set to the CPUs online, report to a Sink QObject living in the main
 * thread, whose QEventLoop runs until the last report.
 *
 * Variants:
 *   threadpool  a QRunnable subclass (autoDelete) started on the pool; its
 *               run() posts the report with QMetaObject::invokeMethod(sink,
 *               functor, Qt::QueuedConnection)
 *   concurrent  QtConcurrent::run (the same global pool) returning the
 *               task's number, and a QFutureWatcher per task whose
 *               finished() signal hands the result to the sink; cancel:
 *               QtConcurrent::run with a QPromise& polling isCanceled(),
 *               QFuture::cancel() then waitForFinished()
 *
 * A QRunnable cannot be cancelled once it runs (QThreadPool::tryTake and
 * clear only remove queued ones): threadpool's cancel prints a SKIP line.
 *
 * The reports go to the main thread's loop, so its dispatcher matters:
 * lib= is qt-glib or qt-unix (QT_NO_GLIB), as in the other Qt programs.
 */
#include <QAbstractEventDispatcher>
#include <QCoreApplication>
#include <QEventLoop>
#include <QFuture>
#include <QFutureWatcher>
#include <QObject>
#include <QPromise>
#include <QRunnable>
#include <QThreadPool>
#include <QtConcurrent/QtConcurrentRun>

#include <cstring>
#include <string>

#include "bench.h"
#include "pool_common.h"

// Main thread only: counts the reports of one batch and quits the loop
// at the last.
class Sink : public QObject {
public:
	qint64 sum = 0;
	long count = 0;
	long expected = 0;
	uint64_t last_ns = 0;   // when the batch's last report was handled
	QEventLoop *loop = nullptr;

	void begin(long n)
	{
		sum = 0;
		count = 0;
		expected = n;
	}
	void take(qint64 v)
	{
		sum += v;
		if (++count == expected) {
			last_ns = bench_now_ns();
			loop->quit();
		}
	}
};

static bench_args args;
static Sink *sink;
static bool use_concurrent;

// The task's body: empty for throughput, POOL_SPIN_NS for fanout.
static uint64_t spin_ns;

static void task_body()
{
	pool_note_thread();
	if (spin_ns)
		pool_spin(spin_ns);
}

class Task : public QRunnable {
public:
	explicit Task(qint64 v) : v(v) {}   // autoDelete: the pool deletes it after run()
	void run() override
	{
		task_body();
		const qint64 n = v;
		QMetaObject::invokeMethod(sink, [n] { sink->take(n); }, Qt::QueuedConnection);
	}

private:
	qint64 v;
};

static void submit(qint64 v)
{
	if (!use_concurrent) {
		QThreadPool::globalInstance()->start(new Task(v));
		return;
	}
	// Connected before setFuture, as Qt's documentation asks, so that
	// no finished() is missed; deleteLater once it has reported.
	auto *w = new QFutureWatcher<qint64>;
	QObject::connect(w, &QFutureWatcherBase::finished, sink, [w] {
		sink->take(w->result());
		w->deleteLater();
	});
	w->setFuture(QtConcurrent::run([v] {
		task_body();
		return v;
	}));
}

// n tasks numbered 1..n, then the loop until their n reports; returns the
// time from the first submit to the last report.
static uint64_t batch(long n)
{
	sink->begin(n);
	uint64_t t0 = bench_now_ns();
	for (qint64 v = 1; v <= n; v++)
		submit(v);
	sink->loop->exec();
	bench_check_flood("qt", sink->count, n, sink->sum);
	// The watchers' deleteLater: Qt runs deferred deletes only once
	// control is back in an outer loop, here never; run them now,
	// untimed, so that every batch starts with none left over.
	if (use_concurrent)
		QCoreApplication::sendPostedEvents(nullptr, QEvent::DeferredDelete);
	return sink->last_ns - t0;
}

static uint64_t fanout_once(void *)
{
	return batch(POOL_FANOUT_TASKS);
}

static int started, returned;

static uint64_t cancel_once(void *)
{
	__atomic_store_n(&started, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&returned, 0, __ATOMIC_RELAXED);
	QFuture<void> f = QtConcurrent::run([](QPromise<void> &promise) {
		pool_note_thread();
		pool_flag_set(&started);
		while (!promise.isCanceled())
			;
		pool_flag_set(&returned);
	});
	// Running, not queued: cancel() would then keep it from starting,
	// and waitForFinished() would run it in this thread.
	pool_flag_wait(&started, "qt: cancel task started");
	uint64_t t0 = bench_now_ns();
	f.cancel();
	f.waitForFinished();
	uint64_t t1 = bench_now_ns();
	// Qt reports a QtConcurrent::run task finished after its function
	// returned; the flag checks that this is what waitForFinished saw.
	if (!pool_flag_get(&returned))
		bench_fail("qt: waitForFinished returned before the task function did");
	return t1 - t0;
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
	pool_parse(argc, argv, &args, "threadpool|concurrent");
	use_concurrent = !strcmp(args.variant, "concurrent");
	if (!use_concurrent && pool_metric_is(&args, "cancel")) {
		pool_skip("qt_pool", args.variant, args.metric,
			  "a running QRunnable cannot be cancelled (QThreadPool::tryTake and "
			  "clear() remove only queued ones); see --variant concurrent");
		return 0;
	}
	QCoreApplication app(argc, argv);
	std::string lib = lib_name();
	QThreadPool::globalInstance()->setMaxThreadCount(pool_cpus());

	QEventLoop loop;
	Sink s;
	s.loop = &loop;
	sink = &s;

	if (pool_metric_is(&args, "throughput")) {
		pool_report_throughput(&args, lib.c_str(), batch(args.count));
	} else if (pool_metric_is(&args, "fanout")) {
		spin_ns = POOL_SPIN_NS;
		pool_repeat(&args, lib.c_str(), fanout_once, nullptr);
	} else {
		pool_repeat(&args, lib.c_str(), cancel_once, nullptr);
	}
	QThreadPool::globalInstance()->waitForDone();
	return 0;
}
