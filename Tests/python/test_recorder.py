"""End-to-end tests of the Python recorder with real eventlet and gevent programs.

Every program runs in a fresh interpreter injected exactly as `unclog record` does
(PYTHONPATH + UNCLOG_* variables, see conftest.recorder_env); traces are decoded by
schema/trace_reader.py, the reader written from the spec alone. Threshold 50 ms, sample
interval 10 ms. Run with UNCLOG_PURE_PYTHON=1 (`make test-python-pure`), every test records
with the pure-Python tracer instead of the native one.
"""

import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest

import conftest
import trace_reader
from conftest import PROGRAMS, marker_lines, run_program

PLANNED = os.path.join(PROGRAMS, "planned.py")
RUNTIMES = ["eventlet", "gevent"]
_cache = {}


# eventlet's hubs other than its default (epolls here), by EVENTLET_HUB
EVENTLET_HUBS = {"eventlet-asyncio": "asyncio", "eventlet-poll": "poll", "eventlet-selects": "selects"}


def _hub_available(runtime):
    hub = EVENTLET_HUBS.get(runtime)
    if hub is None:
        return True
    import importlib.util

    spec = importlib.util.find_spec("eventlet")  # finds it without importing it
    return spec is not None and any(
        os.path.exists(os.path.join(d, "hubs", hub + ".py")) for d in spec.submodule_search_locations
    )


def planned_run(runtime, tmp_path_factory):
    """One recorded run of planned.py per runtime, shared by several tests."""
    if not _hub_available(runtime):
        pytest.skip("this eventlet has no %s hub" % EVENTLET_HUBS[runtime])
    if runtime not in _cache:
        trace = tmp_path_factory.mktemp("planned-" + runtime) / "trace.bin"
        env = None
        if runtime in EVENTLET_HUBS:
            env = dict(os.environ, EVENTLET_HUB=EVENTLET_HUBS[runtime])
        r = run_program([PLANNED, runtime.split("-")[0]], trace=trace, env=env)
        assert r.returncode == 0, r.stderr
        out = json.loads(r.stdout.strip().splitlines()[-1])
        _cache[runtime] = (out, trace_reader.read_trace(str(trace)))
    return _cache[runtime]


def _tol(seconds):
    return max(0.005, 0.05 * seconds)


@pytest.mark.parametrize("runtime", RUNTIMES + list(EVENTLET_HUBS))
def test_trace_is_clean(runtime, tmp_path_factory):
    out, t = planned_run(runtime, tmp_path_factory)
    assert t.damage == []
    assert t.conflicts == 0
    assert t.seq_gaps == 0
    assert t.dropped == []
    assert t.end is not None, "End event missing"
    chunks_before_end = len(t.chunks) - 1
    assert t.end[0] == chunks_before_end
    assert t.end[1] == t.events - 1  # every event but End itself
    md = t.metadata
    assert md["runtime"] == runtime.split("-")[0]
    assert md["runtime_version"]
    assert md["recorder"] == "unclog-python 0.1.0"
    assert md["language_version"].startswith("CPython 3.")
    assert md["recorder_tracer"] == conftest.TRACER
    assert md["threshold_ns"] == conftest.THRESHOLD_NS
    assert md["sample_interval_ns"] == conftest.INTERVAL_NS
    assert md["clock"] == "CLOCK_MONOTONIC"
    assert md["pid"] > 0 and md["argv"][-2:] == [PLANNED, runtime.split("-")[0]]
    # every id used is defined
    for s in t.stall_ends:
        assert s["gt"] in t.greenthreads
        assert s["stack"] == 0 or s["stack"] in t.stacks
    for sid, fids in t.stacks.items():
        for f in fids:
            assert f in t.frames
    for fid, (flags, fn, file, line) in t.frames.items():
        assert fn in t.strings and file in t.strings
    # switches to 200+ greenthreads, with names
    names = {t.gt_name(g) for g in t.greenthreads}
    assert {"ticker", "block_sleep", "block_cpu", "block_sqlite", "<hub>"} <= names
    assert len(t.switches) > 10000
    assert len(t.io_waits) > 50


