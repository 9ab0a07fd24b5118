/*
 * qt_idle.cpp - case D for Qt 6: a QThread running exec() with nothing to
 * do for --ms milliseconds; its context switches and CPU time. lib= is
 * qt-glib or qt-unix, the dispatcher that ran.
 */
#include <QCoreApplication>
#include <QObject>
#include <QThread>

#include <cstring>
#include <string>

#include "bench.h"
#include "qt_common.h"

int main(int argc, char **argv)
{
	bench_args args;
	bench_probe probe;

	bench_parse(argc, argv, &args, "ms", 2000, "exec");
	QCoreApplication app(argc, argv);
	const char *variant = args.variant;
	QThread t;
	QObject *idler = new QObject;
	idler->moveToThread(&t);
	t.start();
	std::string lib = qt_lib_name(idler);
	qt_run_in(idler, [&probe] { bench_probe_self(&probe); });

	bench_idle_measure(&probe, args.count, lib.c_str(), variant);
	idler->deleteLater();
	t.quit();
	t.wait();
	return 0;
}
