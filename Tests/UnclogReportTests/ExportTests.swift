// Tests of `unclog export` (Chrome Trace Event Format JSON): the file is parsed with
// Foundation's JSON parser and checked against the format's rules (Trace Event Format doc:
// JSON Object Format, phases X/M, flow v2 fields) and against how Perfetto reads it
// (timestamps as double µs × 1000 truncated to ns; complete events on one track must nest),
// and its contents against the hand-built trace's known runs, I/O waits and stalls.

import Foundation
import Testing
import UnclogImport
import UnclogQuery
import UnclogStore
import UnclogTestSupport

@testable import UnclogReport

/// Checks a decoded trace against the Chrome Trace Event Format and Perfetto's import rules;
/// returns the problems found (empty = valid).
func chromeTraceProblems(_ root: Any) -> [String] {
    var problems: [String] = []
    guard let top = root as? [String: Any] else { return ["top level is not a JSON object"] }
    guard let events = top["traceEvents"] as? [Any] else { return ["no traceEvents array"] }
    if let unit = top["displayTimeUnit"], !["ms", "ns"].contains(unit as? String ?? "") {
        problems.append("displayTimeUnit must be \"ms\" or \"ns\"")
    }
    if let other = top["otherData"], !(other is [String: Any]) { problems.append("otherData is not an object") }
    func isInt(_ v: Any?) -> Bool {
        guard let n = v as? NSNumber else { return false }
        return !["d", "f"].contains(String(cString: n.objCType)) && n.doubleValue == n.doubleValue.rounded()
    }
    func perfettoNs(_ v: Any?) -> Int64? { (v as? NSNumber).map { Int64($0.doubleValue * 1000.0) } }
    struct Span { var start: Int64; var end: Int64; var index: Int }
    var tracks: [String: [Span]] = [:]
    let phases: Set<String> = ["B", "E", "X", "i", "I", "C", "b", "n", "e", "s", "t", "f", "P", "N", "O", "D", "M", "R", "c"]
    for (i, any) in events.enumerated() {
        guard let e = any as? [String: Any] else { problems.append("event \(i) is not an object"); continue }
        guard let ph = e["ph"] as? String, ph.count == 1, phases.contains(ph) else {
            problems.append("event \(i): bad ph \(String(describing: e["ph"]))"); continue
        }
        for k in ["pid", "tid"] {
            guard isInt(e[k]), let v = (e[k] as? NSNumber)?.int64Value, v >= 0, v <= Int64(UInt32.max) else {
                problems.append("event \(i): \(k) must be an integer in 0…2^32−1 (Perfetto reads it as uint32)"); continue
            }
        }
        if let a = e["args"], !(a is [String: Any]) { problems.append("event \(i): args is not an object") }
        // Perfetto's tokenizer rejects the whole file when an event has an array-valued key.
        for (k, v) in e where v is [Any] { problems.append("event \(i): top-level key \(k) holds an array") }
        if let c = e["cat"], !(c is String) { problems.append("event \(i): cat is not a string") }
        switch ph {
        case "M":
            let name = e["name"] as? String ?? ""
            let args = e["args"] as? [String: Any] ?? [:]
            switch name {
            case "process_name", "thread_name":
                if !(args["name"] is String) { problems.append("event \(i): \(name) without args.name") }
            case "process_sort_index", "thread_sort_index":
                if !isInt(args["sort_index"]) { problems.append("event \(i): \(name) without integer args.sort_index") }
            default: problems.append("event \(i): unknown metadata \(name)")
            }
        case "X":
            guard e["name"] is String else { problems.append("event \(i): X without name"); continue }
            guard let ts = perfettoNs(e["ts"]), let dur = perfettoNs(e["dur"]), ts >= 0, dur >= 0 else {
                problems.append("event \(i): X needs numeric ts and dur ≥ 0"); continue
            }
            if e["bind_id"] != nil {
                if e["flow_in"] == nil && e["flow_out"] == nil { problems.append("event \(i): bind_id without flow_in/flow_out") }
                for k in ["flow_in", "flow_out"] where e[k] != nil && !(e[k] is Bool) {
                    problems.append("event \(i): \(k) is not a boolean")
                }
            }
            tracks["\(e["pid"]!)/\(e["tid"]!)", default: []].append(Span(start: ts, end: ts + dur, index: i))
        default:
            break
        }
    }
    // Complete events of one track must nest: sorted by start (longer first), each one either
    // starts after the enclosing one ended or ends inside it.
    for (track, spans) in tracks {
        var stack: [Span] = []
        for s in spans.sorted(by: { ($0.start, -$0.end, $0.index) < ($1.start, -$1.end, $1.index) }) {
            while let top = stack.last, top.end <= s.start { stack.removeLast() }
            if let top = stack.last, s.end > top.end {
                problems.append(
                    "track \(track): event \(s.index) [\(s.start), \(s.end)] overlaps event \(top.index) [\(top.start), \(top.end)] without nesting"
                )
            }
            stack.append(s)
        }
    }
    return problems
}

