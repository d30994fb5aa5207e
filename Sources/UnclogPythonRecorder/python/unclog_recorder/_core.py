"""The recorder's state, the greenlet tracer, the watchdog and the writer.

Everything that mutates a thread's event buffer lives in this file: the watchdog
only takes over ("steals") another thread's buffer to flush it when no frame of
this file is on that thread's stack (so it never cuts an event in half).

Rules kept everywhere: never raise into the program (errors are counted and
written as `Dropped` reason 2), never block the program, never print.
"""
import _thread
import os
import sys
import time as _time

from . import _wire
from ._wire import UV, uv, string

VERSION = "0.1.0"

# Originals captured when this module is first imported. Under `unclog record` that
# is at interpreter start-up, before any monkey-patching (see _resolve_originals for
# the API case where the program has already patched things).
_mono = _time.monotonic_ns
_wall = _time.time_ns
_sleep = _time.sleep
_start_thread = _thread.start_new_thread
_get_ident = _thread.get_ident
_get_native_id = getattr(_thread, "get_native_id", None)
_allocate_lock = _thread.allocate_lock



def _resolve_originals():
    """If the program monkey-patched time/_thread before importing us (API use), get
    the real ones back: the watchdog must be a real OS thread sleeping for real."""
    global _sleep, _start_thread, _get_ident, _get_native_id, _allocate_lock
    try:
        gm = sys.modules.get("gevent.monkey")
        if gm is not None:
            get = gm.get_original
            _sleep = get("time", "sleep")
            _start_thread, _get_ident, _allocate_lock = get(
                "_thread", ["start_new_thread", "get_ident", "allocate_lock"])
            try:
                _get_native_id = get("_thread", "get_native_id")
            except Exception:
                pass
        ep = sys.modules.get("eventlet.patcher")
        if ep is not None:
            ot = ep.original("time")
            oth = ep.original("_thread")
            _sleep = ot.sleep
            _start_thread = oth.start_new_thread
            _get_ident = oth.get_ident
            _allocate_lock = oth.allocate_lock
            _get_native_id = getattr(oth, "get_native_id", _get_native_id)
    except Exception:
        pass


_resolve_originals()

_THIS_FILE = __file__
_PKG_DIR = os.path.dirname(os.path.abspath(__file__))

CHUNK_TARGET = 32 * 1024          # flush a thread's buffer when it grows past this
OWNER_FLUSH_NS = 250_000_000      # the owning thread flushes at least this often when it can
STEAL_FLUSH_NS = 500_000_000      # the watchdog flushes idle/stalled threads after this

_CB = tuple(bytes((i,)) for i in range(256))

# --- global state ----------------------------------------------------------------

_active = [False]            # a list so closures see changes without a global lookup
_fd = [-1]
_threshold = [50_000_000]
_interval = [10_000_000]
_threads = {}                # _thread.get_ident() -> _TS
_strings = {}                # str -> id
_frames = {}                 # (code, line) -> id
_stacks = {}                 # tuple(frame ids) -> id
_codeinfo = {}               # code -> (function sid, file sid, flags)
_next_id = [0]
_errors = [0]
_errors_reported = [0]
_totals = [0, 0]             # chunks written (all kinds), events written
_internal_dirs = []          # directory prefixes whose frames are marked internal
_runtime = [None, None]      # runtime name, version written so far
_meta_written = [False]
_prev_tracers = {}           # ident -> previous greenlet tracer (to restore on stop)
_wd_ts = [None]
_started_pid = [0]
_meta_extra = {}


def _new_id():
    n = _next_id[0] + 1
    _next_id[0] = n
    return n


def _count_error():
    _errors[0] += 1


