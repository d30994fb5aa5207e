"""Helpers the notebooks share: open a unclog database read-only and read it into pandas.

The database is the one `unclog import` writes (schema/schema.sql documents every table and
view). Times are nanoseconds since the trace start; these helpers add millisecond columns
for plotting. A thread's slices and I/O waits in a time window are read as an id range found
through `slice_checkpoints` (the tables have no time index), so a window of a big database
reads only that window.
"""

from __future__ import annotations

import os
import sqlite3

import pandas as pd

NS_PER_MS = 1_000_000


def database_path(default: str = "../.demo/crawler.db") -> str:
    """The database to open: $UNCLOG_DB, else `default` (relative to the notebook)."""
    return os.environ.get("UNCLOG_DB") or default


def connect(path: str) -> sqlite3.Connection:
    """Opens a unclog database read-only; a clear error when it is missing or not one."""
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"{path}: no such database. Record and import one first, e.g. `make demo`, "
            "or set UNCLOG_DB to a database written by `unclog import`."
        )
    con = sqlite3.connect(f"file:{os.path.abspath(path)}?mode=ro", uri=True)
    (has_traces,) = con.execute(
        "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'traces'"
    ).fetchone()
    if not has_traces:
        raise ValueError(f"{path}: not a unclog database (no traces table)")
    return con


def trace_id(con: sqlite3.Connection, trace: int | None = None) -> int:
    """`trace` if given (checked), else the most recent trace of the database."""
    if trace is not None:
        if con.execute("SELECT 1 FROM traces WHERE id = ?", (trace,)).fetchone() is None:
            raise ValueError(f"no trace {trace} in the database")
        return trace
    row = con.execute("SELECT MAX(id) FROM traces").fetchone()
    if row is None or row[0] is None:
        raise ValueError("the database holds no trace yet")
    return int(row[0])


def trace_info(con: sqlite3.Connection, trace: int) -> pd.Series:
    return pd.read_sql_query("SELECT * FROM traces WHERE id = ?", con, params=(trace,)).iloc[0]


def trace_range(trace: int) -> tuple[int, int]:
    """The ids [lo, hi) of the rows the importer created for `trace` (slices, I/O waits, stalls,
    samples): `T << 40 | n`. The one place the notebooks spell the key scheme; it is described in
    schema.sql ("Conventions") and built in Swift by StoreKey."""
    return trace << 40, (trace + 1) << 40


def stalls(con: sqlite3.Connection, trace: int) -> pd.DataFrame:
    """One row per stall with its call site (the stall_sites view), greenthread and thread."""
    lo, hi = trace_range(trace)
    df = pd.read_sql_query(
        """
        SELECT s.stall_id, s.thread_key, t.tid, t.name AS thread_name, s.gt_key, g.gt AS gt_id, g.name AS greenthread,
               s.start_ns, s.end_ns, s.duration_ns, s.samples, s.complete, s.victims, s.victim_wait_ns,
               s.function, s.file, s.line
        FROM stall_sites s
        LEFT JOIN threads t ON t.key = s.thread_key
        LEFT JOIN greenthreads g ON g.key = s.gt_key
        WHERE s.stall_id >= ? AND s.stall_id < ?
        ORDER BY s.start_ns
        """,
        con,
        params=(lo, hi),
    )
    df["start_ms"] = df.start_ns / NS_PER_MS
    df["duration_ms"] = df.duration_ns / NS_PER_MS
    df["victim_wait_ms"] = df.victim_wait_ns / NS_PER_MS
    df["site"] = df.apply(lambda r: site_label(r.function, r.file, r.line), axis=1)
    return df


def site_label(function, file, line=None) -> str:
    if function is None and file is None:
        return "<unknown>"
    name = os.path.basename(file) if isinstance(file, str) else "?"
    return (
        f"{function or '?'} ({name}:{int(line)})"
        if line is not None and line == line
        else f"{function or '?'} ({name})"
    )