@pytest.mark.parametrize("runtime", RUNTIMES + list(EVENTLET_HUBS))
def test_planned_blocks_found_at_their_line_with_their_duration(runtime, tmp_path_factory):
    out, t = planned_run(runtime, tmp_path_factory)
    lines, _ = marker_lines(PLANNED)
    stalls = t.stalls()
    for name in ("sleep", "cpu", "sqlite"):
        planned = out["blocks"][name]
        assert planned >= 0.1, (name, planned)  # ≥ 2 × threshold
        found = [s for s in stalls if s["line"] == lines[name] and s["file"] == PLANNED]
        assert len(found) == 1, (name, [(s["name"], s["file"], s["line"], s["duration"]) for s in stalls])
        s = found[0]
        assert s["name"] == "block_" + name
        assert abs(s["duration"] / 1e9 - planned) <= _tol(planned), (name, s["duration"], planned)
        # the watchdog saw it while it lasted (CPU loops release the GIL every 5 ms)
        assert s["samples"] >= 2, s
    # nothing else is reported, except slices the program itself measured as long
    # (the process descheduled on a loaded machine): ground truth, not a tolerance
    others = [s for s in stalls if s["line"] not in (lines["sleep"], lines["cpu"], lines["sqlite"])]
    assert [s for s in others if not _explained(out, s)] == [], others


def _explained(out, stall):
    """A stall outside the planned blocks is legitimate only if the program measured
    one of its own slices as long (> 25 ms) at that time, in that greenthread."""
    base = out["start"] * 1e9
    measured = [(n, a, b) for n, a, b in out["long_slices"]]
    measured += [("short_slices", a, b) for a, b in out["blocks"].get("short_slices", []) if b - a > 0.025]
    for name, a, b in measured:
        if name == stall["name"] and base + a * 1e9 < stall["end"] and base + b * 1e9 > stall["begin"]:
            return True
    return False


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_stall_begin_and_samples_point_at_the_blocking_line(runtime, tmp_path_factory):
    out, t = planned_run(runtime, tmp_path_factory)
    lines, _ = marker_lines(PLANNED)
    planned = [s for s in t.stalls() if s["line"] in (lines["sleep"], lines["cpu"], lines["sqlite"])]
    assert len(planned) == 3
    for s in planned:
        begins = [
            b for b in t.stall_begins if b["tid"] == s["thread"] and s["begin"] <= b["time"] <= s["end"]
        ]
        assert len(begins) == 1 and begins[0]["gt"] == s["gt"]
        assert abs(begins[0]["since"] - s["begin"]) < 1_000_000  # same slice start (±1 ms)
        samples = [x for x in t.samples if x["tid"] == s["thread"] and s["begin"] <= x["time"] <= s["end"]]
        sites = [t.call_site(x["stack"]) for x in samples]
        assert all(f is not None for f in sites)
        # most samples are at the blocking line; the last one may catch the
        # greenthread just past it, on its way to the switch that ends the slice
        at_line = [f for f in sites if f["line"] == s["line"]]
        assert len(at_line) >= max(1, (len(sites) + 1) // 2), [f["line"] for f in sites]
        assert len(at_line) >= len(sites) - 1, [f["line"] for f in sites]
        # internal frames are marked: the innermost sampled frame of time.sleep /
        # the sqlite call is the application line itself, hub frames lie below
        st = t.stack(samples[0]["stack"])
        assert not st[0]["internal"]
        if runtime == "eventlet":  # GreenThread.main is Python (gevent's run is C)
            assert st[-1]["internal"] and st[-1]["function"] == "GreenThread.main"
        # the stack where the slice ended: inside the runtime's sleep, called from the
        # application just after the block
        end = t.stack(s["end_stack"])
        assert end[0]["internal"]
        site = t.call_site(s["end_stack"])
        assert site["function"] == s["name"] and site["line"] > s["line"]


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_short_slices_are_not_stalls(runtime, tmp_path_factory):
    out, t = planned_run(runtime, tmp_path_factory)
    w0, w1 = out["blocks"]["short_window"]
    base = int(out["start"] * 1e9)  # time.monotonic() is CLOCK_MONOTONIC
    lo, hi = base + int(w0 * 1e9), base + int(w1 * 1e9)
    _check_short_slices(out, t, lo, hi)


def _check_short_slices(out, t, lo, hi):
    base = out["start"] * 1e9
    assert out["blocks"]["short_total"] >= 2.0  # 100 × 20 ms really happened
    measured = [(base + a * 1e9, base + b * 1e9) for a, b in out["blocks"]["short_slices"]]
    short = [(a, b) for a, b in measured if b - a < 0.025e9]
    # the test means something only if most slices really were short (not starved)
    assert len(short) >= 50, "machine too loaded: %d of 100 slices were under 25 ms" % len(short)
    inside = [s for s in t.stalls() if s["end"] > lo and s["begin"] < hi]
    for s in inside:
        assert _explained(out, s), s
        # a reported stall never covers a slice the program measured as short
        assert not any(s["begin"] <= a and b <= s["end"] for a, b in short), s
    begins = [b for b in t.stall_begins if lo < b["time"] < hi]
    assert len(begins) <= len(inside)


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_short_slices_only_program_reports_nothing(runtime, tmp_path):
    trace = tmp_path / "t.bin"
    r = run_program([PLANNED, runtime, "--short-only"], trace=trace)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout.strip().splitlines()[-1])
    t = trace_reader.read_trace(str(trace))
    _check_short_slices(out, t, 0, 2**63)
    # … while the 20 ms slices are there in the trace, as slices of that greenthread
    gid = [g for g in t.greenthreads if t.gt_name(g) == "short_slices"]
    assert len(gid) == 1
    slices = _slices_of(t, gid[0])
    assert len([d for d in slices if 19_000_000 < d < 25_000_000]) >= 50


