// A small, fast wrapper over the SQLite C API: connections, prepared statements, errors.
// Hot paths (binding integers, stepping) stay thin; everything else favours clear errors.

import CSQLite

/// An error from the store: SQLite's message, plus what we were doing.
public struct StoreError: Error, CustomStringConvertible, Sendable {
    /// What went wrong, ready to print (it names the database file).
    public var message: String
    /// An error with this message.
    public init(_ message: String) { self.message = message }
    /// The message.
    public var description: String { message }
}

// SQLITE_TRANSIENT tells SQLite to copy bound text; the C macro does not import into Swift.
let SQLITE_TRANSIENT_DESTRUCTOR = unsafeBitCast(-1, to: sqlite3_destructor_type.self)

/// One SQLite connection. Not thread-safe (opened with SQLITE_OPEN_NOMUTEX): each owner
/// uses it from one thread at a time.
public final class Database {
    package let handle: OpaquePointer
    /// The file name, for messages.
    public let path: String

    /// Opens (and for `readOnly == false` creates) a database file.
    public init(path: String, readOnly: Bool = false) throws(StoreError) {
        var db: OpaquePointer?
        let flags =
            (readOnly ? SQLITE_OPEN_READONLY : (SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE))
            | SQLITE_OPEN_NOMUTEX
        let rc = sqlite3_open_v2(path, &db, flags, nil)
        guard rc == SQLITE_OK, let db else {
            let msg = db.map { String(cString: sqlite3_errmsg($0)) } ?? String(cString: sqlite3_errstr(rc))
            if let db { sqlite3_close_v2(db) }
            throw StoreError("\(path): cannot open database: \(msg)")
        }
        self.handle = db
        self.path = path
        sqlite3_extended_result_codes(db, 1)
    }

    deinit { sqlite3_close_v2(handle) }

    /// Runs one or more statements that return no rows.
    public func exec(_ sql: String) throws(StoreError) {
        var err: UnsafeMutablePointer<CChar>?
        if sqlite3_exec(handle, sql, nil, nil, &err) != SQLITE_OK {
            let msg = err.map { String(cString: $0) } ?? lastError
            sqlite3_free(err)
            throw StoreError("\(path): \(msg)")
        }
    }

    /// Prepares one statement.
    public func prepare(_ sql: String) throws(StoreError) -> Statement {
        var stmt: OpaquePointer?
        guard sqlite3_prepare_v3(handle, sql, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &stmt, nil) == SQLITE_OK,
            let stmt
        else {
            throw StoreError("\(path): \(lastError)")
        }
        return Statement(stmt, db: self)
    }

    /// Prepares exactly one statement: what follows it may be blanks, semicolons and comments,
    /// not a second statement (`unclog sql` runs what the user typed).
    public func prepareSingle(_ sql: String) throws(StoreError) -> Statement {
        var stmt: OpaquePointer?
        var tail: UnsafePointer<CChar>?
        let rc = sql.withCString {
            sqlite3_prepare_v2(handle, $0, -1, &stmt, &tail) == SQLITE_OK
                ? (tail.map { String(cString: $0) } ?? "") : nil
        }
        guard let rest = rc, let stmt else {
            if stmt == nil && rc != nil { throw StoreError("empty SQL statement") }
            throw StoreError("SQL error: \(lastError)")
        }
        let s = Statement(stmt, db: self)
        var next: OpaquePointer?
        let nextRC = rest.withCString { sqlite3_prepare_v2(handle, $0, -1, &next, nil) }
        if nextRC != SQLITE_OK || next != nil {
            sqlite3_finalize(next)
            throw StoreError("SQL error: one statement at a time, please (found more after the first)")
        }
        return s
    }

    /// The value of the first column of the first row, as an integer (nil for no row or NULL).
    public func scalar(_ sql: String, _ args: [SQLValue] = []) throws(StoreError) -> Int64? {
        let s = try prepare(sql)
        try s.bind(args)
        guard try s.step() else { return nil }
        return s.isNull(0) ? nil : s.int(0)
    }

    package var lastError: String { String(cString: sqlite3_errmsg(handle)) }

