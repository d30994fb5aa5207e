// Shared helpers for the export, report and diff tests: temporary directories, a hand-built
// trace whose runs, I/O waits, stalls, stacks and victims are known exactly (imported into a
// real SQLite file), and running real programs (the unclog executable, headless Chromium).

import Foundation
import Testing
import UnclogImport
import UnclogQuery
import UnclogStore
import UnclogTestSupport
import UnclogTrace

func ms(_ v: Int64) -> Int64 { v * 1_000_000 }

/// A recording of one hub thread (tid 10, hub greenthread 1) and workers 2…5, with a watchdog
/// thread (99) sampling stacks. What happens, in ms since the start:
///
///      1–5   hub waits on I/O (timeout 5 ms, 1 fd ready)
///     10     worker 2 runs (ready since 9) and stalls in `fetch` (app.py:`fetchLine`) for `fetchStall` ms
///            worker 3 has been ready since 20, worker 4 since 25: both are its victims
///     then   3 runs 2 ms, 4 runs 1 ms; hub waits on I/O 5 ms
///     +10    worker 5 runs and stalls in `parse` (app.py:`parseLine`) for `parseStall` ms; 2 ready
///            since its start is its victim, then runs 1 ms
///     extra  (optional) worker 3 stalls `extraStall` ms in `compress` (zlib_util.py:5)
///
/// Worker 2 thus runs twice (a flow chain of 2), the others once or twice. As a recorder does,
/// a stall is reported (StallEnd) only when it reaches the 10 ms threshold.
struct Scenario {
    var fetchLine: UInt64 = 42
    var fetchStall: Int64 = 60
    var parseLine: UInt64 = 77
    var parseStall: Int64 = 30
    var extraStall: Int64? = nil
    var pid: UInt64 = 4242
    /// A second OS thread (tid 20, hub 50): worker 51 stalls 12–27 ms in `parse`, worker 52
    /// (ready since 14 ms) is its victim, then 51 runs again at 40 ms.
    var secondThread = false

    /// Times (ns) of the stalls, for the assertions.
    var fetchStart: Int64 { ms(10) }
    var fetchEnd: Int64 { ms(10 + fetchStall) }
    var parseStart: Int64 { fetchEnd + ms(2 + 1 + 5 + 10) }