class _TS(object):
    """Per OS thread recording state; only its thread appends to `buf`."""
    __slots__ = ("ident", "tid", "buf", "base", "last", "seq", "n", "cur", "hub",
                 "hub_gid", "slice_start", "waiting", "reason", "ready", "deadlines",
                 "flushed_at", "head", "stall_seen", "pending_names", "phase_start")

    def __init__(self, ident, tid):
        now = _mono()
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
        self.reason = _wire.EV_SW_OTHER
        self.ready = now
        self.deadlines = {}
        self.flushed_at = now
        self.head = 0
        self.stall_seen = 0
        self.pending_names = set()
        self.phase_start = now

    def timer(self, exp):
        """The next switch from the hub is a timer due at exp (seconds, monotonic)."""
        self.reason = _wire.EV_SW_TIMER
        self.ready = int(exp * 1e9)


def _native_tid():
    if _get_native_id is not None:
        try:
            return _get_native_id() & 0xFFFFFFFF or 1
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


def _ts_here():
    """The current OS thread's state, created on first use."""
    ident = _get_ident()
    ts = _threads.get(ident)
    if ts is None:
        ts = _TS(ident, _native_tid())
        _threads[ident] = ts
        name = _thread_name(ident)
        nid = _intern_string(ts, name) if name else 0
        ts.buf += b"\x06\x00" + uv(ts.tid) + uv(nid)
        ts.n += 1
    return ts


# --- interning (definitions go into the buffer of the thread that creates them) ---

def _intern_string(ts, s):
    sid = _strings.get(s)
    if sid is None:
        sid = _new_id()
        _strings[s] = sid
        ts.buf += b"\x01\x00" + uv(sid) + string(s)
        ts.n += 1
    return sid


def _is_internal_file(filename):
    if filename.startswith(_PKG_DIR):
        return True
    for d in _internal_dirs:
        if filename.startswith(d):
            return True
    return False


def _library_prefixes():
    """Directories of the standard library and of installed packages: frames there are
    flagged `library`, so a stall in subprocess.run() is charged to the program's line
    that called it (spec §4.2, frame flag bit 3)."""
    out = set()
    try:
        import sysconfig
        paths = sysconfig.get_paths()
        for k in ("stdlib", "platstdlib", "purelib", "platlib"):
            p = paths.get(k)
            if p:
                out.add(os.path.realpath(p))
                out.add(os.path.abspath(p))
    except Exception:
        pass
    try:
        import site
        for p in site.getsitepackages() + [site.getusersitepackages()]:
            out.add(os.path.abspath(p))
    except Exception:
        pass
    return tuple(sorted(d.rstrip(os.sep) + os.sep for d in out if d))


_LIBRARY_DIRS = _library_prefixes()


def _frame_flags(filename):
    if _is_internal_file(filename):
        return _wire.FLAG_INTERNAL
    if filename.startswith("<frozen ") or filename.startswith(_LIBRARY_DIRS):
        return _wire.FLAG_LIBRARY
    return 0


def add_internal_module(mod):
    """Mark the package directory of `mod` as runtime-internal (eventlet, gevent…)."""
    try:
        f = getattr(mod, "__file__", None)
        if f:
            d = os.path.dirname(os.path.abspath(f)) + os.sep
            if d not in _internal_dirs:
                _internal_dirs.append(d)
                # frames interned before the module was known stay as they were:
                # they were interned while it was not imported, so they are not its.
    except Exception:
        _count_error()


def _intern_frame(ts, code, line):
    key = (code, line)
    fid = _frames.get(key)
    if fid is not None:
        return fid
    info = _codeinfo.get(code)
    if info is None:
        fn = getattr(code, "co_qualname", None) or code.co_name
        filename = code.co_filename
        flags = _frame_flags(filename)
        info = (_intern_string(ts, fn), _intern_string(ts, filename), flags)
        _codeinfo[code] = info
    fid = _new_id()
    _frames[key] = fid
    ts.buf += (b"\x02\x00" + uv(fid) + uv(info[2]) + uv(info[0]) + uv(info[1])
               + uv(line if line and line > 0 else 0))
    ts.n += 1
    return fid


