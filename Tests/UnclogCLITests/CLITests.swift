// End-to-end: the built `unclog` executable on real files, checked the way a user or a CI
// script would read its output (exit codes, the summary line, JSON parsed with Foundation).

import Foundation
import Testing
import UnclogTestSupport
import UnclogTrace

/// One recording imported once, shared by the read-only command tests.
final class Imported: @unchecked Sendable {
    let dir = TempDir()
    let trace: String
    let db: String
    let importRun: ProgramRun

    init() {
        trace = Recording().write(to: dir.file("server.trace"))
        db = dir.file("server.db")
        importRun = (try? CLI.run(["import", "--quiet", trace])) ?? ProgramRun.notRun("could not run")
    }

    static let shared = Imported()
}

@Suite struct ImportCommandTests {
    @Test func importWritesTheDatabaseBesideTheTraceAndSummarizes() throws {
        let dir = TempDir()
        let trace = Recording().write(to: dir.file("app.trace"))
        let r = try CLI.run(["import", trace])
        #expect(r.status == 0, "\(r)")
        #expect(dir.listing() == ["app.db", "app.trace"])
        // One summary line: events, greenthreads, stalls, bytes lost, seconds, events/s.
        #expect(r.stdoutLines.count == 1, "\(r)")
        let line = r.stdoutLines.first ?? ""
        let pattern =
            #"^imported (.+) → (.+) as trace 1: (\d+) events, 3 greenthreads, 3 stalls, 0 bytes lost, [0-9.]+ s, [0-9.]+( M)? events/s$"#
        let match = line.range(of: pattern, options: .regularExpression)
        #expect(match != nil, "\(line)")
        #expect(line.contains(" \(trace) → \(dir.file("app.db")) "), "\(line)")
        #expect(r.stderr.isEmpty, "\(r)")

        // Again: nothing to do, exit 0.
        let again = try CLI.run(["import", trace])
        #expect(again.status == 0, "\(again)")
        #expect(again.stdout.contains("already in"), "\(again)")
        #expect(
            try CLI.run(["sql", dir.file("app.db"), "SELECT COUNT(*) AS n FROM traces", "--format", "csv"]).stdout == "n\n1\n")
        // --replace re-imports it.
        let replaced = try CLI.run(["import", "--replace", trace])
        #expect(replaced.status == 0)
        #expect(replaced.stdout.hasPrefix("re-imported "), "\(replaced)")
        #expect(
            try CLI.run(["sql", dir.file("app.db"), "SELECT COUNT(*) AS n FROM stalls", "--format", "csv"]).stdout == "n\n3\n")
    }

    @Test func importWithOutputOptionAndRelativePaths() throws {
        let dir = TempDir()
        Recording().write(to: dir.file("rec.bin"))
        let r = try CLI.run(["import", "rec.bin", "-o", "custom.sqlite"], cwd: dir.path)
        #expect(r.status == 0, "\(r)")
        #expect(dir.listing() == ["custom.sqlite", "rec.bin"])
        let noExtension = try CLI.run(["import", "--quiet", "rec.bin"], cwd: dir.path)
        #expect(noExtension.status == 0 && noExtension.stdout.isEmpty, "\(noExtension)")
        #expect(dir.listing() == ["custom.sqlite", "rec.bin", "rec.db"])
        // Only the file name's extension is replaced; a dot in a directory name is kept.
        try FileManager.default.createDirectory(atPath: dir.file("run.v2"), withIntermediateDirectories: false)
        Recording().write(to: dir.file("run.v2/rec"))
        #expect(try CLI.run(["import", "--quiet", "run.v2/rec"], cwd: dir.path).status == 0)
        #expect(FileManager.default.fileExists(atPath: dir.file("run.v2/rec.db")))
    }

    @Test func damagedTraceExitsTwoAndKeepsWhatIsIntact() throws {
        let rec = Recording()
        let dir = TempDir()
        // Cut inside the last events chunk of thread 10 (the one before the End chunk).
        let victim = rec.chunkOffsets[rec.chunkOffsets.count - 2]
        let cut = victim + 40
        FileManager.default.createFile(atPath: dir.file("cut.trace"), contents: Data(rec.bytes[..<cut]))
        let r = try CLI.run(["import", dir.file("cut.trace")])
        #expect(r.status == 2, "\(r)")
        let damage = r.stderrLines.filter { $0.contains("byte \(victim):") }
        #expect(damage.count == 1, "\(r)")
        #expect(damage.first?.hasPrefix("unclog: \(dir.file("cut.trace")): byte \(victim): ") == true, "\(r)")
        #expect(damage.first?.contains("truncated") == true)
        // The summary still says what was imported and how much was lost.
        #expect(r.stdout.contains("\(cut - victim) bytes lost"), "\(r)")
        // The stalls were all in earlier chunks: kept.
        let stalls = try CLI.run(["stalls", dir.file("cut.db"), "--format", "csv"])
        #expect(stalls.status == 0)
        #expect(stalls.stdoutLines.count == 1 + 3, "\(stalls)")
        let lost = try CLI.run(["sql", dir.file("cut.db"), "SELECT offset, bytes_lost FROM import_damage", "--format", "csv"])
        #expect(lost.stdout == "offset,bytes_lost\n\(victim),\(cut - victim)\n")
    }

    @Test func corruptedChunkInTheMiddle() throws {
        let rec = Recording()
        let dir = TempDir()
        var bytes = rec.bytes
        let bad = rec.chunkOffsets[1]  // thread 10's first events chunk: the definitions, the stalls
        bytes[bad + 100] ^= 0xFF
        FileManager.default.createFile(atPath: dir.file("bad.trace"), contents: Data(bytes))
        let r = try CLI.run(["import", "--quiet", dir.file("bad.trace")])
        #expect(r.status == 2, "\(r)")
        #expect(
            r.stderrLines.contains { $0.hasPrefix("unclog: \(dir.file("bad.trace")): byte \(bad): chunk checksum mismatch") },
            "\(r)")
        // Later chunks were imported.
        let n = try CLI.run([
            "sql", dir.file("bad.db"), "SELECT chunks, bytes_lost > 0 AS lost, clean_end FROM traces", "--format", "csv",
        ])
        #expect(n.stdout == "chunks,lost,clean_end\n\(rec.chunkOffsets.count - 1),1,1\n", "\(n)")
    }

    @Test(arguments: ["text", "missing", "version"])
    func badInputIsOneLineWithFileAndOffset(kind: String) throws {
        let dir = TempDir()
        let path = dir.file("input.trace")
        var offset = 0
        switch kind {
        case "text": FileManager.default.createFile(atPath: path, contents: Data("{\"not\": \"a trace\"}\n".utf8))
        case "version":
            var b = Recording().bytes
            b[8] = 9
            offset = 8
            FileManager.default.createFile(atPath: path, contents: Data(b))
        default: break
        }
        let r = try CLI.run(["import", path])
        #expect(r.status == 2, "\(r)")
        #expect(r.stderrLines.count == 1, "\(r)")
        #expect(r.stderr.hasPrefix("unclog: \(path): byte \(offset): "), "\(r)")
        #expect(r.stdout.isEmpty)
        #expect(!dir.listing().contains { $0.hasSuffix(".db") || $0.contains("importing") }, "\(dir.listing())")
        // An existing database is left as it was.
        let good = Recording().write(to: dir.file("good.trace"))
        #expect(try CLI.run(["import", "--quiet", good, "-o", dir.file("keep.db")]).status == 0)
        let before = contents(dir.file("keep.db"))
        #expect(try CLI.run(["import", path, "-o", dir.file("keep.db")]).status == 2)
        #expect(contents(dir.file("keep.db")) == before)
    }

    @Test func unwritableOutputNamesTheDatabase() throws {
        let dir = TempDir()
        let trace = Recording().write(to: dir.file("t.trace"))
        let db = dir.file("no/such/dir/t.db")
        let r = try CLI.run(["import", trace, "-o", db])
        #expect(r.status == 2, "\(r)")
        #expect(r.stderrLines.count == 1, "\(r)")
        #expect(r.stderr.hasPrefix("unclog: \(db): cannot open database"), "\(r)")
        #expect(!r.stderr.contains("importing-"), "\(r)")
        #expect(dir.listing() == ["t.trace"])
    }

    @Test func refusesAForeignDatabase() throws {
        let dir = TempDir()
        let trace = Recording().write(to: dir.file("t.trace"))
        FileManager.default.createFile(atPath: dir.file("notes.db"), contents: Data("just some notes\n".utf8))
        let r = try CLI.run(["import", trace, "-o", dir.file("notes.db")])
        #expect(r.status == 2, "\(r)")
        #expect(r.stderrLines.count == 1 && r.stderr.contains(dir.file("notes.db")), "\(r)")
        #expect(contents(dir.file("notes.db")) == Array("just some notes\n".utf8))
    }
}