def _slices_of(t, gid):
    per_thread = {}
    for sw in t.switches:
        per_thread.setdefault(sw["thread"], []).append(sw)
    out = []
    for sws in per_thread.values():
        sws.sort(key=lambda s: s["time"])
        for a, b in zip(sws, sws[1:]):
            if a["to"] == gid:
                out.append(b["time"] - a["time"])
    return out


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_victims_are_the_greenthreads_ready_during_the_stall(runtime, tmp_path_factory):
    out, t = planned_run(runtime, tmp_path_factory)
    lines, _ = marker_lines(PLANNED)
    stall = [s for s in t.stalls() if s["line"] == lines["sleep"]][0]
    victims = dict(t.victims(stall))
    names = {}
    for g in t.greenthreads:
        names.setdefault(t.gt_name(g), []).append(g)
    victim_gts = names["victim"]
    assert len(victim_gts) == 10
    # 5 victims had timers due inside the stall; they waited about until its end
    delayed = [g for g in victim_gts if g in victims]
    assert len(delayed) == 5, (victims, victim_gts)
    for g in delayed:
        # ready at ~0.35 s, the stall ends at ~0.45 s: kept waiting ~0.1 s
        assert 0.05e9 < victims[g] <= stall["duration"]
    # the sleeping-late ones are not victims; the blocker itself is not its own victim
    assert stall["gt"] not in victims
    # tickers with timers due during the stall are victims too
    ticker_victims = [g for g in names["ticker"] if g in victims]
    assert len(ticker_victims) > 100


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_output_and_exit_code_unchanged(runtime, tmp_path):
    prog = tmp_path / "prog.py"
    prog.write_text(
        "import os, sys, subprocess\n"
        "import %s as rt\n"
        "def f(i):\n"
        # Timers 30 ms apart: the output order is the program's, not the machine's load's (1 ms
        # apart, a loaded CI machine once woke a 2 ms sleeper before a 1 ms one).
        "    rt.sleep(0.03 * (i %% 3))\n"
        "    print('gt', i, flush=True)\n"
        "gs = [rt.spawn(f, i) for i in range(20)]\n"
        "[g.wait() if hasattr(g, 'wait') else g.join() for g in gs]\n"
        "print('next fd', os.open(os.devnull, os.O_RDONLY))\n"
        "print('PYTHONPATH', os.environ.get('PYTHONPATH'))\n"
        "print('UNCLOG', sorted(k for k in os.environ if k.startswith('UNCLOG')))\n"
        "print('child', subprocess.run([sys.executable, '-c', "
        "'import sys; print(\"unclog_recorder\" in sys.modules, \"sitecustomize\" in sys.modules)'], "
        "stdout=subprocess.PIPE, text=True).stdout.strip())\n"
        "sys.stderr.write('to stderr\\n')\n"
        "sys.exit(7)\n" % runtime
    )
    for user_pp in (None, str(tmp_path / "userlib")):
        base = dict(os.environ)
        base.pop("PYTHONPATH", None)
        if user_pp:
            base["PYTHONPATH"] = user_pp
        plain = run_program([str(prog)], env=base)
        rec = run_program([str(prog)], trace=tmp_path / "t.bin", env=base)
        assert plain.returncode == 7
        assert rec.returncode == plain.returncode
        assert rec.stdout == plain.stdout
        assert rec.stderr == plain.stderr
        assert ("PYTHONPATH %s" % user_pp) in rec.stdout
        assert "UNCLOG []" in rec.stdout
        assert "child False False" in rec.stdout
        t = trace_reader.read_trace(str(tmp_path / "t.bin"))
        assert t.end is not None and t.damage == []
        assert sum(1 for g in t.greenthreads if t.gt_name(g) == "f") == 20


