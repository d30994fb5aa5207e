"""Build and load the native switch tracer (_fast.c) on first use.

The C file uses only the Python stable ABI. It is compiled with the system `cc`
into a cache directory ($UNCLOG_CACHE_DIR at start-up, else $XDG_CACHE_HOME/unclog,
else ~/.cache/unclog, else the temp dir), keyed by a hash of the source and the
interpreter's ABI, and loaded as an extension module. No compiler, no headers, or
any failure: None is returned and the pure-Python tracer is used.

No module is imported here that the program might want to monkey-patch later
(subprocess, threading…): cc is started with os.posix_spawn.
"""

import hashlib
import os
import sys
import sysconfig

# Options read from the environment by sitecustomize before it removes the UNCLOG_*
# variables (UNCLOG_PURE_PYTHON, UNCLOG_CACHE_DIR, UNCLOG_CC); API users may set them.
OPTIONS = {}

_HERE = os.path.dirname(os.path.abspath(__file__))
_SRC = os.path.join(_HERE, "_fast.c")


def _cache_dirs():
    env = OPTIONS.get("UNCLOG_CACHE_DIR") or os.environ.get("UNCLOG_CACHE_DIR")
    if env:
        yield env
    xdg = os.environ.get("XDG_CACHE_HOME")
    if xdg:
        yield os.path.join(xdg, "unclog")
    home = os.path.expanduser("~")
    if home and home != "~":
        yield os.path.join(home, ".cache", "unclog")
    yield os.path.join(os.environ.get("TMPDIR", "/tmp"), "unclog-cache-%d" % os.getuid())


def _find_cc():
    for name in (OPTIONS.get("UNCLOG_CC") or os.environ.get("UNCLOG_CC"), "cc", "gcc", "clang"):
        if not name:
            continue
        if os.path.isabs(name):
            if os.access(name, os.X_OK):
                return name
            continue
        for d in os.environ.get("PATH", "/usr/bin:/bin").split(os.pathsep):
            p = os.path.join(d or ".", name)
            if os.access(p, os.X_OK) and not os.path.isdir(p):
                return p
    return None


def _compile(cc, include, out):
    tmp = "%s.%d.tmp" % (out, os.getpid())
    args = [
        cc,
        "-O2",
        "-shared",
        "-fPIC",
        "-fvisibility=hidden",
        "-Werror=implicit-function-declaration",
        "-I",
        include,
        "-o",
        tmp,
        _SRC,
    ]
    devnull = os.devnull
    actions = [
        (os.POSIX_SPAWN_OPEN, 1, devnull, os.O_WRONLY, 0),
        (os.POSIX_SPAWN_OPEN, 2, devnull, os.O_WRONLY, 0),
        (os.POSIX_SPAWN_OPEN, 0, devnull, os.O_RDONLY, 0),
    ]
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C"}
    pid = os.posix_spawn(cc, args, env, file_actions=actions)
    while True:
        try:
            _, status = os.waitpid(pid, 0)
            break
        except InterruptedError:
            continue
    if status != 0 or not os.path.exists(tmp):
        try:
            os.unlink(tmp)
        except OSError:
            pass
        return False
    os.rename(tmp, out)  # atomic: concurrent recorders never load a half-written file
    return True


def load():
    """The _unclog_fast module, or None."""
    if OPTIONS.get("UNCLOG_PURE_PYTHON") or os.environ.get("UNCLOG_PURE_PYTHON"):
        return None
    if not hasattr(os, "posix_spawn"):
        return None
    try:
        include = sysconfig.get_paths().get("include")
        if not include or not os.path.exists(os.path.join(include, "Python.h")):
            return None
        with open(_SRC, "rb") as f:
            src = f.read()
        key = hashlib.sha256(src + repr((sys.version, sys.platform, include)).encode()).hexdigest()[:16]
        name = "_unclog_fast-%s.so" % key
        path = None
        for d in _cache_dirs():
            p = os.path.join(d, name)
            if os.path.exists(p):
                path = p
                break
        if path is None:
            cc = _find_cc()
            if cc is None:
                return None
            for d in _cache_dirs():
                try:
                    os.makedirs(d, exist_ok=True)
                    if not os.access(d, os.W_OK):
                        continue
                    p = os.path.join(d, name)
                    if _compile(cc, include, p):
                        path = p
                        break
                    return None  # the compiler failed: it will fail elsewhere too
                except OSError:
                    continue
        if path is None:
            return None
        import importlib.machinery
        import importlib.util

        loader = importlib.machinery.ExtensionFileLoader("_unclog_fast", path)
        spec = importlib.util.spec_from_file_location("_unclog_fast", path, loader=loader)
        mod = importlib.util.module_from_spec(spec)
        loader.exec_module(mod)
        return mod
    except Exception:
        return None