def _intern_stack(ts, frame):
    """Stack id of `frame` and its callers (innermost first), defining what is new."""
    if frame is None:
        return 0
    fids = []
    f = frame
    get = _frames.get
    while f is not None and len(fids) < 1024:
        code = f.f_code
        line = f.f_lineno
        fid = get((code, line))
        if fid is None:
            fid = _intern_frame(ts, code, line)
        fids.append(fid)
        f = f.f_back
    key = tuple(fids)
    sid = _stacks.get(key)
    if sid is None:
        sid = _new_id()
        _stacks[key] = sid
        out = bytearray(b"\x04\x00")
        out += uv(sid)
        out += uv(len(fids))
        for fid in fids:
            out += uv(fid)
        ts.buf += out
        ts.n += 1
    return sid


def _intern_pseudo_stack(ts, fr):
    """gevent's spawning_stack: objects with f_code, f_lineno, f_back."""
    fids = []
    try:
        while fr is not None and len(fids) < 1024:
            fids.append(_intern_frame(ts, fr.f_code, fr.f_lineno))
            fr = fr.f_back
    except Exception:
        _count_error()
    if not fids:
        return 0
    key = tuple(fids)
    sid = _stacks.get(key)
    if sid is None:
        sid = _new_id()
        _stacks[key] = sid
        out = bytearray(b"\x04\x00")
        out += uv(sid) + uv(len(fids))
        for fid in fids:
            out += uv(fid)
        ts.buf += out
        ts.n += 1
    return sid


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


# --- spawn information (set by the runtime hooks on the greenlet object) -----------

def note_spawn(g, func, skip=2):
    """Called by spawn wrappers right after a greenthread object is created."""
    if not _active[0]:
        return
    try:
        ts = _ts_here()
        t = _mono()
        stack = _intern_stack(ts, sys._getframe(skip))
        parent = 0
        cur = _getcurrent()
        if cur is not None:
            parent = getattr(cur, "_ucg", 0)
        g._uc_spawn = (_func_name(func), stack, t, parent)
    except Exception:
        _count_error()


def note_deadline(seconds):
    """gevent.sleep(seconds): the caller becomes ready again at now + seconds."""
    if not _active[0]:
        return
    try:
        cur = _getcurrent()
        gid = getattr(cur, "_ucg", 0)
        if gid:
            ts = _threads.get(_get_ident())
            if ts is not None:
                s = seconds if seconds and seconds > 0 else 0
                ts.deadlines[gid] = _mono() + int(s * 1e9)
    except Exception:
        _count_error()


def _getcurrent():
    gl = sys.modules.get("greenlet")
    if gl is None:
        return None
    try:
        return gl.getcurrent()
    except Exception:
        return None


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


def _new_gt(ts, g, t):
    """First sight of greenlet g (as a switch target): id, GreenthreadCreate.
    Returns (gid, spawn_time or None)."""
    gid = _new_id()
    try:
        g._ucg = gid
    except Exception:
        # a greenlet subclass without __dict__: it will get a new id each time
        _count_error()
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
        run = getattr(g, "_run", None)          # gevent.Greenlet keeps its function
        if run is not None:
            name = _func_name(run)
    if not stack:
        sp = getattr(g, "spawning_stack", None)   # gevent's spawn tree tracking
        if sp is not None:
            stack = _intern_pseudo_stack(ts, sp)
            if not parent:
                try:
                    pg = g.spawning_greenlet
                    pg = pg() if callable(pg) else pg
                    parent = getattr(pg, "_ucg", 0)
                except Exception:
                    pass
    if name is None and g.gr_frame is not None:
        name = _name_from_frames(g.gr_frame)     # started before recording began
    if name is None and g.gr_frame is None and not g.dead:
        # a raw greenlet that has not started: its function is no longer visible;
        # define it when it first switches out (its bottom frame names it).
        ts.pending_names.add(gid)
        return gid, spawned_at, True
    nid = _intern_string(ts, name or "<greenlet>")
    ts.buf += b"\x07\x00" + uv(gid) + uv(nid) + uv(stack) + uv(parent)
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
            if not _is_internal_file(fr.f_code.co_filename):
                code = fr.f_code
                return getattr(code, "co_qualname", None) or code.co_name
        if chain:
            code = chain[0].f_code
            return getattr(code, "co_qualname", None) or code.co_name
    except Exception:
        pass
    return None


