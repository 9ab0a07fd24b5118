#!/usr/bin/env python3
"""bench/report.py - turn bench/run's RESULT lines into tables and JSON.

Reads the log bench/run wrote (one "RESULT round=R job=J case=X lib=L ...
value=V unit=U" line per measurement, plus FAILED/MISSING lines), then

  * prints a markdown table per case: median over the rounds, min-max,
    and relay's median divided by each row's (the ratio column says which
    direction is better);
  * checks PERFORMANCE.md's targets (not with --quick: those timings mean
    nothing) and prints met / not met with the measured ratio;
  * writes everything, raw results included, as JSON (--json), the
    tables as markdown (--md), and can replace the part of a document
    between "<!-- bench:begin -->" and "<!-- bench:end -->" (--update-doc);
    a case whose own markers the document has ("<!-- bench:H:begin -->"
    and "<!-- bench:H:end -->", each alone on its line) gets its table
    there instead, and a block is replaced only when the log has results
    for it, so a run of one case (bench/run --cases H) updates its block
    and leaves the rest of the document as it was.

Exits 1 when the log has a failed or missing program, or none at all.
Standard library only. Output order is fixed (cases, then settings and
libraries in the order bench/run ran them), so re-runs diff cleanly.
"""
import argparse
import datetime
import json
import re
import statistics
import subprocess
import sys

ID_KEYS = ("case", "lib", "variant", "producers", "slots", "pin", "priority", "metric")
PARAM_KEYS = ("producers", "slots", "pin", "metric")
LIB_ORDER = ("relay", "qt-glib", "qt-unix", "qt", "glib", "uv", "raw")
# relay's variant that the peers are compared with, per case.
PRIMARY = {"A": "queued", "B": "signal", "C": "emit", "D": "loop", "E": "thread"}
HIGHER_IS_BETTER = {"Mcalls/s", "ticks/s", "tasks/s"}
CASES = "ABCDEFGH"

CASE_TITLES = {
    "A": "A. One-way throughput: 2,000,000 calls carrying an int64 to another thread's loop",
    "B": "B. Round trip between two threads' loops (100,000 round trips)",
    "C": "C. Direct (same-thread) emit, ns per emit",
    "D": "D. Idle loop thread for 2 s",
    "E": "E. Thread start until the started notification runs in the starting thread's loop",
    "F": "F. Memory and locks (relay only)",
    "G": "G. relay embedded in a GMainLoop: a worker thread sends to the main thread, "
         "whose loop is GLib's",
    "H": "H. Thread pool: the main thread submits tasks, each reports back to the main "
         "thread's loop",
}
# Case G's rows, in table order: metric -> what it is.
G_METRICS = (
    ("throughput", "throughput, 2,000,000 int64 calls"),
    ("roundtrip-median", "blocking round trip, median"),
    ("roundtrip-p99", "blocking round trip, p99"),
    ("ticks", "60 Hz timeout at 120 under a flood of 10^6 calls of 2 µs"),
    ("flood-ms", "flood: start until all handled"),
    ("max-gap", "flood: longest gap between ticks"),
)
# relay-glib's default priority (RELAY_GLIB_PRIORITY): relay's reference row.
G_RELAY_PRIORITY = "200"
# Case H's rows, in table order (bench/pool_common.h): metric -> what it
# is, the scale from the programs' unit to the table's, the table's unit.
# "rss" is the throughput run's peak RSS (its rss_kib key).
H_METRICS = (
    ("throughput", "throughput, 1,000,000 empty tasks", 1e-6, "M tasks/s"),
    ("rss", "throughput: peak RSS", 1.0, "MiB"),
    ("fanout-median", "fan-out, 64 tasks of 10 µs, first submit to last report, median",
     1.0, "µs"),
    ("fanout-p99", "fan-out, p99", 1.0, "µs"),
    ("cancel-median", "cancel a running task until its function has returned, median",
     1.0, "µs"),
    ("cancel-p99", "cancel, p99", 1.0, "µs"),
)
PIN_NAMES = {"diff": "different cores", "same": "one core (pinned)", "none": "unpinned"}


