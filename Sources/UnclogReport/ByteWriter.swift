// Streaming output for the exporters: a buffered byte writer to a file (written to a
// temporary name and renamed into place when complete, so a failed export never leaves a
// half-written file behind) or to standard output, plus fast JSON/HTML text encoding.
// The exporters write millions of events; formatting goes byte by byte into raw memory,
// never through String interpolation in the hot loops, and two 4 MiB buffers alternate: one
// is filled while a background thread writes the other (memory stays at 8 MiB).

import UnclogStore

#if canImport(Glibc)
    import Glibc
    import UnclogQuery
#elseif canImport(Darwin)
    import Darwin
#endif

/// Writes bytes through a fixed buffer; memory stays at the buffer size whatever is written.
/// The buffer is raw memory (no array bounds or exclusivity checks per byte).
public final class ByteWriter {
    private var base: UnsafeMutablePointer<UInt8>
    /// File writers: the second buffer, filled while the first is being written.
    private var spare: UnsafeMutablePointer<UInt8>?
    private var spareCapacity = 0
    private var count = 0
    private var capacity: Int
    private let flushAt: Int
    private let fd: Int32
    /// File writers: the thread that writes full buffers while the next one is filled.
    private var sink: BackgroundSink?
    private let finalPath: String?
    private let tempPath: String?
    private var flushed: Int64 = 0
    private var failed: String?
    /// True once the file is complete and in place.
    private var closed = false

    /// Writes to `path` ("-" is standard output). The file appears only on `finish()`.
    public init(path: String, bufferSize: Int = 4 << 20) throws(StoreError) {
        capacity = bufferSize + 64 << 10
        flushAt = bufferSize
        base = .allocate(capacity: capacity)
        spare = .allocate(capacity: capacity)
        spareCapacity = capacity
        if path == "-" {
            fd = 1
            finalPath = nil
            tempPath = nil
        } else {
            let tmp = path + ".tmp-\(getpid())"
            let f = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
            guard f >= 0 else {
                base.deallocate()
                spare?.deallocate()
                throw StoreError("\(path): cannot write: \(String(cString: strerror(errno)))")
            }
            fd = f
            finalPath = path
            tempPath = tmp
        }
        sink = BackgroundSink(fd: fd)
    }

    /// An in-memory writer for tests and small texts: never flushes; read `contents`.
    public init(memory: ()) {
        capacity = 4096
        flushAt = Int.max
        base = .allocate(capacity: capacity)
        fd = -1
        finalPath = nil
        tempPath = nil
    }

    deinit {
        _ = sink?.stop()
        if !closed, let tempPath, fd >= 0 {
            close(fd)
            unlink(tempPath)
        }
        base.deallocate()
        spare?.deallocate()
    }

    /// Bytes written so far (flushed or buffered).
    public var bytesWritten: Int64 { flushed + Int64(count) }

    /// The bytes of an in-memory writer.
    public var contents: [UInt8] { Array(UnsafeBufferPointer(start: base, count: count)) }

    /// Makes room for `n` more bytes (flushing a file writer, growing a memory one).
    @inline(__always)
    private func reserve(_ n: Int) {
        if count + n > capacity { grow(n) }
    }

    private func grow(_ n: Int) {
        if fd >= 0 { flush() }
        if count + n > capacity {
            let newCapacity = max(capacity * 2, count + n)
            let p = UnsafeMutablePointer<UInt8>.allocate(capacity: newCapacity)
            p.update(from: base, count: count)
            base.deallocate()
            base = p
            capacity = newCapacity
        }
    }

    /// Flushes when the buffer is full enough (call between records).
    @inline(__always)
    func maybeFlush() {
        if count >= flushAt { flush() }
    }

    @inline(__always)
    public func byte(_ b: UInt8) {
        reserve(1)
        base[count] = b
        count += 1
    }

