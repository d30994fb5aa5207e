// The Python recorder (eventlet, gevent) as a package resource: `python/` holds
// `sitecustomize.py` and the `unclog_recorder` package that the launcher puts on PYTHONPATH.
// This target holds no logic; the recorder runs inside the recorded Python process.

import Foundation

/// Where the Python recorder's files are.
public enum PythonRecorder {
    /// The directory holding `sitecustomize.py` and `unclog_recorder/`, or nil when the
    /// resource bundle is missing (a binary copied away from its build folder).
    public static var directory: String? {
        Bundle.module.path(forResource: "python", ofType: nil)
    }
}
