"""Helpers shared by the visualization tests (kept out of conftest.py so that importing them
cannot pick up another directory's conftest)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def unclog_bin() -> str:
    """UNCLOG_BIN (what `make test` sets), else the package's release or debug build."""
    candidates = [
        os.environ.get("UNCLOG_BIN", ""),
        str(ROOT / ".build/release/unclog"),
        str(ROOT / ".build/debug/unclog"),
    ]
    for c in candidates:
        if c and os.access(c, os.X_OK):
            return c
    pytest.fail("the unclog executable was not found: run `make build` (or set UNCLOG_BIN)")


def run(cmd: list[str], timeout: int = 120, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)
