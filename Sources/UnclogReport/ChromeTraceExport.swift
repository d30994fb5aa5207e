// `unclog export`: one trace of a database as Chrome Trace Event Format JSON, the format that
// ui.perfetto.dev and chrome://tracing open (the "JSON Object Format": {"traceEvents": […]}).
//
// What is written (pid = the recorded process):
//  * a track per OS thread (tid = the OS thread id) holding a complete event ("X") per
//    greenthread run, named `<greenthread> #<id>` so each greenthread gets its own colour,
//    and one per hub I/O wait ("I/O wait", category "io"). A run that stalled gets category
//    "stall" and a `stall_ms` argument; every run says why it ran and how long it was ready
//    before (`why`, `ready_us`);
//  * a second track per OS thread, "stalls on <thread>" (tid 0x40000000 + the OS tid), with
//    one event per stall, named by its call site, whose args carry the greenthread, the whole
//    stack (innermost first), stack samples and the victims with their wait;
//  * each greenthread's runs chained by flow events (Perfetto's "v2" flows: `bind_id` = the
//    greenthread's id, `flow_in`/`flow_out` on the run events), so selecting a run in Perfetto
//    leads to its previous and next runs, across threads too;
//  * process and thread names ("M" metadata events) and sort order.
//
// Perfetto's JSON reader takes an event's `ts` from its top-level keys and gives up on the
// whole file if it meets an array there first: arrays (stacks, victims) live inside `args`.
//
// Times are microseconds since the trace start. Each is written as the exact nanosecond
// value plus half a nanosecond (`12.3455` for 12 345 ns): viewers that parse a timestamp by
// multiplying a double by 1000 and truncating (Perfetto does) then get the exact nanosecond,
// and back-to-back events never overlap by a rounding error.
//
// Streaming: rows go from SQLite cursors straight into the output buffers (written by a
// background thread); the only state kept is a bounded cache of greenthread names and one
// stall cursor per OS thread. Runs come from one pass over the trace's slices id range
// (each thread's rows are in its time order), merged with its stalls from the
// stalls_by_thread index to flag the runs that stalled; I/O waits from one pass likewise.

import UnclogQuery
import UnclogStore

/// What to export.
public struct ChromeExportOptions: Sendable {
    /// The trace of the database; nil = the most recent.
    public var traceID: Int64?
    /// Chain each greenthread's runs with flow events.
    public var flows: Bool = true
    /// Victims listed in each stall's args.
    public var victimsPerStall: Int = 20
    /// Only what overlaps this window (ns since the trace start); nil = from the start / to the end.
    public var from: Int64?
    public var to: Int64?

    public init(traceID: Int64? = nil, flows: Bool = true, victimsPerStall: Int = 20, from: Int64? = nil, to: Int64? = nil) {
        self.traceID = traceID
        self.flows = flows
        self.victimsPerStall = victimsPerStall
        self.from = from
        self.to = to
    }
}

/// What was written.
public struct ChromeExportSummary: Sendable {
    public var traceID: Int64
    public var traceCount: Int
    public var threads = 0
    public var runs = 0
    public var ioWaits = 0
    public var stalls = 0
    public var bytes: Int64 = 0
    /// All trace events written, metadata included.
    public var events = 0
}

/// The Chrome Trace Event Format exporter.
public enum ChromeTraceExport {
    /// Tid of the stall track of OS thread `tid` (Perfetto reads tids as 32-bit unsigned).
    public static func stallTrackTid(_ tid: Int64, index: Int) -> Int64 {
        tid >= 0 && tid < 0x4000_0000 ? 0x4000_0000 + tid : 0xF000_0000 + Int64(index)
    }

    /// `,"args":{"why":"<reason>"` for slices.reason 0…5 (switch_reasons).
    static let reasonArgs: [StaticString] = [
        ",\"args\":{\"why\":\"unknown\"", ",\"args\":{\"why\":\"timer\"", ",\"args\":{\"why\":\"io\"",
        ",\"args\":{\"why\":\"spawn\"", ",\"args\":{\"why\":\"explicit\"", ",\"args\":{\"why\":\"other\"",
    ]