# ---- parsing ----------------------------------------------------------------

# What bench/run recorded about the tree when it started (META line):
# commit, library_commit, library_dirty, date_utc.
META = {}

# SKIPPED lines of the log: programs that could not measure here and said
# why (qt_gmain without Qt's GLib dispatcher); listed, not failures.
SKIPPED = []

def parse_log(path):
    """Returns (results, problems, loads): dicts of RESULT lines,
    FAILED/MISSING lines, and the load average as each round began."""
    results, problems, loads = [], [], []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if line.startswith(("FAILED ", "MISSING ")):
                problems.append(line)
                continue
            if line.startswith("SKIPPED "):
                SKIPPED.append(line)
                continue
            if line.startswith("LOAD "):
                loads.append(float(line.rsplit("=", 1)[1]))
                continue
            if line.startswith("META "):
                META.update(kv.split("=", 1) for kv in line.split()[1:] if "=" in kv)
                continue
            if not line.startswith("RESULT "):
                continue
            r = dict(kv.split("=", 1) for kv in line.split()[1:] if "=" in kv)
            r["value"] = float(r["value"])
            r["round"] = int(r["round"])
            results.append(r)
    return results, problems, loads


def row_key(r):
    return tuple(r.get(k, "") for k in ID_KEYS)


def summarise(results):
    """One entry per measured row, in first-seen order, with its rounds."""
    rows = {}
    for r in sorted(results, key=lambda r: r["round"]):
        k = row_key(r)
        if k not in rows:
            rows[k] = dict({key: r[key] for key in ID_KEYS if key in r},
                           unit=r["unit"], values=[], rss_kib=[], threads=[],
                           first=len(rows))
        rows[k]["values"].append(r["value"])
        if "rss_kib" in r:
            rows[k]["rss_kib"].append(float(r["rss_kib"]))
        # Case H: how many threads of the pool really ran tasks.
        if "threads" in r:
            rows[k]["threads"].append(int(r["threads"]))
    out = []
    for row in rows.values():
        v = row["values"]
        row.update(median=statistics.median(v), min=min(v), max=max(v), n=len(v))
        if row["rss_kib"]:
            row["rss_mib_median"] = statistics.median(row["rss_kib"]) / 1024.0
            row["rss_mib_min"] = min(row["rss_kib"]) / 1024.0
            row["rss_mib_max"] = max(row["rss_kib"]) / 1024.0
        out.append(row)
    return out


# ---- lookups and formatting -----------------------------------------------

def find(summary, **want):
    """The rows matching every given id key."""
    return [s for s in summary if all(s.get(k) == str(v) for k, v in want.items())]


def median_of(summary, **want):
    rows = find(summary, **want)
    return rows[0]["median"] if rows else None


def fmt(v):
    if v is None:
        return "—"
    if v == 0:
        return "0"
    if abs(v) >= 100:
        return f"{v:.0f}"
    return f"{v:.3g}"


def unit_text(u):
    return "µs" if u == "us" else u


def ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b


def fmt_ratio(r):
    return "—" if r is None else f"{r:.2f}×"


def lib_rank(lib):
    return LIB_ORDER.index(lib) if lib in LIB_ORDER else len(LIB_ORDER)


def group_rows(summary, case):
    """Rows of one case grouped by their settings (producers, pin, ...)."""
    groups = {}
    for s in summary:
        if s["case"] != case:
            continue
        params = tuple(s.get(k, "") for k in PARAM_KEYS)
        groups.setdefault(params, []).append(s)
    first = {p: min(r["first"] for r in rows) for p, rows in groups.items()}
    ordered = sorted(groups.items(), key=lambda kv: first[kv[0]])
    return [(p, sorted(rows, key=lambda r: (lib_rank(r["lib"]), r["first"])))
            for p, rows in ordered]


