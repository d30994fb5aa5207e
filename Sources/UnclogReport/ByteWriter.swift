// Streaming output for the exporters: a buffered byte writer to a file (written to a
// temporary name and renamed into place when complete, so a failed export never leaves a
// half-written file behind) or to standard output, plus fast JSON/HTML text encoding.
// The exporters write millions of events; formatting goes byte by byte, never through
// String interpolation in the hot loops.

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import UnclogStore

/// Writes bytes through a fixed buffer; memory stays at the buffer size whatever is written.
public final class ByteWriter {
    private var buffer: [UInt8] = []
    private let capacity: Int
    private let fd: Int32
    private let finalPath: String?
    private let tempPath: String?
    /// Bytes written so far (flushed or buffered).
    public private(set) var bytesWritten: Int64 = 0
    private var failed: String?

    /// Writes to `path` ("-" is standard output). The file appears only on `finish()`.
    public init(path: String, capacity: Int = 1 << 20) throws(StoreError) {
        self.capacity = capacity
        buffer.reserveCapacity(capacity + 4096)
        if path == "-" {
            fd = 1
            finalPath = nil
            tempPath = nil
        } else {
            let tmp = path + ".tmp-\(getpid())"
            let f = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
            guard f >= 0 else {
                throw StoreError("\(path): cannot write: \(String(cString: strerror(errno)))")
            }
            fd = f
            finalPath = path
            tempPath = tmp
        }
    }

    /// An in-memory writer for tests: `finish()` is a no-op; read `contents`.
    public init(memory: ()) {
        capacity = Int.max
        fd = -1
        finalPath = nil
        tempPath = nil
    }

    deinit {
        if !closed, let tempPath, fd >= 0 {
            close(fd)
            unlink(tempPath)
        }
    }

    /// The bytes of an in-memory writer.
    public var contents: [UInt8] { buffer }

    @inline(__always)
    public func byte(_ b: UInt8) {
        buffer.append(b)
        if buffer.count >= capacity { flush() }
    }

    @inline(__always)
    public func write(_ s: StaticString) {
        s.withUTF8Buffer { buffer.append(contentsOf: $0) }
        if buffer.count >= capacity { flush() }
    }

    @inline(__always)
    public func write(bytes: [UInt8]) {
        buffer.append(contentsOf: bytes)
        if buffer.count >= capacity { flush() }
    }

    /// Raw text, not escaped.
    public func write(_ s: String) {
        var s = s
        s.withUTF8 { buffer.append(contentsOf: $0) }
        if buffer.count >= capacity { flush() }
    }

    /// A decimal integer.
    @inline(__always)
    public func int(_ v: Int64) {
        if v < 0 {
            buffer.append(UInt8(ascii: "-"))
            if v == Int64.min {
                write("9223372036854775808")
                return
            }
            uint(UInt64(-v))
        } else {
            uint(UInt64(v))
        }
    }

    @inline(__always)
    public func uint(_ v: UInt64) {
        if v < 10 {
            buffer.append(UInt8(truncatingIfNeeded: v) &+ 48)
            return
        }
        var tmp: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
                  UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) =
            (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        var n = 0
        var x = v
        withUnsafeMutableBytes(of: &tmp) { p in
            while x > 0 {
                p[19 - n] = UInt8(truncatingIfNeeded: x % 10) &+ 48
                x /= 10
                n += 1
            }
            buffer.append(contentsOf: UnsafeRawBufferPointer(rebasing: p[(20 - n)...]))
        }
    }

    /// Nanoseconds as microseconds with `digits` decimals (`1234567` → `1234.567`).
    @inline(__always)
    public func micros(_ ns: Int64, digits: Int = 3) {
        var v = ns
        if v < 0 {
            buffer.append(UInt8(ascii: "-"))
            v = -v
        }
        uint(UInt64(v / 1000))
        let frac = Int(v % 1000)
        guard digits > 0 else { return }
        buffer.append(UInt8(ascii: "."))
        // Three decimals, then trailing digits only when asked.
        let d0 = frac / 100, d1 = (frac / 10) % 10, d2 = frac % 10
        buffer.append(UInt8(d0 + 48))
        if digits > 1 { buffer.append(UInt8(d1 + 48)) }
        if digits > 2 { buffer.append(UInt8(d2 + 48)) }
    }

    /// A JSON string literal (quotes included), escaping per RFC 8259.
    public func jsonString(_ s: String) {
        buffer.append(UInt8(ascii: "\""))
        var s = s
        s.withUTF8 { jsonEscape($0) }
        buffer.append(UInt8(ascii: "\""))
        if buffer.count >= capacity { flush() }
    }

    /// Appends pre-escaped JSON string contents (no quotes) for `s`.
    func jsonEscape(_ p: UnsafeBufferPointer<UInt8>) {
        for c in p {
            switch c {
            case UInt8(ascii: "\""): buffer.append(92); buffer.append(34)
            case UInt8(ascii: "\\"): buffer.append(92); buffer.append(92)
            case 0x0A: buffer.append(92); buffer.append(UInt8(ascii: "n"))
            case 0x0D: buffer.append(92); buffer.append(UInt8(ascii: "r"))
            case 0x09: buffer.append(92); buffer.append(UInt8(ascii: "t"))
            case 0..<0x20, 0x7F:
                let hex: [UInt8] = Array("0123456789abcdef".utf8)
                buffer.append(contentsOf: [92, UInt8(ascii: "u"), 48, 48, hex[Int(c >> 4)], hex[Int(c & 15)]])
            default: buffer.append(c)
            }
        }
    }

    /// Text escaped for HTML element content and attribute values.
    public func html(_ s: String) {
        buffer.append(contentsOf: Array(HTML.escape(s).utf8))
        if buffer.count >= capacity { flush() }
    }

    /// Sends the buffer to the file.
    public func flush() {
        guard fd >= 0, !buffer.isEmpty else { return }
        buffer.withUnsafeBytes { p in
            var off = 0
            while off < p.count {
                let n = Glibc.write(fd, p.baseAddress! + off, p.count - off)
                if n < 0 {
                    if errno == EINTR { continue }
                    if failed == nil { failed = String(cString: strerror(errno)) }
                    return
                }
                off += n
            }
        }
        bytesWritten += Int64(buffer.count)
        buffer.removeAll(keepingCapacity: true)
    }

    /// Flushes and moves the file into place; throws if any write failed.
    public func finish() throws(StoreError) {
        guard fd >= 0, !closed else { return }
        flush()
        if let failed { throw StoreError("\(finalPath ?? "stdout"): write failed: \(failed)") }
        guard let tempPath, let finalPath else { return }
        if close(fd) != 0 { throw StoreError("\(finalPath): write failed: \(String(cString: strerror(errno)))") }
        if rename(tempPath, finalPath) != 0 {
            let msg = String(cString: strerror(errno))
            unlink(tempPath)
            throw StoreError("\(finalPath): cannot move the finished file into place: \(msg)")
        }
        closed = true
    }

    /// True once the file is complete and in place.
    private var closed = false
}

/// HTML text escaping.
public enum HTML {
    public static func escape(_ s: String) -> String {
        var out = ""
        out.reserveCapacity(s.utf8.count)
        for ch in s.unicodeScalars {
            switch ch {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.unicodeScalars.append(ch)
            }
        }
        return out
    }
}
