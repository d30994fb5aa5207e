// `make bench`: generates a synthetic 10M-event Eventlet-like trace, measures its size, the
// import rate against SQLite's raw insert ceiling measured in the same run, import peak
// memory at two trace sizes, the query commands' times, and the Perfetto export and HTML
// report times and peak memory. Writes .bench/core.json.

import Foundation
import UnclogTrace

struct Args {
    var events: UInt64 = 10_000_000
    var small: UInt64 = 5_000_000
    var unclog = ".build/release/unclog"
    var ceiling = ".bench/sqlite-ceiling"
    var out = ".bench"
}

func parseArgs() -> Args {
    var a = Args()
    var it = CommandLine.arguments.dropFirst().makeIterator()
    while let arg = it.next() {
        switch arg {
        case "--events": a.events = UInt64(it.next() ?? "") ?? a.events
        case "--small": a.small = UInt64(it.next() ?? "") ?? a.small
        case "--unclog": a.unclog = it.next() ?? a.unclog
        case "--ceiling": a.ceiling = it.next() ?? a.ceiling
        case "--out": a.out = it.next() ?? a.out
        default:
            print("usage: unclog-bench [--events N] [--small N] [--unclog BIN] [--ceiling BIN] [--out DIR]")
            exit(2)
        }
    }
    return a
}

