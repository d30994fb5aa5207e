// `unclog report`: one self-contained HTML page about a trace (inline CSS, SVG and a little
// script; nothing is fetched from the network), for people who would rather look than query:
//  * a summary (program, runtime, how long it ran, how much of that was stalled);
//  * stalls over the whole recording, with the worst minutes marked;
//  * an SVG timeline of each worst minute: per OS thread how busy it was, its I/O waits and
//    its stalls; per greenthread involved (the stallers and their longest-waiting victims)
//    when it ran, when it was ready but kept waiting, and when it stalled;
//  * the top call sites (self, by line; inclusive, by function);
//  * the worst stalls with their whole stack and their victims.
//
// Streaming: timeline lanes are accumulated into fixed pixel columns while slices are read
// (memory is the column arrays, whatever the trace size); tables are limited to their top rows.

import UnclogQuery
import UnclogStore

/// What to put in the report.
public struct ReportOptions: Sendable {
    /// The trace of the database; nil = the most recent.
    public var traceID: Int64?
    /// Worst windows drawn, and their length (a shorter trace is drawn whole).
    public var windows: Int = 3
    public var windowNs: Int64 = 60_000_000_000
    /// Rows of the call-site tables and stall details.
    public var topSites: Int = 15
    public var worstStalls: Int = 10
    /// Greenthread lanes per window.
    public var greenthreadLanes: Int = 12

    public init(
        traceID: Int64? = nil, windows: Int = 3, windowNs: Int64 = 60_000_000_000, topSites: Int = 15,
        worstStalls: Int = 10, greenthreadLanes: Int = 12
    ) {
        self.traceID = traceID
        self.windows = windows
        self.windowNs = windowNs
        self.topSites = topSites
        self.worstStalls = worstStalls
        self.greenthreadLanes = greenthreadLanes
    }
}

/// What the report holds.
public struct ReportSummary: Sendable {
    public var traceID: Int64
    public var traceCount: Int
    public var stalls: Int64 = 0
    public var windows: [(from: Int64, to: Int64)] = []
    public var bytes: Int64 = 0
}

public enum HTMLReport {
    static let plotWidth = 900
    static let labelWidth = 190
    static let laneHeight = 18