def _define_pending(ts, g, gid):
    ts.pending_names.discard(gid)
    name = _name_from_frames(g.gr_frame)
    nid = _intern_string(ts, name or "<greenlet>")
    ts.buf += b"\x07\x00" + uv(gid) + uv(nid) + b"\x00\x00"
    ts.n += 1


def _stall_end(ts, g, t, d, frame):
    """StallEnd for the slice of the running greenthread, which ends now (t).
    Definitions first (dt 0), then StallEnd carrying dt d. Returns the dt left (0)."""
    dur = t - ts.slice_start
    gid = ts.cur
    try:
        stack = _intern_stack(ts, frame)
    except Exception:
        _count_error()
        stack = 0
    ts.buf += b"\x32" + uv(d) + uv(gid) + uv(dur) + uv(stack)
    ts.n += 1
    return 0


# --- the greenlet tracer ------------------------------------------------------------

def _make_tracer(ts, prev):
    mono = _mono
    UVt = UV
    uvf = uv
    CB = _CB
    active = _active
    thr = _threshold[0]
    new_gt = _new_gt
    stall_end = _stall_end
    flush = _flush
    errors = _errors
    TO_HUB = b"\x10"
    LIMIT = CHUNK_TARGET

    def unclog_greenlet_tracer(event, args):
        if active[0]:
            try:
                t = mono()
                origin, target = args
                d = t - ts.last
                ts.last = t
                if ts.cur and t - ts.slice_start > thr:
                    d = stall_end(ts, origin, t, d, origin.gr_frame)
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
                                    code = 0x11
                                    ready = dl
                        else:
                            code = 0x14
                            ready = t
                    except AttributeError:
                        gid, spawned, _ = new_gt(ts, target, t)
                        buf = ts.buf
                        if target is ts.hub:
                            buf += TO_HUB + uvf(d)
                            ts.cur = gid
                            ts.slice_start = t
                            ts.n += 1
                            return prev(event, args) if prev is not None else None
                        code = 0x13
                        ready = spawned if spawned is not None else (
                            ts.ready if origin is ts.hub else t)
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
                        buf += b"\x08\x00" + uvf(og)
                        ts.n += 1
                        ts.pending_names.discard(og)
                    except AttributeError:
                        pass
                elif ts.pending_names:
                    try:
                        og = origin._ucg
                        if og in ts.pending_names:
                            _define_pending(ts, origin, og)
                    except AttributeError:
                        pass
                if len(buf) > LIMIT:
                    flush(ts)
            except Exception:
                errors[0] += 1
        if prev is not None:
            return prev(event, args)

    return unclog_greenlet_tracer


_native_mod = [None]
_dead_getter_set = [False]


def _is_ours(tracer):
    if tracer is None:
        return False
    fast = _native_mod[0]
    if fast is not None and type(tracer) is fast.TS:
        return True
    return getattr(tracer, "__name__", "") == "unclog_greenlet_tracer"


def use_native(enable=True):
    """Load the native tracer (compiling it on first use). Returns True if in use."""
    global _TS
    if not enable:
        return False
    from . import _native
    mod = _native.load()
    if mod is None:
        return False
    try:
        mod.configure(_new_gt, _stall_end, _define_pending, _flush, _count_error,
                      _active, CHUNK_TARGET)
    except Exception:
        return False
    _native_mod[0] = mod
    _TS = mod.TS
    return True