    /// Writes the trace to `out` (and finishes it: the file appears complete or not at all).
    public static func export(
        _ store: TraceStore, to out: ByteWriter,
        options: ChromeExportOptions = ChromeExportOptions()
    ) throws(StoreError) -> ChromeExportSummary {
        let trace = try store.traceSummary(options.traceID)
        var summary = ChromeExportSummary(traceID: trace.id, traceCount: trace.traceCount)
        let pid = trace.pid.flatMap { $0 >= 0 && $0 <= Int64(UInt32.max) ? $0 : nil } ?? trace.id
        let names = try GreenthreadNames(store)
        // Threads that ran nothing, waited on nothing and stalled nothing (e.g. the watchdog) get no track.
        let hasStalls = try store.db.prepare("SELECT 1 FROM stalls WHERE thread_key = ? LIMIT 1")
        var threads: [ThreadSummary] = []
        for th in try store.threads(trace: trace.id) {
            try hasStalls.bind([.int(th.key)])
            let stalled = try hasStalls.step()
            if th.slices > 0 || th.ioWaitNs > 0 || stalled { threads.append(th) }
            hasStalls.reset()
        }
        summary.threads = threads.count

        // Every event but the first is preceded by ",\n".
        var first = true
        func begin() {
            if first { first = false } else { out.write(",\n") }
            summary.events += 1
        }
        func common(_ ph: StaticString, tid: Int64) {
            out.write("{\"ph\":\"")
            out.write(ph)
            out.write("\",\"pid\":")
            out.int(pid)
            out.write(",\"tid\":")
            out.int(tid)
        }
        func time(_ key: StaticString, _ ns: Int64) {
            out.write(key)
            out.micros(ns)
            out.byte(UInt8(ascii: "5"))
        }
        func meta(_ name: StaticString, tid: Int64, key: StaticString = "name", value: () -> Void) {
            begin()
            common("M", tid: tid)
            out.write(",\"name\":\"")
            out.write(name)
            out.write("\",\"args\":{\"")
            out.write(key)
            out.write("\":")
            value()
            out.write("}}")
        }

        // displayTimeUnit first: Perfetto's reader only honours it (quietly) at the start.
        out.write("{\"displayTimeUnit\":\"ms\",\"traceEvents\":[\n")

        // Process and thread names.
        var processName = trace.commandLine
        if processName.isEmpty { processName = trace.runtime ?? "process" }
        processName += " (unclog trace \(trace.id))"
        meta("process_name", tid: pid) { out.jsonString(processName) }
        for (i, th) in threads.enumerated() {
            meta("thread_name", tid: th.tid) { out.jsonString(th.label) }
            meta("thread_sort_index", tid: th.tid, key: "sort_index") { out.int(Int64(2 * i)) }
            let st = stallTrackTid(th.tid, index: i)
            meta("thread_name", tid: st) { out.jsonString("stalls on \(th.label)") }
            meta("thread_sort_index", tid: st, key: "sort_index") { out.int(Int64(2 * i + 1)) }
        }

        let from = options.from ?? Int64.min, to = options.to ?? Int64.max
        // One pass over each table in id order (a thread's rows are in its time order), whatever
        // the number of threads; in a window, from the earliest to the latest checkpoint needed.
        func range(_ kind: Int64) throws(StoreError) -> [SQLValue] {
            var lo = StoreKey.rows(trace: trace.id).lowerBound, hi = StoreKey.rows(trace: trace.id).upperBound
            if options.from != nil || options.to != nil {
                var l = Int64.max, h = Int64.min
                for th in threads {
                    let (a, b) = try store.checkpointRange(kind: kind, threadKey: th.key, trace: trace.id, from: from, to: to)
                    l = min(l, a)
                    h = max(h, b)
                }
                if l <= h { lo = max(lo, l); hi = min(hi, h) }
            }
            return [.int(lo), .int(hi), .int(from), .int(to)]
        }

        /// Per thread: its event prefix and a cursor over its stalls by start time, to flag the
        /// runs that stalled.
        final class ThreadCursor {
            let tid: Int64
            let prefix: [UInt8]
            let stalls: Statement
            var next: (start: Int64, gt: Int64, dur: Int64)?
            init(_ store: TraceStore, key: Int64, tid: Int64, pid: Int64) throws(StoreError) {
                self.tid = tid
                prefix = Array("{\"ph\":\"X\",\"pid\":\(pid),\"tid\":\(tid)".utf8)
                stalls = try store.db.prepare(
                    "SELECT start_ns, gt_key, duration_ns FROM stalls WHERE thread_key = ?1 ORDER BY start_ns")
                try stalls.bind([.int(key)])
                try advance()
            }
            func advance() throws(StoreError) {
                next = try stalls.step() ? (stalls.int(0), stalls.int(1), stalls.int(2)) : nil
            }
            /// The duration of the stall that began with the run of `gt` at `start`, if one did.
            func stall(at start: Int64, gt: Int64) throws(StoreError) -> Int64? {
                var found: Int64? = nil
                while let n = next, n.start <= start {
                    if n.start == start && n.gt == gt { found = n.dur }
                    try advance()
                }
                return found
            }
        }
        var cursors: [Int64: ThreadCursor] = [:]
        for th in threads { cursors[th.key] = try ThreadCursor(store, key: th.key, tid: th.tid, pid: pid) }

        // Runs.
        let slices = try store.db.prepare(
            """
            SELECT id, gt_key, ready_ns, start_ns, end_ns, reason, prev_id, thread_key FROM slices
            WHERE id >= ?1 AND id < ?2 AND end_ns >= ?3 AND start_ns <= ?4 ORDER BY id
            """)
        try slices.bind(try range(1))
        var th: ThreadCursor? = nil
        var thKey = Int64.min
        while try slices.step() {
            let id = slices.int(0), gtKey = slices.int(1), start = slices.int(3), end = slices.int(4)
            let key = slices.int(7)
            if key != thKey {
                th = cursors[key]
                thKey = key
            }
            guard let th else { continue }
            let stallNs = try th.stall(at: start, gt: gtKey)
            let g = try names.info(gtKey)
            begin()
            out.write(bytes: th.prefix)  // {"ph":"X","pid":…,"tid":…
            time(",\"ts\":", start)
            time(",\"dur\":", end - start)
            out.write(bytes: g.jsonName)  // ,"name":"…"
            if stallNs != nil { out.write(",\"cat\":\"stall\"") }
            let flowIn = !slices.isNull(6), flowOut = g.lastSliceID != id
            if options.flows && (flowIn || flowOut) {
                out.write(bytes: g.jsonBind)  // ,"bind_id":…
                if flowIn { out.write(",\"flow_in\":true") }
                if flowOut { out.write(",\"flow_out\":true") }
            }
            let reason = Int(slices.int(5))
            out.write(reasonArgs[reason >= 0 && reason < reasonArgs.count ? reason : 0])
            if !slices.isNull(2) {
                out.write(",\"ready_us\":")
                out.micros(start - slices.int(2), digits: 1)
            }
            if let stallNs {
                out.write(",\"stall_ms\":")
                out.micros(stallNs / 1000, digits: 3)
            }
            out.write("}}")
            summary.runs += 1
        }
        slices.reset()

        // Hub I/O waits.
        let ios = try store.db.prepare(
            """
            SELECT start_ns, end_ns, timeout_ns, nready, thread_key FROM io_waits
            WHERE id >= ?1 AND id < ?2 AND end_ns >= ?3 AND start_ns <= ?4 ORDER BY id
            """)
        try ios.bind(try range(2))
        while try ios.step() {
            guard let th = cursors[ios.int(4)] else { continue }
            begin()
            out.write(bytes: th.prefix)
            let start = ios.int(0)
            time(",\"ts\":", start)
            time(",\"dur\":", ios.int(1) - start)
            out.write(",\"name\":\"I/O wait\",\"cat\":\"io\",\"args\":{\"timeout_ms\":")
            if ios.isNull(2) { out.write("null") } else { out.micros(ios.int(2) / 1000, digits: 3) }
            out.write(",\"ready_fds\":")
            if ios.isNull(3) { out.write("null") } else { out.int(ios.int(3)) }
            out.write("}}")
            summary.ioWaits += 1
        }
        ios.reset()
        cursors.removeAll()

        // Stalls, on each thread's stall track.
        var stallTid: [Int64: Int64] = [:]
        for (i, th) in threads.enumerated() { stallTid[th.key] = stallTrackTid(th.tid, index: i) }
        let reader = try StallReader(store, trace: trace.id, victimLimit: options.victimsPerStall)
        while let s = try reader.next() {
            guard let tid = stallTid[s.threadKey], s.endNs >= from, s.startNs <= to else { continue }
            let g = try names.info(s.gtKey)
            begin()
            common("X", tid: tid)
            time(",\"ts\":", s.startNs)
            time(",\"dur\":", s.durationNs)
            out.write(",\"name\":")
            out.jsonString("stall: \(s.site.function ?? "<unknown>")")
            out.write(",\"cat\":\"stall\",\"args\":{\"greenthread\":\"")
            out.write(bytes: g.jsonLabel)
            out.write("\",\"duration_ms\":")
            out.micros(s.durationNs / 1000, digits: 3)
            out.write(",\"call_site\":")
            out.jsonString(s.siteText)
            out.write(",\"complete\":")
            out.write(s.complete ? "true" : "false")
            out.write(",\"samples\":")
            out.int(s.samples)
            out.write(",\"stack\":[")
            for (i, f) in s.stack.enumerated() {
                if i > 0 { out.byte(UInt8(ascii: ",")) }
                out.jsonString(f.isInternal ? f.text + " [runtime]" : f.text)
            }
            out.write("],\"victims\":")
            out.int(s.victims)
            out.write(",\"victim_wait_ms\":")
            out.micros(s.victimWaitNs / 1000, digits: 3)
            out.write(",\"longest_waits\":[")
            for (i, v) in s.topVictims.enumerated() {
                if i > 0 { out.byte(UInt8(ascii: ",")) }
                out.jsonString("\(v.label): \(DurationText.format(v.waitNs))")
            }
            out.write("]}}")
            summary.stalls += 1
        }

        out.write("\n],\"otherData\":{\"generator\":\"unclog export\",\"unclog_trace_id\":")
        out.int(trace.id)
        out.write(",\"trace_file\":")
        out.jsonString(trace.path)
        out.write(",\"command\":")
        out.jsonString(trace.commandLine)
        out.write(",\"runtime\":")
        out.jsonString([trace.runtime, trace.runtimeVersion].compactMap { $0 }.joined(separator: " "))
        out.write(",\"hostname\":")
        out.jsonString(trace.hostname ?? "")
        out.write(",\"stall_threshold\":")
        out.jsonString(trace.thresholdNs.map(DurationText.format) ?? "")
        out.write("}}\n")
        try out.finish()
        summary.bytes = out.bytesWritten
        return summary
    }
}
