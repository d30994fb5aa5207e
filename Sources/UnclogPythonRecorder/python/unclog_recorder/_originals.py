"""The real clock, sleep and thread functions, captured before anyone patches them.

Under `unclog record` this module is imported at interpreter start-up, before any
monkey-patching; when a program patched time/_thread before starting the recorder
(API use), `_resolve()` gets the originals back from gevent or eventlet. The watchdog
must be a real OS thread sleeping for real, and timestamps must come from the real
monotonic clock. Bound once at import: other modules import these names directly.
"""

import _thread
import sys
import time as _time

mono = _time.monotonic_ns
wall = _time.time_ns
sleep = _time.sleep
start_thread = _thread.start_new_thread
get_ident = _thread.get_ident
get_native_id = getattr(_thread, "get_native_id", None)
allocate_lock = _thread.allocate_lock


def _resolve():
    """If the program monkey-patched time/_thread before importing us (API use), get
    the real ones back: the watchdog must be a real OS thread sleeping for real."""
    global sleep, start_thread, get_ident, get_native_id, allocate_lock
    try:
        gm = sys.modules.get("gevent.monkey")
        if gm is not None:
            get = gm.get_original
            sleep = get("time", "sleep")
            start_thread, get_ident, allocate_lock = get(
                "_thread", ["start_new_thread", "get_ident", "allocate_lock"]
            )
            try:
                get_native_id = get("_thread", "get_native_id")
            except Exception:
                pass
        ep = sys.modules.get("eventlet.patcher")
        if ep is not None:
            ot = ep.original("time")
            oth = ep.original("_thread")
            sleep = ot.sleep
            start_thread = oth.start_new_thread
            get_ident = oth.get_ident
            allocate_lock = oth.allocate_lock
            get_native_id = getattr(oth, "get_native_id", get_native_id)
    except Exception:
        pass


_resolve()