    /// Rows changed by the last statement.
    public var changes: Int { Int(sqlite3_changes(handle)) }

    /// Aborts a running query from another thread (used by `unclog sql` on Ctrl-C).
    public func interrupt() { sqlite3_interrupt(handle) }
}

/// A value to bind or read.
public enum SQLValue: Sendable, Hashable {
    case null
    case int(Int64)
    case double(Double)
    case text(String)
    case blob([UInt8])
}

/// A prepared statement. `step()` returns true while there is a row.
public final class Statement {
    package let stmt: OpaquePointer
    unowned let db: Database

    package init(_ stmt: OpaquePointer, db: Database) {
        self.stmt = stmt
        self.db = db
    }

    deinit { sqlite3_finalize(stmt) }

    /// Binds an integer to parameter `index` (from 1).
    @inline(__always)
    public func bind(_ index: Int32, _ value: Int64) {
        sqlite3_bind_int64(stmt, index, value)
    }

    /// Binds text (a copy), or NULL for nil, to parameter `index` (from 1).
    public func bind(_ index: Int32, _ value: String?) {
        if let value {
            sqlite3_bind_text(stmt, index, value, -1, SQLITE_TRANSIENT_DESTRUCTOR)
        } else {
            sqlite3_bind_null(stmt, index)
        }
    }

    /// Binds NULL to parameter `index` (from 1).
    public func bindNull(_ index: Int32) { sqlite3_bind_null(stmt, index) }

    /// Resets the statement and binds `values` to its parameters 1, 2, …
    public func bind(_ values: [SQLValue]) throws(StoreError) {
        sqlite3_reset(stmt)
        for (i, v) in values.enumerated() {
            let idx = Int32(i + 1)
            switch v {
            case .null: sqlite3_bind_null(stmt, idx)
            case let .int(x): sqlite3_bind_int64(stmt, idx, x)
            case let .double(x): sqlite3_bind_double(stmt, idx, x)
            case let .text(s): sqlite3_bind_text(stmt, idx, s, -1, SQLITE_TRANSIENT_DESTRUCTOR)
            case let .blob(b):
                b.withUnsafeBytes {
                    _ = sqlite3_bind_blob(stmt, idx, $0.baseAddress, Int32($0.count), SQLITE_TRANSIENT_DESTRUCTOR)
                }
            }
        }
    }

    /// Executes a statement that returns no rows, then resets it for reuse.
    @inline(__always)
    public func run() throws(StoreError) {
        let rc = sqlite3_step(stmt)
        sqlite3_reset(stmt)
        guard rc == SQLITE_DONE || rc == SQLITE_ROW else {
            throw StoreError("\(db.path): \(db.lastError)")
        }
    }

    /// Advances to the next row; false when done.
    public func step() throws(StoreError) -> Bool {
        switch sqlite3_step(stmt) {
        case SQLITE_ROW: return true
        case SQLITE_DONE: return false
        default: throw StoreError("\(db.path): \(db.lastError)")
        }
    }

    /// Rewinds the statement to run again (bindings are kept).
    public func reset() { sqlite3_reset(stmt) }

    /// Columns of a row, and a column's name.
    public var columnCount: Int32 { sqlite3_column_count(stmt) }
    public func columnName(_ i: Int32) -> String { String(cString: sqlite3_column_name(stmt, i)) }
    /// Column `i` (from 0) of the current row: NULL or not, as an integer, a double, text
    /// (nil for NULL), or an optional integer.
    public func isNull(_ i: Int32) -> Bool { sqlite3_column_type(stmt, i) == SQLITE_NULL }
    public func int(_ i: Int32) -> Int64 { sqlite3_column_int64(stmt, i) }
    public func double(_ i: Int32) -> Double { sqlite3_column_double(stmt, i) }
    public func text(_ i: Int32) -> String? {
        guard let p = sqlite3_column_text(stmt, i) else { return nil }
        return String(cString: p)
    }
    public func optInt(_ i: Int32) -> Int64? { isNull(i) ? nil : int(i) }

