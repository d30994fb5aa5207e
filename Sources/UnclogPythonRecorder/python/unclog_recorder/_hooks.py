"""Hooks into greenlet, eventlet and gevent, applied when they are imported.

The wrappers here only call into the other modules for short mutations; they are
kept in this file, the one recorder file _writer.OWN_FILES leaves out, so that a hub
sitting in poll() inside one of them can still have its buffer flushed by the watchdog
(see _writer.safe_to_steal).
"""

import functools
import heapq
import sys
import time as _time

from . import _intern, _io, _naming, _originals, _state, _tracer, _writer
from ._wire import EV_SWITCH_IO, EV_SWITCH_OTHER

_mono = _time.monotonic_ns
_patched = set()

# --- import hook -------------------------------------------------------------------


class _PostImportFinder(object):
    """A meta-path finder that runs a hook after selected modules finish executing.

    It finds the real spec with the other finders and wraps only that loader
    instance's exec_module, so module objects, loaders and specs stay the real ones.
    """

    def __init__(self, hooks):
        self.hooks = hooks
        self._busy = set()

    def find_spec(self, name, path=None, target=None):
        hook = self.hooks.get(name)
        if hook is None or name in self._busy:
            return None
        self._busy.add(name)
        try:
            spec = None
            for finder in sys.meta_path:
                if finder is self:
                    continue
                fs = getattr(finder, "find_spec", None)
                if fs is None:
                    continue
                try:
                    spec = fs(name, path, target)
                except Exception:
                    spec = None
                if spec is not None:
                    break
            if spec is None or spec.loader is None:
                return None
            loader = spec.loader
            orig_exec = getattr(loader, "exec_module", None)
            if orig_exec is None:
                return spec

            exec_module = _make_exec_module(orig_exec, hook, loader)

            try:
                loader.exec_module = exec_module
            except Exception:
                return spec
            return spec
        finally:
            self._busy.discard(name)

    # Python < 3.4 protocol not needed (3.9+)


# The exec_module shim is compiled under importlib's own frame name so that it is as
# invisible as importlib: warnings.warn(stacklevel=…) skips it (a module's import-time
# warning still points at the program's import line) and import tracebacks drop it.
_SHIM_SOURCE = '''
def make(orig, hook, loader, run_hook):
    def exec_module(module):
        try:
            orig(module)
        finally:
            try:
                del loader.exec_module
            except Exception:
                pass
        run_hook(hook, module)
    return exec_module
'''
_shim_namespace = {}
exec(compile(_SHIM_SOURCE, "<frozen importlib._bootstrap_external>", "exec"), _shim_namespace)


def _make_exec_module(orig, hook, loader):
    return _shim_namespace["make"](orig, hook, loader, _run_hook)


def _run_hook(hook, module):
    try:
        hook(module)
    except Exception:
        _state.count_error()


_finder = None


def install_import_hooks():
    global _finder
    hooks = {
        "greenlet": _on_greenlet,
        "eventlet": _on_eventlet,
        "eventlet.hubs": _on_eventlet_hubs,
        "eventlet.hubs.hub": _on_eventlet_hub,
        "eventlet.hubs.poll": _on_eventlet_poll,
        "eventlet.hubs.epolls": _on_eventlet_poll,
        "eventlet.hubs.selects": _on_eventlet_selects,
        "eventlet.hubs.asyncio": _on_eventlet_asyncio,
        "eventlet.greenthread": _on_eventlet_greenthread,
        "gevent": _on_gevent,
        "gevent.hub": _on_gevent_hub,
    }
    # modules already imported (API use): apply their hooks now, in import order
    for name in (
        "greenlet",
        "eventlet.hubs.hub",
        "eventlet.hubs.poll",
        "eventlet.hubs.epolls",
        "eventlet.hubs.selects",
        "eventlet.hubs.asyncio",
        "eventlet.greenthread",
        "eventlet.hubs",
        "eventlet",
        "gevent.hub",
        "gevent",
    ):
        mod = sys.modules.get(name)
        if mod is not None:
            _run_hook(hooks[name], mod)
    if _finder is None:
        _finder = _PostImportFinder(hooks)
        sys.meta_path.insert(0, _finder)


def _version(modname):
    mod = sys.modules.get(modname)
    v = getattr(mod, "__version__", None)
    if v is None:
        try:
            from importlib import metadata

            v = metadata.version(modname)
        except Exception:
            v = ""
    return str(v)


# --- greenlet ----------------------------------------------------------------------


def _on_greenlet(mod):
    _intern.add_internal_module(mod)
    _writer.note_runtime("greenlet", _version("greenlet"))
    _tracer.install_tracer()