    /// Writes the report to `out` (and finishes it).
    public static func write(
        _ store: TraceStore, to out: ByteWriter, options: ReportOptions = ReportOptions()
    ) throws(StoreError) -> ReportSummary {
        let trace = try store.traceSummary(options.traceID)
        var summary = ReportSummary(traceID: trace.id, traceCount: trace.traceCount)
        let rows = StoreKey.rows(trace: trace.id), lo = rows.lowerBound, hi = rows.upperBound
        let db = store.db

        // Totals.
        let totals = try db.prepare(
            """
            SELECT COUNT(*), COALESCE(SUM(duration_ns), 0), COALESCE(MAX(duration_ns), 0), COALESCE(SUM(victim_wait_ns), 0),
                   COALESCE(SUM(victims), 0)
            FROM stalls WHERE id >= ?1 AND id < ?2
            """)
        try totals.bind([.int(lo), .int(hi)])
        _ = try totals.step()
        let stallCount = totals.int(0), stallNs = totals.int(1), longestNs = totals.int(2), victimWaitNs = totals.int(3)
        summary.stalls = stallCount
        let duration = max(trace.durationNs, 1)
        let threads = try store.threads(trace: trace.id).filter { $0.slices > 0 || $0.ioWaitNs > 0 }

        let title = trace.commandLine.isEmpty ? trace.path : trace.commandLine
        out.write("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n")
        out.write("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>unclog report: ")
        out.html(title)
        out.write("</title>\n<style>\n")
        out.write(css)
        out.write("</style></head>\n<body>\n<header><h1>unclog report</h1><p class=\"cmd\"><code>")
        out.html(title)
        out.write("</code></p><p class=\"meta\">")
        var meta: [String] = []
        if let r = trace.runtime { meta.append([r, trace.runtimeVersion].compactMap { $0 }.joined(separator: " ")) }
        if let h = trace.hostname { meta.append("host \(h)") }
        if let p = trace.pid { meta.append("pid \(p)") }
        if let w = trace.anchorWallNs { meta.append("recorded \(isoDate(w))") }
        meta.append("trace \(trace.id) of \(trace.path)")
        if let t = trace.thresholdNs { meta.append("stall threshold \(DurationText.format(t))") }
        out.html(meta.joined(separator: " · "))
        out.write("</p></header>\n")

        // Summary cards.
        out.write("<section class=\"cards\">")
        func card(_ value: String, _ label: String, alert: Bool = false) {
            out.write(alert ? "<div class=\"card alert\"><b>" : "<div class=\"card\"><b>")
            out.html(value)
            out.write("</b><span>")
            out.html(label)
            out.write("</span></div>")
        }
        card(DurationText.format(trace.durationNs), "recorded")
        card("\(trace.events)", "events")
        card("\(stallCount)", "stalls", alert: stallCount > 0)
        card(
            DurationText.format(stallNs), "stalled (\(percent(Double(stallNs) / Double(duration))) of the time)",
            alert: stallNs > 0)
        card(DurationText.format(longestNs), "longest stall", alert: longestNs > 0)
        card(DurationText.format(victimWaitNs), "wait added to other greenthreads", alert: victimWaitNs > 0)
        out.write("</section>\n")
        if trace.bytesLost > 0 || trace.eventsDropped > 0 || !trace.cleanEnd {
            out.write("<p class=\"warn\">")
            var w: [String] = []
            if trace.bytesLost > 0 { w.append("\(trace.bytesLost) bytes of the trace file were damaged and skipped") }
            if trace.eventsDropped > 0 { w.append("the recorder dropped \(trace.eventsDropped) events") }
            if !trace.cleanEnd { w.append("the recording was cut short (no end marker)") }
            out.html("Incomplete data: " + w.joined(separator: "; ") + ".")
            out.write("</p>\n")
        }

        // The worst windows.
        var windows: [(from: Int64, to: Int64, stallNs: Int64, stalls: Int64)] = []
        if trace.durationNs <= options.windowNs * 3 / 2 {
            windows = [(0, duration, stallNs, stallCount)]
        } else {
            let w = options.windowNs
            let s = try db.prepare(
                """
                SELECT start_ns / ?3, SUM(duration_ns), COUNT(*) FROM stalls WHERE id >= ?1 AND id < ?2
                GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT ?4
                """)
            try s.bind([.int(lo), .int(hi), .int(w), .int(Int64(max(1, options.windows)))])
            while try s.step() {
                let from = s.int(0) * w
                windows.append((from, min(from + w, duration), s.int(1), s.int(2)))
            }
            if windows.isEmpty { windows = [(0, min(w, duration), 0, 0)] }
        }
        summary.windows = windows.map { ($0.from, $0.to) }

        // Stalls over the whole recording.
        out.write("<section><h2>Stalls over the recording</h2>\n")
        try overview(db, out: out, lo: lo, hi: hi, duration: duration, windows: windows.map { ($0.from, $0.to) })
        out.write("</section>\n")

        // Timelines.
        out.write("<section><h2>")
        out.write(
            windows.count == 1 && windows[0].from == 0 && windows[0].to == duration ? "Timeline" : "Timeline of the worst minutes"
        )
        out.write(
            "</h2>\n<p class=\"legend\"><span class=\"sw run\"></span>running <span class=\"sw io\"></span>hub waiting on I/O "
                + "<span class=\"sw ready\"></span>ready, kept waiting <span class=\"sw stall\"></span>stall "
                + "(hover for details, click a stall for its stack)</p>\n")
        for (i, w) in windows.enumerated() {
            out.write("<h3>")
            out.html(
                "\(i + 1). \(DurationText.format(w.from)) – \(DurationText.format(w.to)): \(w.stalls) stall\(w.stalls == 1 ? "" : "s"), \(DurationText.format(w.stallNs)) stalled"
            )
            out.write("</h3>\n")
            try timeline(store, out: out, trace: trace.id, threads: threads, from: w.from, to: w.to, options: options)
        }
        out.write("</section>\n")

        // Call sites.
        out.write(
            "<section><h2>Top call sites</h2>\n<p class=\"note\">Self: each stall charged to its blocking call (the innermost "
                + "application frame). Inclusive: charged to every application function on the stack.</p>\n<div class=\"cols\">")
        let selfTable = try store.top(by: .line, inclusive: false, limit: options.topSites, traceID: trace.id)
        table(out, selfTable, caption: "self, by line", bar: "share")
        let inclTable = try store.top(by: .function, inclusive: true, limit: options.topSites, traceID: trace.id)
        table(out, inclTable, caption: "inclusive, by function", bar: nil)
        out.write("</div></section>\n")

        // Worst stalls.
        out.write("<section><h2>Worst stalls</h2>\n")
        let names = try GreenthreadNames(store)
        var threadLabel: [Int64: String] = [:]
        for t in try store.threads(trace: trace.id) { threadLabel[t.key] = t.label }
        let reader = try StallReader(
            store, trace: trace.id, orderBy: "duration_ns DESC, stall_id", limit: options.worstStalls,
            victimLimit: 10)
        var n = 0
        while let s = try reader.next() {
            n += 1
            let g = try names.info(s.gtKey)
            out.write("<details class=\"stall\" id=\"stall-")
            out.int(s.id)
            out.write(n <= 3 ? "\" open><summary>" : "\"><summary>")
            out.write("<b>")
            out.html(DurationText.format(s.durationNs) + (s.complete ? "" : "+"))
            out.write("</b> in <code>")
            out.html(s.siteText)
            out.write("</code> — ")
            out.html(
                "\(g.name) #\(g.gt) on \(threadLabel[s.threadKey] ?? "?") at \(DurationText.format(s.startNs)); "
                    + "\(s.victims) victim\(s.victims == 1 ? "" : "s") waited \(DurationText.format(s.victimWaitNs))")
            out.write("</summary>\n<div class=\"cols\"><div><h4>Stack (innermost first)</h4><ol class=\"stack\">")
            for f in s.stack {
                out.write(f.isInternal ? "<li class=\"internal\">" : "<li>")
                out.html(f.text)
                out.write("</li>")
            }
            if s.stack.isEmpty { out.write("<li class=\"internal\">no stack recorded</li>") }
            out.write("</ol><p class=\"note\">")
            out.html(
                "\(s.samples) stack sample\(s.samples == 1 ? "" : "s") during the stall"
                    + (s.complete ? "" : "; the recording ended inside it"))
            out.write("</p></div><div><h4>Kept waiting</h4>")
            if s.topVictims.isEmpty {
                out.write("<p class=\"note\">nobody was ready to run</p>")
            } else {
                out.write("<table class=\"victims\"><tr><th>greenthread</th><th>waited</th></tr>")
                for v in s.topVictims {
                    out.write("<tr><td>")
                    out.html(v.label)
                    out.write("</td><td class=\"num\">")
                    out.html(DurationText.format(v.waitNs))
                    out.write("</td></tr>")
                }
                out.write("</table>")
                if s.victims > Int64(s.topVictims.count) {
                    out.write("<p class=\"note\">")
                    out.html("and \(s.victims - Int64(s.topVictims.count)) more")
                    out.write("</p>")
                }
            }
            out.write("</div></div></details>\n")
        }
        if n == 0 { out.write("<p>No stalls: no greenthread held its thread longer than the threshold.</p>\n") }
        out.write(
            "</section>\n<footer>Made by <code>unclog report</code>. Explore further with <code>unclog stalls</code>, "
                + "<code>unclog timeline</code> and <code>unclog export</code> (Perfetto).</footer>\n<script>\n")
        out.write(script)
        out.write("</script>\n</body></html>\n")
        try out.finish()
        summary.bytes = out.bytesWritten
        return summary
    }

