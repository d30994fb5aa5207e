"""Opening and ending a recording: the trace file, `End`, and forks.

`open_trace` writes the header and the first metadata chunk (loading the native tracer
first, so the metadata says which tracer records). `finish` (stop() or atexit) flushes
every buffer it safely can, ends the running slice, and writes `End`. A forked child
closes its copy of the file descriptor and records nothing.
"""

import os
import sys

from . import _state, _watchdog, _wire
from ._originals import mono
from ._threads import ts_here
from ._tracer import use_native, uninstall_tracer, stall_end
from ._writer import flush, safe_to_steal, write, write_metadata, end_payload

# the shared state, bound by assignment (see _state)
active = _state.active
fd = _state.fd
threshold = _state.threshold
interval = _state.interval
started_pid = _state.started_pid
threads = _state.threads


def open_trace(path, threshold_ns, interval_ns, native=True):
    f = os.open(
        path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND | getattr(os, "O_CLOEXEC", 0), 0o644
    )
    # move it out of the program's way: the program's own files keep the descriptor
    # numbers they would have had without the recorder
    try:
        import fcntl

        high = fcntl.fcntl(f, fcntl.F_DUPFD_CLOEXEC, 1000)
        os.close(f)
        f = high
    except Exception:
        pass
    fd[0] = f
    threshold[0] = int(threshold_ns)
    interval[0] = int(interval_ns)
    started_pid[0] = os.getpid()
    os.write(f, _wire.HEADER)
    if native:
        use_native()
    active[0] = True
    write_metadata()


def finish():
    """Flush everything and write End. Safe to call more than once."""
    if not active[0]:
        return
    if os.getpid() != started_pid[0]:
        active[0] = False
        return
    try:
        _watchdog.stop()
        uninstall_tracer()
        me = ts_here()
        frames = sys._current_frames()
        for ots in list(threads.values()):
            if ots is me:
                continue
            if len(ots.buf) > ots.head and safe_to_steal(frames.get(ots.ident)):
                flush(ots)
        frames = None
        # The slice running when recording stops (the program's last, when it ends
        # without switching again) ends here: past the threshold it is a stall like any
        # other. Its call site comes from the watchdog's samples (no stack here would be
        # the program's: this runs from atexit or stop()).
        t = mono()
        if me.cur and not me.waiting and t - me.slice_start > threshold[0]:
            d = t - me.last
            me.last = t
            stall_end(me, None, t, d, None)
        flush(me)
        active[0] = False
        payload = end_payload(me, mono())
        write(_wire.chunk(_wire.KIND_EVENTS, me.last, me.tid, me.seq, payload))
        me.seq += 1
    except Exception:
        active[0] = False
    _close_trace_fd()


def _close_trace_fd():
    f = fd[0]
    fd[0] = -1
    if f >= 0:
        try:
            os.close(f)
        except Exception:
            pass


def after_fork_in_child():
    """A forked child must not write into the parent's trace."""
    active[0] = False
    _close_trace_fd()
