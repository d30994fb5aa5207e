// The writers of the trace module: TraceFileWriter (file, header, metadata, per-thread seq)
// and TraceBuilder (many threads' streams into chunks, `Running` at chunk starts, `End`),
// checked by reading their output back with the validating reader.

import Foundation
import Testing

@testable import UnclogTrace

@Suite("Writers")
struct WriterTests {
    @Test("TraceFileWriter: header, metadata, per-thread seq, byte counts")
    func fileWriter() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("unclog-writer-\(UUID().uuidString).bin").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let meta = [MetadataEntry("pid", .uint(77)), MetadataEntry("runtime", .string("eventlet"))]
        var expected: [[TraceEvent]] = []
        do {
            let w = try TraceFileWriter(path: path, metadata: meta, anchorTime: 1_000)
            for (k, thread) in [UInt32(5), 6, 5, 5, 6].enumerated() {
                var enc = ChunkEncoder(baseTime: 2_000 + UInt64(k))
                let events = [
                    TraceEvent(time: 2_000 + UInt64(k), .running(gt: 1, hub: 1)),
                    TraceEvent(time: 2_100 + UInt64(k), .switchTo(to: UInt32(k + 2), reason: .io, readyDelta: 7)),
                ]
                for e in events { enc.append(e) }
                try w.writeChunk(enc, thread: thread)
                expected.append(events)
            }
            #expect(w.chunksWritten == 5)
            let size = try FileManager.default.attributesOfItem(atPath: path)[.size] as? NSNumber
            #expect(w.bytesWritten == size?.uint64Value)
        }
        let got = try readAll(Array(try Data(contentsOf: URL(fileURLWithPath: path))))
        #expect(got.damage.isEmpty)
        #expect(got.metadata[0] == meta && got.chunks[0].baseTime == 1_000 && got.chunks[0].thread == 0)
        #expect(got.chunks.dropFirst().map(\.seq) == [0, 0, 1, 2, 1])
        #expect(Array(got.events.dropFirst()) == expected)
    }

    @Test("TraceFileWriter: an unwritable path is a clear error")
    func fileWriterError() {
        do {
            _ = try TraceFileWriter(path: "/nonexistent-dir/t.bin", metadata: [], anchorTime: 0)
            Issue.record("wrote into a missing directory")
        } catch {
            #expect(error.description == "/nonexistent-dir/t.bin: No such file or directory")
        }
    }

    @Test("TraceBuilder: chunks decode alone (Running first), per-thread seq, End counts", arguments: [200, 4_000])
    func builder(chunkBytes: Int) throws {
        var out: [UInt8] = []
        let b = UnclogTrace.TraceBuilder(metadata: [MetadataEntry("pid", .uint(1))], anchorTime: 10, chunkBytes: chunkBytes) {
            out += $0
        }
        var r = SeededRandom(seed: UInt64(chunkBytes))
        var t: UInt64 = 100
        var appended = 0
        for thread in [UInt32(11), 12] { b.append(TraceEvent(time: t, .running(gt: thread, hub: thread)), thread: thread) }
        appended += 2
        for _ in 0..<2_000 {
            t += r.below(50_000)
            let thread: UInt32 = r.chance(50) ? 11 : 12
            let kind: TraceEvent.Kind =
                r.chance(50)
                ? .switchToHub
                : .switchTo(to: UInt32(20 + r.below(50)), reason: r.pick(SwitchReason.allCases), readyDelta: r.below(9_000))
            b.append(TraceEvent(time: t, kind), thread: thread)
            appended += 1
        }
        b.finish(at: t + 1)
        let got = try readAll(out)
        #expect(got.damage.isEmpty)
        for thread in [UInt32(11), 12] {
            let mine = got.chunks.indices.filter { got.chunks[$0].thread == thread }
            #expect(mine.map { got.chunks[$0].seq } == (0..<UInt32(mine.count)).map { $0 })
            for i in mine {
                guard case .running? = got.events[i].first?.kind else {
                    Issue.record("thread \(thread) chunk seq \(got.chunks[i].seq) does not start with Running")
                    continue
                }
            }
        }
        let last = try #require(got.events.last?.last)
        guard case let .end(chunks, events) = last.kind else { Issue.record("no End last: \(last)"); return }
        #expect(chunks == UInt64(got.chunks.count - 1))
        // Every event of the chunks before End's, the Running events the builder inserted too.
        #expect(events == UInt64(got.events.joined().count - 1))
        #expect(got.events.joined().count - 1 > appended)  // (some were inserted)
    }
}
