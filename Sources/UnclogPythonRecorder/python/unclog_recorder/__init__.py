"""unclog's Python recorder: finds what blocks Eventlet/gevent/greenlet programs.

Two-line use from a program::

    import unclog_recorder
    unclog_recorder.start("trace.bin", threshold=0.05)   # … stop() or exit

`unclog record -- python3 app.py` does the same without touching the program
(through the `sitecustomize` next to this package).
"""
import atexit
import os

from . import _core, _hooks, _wire  # noqa: F401  (imported eagerly: see sitecustomize)

__version__ = _core.VERSION
__all__ = ["start", "stop", "is_recording"]

_atexit_registered = [False]
_fork_registered = [False]


def start(path, threshold=0.05, sample_interval=0.01):
    """Start recording into `path` (truncated). threshold / sample_interval in seconds.

    Returns True if recording started, False if it was already running.
    Raises OSError if the file cannot be created (the only error raised to the caller).
    """
    return _start(path, int(threshold * 1e9), int(sample_interval * 1e9))


def _start(path, threshold_ns, interval_ns):
    if _core._active[0]:
        return False
    _core.open_trace(path, threshold_ns, interval_ns)
    try:
        _hooks.install_import_hooks()
        _core.install_tracer()
        _core.start_watchdog()
        if not _atexit_registered[0]:
            _atexit_registered[0] = True
            atexit.register(_core.finish)
        if not _fork_registered[0] and hasattr(os, "register_at_fork"):
            _fork_registered[0] = True
            os.register_at_fork(after_in_child=_core.after_fork_in_child)
    except Exception:
        _core._count_error()
    return True


def stop():
    """Stop recording: flush every buffer, write the End event, close the file."""
    _core.finish()


def is_recording():
    return bool(_core._active[0])