    // MARK: - Overview

    /// Bars of stall time per slice of the recording (the fraction of each bucket spent stalled).
    static func overview(
        _ db: Database, out: ByteWriter, lo: Int64, hi: Int64, duration: Int64,
        windows: [(Int64, Int64)]
    ) throws(StoreError) {
        let buckets = 300
        var stalled = [Int64](repeating: 0, count: buckets), counts = [Int](repeating: 0, count: buckets)
        let bucketNs = max(1, (duration + Int64(buckets) - 1) / Int64(buckets))
        let s = try db.prepare("SELECT start_ns, end_ns FROM stalls WHERE id >= ?1 AND id < ?2")
        try s.bind([.int(lo), .int(hi)])
        while try s.step() {
            let a = max(0, s.int(0)), b = min(duration, s.int(1))
            guard b >= a else { continue }
            counts[min(buckets - 1, Int(a / bucketNs))] += 1
            var i = Int(a / bucketNs)
            while i < buckets, Int64(i) * bucketNs < b {
                let overlap = min(b, Int64(i + 1) * bucketNs) - max(a, Int64(i) * bucketNs)
                if overlap > 0 { stalled[i] += overlap }
                i += 1
            }
        }
        let w = labelWidth + plotWidth, h = 90, plotH = 60
        out.write(
            "<svg class=\"overview\" width=\"\(w)\" height=\"\(h)\" viewBox=\"0 0 \(w) \(h)\" role=\"img\" aria-label=\"stall time over the recording\">"
        )
        out.write("<text x=\"0\" y=\"14\" class=\"lbl\">share of time stalled</text>")
        out.write("<text x=\"0\" y=\"30\" class=\"lbl dim\">per \(HTML.escape(DurationText.format(bucketNs)))</text>")
        let x0 = Double(labelWidth), sx = Double(plotWidth) / Double(duration)
        for (a, b) in windows where a > 0 || b < duration {
            out.write(
                "<rect class=\"win\" x=\"\(f1(x0 + Double(a) * sx))\" y=\"0\" width=\"\(f1(max(1, Double(b - a) * sx)))\" height=\"\(plotH)\"/>"
            )
        }
        out.write("<line class=\"axis\" x1=\"\(labelWidth)\" y1=\"\(plotH)\" x2=\"\(w)\" y2=\"\(plotH)\"/>")
        let barW = Double(plotWidth) / Double(buckets)
        for i in 0..<buckets where stalled[i] > 0 {
            let frac = min(1, Double(stalled[i]) / Double(bucketNs))
            let bh = max(1.5, frac * Double(plotH - 4))
            out.write(
                "<rect class=\"stall\" x=\"\(f1(x0 + Double(i) * barW))\" y=\"\(f1(Double(plotH) - bh))\" width=\"\(f1(max(1, barW - 0.5)))\" height=\"\(f1(bh))\">"
            )
            out.write("<title>")
            out.html(
                "\(DurationText.format(Int64(i) * bucketNs)) – \(DurationText.format(Int64(i + 1) * bucketNs)): \(counts[i]) stall(s) began, \(DurationText.format(stalled[i])) stalled (\(percent(frac)))"
            )
            out.write("</title></rect>")
        }
        axis(out, y: plotH, from: 0, to: duration)
        out.write("</svg>\n")
    }

