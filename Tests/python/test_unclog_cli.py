"""The Python recorder through the real CLI: `unclog record` (the launcher injects
sitecustomize), `unclog import`, `unclog stalls --format json`.

Uses $UNCLOG_BIN (set by `make test-python`), else .build/release/unclog or
.build/debug/unclog; skipped when none is built.
"""

import json
import os
import subprocess
import sys

import pytest

import conftest
from conftest import PROGRAMS, ROOT, marker_lines

PLANNED = os.path.join(PROGRAMS, "planned.py")


def _unclog():
    cands = [
        os.environ.get("UNCLOG_BIN"),
        os.path.join(ROOT, ".build", "release", "unclog"),
        os.path.join(ROOT, ".build", "debug", "unclog"),
    ]
    for c in cands:
        if c and os.access(c, os.X_OK):
            return c
    return None


UNCLOG = _unclog()
pytestmark = pytest.mark.skipif(UNCLOG is None, reason="unclog is not built (make build)")


def _env(record=False):
    """The environment of a plain run, or (record) of `unclog record` with this run's tracer."""
    return conftest.plain_env(tracer=record)


def _record(tmp_path, args, name="t"):
    trace = tmp_path / (name + ".bin")
    r = subprocess.run(
        [
            UNCLOG,
            "record",
            "--threshold",
            "50ms",
            "--sample-interval",
            "10ms",
            "-o",
            str(trace),
            "--",
            sys.executable,
            "-W",
            "ignore",
        ]
        + args,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        timeout=120,
        env=_env(record=True),
    )
    return r, trace


def _stalls(tmp_path, trace):
    db = tmp_path / "t.db"
    imp = subprocess.run(
        [UNCLOG, "import", str(trace), "-o", str(db), "--replace"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        timeout=120,
    )
    assert imp.returncode == 0, imp.stderr
    assert "0 bytes lost" in imp.stdout + imp.stderr, imp.stdout + imp.stderr
    st = subprocess.run(
        [UNCLOG, "stalls", str(db), "--format", "json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        timeout=60,
    )
    assert st.returncode == 0, st.stderr
    return json.loads(st.stdout), db


def sql_json(db, statement):
    """The rows of `unclog sql DB STATEMENT --format json`."""
    q = subprocess.run(
        [UNCLOG, "sql", str(db), statement, "--format", "json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert q.returncode == 0, q.stderr
    return json.loads(q.stdout)


@pytest.mark.parametrize("runtime", ["eventlet", "gevent"])
def test_record_import_stalls(runtime, tmp_path):
    r, trace = _record(tmp_path, [PLANNED, runtime])
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout.strip().splitlines()[-1])
    stalls, _ = _stalls(tmp_path, trace)
    lines, _ = marker_lines(PLANNED)
    planned_lines = {lines[n]: n for n in ("sleep", "cpu", "sqlite")}
    for line, name in planned_lines.items():
        found = [s for s in stalls if s["file"] == PLANNED and s["line"] == line]
        assert len(found) == 1, (name, stalls)
        s = found[0]
        planned = out["blocks"][name]
        assert s["greenthread_name"] == "block_" + name
        assert abs(s["duration_ns"] / 1e9 - planned) <= max(0.005, 0.05 * planned), (s, planned)
        assert s["complete"] is True
        assert s["victims"] >= 100  # 200 tickers wait behind every block
    # anything else must be a slice the program itself measured as long (a loaded box)
    measured = [(n, a, b) for n, a, b in out["long_slices"]]
    measured += [("short_slices", a, b) for a, b in out["blocks"]["short_slices"] if b - a > 0.025]
    for s in stalls:
        if s["line"] in planned_lines:
            continue
        assert any(n == s["greenthread_name"] for n, a, b in measured), s


def test_output_and_exit_code_through_the_launcher(tmp_path):
    prog = tmp_path / "prog.py"
    prog.write_text(
        "import os, sys, eventlet\n"
        "def f(i):\n"
        "    eventlet.sleep(0.001 * (i % 3))\n"
        "    print('gt', i, flush=True)\n"
        "[g.wait() for g in [eventlet.spawn(f, i) for i in range(10)]]\n"
        "print(os.environ.get('PYTHONPATH'), sorted(k for k in os.environ if k.startswith('UNCLOG')))\n"
        "sys.stderr.write('err\\n')\n"
        "sys.exit(5)\n"
    )
    plain = subprocess.run(
        [sys.executable, "-W", "ignore", str(prog)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
    )
    rec, trace = _record(tmp_path, [str(prog)])
    assert plain.returncode == 5 and rec.returncode == 5
    assert rec.stdout == plain.stdout
    assert rec.stderr.endswith(plain.stderr)  # unclog may add its own note before
    stalls, db = _stalls(tmp_path, trace)
    assert stalls == []
    assert sql_json(db, "SELECT count(*) AS n FROM greenthreads WHERE name = 'f'")[0]["n"] == 10
    rows = sql_json(
        db,
        "SELECT key FROM trace_metadata WHERE key IN "
        "('runtime', 'runtime_version', 'language_version', 'recorder') ORDER BY key",
    )
    assert [r["key"] for r in rows] == [
        "language_version",
        "recorder",
        "runtime",
        "runtime_version",
    ]


def test_import_time_warnings_and_tracebacks_point_at_the_program(tmp_path):
    # eventlet warns at import (stacklevel=2) and a failing import prints a traceback: both
    # must name the program's own lines, not the recorder's import hook.
    prog = tmp_path / "warns.py"
    prog.write_text("import sys\nimport eventlet\nimport no_such_module_for_unclog_test\n")
    plain = subprocess.run(
        [sys.executable, str(prog)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env()
    )
    trace = tmp_path / "warns.bin"
    rec = subprocess.run(
        [UNCLOG, "record", "-o", str(trace), "--", sys.executable, str(prog)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(record=True),
    )
    assert plain.returncode == rec.returncode == 1
    assert "warns.py" in plain.stderr and "ModuleNotFoundError" in plain.stderr
    assert rec.stderr.endswith(plain.stderr)
    assert "unclog_recorder" not in rec.stderr
