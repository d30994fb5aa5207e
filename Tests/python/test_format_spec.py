"""The metadata keys a real Python recording writes are all listed in the spec's table
(schema/trace-format.md §3), which is the one truth for them. The event codes are checked
against the spec by the Swift test Tests/UnclogTraceTests/SpecTablesTests.swift.
"""

import os
import re
import sqlite3
import subprocess
import sys

import pytest

import conftest
from conftest import ROOT
from test_unclog_cli import UNCLOG, _env

pytestmark = pytest.mark.skipif(UNCLOG is None, reason="unclog is not built (make build)")

PROGRAM = """
import {runtime}
def f(i):
    {runtime}.sleep(0.001)
[g.wait() if hasattr(g, "wait") else g.join() for g in [{runtime}.spawn(f, i) for i in range(5)]]
"""


def spec_metadata_keys():
    with open(os.path.join(ROOT, "schema", "trace-format.md")) as f:
        return set(re.findall(r"^\| `([a-z_]+)` \| (?:uint|string|list) \|", f.read(), re.M))


@pytest.mark.parametrize("runtime", ["eventlet", "gevent"])
@pytest.mark.parametrize("tracer", ["native", "python"])
def test_written_metadata_keys_are_in_the_spec(runtime, tracer, tmp_path):
    if tracer == "native" and conftest.PURE_PYTHON:
        pytest.skip("this run tests the pure-Python tracer (UNCLOG_PURE_PYTHON=1)")
    prog = tmp_path / "prog.py"
    prog.write_text(PROGRAM.format(runtime=runtime))
    env = _env()
    if tracer == "python":
        env["UNCLOG_PURE_PYTHON"] = "1"
    trace = tmp_path / "t.bin"
    r = subprocess.run(
        [UNCLOG, "record", "-o", str(trace), "--", sys.executable, "-W", "ignore", str(prog)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        timeout=120,
        env=env,
    )
    assert r.returncode == 0, r.stderr
    db = tmp_path / "t.db"
    imp = subprocess.run(
        [UNCLOG, "import", str(trace), "-o", str(db)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        timeout=120,
    )
    assert imp.returncode == 0, imp.stderr
    with sqlite3.connect(db) as c:
        written = {k for (k,) in c.execute("SELECT key FROM trace_metadata")}
        tracer_used = c.execute("SELECT value FROM trace_metadata WHERE key = 'recorder_tracer'").fetchone()
    spec = spec_metadata_keys()
    assert len(spec) >= 15, spec
    assert written - spec == set(), "written but not in schema/trace-format.md §3"
    assert {"runtime", "threshold_ns", "recorder", "recorder_tracer"} <= written
    assert tracer_used == (tracer,)
