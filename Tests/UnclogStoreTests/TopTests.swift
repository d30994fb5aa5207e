// `top`: self and inclusive attribution by function, line and file, nearest-rank
// percentiles and shares, on stalls whose durations are chosen by the test.

import Testing
import UnclogImport
import UnclogQuery
import UnclogStore
import UnclogTestSupport
import UnclogTrace

/// Thirteen stalls on thread 10, one after another, no samples (so each stall's stack is its
/// end stack):
///   read_config app.py:10  — 1, 2, 3, 4, 5 ms      stack [internal open, read_config:10, main:1]
///   read_config app.py:12  — 6, 7, 8, 9, 10 ms     stack [read_config:12, main:1]
///   query db.py:20         — 20, 30, 100 ms        stack [query db.py:20, handler app.py:30, main app.py:1]
/// Total 205 ms. The 30 ms stall keeps gt 9 waiting 4 ms.
func topTrace(pid: UInt64 = 4242) -> ScriptedTrace {
    let tr = ScriptedTrace(pid: pid)
    let th: UInt32 = 10
    let sym = Symbols(tr, thread: th)
    let open = sym.frame("open", "eventlet/green/os.py", 5, isInternal: true)
    let rc10 = sym.frame("read_config", "app.py", 10)
    let rc12 = sym.frame("read_config", "app.py", 12)
    let main = sym.frame("main", "app.py", 1)
    let query = sym.frame("query", "db.py", 20)
    let handler = sym.frame("handler", "app.py", 30)
    let s10 = sym.stack([open, rc10, main])
    let s12 = sym.stack([rc12, main])
    let sq = sym.stack([query, handler, main])
    tr.at(0, th, .running(gt: 1, hub: 1))
    var t = ms(1)
    func stall(_ d: Int64, _ stack: UInt32, victimWait: Int64 = 0) {
        tr.at(t, th, .switchTo(to: 2, reason: .timer, readyDelta: 0))
        tr.at(t + d, th, .stallEnd(gt: 2, duration: UInt64(d), stack: stack))
        tr.at(t + d, th, .switchToHub)
        if victimWait > 0 {
            tr.at(t + d, th, .switchTo(to: 9, reason: .timer, readyDelta: UInt64(victimWait)))
            tr.at(t + d + 1, th, .switchToHub)
        }
        t += d + ms(1)
    }
    for d in 1...5 { stall(ms(Int64(d)), s10) }
    for d in 6...10 { stall(ms(Int64(d)), s12) }
    stall(ms(20), sq)
    stall(ms(100), sq)
    stall(ms(30), sq, victimWait: ms(4))
    tr.finish(at: t)
    return tr
}

@Suite struct TopTests {
    func store() throws -> (TraceStore, TempDir) {
        #expect(try Fixture.top.summary.stalls == 13)
        return (try Fixture.top.store(), Fixture.top.dir)
    }