    // MARK: - Tables

    static func table(_ out: ByteWriter, _ t: ResultTable, caption: String, bar: String?) {
        out.write("<table class=\"sites sortable\"><caption>")
        out.html(caption)
        out.write("</caption><thead><tr>")
        for c in t.columns {
            out.write(t.rightAligned.contains(c) ? "<th class=\"num\">" : "<th>")
            out.html(c.replacingOccurrences(of: "_ns", with: "").replacingOccurrences(of: "_", with: " "))
            out.write("</th>")
        }
        out.write("</tr></thead><tbody>")
        let barIndex = bar.flatMap { t.columns.firstIndex(of: $0) }
        for row in t.rows {
            out.write("<tr>")
            for (i, cell) in row.enumerated() {
                let num = t.rightAligned.contains(t.columns[i])
                out.write(num ? "<td class=\"num\" data-v=\"" : "<td data-v=\"")
                out.html(cell.csv)
                out.write("\">")
                if i == barIndex, let v = Double(cell.csv) {
                    out.write("<span class=\"bar\" style=\"width:\(f1(min(1, max(0, v)) * 60))px\"></span>")
                }
                if t.columns[i] == "file" { out.write("<code>") }
                out.html(cell.text)
                if t.columns[i] == "file" { out.write("</code>") }
                out.write("</td>")
            }
            out.write("</tr>")
        }
        if t.rows.isEmpty { out.write("<tr><td colspan=\"\(t.columns.count)\">no stalls</td></tr>") }
        out.write("</tbody></table>\n")
    }

