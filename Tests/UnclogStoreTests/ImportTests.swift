// Import semantics: several traces per database, re-imports, --replace, damaged input,
// input that is not a trace, databases that are not unclog's, and forward references.

import CSQLite
import Foundation
import Testing
import UnclogImport
import UnclogQuery
import UnclogStore
import UnclogTestSupport
import UnclogTrace

@Suite struct ImportTests {
    @Test func twoTracesInOneDatabase() throws {
        let dir = TempDir()
        let db = dir.file("both.db")
        let first = try importTrace(StallScenario().trace, in: dir, name: "stalls", db: db)
        let second = try importTrace(topTrace(pid: 777), in: dir, name: "top", db: db)
        #expect(first.traceID == 1 && second.traceID == 2)
        #expect(!second.alreadyImported)
        let store = try TraceStore(path: db)
        #expect(try store.traceIDs() == [1, 2])
        #expect(
            try store.rows("SELECT id, pid, path FROM traces ORDER BY id") == [
                [.int(1), .int(4242), .text(dir.file("stalls.trace"))], [.int(2), .int(777), .text(dir.file("top.trace"))],
            ])

        // Keys and row ids of each trace live in their own ranges.
        for check in [
            "SELECT COUNT(*) FROM slices WHERE id >> 40 != thread_key >> 32 OR id >> 40 != gt_key >> 32",
            "SELECT COUNT(*) FROM io_waits WHERE id >> 40 != thread_key >> 32",
            "SELECT COUNT(*) FROM stalls WHERE id >> 40 != trace_id OR gt_key >> 32 != trace_id",
            "SELECT COUNT(*) FROM stall_samples WHERE id >> 40 != trace_id OR stall_id >> 40 != trace_id",
        ] {
            #expect(try store.int(check) == 0, "\(check)")
        }
        #expect(try store.int("SELECT COUNT(*) FROM greenthreads WHERE key >> 32 != trace_id") == 0)
        #expect(try store.int("SELECT COUNT(*) FROM frames WHERE key >> 32 != trace_id") == 0)
        // The same recorder ids (gt 2, frame 1, thread 10) exist in both traces, apart.
        #expect(try store.int("SELECT COUNT(*) FROM greenthreads WHERE gt = 2") == 2)
        #expect(try store.int("SELECT COUNT(*) FROM threads WHERE tid = 10") == 2)
        #expect(
            try store.rows("SELECT key >> 32, function FROM frames WHERE key & 0xFFFFFFFF = 1 ORDER BY key") == [
                [.int(1), .text("recv")], [.int(2), .text("open")],
            ])

        // Queries filter by trace, and see both without a filter.
        #expect(try store.stalls().count == 4 + 13)
        #expect(try store.stalls(traceID: 1).count == 4)
        #expect(try store.stalls(traceID: 2).count == 13)
        #expect(try store.stalls(traceID: 2).allSatisfy { $0.traceID == 2 })
        let top2 = try store.top(by: .file, inclusive: false, traceID: 2)
        let shares = top2.rows.indices.compactMap { Double(top2.cell($0, "share")) }
        #expect(abs(shares.reduce(0, +) - 1) < 0.001)
        #expect(top2.row(where: "file", is: "db.py") != nil)
        let top1 = try store.top(by: .function, inclusive: false, traceID: 1)
        #expect(top1.row(where: "function", is: "query") == nil)
        #expect(top1.row(where: "function", is: "fetch") != nil)
        // The timeline shows the most recent trace by default, either one on request.
        #expect(try store.timeline(TimelineOptions(width: 20)).hasPrefix("trace 2:"))
        #expect(try store.timeline(TimelineOptions(traceID: 1, width: 20)).hasPrefix("trace 1:"))
    }

    @Test func sameFileTwiceIsNotDuplicated() throws {
        let dir = TempDir()
        let first = try importTrace(StallScenario().trace, in: dir)
        let before = try TraceStore(path: dir.file("t.db")).tableCounts()
        let bytes = contents(dir.file("t.db"))
        let again = try TraceImporter.run(ImportOptions(tracePath: dir.file("t.trace"), databasePath: dir.file("t.db")))
        #expect(again.alreadyImported)
        #expect(!again.replaced)
        #expect(again.traceID == first.traceID)
        #expect(contents(dir.file("t.db")) == bytes)
        #expect(try TraceStore(path: dir.file("t.db")).tableCounts() == before)
        #expect(before["slices"]! > 0 && before["stalls"] == 4)
        // A copy of the same recording under another name is the same recording.
        try FileManager.default.copyItem(atPath: dir.file("t.trace"), toPath: dir.file("copy.trace"))
        let copy = try TraceImporter.run(ImportOptions(tracePath: dir.file("copy.trace"), databasePath: dir.file("t.db")))
        #expect(copy.alreadyImported)
        #expect(dir.listing() == ["copy.trace", "t.db", "t.trace"])
    }

    /// A recording imported while it was still being written, then again when complete: the
    /// same recording (same first chunk), so refused, and --replace brings in the rest.
    @Test func grownRecordingIsTheSameRecording() throws {
        let full = StallScenario(killed: false).trace.bytes
        let offsets = chunkOffsets(full)
        let dir = TempDir()
        FileManager.default.createFile(atPath: dir.file("live.trace"), contents: Data(full[..<offsets[3]]))
        let early = try TraceImporter.run(ImportOptions(tracePath: dir.file("live.trace"), databasePath: dir.file("live.db")))
        #expect(!early.cleanEnd && early.stalls < 4)
        FileManager.default.createFile(atPath: dir.file("live.trace"), contents: Data(full))
        #expect(
            try TraceImporter.run(ImportOptions(tracePath: dir.file("live.trace"), databasePath: dir.file("live.db")))
                .alreadyImported)
        let replaced = try TraceImporter.run(
            ImportOptions(tracePath: dir.file("live.trace"), databasePath: dir.file("live.db"), replace: true))
        #expect(replaced.replaced && replaced.cleanEnd && replaced.stalls == 4)
        let store = try TraceStore(path: dir.file("live.db"))
        #expect(try store.traceIDs().count == 1)
        #expect(try store.stalls().count == 4)
    }

    @Test func replaceKeepsRowCounts() throws {
        let dir = TempDir()
        let db = dir.file("t.db")
        try importTrace(topTrace(pid: 1), in: dir, name: "other", db: db)
        try importTrace(StallScenario().trace, in: dir, db: db)
        let before = try TraceStore(path: db).tableCounts()
        let stallsBefore = try TraceStore(path: db).stalls(traceID: 2).map { [$0.durationNs, $0.victimWaitNs, $0.samples] }
        let replaced = try TraceImporter.run(ImportOptions(tracePath: dir.file("t.trace"), databasePath: db, replace: true))
        #expect(replaced.replaced)
        #expect(!replaced.alreadyImported)
        let store = try TraceStore(path: db)
        #expect(try store.traceIDs() == [1, replaced.traceID])
        // Same row counts in every table: the old rows are gone, none is duplicated.
        #expect(try store.tableCounts() == before)
        #expect(try store.stalls(traceID: replaced.traceID).map { [$0.durationNs, $0.victimWaitNs, $0.samples] } == stallsBefore)
        #expect(try store.stalls(traceID: 1).count == 13)
        // And a plain re-import after the replace is still refused.
        #expect(try TraceImporter.run(ImportOptions(tracePath: dir.file("t.trace"), databasePath: db)).alreadyImported)
    }

    /// A trace built in several chunks: thread 10 alternates gt 2 and gt 3, one chunk every few
    /// switches, and each chunk holds one stall of gt 2.
    func chunkyTrace() -> ScriptedTrace {
        let tr = ScriptedTrace()
        tr.at(0, 10, .running(gt: 1, hub: 1))
        for i in 0..<8 {
            let t = Int64(i) * ms(100)
            tr.at(t + ms(1), 10, .switchTo(to: 2, reason: .timer, readyDelta: 0))
            tr.at(t + ms(31), 10, .stallEnd(gt: 2, duration: UInt64(ms(30)), stack: 0))
            tr.at(t + ms(31), 10, .switchToHub)
            tr.at(t + ms(40), 10, .switchTo(to: 3, reason: .io, readyDelta: UInt64(ms(20))))
            tr.at(t + ms(45), 10, .switchToHub)
            tr.flush()
        }
        tr.finish(at: ms(800))
        return tr
    }

    @Test func fileCutMidChunk() throws {
        let tr = chunkyTrace()
        let offsets = chunkOffsets(tr.bytes)
        #expect(offsets.count == 1 + 8 + 1)  // metadata, 8 event chunks, End
        let cut = offsets[6] + 40  // inside the 6th events chunk's payload
        let dir = TempDir()
        FileManager.default.createFile(atPath: dir.file("cut.trace"), contents: Data(tr.bytes[..<cut]))
        let summary = try TraceImporter.run(ImportOptions(tracePath: dir.file("cut.trace"), databasePath: dir.file("cut.db")))
        #expect(summary.damage.count == 1)
        #expect(summary.damage.first?.offset == UInt64(offsets[6]))
        #expect(summary.damage.first?.reason.contains("truncated") == true)
        #expect(summary.bytesLost == UInt64(cut - offsets[6]))
        #expect(summary.chunks == 6)  // metadata and the 5 intact events chunks
        #expect(!summary.cleanEnd)
        #expect(summary.stalls == 5)
        let store = try TraceStore(path: dir.file("cut.db"))
        #expect(
            try store.rows("SELECT offset, bytes_lost FROM import_damage") == [
                [.int(Int64(offsets[6])), .int(Int64(cut - offsets[6]))]
            ])
        #expect(
            try store.rows("SELECT bytes_lost, clean_end, chunks FROM traces") == [
                [.int(Int64(cut - offsets[6])), .int(0), .int(6)]
            ])
        #expect(try store.stalls().map(\.startNs).sorted() == (0..<5).map { Int64($0) * ms(100) + ms(1) })
    }

    @Test func corruptedMiddleChunk() throws {
        let tr = chunkyTrace()
        let offsets = chunkOffsets(tr.bytes)
        var bytes = tr.bytes
        bytes[offsets[3] + 40] ^= 0x5A  // a payload byte of the 3rd events chunk: bad CRC
        let dir = TempDir()
        FileManager.default.createFile(atPath: dir.file("bad.trace"), contents: Data(bytes))
        let summary = try TraceImporter.run(ImportOptions(tracePath: dir.file("bad.trace"), databasePath: dir.file("bad.db")))
        #expect(summary.damage.count == 1)
        #expect(summary.damage.first?.offset == UInt64(offsets[3]))
        #expect(summary.damage.first?.reason.contains("checksum") == true)
        #expect(summary.bytesLost == UInt64(offsets[4] - offsets[3]))
        #expect(summary.chunks == offsets.count - 1)
        #expect(summary.cleanEnd)  // the End chunk after the damage is intact
        let store = try TraceStore(path: dir.file("bad.db"))
        // Every stall but the one in the lost chunk; the chunk after it decodes on its own.
        #expect(try store.stalls().map(\.startNs).sorted() == [0, 1, 3, 4, 5, 6, 7].map { Int64($0) * ms(100) + ms(1) })
        #expect(
            try store.rows("SELECT offset, bytes_lost FROM import_damage") == [
                [.int(Int64(offsets[3])), .int(Int64(offsets[4] - offsets[3]))]
            ])
        // gt 3's slices outside the lost chunk are intact, with their ready times.
        #expect(
            try store.rows(
                "SELECT COUNT(*), SUM(end_ns - start_ns), SUM(start_ns - ready_ns) FROM slices WHERE gt_key = ?", [.int(key(3))])
                == [[.int(7), .int(7 * ms(5)), .int(7 * ms(20))]])
    }

    @Test(arguments: ["missing", "text", "empty", "future-version"])
    func unreadableInputChangesNothing(kind: String) throws {
        let dir = TempDir()
        let input = dir.file("input.trace")
        switch kind {
        case "text": FileManager.default.createFile(atPath: input, contents: Data("hello, not a trace\n".utf8))
        case "empty": FileManager.default.createFile(atPath: input, contents: Data())
        case "future-version":
            var b = chunkyTrace().bytes
            b[8] = 2
            FileManager.default.createFile(atPath: input, contents: Data(b))
        default: break
        }
        // No database yet: none is created (not even a temporary file).
        #expect(throws: ImportError.self) {
            try TraceImporter.run(ImportOptions(tracePath: input, databasePath: dir.file("new.db")))
        }
        #expect(!dir.listing().contains { $0.hasPrefix("new.db") }, "\(dir.listing())")
        do {
            _ = try TraceImporter.run(ImportOptions(tracePath: input, databasePath: dir.file("new.db")))
        } catch {
            #expect(error.description.hasPrefix(input + ": byte "), "\(error.description)")
            #expect(!error.description.contains("\n"))
        }

        // An existing database stays byte-identical.
        try importTrace(StallScenario().trace, in: dir, name: "good")
        let before = contents(dir.file("good.db"))
        #expect(throws: ImportError.self) {
            try TraceImporter.run(ImportOptions(tracePath: input, databasePath: dir.file("good.db")))
        }
        #expect(contents(dir.file("good.db")) == before)
        #expect(dir.listing().filter { $0.hasPrefix("good.db") } == ["good.db"])
    }

    @Test func foreignSQLiteDatabaseIsRefusedUnchanged() throws {
        let dir = TempDir()
        let path = dir.file("other.db")
        var handle: OpaquePointer?
        #expect(sqlite3_open(path, &handle) == SQLITE_OK)
        #expect(
            sqlite3_exec(
                handle, "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT); INSERT INTO notes VALUES (1, 'keep me');",
                nil, nil, nil) == SQLITE_OK)
        sqlite3_close(handle)
        let before = contents(path)
        let tr = StallScenario().trace
        tr.write(to: dir.file("t.trace"))
        do {
            _ = try TraceImporter.run(ImportOptions(tracePath: dir.file("t.trace"), databasePath: path))
            Issue.record("importing into a foreign database succeeded")
        } catch {
            #expect(error.description.contains("not a unclog database"), "\(error.description)")
        }
        #expect(contents(path) == before)
        #expect(dir.listing() == ["other.db", "t.trace"])
        // Nor does the read side accept it.
        #expect(throws: StoreError.self) { try TraceStore(path: path) }
        // A file that is not SQLite at all is refused the same way.
        FileManager.default.createFile(atPath: dir.file("notes.txt"), contents: Data(String(repeating: "text ", count: 300).utf8))
        let text = contents(dir.file("notes.txt"))
        #expect(throws: ImportError.self) {
            try TraceImporter.run(ImportOptions(tracePath: dir.file("t.trace"), databasePath: dir.file("notes.txt")))
        }
        #expect(contents(dir.file("notes.txt")) == text)
    }

    /// Definitions may follow their uses in the file, and sit in another thread's chunks: the
    /// watchdog samples stack 7 before thread 12's chunk defines it, whose frames' strings come
    /// later still, in thread 13's chunk. A string never defined shows as `<string N>`.
    @Test func forwardReferencesResolve() throws {
        let tr = ScriptedTrace()
        tr.at(0, 10, .running(gt: 1, hub: 1))
        tr.at(ms(1), 10, .greenthreadCreate(gt: 2, name: 50, spawnStack: 0, parent: 0))
        tr.at(ms(1), 10, .switchTo(to: 2, reason: .spawn, readyDelta: 0))
        tr.at(ms(5), 99, .stallSample(tid: 10, stack: 7, state: 1))
        tr.at(ms(6), 99, .stallSample(tid: 10, stack: 7, state: 1))
        tr.flush()
        tr.at(ms(21), 10, .stallEnd(gt: 2, duration: UInt64(ms(20)), stack: 8))
        tr.at(ms(21), 10, .switchToHub)
        tr.flush()
        tr.at(ms(30), 12, .stack(id: 7, frames: [3, 4]))
        tr.at(ms(30), 12, .stack(id: 8, frames: [4]))
        tr.at(ms(30), 12, .frame(id: 3, flags: [], function: 60, file: 61, line: 9))
        tr.at(ms(30), 12, .frame(id: 4, flags: [], function: 62, file: 99, line: 1))  // file string 99 never comes
        tr.flush()
        tr.at(ms(31), 13, .string(id: 60, value: "slow_call"))
        tr.at(ms(31), 13, .string(id: 61, value: "svc.py"))
        tr.at(ms(31), 13, .string(id: 62, value: "outer"))
        tr.at(ms(31), 13, .string(id: 50, value: "late-name"))
        tr.finish(at: ms(40))
        let dir = TempDir()
        try importTrace(tr, in: dir)
        let store = try TraceStore(path: dir.file("t.db"))
        let s = try #require(try store.stalls().first)
        #expect(s.samples == 2)
        #expect(s.function == "slow_call" && s.file == "svc.py" && s.line == 9)
        #expect(s.greenthreadName == "late-name")
        #expect(s.stack.map(\.function) == ["slow_call", "outer"])
        #expect(s.stack.map(\.file) == ["svc.py", "<string 99>"])
    }

    /// Progress is reported while importing (the CLI draws its bar from it).
    @Test func progressCallback() throws {
        let dir = TempDir()
        let tr = TimelineTests.data.trace
        let path = tr.write(to: dir.file("p.trace"))
        final class Box: @unchecked Sendable { var calls: [ImportProgress] = [] }
        let box = Box()
        // The callback fires at most every 0.1 s: it may not fire at all on a fast import,
        // but what it reports must be consistent.
        _ = try TraceImporter.run(
            ImportOptions(tracePath: path, databasePath: dir.file("p.db"), progress: { box.calls.append($0) }))
        for p in box.calls {
            #expect(p.fileSize == UInt64(tr.bytes.count))
            #expect(p.bytesRead <= UInt64(tr.bytes.count))
        }
    }
}

