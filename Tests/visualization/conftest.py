"""Fixtures for the visualization tests: the unclog executable and a database recorded from
the bundled example (examples/eventlet_crawler.py, run under `unclog record`), shared by the
whole session so the example is recorded once."""

from __future__ import annotations

import sqlite3
import sys
from pathlib import Path

import pytest

from visualization_support import ROOT, run, unclog_bin


@pytest.fixture(scope="session")
def unclog() -> str:
    return unclog_bin()


@pytest.fixture(scope="session")
def recorded_db(unclog, tmp_path_factory) -> Path:
    """The bundled Eventlet crawler recorded with a 20 ms threshold and imported."""
    example = ROOT / "examples" / "eventlet_crawler.py"
    assert example.is_file(), f"{example} is missing"
    d = tmp_path_factory.mktemp("recording")
    trace, db = d / "crawler.trace", d / "crawler.db"
    rec = run(
        [unclog, "record", "--threshold", "20ms", "-o", str(trace), "--", sys.executable, str(example)],
        cwd=ROOT,
        timeout=180,
    )
    assert rec.returncode == 0, f"recording failed:\n{rec.stdout}\n{rec.stderr}"
    imp = run([unclog, "import", str(trace), "-o", str(db), "--quiet"])
    assert imp.returncode == 0, f"import failed:\n{imp.stdout}\n{imp.stderr}"
    with sqlite3.connect(db) as con:
        (stalls,) = con.execute("SELECT COUNT(*) FROM stalls").fetchone()
    # The crawler blocks on purpose (sleep, CPU loop, sqlite, subprocess): several stalls.
    assert stalls >= 3, f"expected the crawler's blocking calls as stalls, got {stalls}"
    return db
