"""The recorder's shared state: what one recording needs across modules.

Mutable values are one-element lists (or dicts) bound once and never rebound, only
mutated: other modules bind the objects themselves as their own globals, so reading
them costs one global (or, in the pure-Python tracer, closure) lookup. They bind them by
assignment (`threads = _state.threads`), not `from ._state import threads`: CPython
3.11+ compiles a method call on an imported name (`threads.get(k)`) as an attribute load
then a call, assuming a module, which builds a bound method object on every call.
"""

from ._defaults import DEFAULT_THRESHOLD_NS, DEFAULT_SAMPLE_INTERVAL_NS

CHUNK_TARGET = 32 * 1024  # flush a thread's buffer when it grows past this
OWNER_FLUSH_NS = 250_000_000  # the owning thread flushes at least this often when it can
STEAL_FLUSH_NS = 500_000_000  # the watchdog flushes idle/stalled threads after this

active = [False]  # recording; a list so closures see changes without a global lookup
fd = [-1]  # the trace file
threshold = [DEFAULT_THRESHOLD_NS]
interval = [DEFAULT_SAMPLE_INTERVAL_NS]
started_pid = [0]  # the process that opened the trace (a forked child is not it)
threads = {}  # _thread.get_ident() -> per-thread state (_threads.TS)
strings = {}  # str -> id
frames = {}  # (code, line) -> id
stacks = {}  # tuple(frame ids) -> id
codeinfo = {}  # code -> (function sid, file sid, flags)
next_id = [0]  # the last id handed out (strings, frames, stacks, greenthreads)
errors = [0]  # recorder errors caught (never raised into the program)
errors_reported = [0]  # … of which written as `Dropped` reason 2
totals = [0, 0]  # chunks written (all kinds), events written
internal_dirs = []  # directory prefixes whose frames are marked internal
runtime = [None, None]  # runtime name, version written so far
meta_written = [False]  # the first metadata chunk (with the anchors) is out
prev_tracers = {}  # ident -> previous greenlet tracer (to restore on stop)
native_mod = [None]  # the native tracer's module (_fast.c) when in use
dead_getter_set = [False]  # greenlet's own `dead` getter handed to the native tracer


def new_id():
    n = next_id[0] + 1
    next_id[0] = n
    return n


def count_error():
    errors[0] += 1
