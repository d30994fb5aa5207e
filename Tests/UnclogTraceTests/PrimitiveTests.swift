// Tests of the two primitives every chunk depends on: the slicing-by-8 CRC-32 (checked
// against zlib's known answer and a plain bytewise implementation) and LEB128 varints.

import Testing

@testable import UnclogTrace

/// The textbook one-byte-at-a-time CRC-32 (bit loop, no tables): an independent oracle.
private func bitwiseCRC32(_ bytes: [UInt8]) -> UInt32 {
    var c: UInt32 = 0xFFFF_FFFF
    for b in bytes {
        c ^= UInt32(b)
        for _ in 0..<8 { c = (c & 1) != 0 ? (c >> 1) ^ 0xEDB8_8320 : c >> 1 }
    }
    return ~c
}

@Suite("CRC-32")
struct CRC32Tests {
    @Test("zlib's known answers")
    func knownAnswers() {
        #expect(CRC32.checksum(Array("123456789".utf8)) == 0xCBF4_3926)
        #expect(CRC32.checksum([]) == 0)
        #expect(CRC32.checksum([0]) == 0xD202_EF8D)
        #expect(CRC32.checksum(Array("The quick brown fox jumps over the lazy dog".utf8)) == 0x414F_A339)
        #expect(bitwiseCRC32(Array("123456789".utf8)) == 0xCBF4_3926)
    }

    @Test("slicing-by-8 agrees with the bitwise CRC on every length 0…300 and at every alignment")
    func agreesWithBitwise() {
        var rng = SeededRandom(seed: 0xC3C3)
        for length in 0...300 {
            let buffer = (0..<(length + 7)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            // Sub-slices starting at 0…7 exercise unaligned 8-byte loads.
            for shift in 0..<8 {
                let slice = Array(buffer[shift..<(shift + length)])
                let fast = buffer.withUnsafeBytes {
                    CRC32.update(0, UnsafeRawBufferPointer(rebasing: $0[shift..<(shift + length)]))
                }
                #expect(fast == bitwiseCRC32(slice), "length \(length) shift \(shift)")
            }
        }
        for length in [1000, 4096, 65_537] {
            let buffer = (0..<length).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            #expect(CRC32.checksum(buffer) == bitwiseCRC32(buffer), "length \(length)")
        }
    }

    @Test("shift combines CRCs like zlib's crc32_combine: crc(A+B) = shift(crc(A), |B|) ^ crc(B)")
    func combine() {
        var rng = SeededRandom(seed: 0xC0B1)
        for _ in 0..<200 {
            let a = (0..<rng.int(0...300)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            let b = (0..<rng.int(0...3000)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            #expect(CRC32.checksum(a + b) == CRC32.shift(CRC32.checksum(a), bytes: UInt64(b.count)) ^ CRC32.checksum(b))
        }
        #expect(CRC32.shift(0, bytes: 1 << 40) == 0)
        #expect(CRC32.shift(0x1234_5678, bytes: 0) == 0x1234_5678)
    }

    @Test("update continues a CRC across arbitrary splits")
    func incremental() {
        var rng = SeededRandom(seed: 7)
        let buffer = (0..<777).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        let whole = CRC32.checksum(buffer)
        for split in [0, 1, 7, 8, 9, 100, 776, 777] {
            let crc = buffer.withUnsafeBytes { raw in
                CRC32.update(
                    CRC32.update(0, UnsafeRawBufferPointer(rebasing: raw[..<split])),
                    UnsafeRawBufferPointer(rebasing: raw[split...]))
            }
            #expect(crc == whole, "split at \(split)")
        }
    }
}

/// Decodes one varint from `bytes`, returning the value and bytes consumed.
private func decodeVarint(_ bytes: [UInt8]) throws(DecodeFailure) -> (UInt64, Int) {
    let result = bytes.withUnsafeBytes { raw -> Result<(UInt64, Int), DecodeFailure> in
        var c = ByteCursor(raw)
        do throws(DecodeFailure) {
            let v = try c.uvarint()
            return .success((v, c.position))
        } catch {
            return .failure(error)
        }
    }
    return try result.get()
}

private func failure(_ bytes: [UInt8]) -> DecodeFailure? {
    do { _ = try decodeVarint(bytes); return nil } catch { return error }
}

@Suite("Varints")
struct VarintTests {
    static let edgeCases: [(UInt64, [UInt8])] = [
        (0, [0x00]),
        (127, [0x7F]),
        (128, [0x80, 0x01]),
        (300, [0xAC, 0x02]),
        (16_383, [0xFF, 0x7F]),
        (16_384, [0x80, 0x80, 0x01]),
        (UInt64(1) << 63, [0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01]),
        (UInt64.max, [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01]),
    ]

    @Test("encodings of the edge values 0, 127, 128, 2^63, UInt64.max")
    func edges() throws {
        for (value, encoding) in Self.edgeCases {
            var out: [UInt8] = []
            out.appendUvarint(value)
            #expect(out == encoding, "\(value)")
            let (decoded, used) = try decodeVarint(encoding + [0xAA])  // a following byte is not consumed
            #expect(decoded == value)
            #expect(used == encoding.count)
        }
    }

    @Test("every power-of-two boundary round-trips at the shortest length")
    func boundaries() throws {
        for shift in 0..<64 {
            for v in [UInt64(1) << shift, (UInt64(1) << shift) - 1, (UInt64(1) << shift) + 1] {
                var out: [UInt8] = []
                out.appendUvarint(v)
                let bits = v == 0 ? 1 : 64 - v.leadingZeroBitCount
                #expect(out.count == (bits + 6) / 7, "\(v)")
                #expect(try decodeVarint(out) == (v, out.count))
            }
        }
    }

    @Test("non-minimal encodings are accepted")
    func nonMinimal() throws {
        #expect(try decodeVarint([0x80, 0x00]) == (0, 2))
        #expect(try decodeVarint([0xFF, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00]) == (127, 10))
    }

    @Test("overlong and overflowing varints are rejected")
    func rejected() {
        // 11 bytes: ten continuation bytes.
        #expect(failure([UInt8](repeating: 0x80, count: 10) + [0x00]) == .varintTooLong)
        #expect(failure([UInt8](repeating: 0xFF, count: 10) + [0x01]) == .varintTooLong)
        // A 10th byte greater than 1 would need a 65th bit.
        #expect(failure([UInt8](repeating: 0xFF, count: 9) + [0x02]) == .varintTooLong)
        #expect(failure([UInt8](repeating: 0x80, count: 9) + [0x7F]) == .varintTooLong)
        // Running off the end of the buffer.
        #expect(failure([]) == .truncated)
        #expect(failure([0x80]) == .truncated)
        #expect(failure([0xFF, 0xFF, 0xFF]) == .truncated)
    }
}
