// CRC-32 (IEEE 802.3, zlib's polynomial) with slicing-by-8 tables.
// Every chunk carries one; the Python recorder computes it with zlib.crc32, so it must be this CRC.

/// CRC-32 as computed by zlib's `crc32()`: reflected polynomial 0xEDB88320.
public enum CRC32 {
    /// Eight 256-entry tables: table k advances the CRC over a byte that is k bytes further on.
    private static let tables: [UInt32] = {
        var t = [UInt32](repeating: 0, count: 8 * 256)
        for i in 0..<256 {
            var c = UInt32(i)
            for _ in 0..<8 { c = (c & 1) != 0 ? (c >> 1) ^ 0xEDB8_8320 : c >> 1 }
            t[i] = c
        }
        for i in 0..<256 {
            for k in 1..<8 {
                let prev = t[(k - 1) * 256 + i]
                t[k * 256 + i] = (prev >> 8) ^ t[Int(prev & 0xFF)]
            }
        }
        return t
    }()

    /// Continues a CRC over `bytes`; start with `crc` = 0 for a fresh checksum.
    public static func update(_ crc: UInt32, _ bytes: UnsafeRawBufferPointer) -> UInt32 {
        var c = ~crc
        var i = 0
        let n = bytes.count
        guard n > 0, let base = bytes.baseAddress else { return crc }
        tables.withUnsafeBufferPointer { t in
            while n - i >= 8 {
                let lo = UInt32(littleEndian: base.loadUnaligned(fromByteOffset: i, as: UInt32.self)) ^ c
                let hi = UInt32(littleEndian: base.loadUnaligned(fromByteOffset: i + 4, as: UInt32.self))
                c =
                    t[7 * 256 + Int(lo & 0xFF)] ^ t[6 * 256 + Int((lo >> 8) & 0xFF)]
                    ^ t[5 * 256 + Int((lo >> 16) & 0xFF)] ^ t[4 * 256 + Int(lo >> 24)]
                    ^ t[3 * 256 + Int(hi & 0xFF)] ^ t[2 * 256 + Int((hi >> 8) & 0xFF)]
                    ^ t[1 * 256 + Int((hi >> 16) & 0xFF)] ^ t[Int(hi >> 24)]
                i += 8
            }
            while i < n {
                c = t[Int((c ^ UInt32(base.load(fromByteOffset: i, as: UInt8.self))) & 0xFF)] ^ (c >> 8)
                i += 1
            }
        }
        return ~c
    }

    /// `crc` advanced over `n` more bytes as if by multiplying by x^(8n) mod P (zlib's
    /// crc32_combine): crc(A + B) == shift(crc(A), |B|) ^ crc(B). Costs O(log n), not O(n).
    static func shift(_ crc: UInt32, bytes n: UInt64) -> UInt32 {
        var p: UInt32 = 1 << 31  // x^0
        var n = n
        var k = 3  // x2n[k] = x^(2^k): a byte is x^8
        while n != 0 {
            if n & 1 != 0 { p = multiply(x2n[k & 31], p) }
            n >>= 1
            k += 1
        }
        return multiply(p, crc)
    }

    /// x^(2^k) mod P for k = 0 ..< 32 (powers of x repeat with period dividing 2^32 - 1).
    private static let x2n: [UInt32] = {
        var p: UInt32 = 1 << 30  // x^1
        var t = [p]
        for _ in 1..<32 {
            p = multiply(p, p)
            t.append(p)
        }
        return t
    }()

    /// a · b mod P in the reflected representation (zlib's multmodp).
    private static func multiply(_ a: UInt32, _ b: UInt32) -> UInt32 {
        guard a != 0 else { return 0 }
        var m: UInt32 = 1 << 31
        var p: UInt32 = 0
        var b = b
        while true {
            if a & m != 0 {
                p ^= b
                if a & (m &- 1) == 0 { break }
            }
            m >>= 1
            b = b & 1 != 0 ? (b >> 1) ^ 0xEDB8_8320 : b >> 1
        }
        return p
    }

    /// The CRC of a byte array.
    public static func checksum(_ bytes: [UInt8]) -> UInt32 {
        bytes.withUnsafeBytes { update(0, $0) }
    }
}
