// Runs the real `unclog` executable (found by UnclogTestSupport) on real files, and a small
// recording written with the reference writer.

import Foundation
import Testing
import UnclogTestSupport
import UnclogTrace

enum CLI {
    /// The path of the `unclog` executable, or nil with the places searched.
    static var executable: Result<String, UnclogExecutable.Missing> { UnclogExecutable.path }

    /// Runs `unclog args…` in `cwd` and waits for it (COLUMNS=200: tables are not cut to a terminal).
    static func run(_ args: [String], cwd: String? = nil) throws -> ProgramRun {
        try runProgram(try executable.get(), args, env: ["COLUMNS": "200"], cwd: cwd)
    }
}

func ms(_ v: UInt64) -> UInt64 { v * 1_000_000 }

/// A small recording of a web-ish Eventlet program, written with the reference writer:
/// thread 10 (hub 1) runs `handle_request` greenthreads 2 and 3 and `poller` 4.
///   - gt 2 stalls 120 ms in `load_config config.py:17` (sampled 3 times by the watchdog,
///     thread 99); gt 3 (ready since 30 ms) waits 100 ms of it, gt 4 (ready since 5 ms) 120 ms.
///   - gt 3 stalls 40 ms in `render templates.py:88` (no samples: its end stack).
///   - gt 4 stalls 15 ms in `load_config config.py:17`.
///   - the rest is short slices and I/O waits.
/// Stalls: 120, 40, 15 ms — 175 ms in all.
struct Recording {
    static let anchor: UInt64 = 7_000_000_000
    var bytes: [UInt8] = []
    /// Offsets of each chunk in the file.
    var chunkOffsets: [Int] = []

    init() {
        final class Sink { var bytes: [UInt8] = [] }
        let sink = Sink()
        let b = TraceBuilder(
            metadata: [
                MetadataEntry("clock", .string("CLOCK_MONOTONIC")),
                MetadataEntry("anchor_mono_ns", .uint(Recording.anchor)),
                MetadataEntry("pid", .uint(31337)),
                MetadataEntry("argv", .list(["python3", "server.py", "--port", "8080"])),
                MetadataEntry("hostname", .string("test-host")),
                MetadataEntry("runtime", .string("eventlet")),
                MetadataEntry("runtime_version", .string("0.36.1")),
                MetadataEntry("threshold_ns", .uint(ms(10))),
                MetadataEntry("sample_interval_ns", .uint(ms(20))),
            ], anchorTime: Recording.anchor, sink: { sink.bytes += $0 })
        func at(_ t: UInt64, _ th: UInt32, _ k: TraceEvent.Kind) {
            b.append(TraceEvent(time: Recording.anchor + t, k), thread: th)
        }
        let strings = [
            "MainThread", "hub", "handle_request", "poller", "load_config", "config.py", "handle", "server.py",
            "main", "render", "templates.py", "trampoline", "eventlet/hubs/hub.py", "unclog-watchdog",
        ]
        for (i, s) in strings.enumerated() { at(0, 10, .string(id: UInt32(i + 1), value: s)) }
        // Frames: 1 load_config config.py:17, 2 handle server.py:40, 3 main server.py:99,
        // 4 render templates.py:88, 5 trampoline hub.py:200 (internal).
        at(0, 10, .frame(id: 1, flags: [], function: 5, file: 6, line: 17))
        at(0, 10, .frame(id: 2, flags: [], function: 7, file: 8, line: 40))
        at(0, 10, .frame(id: 3, flags: [], function: 9, file: 8, line: 99))
        at(0, 10, .frame(id: 4, flags: [], function: 10, file: 11, line: 88))
        at(0, 10, .frame(id: 5, flags: .internal, function: 12, file: 13, line: 200))
        at(0, 10, .stack(id: 1, frames: [5, 1, 2, 3]))  // sampled inside load_config
        at(0, 10, .stack(id: 2, frames: [4, 2, 3]))  // render
        at(0, 10, .stack(id: 3, frames: [5, 2, 3]))  // where slices end: the hub switch
        at(0, 10, .thread(tid: 10, name: 1))
        at(0, 99, .thread(tid: 99, name: 14))
        at(0, 10, .greenthreadCreate(gt: 1, name: 2, spawnStack: 0, parent: 0))
        at(0, 10, .greenthreadCreate(gt: 2, name: 3, spawnStack: 3, parent: 1))
        at(0, 10, .greenthreadCreate(gt: 3, name: 3, spawnStack: 3, parent: 1))
        at(0, 10, .greenthreadCreate(gt: 4, name: 4, spawnStack: 3, parent: 1))
        at(0, 10, .running(gt: 1, hub: 1))
        at(0, 10, .ioWaitBegin(timeout: ms(5)))
        at(ms(5), 10, .ioWaitEnd(ready: 1))
        at(ms(10), 10, .switchTo(to: 2, reason: .io, readyDelta: ms(5)))
        // The watchdog notices gt 2 and samples it.
        at(ms(25), 99, .stallBegin(tid: 10, gt: 2, sinceDelta: ms(15)))
        at(ms(30), 99, .stallSample(tid: 10, stack: 1, state: 2 + 7))
        at(ms(50), 99, .stallSample(tid: 10, stack: 1, state: 2 + 7))
        at(ms(70), 99, .stallSample(tid: 10, stack: 1, state: 2 + 7))
        at(ms(130), 10, .stallEnd(gt: 2, duration: ms(120), stack: 3))
        at(ms(130), 10, .switchToHub)
        at(ms(130), 10, .switchTo(to: 3, reason: .timer, readyDelta: ms(100)))  // ready since 30 ms
        at(ms(170), 10, .stallEnd(gt: 3, duration: ms(40), stack: 2))
        at(ms(170), 10, .switchToHub)
        at(ms(170), 10, .switchTo(to: 4, reason: .io, readyDelta: ms(165)))  // ready since 5 ms
        at(ms(185), 10, .stallEnd(gt: 4, duration: ms(15), stack: 1))
        at(ms(185), 10, .switchToHub)
        for i in 0..<20 as Range<UInt64> {
            let t = ms(190) + i * ms(2)
            at(t, 10, .ioWaitBegin(timeout: nil))
            at(t + 500_000, 10, .ioWaitEnd(ready: 1))
            at(t + 500_000, 10, .switchTo(to: 2 + UInt32(i % 3), reason: .io, readyDelta: 0))
            at(t + 900_000, 10, .switchToHub)
            if i == 10 { b.flushAll() }
        }
        at(ms(240), 10, .greenthreadExit(gt: 3))
        b.finish(at: Recording.anchor + ms(250))
        bytes = sink.bytes
        var at = TraceFormat.fileHeaderSize
        while at + TraceFormat.chunkHeaderSize <= bytes.count {
            chunkOffsets.append(at)
            at +=
                TraceFormat.chunkHeaderSize
                + (Int(bytes[at + 4]) | Int(bytes[at + 5]) << 8 | Int(bytes[at + 6]) << 16 | Int(bytes[at + 7]) << 24)
        }
    }

    @discardableResult
    func write(to path: String) -> String {
        FileManager.default.createFile(atPath: path, contents: Data(bytes))
        return path
    }
}
