// `unclog sql` (TraceStore.query): read-only, one statement, clear errors; durations as
// users type them and as tables print them; output formats.

import Foundation
import Testing
import UnclogImport
import UnclogQuery
import UnclogStore
import UnclogTestSupport
import UnclogTrace

@Suite struct SQLQueryTests {
    func store() throws -> (TraceStore, String, TempDir) {
        // Shared with other suites, which only read it: it must stay as the import left it.
        let shared = Fixture.stalls
        #expect(contents(shared.path) == shared.bytes)
        return (try TraceStore(path: shared.path), shared.path, shared.dir)
    }

    @Test func selectsRows() throws {
        let (store, _, _) = try store()
        let t = try store.query("SELECT gt, name FROM greenthreads WHERE is_hub = 0 ORDER BY gt")
        #expect(t.columns == ["gt", "name"])
        #expect(t.rows.map { $0.map(\.csv) } == [["2", "worker-2"], ["3", "worker-3"], ["4", "worker-4"], ["5", "worker-5"]])
        #expect(t.rightAligned == ["gt"])
        // Views, a trailing semicolon, comments and leading blanks are fine.
        #expect(try store.query("  SELECT COUNT(*) AS n FROM victims;").rows.map { $0.map(\.csv) } == [["2"]])
        #expect(try store.query("SELECT 1 AS one; -- that's all").rows.map { $0.map(\.csv) } == [["1"]])
        #expect(try store.query("SELECT 1 AS one;\n\n  ;").rows.count == 1)
        #expect(try store.query("WITH x AS (SELECT 2 AS v) SELECT v FROM x").rows.map { $0.map(\.csv) } == [["2"]])
        #expect(try store.query("SELECT * FROM stalls", maxRows: 2).rows.count == 2)
        // Every value type renders.
        let v = try store.query("SELECT NULL AS n, 1.5 AS d, x'0aff' AS b, 'é\"' AS s")
        #expect(v.rows[0].map(\.json) == ["null", "1.5", "\"0aff\"", "\"é\\\"\""])
    }

    @Test(arguments: [
        "INSERT INTO traces (id) VALUES (9)",
        "DELETE FROM stalls",
        "UPDATE stalls SET duration_ns = 0",
        "DROP TABLE stalls",
        "DROP VIEW victims",
        "CREATE TABLE x (a)",
        "CREATE TEMP TABLE x (a)",
        "ATTACH DATABASE 'other.db' AS other",
        "DETACH DATABASE main",
        "PRAGMA user_version = 7",
        "PRAGMA journal_mode = WAL",
        "VACUUM",
        "REINDEX",
        "ANALYZE",
        "BEGIN IMMEDIATE",
    ])
    func writesAreRefused(sql: String) throws {
        let (store, path, dir) = try store()
        let before = contents(path)
        do {
            let t = try store.query(sql)
            Issue.record("`\(sql)` ran and returned \(t.rows.count) rows")
        } catch {
            #expect(error.message.hasPrefix("SQL error: "), "\(error.message)")
        }
        #expect(contents(path) == before)
        #expect(dir.listing() == ["t.db", "t.trace"], "\(dir.listing())")
        // The connection still works afterwards.
        #expect(try store.query("SELECT COUNT(*) FROM stalls").rows[0][0].csv == "4")
    }

    @Test func readOnlyPragmasAndExplainAreAllowed() throws {
        let (store, _, _) = try store()
        #expect(try store.query("PRAGMA user_version").rows[0][0].csv == "1")
        #expect(try store.query("PRAGMA table_info(stalls)").rows.count == 13)
        #expect(try !store.query("EXPLAIN QUERY PLAN SELECT * FROM stalls WHERE thread_key = 1").rows.isEmpty)
    }

