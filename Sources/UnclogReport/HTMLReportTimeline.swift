// `unclog report`'s SVG timeline of one window (a worst minute): per OS thread how busy it was,
// its I/O waits and its stalls; per greenthread involved when it ran, was ready but kept
// waiting, and stalled. Slices are accumulated into fixed pixel columns as they are read, so
// memory is the column arrays whatever the trace's size. Part of HTMLReport (HTMLReport.swift).

import UnclogQuery
import UnclogStore

extension HTMLReport {

    /// Lanes for one window: each thread, then the greenthreads involved in its stalls.
    static func timeline(
        _ store: TraceStore, out: ByteWriter, trace: Int64, threads: [ThreadSummary], from: Int64, to: Int64,
        options: ReportOptions
    ) throws(StoreError) {
        let db = store.db
        let span = max(1, to - from)
        let cols = plotWidth
        let nsPerCol = Double(span) / Double(cols)
        func col(_ t: Int64) -> Double { Double(t - from) / nsPerCol }

        // Accumulate per column: ns covered by each state.
        func accumulate(_ acc: inout [Int64], _ a: Int64, _ b: Int64) {
            let a = max(a, from), b = min(b, to)
            guard b > a else { return }
            var c = Int(Double(a - from) / nsPerCol)
            while c < cols {
                let c0 = from + Int64(Double(c) * nsPerCol), c1 = from + Int64(Double(c + 1) * nsPerCol)
                if c0 >= b { break }
                let o = min(b, c1) - max(a, c0)
                if o > 0 { acc[c] += o }
                c += 1
            }
        }

        struct Lane {
            var label: String
            var title: String
            var layers: [(cls: String, acc: [Int64])]
            var stalls: [(a: Int64, b: Int64, id: Int64, text: String)]
        }
        var lanes: [Lane] = []

        // Stalls in the window (few: they are long), with their site and greenthread.
        let stallQ = try db.prepare(
            """
            SELECT s.stall_id, s.thread_key, s.gt_key, s.start_ns, s.end_ns, s.duration_ns, s.function, s.file, s.line, s.victims
            FROM stall_sites s WHERE s.stall_id >= ?1 AND s.stall_id < ?2 AND s.end_ns >= ?3 AND s.start_ns <= ?4
            ORDER BY s.duration_ns DESC
            """)
        let rows = StoreKey.rows(trace: trace)
        try stallQ.bind([.int(rows.lowerBound), .int(rows.upperBound), .int(from), .int(to)])
        let names = try GreenthreadNames(store)
        var windowStalls: [(id: Int64, thread: Int64, gt: Int64, a: Int64, b: Int64, text: String)] = []
        while try stallQ.step(), windowStalls.count < 10_000 {
            let g = try names.info(stallQ.int(2))
            let site = FrameText(function: stallQ.text(6), file: stallQ.text(7), line: stallQ.optInt(8), isInternal: false)
            let text =
                "stall \(DurationText.format(stallQ.int(5))) in \(site.function == nil ? "<unknown>" : site.text) — \(g.name) #\(g.gt), \(stallQ.int(9)) victims"
            windowStalls.append((stallQ.int(0), stallQ.int(1), stallQ.int(2), stallQ.int(3), stallQ.int(4), text))
        }

        let sliceQ = try db.prepare(
            """
            SELECT start_ns, end_ns FROM slices WHERE id >= ?1 AND id < ?2 AND thread_key = ?3 AND end_ns >= ?4 AND start_ns <= ?5
            """)
        let ioQ = try db.prepare(
            """
            SELECT start_ns, end_ns FROM io_waits WHERE id >= ?1 AND id < ?2 AND thread_key = ?3 AND end_ns >= ?4 AND start_ns <= ?5
            """)
        for th in threads {
            var run = [Int64](repeating: 0, count: cols), io = [Int64](repeating: 0, count: cols)
            let (sl, sh) = try store.checkpointRange(kind: 1, threadKey: th.key, trace: trace, from: from, to: to)
            try sliceQ.bind([.int(sl), .int(sh), .int(th.key), .int(from), .int(to)])
            while try sliceQ.step() { accumulate(&run, sliceQ.int(0), sliceQ.int(1)) }
            sliceQ.reset()
            let (il, ih) = try store.checkpointRange(kind: 2, threadKey: th.key, trace: trace, from: from, to: to)
            try ioQ.bind([.int(il), .int(ih), .int(th.key), .int(from), .int(to)])
            while try ioQ.step() { accumulate(&io, ioQ.int(0), ioQ.int(1)) }
            ioQ.reset()
            lanes.append(
                Lane(
                    label: th.label, title: "OS thread \(th.label): darker = busier",
                    layers: [("io", io), ("run", run)],
                    stalls: windowStalls.filter { $0.thread == th.key }.map { ($0.a, $0.b, $0.id, $0.text) }))
        }

        // Greenthreads: the stallers of the longest stalls, then their longest-waiting victims.
        var chosen: [Int64] = []
        for s in windowStalls where chosen.count < options.greenthreadLanes / 2 {
            if !chosen.contains(s.gt), !(try names.info(s.gt).isHub) { chosen.append(s.gt) }
        }
        let victimQ = try db.prepare(
            """
            SELECT v.gt_key, SUM(v.wait_ns) FROM stall_victims v WHERE v.stall_id IN (SELECT value FROM json_each(?1))
            GROUP BY v.gt_key ORDER BY 2 DESC LIMIT ?2
            """)
        let ids = "[" + windowStalls.prefix(50).map { String($0.id) }.joined(separator: ",") + "]"
        try victimQ.bind([.text(ids), .int(Int64(options.greenthreadLanes))])
        while try victimQ.step(), chosen.count < options.greenthreadLanes {
            let k = victimQ.int(0)
            if !chosen.contains(k) { chosen.append(k) }
        }
        for k in chosen {
            let g = try names.info(k)
            var run = [Int64](repeating: 0, count: cols), ready = [Int64](repeating: 0, count: cols)
            for s in try store.greenthreadSlices(gtKey: k, from: from, to: to) {
                if let r = s.readyNs, r < s.startNs { accumulate(&ready, r, s.startNs) }
                accumulate(&run, s.startNs, s.endNs)
            }
            lanes.append(
                Lane(
                    label: "\(g.name) #\(g.gt)", title: "greenthread \(g.name) #\(g.gt)",
                    layers: [("ready", ready), ("run", run)],
                    stalls: windowStalls.filter { $0.gt == k }.map { ($0.a, $0.b, $0.id, $0.text) }))
        }

        // Draw.
        let top = 6, axisH = 26
        let h = top + lanes.count * (laneHeight + 4) + axisH
        let w = labelWidth + plotWidth
        out.write(
            "<svg class=\"timeline\" width=\"\(w)\" height=\"\(h)\" viewBox=\"0 0 \(w) \(h)\" role=\"img\" aria-label=\"timeline\">"
        )
        for (i, lane) in lanes.enumerated() {
            let y = top + i * (laneHeight + 4)
            if i == threads.count && i > 0 {
                out.write("<line class=\"sep\" x1=\"0\" y1=\"\(y - 2)\" x2=\"\(w)\" y2=\"\(y - 2)\"/>")
            }
            out.write("<text class=\"lbl\" x=\"0\" y=\"\(y + laneHeight - 5)\"><title>")
            out.html(lane.title)
            out.write("</title>")
            out.html(lane.label.count > 26 ? String(lane.label.prefix(25)) + "…" : lane.label)
            out.write(
                "</text><rect class=\"lane\" x=\"\(labelWidth)\" y=\"\(y)\" width=\"\(plotWidth)\" height=\"\(laneHeight)\"/>")
            for layer in lane.layers {
                // Runs of columns with the same shade (coverage quantized to 8 levels) become one rect.
                var c = 0
                while c < cols {
                    let level = shade(layer.acc[c], nsPerCol)
                    var e = c + 1
                    while e < cols, shade(layer.acc[e], nsPerCol) == level { e += 1 }
                    if level > 0 {
                        out.write(
                            "<rect class=\"\(layer.cls)\" fill-opacity=\"\(f1(Double(level) / 8))\" x=\"\(labelWidth + c)\" y=\"\(y)\" width=\"\(e - c)\" height=\"\(laneHeight)\"/>"
                        )
                    }
                    c = e
                }
            }
            for s in lane.stalls {
                let x = Double(labelWidth) + max(0, col(s.a)), x1 = Double(labelWidth) + min(Double(plotWidth), col(s.b))
                out.write(
                    "<rect class=\"stall hit\" data-stall=\"stall-\(s.id)\" x=\"\(f1(x))\" y=\"\(y)\" width=\"\(f1(max(2, x1 - x)))\" height=\"\(laneHeight)\"><title>"
                )
                out.html(s.text)
                out.write("</title></rect>")
            }
        }
        axis(out, y: h - axisH + 2, from: from, to: to)
        out.write("</svg>\n")
    }