    // MARK: - Formatting

    static func f1(_ v: Double) -> String {
        let r = (v * 10).rounded() / 10
        return r == r.rounded() ? String(Int(r)) : String(r)
    }

    static func percent(_ v: Double) -> String {
        let p = v * 100
        if p > 0 && p < 0.1 { return "<0.1%" }
        return f1(p) + "%"
    }

    /// A Unix time in ns as `2026-11-26 17:34:37 UTC`.
    static func isoDate(_ ns: Int64) -> String {
        let secs = ns / 1_000_000_000
        var days = secs / 86_400
        let rem = secs % 86_400
        // Civil-from-days (Howard Hinnant's algorithm).
        days += 719_468
        let era = (days >= 0 ? days : days - 146_096) / 146_097
        let doe = days - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        let y = yoe + era * 400 + (m <= 2 ? 1 : 0)
        func two(_ v: Int64) -> String { v < 10 ? "0\(v)" : "\(v)" }
        return "\(y)-\(two(m))-\(two(d)) \(two(rem / 3600)):\(two(rem % 3600 / 60)):\(two(rem % 60)) UTC"
    }

    static let css = """
        :root { --run: #2563eb; --io: #94a3b8; --ready: #f59e0b; --stall: #dc2626; --fg: #1e293b; --dim: #64748b; }
        body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", "DejaVu Sans", sans-serif; color: var(--fg);
               margin: 0 auto; padding: 16px 24px 40px; max-width: 1160px; background: #fff; }
        h1 { margin: 0 0 4px; font-size: 22px; } h2 { font-size: 17px; margin: 28px 0 8px; border-bottom: 1px solid #e2e8f0; }
        h3 { font-size: 14px; margin: 16px 0 4px; } h4 { margin: 6px 0; font-size: 13px; }
        code { font: 12.5px "DejaVu Sans Mono", ui-monospace, monospace; }
        .cmd code { font-size: 14px; background: #f1f5f9; padding: 2px 6px; border-radius: 4px; }
        .meta, .note, .legend { color: var(--dim); font-size: 12.5px; margin: 4px 0; }
        .warn { background: #fef3c7; border: 1px solid #f59e0b; padding: 6px 10px; border-radius: 4px; }
        .cards { display: flex; gap: 10px; flex-wrap: wrap; margin: 14px 0; }
        .card { border: 1px solid #e2e8f0; border-radius: 6px; padding: 8px 14px; min-width: 120px; }
        .card b { display: block; font-size: 20px; } .card span { color: var(--dim); font-size: 12px; }
        .card.alert b { color: var(--stall); }
        svg { display: block; margin: 4px 0 10px; overflow: visible; }
        svg .lbl { font-size: 12px; fill: var(--fg); } svg .dim { fill: var(--dim); }
        svg .tl { font-size: 10.5px; fill: var(--dim); text-anchor: middle; }
        svg .tick, svg .axis { stroke: #94a3b8; } svg .sep { stroke: #e2e8f0; }
        svg .lane { fill: #f8fafc; } svg .run { fill: var(--run); } svg .io { fill: var(--io); }
        svg .ready { fill: var(--ready); } svg .stall { fill: var(--stall); fill-opacity: .85; }
        svg .win { fill: #fde68a; fill-opacity: .5; }
        svg .hit { cursor: pointer; } svg .hit:hover, svg .hit.on { stroke: #000; stroke-width: 1.5; }
        .sw { display: inline-block; width: 12px; height: 10px; margin: 0 3px 0 10px; vertical-align: -1px; }
        .sw.run { background: var(--run); } .sw.io { background: var(--io); } .sw.ready { background: var(--ready); }
        .sw.stall { background: var(--stall); }
        .cols { display: flex; gap: 28px; flex-wrap: wrap; align-items: flex-start; } .cols > * { flex: 1 1 420px; min-width: 0; }
        table { border-collapse: collapse; font-size: 12.5px; margin: 6px 0; }
        caption { text-align: left; color: var(--dim); padding-bottom: 2px; }
        th, td { padding: 3px 8px; border-bottom: 1px solid #eef2f7; text-align: left; vertical-align: top; }
        th { background: #f8fafc; cursor: pointer; user-select: none; } .num { text-align: right; white-space: nowrap; }
        td code { word-break: break-all; }
        .bar { display: inline-block; height: 8px; background: var(--stall); opacity: .7; margin-right: 6px; vertical-align: 0; }
        details.stall { border: 1px solid #e2e8f0; border-left: 4px solid var(--stall); border-radius: 4px; margin: 8px 0; padding: 6px 10px; }
        details.stall.flash { background: #fef2f2; }
        summary { cursor: pointer; } summary b { color: var(--stall); }
        ol.stack { margin: 0; padding-left: 24px; font: 12px "DejaVu Sans Mono", ui-monospace, monospace; }
        ol.stack li.internal { color: #94a3b8; }
        footer { margin-top: 36px; color: var(--dim); font-size: 12px; }

        """

