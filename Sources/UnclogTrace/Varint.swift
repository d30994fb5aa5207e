// Unsigned LEB128 varints and little-endian fixed-width integers, encode and bounds-checked decode.

extension Array where Element == UInt8 {
    /// Appends `value` as an unsigned LEB128 varint (1–10 bytes).
    @inlinable
    mutating func appendUvarint(_ value: UInt64) {
        var v = value
        while v >= 0x80 {
            append(UInt8(truncatingIfNeeded: v) | 0x80)
            v >>= 7
        }
        append(UInt8(truncatingIfNeeded: v))
    }

    @inlinable
    mutating func appendLE<T: FixedWidthInteger>(_ value: T) {
        var v = value.littleEndian
        Swift.withUnsafeBytes(of: &v) { append(contentsOf: $0) }
    }

    /// Appends a length-prefixed byte string.
    mutating func appendBytes(_ bytes: some Collection<UInt8>) {
        appendUvarint(UInt64(bytes.count))
        append(contentsOf: bytes)
    }
}

/// Why a field or event could not be decoded.
enum DecodeFailure: Error, Equatable {
    case truncated
    case varintTooLong
    case invalid(String)

    var reason: String {
        switch self {
        case .truncated: "runs past the end of its chunk"
        case .varintTooLong: "malformed varint (longer than 64 bits)"
        case let .invalid(message): message
        }
    }
}

/// A cursor over a byte buffer that never reads past its end.
struct ByteCursor {
    let base: UnsafeRawBufferPointer
    var position: Int

    init(_ base: UnsafeRawBufferPointer, position: Int = 0) {
        self.base = base
        self.position = position
    }

    var remaining: Int { base.count - position }
    var atEnd: Bool { position >= base.count }

    @inline(__always)
    mutating func byte() throws(DecodeFailure) -> UInt8 {
        guard position < base.count else { throw .truncated }
        let b = base[position]
        position += 1
        return b
    }

    /// Decodes an unsigned LEB128 varint: at most 10 bytes, the 10th at most 1.
    @inline(__always)
    mutating func uvarint() throws(DecodeFailure) -> UInt64 {
        // Fast path: one byte.
        guard position < base.count else { throw .truncated }
        let first = base[position]
        if first < 0x80 {
            position += 1
            return UInt64(first)
        }
        var result: UInt64 = 0
        var shift: UInt64 = 0
        var i = position
        while true {
            guard i < base.count else { throw .truncated }
            let b = base[i]
            i += 1
            if shift == 63 && b > 1 { throw .varintTooLong }
            result |= UInt64(b & 0x7F) << shift
            if b < 0x80 { break }
            shift += 7
            if shift > 63 { throw .varintTooLong }
        }
        position = i
        return result
    }

    mutating func bytes(_ count: Int) throws(DecodeFailure) -> UnsafeRawBufferPointer {
        guard count >= 0, count <= remaining else { throw .truncated }
        let slice = UnsafeRawBufferPointer(rebasing: base[position..<(position + count)])
        position += count
        return slice
    }

    mutating func fixedLE<T: FixedWidthInteger>(_: T.Type) throws(DecodeFailure) -> T {
        let size = MemoryLayout<T>.size
        guard size <= remaining else { throw .truncated }
        let v = base.loadUnaligned(fromByteOffset: position, as: T.self)
        position += size
        return T(littleEndian: v)
    }
}