def setting_text(row):
    parts = []
    if row.get("producers"):
        parts.append(f"{row['producers']} producer" + ("s" if row["producers"] != "1" else ""))
    if row.get("slots"):
        parts.append(f"{row['slots']} slot" + ("s" if row["slots"] != "1" else ""))
    if row.get("pin"):
        parts.append(PIN_NAMES.get(row["pin"], row["pin"]))
    if row.get("metric"):
        parts.append(row["metric"])
    return ", ".join(parts)


# ---- tables -------------------------------------------------------------------

def case_table(summary, case, field="median", lo="min", hi="max", unit=None,
               better=None):
    """Markdown lines for one case: setting | library | variant | median |
    min–max | relay/peer."""
    groups = group_rows(summary, case)
    if not groups:
        return []
    # One unit for the table, or a unit per row (D and F mix them).
    mixed = unit is None and len({r["unit"] for _, rows in groups for r in rows}) > 1
    unit = unit or groups[0][1][0]["unit"]
    if better is None:
        better = "higher" if unit in HIGHER_IS_BETTER else "lower"
    with_ratio = case in PRIMARY
    head = ("| setting | library | variant | median | unit | min–max |" if mixed else
            f"| setting | library | variant | median ({unit_text(unit)}) | min–max |")
    rule = "|---|---|---|---:|---|---|" if mixed else "|---|---|---|---:|---|"
    if with_ratio:
        head += f" relay/peer ({better} is better for relay) |"
        rule += "---:|"
    lines = [head, rule]
    for _, rows in groups:
        ref = next((r for r in rows if r["lib"] == "relay"
                    and r.get("variant") == PRIMARY.get(case)), None)
        for r in rows:
            if field not in r:
                continue
            unit_cell = f" {unit_text(r['unit'])} |" if mixed else ""
            line = (f"| {setting_text(r)} | {r['lib']} | {r.get('variant', '')} | "
                    f"{fmt(r[field])} |{unit_cell} {fmt(r[lo])}–{fmt(r[hi])} |")
            if with_ratio:
                cell = "ref" if r is ref else fmt_ratio(ratio(ref and ref[field], r[field]))
                line += f" {cell} |"
            lines.append(line)
    return lines


def g_table(summary):
    """Case G: one row per metric and library; relay at relay-glib's
    default priority is the reference of each metric."""
    rows = find(summary, case="G")
    if not rows:
        return []
    lines = ["| measurement | library | variant | source priority | median | unit | min–max "
             "| relay/peer |", "|---|---|---|---:|---:|---|---|---:|"]
    for metric, text in G_METRICS:
        mrows = sorted((r for r in rows if r.get("metric") == metric),
                       key=lambda r: (lib_rank(r["lib"]), r["first"]))
        ref = next((r for r in mrows if r["lib"] == "relay"
                    and r.get("priority") == G_RELAY_PRIORITY), None)
        for r in mrows:
            better = "higher" if r["unit"] in HIGHER_IS_BETTER else "lower"
            cell = "ref" if r is ref else fmt_ratio(ratio(ref and ref["median"], r["median"]))
            lines.append(f"| {text} ({better} is better) | {r['lib']} | {r.get('variant', '')} | "
                         f"{r.get('priority', '')} | {fmt(r['median'])} | {unit_text(r['unit'])} "
                         f"| {fmt(r['min'])}–{fmt(r['max'])} | {cell} |")
    return lines


def h_rows(summary):
    """Case H's rows per table metric: (metric, text, unit, better, rows),
    each row a dict lib, variant, threads, median, min, max in the
    table's unit (throughput in M tasks/s, the RSS in MiB)."""
    rows = find(summary, case="H")
    out = []
    for metric, text, scale, unit in H_METRICS:
        src = "throughput" if metric == "rss" else metric
        mrows = sorted((r for r in rows if r.get("metric") == src),
                       key=lambda r: (lib_rank(r["lib"]), r["first"]))
        cells = []
        for r in mrows:
            if metric == "rss":
                if not r["rss_kib"]:
                    continue
                med, lo, hi = r["rss_mib_median"], r["rss_mib_min"], r["rss_mib_max"]
            else:
                med, lo, hi = (r[k] * scale for k in ("median", "min", "max"))
            th = r["threads"]
            threads = "" if not th else (str(th[0]) if min(th) == max(th)
                                         else f"{min(th)}–{max(th)}")
            cells.append(dict(lib=r["lib"], variant=r.get("variant", ""), threads=threads,
                              median=med, min=lo, max=hi))
        better = "higher" if metric == "throughput" else "lower"
        if cells:
            out.append((metric, text, unit, better, cells))
    return out


