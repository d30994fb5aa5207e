// The version and the recording defaults, defined once for the Swift side (the CLI, the
// launcher, the reports). The recorders carry their own copy per language: the C core in
// `unclog_recorder.h` (UNCLOG_VERSION, UNCLOG_DEFAULT_*), the Python recorder in `_defaults.py`.

/// unclog's version and defaults.
public enum UnclogDefaults {
    /// The release version, shown by `unclog --version` and written by the recorders.
    public static let version = "0.1.0"
    /// A slice running longer than this is a stall, unless `--threshold` says otherwise.
    public static let thresholdNs: Int64 = 50_000_000
    /// How often the watchdog samples a stalled thread's stack, unless `--sample-interval` says otherwise.
    public static let sampleIntervalNs: Int64 = 10_000_000
}
