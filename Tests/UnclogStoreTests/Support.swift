// Shared helpers for the store tests: importing a scripted trace (UnclogTestSupport) and row
// access to the imported database.

import CSQLite
import Foundation
import Testing
import UnclogImport
import UnclogQuery
import UnclogStore
import UnclogTestSupport
import UnclogTrace

/// Milliseconds in nanoseconds.
func ms(_ v: Int64) -> Int64 { v * 1_000_000 }

/// Imports `trace` (written to `dir/name.trace`) into `dir/name.db` or `db`.
@discardableResult
func importTrace(
    _ trace: ScriptedTrace, in dir: TempDir, name: String = "t", db: String? = nil,
    replace: Bool = false
) throws -> ImportSummary {
    let path = trace.write(to: dir.file(name + ".trace"))
    return try TraceImporter.run(ImportOptions(tracePath: path, databasePath: db ?? dir.file(name + ".db"), replace: replace))
}

/// The key of a recorder id in trace `t` (schema convention, see StoreKey).
func key(_ id: Int64, trace t: Int64 = 1) -> Int64 { StoreKey.object(trace: t, id: id) }

/// The id of the `n`-th importer-created row of trace `t` (schema convention, see StoreKey).
func rowID(_ n: Int64, trace t: Int64 = 1) -> Int64 { StoreKey.row(trace: t, n: n) }

extension TraceStore {
    /// All rows of a query as SQL values.
    func rows(_ sql: String, _ args: [SQLValue] = []) throws -> [[SQLValue]] {
        let s = try db.prepare(sql)
        try s.bind(args)
        var out: [[SQLValue]] = []
        while try s.step() { out.append((0..<s.columnCount).map { s.value($0) }) }
        return out
    }

    /// The one integer a query returns (0 for NULL).
    func int(_ sql: String, _ args: [SQLValue] = []) throws -> Int64 {
        let r = try rows(sql, args)
        guard case let .int(v)? = r.first?.first else { return 0 }
        return v
    }

    /// Row counts of every table, to check that an operation changed nothing.
    func tableCounts() throws -> [String: Int64] {
        var out: [String: Int64] = [:]
        for row in try rows("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name") {
            guard case let .text(name) = row[0] else { continue }
            out[name] = try int("SELECT COUNT(*) FROM \"\(name)\"")
        }
        return out
    }
}

/// A SQL integer or NULL as an optional.
func opt(_ v: SQLValue) -> Int64? {
    if case let .int(x) = v { return x }
    return nil
}

extension ResultTable {
    /// Cell `column` of row `row` as CSV text (raw numbers).
    func cell(_ row: Int, _ column: String) -> String {
        guard let i = columns.firstIndex(of: column) else { return "<no column \(column)>" }
        return rows[row][i].csv
    }

    /// The row whose `column` reads `value`.
    func row(where column: String, is value: String) -> Int? {
        guard let i = columns.firstIndex(of: column) else { return nil }
        return rows.firstIndex { $0[i].csv == value }
    }
}

/// A slice as tests write it (SliceRow has no public initializer).
struct Slice: Equatable, CustomStringConvertible {
    var gtKey: Int64
    var threadKey: Int64
    var readyNs: Int64?
    var startNs: Int64
    var endNs: Int64
    var reason: Int64
    var description: String {
        "gt \(StoreKey.id(ofObject: gtKey)) on \(StoreKey.id(ofObject: threadKey)) [\(startNs), \(endNs)] ready \(readyNs.map(String.init) ?? "nil") reason \(reason)"
    }
}

extension Array where Element == SliceRow {
    var plain: [Slice] {
        map {
            Slice(
                gtKey: $0.gtKey, threadKey: $0.threadKey, readyNs: $0.readyNs, startNs: $0.startNs, endNs: $0.endNs,
                reason: $0.reason)
        }
    }
}

/// A trace imported once and shared by the tests that only read it (imports dominate the
/// run time of this suite in debug builds). Tests must not write to it; the SQL tests check
/// that its bytes never change.
final class Fixture: @unchecked Sendable {
    let dir: TempDir
    let path: String
    private let result: Result<ImportSummary, any Error>
    /// The database file right after the import.
    let bytes: [UInt8]

    init(_ make: () -> ScriptedTrace) {
        let d = TempDir()
        dir = d
        path = d.file("t.db")
        let trace = make()
        result = Result { try importTrace(trace, in: d) }
        bytes = contents(path)
    }

    var summary: ImportSummary { get throws { try result.get() } }
    func store() throws -> TraceStore {
        _ = try result.get()
        return try TraceStore(path: path)
    }

    static let slices = Fixture { slicesTrace() }
    static let stalls = Fixture { StallScenario().trace }
    static let top = Fixture { topTrace() }
}
