import os
import re
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
RECORDER = os.path.join(ROOT, "Sources", "UnclogPythonRecorder", "python")
PROGRAMS = os.path.join(HERE, "programs")
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "schema"))  # trace_reader: the reader written from the spec

import trace_reader  # noqa: E402,F401

THRESHOLD_NS = 50_000_000
INTERVAL_NS = 10_000_000

# The recorder has two switch tracers that encode the same events: the native one (_fast.c,
# the default) and the pure-Python one. `make test-python-pure` runs every test with
# UNCLOG_PURE_PYTHON=1 in the environment; each recorded program then gets it too.
PURE_PYTHON = bool(os.environ.get("UNCLOG_PURE_PYTHON"))
TRACER = "python" if PURE_PYTHON else "native"  # metadata `recorder_tracer` expected
TRACER_ENV = {"UNCLOG_PURE_PYTHON": "1"} if PURE_PYTHON else {}


def recorder_env(trace, threshold_ns=THRESHOLD_NS, interval_ns=INTERVAL_NS, base=None):
    """The environment `unclog record` gives the program (see the launcher contract)."""
    env = dict(os.environ if base is None else base)
    orig = env.get("PYTHONPATH")
    if orig is None:
        env.pop("UNCLOG_ORIG_PYTHONPATH", None)
        env["PYTHONPATH"] = RECORDER
    else:
        env["UNCLOG_ORIG_PYTHONPATH"] = orig
        env["PYTHONPATH"] = RECORDER + os.pathsep + orig
    env["UNCLOG_OUTPUT"] = str(trace)
    env["UNCLOG_THRESHOLD_NS"] = str(threshold_ns)
    env["UNCLOG_SAMPLE_INTERVAL_NS"] = str(interval_ns)
    env.update(TRACER_ENV)
    return env


def plain_env(base=None, tracer=False):
    """No UNCLOG_* variable; with tracer=True, the one choosing this run's tracer (for
    `unclog record`, or a program that starts the recorder itself)."""
    env = dict(os.environ if base is None else base)
    for k in list(env):
        if k.startswith("UNCLOG_"):
            del env[k]
    if tracer:
        env.update(TRACER_ENV)
    return env


def run_program(args, trace=None, env=None, timeout=60, tracer=False, **kw):
    """Run a program recorded into `trace`, or else plainly (tracer: see plain_env)."""
    base = env
    e = recorder_env(trace, base=base) if trace is not None else plain_env(base, tracer)
    return subprocess.run(
        [sys.executable, "-W", "ignore"] + list(args),
        env=e,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        timeout=timeout,
        **kw,
    )


def marker_lines(path):
    """{name: line} for `# BLOCK:name` markers, and the list of `# SHORT` lines."""
    blocks, short = {}, []
    with open(path) as f:
        for i, line in enumerate(f, 1):
            m = re.search(r"#\s*BLOCK:(\w+)", line)
            if m:
                blocks[m.group(1)] = i
            if re.search(r"#\s*SHORT\b", line):
                short.append(i)
    return blocks, short


@pytest.fixture
def tracefile(tmp_path):
    return tmp_path / "trace.bin"
