"""Per-OS-thread recording state: its event buffer, clock and current greenthread.

Each OS thread that records gets one state object, created on first use by `ts_here()`
(which also writes the `Thread` event naming it). Only its own thread appends to its
buffer; the watchdog may flush it when that is safe (`_writer.safe_to_steal`). With the
native tracer the state is `_fast.c`'s TS (same attributes, and it is the tracer):
`_tracer.use_native` rebinds `TS` here.
"""

import os
import sys

from . import _state, _wire
from ._intern import intern_string
from ._originals import mono, get_ident, get_native_id
from ._wire import EV_THREAD, EV_SWITCH_OTHER, EV_SWITCH_TIMER, uv

# the shared state, bound by assignment (see _state)
threads = _state.threads

_THREAD = _wire.head(EV_THREAD)


class PyTS(object):
    """Per OS thread recording state; only its thread appends to `buf`."""

    __slots__ = (
        "ident",
        "tid",
        "buf",
        "base",
        "last",
        "seq",
        "n",
        "cur",
        "hub",
        "hub_gid",
        "slice_start",
        "waiting",
        "reason",
        "ready",
        "deadlines",
        "flushed_at",
        "head",
        "stall_seen",
        "pending_names",
        "phase_start",
    )

    def __init__(self, ident, tid):
        now = mono()
        self.ident = ident
        self.tid = tid
        self.buf = bytearray()
        self.base = now
        self.last = now
        self.seq = 0
        self.n = 0
        self.cur = 0
        self.hub = None
        self.hub_gid = 0
        self.slice_start = now
        self.waiting = False
        self.reason = EV_SWITCH_OTHER
        self.ready = now
        self.deadlines = {}
        self.flushed_at = now
        self.head = 0
        self.stall_seen = 0
        self.pending_names = set()
        self.phase_start = now

    def timer(self, exp):
        """The next switch from the hub is a timer due at exp (seconds, monotonic)."""
        self.reason = EV_SWITCH_TIMER
        self.ready = int(exp * 1e9)


TS = PyTS  # the class ts_here() instantiates: _fast.TS when the native tracer is used


def _native_tid():
    if get_native_id is not None:
        try:
            return get_native_id() & 0xFFFFFFFF or 1
        except Exception:
            pass
    return (os.getpid() & 0xFFFFFFFF) or 1


def _thread_name(ident):
    th = sys.modules.get("threading")
    if th is None:
        return None
    try:
        t = th._active.get(ident)
        if t is not None:
            return t.name
        if ident == th.main_thread().ident:
            return "MainThread"
    except Exception:
        pass
    return None


def ts_here():
    """The current OS thread's state, created on first use."""
    ident = get_ident()
    ts = threads.get(ident)
    if ts is None:
        ts = TS(ident, _native_tid())
        threads[ident] = ts
        name = _thread_name(ident)
        nid = intern_string(ts, name) if name else 0
        ts.buf += _THREAD + uv(ts.tid) + uv(nid)
        ts.n += 1
    return ts
