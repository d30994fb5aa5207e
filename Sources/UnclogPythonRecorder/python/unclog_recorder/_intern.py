"""Interning of strings, frames and stacks, and the classification of frames.

Ids are global to the file; a definition goes into the buffer of the thread that first
needs it (spec §4.3: a reader accepts a use before its definition). Frames are flagged
`internal` (eventlet, gevent, greenlet, the recorder) or `library` (standard library,
installed packages) here, so a stall is charged to the program's own line.
"""

import os

from . import _state, _wire
from ._state import new_id, count_error
from ._wire import EV_STRING, EV_FRAME, EV_STACK, uv, string

# the shared state, bound by assignment (see _state)
strings = _state.strings
frames = _state.frames
stacks = _state.stacks
codeinfo = _state.codeinfo
internal_dirs = _state.internal_dirs

_STRING = _wire.head(EV_STRING)
_FRAME = _wire.head(EV_FRAME)
_STACK = _wire.head(EV_STACK)

_PKG_DIR = os.path.dirname(os.path.abspath(__file__))


def intern_string(ts, s):
    sid = strings.get(s)
    if sid is None:
        sid = new_id()
        strings[s] = sid
        ts.buf += _STRING + uv(sid) + string(s)
        ts.n += 1
    return sid


def is_internal_file(filename):
    if filename.startswith(_PKG_DIR):
        return True
    for d in internal_dirs:
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
    if is_internal_file(filename):
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
            if d not in internal_dirs:
                internal_dirs.append(d)
                # frames interned before the module was known stay as they were:
                # they were interned while it was not imported, so they are not its.
    except Exception:
        count_error()


def intern_frame(ts, code, line):
    key = (code, line)
    fid = frames.get(key)
    if fid is not None:
        return fid
    info = codeinfo.get(code)
    if info is None:
        fn = getattr(code, "co_qualname", None) or code.co_name
        filename = code.co_filename
        flags = _frame_flags(filename)
        info = (intern_string(ts, fn), intern_string(ts, filename), flags)
        codeinfo[code] = info
    fid = new_id()
    frames[key] = fid
    ts.buf += (
        _FRAME + uv(fid) + uv(info[2]) + uv(info[0]) + uv(info[1]) + uv(line if line and line > 0 else 0)
    )
    ts.n += 1
    return fid


def intern_stack(ts, frame):
    """Stack id of `frame` and its callers (innermost first), defining what is new."""
    if frame is None:
        return 0
    fids = []
    f = frame
    get = frames.get
    while f is not None and len(fids) < 1024:
        code = f.f_code
        line = f.f_lineno
        fid = get((code, line))
        if fid is None:
            fid = intern_frame(ts, code, line)
        fids.append(fid)
        f = f.f_back
    return stack_id(ts, fids)


def intern_pseudo_stack(ts, fr):
    """gevent's spawning_stack: objects with f_code, f_lineno, f_back."""
    fids = []
    try:
        while fr is not None and len(fids) < 1024:
            fids.append(intern_frame(ts, fr.f_code, fr.f_lineno))
            fr = fr.f_back
    except Exception:
        count_error()
    if not fids:
        return 0
    return stack_id(ts, fids)


def stack_id(ts, fids):
    """The id of the stack of frame ids `fids` (innermost first), defined on first use."""
    key = tuple(fids)
    sid = stacks.get(key)
    if sid is None:
        sid = new_id()
        stacks[key] = sid
        out = bytearray(_STACK)
        out += uv(sid) + uv(len(fids))
        for fid in fids:
            out += uv(fid)
        ts.buf += out
        ts.n += 1
    return sid
