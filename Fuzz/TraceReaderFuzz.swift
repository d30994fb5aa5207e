// libFuzzer entry point for the trace reader (Fuzz/run.sh builds and runs it).
// Feeds arbitrary bytes through everything the importer does with an untrusted file: header
// parsing, chunk framing and resynchronisation, event and metadata decoding, and checks the
// reader's accounting. Compiled together with Sources/UnclogTrace/*.swift (one module, so
// internal API such as Chunk's memberwise init is usable and there is no `import`).

@_cdecl("LLVMFuzzerTestOneInput")
public func traceReaderFuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = size > 0 && data != nil ? Array(UnsafeBufferPointer(start: data, count: size)) : []
    readWhole(bytes)
    // Mutations almost never keep a CRC right, so the decoders would only ever see the seeds'
    // payloads: also read a copy whose chunk CRCs are recomputed, and decode the raw bytes as
    // one events payload and one metadata payload.
    readWhole(withFixedCRCs(bytes))
    let chunk = Chunk(
        offset: 16, kind: 2, flags: 0, baseTime: bytes.count > 9 ? UInt64(bytes[9]) << 56 : 0,
        thread: 1, seq: 0, payload: bytes)
    checkEvents(chunk)
    checkMetadata(chunk)
    return 0
}

/// Reads a whole file as the importer does and checks the reader's promises.
private func readWhole(_ bytes: [UInt8]) {
    guard let reader = try? TraceReader(bytes: bytes, name: "<fuzz>") else { return }
    var returned: UInt64 = 0
    var decoderLost: UInt64 = 0
    var lastEnd = UInt64(TraceFormat.fileHeaderSize)
    var offsets: [UInt64] = []
    while let chunk = reader.nextChunk() {
        // Only intact chunks, in file order, never overlapping, never past the end.
        precondition(chunk.offset >= lastEnd)
        lastEnd = chunk.offset + UInt64(chunk.size)
        precondition(lastEnd <= UInt64(bytes.count))
        precondition(Array(bytes[Int(chunk.offset)..<Int(chunk.offset) + 4]) == TraceFormat.chunkSync)
        returned += UInt64(chunk.size)
        offsets.append(chunk.offset)
        let damage: TraceDamage?
        switch chunk.kind {
        case ChunkKind.metadata.rawValue: damage = checkMetadata(chunk)
        case ChunkKind.events.rawValue: damage = checkEvents(chunk)
        default: damage = nil  // unknown kinds are skipped by callers (spec §2.1)
        }
        if let damage {
            decoderLost += damage.bytesLost
            reader.report(damage)
        }
    }
    // Every byte after the header is in a returned chunk or reported lost by the reader, once.
    let readerLost = reader.bytesLost - decoderLost
    precondition(returned + readerLost == UInt64(bytes.count - TraceFormat.fileHeaderSize))
    // Differential check of framing and resynchronisation against the spec's definition
    // computed the slow, obvious way (skipped when many syncs would make it quadratic).
    if let expected = referenceFraming(bytes) {
        let framing = reader.damage.filter { !$0.reason.contains("rest of the chunk dropped") }
        precondition(expected.chunks == offsets)
        precondition(expected.damage == framing.map { [$0.offset, $0.bytesLost] })
    }
    var previous: UInt64 = 0
    for d in reader.damage {
        // (A metadata chunk announcing more entries than it holds is damage of 0 bytes.)
        precondition(d.offset >= previous && d.offset + d.bytesLost <= UInt64(bytes.count))
        previous = d.offset + d.bytesLost
    }
}

/// Decodes an events chunk; damage must cover exactly the tail of the payload.
@discardableResult
private func checkEvents(_ chunk: Chunk) -> TraceDamage? {
    var last = chunk.baseTime
    var count = 0
    let damage = EventDecoder.decode(chunk) { event in
        precondition(event.time >= last)  // dt is unsigned: times never go back
        last = event.time
        count += 1
    }
    if let damage {
        precondition(damage.offset >= chunk.payloadOffset)
        precondition(damage.offset + damage.bytesLost == chunk.payloadOffset + UInt64(chunk.payload.count))
    }
    precondition(count * 2 <= chunk.payload.count)  // code + dt: every event takes 2 bytes or more
    return damage
}

@discardableResult
private func checkMetadata(_ chunk: Chunk) -> TraceDamage? {
    let (entries, damage) = EventDecoder.decodeMetadata(chunk)
    precondition(entries.count <= TraceFormat.maxMetadataEntries)
    if let damage {
        precondition(damage.offset >= chunk.payloadOffset)
        precondition(damage.offset + damage.bytesLost == chunk.payloadOffset + UInt64(chunk.payload.count))
    }
    return damage
}

/// A copy of `bytes` in which every plausible chunk header (sync, length within the file)
/// found walking from offset 16 gets the right CRC.
private func withFixedCRCs(_ bytes: [UInt8]) -> [UInt8] {
    var b = bytes
    var i = TraceFormat.fileHeaderSize
    while i + TraceFormat.chunkHeaderSize <= b.count {
        guard b[i] == 0xFF, b[i + 1] == 0x55, b[i + 2] == 0x43, b[i + 3] == 0x4B else { i += 1; continue }
        let length = Int(b[i + 4]) | Int(b[i + 5]) << 8 | Int(b[i + 6]) << 16 | Int(b[i + 7]) << 24
        let end = i + TraceFormat.chunkHeaderSize + length
        guard length <= TraceFormat.maxChunkPayload, end <= b.count else { i += 1; continue }
        let crc = b.withUnsafeBytes { CRC32.update(0, UnsafeRawBufferPointer(rebasing: $0[(i + 12)..<end])) }
        for k in 0..<4 { b[i + 8 + k] = UInt8(truncatingIfNeeded: crc >> (8 * UInt32(k))) }
        i = end
    }
    return b
}

/// Spec §2.2 done directly: the chunk offsets and the damage stretches of a file whose header
/// is valid. Nil when the input holds over 64 syncs (each costs a CRC over its claimed length).
private func referenceFraming(_ b: [UInt8]) -> (chunks: [UInt64], damage: [[UInt64]])? {
    var syncs = 0
    for i in 0..<max(0, b.count - 3) where b[i] == 0xFF && b[i + 1] == 0x55 && b[i + 2] == 0x43 && b[i + 3] == 0x4B {
        syncs += 1
        if syncs > 64 { return nil }
    }
    func intactLength(_ o: Int) -> Int? {
        guard o + 32 <= b.count, b[o] == 0xFF, b[o + 1] == 0x55, b[o + 2] == 0x43, b[o + 3] == 0x4B else { return nil }
        let length = Int(b[o + 4]) | Int(b[o + 5]) << 8 | Int(b[o + 6]) << 16 | Int(b[o + 7]) << 24
        guard length <= TraceFormat.maxChunkPayload, o + 32 + length <= b.count else { return nil }
        let stored = UInt32(b[o + 8]) | UInt32(b[o + 9]) << 8 | UInt32(b[o + 10]) << 16 | UInt32(b[o + 11]) << 24
        return CRC32.checksum(Array(b[(o + 12)..<(o + 32 + length)])) == stored ? length : nil
    }
    var chunks: [UInt64] = []
    var damage: [[UInt64]] = []
    var o = TraceFormat.fileHeaderSize
    while o < b.count {
        if let length = intactLength(o) {
            chunks.append(UInt64(o))
            o += 32 + length
            continue
        }
        var next = o + 1
        while next < b.count && intactLength(next) == nil { next += 1 }
        damage.append([UInt64(o), UInt64(next - o)])
        o = next
    }
    return (chunks, damage)
}