# --- eventlet ----------------------------------------------------------------------


def _on_eventlet(mod):
    _intern.add_internal_module(mod)
    _writer.note_runtime("eventlet", _version("eventlet"))


def _on_eventlet_hubs(mod):
    _intern.add_internal_module(mod)


def _on_eventlet_hub(mod):
    """Patch BaseHub: fire_timers (reason + ready time per timer) and run (tracer in
    the hub's thread)."""
    if "eventlet.hub" in _patched:
        return
    _patched.add("eventlet.hub")
    _intern.add_internal_module(mod)
    BaseHub = mod.BaseHub
    orig_fire = BaseHub.fire_timers
    orig_run = BaseHub.run
    monotonic = getattr(mod, "monotonic", None)
    tracer = _tracer
    active = _state.active
    threads = _state.threads
    get_ident = _originals.get_ident

    def fire_timers(self, when):
        ts = threads.get(get_ident()) if active[0] else None
        if ts is None or (monotonic is not None and self.clock is not monotonic):
            return orig_fire(self, when)
        # eventlet's BaseHub.fire_timers, plus: before each timer, tell the tracer
        # the switch it causes is a timer that became due at its scheduled time.
        t = self.timers
        heappop = heapq.heappop
        mark = ts.timer
        while t:
            next = t[0]
            exp = next[0]
            timer = next[1]
            if when < exp:
                break
            heappop(t)
            try:
                if timer.called:
                    self.timers_canceled -= 1
                else:
                    mark(exp)
                    timer()
            except self.SYSTEM_EXCEPTIONS:
                raise
            except:  # noqa: E722  (eventlet's own behaviour)
                self.squelch_timer_exception(timer, sys.exc_info())

    fire_timers.__doc__ = orig_fire.__doc__
    fire_timers._unclog_orig = orig_fire

    def run(self, *a, **kw):
        tracer.install_tracer()
        return orig_run(self, *a, **kw)

    functools.update_wrapper(run, orig_run)

    # only replace fire_timers when it is the version we know (same source)
    if getattr(orig_fire, "__code__", None) is not None and orig_fire.__code__.co_names[:3] == (
        "timers",
        "heapq",
        "heappop",
    ):
        BaseHub.fire_timers = fire_timers
    BaseHub.run = run


class _Proxy(object):
    """Stands in for an object (a module, a selector): every attribute but the ones a
    subclass defines is read from the original."""

    def __init__(self, orig):
        object.__setattr__(self, "_orig", orig)

    def __getattr__(self, name):
        return getattr(self._orig, name)


class _TimeProxy(_Proxy):
    """Stand-in for the `time` module inside an eventlet hub module: the hub's idle
    `time.sleep(seconds)` (no fds registered) is an I/O wait with no fds."""

    def sleep(self, seconds):
        ts = _io.io_begin(seconds)
        try:
            return self._orig.sleep(seconds)
        finally:
            _io.io_end(ts, 0)


class _SelectProxy(_Proxy):
    """Stand-in for `select` inside eventlet.hubs.selects: the select() call is the
    hub's I/O wait."""

    def select(self, r, w, x, timeout=None):
        ts = _io.io_begin(timeout)
        n = 0
        try:
            res = self._orig.select(r, w, x, timeout)
            n = len(set(res[0]) | set(res[1]) | set(res[2]))
            return res
        finally:
            _io.io_end(ts, n)


def _wrap_do_poll(cls):
    orig = cls.__dict__.get("do_poll")
    if orig is None or getattr(orig, "_unclog_orig", None) is not None:
        return

    def do_poll(self, seconds):
        ts = _io.io_begin(seconds)
        n = 0
        try:
            res = orig(self, seconds)
            n = len(res)
            return res
        finally:
            _io.io_end(ts, n)

    functools.update_wrapper(do_poll, orig)
    do_poll._unclog_orig = orig
    cls.do_poll = do_poll


def _on_eventlet_poll(mod):
    _intern.add_internal_module(mod)
    _wrap_do_poll(mod.Hub)
    t = getattr(mod, "time", None)
    if t is not None and not isinstance(t, _TimeProxy):
        mod.time = _TimeProxy(t)


def _on_eventlet_selects(mod):
    _intern.add_internal_module(mod)
    s = getattr(mod, "select", None)
    if s is not None and not isinstance(s, _SelectProxy):
        mod.select = _SelectProxy(s)
    t = getattr(mod, "time", None)
    if t is not None and not isinstance(t, _TimeProxy):
        mod.time = _TimeProxy(t)