@Suite struct QueryCommandTests {
    var imported: Imported { Imported.shared }

    @Test func importedOnce() {
        #expect(imported.importRun.status == 0, "\(imported.importRun)")
    }

    @Test func stallsAsJSON() throws {
        let r = try CLI.run(["stalls", imported.db, "--format", "json"])
        #expect(r.status == 0, "\(r)")
        let parsed = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8))
        let stalls = try #require(parsed as? [[String: Any]])
        #expect(stalls.count == 3)
        let documented: Set<String> = [
            "trace_id", "greenthread_id", "greenthread_name", "thread_id", "start_ns", "duration_ns",
            "function", "file", "line", "samples", "victims", "victim_wait_ns", "stack",
        ]
        for s in stalls { #expect(documented.isSubset(of: Set(s.keys)), "\(s.keys.sorted())") }
        #expect(stalls.map { $0["duration_ns"] as? Int } == [120_000_000, 40_000_000, 15_000_000])

        let worst = stalls[0]
        #expect(worst["trace_id"] as? Int == 1)
        #expect(worst["greenthread_id"] as? Int == 2)
        #expect(worst["greenthread_name"] as? String == "handle_request")
        #expect(worst["thread_id"] as? Int == 10)
        #expect(worst["start_ns"] as? Int == 10_000_000)
        #expect(worst["function"] as? String == "load_config")
        #expect(worst["file"] as? String == "config.py")
        #expect(worst["line"] as? Int == 17)
        #expect(worst["samples"] as? Int == 3)
        #expect(worst["victims"] as? Int == 2)
        #expect(worst["victim_wait_ns"] as? Int == 100_000_000 + 120_000_000)
        let stack = try #require(worst["stack"] as? [[String: Any]])
        #expect(stack.map { $0["function"] as? String } == ["trampoline", "load_config", "handle", "main"])  // innermost first
        #expect(stack.map { $0["file"] as? String } == ["eventlet/hubs/hub.py", "config.py", "server.py", "server.py"])
        #expect(stack.map { $0["line"] as? Int } == [200, 17, 40, 99])

        // The stall without samples: its call site comes from its end stack.
        #expect(stalls[1]["function"] as? String == "render")
        #expect(stalls[1]["samples"] as? Int == 0)
        #expect(stalls[1]["line"] as? Int == 88)

        let limited = try CLI.run(["stalls", imported.db, "--format", "json", "--min", "20ms", "--limit", "1"])
        let one = try JSONSerialization.jsonObject(with: Data(limited.stdout.utf8)) as? [[String: Any]]
        #expect(one?.count == 1)
        let none = try CLI.run(["stalls", imported.db, "--format", "json", "--min", "1s"])
        #expect(none.status == 0 && none.stdout == "[]\n")
    }

    @Test func stallsAsCSVAndTable() throws {
        let csv = try CLI.run(["stalls", imported.db, "--format", "csv"])
        #expect(csv.status == 0)
        let lines = csv.stdoutLines
        #expect(lines.count == 4)
        let header = lines[0].split(separator: ",").map(String.init)
        #expect(
            Array(header.prefix(12)) == [
                "trace_id", "greenthread_id", "greenthread_name", "thread_id", "start_ns", "duration_ns",
                "function", "file", "line", "samples", "victims", "victim_wait_ns",
            ])
        #expect(
            lines[1].hasPrefix("1,2,handle_request,10,10000000,120000000,load_config,config.py,17,3,2,220000000,"), "\(lines[1])")

        let table = try CLI.run(["stalls", imported.db])
        #expect(table.status == 0)
        #expect(table.stdoutLines.count == 4)
        #expect(table.stdoutLines[1].contains("120ms") && table.stdoutLines[1].contains("load_config"), "\(table)")
    }

    @Test func top() throws {
        let r = try CLI.run(["top", imported.db, "--format", "json"])
        #expect(r.status == 0, "\(r)")
        let rows = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [[String: Any]])
        #expect(rows.count == 2)
        #expect(rows[0]["function"] as? String == "load_config")
        #expect(rows[0]["line"] as? Int == 17)
        #expect(rows[0]["stalls"] as? Int == 2)
        #expect(rows[0]["total_ns"] as? Int == 135_000_000)
        #expect(rows[0]["max_ns"] as? Int == 120_000_000)
        #expect(rows[0]["p50_ns"] as? Int == 15_000_000)
        #expect(rows[0]["p99_ns"] as? Int == 120_000_000)
        let shares = rows.compactMap { ($0["share"] as? NSNumber)?.doubleValue }
        #expect(abs(shares.reduce(0, +) - 1) < 0.001)

        let inclusive = try CLI.run(["top", imported.db, "--inclusive", "--by", "file", "--format", "csv"])
        #expect(inclusive.status == 0)
        #expect(inclusive.stdoutLines.first == "file,stalls,total_ns,max_ns,p50_ns,p99_ns,share,victim_wait_ns")
        // server.py is on every stack: all 3 stalls, once each.
        #expect(inclusive.stdoutLines.contains { $0.hasPrefix("server.py,3,175000000,") }, "\(inclusive)")

        let table = try CLI.run(["top", imported.db, "--by", "function"])
        #expect(table.status == 0)
        #expect(table.stdoutLines.first?.hasPrefix("function") == true)
        #expect(table.stdout.contains("77.1%"), "\(table)")  // 135 of 175 ms
    }

    @Test func timeline() throws {
        let r = try CLI.run(["timeline", imported.db, "--width", "50"])
        #expect(r.status == 0, "\(r)")
        #expect(r.stdout.hasPrefix("trace 1: 0ns … 250ms, one column = 5ms\n"), "\(r)")
        let thread = try #require(r.stdoutLines.first { $0.hasPrefix("thread 10 MainThread") })
        let cells = thread.split(separator: "|", omittingEmptySubsequences: false)
        #expect(cells.count == 3 && cells[1].count == 50, "\(thread)")
        // Stalled from 10 ms to 185 ms: columns 2 … 36.
        let row = Array(cells[1])
        #expect(String(row[2...36]) == String(repeating: "!", count: 35), "\(thread)")
        #expect(row[0] == ".", "\(thread)")  // the hub's first I/O wait

        let one = try CLI.run(["timeline", imported.db, "--greenthread", "3", "--from", "0ms", "--to", "200ms", "--width", "20"])
        #expect(one.status == 0, "\(one)")
        let gt = try #require(one.stdoutLines.first { $0.hasPrefix("gt 3 handle_request") })
        // 10 ms per column: ready 30…130 ms (columns 3–12), then stalled 130…170 ms (13–16).
        #expect(gt.contains("|   ----------!!!!"), "\(gt)")

        let past = try CLI.run(["timeline", imported.db, "--from", "100s"])
        #expect(past.status == 2, "\(past)")
        #expect(past.stderr.contains("empty window 1m40s … 250ms"), "\(past)")

        let bad = try CLI.run(["timeline", imported.db, "--greenthread", "999"])
        #expect(bad.status == 2)
        #expect(bad.stderr.contains("no greenthread 999"), "\(bad)")
    }

    @Test func sqlIsReadOnly() throws {
        let ok = try CLI.run([
            "sql", imported.db, "SELECT gt, name FROM greenthreads WHERE is_hub = 0 ORDER BY gt", "--format", "json",
        ])
        #expect(ok.status == 0, "\(ok)")
        let rows = try JSONSerialization.jsonObject(with: Data(ok.stdout.utf8)) as? [[String: Any]]
        #expect(rows?.map { $0["name"] as? String } == ["handle_request", "handle_request", "poller"])

        let before = contents(imported.db)
        for sql in [
            "DELETE FROM stalls", "DROP TABLE stalls", "INSERT INTO traces (id) VALUES (5)", "PRAGMA user_version = 3",
            "ATTACH DATABASE 'x.db' AS x", "SELECT 1; DELETE FROM stalls",
        ] {
            let r = try CLI.run(["sql", imported.db, sql], cwd: imported.dir.path)
            #expect(r.status == 2, "\(sql): \(r)")
            #expect(r.stderrLines.count == 1 && r.stderr.hasPrefix("unclog: SQL error: "), "\(sql): \(r)")
        }
        #expect(contents(imported.db) == before)
        #expect(!imported.dir.listing().contains("x.db"))
        let syntax = try CLI.run(["sql", imported.db, "SELEKT 1"])
        #expect(syntax.status == 2)
        #expect(syntax.stderr == "unclog: SQL error: near \"SELEKT\": syntax error\n")
    }

    @Test func checkIsACIGate() throws {
        let pass = try CLI.run(["check", imported.db, "--max-stall", "120ms"])
        #expect(pass.status == 0, "\(pass)")
        #expect(pass.stdout == "ok: no stall longer than 120ms\n")

        let fail = try CLI.run(["check", imported.db, "--max-stall", "30ms"])
        #expect(fail.status == 1, "\(fail)")
        #expect(fail.stdoutLines.first == "FAIL: 2 stalls longer than 30ms:")
        #expect(fail.stdout.contains("load_config") && fail.stdout.contains("render"), "\(fail)")
        #expect(!fail.stdout.contains("15ms"), "\(fail)")  // the 15 ms stall is allowed

        let json = try CLI.run(["check", imported.db, "--max-stall", "30ms", "--format", "json"])
        #expect(json.status == 1)
        let rows = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [[String: Any]]
        #expect(rows?.map { $0["duration_ns"] as? Int } == [120_000_000, 40_000_000])
        let okJSON = try CLI.run(["check", imported.db, "--max-stall", "1.5s", "--format", "json"])
        #expect(okJSON.status == 0 && okJSON.stdout == "[]\n")
    }
}