def h_table(summary):
    """Case H: one row per metric and library; relay's (its first row of the
    metric) is the reference; then relay next to the best peer of each
    metric, when relay has results."""
    groups = h_rows(summary)
    if not groups:
        return []
    lines = ["| measurement | library | variant | threads | median | unit | min–max "
             "| relay/peer |", "|---|---|---|---:|---:|---|---|---:|"]
    best_lines = []
    for metric, text, unit, better, cells in groups:
        ref = next((c for c in cells if c["lib"] == "relay"), None)
        for c in cells:
            cell = "ref" if c is ref else fmt_ratio(ratio(ref and ref["median"], c["median"]))
            lines.append(f"| {text} ({better} is better) | {c['lib']} | {c['variant']} | "
                         f"{c['threads']} | {fmt(c['median'])} | {unit} "
                         f"| {fmt(c['min'])}–{fmt(c['max'])} | {cell} |")
        peers = [c for c in cells if c["lib"] != "relay"]
        if ref and peers:
            pick = max if better == "higher" else min
            best = pick(peers, key=lambda c: c["median"])
            best_lines.append(f"| {text} ({unit}, {better} is better) | {fmt(ref['median'])} | "
                              f"{fmt(best['median'])} ({best['lib']} {best['variant']}) | "
                              f"{fmt_ratio(ratio(ref['median'], best['median']))} |")
    if best_lines:
        lines += ["", "| measurement | relay | best peer | relay/best peer |",
                  "|---|---:|---|---:|"] + best_lines
    return lines


def case_section(summary, case):
    """The markdown of one case: its title and table(s), [] without rows."""
    if case == "G":
        lines = g_table(summary)
    elif case == "H":
        lines = h_table(summary)
    else:
        lines = case_table(summary, case)
    if not lines:
        return []
    out = [f"### {CASE_TITLES[case]}", ""] + lines + [""]
    if case == "A":
        out += ["### A. Peak RSS of the flood (MiB, getrusage ru_maxrss of each program)", ""]
        out += case_table(summary, "A", "rss_mib_median", "rss_mib_min", "rss_mib_max",
                          unit="MiB", better="lower") + [""]
    return out


def all_tables(summary, skip=""):
    out = []
    for case in CASES:
        if case not in skip:
            out += case_section(summary, case)
    return out


# ---- targets ------------------------------------------------------------------

