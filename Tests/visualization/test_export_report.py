"""End to end on a real recording of the bundled example: `unclog export` writes Chrome Trace
Event JSON that Python's json module reads and that passes a JSON Schema of the format plus
the rules Perfetto's importer applies (timestamps truncated to ns, complete events nesting on
each track, flow v2 fields); its contents agree with the database. `unclog report` renders
in headless Chromium without script errors; `unclog diff` of a recording with itself passes
the gate.

An independent reader: Perfetto's Python package (`perfetto` on PyPI) needs its
trace_processor binary, which it downloads from Perfetto's servers at first use — not
reachable here — so the checks below implement the format's rules instead.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from collections import defaultdict

import jsonschema

from visualization_support import run

# The Trace Event Format (JSON Object Format), as far as unclog writes it.
_uint32 = {"type": "integer", "minimum": 0, "maximum": 2**32 - 1}
_time = {"type": "number", "minimum": 0}
TRACE_EVENT_SCHEMA = {
    "type": "object",
    "required": ["traceEvents"],
    "properties": {
        "traceEvents": {"type": "array", "items": {"$ref": "#/$defs/event"}},
        "displayTimeUnit": {"enum": ["ms", "ns"]},
        "otherData": {"type": "object"},
    },
    "$defs": {
        "event": {
            "type": "object",
            "required": ["ph", "pid", "tid"],
            "properties": {
                "ph": {"enum": ["X", "M"]},
                "pid": _uint32,
                "tid": _uint32,
                "cat": {"type": "string"},
                "args": {"type": "object"},
            },
            # Perfetto's tokenizer gives up on the whole file at an array-valued top-level key.
            "additionalProperties": {"not": {"type": "array"}},
            "allOf": [
                {
                    "if": {"properties": {"ph": {"const": "X"}}},
                    "then": {
                        "required": ["ts", "dur", "name"],
                        "properties": {
                            "ts": _time,
                            "dur": _time,
                            "name": {"type": "string"},
                            "bind_id": {"type": ["integer", "string"]},
                            "flow_in": {"type": "boolean"},
                            "flow_out": {"type": "boolean"},
                        },
                        "dependentRequired": {"flow_in": ["bind_id"], "flow_out": ["bind_id"]},
                    },
                },
                {
                    "if": {"properties": {"ph": {"const": "M"}}},
                    "then": {
                        "required": ["name", "args"],
                        "properties": {
                            "name": {"enum": ["process_name", "thread_name", "thread_sort_index"]}
                        },
                        "oneOf": [
                            {
                                "properties": {
                                    "name": {"enum": ["process_name", "thread_name"]},
                                    "args": {
                                        "required": ["name"],
                                        "properties": {"name": {"type": "string"}},
                                    },
                                }
                            },
                            {
                                "properties": {
                                    "name": {"const": "thread_sort_index"},
                                    "args": {
                                        "required": ["sort_index"],
                                        "properties": {"sort_index": {"type": "integer"}},
                                    },
                                }
                            },
                        ],
                    },
                },
            ],
        }
    },
}


def perfetto_ns(us: float) -> int:
    """How Perfetto's JSON importer turns a µs timestamp into ns: double × 1000, truncated."""
    return int(us * 1000.0)


def nesting_problems(events) -> list[str]:
    tracks = defaultdict(list)
    for i, e in enumerate(events):
        if e["ph"] == "X":
            s = perfetto_ns(e["ts"])
            tracks[(e["pid"], e["tid"])].append((s, s + perfetto_ns(e["dur"]), i))
    problems = []
    for track, spans in tracks.items():
        stack = []
        for s, e, i in sorted(spans, key=lambda x: (x[0], -x[1], x[2])):
            while stack and stack[-1][1] <= s:
                stack.pop()
            if stack and e > stack[-1][1]:
                problems.append(f"{track}: event {i} overlaps event {stack[-1][2]}")
            stack.append((s, e, i))
    return problems


