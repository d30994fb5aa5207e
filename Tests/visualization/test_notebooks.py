"""The notebooks in notebooks/ run headless (nbclient, this virtualenv's kernel) against a
database recorded from the bundled example, without errors, and draw their figures; and
they are committed without outputs."""

from __future__ import annotations

import struct
from base64 import b64decode

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from visualization_support import ROOT

NOTEBOOKS = ROOT / "notebooks"
# Figures each notebook draws: one Gantt per worst stall (3), distribution + over time, two attribution charts.
EXPECTED_FIGURES = {"stall_timeline.ipynb": 3, "stalls_overview.ipynb": 2, "call_sites.ipynb": 2}


def execute(name: str, db: str, monkeypatch) -> nbformat.NotebookNode:
    monkeypatch.setenv("UNCLOG_DB", str(db))  # the kernel inherits it
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    NotebookClient(
        nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOKS)}}
    ).execute()
    return nb


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_every_notebook_is_covered():
    assert sorted(p.name for p in NOTEBOOKS.glob("*.ipynb")) == sorted(EXPECTED_FIGURES)


@pytest.mark.parametrize("name", sorted(EXPECTED_FIGURES))
def test_committed_without_outputs(name):
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.outputs == [] and c.execution_count is None for c in code), (
        "clear the outputs before committing"
    )
    # The database path is a papermill-style parameter, overridable by UNCLOG_DB.
    params = [c for c in code if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1 and "UNCLOG_DB" in params[0].source


@pytest.mark.parametrize("name", sorted(EXPECTED_FIGURES))
def test_notebook_runs_and_draws(name, recorded_db, monkeypatch):
    nb = execute(name, recorded_db, monkeypatch)
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    errors = [o for o in outputs if o.output_type == "error"]
    stderr = [o.text for o in outputs if o.output_type == "stream" and o.name == "stderr"]
    assert errors == [] and stderr == [], f"{errors} {stderr}"
    images = [b64decode(o.data["image/png"]) for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) == EXPECTED_FIGURES[name]
    for img in images:
        w, h = png_size(img)
        assert w >= 600 and h >= 200 and len(img) > 10_000, (w, h, len(img))


def test_a_failing_notebook_is_caught(tmp_path, monkeypatch):
    """The harness really fails on errors: a missing database stops the notebook."""
    with pytest.raises(CellExecutionError, match="no such database"):
        execute("stalls_overview.ipynb", tmp_path / "missing.db", monkeypatch)
