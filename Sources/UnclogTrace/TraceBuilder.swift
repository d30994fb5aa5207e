// Builds a whole trace from a stream of (thread, event) pairs: per-thread chunk encoders,
// sequence numbers, the `Running` state event at each chunk start (spec §4.1), and `End`.
// Used by the benchmark's trace generator (Benchmarks/unclog-bench) and the tests' hand-built
// traces; the recorders (C for Swift programs, Python for eventlet/gevent) have their own writers.

/// Writes events of many threads into chunks, handing finished bytes to `sink`.
public final class TraceBuilder {
    private struct ThreadBuffer {
        var encoder: ChunkEncoder
        var seq: UInt32 = 0
        var current: UInt32 = 0
        var hub: UInt32 = 0
        var knowsState = false
    }

    private var buffers: [UInt32: ThreadBuffer] = [:]
    private let sink: ([UInt8]) -> Void
    private let chunkBytes: Int
    /// Chunks handed to the sink so far (metadata included).
    public private(set) var chunks: UInt64 = 0
    /// Events appended so far.
    public private(set) var events: UInt64 = 0

    /// Starts a trace: the file header and a metadata chunk go to `sink` at once.
    /// - Parameter chunkBytes: payload size at which a thread's chunk is flushed.
    public init(
        metadata: [MetadataEntry], anchorTime: UInt64, chunkBytes: Int = 64 << 10,
        sink: @escaping ([UInt8]) -> Void
    ) {
        self.sink = sink
        self.chunkBytes = min(chunkBytes, TraceFormat.maxChunkPayload - 4096)
        sink(TraceEncoding.fileHeader())
        sink(
            TraceEncoding.chunk(
                kind: ChunkKind.metadata.rawValue, baseTime: anchorTime, thread: 0, seq: 0,
                payload: TraceEncoding.metadataPayload(metadata)))
        chunks = 1
    }

    /// Appends an event of `thread`'s stream. Times must not go backwards within a thread.
    public func append(_ event: TraceEvent, thread: UInt32) {
        var b = buffers[thread] ?? ThreadBuffer(encoder: ChunkEncoder(baseTime: event.time, capacity: 0))
        if b.encoder.eventCount == 0 {
            // Each chunk's time base is its first event's time, so its first dt is 0.
            b.encoder = ChunkEncoder(baseTime: event.time, capacity: chunkBytes + 64)
        }
        if b.encoder.eventCount == 0 && b.knowsState {
            b.encoder.append(TraceEvent(time: event.time, .running(gt: b.current, hub: b.hub)))
            events += 1  // End counts every event in the file's chunks (spec §4.2), these too
        }
        b.encoder.append(event)
        events += 1
        switch event.kind {
        case let .running(gt, hub):
            b.current = gt
            if hub != 0 { b.hub = hub }
            b.knowsState = true
        case .switchToHub:
            b.current = b.hub
            b.knowsState = true
        case let .switchTo(to, _, _):
            b.current = to
            b.knowsState = true
        default:
            break
        }
        if b.encoder.bytes.count >= chunkBytes {
            flush(&b, thread: thread)
        }
        buffers[thread] = b
    }

    private func flush(_ b: inout ThreadBuffer, thread: UInt32) {
        guard b.encoder.eventCount > 0 else { return }
        sink(
            TraceEncoding.chunk(
                kind: ChunkKind.events.rawValue, baseTime: b.encoder.baseTime, thread: thread,
                seq: b.seq, payload: b.encoder.bytes))
        b.seq &+= 1
        chunks += 1
        b.encoder = ChunkEncoder(baseTime: b.encoder.baseTime, capacity: 0)
    }

    /// Flushes every thread's partial chunk (what a recorder does on its periodic timer).
    public func flushAll() {
        for t in buffers.keys.sorted() {
            var b = buffers[t]!
            flush(&b, thread: t)
            buffers[t] = b
        }
    }

    /// Flushes everything and writes the `End` event in a chunk of thread 0.
    public func finish(at time: UInt64) {
        flushAll()
        var end = ChunkEncoder(baseTime: time)
        end.append(TraceEvent(time: time, .end(chunks: chunks, events: events)))
        sink(
            TraceEncoding.chunk(
                kind: ChunkKind.events.rawValue, baseTime: time, thread: 0,
                seq: buffers[0]?.seq ?? 0, payload: end.bytes))
        chunks += 1
    }
}