@Suite struct RecorderCountersAndDamageInsideChunks {
    /// A hand-assembled file: an events chunk whose payload holds good events, then an unknown
    /// event type (damage inside an intact chunk: the events before it are kept), a chunk of an
    /// unknown kind (skipped), skippable events, Dropped counters and an Image.
    @Test func countersSkipsAndMalformedEvents() throws {
        var file = TraceEncoding.fileHeader()
        file += TraceEncoding.chunk(
            kind: ChunkKind.metadata.rawValue, baseTime: anchor, thread: 0, seq: 0,
            payload: TraceEncoding.metadataPayload([MetadataEntry("anchor_mono_ns", .uint(anchor))]))
        var good = ChunkEncoder(baseTime: anchor)
        good.append(TraceEvent(time: anchor + 10, .string(id: 1, value: "/usr/lib/libfoo.so")))
        good.append(
            TraceEvent(
                time: anchor + 10,
                .image(
                    id: 1, path: 1, loadBias: 0x1000, start: 0x2000, end: 0x3000,
                    buildID: [0xDE, 0xAD, 0x01])))
        good.append(TraceEvent(time: anchor + 20, .dropped(reason: 1, count: 5)))
        good.append(TraceEvent(time: anchor + 30, .dropped(reason: 2, count: 2)))
        good.append(TraceEvent(time: anchor + 40, .skipped(code: 0x90, length: 3)))
        good.append(TraceEvent(time: anchor + 50, .running(gt: 1, hub: 1)))
        good.append(TraceEvent(time: anchor + 60, .switchTo(to: 2, reason: .spawn, readyDelta: 0)))
        let malformedAt = good.bytes.count
        let payload = good.bytes + [0x50, 0x00, 0x01, 0x10, 0x00]  // 0x50: not a defined event type
        let eventsChunkOffset = file.count
        file += TraceEncoding.chunk(kind: ChunkKind.events.rawValue, baseTime: anchor, thread: 10, seq: 0, payload: payload)
        file += TraceEncoding.chunk(kind: 9, baseTime: anchor, thread: 10, seq: 1, payload: [1, 2, 3])
        var tail = ChunkEncoder(baseTime: anchor + 100)
        tail.append(TraceEvent(time: anchor + 100, .running(gt: 2, hub: 1)))
        tail.append(TraceEvent(time: anchor + 300, .switchToHub))
        tail.append(TraceEvent(time: anchor + 400, .end(chunks: 4, events: 10)))
        file += TraceEncoding.chunk(
            kind: ChunkKind.events.rawValue, baseTime: anchor + 100, thread: 10, seq: 2, payload: tail.bytes)

        let dir = TempDir()
        FileManager.default.createFile(atPath: dir.file("c.trace"), contents: Data(file))
        let summary = try TraceImporter.run(ImportOptions(tracePath: dir.file("c.trace"), databasePath: dir.file("c.db")))
        let damageOffset = UInt64(eventsChunkOffset + TraceFormat.chunkHeaderSize + malformedAt)
        #expect(summary.damage.map(\.offset) == [damageOffset])
        #expect(summary.bytesLost == 5)
        #expect(summary.eventsDropped == 7)
        #expect(summary.recorderErrors == 2)
        #expect(summary.skippedEvents == 1)
        #expect(summary.skippedChunks == 1)
        #expect(summary.cleanEnd)
        let store = try TraceStore(path: dir.file("c.db"))
        #expect(
            try store.rows("SELECT events_dropped, recorder_errors, bytes_lost, clean_end FROM traces") == [
                [.int(7), .int(2), .int(5), .int(1)]
            ])
        #expect(try store.rows("SELECT offset, bytes_lost FROM import_damage") == [[.int(Int64(damageOffset)), .int(5)]])
        #expect(
            try store.rows("SELECT path, load_bias, start, end, build_id FROM images") == [
                [.text("/usr/lib/libfoo.so"), .int(0x1000), .int(0x2000), .int(0x3000), .text("dead01")]
            ])
        // The slice begun before the damage continues into the next chunk, whose Running agrees.
        #expect(try store.rows("SELECT gt_key, start_ns, end_ns FROM slices") == [[.int(key(2)), .int(60), .int(300)]])
    }
}