/// Runs a program with stdout to /dev/null; returns wall seconds, peak RSS (MB) and stdout if captured.
func measure(_ argv: [String], capture: Bool = false) -> (seconds: Double, peakMB: Double, output: String, status: Int32) {
    let outPath = NSTemporaryDirectory() + "unclog-bench-\(getpid()).out"
    var actions: posix_spawn_file_actions_t = .init()
    posix_spawn_file_actions_init(&actions)
    posix_spawn_file_actions_addopen(&actions, 1, capture ? outPath : "/dev/null", O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    let cArgs = argv.map { strdup($0) } + [nil]
    defer { for p in cArgs { free(p) } }
    var pid: pid_t = 0
    let start = Date()
    guard posix_spawn(&pid, argv[0], &actions, nil, cArgs, environ) == 0 else {
        print("bench: cannot run \(argv[0])")
        exit(1)
    }
    var status: Int32 = 0
    var usage = rusage()
    wait4(pid, &status, 0, &usage)
    let seconds = Date().timeIntervalSince(start)
    posix_spawn_file_actions_destroy(&actions)
    let output = capture ? ((try? String(contentsOfFile: outPath, encoding: .utf8)) ?? "") : ""
    if capture { unlink(outPath) }
    return (seconds, Double(usage.ru_maxrss) / 1024.0, output, (status >> 8) & 0xFF)
}

func generate(_ path: String, events: UInt64) -> (bytes: UInt64, events: UInt64, stalls: Int, seconds: Double) {
    let start = Date()
    guard
        let fh = FileHandle(forWritingAtPath: path)
            ?? {
                _ = FileManager.default.createFile(atPath: path, contents: nil)
                return FileHandle(forWritingAtPath: path)
            }()
    else { print("bench: cannot write \(path)"); exit(1) }
    fh.truncateFile(atOffset: 0)
    var bytes: UInt64 = 0
    var pending: [UInt8] = []
    pending.reserveCapacity(4 << 20)
    let anchor: UInt64 = 1_000_000_000_000
    let builder = TraceBuilder(
        metadata: [
            MetadataEntry("clock", .string("CLOCK_MONOTONIC")), MetadataEntry("anchor_mono_ns", .uint(anchor)),
            MetadataEntry("anchor_wall_ns", .uint(1_764_000_000_000_000_000)), MetadataEntry("pid", .uint(4242)),
            MetadataEntry("argv", .list(["python3", "crawler.py"])), MetadataEntry("hostname", .string("bench")),
            MetadataEntry("runtime", .string("eventlet")), MetadataEntry("runtime_version", .string("0.41.3")),
            MetadataEntry("recorder", .string("unclog-bench synthetic")), MetadataEntry("threshold_ns", .uint(50_000_000)),
            MetadataEntry("sample_interval_ns", .uint(10_000_000)),
        ], anchorTime: anchor
    ) { chunk in
        pending += chunk
        bytes += UInt64(chunk.count)
        if pending.count >= 4 << 20 {
            fh.write(Data(pending))
            pending.removeAll(keepingCapacity: true)
        }
    }
    let stalls = generateEventletLikeTrace(events: events, builder: builder, start: anchor + 1_000)
    fh.write(Data(pending))
    try? fh.close()
    return (bytes, builder.events, stalls, Date().timeIntervalSince(start))
}

func f(_ v: Double, _ digits: Int = 2) -> String { String(format: "%.\(digits)f", v) }

let args = parseArgs()
try? FileManager.default.createDirectory(atPath: args.out, withIntermediateDirectories: true)
let big = "\(args.out)/core.trace", small = "\(args.out)/core-small.trace"
let bigDB = "\(args.out)/core.db", smallDB = "\(args.out)/core-small.db"

print("generating \(args.events) events…")
let g = generate(big, events: args.events)
let gs = generate(small, events: args.small)
let bytesPerEvent = Double(g.bytes) / Double(g.events)

print("measuring the SQLite ceiling (\(g.events) rows)…")
let ceilingRun = measure([args.ceiling, "\(args.out)/ceiling.db", String(g.events)], capture: true)
let ceiling = Double(ceilingRun.output.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
unlink("\(args.out)/ceiling.db")

print("importing…")
for p in [bigDB, smallDB] { unlink(p) }
let imp = measure([args.unclog, "import", big, "-o", bigDB, "--quiet"])
let impSmall = measure([args.unclog, "import", small, "-o", smallDB, "--quiet"])
if imp.status != 0 { print("bench: import failed (exit \(imp.status))"); exit(1) }
let importRate = Double(g.events) / imp.seconds

print("querying…")
let stallsRun = measure([args.unclog, "stalls", bigDB, "--format", "json"])
let topRun = measure([args.unclog, "top", bigDB])
let topIncl = measure([args.unclog, "top", bigDB, "--inclusive", "--by", "function"])
let timelineRun = measure([args.unclog, "timeline", bigDB, "--greenthread", "500", "--from", "20s", "--to", "30s"])
let timelineAll = measure([args.unclog, "timeline", bigDB, "--from", "20s", "--to", "21s"])

// Perfetto JSON export and HTML report (issue 5), at both sizes: time, peak memory (flat?), output size.
print("exporting and reporting…")
func outputMB(_ path: String) -> Double {
    let size = ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? NSNumber)?.doubleValue ?? 0
    unlink(path)
    return size / 1_048_576
}
let exportRun = measure([args.unclog, "export", bigDB, "-o", "\(args.out)/export.json", "--quiet"])
let exportMB = outputMB("\(args.out)/export.json")
let exportSmall = measure([args.unclog, "export", smallDB, "-o", "\(args.out)/export.json", "--quiet"])
_ = outputMB("\(args.out)/export.json")
let reportRun = measure([args.unclog, "report", bigDB, "-o", "\(args.out)/report.html", "--quiet"])
let reportKB = outputMB("\(args.out)/report.html") * 1024
let reportSmall = measure([args.unclog, "report", smallDB, "-o", "\(args.out)/report.html", "--quiet"])
_ = outputMB("\(args.out)/report.html")

let rows: [(String, String, String)] = [
    ("trace events", "\(g.events)", "\(g.stalls) stalls, \(g.bytes >> 20) MiB, generated in \(f(g.seconds)) s"),
    ("bytes per event", f(bytesPerEvent, 3), "target ≤ 6"),
    ("SQLite ceiling", "\(f(ceiling / 1e6)) M rows/s", "C, 8 int columns, 64 rows/step, journal off"),
    ("import", "\(f(importRate / 1e6)) M events/s", "\(f(imp.seconds)) s for \(g.events) events, indexes included"),
    ("import / ceiling", f(importRate / ceiling), "target ≥ 0.9"),
    (
        "import peak memory", "\(f(imp.peakMB, 0)) MB",
        "\(f(impSmall.peakMB, 0)) MB at \(gs.events) events (both past the 64 MiB page cache); target < 200, flat"
    ),
    ("stalls (json)", "\(f(stallsRun.seconds, 3)) s", "target < 1 s"),
    ("top", "\(f(topRun.seconds, 3)) s", "inclusive by function: \(f(topIncl.seconds, 3)) s; target < 1 s"),
    ("timeline, 1 greenthread", "\(f(timelineRun.seconds, 3)) s", "10 s window; target < 0.2 s"),
    ("timeline, all, 1 s", "\(f(timelineAll.seconds, 3)) s", "thread + 40 busiest greenthreads"),
    (
        "export (Perfetto JSON)", "\(f(exportRun.seconds)) s",
        "\(f(exportMB, 0)) MiB; peak \(f(exportRun.peakMB, 0)) MB (\(f(exportSmall.peakMB, 0)) MB at \(gs.events) events)"
    ),
    (
        "report (HTML)", "\(f(reportRun.seconds)) s",
        "\(f(reportKB, 0)) KiB; peak \(f(reportRun.peakMB, 0)) MB (\(f(reportSmall.peakMB, 0)) MB at \(gs.events) events)"
    ),
]
let w0 = rows.map(\.0.count).max()!, w1 = rows.map(\.1.count).max()!
print("")
for r in rows {
    print(
        r.0.padding(toLength: w0, withPad: " ", startingAt: 0) + "  "
            + String(repeating: " ", count: w1 - r.1.count) + r.1 + "  " + r.2)
}
let json = """
    {
      "events": \(g.events),
      "bytes_per_event": \(f(bytesPerEvent, 3)),
      "import_events_per_s": \(Int(importRate)),
      "ceiling_rows_per_s": \(Int(ceiling)),
      "import_ratio": \(f(importRate / ceiling, 3)),
      "import_peak_mb": \(f(imp.peakMB, 1)),
      "import_peak_mb_small": \(f(impSmall.peakMB, 1)),
      "stalls_s": \(f(stallsRun.seconds, 3)),
      "top_s": \(f(topRun.seconds, 3)),
      "timeline_s": \(f(timelineRun.seconds, 3)),
      "export_s": \(f(exportRun.seconds, 3)),
      "export_peak_mb": \(f(exportRun.peakMB, 1)),
      "export_peak_mb_small": \(f(exportSmall.peakMB, 1)),
      "export_mb": \(f(exportMB, 1)),
      "report_s": \(f(reportRun.seconds, 3)),
      "report_peak_mb": \(f(reportRun.peakMB, 1)),
      "report_peak_mb_small": \(f(reportSmall.peakMB, 1))
    }

    """
try? json.write(toFile: "\(args.out)/core.json", atomically: true, encoding: .utf8)
print("\nwrote \(args.out)/core.json")
