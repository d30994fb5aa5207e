"""The recorder's format constants and file set, checked where a slip would be silent."""
import os
import re
import sys

from conftest import RECORDER, ROOT

sys.path.insert(0, RECORDER)
import unclog_recorder  # noqa: E402,F401
from unclog_recorder import _wire, _writer  # noqa: E402

PKG = os.path.join(RECORDER, "unclog_recorder")


def _wire_codes():
    return {k: v for k, v in vars(_wire).items() if k.startswith("EV_")}


def test_event_codes_are_the_spec_table_named_after_the_spec():
    """_wire's EV_* are exactly spec §4.2's events: EV_ + the name in UPPER_SNAKE_CASE."""
    spec = os.path.join(ROOT, "schema", "trace-format.md")
    with open(spec) as f:
        text = f.read()
    table = text[text.index("### 4.2"):text.index("### 4.3")]
    want = {}
    for code, name in re.findall(r"^\| 0x([0-9A-Fa-f]{2}) \| `(\w+)` \|", table, re.M):
        snake = re.sub(r"(?<=[a-z])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name).upper()
        want["EV_" + snake] = int(code, 16)
    assert len(want) == 22 and want["EV_IO_WAIT_BEGIN"] == 0x20
    assert _wire_codes() == want


def test_native_tracer_uses_the_event_codes_of_wire():
    with open(os.path.join(PKG, "_fast.c")) as f:
        src = f.read()
    defines = {m.group(1): int(m.group(2), 16)
               for m in re.finditer(r"^#define (EV_\w+) 0x([0-9A-Fa-f]+)$", src, re.M)}
    assert defines == _wire_codes()


def test_flush_safety_covers_every_recorder_module_but_the_hooks():
    """_writer.safe_to_steal must see every frame of the modules that append events (a
    code object's co_filename is its module's __file__); _hooks.py's wrappers are where a
    hub waits in poll(), so they must not block the watchdog's flush."""
    mods = [m for name, m in sys.modules.items()
            if name == "unclog_recorder" or name.startswith("unclog_recorder.")]
    files = {m.__file__ for m in mods if getattr(m, "__file__", None)}
    hooks = sys.modules["unclog_recorder._hooks"].__file__
    assert hooks not in _writer.OWN_FILES
    assert files - {hooks} <= _writer.OWN_FILES
    on_disk = {f for f in os.listdir(PKG) if f.endswith(".py")}
    assert {os.path.basename(f) for f in _writer.OWN_FILES} == on_disk - {"_hooks.py"}