    /// Coverage of a column quantized to 0…8 (0 only when nothing at all).
    @inline(__always)
    static func shade(_ ns: Int64, _ nsPerCol: Double) -> Int {
        guard ns > 0 else { return 0 }
        return max(1, min(8, Int((Double(ns) / nsPerCol * 8).rounded())))
    }

    /// Time ticks under a plot: 1, 2 or 5 × 10^k apart, labelled in trace time.
    static func axis(_ out: ByteWriter, y: Int, from: Int64, to: Int64) {
        let span = max(1, to - from)
        var step: Int64 = 1
        while span / step > 10 {
            if span / (step * 2) <= 10 { step *= 2; break }
            if span / (step * 5) <= 10 { step *= 5; break }
            step *= 10
        }
        var t = (from + step - 1) / step * step
        while t <= to {
            let x = Double(labelWidth) + Double(t - from) / Double(span) * Double(plotWidth)
            out.write("<line class=\"tick\" x1=\"\(f1(x))\" y1=\"\(y)\" x2=\"\(f1(x))\" y2=\"\(y + 4)\"/>")
            out.write("<text class=\"tl\" x=\"\(f1(x))\" y=\"\(y + 16)\">")
            out.html(DurationText.format(t))
            out.write("</text>")
            t += step
        }
    }
}