def test_chains_existing_sitecustomize(tmp_path):
    user = tmp_path / "userlib"
    user.mkdir()
    (user / "sitecustomize.py").write_text("import os\nos.environ['USER_SITECUSTOMIZE_RAN'] = '1'\n")
    prog = tmp_path / "p.py"
    prog.write_text(
        "import os, sys\nprint(os.environ.get('USER_SITECUSTOMIZE_RAN'),"
        " sys.modules['sitecustomize'].__file__.startswith(%r))\n" % str(user)
    )
    base = dict(os.environ)
    base["PYTHONPATH"] = str(user)
    rec = run_program([str(prog)], trace=tmp_path / "t.bin", env=base)
    assert rec.returncode == 0, rec.stderr
    assert rec.stdout.strip() == "1 True"
    t = trace_reader.read_trace(str(tmp_path / "t.bin"))
    assert t.end is not None


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_sigkilled_run_leaves_decodable_chunks(runtime, tmp_path):
    prog = tmp_path / "forever.py"
    prog.write_text(
        "import time, sys\n"
        "import %s as rt\n"
        "def tick():\n"
        "    while True:\n"
        "        rt.sleep(0.001)\n"
        "def blocker():\n"
        "    rt.sleep(0.2)\n"
        "    time.sleep(0.12)  # BLOCK:early\n"
        "    print('blocked', flush=True)\n"
        "    while True:\n"
        "        rt.sleep(1)\n"
        "gs = [rt.spawn(tick) for _ in range(50)] + [rt.spawn(blocker)]\n"
        "rt.sleep(100)\n" % runtime
    )
    trace = tmp_path / "t.bin"
    env = conftest.recorder_env(trace)
    p = subprocess.Popen(
        [sys.executable, "-W", "ignore", str(prog)], env=env, stdout=subprocess.PIPE, text=True
    )
    assert p.stdout.readline().strip() == "blocked"
    time.sleep(1.3)  # > 0.5 s after the block, the chunks holding it are out
    p.send_signal(signal.SIGKILL)
    p.wait()
    t = trace_reader.read_trace(str(trace))
    # every chunk written is intact (a kill between two writes leaves no partial chunk;
    # a kill inside a write would show as damage running to the end of the file only)
    size = os.path.getsize(trace)
    assert all(d["offset"] + d["bytes_lost"] == size for d in t.damage), t.damage
    assert t.end is None
    assert t.metadata["runtime"] == runtime
    assert len(t.switches) > 1000
    stalls = t.stalls()
    assert len(stalls) == 1 and stalls[0]["line"] == 8 and stalls[0]["name"] == "blocker"
    assert abs(stalls[0]["duration"] - 120_000_000) < 6_000_000
    # the trace reaches the last half second before the kill
    last = max(sw["time"] for sw in t.switches)
    first = min(sw["time"] for sw in t.switches)
    assert last - first > 1.0e9


def test_eventlet_detector_finds_nothing_unclog_misses(tmp_path):
    """eventlet.debug.hub_blocking_detection on the same run: every block it reports
    (its alarm kills the blocked greenthread) is a stall unclog reports, at the line."""
    trace = tmp_path / "t.bin"
    r = run_program([PLANNED, "eventlet", "--detector"], trace=trace)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout.strip().splitlines()[-1])
    lines, _ = marker_lines(PLANNED)
    alarms = out["alarms"]
    assert len(alarms) >= 2, (alarms, r.stderr[-3000:])
    t = trace_reader.read_trace(str(trace))
    stalls = t.stalls()
    for name, text in alarms:
        # eventlet's report: "Blocking detector ALARMED at" + a frame summary
        # (Traceback(filename='…', lineno=N, …) here)
        reported = [int(n) for f, n in re.findall(r"filename='([^']+)', lineno=(\d+)", text) if f == PLANNED]
        assert reported, text
        ours = [s for s in stalls if s["name"] == "block_" + name]
        assert len(ours) == 1, (name, stalls)
        # unclog has the blocking call's line; eventlet has it or (C call) a later line
        assert ours[0]["line"] == lines[name]
        assert reported[-1] >= lines[name]
        # its 0.1 s alarm cuts the block short (eventlet 0.33 arms it just before the
        # slice starts, so a hair under 0.1 s is seen there)
        assert ours[0]["duration"] >= 95_000_000
    # the detector's alarms arrive only after its 0.1 s resolution
    assert set(n for n, _ in alarms) <= {"sleep", "cpu", "sqlite"}