    /// Click a stall in a timeline to open its details; click a column header to sort a table.
    /// Sets `data-unclog-ready` on <html> when done, so a headless test can tell it ran.
    static let script = """
        (function () {
          "use strict";
          document.querySelectorAll("svg .hit").forEach(function (r) {
            r.addEventListener("click", function () {
              var d = document.getElementById(r.getAttribute("data-stall"));
              if (!d) { return; }
              d.open = true;
              d.classList.add("flash");
              d.scrollIntoView({ block: "center" });
              setTimeout(function () { d.classList.remove("flash"); }, 1200);
            });
          });
          document.querySelectorAll("table.sortable").forEach(function (t) {
            var heads = t.tHead ? t.tHead.rows[0].cells : [];
            Array.prototype.forEach.call(heads, function (th, i) {
              th.addEventListener("click", function () {
                var body = t.tBodies[0];
                var rows = Array.prototype.slice.call(body.rows);
                var desc = th.getAttribute("data-desc") !== "1";
                rows.sort(function (a, b) {
                  var x = a.cells[i] ? a.cells[i].getAttribute("data-v") : "";
                  var y = b.cells[i] ? b.cells[i].getAttribute("data-v") : "";
                  var nx = parseFloat(x), ny = parseFloat(y);
                  var c = (!isNaN(nx) && !isNaN(ny)) ? nx - ny : String(x).localeCompare(String(y));
                  return desc ? -c : c;
                });
                th.setAttribute("data-desc", desc ? "1" : "0");
                rows.forEach(function (r) { body.appendChild(r); });
              });
            });
          });
          document.documentElement.setAttribute("data-unclog-ready", String(document.querySelectorAll("svg").length));
        })();

        """
}