@Suite struct ExportTests {
    func exported(
        _ scenario: Scenario = Scenario(), flows: Bool = true
    ) throws -> (json: [String: Any], events: [[String: Any]], db: String, dir: TempDir) {
        let dir = TempDir()
        let db = try scenario.imported(in: dir)
        let out = dir.file("trace.json")
        let store = try TraceStore(path: db)
        _ = try ChromeTraceExport.export(store, to: try ByteWriter(path: out), options: ChromeExportOptions(flows: flows))
        let json = try #require(try parseJSON(out) as? [String: Any])
        let events = try #require(json["traceEvents"] as? [[String: Any]])
        return (json, events, db, dir)
    }

    @Test func validAgainstTheFormat() throws {
        let (json, events, _, _) = try exported()
        #expect(chromeTraceProblems(json) == [])
        #expect(json["displayTimeUnit"] as? String == "ms")
        let other = try #require(json["otherData"] as? [String: Any])
        #expect(other["command"] as? String == "python3 crawler.py --pages 10")
        #expect(other["stall_threshold"] as? String == "10ms")
        #expect(events.count > 10)
    }

    /// The validator itself finds broken traces (so a pass above means something).
    @Test func validatorCatchesOverlapAndBadFields() {
        let overlapping: [String: Any] = [
            "traceEvents": [
                ["ph": "X", "pid": 1, "tid": 1, "ts": 0.0, "dur": 10.0, "name": "a"],
                ["ph": "X", "pid": 1, "tid": 1, "ts": 5.0, "dur": 10.0, "name": "b"],
            ]
        ]
        #expect(chromeTraceProblems(overlapping).count == 1)
        let nested: [String: Any] = [
            "traceEvents": [
                ["ph": "X", "pid": 1, "tid": 1, "ts": 0.0, "dur": 10.0, "name": "a"],
                ["ph": "X", "pid": 1, "tid": 1, "ts": 5.0, "dur": 5.0, "name": "b"],
                ["ph": "X", "pid": 1, "tid": 2, "ts": 5.0, "dur": 10.0, "name": "c"],
            ]
        ]
        #expect(chromeTraceProblems(nested) == [])
        let bad: [String: Any] = [
            "traceEvents": [
                ["ph": "X", "pid": -1, "tid": 1, "ts": 0.0, "name": "a"],
                ["ph": "M", "pid": 1, "tid": 1, "name": "thread_name", "args": [:] as [String: Any]],
                ["ph": "Q", "pid": 1, "tid": 1],
                ["ph": "X", "pid": 1, "tid": 1, "ts": 20.0, "dur": 1.0, "name": "a", "stack": ["f"]],
            ]
        ]
        #expect(chromeTraceProblems(bad).count == 5)
    }