    /// The column as a typed value.
    public func value(_ i: Int32) -> SQLValue {
        switch sqlite3_column_type(stmt, i) {
        case SQLITE_INTEGER: return .int(sqlite3_column_int64(stmt, i))
        case SQLITE_FLOAT: return .double(sqlite3_column_double(stmt, i))
        case SQLITE_TEXT: return .text(text(i) ?? "")
        case SQLITE_BLOB:
            let n = Int(sqlite3_column_bytes(stmt, i))
            guard n > 0, let p = sqlite3_column_blob(stmt, i) else { return .blob([]) }
            return .blob(Array(UnsafeRawBufferPointer(start: p, count: n)))
        default: return .null
        }
    }

    /// True when the statement cannot change the database (checked before `unclog sql` runs it).
    public var isReadOnly: Bool { sqlite3_stmt_readonly(stmt) != 0 }
}

/// Buffers rows of integer (or NULL) columns and inserts them `rowsPerStatement` at a time
/// through one multi-row prepared statement: per-statement overhead and the per-bind
/// connection work are what limit SQLite bulk loads (64 rows per step, as in the raw-insert
/// ceiling `make bench` measures: Benchmarks/sqlite-ceiling.c).
package final class BatchInserter {
    private let db: Database
    private let columns: Int
    private let rowsPerStatement: Int
    private let wide: Statement
    private let single: Statement
    private var values: [Int64]
    private var nulls: [Bool]
    private var rows = 0
    package private(set) var inserted = 0

    /// `NULL` is written for a value equal to `BatchInserter.null`.
    package static let null = Int64.min

    package init(
        _ db: Database, table: String, columns: [String], rowsPerStatement: Int = 64, orIgnore: Bool = false
    ) throws(StoreError) {
        self.db = db
        self.columns = columns.count
        self.rowsPerStatement = rowsPerStatement
        let placeholders = "(" + Array(repeating: "?", count: columns.count).joined(separator: ",") + ")"
        let head = "INSERT \(orIgnore ? "OR IGNORE " : "")INTO \(table) (\(columns.joined(separator: ","))) VALUES "
        wide = try db.prepare(head + Array(repeating: placeholders, count: rowsPerStatement).joined(separator: ","))
        single = try db.prepare(head + placeholders)
        values = [Int64](repeating: 0, count: columns.count * rowsPerStatement)
        nulls = []
    }

    /// Adds one row; `row` must have exactly one value per column.
    @inline(__always)
    package func add(_ row: Int64...) throws(StoreError) {
        let base = rows * columns
        for i in 0..<columns { values[base + i] = row[i] }
        rows += 1
        if rows == rowsPerStatement { try flushWide() }
    }

    /// Adds one row from a fixed buffer (avoids the variadic array in the hottest loops).
    @inline(__always)
    package func add8(
        _ a: Int64, _ b: Int64, _ c: Int64, _ d: Int64, _ e: Int64, _ f: Int64, _ g: Int64, _ h: Int64
    ) throws(StoreError) {
        let base = rows * columns
        values.withUnsafeMutableBufferPointer { v in
            v[base] = a; v[base + 1] = b; v[base + 2] = c; v[base + 3] = d
            v[base + 4] = e; v[base + 5] = f; v[base + 6] = g; v[base + 7] = h
        }
        rows += 1
        if rows == rowsPerStatement { try flushWide() }
    }

    private func flushWide() throws(StoreError) {
        let stmt = wide.stmt
        values.withUnsafeBufferPointer { v in
            for i in 0..<(columns * rowsPerStatement) {
                if v[i] == BatchInserter.null {
                    sqlite3_bind_null(stmt, Int32(i + 1))
                } else {
                    sqlite3_bind_int64(stmt, Int32(i + 1), v[i])
                }
            }
        }
        try wide.run()
        inserted += rows
        rows = 0
    }

    /// Inserts the rows still buffered.
    package func flush() throws(StoreError) {
        for r in 0..<rows {
            for c in 0..<columns {
                let v = values[r * columns + c]
                if v == BatchInserter.null { single.bindNull(Int32(c + 1)) } else { single.bind(Int32(c + 1), v) }
            }
            try single.run()
        }
        inserted += rows
        rows = 0
    }
}
