"""Greenthread identities: ids, names, spawn sites and parents (`GreenthreadCreate`).

A greenlet gets its id (`_ucg` attribute) the first time it is switched to. Its name
and spawn stack come from what the runtime hooks noted at spawn time (`note_spawn`),
gevent's own spawn tracking, or its frames; a raw greenlet that has not started yet is
named when it first switches out (its bottom frame then names its function).
"""

import sys

from . import _state, _wire
from ._intern import intern_string, intern_stack, intern_pseudo_stack, is_internal_file
from ._originals import mono
from ._state import new_id, count_error
from ._threads import ts_here
from ._wire import EV_GREENTHREAD_CREATE, UV, uv

# the shared state, bound by assignment (see _state)
active = _state.active

_CREATE = _wire.head(EV_GREENTHREAD_CREATE)
_NO_STACK_NO_PARENT = UV[0] + UV[0]  # spawn_stack 0, parent 0


def _func_name(fn):
    if fn is None:
        return None
    try:
        inner = getattr(fn, "__func__", fn)
        name = getattr(inner, "__qualname__", None) or getattr(inner, "__name__", None)
        mod = getattr(inner, "__module__", None)
        if name is None:
            return repr(fn)[:200]
        if mod and mod not in ("__main__", "builtins"):
            return mod + "." + name
        return name
    except Exception:
        return None


def getcurrent():
    gl = sys.modules.get("greenlet")
    if gl is None:
        return None
    try:
        return gl.getcurrent()
    except Exception:
        return None


def note_spawn(g, func, skip=2):
    """Called by spawn wrappers right after a greenthread object is created."""
    if not active[0]:
        return
    try:
        ts = ts_here()
        t = mono()
        stack = intern_stack(ts, sys._getframe(skip))
        parent = 0
        cur = getcurrent()
        if cur is not None:
            parent = getattr(cur, "_ucg", 0)
        g._uc_spawn = (_func_name(func), stack, t, parent)
    except Exception:
        count_error()


def _classify_hub(g):
    """True if greenlet `g` is this thread's eventlet or gevent hub."""
    gh = sys.modules.get("gevent.hub")
    if gh is not None:
        try:
            if isinstance(g, gh.Hub):
                return True
        except Exception:
            pass
    eh = sys.modules.get("eventlet.hubs")
    if eh is not None:
        try:
            hub = getattr(eh._threadlocal, "hub", None)
            if hub is not None and getattr(hub, "greenlet", None) is g:
                return True
        except Exception:
            pass
    return False


def new_gt(ts, g, t):
    """First sight of greenlet g (as a switch target): id, GreenthreadCreate.
    Returns (gid, spawn_time or None, name pending)."""
    gid = new_id()
    try:
        g._ucg = gid
    except Exception:
        # a greenlet subclass without __dict__: it will get a new id each time
        count_error()
    spawned_at = None
    name = None
    stack = 0
    parent = 0
    info = getattr(g, "_uc_spawn", None)
    if info is not None:
        name, stack, spawned_at, parent = info
    if g.parent is None:
        name = "<main>"
    elif _classify_hub(g):
        ts.hub = g
        ts.hub_gid = gid
        name = "<hub>"
    if name is None:
        run = getattr(g, "_run", None)  # gevent.Greenlet keeps its function
        if run is not None:
            name = _func_name(run)
    if not stack:
        sp = getattr(g, "spawning_stack", None)  # gevent's spawn tree tracking
        if sp is not None:
            stack = intern_pseudo_stack(ts, sp)
            if not parent:
                try:
                    pg = g.spawning_greenlet
                    pg = pg() if callable(pg) else pg
                    parent = getattr(pg, "_ucg", 0)
                except Exception:
                    pass
    if name is None and g.gr_frame is not None:
        name = _name_from_frames(g.gr_frame)  # started before recording began
    if name is None and g.gr_frame is None and not g.dead:
        # a raw greenlet that has not started: its function is no longer visible;
        # define it when it first switches out (its bottom frame names it).
        ts.pending_names.add(gid)
        return gid, spawned_at, True
    nid = intern_string(ts, name or "<greenlet>")
    ts.buf += _CREATE + uv(gid) + uv(nid) + uv(stack) + uv(parent)
    ts.n += 1
    return gid, spawned_at, False


def _name_from_frames(f):
    """The function a greenlet runs: its bottom frame, or the first application frame
    above runtime frames like eventlet's GreenThread.main."""
    try:
        chain = []
        while f is not None and len(chain) < 4096:
            chain.append(f)
            f = f.f_back
        chain.reverse()
        for fr in chain:
            if not is_internal_file(fr.f_code.co_filename):
                code = fr.f_code
                return getattr(code, "co_qualname", None) or code.co_name
        if chain:
            code = chain[0].f_code
            return getattr(code, "co_qualname", None) or code.co_name
    except Exception:
        pass
    return None


def define_pending(ts, g, gid):
    ts.pending_names.discard(gid)
    name = _name_from_frames(g.gr_frame)
    nid = intern_string(ts, name or "<greenlet>")
    ts.buf += _CREATE + uv(gid) + uv(nid) + _NO_STACK_NO_PARENT
    ts.n += 1