def test_export_is_valid_and_complete(unclog, recorded_db, tmp_path):
    out = tmp_path / "trace.json"
    r = run([unclog, "export", str(recorded_db), "-o", str(out)])
    assert r.returncode == 0, r.stderr
    doc = json.loads(out.read_text())
    jsonschema.validate(doc, TRACE_EVENT_SCHEMA)
    events = doc["traceEvents"]
    assert nesting_problems(events) == []
    # The schema can fail: a broken event is rejected.
    try:
        jsonschema.validate(
            {"traceEvents": [{"ph": "X", "pid": 1, "tid": 1, "ts": 1.0, "name": "no dur"}]},
            TRACE_EVENT_SCHEMA,
        )
        raise AssertionError("the schema accepted an X event without dur")
    except jsonschema.ValidationError:
        pass

    with sqlite3.connect(recorded_db) as con:
        slices = con.execute("SELECT COUNT(*) FROM slices").fetchone()[0]
        ios = con.execute("SELECT COUNT(*) FROM io_waits").fetchone()[0]
        stall_rows = con.execute("SELECT start_ns, end_ns FROM stalls ORDER BY start_ns").fetchall()
        sites = {f or "<unknown>" for (f,) in con.execute("SELECT function FROM stall_sites")}
        first_by_tid = {
            tid: (s, e)
            for tid, s, e in con.execute(
                "SELECT t.tid, s.start_ns, s.end_ns FROM slices s JOIN threads t ON t.key = s.thread_key "
                "WHERE s.id IN (SELECT MIN(id) FROM slices GROUP BY thread_key)"
            )
        }
    stall_tracks = {
        e["tid"] for e in events if e["ph"] == "M" and e["args"].get("name", "").startswith("stalls on ")
    }
    stalls = [e for e in events if e["ph"] == "X" and e["tid"] in stall_tracks]
    io = [e for e in events if e.get("cat") == "io"]
    runs = [e for e in events if e["ph"] == "X" and e["tid"] not in stall_tracks and e.get("cat") != "io"]
    assert (len(runs), len(io), len(stalls)) == (slices, ios, len(stall_rows))
    # Times are exact to the nanosecond as Perfetto reads them.
    assert [
        (perfetto_ns(e["ts"]), perfetto_ns(e["ts"]) + perfetto_ns(e["dur"]))
        for e in sorted(stalls, key=lambda e: e["ts"])
    ] == [tuple(r) for r in stall_rows]
    # Each thread's runs come in time order, starting with its first slice.
    for tid, first in first_by_tid.items():
        mine = [e for e in runs if e["tid"] == tid]
        assert (perfetto_ns(mine[0]["ts"]), perfetto_ns(mine[0]["ts"]) + perfetto_ns(mine[0]["dur"])) == first
        assert all(a["ts"] <= b["ts"] for a, b in zip(mine, mine[1:]))
    # Stalls carry their call site, whole stack and victims.
    for s in stalls:
        a = s["args"]
        assert a["call_site"] == "<unknown>" or s["name"] == "stall: " + a["call_site"].split(" (")[0], s
        # A stall with no stack at all (none sampled, none at its end) has no call site either.
        assert isinstance(a["stack"], list) and (a["stack"] or a["call_site"] == "<unknown>"), s
        assert isinstance(a["victims"], int) and a["greenthread"]
    assert {s["name"].removeprefix("stall: ") for s in stalls} == sites
    assert any(s["args"]["call_site"].startswith("rate_limit (") for s in stalls)
    # Flows: every greenthread's chain starts with a flow_out and ends with a flow_in.
    chains = defaultdict(list)
    for e in sorted(runs, key=lambda e: e["ts"]):
        if "bind_id" in e:
            chains[e["bind_id"]].append((e.get("flow_in", False), e.get("flow_out", False)))
    assert chains
    for chain in chains.values():
        assert chain[0] == (False, True) and chain[-1] == (True, False)
        assert all(step == (True, True) for step in chain[1:-1])


def test_report_renders_in_chromium(unclog, recorded_db, tmp_path):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    assert chromium, "headless Chromium is missing: run `make deps-visualization`"
    page = tmp_path / "report.html"
    r = run([unclog, "report", str(recorded_db), "-o", str(page)])
    assert r.returncode == 0, r.stderr
    html = page.read_text()
    assert "rate_limit" in html and "Worst stalls" in html and "https://" not in html
    common = [
        chromium,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--enable-logging=stderr",
        "--v=0",
        "--virtual-time-budget=3000",
    ]
    dom = run(common + ["--dump-dom", page.as_uri()], timeout=90)
    shot = run(
        common + ["--window-size=1200,1800", f"--screenshot={tmp_path / 'report.png'}", page.as_uri()],
        timeout=90,
    )
    log = dom.stderr + shot.stderr
    assert "Uncaught" not in log, log
    assert 'data-unclog-ready="2"' in dom.stdout
    png = (tmp_path / "report.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000


def test_diff_with_itself_passes_the_gate(unclog, recorded_db):
    r = run(
        [unclog, "diff", str(recorded_db), str(recorded_db), "--fail-on-regression", "0%", "--format", "json"]
    )
    assert r.returncode == 0, r.stdout + r.stderr
    rows = json.loads(r.stdout)
    assert rows and all(row["status"] == "same" for row in rows)