class _SelectorProxy(_Proxy):
    """Stand-in for the selector of the asyncio loop that eventlet's asyncio hub runs:
    its select() is the hub's I/O wait. (Attributes set on it go to the selector: the
    loop owns it.)"""

    def __setattr__(self, name, value):
        setattr(self._orig, name, value)

    def select(self, timeout=None):
        ts = _io.io_begin(timeout)
        n = 0
        try:
            res = self._orig.select(timeout)
            n = len(res)
            return res
        finally:
            _io.io_end(ts, n)


def _on_eventlet_asyncio(mod):
    _intern.add_internal_module(mod)
    Hub = getattr(mod, "Hub", None)
    orig = getattr(Hub, "_post_initialize", None) if Hub is not None else None
    if orig is None or getattr(orig, "_unclog_orig", None) is not None:
        return

    def proxy_selector(hub):
        try:
            loop = getattr(hub, "loop", None)
            sel = getattr(loop, "_selector", None)  # asyncio's selector event loops
            if sel is not None and not isinstance(sel, _SelectorProxy) and hasattr(sel, "select"):
                loop._selector = _SelectorProxy(sel)
        except Exception:
            _state.count_error()

    def _post_initialize(self, *a, **kw):
        r = orig(self, *a, **kw)
        proxy_selector(self)
        return r

    functools.update_wrapper(_post_initialize, orig)
    _post_initialize._unclog_orig = orig
    Hub._post_initialize = _post_initialize
    # a hub this thread already runs (recording started from the API)
    hubs = sys.modules.get("eventlet.hubs")
    hub = getattr(getattr(hubs, "_threadlocal", None), "hub", None)
    if isinstance(hub, Hub):
        proxy_selector(hub)


def _spawn_wrapper(orig, func_index=0, skip_impl=False):
    note = _naming.note_spawn

    def spawn(*args, **kwargs):
        g = orig(*args, **kwargs)
        try:
            func = args[func_index] if len(args) > func_index else kwargs.get("func")
            # GreenPool.spawn_n runs its own _spawn_n_impl(func, …): name the real one
            if getattr(func, "__name__", "") == "_spawn_n_impl" and len(args) > func_index + 1:
                func = args[func_index + 1]
            target = g[1] if isinstance(g, tuple) else g
            note(target, func, 2)
        except Exception:
            _state.count_error()
        return g

    functools.update_wrapper(spawn, orig)
    spawn._unclog_orig = orig
    return spawn


def _on_eventlet_greenthread(mod):
    if "eventlet.greenthread" in _patched:
        return
    _patched.add("eventlet.greenthread")
    _intern.add_internal_module(mod)
    for name, idx in (("spawn", 0), ("spawn_n", 0), ("spawn_after", 1), ("spawn_after_local", 1)):
        orig = getattr(mod, name, None)
        if orig is not None and getattr(orig, "_unclog_orig", None) is None:
            setattr(mod, name, _spawn_wrapper(orig, idx))
    # the package may already have bound the originals (API use after import)
    pkg = sys.modules.get("eventlet")
    if pkg is not None:
        for name in ("spawn", "spawn_n", "spawn_after"):
            if (
                getattr(pkg, name, None) is not None
                and getattr(getattr(pkg, name), "_unclog_orig", None) is None
            ):
                new = getattr(mod, name, None)
                if new is not None and getattr(new, "_unclog_orig", None) is getattr(pkg, name):
                    setattr(pkg, name, new)


# --- gevent --------------------------------------------------------------------------


def _on_gevent(mod):
    _intern.add_internal_module(mod)
    _writer.note_runtime("gevent", _version("gevent"))
    # gevent.spawn is not wrapped: gevent records the spawn stack itself
    # (Greenlet.spawning_stack), and a wrapper frame would show in gevent's own
    # reports (its monitor thread prints spawn stacks).


def _on_gevent_hub(mod):
    if "gevent.hub" in _patched:
        return
    _patched.add("gevent.hub")
    _intern.add_internal_module(mod)
    Hub = mod.Hub
    orig_run = Hub.run
    orig_sleep = mod.sleep

    def run(self):
        core_attach_gevent_loop(self)
        return orig_run(self)

    functools.update_wrapper(run, orig_run)
    Hub.run = run

    fast = _state.native_mod[0]
    note_deadline = fast.note_deadline if fast is not None else _io.note_deadline

    # gevent.sleep is called on every switch of a sleep(0)-heavy program: the call that
    # notes the due time goes into sleep's own code (no wrapper frame: a Python wrapper
    # costs far more per call, docs/benchmarks.md). The wrapper is the fallback.
    if not inline_first_call(orig_sleep, note_deadline, "seconds"):

        def sleep(seconds=0, ref=True):
            note_deadline(seconds)
            return orig_sleep(seconds, ref)

        functools.update_wrapper(sleep, orig_sleep)
        sleep._unclog_orig = orig_sleep
        mod.sleep = sleep
        pkg = sys.modules.get("gevent")
        if pkg is not None and getattr(pkg, "sleep", None) is orig_sleep:
            pkg.sleep = sleep
    # a hub already running (API use): attach to its loop now
    try:
        hub = mod._get_hub() if hasattr(mod, "_get_hub") else None
        if hub is not None:
            core_attach_gevent_loop(hub)
    except Exception:
        _state.count_error()