def targets(summary):
    """PERFORMANCE.md's targets: (name, measured, ratio text, met)."""
    m = lambda **k: median_of(summary, **k)
    out = []

    def check(name, measured, r, ok):
        out.append({"target": name, "measured": measured,
                    "ratio": r, "met": ok})

    def vs(name, a, b, limit, higher, what_b):
        r = ratio(a, b)
        ok = None if r is None else (r >= limit if higher else r <= limit)
        check(name, f"relay {fmt(a)} vs {what_b} {fmt(b)}",
              None if r is None else round(r, 3), ok)

    relay_a1 = m(case="A", lib="relay", variant="queued", producers=1)
    qt_best = max([s["median"] for s in find(summary, case="A", producers=1)
                   if s["lib"].startswith("qt")] or [0]) or None
    vs("A: >= 10x Qt's best queued path (1 producer, Mcalls/s)", relay_a1, qt_best,
       10, True, "Qt best")
    vs("A: >= 3x libuv list+async (Mcalls/s)", relay_a1,
       m(case="A", lib="uv", producers=1), 3, True, "libuv")
    vs("A: >= 50% of the spinning SPSC ring (Mcalls/s)", relay_a1,
       m(case="A", lib="raw", variant="spsc-spin", producers=1), 0.5, True, "SPSC ring")
    for p in (2, 8):
        vs(f"A: {p} producers >= 0.7x 1 producer (Mcalls/s)",
           m(case="A", lib="relay", variant="queued", producers=p), relay_a1, 0.7, True,
           "relay 1 producer")
    rss = lambda lib: next((s["rss_mib_median"] for s in find(
        summary, case="A", lib=lib, variant="queued", producers=1)), None)
    vs("A: peak RSS of the flood <= Qt's with the unix dispatcher (MiB)", rss("relay"),
       rss("qt-unix"), 1.0, False, "Qt unix")
    for pin in ("diff", "same"):
        for metric, limit in (("median", 1.3), ("p99", 1.5)):
            vs(f"B: {metric} <= {limit}x raw eventfd ping-pong, {PIN_NAMES[pin]} (µs)",
               m(case="B", lib="relay", pin=pin, metric=metric),
               m(case="B", lib="raw", variant="eventfd", pin=pin, metric=metric),
               limit, False, "eventfd")
    for slots in (1, 10):
        qt = min([s["median"] for s in find(summary, case="C", slots=slots)
                  if s["lib"].startswith("qt")] or [0]) or None
        vs(f"C: {slots} slot{'s' if slots > 1 else ''} <= 0.25x Qt direct (ns/emit)",
           m(case="C", lib="relay", slots=slots), qt, 0.25, False, "Qt")
    vs("C: unconnected emit <= one indirect call (ns/emit)",
       m(case="C", lib="relay", slots=0), m(case="C", lib="raw", slots=1), 1.0, False,
       "raw indirect call")
    for metric, unit in (("wakeups", "switches"), ("cpu", "µs")):
        rows = find(summary, case="D", lib="relay", metric=metric)
        worst = max(rows[0]["values"]) if rows else None
        check(f"D: 0 {metric} over 2 s idle (worst round, {unit})", fmt(worst), None,
              None if worst is None else worst == 0)
    vs("E: <= 1.5x raw pthread + eventfd, one core (µs)",
       m(case="E", lib="relay", pin="same", metric="median"),
       m(case="E", lib="raw", pin="same", metric="median"), 1.5, False, "raw")
    for variant in ("payload8", "payload64"):
        a = m(case="F", variant=variant, metric="allocs-per-emit")
        check(f"F: 0 allocations per queued emit, {variant[7:]}-byte payload", fmt(a), None,
              None if a is None else a == 0)
    size, sig = m(case="F", metric="object-size"), m(case="F", metric="signal-size")
    check("F: an object <= 64 bytes plus its signals (sizeof relay_object minus its "
          "destroyed signal)", None if size is None else f"{fmt(size)} - {fmt(sig)} bytes",
          None, None if size is None else size - sig <= 64)
    locks = m(case="F", variant="direct", metric="locks-per-emit")
    check("F: no lock taken by an emit with only direct connections (locks/emit)",
          fmt(locks), None, None if locks is None else locks == 0)
    g = lambda lib, metric, priority=None: m(case="G", lib=lib, metric=metric, **(
        {"priority": priority} if priority else {}))
    relay_g = g("relay", "throughput", G_RELAY_PRIORITY)
    vs("G: throughput >= 10x Qt with its GLib dispatcher (Mcalls/s)", relay_g,
       g("qt-glib", "throughput"), 10, True, "Qt GLib")
    vs("G: throughput >= 5x g_main_context_invoke (Mcalls/s)", relay_g,
       g("glib", "throughput"), 5, True, "GLib")
    ticks = g("relay", "ticks", G_RELAY_PRIORITY)
    if ticks is not None:
        others = "; ".join(f"{name} {fmt(v)}" for name, v in (
            ("relay at priority 0", g("relay", "ticks", "0")),
            ("Qt GLib", g("qt-glib", "ticks")), ("GLib", g("glib", "ticks")),
            ("raw 2 ms slices at 200", g("raw", "ticks")))
            if v is not None)
        check("G: a 60 Hz timeout at 120 keeps >= 90% of its ticks (>= 54/s) under the "
              "flood, relay at 200 (ticks/s)", f"relay {fmt(ticks)}" +
              (f" ({others})" if others else ""), round(ticks / 60, 3), ticks >= 54)
    return out


