/*
 * qt_common.h - helpers the Qt programs share: which dispatcher a
 * thread really runs, and waiting until a QThread's loop serves.
 */
#ifndef RELAY_BENCH_QT_COMMON_H
#define RELAY_BENCH_QT_COMMON_H

#include <QAbstractEventDispatcher>
#include <QMetaObject>
#include <QObject>
#include <QThread>

#include <cstring>
#include <string>

#include "bench.h"

// Runs fn in obj's thread and waits for it: the thread's loop is
// serving when this returns.
template <typename F> static inline void qt_run_in(QObject *obj, F fn)
{
	if (!QMetaObject::invokeMethod(obj, fn, Qt::BlockingQueuedConnection))
		bench_fail("qt: invokeMethod(BlockingQueuedConnection) failed");
}

static inline void qt_sync(QObject *obj)
{
	qt_run_in(obj, [] {});
}

// "qt-glib" or "qt-unix": the dispatcher obj's thread actually runs (set
// by QT_NO_GLIB in the environment), not the one we asked for.
static inline std::string qt_lib_name(QObject *obj)
{
	std::string cls;
	qt_run_in(obj, [&cls] {
		QAbstractEventDispatcher *d = QAbstractEventDispatcher::instance();
		cls = d ? d->metaObject()->className() : "none";
	});
	if (cls.find("Glib") != std::string::npos)
		return "qt-glib";
	if (cls.find("UNIX") != std::string::npos || cls.find("Unix") != std::string::npos)
		return "qt-unix";
	return "qt-" + cls;
}

#endif