def inline_first_call(func, hook, argname):
    """Make `func` call `hook(argname)` first, by recompiling its source with that one
    statement added and swapping its __code__. Same function object, so references
    taken before recording see it too; no extra frame on the stack.

    Done only when the source on disk provably is the running code (the unmodified
    source compiles to the same bytecode, constants and line table). The hook must
    never raise (the native note_deadline cannot; the pure-Python one catches
    everything). Returns False, changing nothing, otherwise."""
    try:
        import ast
        import inspect
        import textwrap
        import types

        code = func.__code__
        if code.co_freevars or argname not in code.co_varnames[: code.co_argcount]:
            return False
        lines, first = inspect.getsourcelines(func)
        src = textwrap.dedent("".join(lines))

        def compile_fn(tree):
            ast.increment_lineno(tree, first - 1)
            out = compile(tree, code.co_filename, "exec", dont_inherit=True)
            for c in out.co_consts:
                if isinstance(c, types.CodeType) and c.co_name == code.co_name:
                    return c
            return None

        pristine = compile_fn(ast.parse(src))
        lines_of = lambda c: getattr(c, "co_linetable", None) or c.co_lnotab  # noqa: E731
        if (
            pristine is None
            or pristine.co_code != code.co_code
            or pristine.co_consts != code.co_consts
            or pristine.co_firstlineno != code.co_firstlineno
            or lines_of(pristine) != lines_of(code)
        ):
            return False
        tree = ast.parse(src)
        fn = tree.body[0]
        if not isinstance(fn, ast.FunctionDef) or fn.decorator_list:
            return False
        at = (
            1
            if (
                fn.body
                and isinstance(fn.body[0], ast.Expr)
                and isinstance(getattr(fn.body[0], "value", None), ast.Constant)
                and isinstance(fn.body[0].value.value, str)
            )
            else 0
        )
        if at >= len(fn.body):
            return False
        name = "__unclog_hook_%s" % code.co_name
        call = ast.Expr(ast.Call(ast.Name(name, ast.Load()), [ast.Name(argname, ast.Load())], []))
        # the added statement shares the first statement's line: tracebacks and
        # coverage line numbers stay those of the file
        ast.copy_location(call, fn.body[at])
        ast.fix_missing_locations(call)
        fn.body.insert(at, call)
        patched = compile_fn(tree)
        if patched is None or patched.co_freevars != code.co_freevars:
            return False
        func.__globals__[name] = hook
        func.__code__ = patched
        return True
    except Exception:
        return False


_attached_loops = []


def core_attach_gevent_loop(hub):
    """prepare(MAXPRI) = callbacks phase starts; prepare(MINPRI) = I/O wait begins (after
    gevent's own prepare ran the callbacks); check(MAXPRI) = the wait returned."""
    _tracer.install_tracer()
    try:
        loop = hub.loop
        for entry in _attached_loops:
            if entry[0] is loop:
                return
        state = [None]

        def on_callbacks():
            try:
                if state[0] is not None:  # no check seen (first iteration)
                    pass
                _io.set_phase(EV_SWITCH_OTHER)
            except Exception:
                _state.count_error()

        def on_wait_begin():
            try:
                state[0] = _io.io_begin(None)
            except Exception:
                _state.count_error()

        def on_wait_end():
            try:
                ts = state[0]
                state[0] = None
                if ts is not None:
                    n = 0
                    try:
                        n = max(0, int(loop.pendingcnt) - 1)
                    except Exception:
                        pass
                    _io.io_end(ts, n, EV_SWITCH_IO)
            except Exception:
                _state.count_error()

        w1 = loop.prepare(ref=False, priority=loop.MAXPRI)
        w2 = loop.prepare(ref=False, priority=loop.MINPRI)
        w3 = loop.check(ref=False, priority=loop.MAXPRI)
        w1.start(on_callbacks)
        w2.start(on_wait_begin)
        w3.start(on_wait_end)
        _attached_loops.append((loop, w1, w2, w3))
    except Exception:
        _state.count_error()
