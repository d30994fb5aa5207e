"""unclog's start-up hook, put on PYTHONPATH by `unclog record`.

It records the program from interpreter start-up, then hides itself: PYTHONPATH and
the UNCLOG_* variables are restored/removed from os.environ (child processes are not
recorded into the same file and see the user's environment), this directory is
removed from sys.path, and any other `sitecustomize` later on sys.path is run, as
Python would have done without us.
"""


def _unclog_boot():
    import os
    import sys

    here = os.path.dirname(os.path.abspath(__file__))
    env = os.environ
    output = env.get("UNCLOG_OUTPUT")
    if output:
        # restore the user's PYTHONPATH for the program and its children
        if "UNCLOG_ORIG_PYTHONPATH" in env:
            env["PYTHONPATH"] = env["UNCLOG_ORIG_PYTHONPATH"]
        else:
            env.pop("PYTHONPATH", None)

        def _ns(value, default):
            try:
                return int(value)
            except (TypeError, ValueError):  # unset, or not a number
                return default

        threshold = env.get("UNCLOG_THRESHOLD_NS")
        interval = env.get("UNCLOG_SAMPLE_INTERVAL_NS")
        options = {k: env[k] for k in ("UNCLOG_PURE_PYTHON", "UNCLOG_CACHE_DIR", "UNCLOG_CC") if env.get(k)}
        for k in [k for k in env if k.startswith("UNCLOG_")]:
            del env[k]
        try:
            import unclog_recorder
            from unclog_recorder import _defaults, _native

            _native.OPTIONS.update(options)
            unclog_recorder._start(
                output,
                _ns(threshold, _defaults.DEFAULT_THRESHOLD_NS),
                _ns(interval, _defaults.DEFAULT_SAMPLE_INTERVAL_NS),
            )
        except Exception as e:  # the program must run anyway
            try:
                sys.stderr.write("unclog: recorder not started: %s\n" % (e,))
            except Exception:
                pass

    # hide this directory and chain to the next sitecustomize, if any
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != here]
    me = sys.modules.pop("sitecustomize", None)
    try:
        import importlib

        importlib.import_module("sitecustomize")
    except ModuleNotFoundError as e:
        if e.name != "sitecustomize":
            raise
    if "sitecustomize" not in sys.modules:
        # no other one: the import system wants a module under this name back
        sys.modules["sitecustomize"] = me


_unclog_boot()
del _unclog_boot