def targets_table(tg, quick):
    lines = ["| target | measured (medians) | ratio | met? |", "|---|---|---:|---|"]
    for t in tg:
        met = "—" if t["met"] is None else ("**met**" if t["met"] else "**not met**")
        if quick:
            met = "not judged (--quick)"
        r = "—" if t["ratio"] is None else f"{t['ratio']:.2f}×"
        lines.append(f"| {t['target']} | {t['measured'] or '—'} | {r} | {met} |")
    return lines


# ---- metadata -------------------------------------------------------------------

def sh(*cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, check=False).stdout.strip()
    except OSError:
        return ""


def metadata(rounds, quick, loads):
    cpu = ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            cpu = next((l.split(":", 1)[1].strip() for l in f if l.startswith("model name")), "")
    except OSError:
        pass
    versions = {}
    for pkg in ("qt6-base-dev", "libglib2.0-dev", "libuv1-dev", "gcc"):
        versions[pkg] = sh("dpkg-query", "-W", "-f", "${Version}", pkg) or "not installed"
    # The log's META line wins: the tree may have moved since the run.
    return {
        "commit": META.get("commit") or sh("git", "rev-parse", "--short", "HEAD"),
        # The last commit that changed the library: what relay's numbers
        # belong to when only bench/ or docs/ moved since.
        "library_commit": META.get("library_commit") or
        sh("git", "log", "-1", "--format=%h", "--", "src", "include"),
        # Uncommitted library changes mean the commit alone does not say
        # what was measured.
        "library_dirty": META["library_dirty"] == "1" if "library_dirty" in META else
        bool(sh("git", "status", "--porcelain", "--", "src", "include", "CMakeLists.txt")),
        "date_utc": META.get("date_utc", "").replace("T", " ") or
        datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M"),
        "cpus": sh("nproc"),
        "cpu_model": cpu,
        "kernel": sh("uname", "-r"),
        "packages": versions,
        "rounds": rounds,
        "quick": quick,
        "loadavg_at_rounds": loads,
    }


def meta_lines(meta):
    dirty = " plus uncommitted changes in src/ or include/" if meta["library_dirty"] else ""
    pk = meta["packages"]
    return [
        f"Measured {meta['date_utc']} UTC at commit `{meta['commit']}`{dirty} "
        f"(library last changed in `{meta['library_commit']}`); "
        f"{meta['rounds']} interleaved round(s){' (--quick)' if meta['quick'] else ''}; "
        f"{meta['cpus']} CPUs ({meta['cpu_model']}), Linux {meta['kernel']}; "
        f"Qt {pk['qt6-base-dev']}, GLib {pk['libglib2.0-dev']}, libuv {pk['libuv1-dev']}, "
        f"gcc {pk['gcc']}. Load average (1 min) as each round began: "
        f"{', '.join(f'{l:.1f}' for l in meta['loadavg_at_rounds']) or 'not recorded'}"
        " (the programs themselves add up to ~1-2; more means other work ran).",
        "",
    ]


# ---- main -------------------------------------------------------------------------

def job_case(line):
    """The case letter of a FAILED/MISSING/SKIPPED line (its job=X-... label)."""
    m = re.search(r"\bjob=([A-Z])-", line)
    return m.group(1) if m else ""


def skipped_lines(skipped):
    """SKIPPED lines once per job and reason, with the rounds they came from."""
    seen = {}
    for line in skipped:
        m = re.match(r"SKIPPED round=(\d+) (.*)", line)
        key, rnd = (m.group(2), m.group(1)) if m else (line, "")
        seen.setdefault(key, []).append(rnd)
    return [f"- `SKIPPED {k}`" + (f" (round{'s' if len(r) > 1 else ''} {', '.join(r)})"
                                  if any(r) else "") for k, r in seen.items()]


