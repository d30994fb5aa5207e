"""The recorder's own file set, checked where a slip would be silent. (Its format constants,
in _wire.py and _fast.c, are checked against the spec with the other languages' by
Tests/UnclogTraceTests/SpecTablesTests.swift.)"""

import os
import sys

from conftest import RECORDER

sys.path.insert(0, RECORDER)
import unclog_recorder  # noqa: E402,F401
from unclog_recorder import _writer  # noqa: E402

PKG = os.path.join(RECORDER, "unclog_recorder")


def test_flush_safety_covers_every_recorder_module_but_the_hooks():
    """_writer.safe_to_steal must see every frame of the modules that append events (a
    code object's co_filename is its module's __file__); _hooks.py's wrappers are where a
    hub waits in poll(), so they must not block the watchdog's flush."""
    mods = [
        m
        for name, m in sys.modules.items()
        if name == "unclog_recorder" or name.startswith("unclog_recorder.")
    ]
    files = {m.__file__ for m in mods if getattr(m, "__file__", None)}
    hooks = sys.modules["unclog_recorder._hooks"].__file__
    assert hooks not in _writer.OWN_FILES
    assert files - {hooks} <= _writer.OWN_FILES
    on_disk = {f for f in os.listdir(PKG) if f.endswith(".py")}
    assert {os.path.basename(f) for f in _writer.OWN_FILES} == on_disk - {"_hooks.py"}
