// The key scheme that lets several traces share one database (schema.sql, "Conventions"):
// an object the recorder names with an id gets the key `T << 32 | id`; a row the importer
// creates gets the id `T << 40 | n`. Every Swift site that builds such a key, or ranges over
// one trace's keys, goes through here (the notebooks' copy is `trace_range` in unclog_nb.py).

/// Keys and row ids of trace `T` in a unclog database.
public enum StoreKey {
    /// Trace ids stay below this, so that `T << 40 | n` fits in an Int64 with room to spare.
    public static let traceLimit: Int64 = 1 << 22

    /// The key of what the recorder calls `id` in trace `trace`: a string, frame, stack,
    /// image, OS thread or greenthread (`T << 32 | id`).
    @inlinable
    public static func object(trace: Int64, id: Int64) -> Int64 { trace << 32 | id }

    /// The key of greenthread `gt` of trace `trace` (an `object` key).
    @inlinable
    public static func greenthread(trace: Int64, id gt: Int64) -> Int64 { object(trace: trace, id: gt) }

    /// Every object key of trace `trace`.
    @inlinable
    public static func objects(trace: Int64) -> Range<Int64> { object(trace: trace, id: 0)..<object(trace: trace + 1, id: 0) }

    /// The recorder's id behind an object key.
    @inlinable
    public static func id(ofObject key: Int64) -> Int64 { key & 0xFFFF_FFFF }

    /// The id of the `n`-th row the importer created for trace `trace` (slices, I/O waits,
    /// stalls, samples: `T << 40 | n`).
    @inlinable
    public static func row(trace: Int64, n: Int64) -> Int64 { trace << 40 | n }

    /// Every importer-created row id of trace `trace`.
    @inlinable
    public static func rows(trace: Int64) -> Range<Int64> { row(trace: trace, n: 0)..<row(trace: trace + 1, n: 0) }
}
