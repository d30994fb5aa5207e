"""The greenlet switch tracer: the pure-Python one, and installing either tracer.

Every greenlet switch calls the tracer, so it is the recorder's hot path. The native
tracer (`_fast.c`, loaded by `use_native`) encodes the common switches in C and calls
back into Python for the rest (`new_gt`, `stall_end`, `define_pending`, `flush`);
`make_tracer` builds the pure-Python one, used without a C compiler or with
UNCLOG_PURE_PYTHON=1. It is a closure with what every switch touches bound locally (a
closure variable is one fast lookup, a module global a dict lookup); the switch codes
stay module globals (each is read on one branch only), since every closure variable
also costs a copy on every call. It and `TS_call` in `_fast.c` encode the same events.
"""

import sys

from . import _state, _threads, _wire
from ._intern import intern_stack
from ._naming import new_gt, define_pending
from ._originals import mono, get_ident
from ._state import CHUNK_TARGET, count_error
from ._threads import ts_here
from ._wire import (
    EV_STALL_END,
    EV_SWITCH_TO_HUB,
    EV_SWITCH_TIMER,
    EV_SWITCH_SPAWN,
    EV_SWITCH_EXPLICIT,
    EV_GREENTHREAD_EXIT,
    CODE,
    UV,
    uv,
)
from ._writer import flush

# the shared state, bound by assignment (see _state)
active = _state.active
threshold = _state.threshold
errors = _state.errors
prev_tracers = _state.prev_tracers
native_mod = _state.native_mod
dead_getter_set = _state.dead_getter_set

_STALL_END = CODE[EV_STALL_END]  # StallEnd's dt follows
_GT_EXIT = _wire.head(EV_GREENTHREAD_EXIT)


def stall_end(ts, g, t, d, frame):
    """StallEnd for the slice of the running greenthread, which ends now (t).
    Definitions first (dt 0), then StallEnd carrying dt d. Returns the dt left (0)."""
    dur = t - ts.slice_start
    gid = ts.cur
    try:
        stack = intern_stack(ts, frame)
    except Exception:
        count_error()
        stack = 0
    ts.buf += _STALL_END + uv(d) + uv(gid) + uv(dur) + uv(stack)
    ts.n += 1
    return 0


def make_tracer(ts, prev):
    """The pure-Python greenlet tracer of ts's thread, chaining `prev`."""
    mono_ = mono
    UVt = UV
    uvf = uv
    CB = CODE
    active_ = active
    thr = threshold[0]
    new_gt_ = new_gt
    stall_end_ = stall_end
    flush_ = flush
    errors_ = errors
    TO_HUB = CODE[EV_SWITCH_TO_HUB]
    LIMIT = CHUNK_TARGET

    def unclog_greenlet_tracer(event, args):
        if active_[0]:
            try:
                t = mono_()
                origin, target = args
                d = t - ts.last
                ts.last = t
                if ts.cur and t - ts.slice_start > thr:
                    d = stall_end_(ts, origin, t, d, origin.gr_frame)
                buf = ts.buf
                if target is ts.hub:
                    if d < 16384:
                        buf += TO_HUB + UVt[d]
                    else:
                        buf += TO_HUB + uvf(d)
                    ts.cur = ts.hub_gid
                else:
                    try:
                        gid = target._ucg
                        if origin is ts.hub:
                            code = ts.reason
                            ready = ts.ready
                            if ts.deadlines:
                                dl = ts.deadlines.pop(gid, None)
                                if dl is not None and dl <= t:
                                    code = EV_SWITCH_TIMER
                                    ready = dl
                        else:
                            code = EV_SWITCH_EXPLICIT
                            ready = t
                    except AttributeError:
                        gid, spawned, _ = new_gt_(ts, target, t)
                        buf = ts.buf
                        if target is ts.hub:
                            buf += TO_HUB + uvf(d)
                            ts.cur = gid
                            ts.slice_start = t
                            ts.n += 1
                            return prev(event, args) if prev is not None else None
                        code = EV_SWITCH_SPAWN
                        ready = spawned if spawned is not None else (ts.ready if origin is ts.hub else t)
                    r = t - ready
                    if r < 0:
                        r = 0
                    if d < 16384 and gid < 16384 and r < 16384:
                        buf += CB[code] + UVt[d] + UVt[gid] + UVt[r]
                    else:
                        buf += CB[code] + uvf(d) + uvf(gid) + uvf(r)
                    ts.cur = gid
                ts.slice_start = t
                ts.n += 1
                if origin.dead:
                    try:
                        og = origin._ucg
                        buf += _GT_EXIT + uvf(og)
                        ts.n += 1
                        ts.pending_names.discard(og)
                    except AttributeError:
                        pass
                elif ts.pending_names:
                    try:
                        og = origin._ucg
                        if og in ts.pending_names:
                            define_pending(ts, origin, og)
                    except AttributeError:
                        pass
                if len(buf) > LIMIT:
                    flush_(ts)
            except Exception:
                errors_[0] += 1
        if prev is not None:
            return prev(event, args)

    return unclog_greenlet_tracer


def _is_ours(tracer):
    if tracer is None:
        return False
    fast = native_mod[0]
    if fast is not None and type(tracer) is fast.TS:
        return True
    return getattr(tracer, "__name__", "") == "unclog_greenlet_tracer"


def use_native(enable=True):
    """Load the native tracer (compiling it on first use). Returns True if in use."""
    if not enable:
        return False
    from . import _native

    mod = _native.load()
    if mod is None:
        return False
    try:
        mod.configure(
            new_gt, stall_end, define_pending, flush, count_error, active, CHUNK_TARGET, threshold[0]
        )
    except Exception:
        return False
    native_mod[0] = mod
    _threads.TS = mod.TS
    return True


def install_tracer():
    """Install the greenlet tracer in the current OS thread (chaining any existing)."""
    if not active[0]:
        return
    gl = sys.modules.get("greenlet")
    if gl is None:
        return
    try:
        ident = get_ident()
        cur = gl.gettrace()
        if _is_ours(cur):
            return
        ts = ts_here()
        prev_tracers[ident] = cur
        if native_mod[0] is not None and type(ts) is native_mod[0].TS:
            ts.prev = cur
            ts.thr = threshold[0]
            fast = native_mod[0]
            fast.register_ts(ts)
            if not dead_getter_set[0]:
                dead_getter_set[0] = True
                try:
                    fast.set_dead_getter(gl.greenlet.__dict__["dead"])
                except Exception:
                    pass
            gl.settrace(ts)
        else:
            gl.settrace(make_tracer(ts, cur))
    except Exception:
        count_error()


def uninstall_tracer():
    gl = sys.modules.get("greenlet")
    if gl is None:
        return
    try:
        cur = gl.gettrace()
        if _is_ours(cur):
            gl.settrace(prev_tracers.pop(get_ident(), None))
    except Exception:
        count_error()
