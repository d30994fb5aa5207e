// Decoding of a chunk's payload into events and metadata, with every field bounds-checked.
// A malformed event ends the chunk's decoding; the events before it are kept (spec §2.2).

/// Decodes the events of one intact events chunk.
public enum EventDecoder {
    /// Calls `body` with each event of `chunk` in order. Returns nil when the whole payload
    /// decoded, or the damage that stopped decoding (offset absolute in the file).
    @discardableResult
    public static func decode(_ chunk: Chunk, _ body: (TraceEvent) throws -> Void) rethrows -> TraceDamage? {
        var iterator = EventIterator(chunk)
        while let event = iterator.next() { try body(event) }
        return iterator.damage
    }

    @inline(__always)
    static func decodeOne(_ c: inout ByteCursor, time: inout UInt64) throws(DecodeFailure) -> TraceEvent {
        let code = try c.byte()
        let dt = try c.uvarint()
        let (t, overflow) = time.addingReportingOverflow(dt)
        if overflow { throw .invalid("time overflows 64 bits") }
        time = t
        let kind: TraceEvent.Kind
        switch code {
        case 0x10:
            kind = .switchToHub
        case 0x11...0x15:
            let to = try id(&c)
            kind = .switchTo(to: to, reason: SwitchReason(rawValue: code - 0x10)!, readyDelta: try c.uvarint())
        case 0x20:
            let raw = try c.uvarint()
            kind = .ioWaitBegin(timeout: raw == 0 ? nil : raw - 1)
        case 0x21:
            kind = .ioWaitEnd(ready: try c.uvarint())
        case 0x01:
            let sid = try id(&c)
            let len = try c.uvarint()
            guard len <= UInt64(TraceFormat.maxStringBytes) else {
                throw .invalid("string of \(len) bytes, over the \(TraceFormat.maxStringBytes)-byte limit")
            }
            let bytes = try c.bytes(Int(len))
            kind = .string(id: sid, value: String(decoding: bytes, as: UTF8.self))
        case 0x02:
            let fid = try id(&c), flags = try c.uvarint(), function = try id(&c), file = try id(&c)
            kind = .frame(id: fid, flags: FrameFlags(rawValue: flags), function: function, file: file, line: try c.uvarint())
        case 0x03:
            let fid = try id(&c), flags = try c.uvarint(), image = try id(&c)
            kind = .nativeFrame(id: fid, flags: FrameFlags(rawValue: flags), image: image, address: try c.uvarint())
        case 0x04:
            let sid = try id(&c)
            let n = try c.uvarint()
            guard n <= UInt64(TraceFormat.maxStackDepth) else {
                throw .invalid("stack of \(n) frames, over the \(TraceFormat.maxStackDepth)-frame limit")
            }
            var frames: [UInt32] = []
            frames.reserveCapacity(Int(n))
            for _ in 0..<n { frames.append(try id(&c)) }
            kind = .stack(id: sid, frames: frames)
        case 0x05:
            let iid = try id(&c), path = try id(&c)
            let bias = try c.uvarint(), start = try c.uvarint(), end = try c.uvarint()
            let len = try c.uvarint()
            guard len <= UInt64(TraceFormat.maxBuildIDBytes) else {
                throw .invalid("build-id of \(len) bytes, over the \(TraceFormat.maxBuildIDBytes)-byte limit")
            }
            kind = .image(
                id: iid, path: path, loadBias: bias, start: start, end: end,
                buildID: Array(try c.bytes(Int(len))))
        case 0x06:
            let tid = try id(&c)
            kind = .thread(tid: tid, name: try id(&c))
        case 0x07:
            let gt = try id(&c), name = try id(&c), spawn = try id(&c)
            kind = .greenthreadCreate(gt: gt, name: name, spawnStack: spawn, parent: try id(&c))
        case 0x08:
            kind = .greenthreadExit(gt: try id(&c))
        case 0x09:
            let gt = try id(&c)
            kind = .running(gt: gt, hub: try id(&c))
        case 0x30:
            let tid = try id(&c), gt = try id(&c)
            kind = .stallBegin(tid: tid, gt: gt, sinceDelta: try c.uvarint())
        case 0x31:
            let tid = try id(&c), stack = try id(&c)
            kind = .stallSample(tid: tid, stack: stack, state: try c.uvarint())
        case 0x32:
            let gt = try id(&c), duration = try c.uvarint()
            kind = .stallEnd(gt: gt, duration: duration, stack: try id(&c))
        case 0x40:
            let reason = try c.uvarint()
            kind = .dropped(reason: reason, count: try c.uvarint())
        case 0x7F:
            let chunks = try c.uvarint()
            kind = .end(chunks: chunks, events: try c.uvarint())
        case 0x80...0xFF:
            let len = try c.uvarint()
            guard len <= UInt64(c.remaining) else { throw .truncated }
            _ = try c.bytes(Int(len))
            kind = .skipped(code: code, length: Int(len))
        default:
            throw .invalid("unknown event type")
        }
        return TraceEvent(time: time, kind)
    }