    @Test func oneStatementAtATime() throws {
        let (store, path, _) = try store()
        let before = contents(path)
        for sql in ["SELECT 1; SELECT 2", "SELECT 1; DELETE FROM stalls", "SELECT 1;;SELECT 2", "SELECT 1; /* c */ SELECT 2"] {
            #expect {
                _ = try store.query(sql)
            } throws: { error in
                (error as? StoreError)?.message.contains("one statement at a time") == true
            }
        }
        #expect(contents(path) == before)
        #expect(try store.int("SELECT COUNT(*) FROM stalls") == 4)
    }

    @Test func errorsAreClear() throws {
        let (store, _, _) = try store()
        func message(_ sql: String) -> String {
            do { _ = try store.query(sql); return "<no error>" } catch { return error.message }
        }
        #expect(message("SELEC * FROM stalls") == "SQL error: near \"SELEC\": syntax error")
        #expect(message("SELECT nope FROM stalls") == "SQL error: no such column: nope")
        #expect(message("SELECT * FROM nope") == "SQL error: no such table: nope")
        #expect(message("") == "empty SQL statement")
        #expect(message("  -- only a comment") == "empty SQL statement")
        #expect(!message("SELECT * FROM stalls WHERE").contains("\n"))
    }

    @Test func storeRefusesWhatIsNotADatabase() throws {
        let dir = TempDir()
        #expect(throws: StoreError.self) { try TraceStore(path: dir.file("missing.db")) }
        #expect(throws: StoreError.self) { try TraceStore(path: dir.path) }
        do { _ = try TraceStore(path: dir.file("missing.db")) } catch {
            #expect(error.message.contains("no such database"))
        }
        #expect(dir.listing().isEmpty)  // opening does not create
    }
}

@Suite struct DurationTextTests {
    @Test(arguments: [
        ("200us", Int64(200_000)), ("50ms", 50_000_000), ("1.5s", 1_500_000_000), ("2m", 120_000_000_000),
        ("1h", 3_600_000_000_000), ("750ns", 750), ("0ms", 0), ("0.25ms", 250_000), ("10µs", 10_000),
        (" 3s ", 3_000_000_000), ("1.0005s", 1_000_500_000),
    ])
    func parses(text: String, ns: Int64) {
        #expect(DurationText.parse(text) == ns)
    }

    @Test(arguments: [
        "50", "-1s", "1.2.3s", "ms", "", "s", "1 s", "1e3ms", "5MS", "1.5", "fast", "1ms2", "+1s", "1d",
        "99999999999h", ".s",
    ])
    func rejects(text: String) {
        #expect(DurationText.parse(text) == nil, "\(text)")
    }

    @Test(arguments: [
        (Int64(0), "0ns"), (850, "850ns"), (999, "999ns"), (1_000, "1us"), (1_500, "1.5us"), (12_500, "12.5us"),
        (231_000_000, "231ms"), (1_520_000_000, "1.52s"), (60_000_000_000, "1m00s"), (185_000_000_000, "3m05s"),
        (-2_000_000, "-2ms"), (50_000_000, "50ms"), (999_999, "1ms"), (999_999_999, "1s"), (59_999_999_999, "1m00s"),
    ])
    func formats(ns: Int64, text: String) {
        #expect(DurationText.format(ns) == text)
    }

    /// What `format` prints, `parse` reads back (to the printed precision).
    @Test func formatParsesBack() {
        for ns: Int64 in [1, 999, 1_000, 12_345, 999_999, 1_000_000, 45_678_901, 1_000_000_000, 59_000_000_000] {
            let text = DurationText.format(ns)
            let back = DurationText.parse(text)
            #expect(back != nil, "\(text)")
            if let back { #expect(abs(Double(back - ns)) <= Double(ns) * 0.01, "\(ns) → \(text) → \(back)") }
        }
    }
}

@Suite struct OutputFormatTests {
    @Test func jsonCSVAndTable() throws {
        var t = ResultTable(columns: ["name", "n", "d"], rightAligned: ["n"])
        t.rows = [[.text("a,\"b\""), .int(5), .duration(1_500_000)], [.text(nil), .int(nil), .duration(7)]]
        let json = t.render(.json)
        let parsed = try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [[String: Any]]
        #expect(parsed?.count == 2)
        #expect(parsed?[0]["name"] as? String == "a,\"b\"")
        #expect(parsed?[0]["d"] as? Int == 1_500_000)
        #expect(parsed?[1]["name"] is NSNull)
        #expect(t.render(.csv) == "name,n,d\n\"a,\"\"b\"\"\",5,1500000\n,,7\n")
        #expect(t.render(.table) == "name   n  d\na,\"b\"  5  1.5ms\n          7ns\n")
        #expect(ResultTable(columns: ["x"]).render(.json) == "[]\n")
    }
}

@Suite struct FixedPointFormatting {
    @Test func negativeFractionsKeepTheirSign() {
        #expect(Cell.percent(-0.9023).text == "-90.2%")
        #expect(Cell.double(-0.5, digits: 2).text == "-0.50")
        #expect(Cell.double(-1.25, digits: 1).text == "-1.3")
        #expect(Cell.double(-0.0001, digits: 2).text == "0.00")
        #expect(Cell.double(2.5, digits: 0).text == "3")
    }
}
