"""The watchdog: a raw OS thread that notices stalls and flushes idle buffers.

Every sample interval it checks each recording thread: a greenthread running past the
threshold gets `StallBegin` once and a `StallSample` (its stack and the thread's
system-call state) per interval. Every STEAL_FLUSH_NS / 2 it flushes buffers that
have waited STEAL_FLUSH_NS when that is safe (`_writer.safe_to_steal`), so a program
that stalls or dies still leaves its events in the file. It is started with the original
`_thread.start_new_thread` and sleeps with the original `time.sleep` (`_originals`):
invisible to `threading.enumerate()` and never a greenthread.
"""

import os
import sys

from . import _state, _wire
from ._intern import intern_stack
from ._originals import mono, sleep, start_thread, allocate_lock
from ._state import CHUNK_TARGET, OWNER_FLUSH_NS, STEAL_FLUSH_NS, count_error
from ._threads import ts_here
from ._wire import EV_STALL_BEGIN, EV_STALL_SAMPLE, uv
from ._writer import flush, safe_to_steal

# the shared state, bound by assignment (see _state)
active = _state.active
threshold = _state.threshold
interval = _state.interval
threads = _state.threads

_STALL_BEGIN = _wire.CODE[EV_STALL_BEGIN]  # dt follows
_STALL_SAMPLE = _wire.CODE[EV_STALL_SAMPLE]


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


_stop = [False]
_done = [None]  # a lock the watchdog releases when it ends


def _loop():
    try:
        _run()
    finally:
        lock = _done[0]
        if lock is not None:
            try:
                lock.release()
            except Exception:
                pass


def _run():
    ts = ts_here()
    period = interval[0] / 1e9
    thr = threshold[0]
    last_sweep = mono()
    while active[0] and not _stop[0]:
        try:
            sleep(period)
            if not active[0] or _stop[0]:
                break
            now = mono()
            frames = None
            for ots in list(threads.values()):
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
                t = mono()
                d = t - ts.last
                ts.last = t
                if ots.stall_seen != ss:
                    ots.stall_seen = ss
                    ts.buf += _STALL_BEGIN + uv(d) + uv(ots.tid) + uv(ots.cur) + uv(t - ss)
                    ts.n += 1
                    d = 0
                state = _syscall_state(ots.tid)
                sid = intern_stack(ts, f)
                ts.buf += _STALL_SAMPLE + uv(d) + uv(ots.tid) + uv(sid) + uv(state)
                ts.n += 1
            now = mono()
            if now - last_sweep >= STEAL_FLUSH_NS // 2:
                last_sweep = now
                frames = None
                for ots in list(threads.values()):
                    if ots is ts or len(ots.buf) <= ots.head:
                        continue
                    if now - ots.flushed_at < STEAL_FLUSH_NS:
                        continue
                    if frames is None:
                        frames = sys._current_frames()
                    if safe_to_steal(frames.get(ots.ident)):
                        flush(ots)
                frames = None
                if len(ts.buf) > ts.head and (
                    now - ts.flushed_at >= OWNER_FLUSH_NS or len(ts.buf) > CHUNK_TARGET
                ):
                    flush(ts)
        except Exception:
            count_error()
    # stopping: hand our own buffer to the file before finish() writes End
    try:
        if active[0]:
            flush(ts)
    except Exception:
        count_error()


def start():
    lock = allocate_lock()
    lock.acquire()
    _done[0] = lock
    _stop[0] = False
    start_thread(_loop, ())


def stop():
    lock = _done[0]
    if lock is None:
        return
    _stop[0] = True
    try:
        # the watchdog wakes up every sample interval; give it a few
        lock.acquire(True, max(0.05, 5 * interval[0] / 1e9))
    except Exception:
        pass
    _done[0] = None
