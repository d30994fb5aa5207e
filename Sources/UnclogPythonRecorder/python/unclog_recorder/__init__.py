"""unclog's Python recorder: finds what blocks Eventlet/gevent/greenlet programs.

Two-line use from a program::

    import unclog_recorder
    unclog_recorder.start("trace.bin", threshold=0.05)   # … stop() or exit

`unclog record -- python3 app.py` does the same without touching the program
(through the `sitecustomize` next to this package).
(The modules, one job each, are listed in ../README.md.)
"""

import atexit
import os

# imported eagerly (see sitecustomize): _originals captures the unpatched functions now
from . import _defaults, _hooks, _lifecycle, _state, _tracer, _watchdog, _wire  # noqa: F401

__version__ = _defaults.VERSION
__all__ = ["start", "stop", "is_recording"]

_atexit_registered = [False]
_fork_registered = [False]


def start(
    path,
    threshold=_defaults.DEFAULT_THRESHOLD_NS / 1e9,
    sample_interval=_defaults.DEFAULT_SAMPLE_INTERVAL_NS / 1e9,
):
    """Start recording into `path` (truncated). threshold / sample_interval in seconds
    (defaults 0.05 and 0.01).

    Returns True if recording started, False if it was already running.
    Raises OSError if the file cannot be created (the only error raised to the caller).
    """
    return _start(path, int(threshold * 1e9), int(sample_interval * 1e9))


def _start(path, threshold_ns, interval_ns):
    if _state.active[0]:
        return False
    _lifecycle.open_trace(path, threshold_ns, interval_ns)
    try:
        _hooks.install_import_hooks()
        _tracer.install_tracer()
        _watchdog.start()
        if not _atexit_registered[0]:
            _atexit_registered[0] = True
            atexit.register(_lifecycle.finish)
        if not _fork_registered[0] and hasattr(os, "register_at_fork"):
            _fork_registered[0] = True
            os.register_at_fork(after_in_child=_lifecycle.after_fork_in_child)
    except Exception:
        _state.count_error()
    return True


def stop():
    """Stop recording: flush every buffer, write the End event, close the file."""
    _lifecycle.finish()


def is_recording():
    return bool(_state.active[0])