def install_tracer():
    """Install the greenlet tracer in the current OS thread (chaining any existing)."""
    if not _active[0]:
        return
    gl = sys.modules.get("greenlet")
    if gl is None:
        return
    try:
        ident = _get_ident()
        cur = gl.gettrace()
        if _is_ours(cur):
            return
        ts = _ts_here()
        _prev_tracers[ident] = cur
        if _native_mod[0] is not None and type(ts) is _native_mod[0].TS:
            ts.prev = cur
            ts.thr = _threshold[0]
            fast = _native_mod[0]
            fast.register_ts(ts)
            if not _dead_getter_set[0]:
                _dead_getter_set[0] = True
                try:
                    fast.set_dead_getter(gl.greenlet.__dict__["dead"])
                except Exception:
                    pass
            gl.settrace(ts)
        else:
            gl.settrace(_make_tracer(ts, cur))
    except Exception:
        _count_error()


def uninstall_tracer():
    gl = sys.modules.get("greenlet")
    if gl is None:
        return
    try:
        cur = gl.gettrace()
        if _is_ours(cur):
            gl.settrace(_prev_tracers.pop(_get_ident(), None))
    except Exception:
        _count_error()


# --- hub events (called by the runtime hooks, in the hub's thread) -----------------

def io_begin(timeout_s, frame=None):
    """The hub is about to wait for I/O for at most timeout_s seconds (None: forever)."""
    if not _active[0]:
        return None
    try:
        ts = _ts_here()
        t = _mono()
        d = t - ts.last
        ts.last = t
        if ts.cur and t - ts.slice_start > _threshold[0]:
            d = _stall_end(ts, None, t, d, frame or sys._getframe(1))
        if timeout_s is None:
            to = 0
        else:
            to = int(timeout_s * 1e9)
            to = (to if to > 0 else 0) + 1
        ts.buf += b"\x20" + uv(d) + uv(to)
        ts.n += 1
        ts.waiting = True
        if t - ts.flushed_at > OWNER_FLUSH_NS or len(ts.buf) > CHUNK_TARGET:
            _flush(ts)
        return ts
    except Exception:
        _count_error()
        return None


def io_end(ts, nready, reason=_wire.EV_SW_IO):
    if ts is None or not _active[0]:
        return
    try:
        t = _mono()
        d = t - ts.last
        ts.last = t
        ts.buf += b"\x21" + uv(d) + uv(nready if nready > 0 else 0)
        ts.n += 1
        ts.waiting = False
        ts.slice_start = t
        ts.reason = reason
        ts.ready = t
    except Exception:
        _count_error()


def set_phase(reason, ready_ns=None):
    """gevent: the hub enters a phase whose switches have this reason."""
    if not _active[0]:
        return
    try:
        ts = _threads.get(_get_ident())
        if ts is not None:
            ts.reason = reason
            ts.ready = _mono() if ready_ns is None else ready_ns
    except Exception:
        _count_error()


# --- writing -------------------------------------------------------------------------

def _write(data):
    fd = _fd[0]
    if fd < 0:
        return False
    try:
        view = memoryview(data)
        while view:
            n = os.write(fd, view)
            view = view[n:]
        return True
    except Exception:
        _count_error()
        return False


def _flush(ts):
    """Write ts's buffer as one events chunk and start the next one with Running."""
    buf = ts.buf
    if len(buf) <= ts.head:
        return
    try:
        e = _errors[0] - _errors_reported[0]
        if e > 0:
            _errors_reported[0] += e
            buf += b"\x40\x00\x02" + uv(e)
            ts.n += 1
        n = ts.n
        data = _wire.chunk(_wire.KIND_EVENTS, ts.base, ts.tid, ts.seq, bytes(buf))
        nb = bytearray()
        cur = ts.cur
        if cur:
            nb += b"\x09\x00" + uv(cur) + uv(ts.hub_gid)
            ts.n = 1
        else:
            ts.n = 0
        ts.head = len(nb)
        ts.seq += 1
        ts.base = ts.last
        ts.buf = nb
        ts.flushed_at = _mono()
        if _write(data):
            _totals[0] += 1
            _totals[1] += n
    except Exception:
        _count_error()


