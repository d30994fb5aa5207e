// The store's schema (schema/schema.sql, shipped as a resource) and its version check.

import Foundation

/// Creates and checks unclog databases.
public enum Schema {
    /// The `PRAGMA user_version` this build writes and reads.
    public static let version: Int64 = 1

    /// The text of schema/schema.sql.
    public static func sql() throws(StoreError) -> String {
        guard let url = Bundle.module.url(forResource: "schema", withExtension: "sql"),
              let text = try? String(contentsOf: url, encoding: .utf8) else {
            throw StoreError("schema.sql is missing from unclog's resources (broken installation)")
        }
        return text
    }

    /// Creates every table and view in an empty database.
    static func create(_ db: Database) throws(StoreError) {
        try db.exec(try sql())
    }

    /// Checks that `db` is a unclog database of this schema version.
    public static func check(_ db: Database) throws(StoreError) {
        let v: Int64?
        do {
            v = try db.scalar("PRAGMA user_version")
        } catch {
            throw StoreError("\(db.path): not a unclog database (\(error.message.replacingOccurrences(of: db.path + ": ", with: "")))")
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