@pytest.mark.parametrize("runtime", RUNTIMES + ["eventlet-asyncio"])
def test_api_start_stop_after_greenthreads_exist(runtime, tmp_path):
    if not _hub_available(runtime):
        pytest.skip("this eventlet has no %s hub" % EVENTLET_HUBS[runtime])
    prog = tmp_path / "api.py"
    rec_dir = conftest.RECORDER
    prog.write_text(
        "import sys, time\n"
        "sys.path.insert(0, %r)\n"
        "import %s as rt\n"
        "def tick():\n"
        "    for _ in range(300):\n"
        "        rt.sleep(0.001)\n"
        "gs = [rt.spawn(tick) for _ in range(20)]\n"
        "rt.sleep(0.01)\n"
        "import unclog_recorder\n"
        "unclog_recorder.start(%r, threshold=0.05)\n"
        "def blocker():\n"
        "    time.sleep(0.1)  # BLOCK\n"
        "gs.append(rt.spawn(blocker))\n"
        "[g.wait() if hasattr(g, 'wait') else g.join() for g in gs]\n"
        "unclog_recorder.stop()\n"
        "print('ok', unclog_recorder.is_recording())\n"
        % (rec_dir, runtime.split("-")[0], str(tmp_path / "t.bin"))
    )
    env = dict(os.environ, EVENTLET_HUB=EVENTLET_HUBS[runtime]) if runtime in EVENTLET_HUBS else None
    r = run_program([str(prog)], env=env, tracer=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "ok False"
    t = trace_reader.read_trace(str(tmp_path / "t.bin"))
    assert t.end is not None and t.damage == []
    assert t.metadata["recorder_tracer"] == conftest.TRACER
    st = t.stalls()
    assert len(st) == 1 and st[0]["line"] == 12 and st[0]["name"] == "blocker"
    assert abs(st[0]["duration"] - 100_000_000) < 5_000_000
    assert sum(1 for g in t.greenthreads if t.gt_name(g) == "tick") == 20
    # the hub that was already running has its I/O waits recorded too
    assert len(t.io_waits) > 10


def test_pure_python_fallback_finds_the_same_blocks(tmp_path):
    """UNCLOG_PURE_PYTHON=1 (or no C compiler): the pure-Python tracer, same results."""
    trace = tmp_path / "t.bin"
    base = dict(os.environ)
    base["UNCLOG_PURE_PYTHON"] = "1"
    env = conftest.recorder_env(trace, base=base)
    r = subprocess.run(
        [sys.executable, "-W", "ignore", PLANNED, "eventlet"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout.strip().splitlines()[-1])
    t = trace_reader.read_trace(str(trace))
    assert t.metadata["recorder_tracer"] == "python"
    assert t.damage == [] and t.end is not None and t.dropped == []
    lines, _ = marker_lines(PLANNED)
    stalls = t.stalls()
    for name in ("sleep", "cpu", "sqlite"):
        found = [s for s in stalls if s["line"] == lines[name]]
        assert len(found) == 1, (name, stalls)
        assert abs(found[0]["duration"] / 1e9 - out["blocks"][name]) <= _tol(out["blocks"][name])
    others = [s for s in stalls if s["line"] not in (lines["sleep"], lines["cpu"], lines["sqlite"])]
    assert [s for s in others if not _explained(out, s)] == []


@pytest.mark.skipif(
    conftest.PURE_PYTHON, reason="this run tests the pure-Python tracer (UNCLOG_PURE_PYTHON=1)"
)
def test_native_tracer_is_used_when_a_compiler_exists(tmp_path_factory):
    out, t = planned_run("eventlet", tmp_path_factory)
    assert t.metadata["recorder_tracer"] == "native"


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_block_at_the_end_of_the_program_is_a_stall(runtime, tmp_path):
    """A program whose last slice blocks and then exits without switching again: the
    slice ends with the recording, and is reported at its line."""
    prog = tmp_path / "tail.py"
    prog.write_text(
        "import time, %s as rt\n"
        "workers = [rt.spawn(rt.sleep, 0.01) for _ in range(5)]\n"
        "rt.sleep(0.05)\n"
        "time.sleep(0.15)  # BLOCK:tail\n" % runtime
    )
    trace = tmp_path / "t.bin"
    r = run_program([str(prog)], trace=trace)
    assert r.returncode == 0, r.stderr
    t = trace_reader.read_trace(str(trace))
    stalls = [s for s in t.stalls() if s["file"] == str(prog)]
    assert [(s["line"], s["name"]) for s in stalls] == [(4, "<main>")], t.stalls()
    # the slice runs from the switch back into <main> to the end of recording (atexit)
    assert 0.15e9 - 5e6 <= stalls[0]["duration"] <= 0.15e9 + 0.1e9, stalls[0]
    assert t.end is not None