@Suite struct OtherCommandTests {
    @Test func dumpMatchesTheLibrary() throws {
        let dir = TempDir()
        let trace = Recording().write(to: dir.file("d.trace"))
        let r = try CLI.run(["dump", trace])
        #expect(r.status == 0, "\(r)")
        #expect(r.stdout == TraceJSON.render(try TraceReader(path: trace)))
        #expect(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) is [String: Any])

        // A damaged trace: the intact part on stdout, the damage on stderr, exit 2.
        let rec = Recording()
        var bytes = rec.bytes
        bytes[rec.chunkOffsets[2] + 20] ^= 1  // its header's base_ns: covered by the CRC
        FileManager.default.createFile(atPath: dir.file("bad.trace"), contents: Data(bytes))
        let bad = try CLI.run(["dump", dir.file("bad.trace")])
        #expect(bad.status == 2)
        #expect(bad.stdout == TraceJSON.render(try TraceReader(path: dir.file("bad.trace"))))
        #expect(bad.stderr.contains("byte \(rec.chunkOffsets[2])"), "\(bad)")
    }

    @Test(arguments: [
        (["stalls", "DB", "--bogus"], "--bogus"),
        (["stalls", "DB", "--min", "5"], "5"),
        (["stalls", "DB", "--min", "-1s"], "--min"),  // read as an option: its value is missing
        (["stalls", "DB", "--min=-1s"], "-1s"),
        (["check", "DB", "--max-stall", "fast"], "fast"),
        (["check", "DB"], "--max-stall"),
        (["timeline", "DB", "--width", "3"], "--width"),
        (["nosuchcommand"], "nosuchcommand"),
        (["sql", "DB"], "query"),
    ])
    func badArgumentsExitTwo(args: [String], mentions: String) throws {
        let dir = TempDir()
        let db = dir.file("x.db")
        Recording().write(to: dir.file("x.trace"))
        _ = try CLI.run(["import", "--quiet", dir.file("x.trace")])
        let r = try CLI.run(args.map { $0 == "DB" ? db : $0 })
        #expect(r.status == 2, "\(args): \(r)")
        #expect(r.stderr.contains(mentions), "\(args): \(r)")
        #expect(r.stdout.isEmpty, "\(args): \(r)")
    }

