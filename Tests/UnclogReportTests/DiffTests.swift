// Tests of `unclog diff`: call sites matched across two recordings by function and file
// (an edit that moves the blocking call's line keeps the match), the measures compared, the
// order, the regression gate and its exit codes.

import Foundation
import Testing
import UnclogImport
import UnclogQuery
import UnclogStore
import UnclogTestSupport

@testable import UnclogReport

@Suite struct DiffTests {
    /// Before: fetch stalls 60 ms at app.py:42, parse 30 ms at :77.
    /// After: lines moved (fetch :47, parse :80), fetch 90 ms (+50%), parse 30 ms, and a new
    /// stall in compress (zlib_util.py) of 20 ms.
    func pair(
        after: Scenario = Scenario(fetchLine: 47, fetchStall: 90, parseLine: 80, extraStall: 20)
    )
        throws -> (TraceStore, TraceStore, TempDir)
    {
        let dir = TempDir()
        let b = try Scenario().imported(in: dir, name: "before")
        let a = try after.imported(in: dir, name: "after")
        return (try TraceStore(path: b), try TraceStore(path: a), dir)
    }

    @Test func matchesByFunctionAndFileNotLine() throws {
        let (b, a, dir) = try pair()
        defer { withExtendedLifetime(dir) {} }
        let r = try TraceDiff.diff(before: b, after: a)
        #expect(
            r.changes.map { "\($0.function ?? "?")@\($0.file ?? "?")" } == [
                "fetch@app.py", "compress@zlib_util.py", "parse@app.py",
            ])
        let fetch = r.changes[0]
        #expect(fetch.before.lines == [42] && fetch.after.lines == [47])
        #expect([fetch.before.totalNs, fetch.after.totalNs] == [ms(60), ms(90)])
        #expect([fetch.before.stalls, fetch.after.stalls] == [1, 1] as [Int64])
        #expect(fetch.stallTimeChange == 0.5)
        // Victims of fetch: workers 3 and 4, each kept waiting 30 ms longer.
        #expect([fetch.before.victimWaitNs, fetch.after.victimWaitNs] == [ms(95), ms(155)])
        #expect(fetch.status == .worse)  // no limit given: nothing is a regression
        #expect(r.changes[1].status == .new && r.changes[1].stallTimeChange == nil)
        #expect(r.changes[2].status == .same && r.changes[2].before.lines == [77] && r.changes[2].after.lines == [80])
        #expect(r.total.before.totalNs == ms(90) && r.total.after.totalNs == ms(140))
        #expect(!r.failed)
    }

    @Test func regressionGate() throws {
        let (b, a, dir) = try pair()
        defer { withExtendedLifetime(dir) {} }
        // +50% on fetch passes a 20% limit; the new compress site always does.
        let strict = try TraceDiff.diff(before: b, after: a, options: DiffOptions(regressionLimit: 0.2))
        #expect(strict.failed)
        #expect(strict.regressions.map { $0.function } == ["fetch", "compress"])
        #expect(strict.changes[0].regressedOn == ["stall time", "victim wait"])  // count stayed 1
        #expect(strict.changes[0].status == .regressed)
        // A 60% limit: fetch (+50%, victim wait +63%) regresses on victim wait only.
        let loose = try TraceDiff.diff(before: b, after: a, options: DiffOptions(regressionLimit: 0.6))
        #expect(loose.changes[0].regressedOn == ["victim wait"])
        // Ignoring sites under 50 ms keeps the 20 ms compress out of the gate.
        let noisy = try TraceDiff.diff(before: b, after: a, options: DiffOptions(regressionLimit: 0.7, ignoreBelowNs: ms(50)))
        #expect(noisy.regressions.isEmpty)
        #expect(noisy.total.regressedOn == [])  // 90 → 140 ms is +56%, stalls 2 → 3 +50%, victim wait +54%
        #expect(!noisy.failed)
        // The gate on chosen measures only: stall count alone — fetch kept its one stall.
        let counts = try TraceDiff.diff(before: b, after: a, options: DiffOptions(regressionLimit: 0.2, measures: [.stalls]))
        #expect(counts.changes[0].regressedOn == [] && counts.changes[0].status == .worse)
        #expect(counts.regressions.map { $0.function } == ["compress"])
        #expect(counts.regressions[0].regressedOn == ["stalls"])
    }

    /// A fix: the stall got shorter and the new site is gone — better, gone, no failure.
    @Test func improvement() throws {
        let dir = TempDir()
        let b = try TraceStore(path: try Scenario(extraStall: 20).imported(in: dir, name: "b"))
        let a = try TraceStore(path: try Scenario(fetchStall: 20).imported(in: dir, name: "a"))
        let r = try TraceDiff.diff(before: b, after: a, options: DiffOptions(regressionLimit: 0))
        #expect(r.changes.map(\.status) == [.better, .gone, .same])
        #expect(!r.failed)
        let same = try TraceDiff.diff(before: b, after: b, options: DiffOptions(regressionLimit: 0))
        #expect(same.changes.allSatisfy { $0.status == .same } && !same.failed)
    }

    @Test func jsonColumns() throws {
        let (b, a, dir) = try pair()
        defer { withExtendedLifetime(dir) {} }
        let r = try TraceDiff.diff(before: b, after: a, options: DiffOptions(regressionLimit: 0.2))
        let json = r.table(.json).render(.json)
        let rows = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [[String: Any]])
        #expect(rows.count == 3)
        #expect(rows[0]["function"] as? String == "fetch")
        #expect(rows[0]["lines_before"] as? [Int] == [42] && rows[0]["lines_after"] as? [Int] == [47])
        #expect(rows[0]["stall_ns_change"] as? Int == Int(ms(30)))
        #expect(rows[0]["stall_time_change"] as? Double == 0.5)
        #expect(rows[0]["regressed_on"] as? [String] == ["stall time", "victim wait"])
        #expect(rows[1]["stall_time_change"] is NSNull)
        let improvement = try TraceDiff.diff(before: a, after: b).table(.json).render(.json)
        let back = try #require(try JSONSerialization.jsonObject(with: Data(improvement.utf8)) as? [[String: Any]])
        #expect(back[0]["stall_time_change"] as? Double == -0.3333)
    }

    /// Exit codes: 1 when a regression passes the limit, 0 otherwise, 2 for bad input.
    @Test func cliExitCodes() throws {
        let dir = TempDir()
        let b = try Scenario().imported(in: dir, name: "before")
        let a = try Scenario(fetchLine: 47, fetchStall: 90).imported(in: dir, name: "after")
        let exe = try unclogExecutable()
        let fail = try runProgram(exe, ["diff", b, a, "--fail-on-regression", "20%"])
        #expect(fail.status == 1, "\(fail)")
        #expect(
            fail.stdout.contains("REGRESSED") && fail.stdout.contains("FAIL: 1 call site regressed by more than 20%"), "\(fail)")
        #expect(fail.stdout.contains("42 → 47"), "\(fail)")
        let pass = try runProgram(exe, ["diff", b, a, "--fail-on-regression", "70%"])
        #expect(pass.status == 0, "\(pass)")
        #expect(pass.stdout.contains("ok: no call site regressed by more than 70%"), "\(pass)")
        let report = try runProgram(exe, ["diff", b, a])
        #expect(report.status == 0, "\(report)")
        let bad = try runProgram(exe, ["diff", b, dir.file("missing.db")])
        #expect(bad.status == 2, "\(bad)")
        let usage = try runProgram(exe, ["diff", b, a, "--fail-on-regression", "lots"])
        #expect(usage.status == 2, "\(usage)")
        // fetch's victim wait grew 63%, its stall time 50%, its count not at all.
        let onCount = try runProgram(exe, ["diff", b, a, "--fail-on-regression", "20%", "--gate-on", "stalls"])
        #expect(onCount.status == 0, "\(onCount)")
        let onWait = try runProgram(exe, ["diff", b, a, "--fail-on-regression", "55%", "--gate-on", "stall-time", "victim-wait"])
        #expect(onWait.status == 1, "\(onWait)")
        #expect(onWait.stdout.contains("fetch (app.py): victim wait"), "\(onWait)")
    }
}