def _safe_to_steal(frame):
    """No frame of this file on the stack: that thread is not mid-append."""
    f = frame
    while f is not None:
        if f.f_code.co_filename == _THIS_FILE:
            return False
        f = f.f_back
    return True


def write_metadata(extra=None):
    entries = []
    if not _meta_written[0]:
        mono = _mono()
        wall = _wall()
        entries += [
            ("clock", "CLOCK_MONOTONIC"),
            ("anchor_mono_ns", mono),
            ("anchor_wall_ns", wall),
            ("pid", os.getpid()),
            ("argv", [str(a) for a in (getattr(sys, "orig_argv", None) or sys.argv or [])]),
            ("hostname", _hostname()),
            ("language_version", "%s %d.%d.%d" % (((sys.implementation.name == "cpython" and "CPython")
                                                    or sys.implementation.name,) + tuple(sys.version_info[:3]))),
            ("recorder", "unclog-python " + VERSION),
            ("recorder_tracer", "native" if _native_mod[0] is not None else "python"),
            ("threshold_ns", _threshold[0]),
            ("sample_interval_ns", _interval[0]),
        ]
        base = mono
    else:
        base = _mono()
    if extra:
        entries += list(extra)
    payload = _wire.metadata_payload(entries)
    if _write(_wire.chunk(_wire.KIND_METADATA, base, 0, 0, payload)):
        _totals[0] += 1
    _meta_written[0] = True


def _hostname():
    try:
        return os.uname().nodename
    except Exception:
        return ""


def note_runtime(name, version):
    """Record which runtime is in use: the best one seen (eventlet/gevent > greenlet)."""
    if not _active[0]:
        return
    try:
        cur = _runtime[0]
        if cur == name or (cur in ("eventlet", "gevent") and name == "greenlet"):
            return
        _runtime[0] = name
        _runtime[1] = version
        extra = [("runtime", name), ("runtime_version", version or "")]
        if name == "gevent":
            # gevent's poll timeout is not visible from Python: IOWaitBegin writes 0 (spec §3).
            extra.append(("io_timeout_known", 0))
        write_metadata(extra)
    except Exception:
        _count_error()


# --- watchdog -------------------------------------------------------------------------

def _syscall_state(tid):
    try:
        fd = os.open("/proc/self/task/%d/syscall" % tid, os.O_RDONLY)
        try:
            s = os.read(fd, 64)
        finally:
            os.close(fd)
        if s.startswith(b"running"):
            return 1
        n = int(s.split(None, 1)[0])
        return 2 + n if n >= 0 else 0
    except Exception:
        return 0


_wd_stop = [False]
_wd_done = [None]


def _watchdog_loop():
    try:
        _watchdog_run()
    finally:
        lock = _wd_done[0]
        if lock is not None:
            try:
                lock.release()
            except Exception:
                pass


def _watchdog_run():
    ts = _ts_here()
    _wd_ts[0] = ts
    interval = _interval[0] / 1e9
    thr = _threshold[0]
    last_sweep = _mono()
    while _active[0] and not _wd_stop[0]:
        try:
            _sleep(interval)
            if not _active[0] or _wd_stop[0]:
                break
            now = _mono()
            frames = None
            for ots in list(_threads.values()):
                if ots is ts or not ots.cur or ots.waiting:
                    continue
                ss = ots.slice_start
                if now - ss <= thr:
                    continue
                if frames is None:
                    frames = sys._current_frames()
                f = frames.get(ots.ident)
                if ots.slice_start != ss or ots.waiting:
                    continue
                t = _mono()
                d = t - ts.last
                ts.last = t
                if ots.stall_seen != ss:
                    ots.stall_seen = ss
                    ts.buf += b"\x30" + uv(d) + uv(ots.tid) + uv(ots.cur) + uv(t - ss)
                    ts.n += 1
                    d = 0
                state = _syscall_state(ots.tid)
                sid = _intern_stack(ts, f)
                ts.buf += b"\x31" + uv(d) + uv(ots.tid) + uv(sid) + uv(state)
                ts.n += 1
            now = _mono()
            if now - last_sweep >= STEAL_FLUSH_NS // 2:
                last_sweep = now
                frames = None
                for ots in list(_threads.values()):
                    if ots is ts or len(ots.buf) <= ots.head:
                        continue
                    if now - ots.flushed_at < STEAL_FLUSH_NS:
                        continue
                    if frames is None:
                        frames = sys._current_frames()
                    if _safe_to_steal(frames.get(ots.ident)):
                        _flush(ots)
                frames = None
                if len(ts.buf) > ts.head and (now - ts.flushed_at >= OWNER_FLUSH_NS
                                              or len(ts.buf) > CHUNK_TARGET):
                    _flush(ts)
        except Exception:
            _count_error()
    # stopping: hand our own buffer to the file before finish() writes End
    try:
        if _active[0]:
            _flush(ts)
    except Exception:
        _count_error()