def attribution(con: sqlite3.Connection, trace: int, scope: str = "self") -> pd.DataFrame:
    """Stall time and victim wait per call site (the stall_attribution view), biggest first."""
    lo, hi = trace_range(trace)
    group = "function, file, line" if scope == "self" else "function, file"
    df = pd.read_sql_query(
        f"""
        SELECT {group}, COUNT(*) AS stalls, SUM(duration_ns) AS stall_ns, MAX(duration_ns) AS max_ns,
               SUM(victim_wait_ns) AS victim_wait_ns
        FROM stall_attribution WHERE scope = ? AND stall_id >= ? AND stall_id < ?
        GROUP BY {group} ORDER BY stall_ns DESC
        """,
        con,
        params=(scope, lo, hi),
    )
    if "line" not in df:
        df["line"] = None
    df["stall_ms"] = df.stall_ns / NS_PER_MS
    df["victim_wait_ms"] = df.victim_wait_ns / NS_PER_MS
    df["site"] = df.apply(lambda r: site_label(r.function, r.file, r.line), axis=1)
    return df


def threads(con: sqlite3.Connection, trace: int) -> pd.DataFrame:
    return pd.read_sql_query(
        "SELECT key, tid, name, slices, busy_ns, io_wait_ns FROM threads WHERE trace_id = ? ORDER BY tid",
        con,
        params=(trace,),
    )


def _id_range(con, kind: int, key: int, trace: int, start_ns: int, end_ns: int) -> tuple[int, int]:
    """Rows of a thread (kind 1: slices, 2: I/O waits) that may overlap the window."""
    lo = con.execute(
        "SELECT row_id FROM slice_checkpoints WHERE kind = ? AND key = ? AND start_ns < ? ORDER BY row_id DESC LIMIT 1",
        (kind, key, start_ns),
    ).fetchone()
    hi = con.execute(
        "SELECT row_id FROM slice_checkpoints WHERE kind = ? AND key = ? AND start_ns > ? ORDER BY row_id LIMIT 1",
        (kind, key, end_ns),
    ).fetchone()
    first, end = trace_range(trace)
    return (lo[0] if lo else first), (hi[0] if hi else end)


def thread_slices(con, trace: int, thread_key: int, start_ns: int, end_ns: int) -> pd.DataFrame:
    """Greenthread runs on one OS thread that overlap [start_ns, end_ns], with names."""
    lo, hi = _id_range(con, 1, thread_key, trace, start_ns, end_ns)
    df = pd.read_sql_query(
        """
        SELECT s.id, s.gt_key, g.gt AS gt_id, g.name AS greenthread, s.ready_ns, s.start_ns, s.end_ns, s.reason
        FROM slices s LEFT JOIN greenthreads g ON g.key = s.gt_key
        WHERE s.id >= ? AND s.id < ? AND s.thread_key = ? AND s.end_ns >= ? AND s.start_ns <= ?
        ORDER BY s.id
        """,
        con,
        params=(lo, hi, thread_key, start_ns, end_ns),
    )
    return df


def io_waits(con, trace: int, thread_key: int, start_ns: int, end_ns: int) -> pd.DataFrame:
    lo, hi = _id_range(con, 2, thread_key, trace, start_ns, end_ns)
    return pd.read_sql_query(
        """
        SELECT start_ns, end_ns, timeout_ns, nready FROM io_waits
        WHERE id >= ? AND id < ? AND thread_key = ? AND end_ns >= ? AND start_ns <= ? ORDER BY id
        """,
        con,
        params=(lo, hi, thread_key, start_ns, end_ns),
    )


def victims(con, stall_ids) -> pd.DataFrame:
    """Who each stall kept waiting (the victims view): ready since, resumed at, wait added."""
    ids = [int(i) for i in stall_ids]
    if not ids:
        return pd.DataFrame(
            columns=["stall_id", "gt_key", "gt_id", "name", "ready_ns", "resumed_ns", "wait_ns"]
        )
    marks = ",".join("?" * len(ids))
    return pd.read_sql_query(
        f"SELECT stall_id, gt_key, gt AS gt_id, name, ready_ns, resumed_ns, wait_ns FROM victims WHERE stall_id IN ({marks})"
        " ORDER BY wait_ns DESC",
        con,
        params=ids,
    )


def stack(con, stall_id: int) -> list[str]:
    """The stall's stack, innermost first, as `function (file:line)` (runtime frames marked)."""
    rows = con.execute(
        """
        SELECT f.function, f.file, f.line, f.internal FROM stalls s
        JOIN stack_frames sf ON sf.stack_key = s.stack_key JOIN frames f ON f.key = sf.frame_key
        WHERE s.id = ? ORDER BY sf.depth
        """,
        (int(stall_id),),
    ).fetchall()
    return [site_label(fn, fl, ln) + (" [runtime]" if internal else "") for fn, fl, ln, internal in rows]