def problem_lines(problems, skipped):
    lines = []
    if problems:
        lines += ["### Programs that failed", ""] + [f"- `{p}`" for p in problems] + [""]
    if skipped:
        lines += ["### Programs that skipped", ""] + skipped_lines(skipped) + [""]
    return lines


def report_lines(summary, meta, tg, quick, problems, skipped, skip=""):
    """The whole report but the cases in skip (and their programs' lines)."""
    lines = meta_lines(meta) + all_tables(summary, skip)
    lines += ["### Targets (PERFORMANCE.md)", ""] + targets_table(tg, quick) + [""]
    return lines + problem_lines([p for p in problems if job_case(p) not in skip],
                                 [p for p in skipped if job_case(p) not in skip])


def update_doc(path, summary, meta, tg, quick, problems):
    """Replaces the generated blocks of path: each case with markers of its
    own (<!-- bench:X:begin --> ... <!-- bench:X:end -->) gets its section
    there, the rest goes between <!-- bench:begin --> and <!-- bench:end -->;
    a block for which the log has no result is left as it was."""
    with open(path, encoding="utf-8") as f:
        doc = f.read()
    measured = {s["case"] for s in summary}
    own = set(re.findall(r"<!-- bench:([A-Z]):begin -->\n", doc))
    replaced = []
    for case in sorted(own):
        if case not in measured:
            continue
        pat = re.compile(r"(<!-- bench:%s:begin -->\n).*?(<!-- bench:%s:end -->)" % (case, case),
                         re.S)
        if not pat.search(doc):
            sys.exit(f"report.py: {path} has <!-- bench:{case}:begin --> but no "
                     f"<!-- bench:{case}:end --> after it")
        text = "\n".join(meta_lines(meta) + case_section(summary, case) + problem_lines(
            [p for p in problems if job_case(p) == case],
            [p for p in SKIPPED if job_case(p) == case]))
        doc = pat.sub(lambda m, text=text: m.group(1) + text + m.group(2), doc)
        replaced.append(case)
    if measured - own:
        pat = re.compile(r"(<!-- bench:begin -->\n).*?(<!-- bench:end -->)", re.S)
        if not pat.search(doc):
            sys.exit(f"report.py: {path} has no <!-- bench:begin/end --> markers")
        text = "\n".join(report_lines(summary, meta, tg, quick, problems, SKIPPED,
                                      skip="".join(own)))
        doc = pat.sub(lambda m: m.group(1) + text + m.group(2), doc)
        replaced.append("the main block")
    if not replaced:
        sys.exit(f"report.py: no results for any block of {path}")
    with open(path, "w", encoding="utf-8") as f:
        f.write(doc)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--log", default="bench/results/latest.log")
    ap.add_argument("--json")
    ap.add_argument("--md")
    ap.add_argument("--update-doc")
    ap.add_argument("--rounds", type=int, default=0)
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args()

    results, problems, loads = parse_log(a.log)
    summary = summarise(results)
    rounds = a.rounds or max((r["round"] for r in results), default=0)
    meta = metadata(rounds, a.quick, loads)
    tg = targets(summary)

    text = "\n".join(report_lines(summary, meta, tg, a.quick, problems, SKIPPED))
    print(text)

    if a.json:
        with open(a.json, "w", encoding="utf-8") as f:
            json.dump({"meta": meta, "problems": problems, "targets": tg,
                       "summary": [{k: v for k, v in s.items() if k != "first"}
                                   for s in summary],
                       "results": results}, f, indent=1, sort_keys=True)
            f.write("\n")
    if a.md:
        with open(a.md, "w", encoding="utf-8") as f:
            f.write(text)
    if a.update_doc:
        update_doc(a.update_doc, summary, meta, tg, a.quick, problems)
    if problems or not results:
        print(f"report.py: {len(problems)} program(s) failed or missing"
              if problems else "report.py: no results", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