def start_watchdog():
    lock = _allocate_lock()
    lock.acquire()
    _wd_done[0] = lock
    _wd_stop[0] = False
    _start_thread(_watchdog_loop, ())


def stop_watchdog():
    lock = _wd_done[0]
    if lock is None:
        return
    _wd_stop[0] = True
    try:
        # the watchdog wakes up every sample interval; give it a few
        lock.acquire(True, max(0.05, 5 * _interval[0] / 1e9))
    except Exception:
        pass
    _wd_done[0] = None


# --- start / stop ------------------------------------------------------------------------

def open_trace(path, threshold_ns, interval_ns, native=True):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND
                 | getattr(os, "O_CLOEXEC", 0), 0o644)
    # move it out of the program's way: the program's own files keep the descriptor
    # numbers they would have had without the recorder
    try:
        import fcntl
        high = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 1000)
        os.close(fd)
        fd = high
    except Exception:
        pass
    _fd[0] = fd
    _threshold[0] = int(threshold_ns)
    _interval[0] = int(interval_ns)
    _started_pid[0] = os.getpid()
    os.write(fd, _wire.HEADER)
    if native:
        use_native()
    _active[0] = True
    write_metadata()


def finish():
    """Flush everything and write End. Safe to call more than once."""
    if not _active[0]:
        return
    if os.getpid() != _started_pid[0]:
        _active[0] = False
        return
    try:
        stop_watchdog()
        uninstall_tracer()
        me = _ts_here()
        frames = sys._current_frames()
        for ots in list(_threads.values()):
            if ots is me:
                continue
            if len(ots.buf) > ots.head and _safe_to_steal(frames.get(ots.ident)):
                _flush(ots)
        frames = None
        # The slice running when recording stops (the program's last, when it ends
        # without switching again) ends here: past the threshold it is a stall like any
        # other. Its call site comes from the watchdog's samples (no stack here would be
        # the program's: this runs from atexit or stop()).
        t = _mono()
        if me.cur and not me.waiting and t - me.slice_start > _threshold[0]:
            d = t - me.last
            me.last = t
            _stall_end(me, None, t, d, None)
        _flush(me)
        _active[0] = False
        e = _errors[0] - _errors_reported[0]
        buf = bytearray()
        n = 0
        if e > 0:
            buf += b"\x40\x00\x02" + uv(e)
            n += 1
        t = _mono()
        buf += b"\x7f" + uv(max(0, t - me.last)) + uv(_totals[0]) + uv(_totals[1])
        _write(_wire.chunk(_wire.KIND_EVENTS, me.last, me.tid, me.seq, bytes(buf)))
        me.seq += 1
    except Exception:
        _active[0] = False
    _close_trace_fd()


def _close_trace_fd():
    fd = _fd[0]
    _fd[0] = -1
    if fd >= 0:
        try:
            os.close(fd)
        except Exception:
            pass


def after_fork_in_child():
    """A forked child must not write into the parent's trace."""
    _active[0] = False
    _close_trace_fd()