    /// One X event per run with Perfetto-exact nanoseconds, named by greenthread.
    @Test func runsMatchTheDatabase() throws {
        let (_, events, db, dir) = try exported()
        defer { withExtendedLifetime(dir) {} }
        let store = try TraceStore(path: db)
        let s = try store.db.prepare(
            "SELECT g.gt, g.name, s.start_ns, s.end_ns FROM slices s JOIN greenthreads g ON g.key = s.gt_key ORDER BY s.id")
        var expected: [String] = []
        while try s.step() { expected.append("\(s.text(1)!) #\(s.int(0)) \(s.int(2)) \(s.int(3))") }
        let runs = events.filter { $0["ph"] as? String == "X" && $0["tid"] as? Int == 10 && $0["cat"] as? String != "io" }
        let got = runs.map { e -> String in
            let ts = Int64(((e["ts"] as? NSNumber)?.doubleValue ?? -1) * 1000),
                dur = Int64(((e["dur"] as? NSNumber)?.doubleValue ?? -1) * 1000)
            return "\(e["name"] as? String ?? "?") \(ts) \(ts + dur)"
        }
        #expect(expected.count == 5)
        #expect(got == expected)
        #expect(runs.allSatisfy { $0["tid"] as? Int == 10 && $0["pid"] as? Int == 4242 })
        // The two runs that stalled are flagged, with their length.
        let stalled = runs.filter { $0["cat"] as? String == "stall" }
        #expect(stalled.map { $0["name"] as? String } == ["fetch_page #2", "parser #5"])
        #expect(stalled.map { ($0["args"] as? [String: Any])?["stall_ms"] as? Double } == [60, 30])
        #expect((runs[1]["args"] as? [String: Any])?["why"] as? String == "timer")
        #expect((runs[1]["args"] as? [String: Any])?["ready_us"] as? Double == 50_000)
    }

    @Test func ioWaits() throws {
        let sc = Scenario()
        let (_, events, _, _) = try exported(sc)
        let io = events.filter { $0["cat"] as? String == "io" }
        #expect(io.count == 2)
        #expect(io.map { $0["name"] as? String } == ["I/O wait", "I/O wait"])
        #expect(io.map { Int64(($0["ts"] as! NSNumber).doubleValue * 1000) } == [ms(1), sc.fetchEnd + ms(3)])
        #expect(io.map { ($0["args"] as? [String: Any])?["timeout_ms"] as? Double } == [5, nil])
        #expect(io.map { ($0["args"] as? [String: Any])?["ready_fds"] as? Int } == [1, 2])
    }

