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
// Times are microseconds since the trace start. Each is written as the exact nanosecond
// value plus half a nanosecond (`12.3455` for 12 345 ns): viewers that parse a timestamp by
// multiplying a double by 1000 and truncating (Perfetto does) then get the exact nanosecond,
// and back-to-back events never overlap by a rounding error.
//
// Streaming: rows go from SQLite cursors straight into a 1 MiB output buffer; the only state
// kept is a bounded cache of greenthread names. Per thread, runs come from the slices id
// range and stalls from the stalls_by_thread index, merged in time order.

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
    public static func export(_ store: TraceStore, to out: ByteWriter,
                              options: ChromeExportOptions = ChromeExportOptions()) throws(StoreError) -> ChromeExportSummary {
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

        out.write("{\"traceEvents\":[\n")

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
        let slices = try store.db.prepare("""
            SELECT id, gt_key, ready_ns, start_ns, end_ns, reason, prev_id FROM slices
            WHERE id >= ?1 AND id < ?2 AND thread_key = ?3 AND end_ns >= ?4 AND start_ns <= ?5 ORDER BY id
            """)
        let stallStarts = try store.db.prepare("""
            SELECT start_ns, gt_key, duration_ns FROM stalls WHERE thread_key = ?1 ORDER BY start_ns
            """)
        let ios = try store.db.prepare("""
            SELECT start_ns, end_ns, timeout_ns, nready FROM io_waits
            WHERE id >= ?1 AND id < ?2 AND thread_key = ?3 AND end_ns >= ?4 AND start_ns <= ?5 ORDER BY id
            """)
        /// The id range of a thread's slices (kind 1) or I/O waits (kind 2) in the window.
        func range(_ kind: Int64, _ th: ThreadSummary) throws(StoreError) -> [SQLValue] {
            if options.from == nil && options.to == nil { return [.int(trace.id << 40), .int((trace.id + 1) << 40)] }
            let (lo, hi) = try store.checkpointRange(kind: kind, threadKey: th.key, trace: trace.id, from: from, to: to)
            return [.int(lo), .int(hi)]
        }

        for th in threads {
            let runPrefix = Array("{\"ph\":\"X\",\"pid\":\(pid),\"tid\":\(th.tid)".utf8)
            // Runs, flagged when a stall began with them (both cursors in time order).
            try stallStarts.bind([.int(th.key)])
            var nextStall: (start: Int64, gt: Int64, dur: Int64)? = try stallStarts.step()
                ? (stallStarts.int(0), stallStarts.int(1), stallStarts.int(2)) : nil
            try slices.bind(try range(1, th) + [.int(th.key), .int(from), .int(to)])
            while try slices.step() {
                let id = slices.int(0), gtKey = slices.int(1), start = slices.int(3), end = slices.int(4)
                var stallNs: Int64? = nil
                while let ns = nextStall, ns.start <= start {
                    if ns.start == start && ns.gt == gtKey { stallNs = ns.dur }
                    nextStall = try stallStarts.step() ? (stallStarts.int(0), stallStarts.int(1), stallStarts.int(2)) : nil
                }
                let g = try names.info(gtKey)
                begin()
                out.write(bytes: runPrefix)  // {"ph":"X","pid":…,"tid":…
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
            stallStarts.reset()

            // Hub I/O waits.
            try ios.bind(try range(2, th) + [.int(th.key), .int(from), .int(to)])
            while try ios.step() {
                begin()
                common("X", tid: th.tid)
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
        }

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

        out.write("\n],\"displayTimeUnit\":\"ms\",\"otherData\":{\"generator\":\"unclog export\",\"unclog_trace_id\":")
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