    @inline(__always)
    private func append(_ p: UnsafeRawBufferPointer) {
        reserve(p.count)
        if p.count > 0 { (base + count).update(from: p.baseAddress!.assumingMemoryBound(to: UInt8.self), count: p.count) }
        count += p.count
        maybeFlush()
    }

    @inline(__always)
    public func write(_ s: StaticString) {
        append(UnsafeRawBufferPointer(start: s.utf8Start, count: s.utf8CodeUnitCount))
    }

    @inline(__always)
    public func write(bytes: [UInt8]) {
        bytes.withUnsafeBytes { append($0) }
    }

    /// Raw text, not escaped.
    public func write(_ s: String) {
        var s = s
        s.withUTF8 { append(UnsafeRawBufferPointer($0)) }
    }

    /// A decimal integer.
    @inline(__always)
    public func int(_ v: Int64) {
        if v < 0 {
            byte(UInt8(ascii: "-"))
            uint(v == Int64.min ? UInt64(Int64.max) + 1 : UInt64(-v))
        } else {
            uint(UInt64(v))
        }
    }

    @inline(__always)
    public func uint(_ v: UInt64) {
        reserve(20)
        if v < 10 {
            base[count] = UInt8(truncatingIfNeeded: v) &+ 48
            count += 1
            return
        }
        var digits = 0
        var x = v
        while x > 0 { digits += 1; x /= 10 }
        x = v
        var i = count + digits - 1
        while x > 0 {
            base[i] = UInt8(truncatingIfNeeded: x % 10) &+ 48
            x /= 10
            i -= 1
        }
        count += digits
    }

    /// Nanoseconds as microseconds with `digits` (1…3) decimals, truncated (`1234567` → `1234.567`).
    @inline(__always)
    public func micros(_ ns: Int64, digits: Int = 3) {
        var v = ns
        if v < 0 {
            byte(UInt8(ascii: "-"))
            v = -v
        }
        uint(UInt64(v / 1000))
        guard digits > 0 else { return }
        let frac = Int(v % 1000)
        reserve(4)
        base[count] = UInt8(ascii: ".")
        base[count + 1] = UInt8(frac / 100 + 48)
        count += 2
        if digits > 1 { base[count] = UInt8((frac / 10) % 10 + 48); count += 1 }
        if digits > 2 { base[count] = UInt8(frac % 10 + 48); count += 1 }
    }

    /// A JSON string literal (quotes included), escaping per RFC 8259.
    public func jsonString(_ s: String) {
        byte(UInt8(ascii: "\""))
        var s = s
        s.withUTF8 { jsonEscape($0) }
        byte(UInt8(ascii: "\""))
        maybeFlush()
    }

    /// Appends the contents of a JSON string literal for the UTF-8 bytes `p` (no quotes).
    func jsonEscape(_ p: UnsafeBufferPointer<UInt8>) {
        let hex: StaticString = "0123456789abcdef"
        for c in p {
            switch c {
            case UInt8(ascii: "\""): byte(92); byte(34)
            case UInt8(ascii: "\\"): byte(92); byte(92)
            case 0x0A: byte(92); byte(UInt8(ascii: "n"))
            case 0x0D: byte(92); byte(UInt8(ascii: "r"))
            case 0x09: byte(92); byte(UInt8(ascii: "t"))
            case 0..<0x20, 0x7F:
                byte(92); byte(UInt8(ascii: "u")); byte(48); byte(48)
                byte(hex.utf8Start[Int(c >> 4)]); byte(hex.utf8Start[Int(c & 15)])
            default: byte(c)
            }
        }
    }

    /// Text escaped for HTML element content and attribute values.
    public func html(_ s: String) {
        write(HTML.escape(s))
    }

    /// Hands the buffer to the writing thread and goes on in the other one.
    public func flush() {
        guard let sink, let spare, count > 0 else { return }
        sink.submit(base, count)  // waits until the other buffer has been written
        flushed += Int64(count)
        let c = capacity
        self.spare = base
        base = spare
        capacity = spareCapacity
        spareCapacity = c
        count = 0
    }

