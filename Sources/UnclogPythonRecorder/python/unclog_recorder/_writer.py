"""Writing the trace file: events chunks (flushes) and metadata chunks.

A thread's buffer becomes one events chunk when it flushes; the next chunk starts with
`Running` (spec §4.1) so every chunk decodes on its own. The watchdog also flushes
other threads' buffers ("steals" them) when they have been idle or stalled for a while,
but only when no frame of the recorder's own files is on that thread's stack: the
thread is then not in the middle of appending an event, so no event is cut in half.
"""

import os
import sys

from . import _state, _wire
from ._defaults import RECORDER_NAME
from ._originals import mono, wall
from ._state import count_error
from ._wire import EV_DROPPED, EV_RUNNING, DROPPED_RECORDER_ERROR, uv

# the shared state, bound by assignment (see _state)
fd = _state.fd
errors = _state.errors
errors_reported = _state.errors_reported
totals = _state.totals
meta_written = _state.meta_written
threshold = _state.threshold
interval = _state.interval
native_mod = _state.native_mod
runtime = _state.runtime
active = _state.active

_DROPPED_ERRORS = _wire.head(EV_DROPPED) + uv(DROPPED_RECORDER_ERROR)
_RUNNING = _wire.head(EV_RUNNING)
_END = _wire.CODE[_wire.EV_END]  # End's dt follows: not 0

_HERE = os.path.dirname(__file__)
# Every module of the recorder except _hooks.py, as code objects name them (`__file__`
# of a sibling module is this directory joined with its file name). _hooks.py is left
# out on purpose: its wrappers only call into the other modules for short mutations,
# and a hub sitting in poll() inside one of them must still have its buffer flushed.
OWN_FILES = frozenset(
    os.path.join(_HERE, f) for f in os.listdir(_HERE) if f.endswith(".py") and f != "_hooks.py"
)


def write(data):
    f = fd[0]
    if f < 0:
        return False
    try:
        view = memoryview(data)
        while view:
            n = os.write(f, view)
            view = view[n:]
        return True
    except Exception:
        count_error()
        return False


def flush(ts):
    """Write ts's buffer as one events chunk and start the next one with Running."""
    buf = ts.buf
    if len(buf) <= ts.head:
        return
    try:
        e = errors[0] - errors_reported[0]
        if e > 0:
            errors_reported[0] += e
            buf += _DROPPED_ERRORS + uv(e)
            ts.n += 1
        n = ts.n
        data = _wire.chunk(_wire.KIND_EVENTS, ts.base, ts.tid, ts.seq, bytes(buf))
        nb = bytearray()
        cur = ts.cur
        if cur:
            nb += _RUNNING + uv(cur) + uv(ts.hub_gid)
            ts.n = 1
        else:
            ts.n = 0
        ts.head = len(nb)
        ts.seq += 1
        ts.base = ts.last
        ts.buf = nb
        ts.flushed_at = mono()
        if write(data):
            totals[0] += 1
            totals[1] += n
    except Exception:
        count_error()


def end_payload(me, t):
    """The last events chunk's payload: errors not yet reported, then End (spec §4.2)."""
    buf = bytearray()
    e = errors[0] - errors_reported[0]
    if e > 0:
        buf += _DROPPED_ERRORS + uv(e)
    buf += _END + uv(max(0, t - me.last)) + uv(totals[0]) + uv(totals[1])
    return bytes(buf)


def safe_to_steal(frame):
    """No frame of the recorder's own files on the stack: that thread is not mid-append."""
    own = OWN_FILES
    f = frame
    while f is not None:
        if f.f_code.co_filename in own:
            return False
        f = f.f_back
    return True


def write_metadata(extra=None):
    entries = []
    if not meta_written[0]:
        m = mono()
        w = wall()
        entries += [
            ("clock", "CLOCK_MONOTONIC"),
            ("anchor_mono_ns", m),
            ("anchor_wall_ns", w),
            ("pid", os.getpid()),
            ("argv", [str(a) for a in (getattr(sys, "orig_argv", None) or sys.argv or [])]),
            ("hostname", _hostname()),
            (
                "language_version",
                "%s %d.%d.%d"
                % (
                    ((sys.implementation.name == "cpython" and "CPython") or sys.implementation.name,)
                    + tuple(sys.version_info[:3])
                ),
            ),
            ("recorder", RECORDER_NAME),
            ("recorder_tracer", "native" if native_mod[0] is not None else "python"),
            ("threshold_ns", threshold[0]),
            ("sample_interval_ns", interval[0]),
        ]
        base = m
    else:
        base = mono()
    if extra:
        entries += list(extra)
    payload = _wire.metadata_payload(entries)
    if write(_wire.chunk(_wire.KIND_METADATA, base, 0, 0, payload)):
        totals[0] += 1
    meta_written[0] = True


def _hostname():
    try:
        return os.uname().nodename
    except Exception:
        return ""


def note_runtime(name, version):
    """Record which runtime is in use: the best one seen (eventlet/gevent > greenlet)."""
    if not active[0]:
        return
    try:
        cur = runtime[0]
        if cur == name or (cur in ("eventlet", "gevent") and name == "greenlet"):
            return
        runtime[0] = name
        runtime[1] = version
        extra = [("runtime", name), ("runtime_version", version or "")]
        if name == "gevent":
            # gevent's poll timeout is not visible from Python: IOWaitBegin writes 0 (spec §3).
            extra.append(("io_timeout_known", 0))
        write_metadata(extra)
    except Exception:
        count_error()
