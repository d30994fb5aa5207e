// The store's schema (Resources/schema.sql, shipped as a resource), its version check, and
// opening a database for reading or creating one for the importer.

import Foundation

/// Creates and checks unclog databases.
public enum Schema {
    /// The `PRAGMA user_version` this build writes and reads.
    public static let version: Int64 = 1

    /// The text of schema.sql (the resource; schema/schema.sql links to it).
    public static func sql() throws(StoreError) -> String {
        guard let url = Bundle.module.url(forResource: "schema", withExtension: "sql"),
            let text = try? String(contentsOf: url, encoding: .utf8)
        else {
            throw StoreError("schema.sql is missing from unclog's resources (broken installation)")
        }
        return text
    }

    /// Creates every table and view in an empty database.
    static func create(_ db: Database) throws(StoreError) {
        try db.exec(try sql())
    }

    /// Starts the one transaction a bulk write (an import) runs in, tuned for speed: in a new,
    /// empty file, after creating the schema (no journal: a failed write deletes the file);
    /// in an existing unclog database, after checking it, with a journal so that a failure
    /// rolls back.
    package static func beginBulkWrite(_ db: Database, isNew: Bool) throws(StoreError) {
        // A 64 MiB page cache: smaller ones made the 10M-event import markedly slower (figures in
        // docs/benchmarks.md); the import's peak memory plateaus at about this much above its base.
        if isNew {
            try db.exec(
                "PRAGMA page_size=65536; PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF; PRAGMA cache_size=-65536; PRAGMA locking_mode=EXCLUSIVE;"
            )
            try db.exec("BEGIN;")
            try create(db)
        } else {
            try check(db)
            try db.exec("PRAGMA synchronous=OFF; PRAGMA cache_size=-65536; PRAGMA locking_mode=EXCLUSIVE; BEGIN IMMEDIATE;")
        }
    }

    /// Checks that `db` is a unclog database of this schema version.
    public static func check(_ db: Database) throws(StoreError) {
        let v: Int64?
        do {
            v = try db.scalar("PRAGMA user_version")
        } catch {
            throw StoreError(
                "\(db.path): not a unclog database (\(error.message.replacingOccurrences(of: db.path + ": ", with: "")))")
        }
        let hasTraces = (try? db.scalar("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'traces'")) ?? nil
        guard hasTraces != nil else {
            throw StoreError("\(db.path): not a unclog database (no traces table)")
        }
        guard v == version else {
            throw StoreError("\(db.path): database schema version \(v ?? 0), this unclog reads version \(version)")
        }
    }
}

extension Database {
    /// Opens an existing unclog database read-only and checks it is one of this schema version.
    public static func openStore(path: String) throws(StoreError) -> Database {
        var isDirectory = false
        guard fileExists(path, isDirectory: &isDirectory) else {
            throw StoreError("\(path): no such database (run `unclog import TRACE -o \(path)` first)")
        }
        if isDirectory { throw StoreError("\(path): is a directory, not a database") }
        let db = try Database(path: path, readOnly: true)
        try Schema.check(db)
        return db
    }
}

private func fileExists(_ path: String, isDirectory: inout Bool) -> Bool {
    var st = stat()
    guard stat(path, &st) == 0 else { return false }
    isDirectory = (st.st_mode & S_IFMT) == S_IFDIR
    return true
}
