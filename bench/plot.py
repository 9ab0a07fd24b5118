#!/usr/bin/env python3
"""bench/plot.py - draw bench/run's results with gnuplot (gnuplot-nox).

  performance-throughput.png  case A: median calls/s per library and
                              variant, for 1, 2 and 8 producers, with the
                              min-max of the rounds as error bars (log
                              scale: the peers span three decades)
  performance-latency.png     case B: the distribution of every round trip
                              of round 1 (--histogram files), one panel per
                              placement, as the share of round trips that
                              took at least each latency (log-log: the body
                              is the cliff, the tail is what stays above 1%)

Usage: plot.py --json bench/results/latest.json --hist bench/results/hist
               --out docs
Standard library only; writes its gnuplot input beside the JSON.
"""
import argparse
import json
import os
import subprocess
import sys

# Series of the throughput plot, in legend order: (lib, variant, title).
THROUGHPUT_SERIES = (
    ("relay", "queued", "relay signal (queued)"),
    ("relay", "invoke", "relay invoke"),
    ("qt-glib", "queued", "Qt signal, GLib dispatcher"),
    ("qt-glib", "invoke", "Qt invokeMethod, GLib dispatcher"),
    ("qt-unix", "queued", "Qt signal, unix dispatcher"),
    ("qt-unix", "invoke", "Qt invokeMethod, unix dispatcher"),
    ("glib", "invoke", "GLib invoke_full"),
    ("uv", "list-async", "libuv list + async"),
    ("raw", "mutex-condvar", "raw mutex + condvar"),
    ("raw", "spsc-spin", "raw SPSC ring, spinning"),
    ("raw", "spsc-spin-batched", "raw SPSC ring, batched"),
)

# Curves of the latency plot: (job label stem, title). The file is
# <stem>-<pin>.txt or, for Qt, <stem>-<pin>-<dispatcher>.txt.
LATENCY_SERIES = (
    ("B-relay-{pin}", "relay signal"),
    ("B-qt-{pin}-glib", "Qt, GLib dispatcher"),
    ("B-qt-{pin}-unix", "Qt, unix dispatcher"),
    ("B-glib-{pin}", "GLib invoke_full"),
    ("B-uv-{pin}", "libuv list + async"),
    ("B-raw-eventfd-{pin}", "raw eventfd"),
    ("B-raw-futex-{pin}", "raw futex"),
    ("B-raw-spin-{pin}", "raw spin"),
)
PLACEMENTS = (("diff", "threads on different cores"), ("same", "both threads pinned to one core"))


def throughput_data(summary, path):
    """One row per producer count: median, min, max of each series."""
    rows = {}
    for s in summary:
        if s["case"] == "A":
            rows.setdefault(s["producers"], {})[(s["lib"], s["variant"])] = s
    with open(path, "w", encoding="utf-8") as f:
        for p in sorted(rows, key=int):
            cells = []
            for lib, variant, _ in THROUGHPUT_SERIES:
                s = rows[p].get((lib, variant))
                cells += [f"{s['median']:.4g} {s['min']:.4g} {s['max']:.4g}" if s else "NaN NaN NaN"]
            f.write(f"\"{p} producer{'s' if p != '1' else ''}\" " + " ".join(cells) + "\n")
    return len(rows)


def throughput_script(data, png, meta):
    plots = []
    for i, (_, _, title) in enumerate(THROUGHPUT_SERIES):
        col = 2 + 3 * i
        xt = ":xtic(1)" if i == 0 else ""
        plots.append(f"'{data}' using {col}:{col + 1}:{col + 2}{xt} title '{title}' "
                     f"lc rgb COLORS[{i + 1}]")
    return f"""
set terminal pngcairo size 1400,760 font 'DejaVu Sans,11'
set output '{png}'
array COLORS[11] = ['#d62728', '#ff9896', '#1f77b4', '#aec7e8', '#2ca02c', '#98df8a', \\
                    '#9467bd', '#8c564b', '#7f7f7f', '#17becf', '#bcbd22']
set title "Case A: one-way throughput, 2,000,000 calls to another thread's loop\\n\\
{meta}" noenhanced
set ylabel 'million calls per second (log scale; bars: median of the rounds, whiskers: min-max)'
set logscale y
set yrange [0.1:*]
set grid ytics mytics
set style data histograms
set style histogram errorbars gap 2 lw 1
set style fill solid 0.9 border -1
set boxwidth 0.9
set key outside right top vertical Left reverse noenhanced
set xtics nomirror
plot {", ".join(plots)}
"""