    /// Reads an id and checks it fits in 32 bits (spec §1).
    @inline(__always)
    static func id(_ c: inout ByteCursor) throws(DecodeFailure) -> UInt32 {
        let v = try c.uvarint()
        guard v <= UInt64(UInt32.max) else { throw .invalid("id \(v) out of range (ids are 32-bit)") }
        return UInt32(truncatingIfNeeded: v)
    }

    /// Decodes a metadata chunk's entries; returns what decoded and the damage, if any.
    public static func decodeMetadata(_ chunk: Chunk) -> (entries: [MetadataEntry], damage: TraceDamage?) {
        chunk.payload.withUnsafeBytes { raw in
            var c = ByteCursor(raw)
            var entries: [MetadataEntry] = []
            var entryStart = 0
            func damage(_ reason: String) -> TraceDamage {
                TraceDamage(
                    offset: chunk.payloadOffset + UInt64(entryStart), bytesLost: UInt64(raw.count - entryStart),
                    reason: "metadata chunk at byte \(chunk.offset): \(reason); rest of the chunk dropped")
            }
            do throws(DecodeFailure) {
                let count = try c.uvarint()
                guard count <= UInt64(TraceFormat.maxMetadataEntries) else {
                    return ([], damage("\(count) entries, over the limit of \(TraceFormat.maxMetadataEntries)"))
                }
                for _ in 0..<count {
                    entryStart = c.position
                    let key = try string(&c)
                    let type = try c.byte()
                    switch type {
                    case 0: entries.append(MetadataEntry(key, .uint(try c.uvarint())))
                    case 1: entries.append(MetadataEntry(key, .string(try string(&c))))
                    case 2:
                        let n = try c.uvarint()
                        guard n <= UInt64(c.remaining) else { throw .truncated }
                        var items: [String] = []
                        for _ in 0..<n { items.append(try string(&c)) }
                        entries.append(MetadataEntry(key, .list(items)))
                    default:
                        return (entries, damage("unknown metadata value type \(type) for key \"\(key)\""))
                    }
                }
                return (entries, nil)
            } catch {
                // A count larger than the entries present, with the payload ending exactly
                // after the last one, loses no bytes but is still a malformed chunk: say so.
                if error == .truncated && entryStart == raw.count && entries.count > 0 {
                    return (entries, damage("announces more entries than the \(entries.count) it holds"))
                }
                return (entries, damage("entry \(error.reason)"))
            }
        }
    }

    private static func string(_ c: inout ByteCursor) throws(DecodeFailure) -> String {
        let len = try c.uvarint()
        guard len <= UInt64(TraceFormat.maxStringBytes) else { throw .invalid("string of \(len) bytes, over the limit") }
        return String(decoding: try c.bytes(Int(len)), as: UTF8.self)
    }
}

/// Pulls events one at a time from an events chunk; `damage` is set when decoding stopped early.
public struct EventIterator: IteratorProtocol {
    public let chunk: Chunk
    private var position = 0
    private var time: UInt64
    /// Set when a malformed event stopped decoding (absolute file offset, what was wrong).
    public private(set) var damage: TraceDamage?

    public init(_ chunk: Chunk) {
        self.chunk = chunk
        self.time = chunk.baseTime
    }

    public mutating func next() -> TraceEvent? {
        guard damage == nil, position < chunk.payload.count else { return nil }
        let chunk = self.chunk
        return chunk.payload.withUnsafeBytes { raw -> TraceEvent? in
            var cursor = ByteCursor(raw, position: position)
            do throws(DecodeFailure) {
                let event = try EventDecoder.decodeOne(&cursor, time: &time)
                position = cursor.position
                return event
            } catch {
                let code = raw[position]
                damage = TraceDamage(
                    offset: chunk.payloadOffset + UInt64(position),
                    bytesLost: UInt64(raw.count - position),
                    reason:
                        "chunk at byte \(chunk.offset) (thread \(chunk.thread), seq \(chunk.seq)): event type 0x\(String(code, radix: 16)) \(error.reason); rest of the chunk dropped"
                )
                position = raw.count
                return nil
            }
        }
    }
}