    /// Flushes and moves the file into place; throws if any write failed.
    public func finish() throws(StoreError) {
        guard fd >= 0, !closed, let sink else { return }
        flush()
        failed = sink.stop()
        self.sink = nil
        if let failed { throw StoreError("\(finalPath ?? "stdout"): write failed: \(failed)") }
        guard let tempPath, let finalPath else { return }
        if close(fd) != 0 { throw StoreError("\(finalPath): write failed: \(String(cString: strerror(errno)))") }
        closed = true
        if rename(tempPath, finalPath) != 0 {
            let msg = String(cString: strerror(errno))
            unlink(tempPath)
            throw StoreError("\(finalPath): cannot move the finished file into place: \(msg)")
        }
    }
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

/// Writes buffers to a file descriptor on its own thread, one at a time, so formatting the
/// next buffer overlaps the write system calls (on this kind of machine a large write costs
/// about as much time in the kernel as formatting it does in the exporter).
final class BackgroundSink: @unchecked Sendable {
    // All mutable state is guarded by `lock`.
    private let fd: Int32
    private let lock = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let changed = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    private var job: (UnsafeMutablePointer<UInt8>, Int)?
    private var stopping = false
    private var error: String?
    private var thread = pthread_t()
    private var running = false

    init(fd: Int32) {
        self.fd = fd
        pthread_mutex_init(lock, nil)
        pthread_cond_init(changed, nil)
        let me = Unmanaged.passRetained(self).toOpaque()
        running =
            pthread_create(
                &thread, nil,
                { arg in
                    let sink = Unmanaged<BackgroundSink>.fromOpaque(arg!).takeRetainedValue()
                    sink.loop()
                    return nil
                }, me) == 0
        if !running { Unmanaged<BackgroundSink>.fromOpaque(me).release() }
    }

    deinit {
        pthread_cond_destroy(changed)
        pthread_mutex_destroy(lock)
        changed.deallocate()
        lock.deallocate()
    }

    /// Queues `n` bytes at `p` (which must stay untouched until the next submit or stop returns).
    func submit(_ p: UnsafeMutablePointer<UInt8>, _ n: Int) {
        guard running else {
            let e = BackgroundSink.writeAll(fd, p, n)
            if error == nil { error = e }
            return
        }
        pthread_mutex_lock(lock)
        while job != nil { pthread_cond_wait(changed, lock) }
        job = (p, n)
        pthread_cond_broadcast(changed)
        pthread_mutex_unlock(lock)
    }

    /// Waits for the last buffer, ends the thread; returns the first write error, if any.
    func stop() -> String? {
        guard running else { return error }
        pthread_mutex_lock(lock)
        while job != nil { pthread_cond_wait(changed, lock) }
        stopping = true
        pthread_cond_broadcast(changed)
        pthread_mutex_unlock(lock)
        pthread_join(thread, nil)
        running = false
        return error
    }

    private func loop() {
        pthread_mutex_lock(lock)
        while true {
            while job == nil && !stopping { pthread_cond_wait(changed, lock) }
            guard let (p, n) = job else { break }
            pthread_mutex_unlock(lock)
            let e = BackgroundSink.writeAll(fd, p, n)
            pthread_mutex_lock(lock)
            if error == nil { error = e }
            job = nil
            pthread_cond_broadcast(changed)
        }
        pthread_mutex_unlock(lock)
    }

    /// Writes everything; the error text, or nil.
    static func writeAll(_ fd: Int32, _ p: UnsafeMutablePointer<UInt8>, _ n: Int) -> String? {
        var off = 0
        while off < n {
            #if canImport(Glibc)
                let w = Glibc.write(fd, p + off, n - off)
            #else
                let w = Darwin.write(fd, p + off, n - off)
            #endif
            if w < 0 {
                if errno == EINTR { continue }
                return String(cString: strerror(errno))
            }
            off += w
        }
        return nil
    }
}
