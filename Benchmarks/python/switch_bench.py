"""Switch benchmark for the Python recorder (issue 3, `make bench`).

100 greenthreads make 200 000 `sleep(0)` calls in all (2 000 each; every call is two
greenlet switches: to the hub and back), under eventlet and under gevent, each run in
a fresh interpreter, plain and recorded (recorded = injected exactly as `unclog
record` does: PYTHONPATH=<resources>/python + UNCLOG_* variables). Plain and
recorded runs (and a third kind: a no-op C tracer installed with greenlet.settrace,
the floor any settrace-based recorder pays; and for gevent a fourth: gevent's own
compiled blocking monitor, `monitor_thread = True`) alternate in the same invocation; the
figure is the ratio of the medians of the process CPU time (all threads, so the watchdog counts) spent in the
switch loop. Bytes per switch = trace file size / greenlet switch events in it.

With --instructions it also counts instructions per sleep(0) under callgrind (the same
kinds), a figure machine load does not move.

    python Benchmarks/python/switch_bench.py [--repeats 15] [--instructions] [--out .bench/python.json]
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
RECORDER = os.path.join(ROOT, "Sources", "UnclogPythonRecorder", "python")
sys.path.insert(0, os.path.join(ROOT, "schema"))  # trace_reader

CHILD = r'''
import sys, time, json
RUNTIME = sys.argv[1]
if len(sys.argv) > 4 and sys.argv[4] == "floor":
    # the cost of greenlet's tracing machinery alone: a no-op C tracer (slice(a, b))
    import greenlet
    greenlet.settrace(slice)
if len(sys.argv) > 4 and sys.argv[4] == "monitor":
    # gevent's own blocking monitor: a thread plus a compiled greenlet tracer
    import gevent
    gevent.config.monitor_thread = True
N_GT = int(sys.argv[2]); PER_GT = int(sys.argv[3])
if RUNTIME == "eventlet":
    import eventlet
    sleep = eventlet.sleep
    def run():
        gts = [eventlet.spawn(work) for _ in range(N_GT)]
        for g in gts:
            g.wait()
else:
    import gevent
    sleep = gevent.sleep
    def run():
        gevent.joinall([gevent.spawn(work) for _ in range(N_GT)])
def work():
    for _ in range(PER_GT):
        sleep(0)
run()   # warm-up: imports, hub creation, first spawns
t0 = time.process_time(); w0 = time.perf_counter()
run()
t1 = time.process_time(); w1 = time.perf_counter()
print(json.dumps({"cpu": t1 - t0, "wall": w1 - w0}))
'''


def run_child(runtime, n_gt, per_gt, trace=None, floor=False, monitor=False):
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    if trace is not None:
        env["PYTHONPATH"] = RECORDER
        env["UNCLOG_OUTPUT"] = trace
        env["UNCLOG_THRESHOLD_NS"] = str(50_000_000)
        env["UNCLOG_SAMPLE_INTERVAL_NS"] = str(10_000_000)
    out = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", CHILD, runtime, str(n_gt), str(per_gt)]
        + (["floor"] if floor else [])
        + (["monitor"] if monitor else []),
        env=env,
        check=True,
        stdout=subprocess.PIPE,
        text=True,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def instructions(runtime, n_gt, per_gt, kind, tmp):
    """Instructions executed by the whole process (every thread) under callgrind: a
    count that machine load does not move, unlike CPU time."""
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    extra = []
    if kind == "recorded":
        env["PYTHONPATH"] = RECORDER
        env["UNCLOG_OUTPUT"] = os.path.join(tmp, "cg.bin")
        env["UNCLOG_THRESHOLD_NS"] = str(50_000_000)
        env["UNCLOG_SAMPLE_INTERVAL_NS"] = str(10_000_000)
    elif kind in ("floor", "monitor"):
        extra = [kind]
    r = subprocess.run(
        [
            "valgrind",
            "--tool=callgrind",
            "--callgrind-out-file=/dev/null",
            sys.executable,
            "-W",
            "ignore",
            "-c",
            CHILD,
            runtime,
            str(n_gt),
            str(per_gt),
        ]
        + extra,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        check=True,
    )
    for line in r.stderr.splitlines():
        if "Collected :" in line:
            return int(line.split(":")[-1])
    raise RuntimeError("no callgrind total in: " + r.stderr[-500:])


def instructions_per_call(runtime, n_gt, kind, tmp):
    """Instructions per sleep(0) call: the difference of two run lengths cancels start-up
    (the child runs its loop twice: warm-up and measured)."""
    lo, hi = 50, 150
    a = instructions(runtime, n_gt, lo, kind, tmp)
    b = instructions(runtime, n_gt, hi, kind, tmp)
    return (b - a) / (2 * n_gt * (hi - lo))


def count_switches(path):
    import trace_reader

    t = trace_reader.read_trace(path)
    return len(t.switches)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--greenthreads", type=int, default=100)
    ap.add_argument("--calls", type=int, default=200_000, help="sleep(0) calls in all")
    ap.add_argument("--out", default=os.path.join(ROOT, ".bench", "python.json"))
    ap.add_argument(
        "--instructions",
        action="store_true",
        help="also count instructions per sleep(0) under callgrind (needs valgrind; load-independent)",
    )
    ap.add_argument(
        "--runtimes",
        default="eventlet,gevent",
        help="comma-separated subset of eventlet,gevent (a subset does not write --out)",
    )
    a = ap.parse_args()
    per_gt = a.calls // a.greenthreads
    result = {}
    tmp = tempfile.mkdtemp(prefix="unclog-bench-")
    bps = []
    runtimes = [r for r in a.runtimes.split(",") if r]
    for r in runtimes:
        if r not in ("eventlet", "gevent"):
            ap.error("unknown runtime %r (expected eventlet or gevent)" % r)
    for runtime in runtimes:
        plain, rec, floor, mon = [], [], [], []
        for i in range(a.repeats):
            plain.append(run_child(runtime, a.greenthreads, per_gt)["cpu"])
            trace = os.path.join(tmp, "%s-%d.bin" % (runtime, i))
            rec.append(run_child(runtime, a.greenthreads, per_gt, trace)["cpu"])
            floor.append(run_child(runtime, a.greenthreads, per_gt, floor=True)["cpu"])
            if runtime == "gevent":
                mon.append(run_child(runtime, a.greenthreads, per_gt, monitor=True)["cpu"])
        p, r, fl = statistics.median(plain), statistics.median(rec), statistics.median(floor)
        size = os.path.getsize(trace)
        switches = count_switches(trace)
        bps.append(size / switches)
        result[runtime] = {
            "plain_cpu_s": plain,
            "recorded_cpu_s": rec,
            "plain_median_s": p,
            "recorded_median_s": r,
            "slowdown": r / p,
            "trace_bytes": size,
            "switch_events": switches,
            "noop_tracer_cpu_s": floor,
            "noop_tracer_median_s": fl,
            "noop_tracer_slowdown": fl / p,
            "bytes_per_switch": size / switches,
        }
        extra = ""
        if mon:
            m = statistics.median(mon)
            result[runtime].update(
                {"gevent_monitor_cpu_s": mon, "gevent_monitor_median_s": m, "gevent_monitor_slowdown": m / p}
            )
            extra = ", gevent's own monitor: x%.2f" % (m / p)
        print(
            "%-8s plain %.3fs  recorded %.3fs  x%.2f  (no-op C tracer alone: x%.2f%s)  "
            "%.2f bytes/switch (%d switches, %d bytes)"
            % (runtime, p, r, r / p, fl / p, extra, size / switches, switches, size),
            flush=True,
        )
        if a.instructions:
            kinds = ["plain", "floor", "recorded"] + (["monitor"] if runtime == "gevent" else [])
            ipc = {k: instructions_per_call(runtime, a.greenthreads, k, tmp) for k in kinds}
            result[runtime]["instructions_per_sleep0"] = ipc
            result[runtime]["instructions_slowdown"] = ipc["recorded"] / ipc["plain"]
            print(
                "%-8s instructions per sleep(0): plain %.0f  recorded %.0f  x%.2f  (no-op C tracer "
                "alone: x%.2f%s)"
                % (
                    runtime,
                    ipc["plain"],
                    ipc["recorded"],
                    ipc["recorded"] / ipc["plain"],
                    ipc["floor"] / ipc["plain"],
                    ", gevent's own monitor: x%.2f" % (ipc["monitor"] / ipc["plain"])
                    if "monitor" in ipc
                    else "",
                ),
                flush=True,
            )
    for f in os.listdir(tmp):
        os.unlink(os.path.join(tmp, f))
    os.rmdir(tmp)
    if len(result) < 2:
        return
    summary = {
        "eventlet_slowdown": round(result["eventlet"]["slowdown"], 3),
        "gevent_slowdown": round(result["gevent"]["slowdown"], 3),
        "eventlet_noop_tracer_slowdown": round(result["eventlet"]["noop_tracer_slowdown"], 3),
        "gevent_noop_tracer_slowdown": round(result["gevent"]["noop_tracer_slowdown"], 3),
        "gevent_monitor_slowdown": round(result["gevent"]["gevent_monitor_slowdown"], 3),
        "bytes_per_switch": round(max(bps), 3),
        "eventlet_instructions_slowdown": round(result["eventlet"].get("instructions_slowdown", 0), 3)
        or None,
        "gevent_instructions_slowdown": round(result["gevent"].get("instructions_slowdown", 0), 3) or None,
        "details": result,
        "python": sys.version.split()[0],
        "greenthreads": a.greenthreads,
        "sleep0_calls": per_gt * a.greenthreads,
    }
    os.makedirs(os.path.dirname(a.out), exist_ok=True)
    with open(a.out, "w") as f:
        json.dump(summary, f, indent=2)
    print(json.dumps({k: summary[k] for k in ("eventlet_slowdown", "gevent_slowdown", "bytes_per_switch")}))


if __name__ == "__main__":
    main()