    /// Stalls sit on their own track beside the thread, with call site, stack and victims.
    @Test func stallsWithCallSiteStackAndVictims() throws {
        let sc = Scenario()
        let (_, events, _, _) = try exported(sc)
        let stallTid = Int(ChromeTraceExport.stallTrackTid(10, index: 0))
        let stalls = events.filter { $0["tid"] as? Int == stallTid && $0["ph"] as? String == "X" }
        #expect(stalls.count == 2)
        #expect(stalls.allSatisfy { $0["cat"] as? String == "stall" })
        #expect(stalls.allSatisfy { $0["tid"] as? Int == stallTid })
        let names = events.filter { $0["ph"] as? String == "M" && $0["name"] as? String == "thread_name" }
            .map { "\($0["tid"]!)=\(($0["args"] as? [String: Any])?["name"] as? String ?? "")" }
        #expect(names == ["10=MainThread (10)", "\(stallTid)=stalls on MainThread (10)"])
        let first = try #require(stalls.first?["args"] as? [String: Any])
        #expect(stalls.first?["name"] as? String == "stall: fetch")
        #expect(first["call_site"] as? String == "fetch (app.py:42)")
        #expect(first["greenthread"] as? String == "fetch_page #2")
        #expect(
            first["stack"] as? [String] == [
                "switch (eventlet/hubs/hub.py:300) [runtime]", "fetch (app.py:42)", "handler (app.py:10)",
            ])
        #expect(first["victims"] as? Int == 2)
        // Worker 3 ready since 20 ms, worker 4 since 25 ms; the stall ended at 70 ms.
        #expect(first["victim_wait_ms"] as? Double == 95)
        #expect(first["longest_waits"] as? [String] == ["fetch_page #3: 50ms", "fetch_page #4: 45ms"])
        #expect(first["samples"] as? Int == 1)
        let ts = Int64((stalls[0]["ts"] as! NSNumber).doubleValue * 1000),
            dur = Int64((stalls[0]["dur"] as! NSNumber).doubleValue * 1000)
        #expect([ts, dur] == [sc.fetchStart, ms(60)])
        let second = try #require(stalls.last?["args"] as? [String: Any])
        #expect(second["call_site"] as? String == "parse (app.py:77)")
        #expect(second["longest_waits"] as? [String] == ["fetch_page #2: 30ms"])
    }

    /// Each greenthread's runs form one flow chain: out on the first, in+out between, in on the last.
    @Test func flowsChainEachGreenthreadsRuns() throws {
        let (_, events, _, _) = try exported()
        var chains: [Int: [String]] = [:]
        for e in events where e["bind_id"] != nil {
            let id = try #require(e["bind_id"] as? Int)
            let dir = (e["flow_in"] as? Bool == true ? "in" : "") + (e["flow_out"] as? Bool == true ? "out" : "")
            chains[id, default: []].append(dir)
        }
        // Worker 2 ran twice; the others once (no flow: nothing to link).
        #expect(chains == [2: ["out", "in"]])
        let (_, three, _, _) = try exported(Scenario(extraStall: 20))
        var chain3: [String] = []
        for e in three where e["bind_id"] as? Int == 3 {
            chain3.append((e["flow_in"] as? Bool == true ? "in" : "") + (e["flow_out"] as? Bool == true ? "out" : ""))
        }
        #expect(chain3 == ["out", "in"])
        let (_, plain, _, _) = try exported(flows: false)
        #expect(plain.allSatisfy { $0["bind_id"] == nil && $0["flow_in"] == nil })
    }

    /// Timestamps are written so that Perfetto's double × 1000 truncation gives the exact ns,
    /// even far into a long trace.
    @Test func timestampsSurvivePerfettoRounding() {
        for ns: Int64 in [0, 1, 999, 1_000, 123_456_789, 3_600_000_000_001, 86_400_000_000_999, 1_234_567_890_123_457] {
            let w = ByteWriter(memory: ())
            w.micros(ns)
            w.byte(UInt8(ascii: "5"))
            let text = String(decoding: w.contents, as: UTF8.self)
            #expect(Int64(Double(text)! * 1000.0) == ns, "\(ns) written as \(text)")
        }
    }

    /// A failed export leaves nothing behind (no partial file, no temporary file).
    @Test func failedExportLeavesNoFile() throws {
        let dir = TempDir()
        let db = try Scenario().imported(in: dir)
        let store = try TraceStore(path: db)
        let before = dir.listing()
        #expect(throws: StoreError.self) {
            _ = try ChromeTraceExport.export(
                store, to: try ByteWriter(path: dir.file("x.json")), options: ChromeExportOptions(traceID: 9))
        }
        #expect(dir.listing() == before)
        #expect(throws: StoreError.self) { _ = try ByteWriter(path: dir.file("no/such/dir/x.json")) }
    }

    /// Several traces in one database: --trace picks one, the default is the most recent.
    @Test func choosesTheTrace() throws {
        let dir = TempDir()
        let db = try Scenario(pid: 111).imported(in: dir, name: "a")
        let t2 = dir.file("b.trace")
        FileManager.default.createFile(atPath: t2, contents: Data(Scenario(fetchStall: 80, pid: 222).bytes()))
        _ = try TraceImporter.run(ImportOptions(tracePath: t2, databasePath: db))
        let store = try TraceStore(path: db)
        for (trace, pid) in [(nil, 222), (Int64(1), 111), (Int64(2), 222)] as [(Int64?, Int)] {
            let out = dir.file("t\(trace ?? 0).json")
            let summary = try ChromeTraceExport.export(
                store, to: try ByteWriter(path: out), options: ChromeExportOptions(traceID: trace))
            #expect(summary.traceCount == 2)
            let events = try #require((try parseJSON(out) as? [String: Any])?["traceEvents"] as? [[String: Any]])
            #expect(Set(events.compactMap { $0["pid"] as? Int }) == [pid])
        }
    }

    /// The CLI writes the file and a summary; a bad database is exit 2 with no file.
    @Test func cli() throws {
        let dir = TempDir()
        let db = try Scenario().imported(in: dir)
        let exe = try unclogExecutable()
        let ok = try runProgram(exe, ["export", db, "-o", dir.file("cli.json")])
        #expect(ok.status == 0, "\(ok)")
        #expect(ok.stderr.contains("5 runs, 2 I/O waits, 2 stalls on 1 thread"), "\(ok)")
        #expect(chromeTraceProblems(try parseJSON(dir.file("cli.json"))) == [])
        let bad = try runProgram(exe, ["export", dir.file("missing.db"), "-o", dir.file("bad.json")])
        #expect(bad.status == 2, "\(bad)")
        #expect(!FileManager.default.fileExists(atPath: dir.file("bad.json")))
    }
}