    func bytes() -> [UInt8] {
        final class Sink: @unchecked Sendable { var bytes: [UInt8] = [] }
        let sink = Sink()
        let anchor: UInt64 = 7_000_000_000
        let b = TraceBuilder(
            metadata: [
                MetadataEntry("clock", .string("CLOCK_MONOTONIC")), MetadataEntry("anchor_mono_ns", .uint(anchor)),
                MetadataEntry("anchor_wall_ns", .uint(1_764_000_000_000_000_000)), MetadataEntry("pid", .uint(pid)),
                MetadataEntry("argv", .list(["python3", "crawler.py", "--pages", "10"])),
                MetadataEntry("hostname", .string("testhost")),
                MetadataEntry("runtime", .string("eventlet")), MetadataEntry("runtime_version", .string("0.41.3")),
                MetadataEntry("threshold_ns", .uint(10_000_000)), MetadataEntry("sample_interval_ns", .uint(5_000_000)),
            ], anchorTime: anchor, sink: { sink.bytes += $0 })
        let th: UInt32 = 10, wd: UInt32 = 99
        func at(_ t: Int64, _ thread: UInt32, _ k: TraceEvent.Kind) {
            b.append(TraceEvent(time: anchor + UInt64(t), k), thread: thread)
        }
        var sid: UInt32 = 0
        func str(_ s: String) -> UInt32 { sid += 1; at(0, th, .string(id: sid, value: s)); return sid }
        let app = str("app.py"), hubFile = str("eventlet/hubs/hub.py"), zlib = str("zlib_util.py")
        at(0, th, .frame(id: 1, flags: .internal, function: str("switch"), file: hubFile, line: 300))
        at(0, th, .frame(id: 2, flags: [], function: str("fetch"), file: app, line: fetchLine))
        at(0, th, .frame(id: 3, flags: [], function: str("handler"), file: app, line: 10))
        at(0, th, .frame(id: 4, flags: [], function: str("parse"), file: app, line: parseLine))
        at(0, th, .frame(id: 5, flags: [], function: str("compress"), file: zlib, line: 5))
        at(0, th, .stack(id: 1, frames: [1, 2, 3]))  // fetch < handler (runtime frame innermost)
        at(0, th, .stack(id: 2, frames: [4, 3]))  // parse < handler
        at(0, th, .stack(id: 3, frames: [5, 3]))  // compress < handler
        at(0, th, .thread(tid: th, name: str("MainThread")))
        at(0, wd, .thread(tid: wd, name: str("unclog-watchdog")))
        at(0, th, .greenthreadCreate(gt: 1, name: str("hub"), spawnStack: 0, parent: 0))
        for gt in 2...5 as ClosedRange<UInt32> {
            at(0, th, .greenthreadCreate(gt: gt, name: str(gt == 5 ? "parser" : "fetch_page"), spawnStack: 0, parent: 1))
        }
        at(0, th, .running(gt: 1, hub: 1))
        at(ms(1), th, .ioWaitBegin(timeout: UInt64(ms(5))))
        at(ms(5), th, .ioWaitEnd(ready: 1))
        // Stall 1: worker 2 in fetch.
        var t = ms(10)
        at(t, th, .switchTo(to: 2, reason: .io, readyDelta: UInt64(ms(1))))
        at(t + ms(fetchStall) / 2, wd, .stallSample(tid: th, stack: 1, state: 1))
        t += ms(fetchStall)
        if fetchStall >= 10 { at(t, th, .stallEnd(gt: 2, duration: UInt64(ms(fetchStall)), stack: 1)) }
        at(t, th, .switchToHub)
        at(t, th, .switchTo(to: 3, reason: .timer, readyDelta: UInt64(max(0, t - ms(20)))))
        t += ms(2)
        at(t, th, .switchToHub)
        at(t, th, .switchTo(to: 4, reason: .io, readyDelta: UInt64(max(0, t - ms(25)))))
        t += ms(1)
        at(t, th, .switchToHub)
        at(t, th, .ioWaitBegin(timeout: nil))
        t += ms(5)
        at(t, th, .ioWaitEnd(ready: 2))
        t += ms(10)
        // Stall 2: worker 5 in parse; worker 2 ready since it began.
        let s2 = t
        at(t, th, .switchTo(to: 5, reason: .io, readyDelta: 0))
        t += ms(parseStall)
        if parseStall >= 10 { at(t, th, .stallEnd(gt: 5, duration: UInt64(ms(parseStall)), stack: 2)) }
        at(t, th, .switchToHub)
        at(t, th, .switchTo(to: 2, reason: .io, readyDelta: UInt64(t - s2)))
        t += ms(1)
        at(t, th, .switchToHub)
        if let extraStall {
            t += ms(3)
            at(t, th, .switchTo(to: 3, reason: .timer, readyDelta: 0))
            t += ms(extraStall)
            at(t, th, .stallEnd(gt: 3, duration: UInt64(ms(extraStall)), stack: 3))
            at(t, th, .switchToHub)
        }
        if secondThread {
            let t2: UInt32 = 20
            at(0, t2, .string(id: 900, value: "worker-thread"))
            at(0, t2, .string(id: 901, value: "hub-2"))
            at(0, t2, .string(id: 902, value: "job"))
            at(0, t2, .thread(tid: t2, name: 900))
            at(0, t2, .greenthreadCreate(gt: 50, name: 901, spawnStack: 0, parent: 0))
            at(0, t2, .greenthreadCreate(gt: 51, name: 902, spawnStack: 0, parent: 50))
            at(0, t2, .greenthreadCreate(gt: 52, name: 902, spawnStack: 0, parent: 50))
            at(0, t2, .running(gt: 50, hub: 50))
            at(ms(12), t2, .switchTo(to: 51, reason: .io, readyDelta: 0))
            at(ms(27), t2, .stallEnd(gt: 51, duration: UInt64(ms(15)), stack: 2))
            at(ms(27), t2, .switchToHub)
            at(ms(27), t2, .switchTo(to: 52, reason: .timer, readyDelta: UInt64(ms(13))))
            at(ms(28), t2, .switchToHub)
            at(ms(40), t2, .switchTo(to: 51, reason: .io, readyDelta: 0))
            at(ms(41), t2, .switchToHub)
        }
        b.finish(at: anchor + UInt64(t + ms(2)))
        return sink.bytes
    }

    /// Writes the trace and imports it into `dir/name.db`; returns the database path.
    @discardableResult
    func imported(in dir: TempDir, name: String = "t") throws -> String {
        let trace = dir.file(name + ".trace")
        FileManager.default.createFile(atPath: trace, contents: Data(bytes()))
        let db = dir.file(name + ".db")
        _ = try TraceImporter.run(ImportOptions(tracePath: trace, databasePath: db))
        return db
    }
}

/// The unclog executable (UnclogTestSupport finds it).
func unclogExecutable() throws -> String {
    switch UnclogExecutable.path {
    case .success(let path): return path
    case .failure(let missing): throw StoreError(missing.description)
    }
}

/// Parses a JSON file with Foundation (an independent parser of what the exporter wrote).
func parseJSON(_ path: String) throws -> Any {
    try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path)))
}
