// What `unclog record` needs to know about a native executable before running it: is it
// dynamically linked, which libraries does it load itself (DT_NEEDED), and does it carry the
// UnclogRecorder library (for statically linked programs).

#if canImport(Glibc)
    import Glibc
#endif

/// A few facts read from an ELF file's program headers, dynamic section and symbol tables.
public struct ELFInfo: Sendable {
    /// Has an interpreter (PT_INTERP): a dynamically linked executable.
    public var isDynamic = false
    /// The libraries it names (DT_NEEDED), e.g. `libswift_Concurrency.so`.
    public var needed: [String] = []
    /// Defines `unclog_recorder_start` (it links the UnclogRecorder library).
    public var hasRecorderLibrary = false
    /// Contains the Swift Concurrency runtime itself (a `-static-stdlib` build).
    public var hasStaticConcurrency = false

    public var loadsSwiftConcurrency: Bool { needed.contains { $0.hasPrefix("libswift_Concurrency.so") } }
    public var loadsSwiftCore: Bool { needed.contains { $0.hasPrefix("libswiftCore.so") } }

    /// Reads `path`; nil when it is not a 64-bit little-endian ELF file.
    public static func read(_ path: String) -> ELFInfo? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0, st.st_size > 64 else { return nil }
        let size = Int(st.st_size)
        guard let map = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), map != MAP_FAILED else { return nil }
        defer { munmap(map, size) }
        let b = UnsafeRawBufferPointer(start: map, count: size)
        func u16(_ o: Int) -> Int { o + 2 <= size ? Int(b.loadUnaligned(fromByteOffset: o, as: UInt16.self)) : 0 }
        func u32(_ o: Int) -> Int { o + 4 <= size ? Int(b.loadUnaligned(fromByteOffset: o, as: UInt32.self)) : 0 }
        func u64(_ o: Int) -> Int {
            o + 8 <= size ? Int(truncatingIfNeeded: b.loadUnaligned(fromByteOffset: o, as: UInt64.self)) : 0
        }
        func cstr(_ o: Int) -> String {
            guard o >= 0, o < size else { return "" }
            var e = o
            while e < size, b[e] != 0 { e += 1 }
            return String(decoding: b[o..<e], as: UTF8.self)
        }
        guard b[0] == 0x7F, b[1] == 0x45, b[2] == 0x4C, b[3] == 0x46, b[4] == 2, b[5] == 1 else { return nil }
        var info = ELFInfo()
        // Program headers: PT_INTERP, PT_DYNAMIC, and the loads (to map dynamic addresses to offsets).
        let phoff = u64(32), phentsize = u16(54), phnum = u16(56)
        var loads: [(vaddr: Int, off: Int, filesz: Int)] = []
        var dynOff = -1, dynSize = 0
        for i in 0..<phnum {
            let o = phoff + i * phentsize
            let type = u32(o)
            if type == 3 { info.isDynamic = true }
            if type == 1 { loads.append((u64(o + 16), u64(o + 8), u64(o + 32))) }
            if type == 2 { dynOff = u64(o + 8); dynSize = u64(o + 32) }
        }
        func fileOffset(_ vaddr: Int) -> Int? {
            for l in loads where vaddr >= l.vaddr && vaddr < l.vaddr + l.filesz { return vaddr - l.vaddr + l.off }
            return nil
        }
        if dynOff >= 0 {
            var strtab = 0
            var neededOffsets: [Int] = []
            var o = dynOff
            while o + 16 <= min(size, dynOff + dynSize) {
                let tag = u64(o), val = u64(o + 8)
                if tag == 0 { break }
                if tag == 1 { neededOffsets.append(val) }
                if tag == 5 { strtab = val }
                o += 16
            }
            if let s = fileOffset(strtab) { info.needed = neededOffsets.map { cstr(s + $0) } }
        }
        // Section headers: the symbol tables (.symtab survives in unstripped static builds).
        let shoff = u64(40), shentsize = u16(58), shnum = u16(60)
        if shoff > 0, shentsize >= 64 {
            for i in 0..<shnum {
                let o = shoff + i * shentsize
                let type = u32(o + 4)
                guard type == 2 || type == 11 else { continue }  // SHT_SYMTAB, SHT_DYNSYM
                let off = u64(o + 24), sz = u64(o + 32), link = u32(o + 40), entsize = max(24, u64(o + 56))
                let strOff = u64(shoff + link * shentsize + 24)
                var s = off
                while s + 24 <= min(size, off + sz) {
                    let name = cstr(strOff + u32(s))
                    if name == "unclog_recorder_start" { info.hasRecorderLibrary = true }
                    if name == "swift_task_enqueueGlobal_hook" { info.hasStaticConcurrency = true }
                    s += entsize
                }
            }
        }
        return info
    }
}