def read_hist(path, points=400):
    """Sorted ns values -> [(us, percent taking at least that long)],
    thinned to ~points plus the tail."""
    with open(path, encoding="utf-8") as f:
        ns = [int(line) for line in f if line.strip()]
    n = len(ns)
    if not n:
        return []
    # Evenly spaced ranks for the body, log-spaced ones for the tail (the
    # plot's y axis is logarithmic in "share slower than").
    tail = {n - max(1, int(round(10 ** (j / 20.0)))) for j in range(0, 20 * len(str(n)))}
    idx = sorted({min(n - 1, int(n * k / points)) for k in range(points)} |
                 {i for i in tail if 0 <= i < n} | {n - 1})
    return [(ns[i] / 1000.0, 100.0 * (n - i) / n) for i in idx]


def latency_data(hist_dir, work):
    """Writes one .dat per curve present; returns {pin: [(file, title)]}."""
    curves = {}
    for pin, _ in PLACEMENTS:
        for stem, title in LATENCY_SERIES:
            src = os.path.join(hist_dir, stem.format(pin=pin) + ".txt")
            if not os.path.exists(src):
                continue
            pts = read_hist(src)
            dst = os.path.join(work, os.path.basename(src).replace(".txt", ".dat"))
            with open(dst, "w", encoding="utf-8") as f:
                f.writelines(f"{us:.4f} {pct:.4f}\n" for us, pct in pts)
            curves.setdefault(pin, []).append((dst, title))
    return curves


def latency_script(curves, png, meta):
    colors = ['#d62728', '#1f77b4', '#2ca02c', '#9467bd', '#8c564b', '#7f7f7f', '#17becf',
              '#bcbd22']
    titles = [t for _, t in LATENCY_SERIES]
    parts = [f"""
reset
set terminal pngcairo size 1400,620 font 'DejaVu Sans,11'
set output '{png}'
set multiplot layout 1,2 title "Case B: round-trip latency between two threads' loops, every round trip of one run\\n\\
{meta}" noenhanced
set logscale x
set xrange [0.05:20000]
set logscale y
set yrange [0.001:100]
set format x '%g'
set format y '%g'
set xlabel 'round trip (µs, log scale)'
set ylabel 'round trips taking at least that long (%, log scale)'
set grid xtics ytics mxtics
set arrow from graph 0, first 1 to graph 1, first 1 nohead dt 2 lc rgb '#555555'
set label 'p99' at graph 0.01, first 1.4 tc rgb '#555555'
set arrow from graph 0, first 50 to graph 1, first 50 nohead dt 2 lc rgb '#555555'
set label 'median' at graph 0.01, first 70 tc rgb '#555555'
set key left bottom noenhanced
"""]
    for pin, ptitle in PLACEMENTS:
        plots = []
        for dst, title in curves.get(pin, []):
            c = colors[titles.index(title) % len(colors)]
            lw = 3 if title.startswith("relay") else 1.5
            plots.append(f"'{dst}' using 1:2 with lines lw {lw} lc rgb '{c}' title '{title}'")
        parts.append(f"set title '{ptitle}'\nplot " + ", ".join(plots) + "\n")
    parts.append("unset multiplot\n")
    return "".join(parts)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--json", default="bench/results/latest.json")
    ap.add_argument("--hist", default="bench/results/hist")
    ap.add_argument("--out", default="docs")
    a = ap.parse_args()

    with open(a.json, encoding="utf-8") as f:
        doc = json.load(f)
    m = doc["meta"]
    dirty = "+changes" if m["library_dirty"] else ""
    meta = (f"relay {m['commit']}{dirty}, {m['rounds']} rounds, {m['date_utc']} UTC, "
            f"{m['cpus']} CPUs ({m['cpu_model']}), Qt {m['packages']['qt6-base-dev']}, "
            f"GLib {m['packages']['libglib2.0-dev']}, libuv {m['packages']['libuv1-dev']}")
    work = os.path.join(os.path.dirname(a.json) or ".", "plot")
    os.makedirs(work, exist_ok=True)
    os.makedirs(a.out, exist_ok=True)

    script = ""
    if throughput_data(doc["summary"], os.path.join(work, "throughput.dat")):
        script += throughput_script(os.path.join(work, "throughput.dat"),
                                    os.path.join(a.out, "performance-throughput.png"), meta)
    curves = latency_data(a.hist, work)
    if curves:
        script += latency_script(curves, os.path.join(a.out, "performance-latency.png"), meta)
    if not script:
        sys.exit("plot.py: nothing to plot")
    gp = os.path.join(work, "plots.gp")
    with open(gp, "w", encoding="utf-8") as f:
        f.write(script)
    subprocess.run(["gnuplot", gp], check=True)
    print(f"plot.py: wrote {a.out}/performance-throughput.png and performance-latency.png")


if __name__ == "__main__":
    main()