@Suite struct ExportWindowTests {
    /// --from/--to keep exactly what overlaps the window (runs, I/O waits and stalls), still valid.
    @Test func window() throws {
        let dir = TempDir()
        let sc = Scenario()
        let db = try sc.imported(in: dir)
        let store = try TraceStore(path: db)
        let out = dir.file("w.json")
        // From just after the first stall to just before the second: worker 3 and 4's runs and the second I/O wait.
        let summary = try ChromeTraceExport.export(
            store, to: try ByteWriter(path: out),
            options: ChromeExportOptions(from: sc.fetchEnd + 1, to: sc.parseStart - 1))
        #expect([summary.runs, summary.ioWaits, summary.stalls] == [2, 1, 0] as [Int])
        let json = try parseJSON(out)
        #expect(chromeTraceProblems(json) == [])
        let names = ((json as? [String: Any])?["traceEvents"] as? [[String: Any]] ?? []).filter { $0["ph"] as? String == "X" }
            .compactMap { $0["name"] as? String }
        #expect(names == ["fetch_page #3", "fetch_page #4", "I/O wait"])
        // A window over the second stall only.
        let s2 = try ChromeTraceExport.export(
            store, to: try ByteWriter(path: out),
            options: ChromeExportOptions(from: sc.parseStart + 1, to: sc.parseStart + 2))
        #expect([s2.runs, s2.ioWaits, s2.stalls] == [1, 0, 1] as [Int])
    }
}

@Suite struct ExportThreadsTests {
    /// Two OS threads: each gets its track and stall track, its own runs flagged, flows per
    /// greenthread; interleaved rows of the two threads are told apart.
    @Test func twoThreads() throws {
        let dir = TempDir()
        let db = try Scenario(secondThread: true).imported(in: dir)
        let store = try TraceStore(path: db)
        for (from, to) in [(nil, nil), (ms(11), ms(30))] as [(Int64?, Int64?)] {
            let out = dir.file("two.json")
            let summary = try ChromeTraceExport.export(
                store, to: try ByteWriter(path: out),
                options: ChromeExportOptions(from: from, to: to))
            let json = try parseJSON(out)
            #expect(chromeTraceProblems(json) == [])
            let events = try #require((json as? [String: Any])?["traceEvents"] as? [[String: Any]])
            let names = events.filter { $0["name"] as? String == "thread_name" }.map {
                ($0["args"] as? [String: Any])?["name"] as? String
            }
            #expect(
                names == ["MainThread (10)", "stalls on MainThread (10)", "worker-thread (20)", "stalls on worker-thread (20)"])
            let stall20 = Int(ChromeTraceExport.stallTrackTid(20, index: 1))
            let on20 = events.filter { $0["ph"] as? String == "X" && $0["tid"] as? Int == 20 }
            let stalls20 = events.filter { $0["ph"] as? String == "X" && $0["tid"] as? Int == stall20 }
            #expect(stalls20.map { $0["name"] as? String } == ["stall: parse"])
            #expect((stalls20.first?["args"] as? [String: Any])?["longest_waits"] as? [String] == ["job #52: 13ms"])
            if from == nil {
                #expect(on20.map { $0["name"] as? String } == ["job #51", "job #52", "job #51"])
                #expect(on20.map { $0["cat"] as? String } == ["stall", nil, nil])
                #expect(on20.map { $0["bind_id"] as? Int } == [51, nil, 51])
                #expect(summary.runs == 8 && summary.stalls == 3)
            } else {
                // 11–30 ms: thread 10's fetch stall (10–70) and thread 20's first two runs.
                #expect(on20.map { $0["name"] as? String } == ["job #51", "job #52"])
                #expect(summary.runs == 3 && summary.stalls == 2 && summary.ioWaits == 0)
            }
        }
    }
}
