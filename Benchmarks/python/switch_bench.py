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

    python Benchmarks/python/switch_bench.py [--repeats 7] [--out .bench/python.json]
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
RECORDER = os.path.join(ROOT, "Sources", "UnclogRecord", "python")
sys.path.insert(0, os.path.join(ROOT, "Tests", "python"))

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
    out = subprocess.run([sys.executable, "-W", "ignore", "-c", CHILD, runtime, str(n_gt), str(per_gt)]
                         + (["floor"] if floor else []) + (["monitor"] if monitor else []),
                         env=env, check=True, stdout=subprocess.PIPE, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def count_switches(path):
    import trace_reader
    t = trace_reader.read_trace(path)
    return len(t.switches)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--greenthreads", type=int, default=100)
    ap.add_argument("--calls", type=int, default=200_000, help="sleep(0) calls in all")
    ap.add_argument("--out", default=os.path.join(ROOT, ".bench", "python.json"))
    ap.add_argument("--runtimes", default="eventlet,gevent",
                    help="comma-separated subset of eventlet,gevent (a subset does not write --out)")
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
        result[runtime] = {"plain_cpu_s": plain, "recorded_cpu_s": rec,
                           "plain_median_s": p, "recorded_median_s": r,
                           "slowdown": r / p, "trace_bytes": size, "switch_events": switches,
                           "noop_tracer_cpu_s": floor, "noop_tracer_median_s": fl,
                           "noop_tracer_slowdown": fl / p,
                           "bytes_per_switch": size / switches}
        extra = ""
        if mon:
            m = statistics.median(mon)
            result[runtime].update({"gevent_monitor_cpu_s": mon, "gevent_monitor_median_s": m,
                                    "gevent_monitor_slowdown": m / p})
            extra = ", gevent's own monitor: x%.2f" % (m / p)
        print("%-8s plain %.3fs  recorded %.3fs  x%.2f  (no-op C tracer alone: x%.2f%s)  "
              "%.2f bytes/switch (%d switches, %d bytes)"
              % (runtime, p, r, r / p, fl / p, extra, size / switches, switches, size), flush=True)
    for f in os.listdir(tmp):
        os.unlink(os.path.join(tmp, f))
    os.rmdir(tmp)
    if len(result) < 2:
        return
    summary = {"eventlet_slowdown": round(result["eventlet"]["slowdown"], 3),
               "gevent_slowdown": round(result["gevent"]["slowdown"], 3),
               "eventlet_noop_tracer_slowdown": round(result["eventlet"]["noop_tracer_slowdown"], 3),
               "gevent_noop_tracer_slowdown": round(result["gevent"]["noop_tracer_slowdown"], 3),
               "gevent_monitor_slowdown": round(result["gevent"]["gevent_monitor_slowdown"], 3),
               "bytes_per_switch": round(max(bps), 3),
               "details": result,
               "python": sys.version.split()[0],
               "greenthreads": a.greenthreads, "sleep0_calls": per_gt * a.greenthreads}
    os.makedirs(os.path.dirname(a.out), exist_ok=True)
    with open(a.out, "w") as f:
        json.dump(summary, f, indent=2)
    print(json.dumps({k: summary[k] for k in ("eventlet_slowdown", "gevent_slowdown", "bytes_per_switch")}))


if __name__ == "__main__":
    main()
