"""Tests of the hook helpers the recorder applies to runtime functions (no mocks: the
functions patched are real ones, written to files, and real gevent's sleep)."""

import os
import subprocess
import sys
import textwrap
import traceback

import pytest

from conftest import RECORDER, recorder_env

sys.path.insert(0, RECORDER)
from unclog_recorder import _hooks  # noqa: E402


def load(tmp_path, name, src):
    path = tmp_path / (name + ".py")
    path.write_text(textwrap.dedent(src))
    ns = {"__name__": name}
    exec(compile(path.read_text(), str(path), "exec"), ns)
    return ns, path


def test_inline_call_runs_first_keeps_identity_and_line_numbers(tmp_path):
    ns, path = load(
        tmp_path,
        "mod_ok",
        '''
        def sleep(seconds=0, ref=True):
            """doc"""
            x = seconds * 2
            raise ValueError(x)
    ''',
    )
    f = ns["sleep"]
    calls = []
    assert _hooks.inline_first_call(f, calls.append, "seconds")
    assert ns["sleep"] is f and f.__doc__ == "doc"
    with pytest.raises(ValueError) as e:
        f(21)
    assert calls == [21]
    # the traceback still names the file's line of the raise (line 5 of the file)
    last = traceback.extract_tb(e.value.__traceback__)[-1]
    assert (last.filename, last.lineno, last.line) == (str(path), 5, "raise ValueError(x)")


def test_inline_call_refuses_when_the_source_is_not_the_running_code(tmp_path):
    ns, path = load(
        tmp_path,
        "mod_stale",
        '''
        def sleep(seconds=0):
            return seconds + 1
    ''',
    )
    f = ns["sleep"]
    code = f.__code__
    # the file changed on disk after the function was loaded: patching from it would
    # silently replace the program's code with something else
    path.write_text("def sleep(seconds=0):\n    return seconds + 2\n")
    import linecache

    linecache.checkcache(str(path))
    assert not _hooks.inline_first_call(f, print, "seconds")
    assert f.__code__ is code and f(1) == 2
    # same code, moved down a line: patching would make tracebacks name wrong lines
    path.write_text("\n\ndef sleep(seconds=0):\n    return seconds + 1\n")
    linecache.checkcache(str(path))
    assert not _hooks.inline_first_call(f, print, "seconds")
    assert f.__code__ is code


def test_inline_call_refuses_closures_decorators_and_missing_arguments(tmp_path):
    ns, _ = load(
        tmp_path,
        "mod_shapes",
        '''
        def outer():
            k = 3
            def inner(seconds):
                return seconds + k
            return inner
        inner = outer()
        def same(f):
            return f
        @same
        def decorated(seconds):
            return seconds
        def other(delay):
            return delay
    ''',
    )
    for f, arg in ((ns["inner"], "seconds"), (ns["other"], "seconds")):
        code = f.__code__
        assert not _hooks.inline_first_call(f, print, arg)
        assert f.__code__ is code
    # a decorator that returns the function itself: the source is not the function's alone
    code = ns["decorated"].__code__
    assert not _hooks.inline_first_call(ns["decorated"], print, "seconds")
    assert ns["decorated"].__code__ is code


def test_gevent_sleep_is_patched_in_place_when_recording(tmp_path):
    """`from gevent import sleep` taken by the program is the very function that notes
    due times (so sleep-heavy programs pay no wrapper frame)."""
    prog = tmp_path / "p.py"
    prog.write_text(
        textwrap.dedent('''
        import gevent, gevent.hub
        from gevent import sleep
        print(sleep is gevent.hub.sleep, "__unclog_hook_sleep" in sleep.__code__.co_names)
        gevent.joinall([gevent.spawn(sleep, 0.01) for _ in range(3)])
    ''')
    )
    r = subprocess.run(
        [sys.executable, "-W", "ignore", str(prog)],
        env=recorder_env(tmp_path / "t.bin"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["True", "True"]
    assert os.path.getsize(tmp_path / "t.bin") > 0