    @Test func selfByLine() throws {
        let (store, _) = try store()
        let t = try store.top(by: .line, inclusive: false)
        #expect(
            t.columns == [
                "function", "file", "line", "stalls", "total_ns", "max_ns", "p50_ns", "p99_ns", "share", "victim_wait_ns",
            ])
        #expect(t.rows.count == 3)
        let rows = (0..<t.rows.count).map { i in t.columns.map { t.cell(i, $0) } }
        #expect(
            rows == [
                ["query", "db.py", "20", "3", "\(ms(150))", "\(ms(100))", "\(ms(30))", "\(ms(100))", "0.7317", "\(ms(4))"],
                ["read_config", "app.py", "12", "5", "\(ms(40))", "\(ms(10))", "\(ms(8))", "\(ms(10))", "0.1951", "0"],
                ["read_config", "app.py", "10", "5", "\(ms(15))", "\(ms(5))", "\(ms(3))", "\(ms(5))", "0.0732", "0"],
            ])
    }

    @Test func selfByFunctionAndFile() throws {
        let (store, _) = try store()
        let byFunction = try store.top(by: .function, inclusive: false)
        #expect(byFunction.columns.prefix(2) == ["function", "file"])
        #expect(byFunction.rows.map { $0[0].csv } == ["query", "read_config"])
        let rc = try #require(byFunction.row(where: "function", is: "read_config"))
        #expect(byFunction.cell(rc, "stalls") == "10")
        #expect(byFunction.cell(rc, "total_ns") == "\(ms(55))")
        #expect(byFunction.cell(rc, "p50_ns") == "\(ms(5))")  // nearest rank: the 5th of 1…10 ms
        #expect(byFunction.cell(rc, "p99_ns") == "\(ms(10))")  // the 10th
        #expect(byFunction.cell(rc, "max_ns") == "\(ms(10))")

        let byFile = try store.top(by: .file, inclusive: false)
        #expect(byFile.columns.first == "file")
        #expect(
            byFile.rows.map { [$0[0].csv, $0[1].csv, $0[2].csv] } == [
                ["db.py", "3", "\(ms(150))"], ["app.py", "10", "\(ms(55))"],
            ])
    }

    /// Self attribution charges every stall exactly once: counts add up and shares sum to 1.
    @Test func selfSharesSumToOne() throws {
        let (store, _) = try store()
        for by in SiteGrouping.allCases {
            let t = try store.top(by: by, inclusive: false)
            let shares = t.rows.indices.compactMap { Double(t.cell($0, "share")) }
            #expect(abs(shares.reduce(0, +) - 1) < 0.001, "\(by)")
            #expect(t.rows.indices.map { Int(t.cell($0, "stalls"))! }.reduce(0, +) == 13, "\(by)")
            #expect(t.rows.indices.map { Int64(t.cell($0, "total_ns"))! }.reduce(0, +) == ms(205), "\(by)")
        }
    }

    /// Inclusive attribution charges each stall once to every application frame of its stack.
    @Test func inclusiveByLine() throws {
        let (store, _) = try store()
        let t = try store.top(by: .line, inclusive: true)
        let got = Dictionary(
            uniqueKeysWithValues: t.rows.indices.map { i in
                (
                    "\(t.cell(i, "function")):\(t.cell(i, "line"))",
                    [t.cell(i, "stalls"), t.cell(i, "total_ns"), t.cell(i, "share")]
                )
            })
        #expect(
            got == [
                "main:1": ["13", "\(ms(205))", "1.0000"],
                "query:20": ["3", "\(ms(150))", "0.7317"],
                "handler:30": ["3", "\(ms(150))", "0.7317"],
                "read_config:12": ["5", "\(ms(40))", "0.1951"],
                "read_config:10": ["5", "\(ms(15))", "0.0732"],
            ])
        // The internal frame is never charged.
        #expect(t.row(where: "function", is: "open") == nil)
        #expect(t.rows.first?[0].csv == "main")
    }

    /// Grouping by file or function, a stall is charged once per file/function, however many
    /// of its frames are in that file (or in that function, at different lines).
    @Test func inclusiveByFileAndFunctionChargeEachStallOnce() throws {
        let (store, _) = try store()
        let byFile = try store.top(by: .file, inclusive: true)
        let app = try #require(byFile.row(where: "file", is: "app.py"))
        #expect(byFile.cell(app, "stalls") == "13")
        #expect(byFile.cell(app, "total_ns") == "\(ms(205))")
        #expect(byFile.cell(app, "share") == "1.0000")
        #expect(byFile.cell(app, "victim_wait_ns") == "\(ms(4))")
        let db = try #require(byFile.row(where: "file", is: "db.py"))
        #expect(byFile.cell(db, "stalls") == "3")

        let byFunction = try store.top(by: .function, inclusive: true)
        let rc = try #require(byFunction.row(where: "function", is: "read_config"))
        #expect(byFunction.cell(rc, "stalls") == "10")
        #expect(byFunction.cell(rc, "total_ns") == "\(ms(55))")
        let main = try #require(byFunction.row(where: "function", is: "main"))
        #expect(byFunction.cell(main, "stalls") == "13")
    }

    /// Nearest-rank percentiles: p = the smallest value with at least p% of values ≤ it.
    /// One call site per n, with stalls of n, n−1, …, 1 µs (written out of order on purpose).
    @Test func nearestRankPercentiles() throws {
        let sizes = [1, 2, 3, 7, 10, 99, 100, 101, 200]
        let tr = ScriptedTrace()
        let sym = Symbols(tr, thread: 10)
        let stacks = sizes.map { sym.stack([sym.frame("work\($0)", "app.py", UInt64($0))]) }
        tr.at(0, 10, .running(gt: 1, hub: 1))
        var t: Int64 = 1000
        for (n, stack) in zip(sizes, stacks) {
            for i in stride(from: n, through: 1, by: -1) {
                let d = Int64(i) * 1000
                tr.at(t, 10, .switchTo(to: 2, reason: .timer, readyDelta: 0))
                tr.at(t + d, 10, .stallEnd(gt: 2, duration: UInt64(d), stack: stack))
                tr.at(t + d, 10, .switchToHub)
                t += d + 1000
            }
        }
        tr.finish(at: t)
        let dir = TempDir()
        try importTrace(tr, in: dir)
        let store = try TraceStore(path: dir.file("t.db"))
        let top = try store.top(by: .line, inclusive: false)
        let view = try store.rows("SELECT line, stalls, p50_ns, p99_ns FROM top_sites")
        for n in sizes {
            func rank(_ p: Int) -> Int { (p * n + 99) / 100 }  // ceil(p·n/100), exact
            let row = try #require(top.row(where: "function", is: "work\(n)"))
            #expect(top.cell(row, "stalls") == "\(n)")
            #expect(top.cell(row, "p50_ns") == "\(rank(50) * 1000)", "n = \(n)")
            #expect(top.cell(row, "p99_ns") == "\(rank(99) * 1000)", "n = \(n)")
            #expect(top.cell(row, "max_ns") == "\(n * 1000)")
            // The shipped view computes the same.
            #expect(
                view.contains([.int(Int64(n)), .int(Int64(n)), .int(Int64(rank(50) * 1000)), .int(Int64(rank(99) * 1000))]),
                "n = \(n)")
        }
    }

    @Test func limitAndEmptyDatabase() throws {
        let (store, _) = try store()
        #expect(try store.top(by: .line, inclusive: false, limit: 1).rows.count == 1)
        #expect(try store.top(by: .line, inclusive: false, traceID: 7).rows.isEmpty)
        // A trace without stalls: no rows, no division by zero.
        let tr = ScriptedTrace()
        tr.at(0, 10, .running(gt: 1, hub: 1))
        tr.finish(at: 10)
        let dir = TempDir()
        try importTrace(tr, in: dir)
        let empty = try TraceStore(path: dir.file("t.db"))
        #expect(try empty.top(by: .line, inclusive: true).rows.isEmpty)
        #expect(try empty.stalls().isEmpty)
    }
}
