// A stall with everything the export and the report show about it: call site, whole stack
// (innermost first) and the greenthreads it kept waiting. Read one stall at a time through
// prepared statements, so callers can stream over any number of stalls.

import UnclogQuery
import UnclogStore

/// A frame of a stall's stack.
public struct FrameText: Sendable, Hashable {
    public var function: String?
    public var file: String?
    public var line: Int64?
    public var isInternal: Bool

    /// `function (file:line)`.
    public var text: String {
        var s = function ?? "?"
        if let file {
            s += " (\(file)"
            if let line { s += ":\(line)" }
            s += ")"
        }
        return s
    }
}

/// A greenthread kept waiting by a stall.
public struct VictimInfo: Sendable {
    public var gt: Int64
    public var name: String?
    public var waitNs: Int64
    public var label: String { "\(name ?? "greenthread") #\(gt)" }
}

/// One stall, with call site, stack and victims.
public struct StallDetail: Sendable {
    public var id: Int64
    public var threadKey: Int64
    public var gtKey: Int64
    public var startNs: Int64
    public var endNs: Int64
    public var durationNs: Int64
    public var samples: Int64
    public var complete: Bool
    public var victims: Int64
    public var victimWaitNs: Int64
    public var site: FrameText
    public var stack: [FrameText]
    /// The longest-waiting victims (at most the limit asked for).
    public var topVictims: [VictimInfo]

    /// `function (file:line)` of the call site, or `<unknown>`.
    public var siteText: String { site.function == nil && site.file == nil ? "<unknown>" : site.text }
}

/// Streams the stalls of one trace with their details.
final class StallReader {
    private let stalls: Statement
    private let frames: Statement
    private let victims: Statement
    private let victimLimit: Int

    /// Stalls of `trace`, in the order `orderBy` (SQL over stall_sites columns), at most `limit`.
    init(
        _ store: TraceStore, trace: Int64, orderBy: String = "stall_id", limit: Int? = nil, victimLimit: Int = 10
    ) throws(StoreError) {
        stalls = try store.db.prepare(
            """
            SELECT stall_id, thread_key, gt_key, start_ns, end_ns, duration_ns, samples, complete, victims, victim_wait_ns,
                   stack_key, function, file, line
            FROM stall_sites WHERE stall_id >= ?1 AND stall_id < ?2
            ORDER BY \(orderBy) \(limit.map { "LIMIT \($0)" } ?? "")
            """)
        let rows = StoreKey.rows(trace: trace)
        try stalls.bind([.int(rows.lowerBound), .int(rows.upperBound)])
        frames = try store.db.prepare(
            """
            SELECT f.function, f.file, f.line, f.internal FROM stack_frames sf JOIN frames f ON f.key = sf.frame_key
            WHERE sf.stack_key = ? ORDER BY sf.depth
            """)
        victims = try store.db.prepare(
            """
            SELECT g.gt, g.name, v.wait_ns, v.gt_key FROM stall_victims v LEFT JOIN greenthreads g ON g.key = v.gt_key
            WHERE v.stall_id = ? ORDER BY v.wait_ns DESC, v.gt_key LIMIT ?
            """)
        self.victimLimit = victimLimit
    }

    /// The next stall, or nil at the end.
    func next() throws(StoreError) -> StallDetail? {
        guard try stalls.step() else { return nil }
        let s = stalls
        var d = StallDetail(
            id: s.int(0), threadKey: s.int(1), gtKey: s.int(2), startNs: s.int(3), endNs: s.int(4), durationNs: s.int(5),
            samples: s.int(6), complete: s.int(7) != 0, victims: s.int(8), victimWaitNs: s.int(9),
            site: FrameText(function: s.text(11), file: s.text(12), line: s.optInt(13), isInternal: false),
            stack: [], topVictims: [])
        if let stackKey = s.optInt(10) {
            try frames.bind([.int(stackKey)])
            while try frames.step() {
                d.stack.append(
                    FrameText(
                        function: frames.text(0), file: frames.text(1), line: frames.optInt(2),
                        isInternal: frames.int(3) != 0))
            }
            frames.reset()
        }
        if d.victims > 0, victimLimit > 0 {
            try victims.bind([.int(d.id), .int(Int64(victimLimit))])
            while try victims.step() {
                d.topVictims.append(
                    VictimInfo(
                        gt: victims.optInt(0) ?? StoreKey.id(ofObject: victims.int(3)), name: victims.text(1),
                        waitNs: victims.int(2)))
            }
            victims.reset()
        }
        return d
    }
}