    @Test func missingDatabase() throws {
        let dir = TempDir()
        for cmd in [["stalls"], ["top"], ["timeline"], ["sql", "", "SELECT 1"], ["check", "", "--max-stall", "1s"]] {
            var args = cmd
            if args.count > 1 { args[1] = dir.file("nope.db") } else { args.append(dir.file("nope.db")) }
            let r = try CLI.run(args)
            #expect(r.status == 2, "\(args): \(r)")
            #expect(
                r.stderr
                    == "unclog: \(dir.file("nope.db")): no such database (run `unclog import TRACE -o \(dir.file("nope.db"))` first)\n",
                "\(args): \(r)")
        }
        #expect(dir.listing().isEmpty)
    }

    @Test func help() throws {
        let r = try CLI.run(["--help"])
        #expect(r.status == 0, "\(r)")
        #expect(r.stdout.contains("USAGE: unclog"), "\(r)")
        for sub in ["import", "stalls", "top", "timeline", "sql", "check", "dump"] {
            #expect(r.stdout.contains(sub), "\(sub)")
            let h = try CLI.run([sub, "--help"])
            #expect(h.status == 0, "\(sub): \(h)")
            #expect(h.stdout.contains("USAGE: unclog \(sub)"), "\(sub): \(h)")
        }
        let v = try CLI.run(["--version"])
        #expect(v.status == 0 && !v.stdout.isEmpty)
    }
}
