"""Hub events, called by the runtime hooks in the hub's thread: I/O waits (`IOWaitBegin`,
`IOWaitEnd`) and what the next switches' reasons and ready times are.

The hooks in _hooks.py call these around the hub's poll (eventlet's `do_poll`, `select`,
idle sleep, the asyncio hub's selector; gevent's prepare/check watchers) and from
`gevent.sleep` (`note_deadline`, the pure-Python version of `_fast.c`'s).
"""

import sys

from . import _state, _wire
from ._naming import getcurrent
from ._originals import mono, get_ident
from ._state import CHUNK_TARGET, OWNER_FLUSH_NS, count_error
from ._threads import ts_here
from ._tracer import stall_end
from ._wire import EV_IO_WAIT_BEGIN, EV_IO_WAIT_END, EV_SWITCH_IO, uv
from ._writer import flush

# the shared state, bound by assignment (see _state)
active, threshold, threads = _state.active, _state.threshold, _state.threads

_IO_BEGIN = _wire.CODE[EV_IO_WAIT_BEGIN]  # dt follows
_IO_END = _wire.CODE[EV_IO_WAIT_END]


def io_begin(timeout_s, frame=None):
    """The hub is about to wait for I/O for at most timeout_s seconds (None: forever)."""
    if not active[0]:
        return None
    try:
        ts = ts_here()
        t = mono()
        d = t - ts.last
        ts.last = t
        if ts.cur and t - ts.slice_start > threshold[0]:
            d = stall_end(ts, None, t, d, frame or sys._getframe(1))
        if timeout_s is None:
            to = 0
        else:
            to = int(timeout_s * 1e9)
            to = (to if to > 0 else 0) + 1
        ts.buf += _IO_BEGIN + uv(d) + uv(to)
        ts.n += 1
        ts.waiting = True
        if t - ts.flushed_at > OWNER_FLUSH_NS or len(ts.buf) > CHUNK_TARGET:
            flush(ts)
        return ts
    except Exception:
        count_error()
        return None


def io_end(ts, nready, reason=EV_SWITCH_IO):
    if ts is None or not active[0]:
        return
    try:
        t = mono()
        d = t - ts.last
        ts.last = t
        ts.buf += _IO_END + uv(d) + uv(nready if nready > 0 else 0)
        ts.n += 1
        ts.waiting = False
        ts.slice_start = t
        ts.reason = reason
        ts.ready = t
    except Exception:
        count_error()


def set_phase(reason, ready_ns=None):
    """gevent: the hub enters a phase whose switches have this reason."""
    if not active[0]:
        return
    try:
        ts = threads.get(get_ident())
        if ts is not None:
            ts.reason = reason
            ts.ready = mono() if ready_ns is None else ready_ns
    except Exception:
        count_error()


def note_deadline(seconds):
    """gevent.sleep(seconds): the caller becomes ready again at now + seconds."""
    if not active[0]:
        return
    try:
        cur = getcurrent()
        gid = getattr(cur, "_ucg", 0)
        if gid:
            ts = threads.get(get_ident())
            if ts is not None:
                s = seconds if seconds and seconds > 0 else 0
                ts.deadlines[gid] = mono() + int(s * 1e9)
    except Exception:
        count_error()
