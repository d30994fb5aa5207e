// Offline symbolization of native frames (Swift recordings): each `NativeFrame` is an image and an
// absolute address; the image's path, load bias and GNU build-id were recorded at record time.
// At the end of `unclog import` the frames of the new trace get a demangled function, file and
// line (the innermost inlined frame) from the toolchain's `llvm-symbolizer` and `swift-demangle`,
// after checking that the file on disk is the one that ran (build-id). Frames of the Swift runtime,
// Dispatch, libc, the toolchain's libraries and the recorder are marked internal, so call-site
// attribution lands on the program's own code. What could not be symbolized is said in the notes.

import Foundation
import UnclogStore

#if canImport(Glibc)
    import Glibc
#endif

/// What symbolization did, for the import summary.
public struct SymbolizationReport: Sendable {
    /// Native frames in the trace.
    public var frames = 0
    /// Frames that got a function name.
    public var named = 0
    /// Frames that got a file and line.
    public var withLines = 0
    /// Frames of the program's own images (not runtime, system or recorder), and how many got a name.
    public var programFrames = 0
    public var programNamed = 0  // of programFrames
    /// Why some frames stayed unnamed (one line each: missing tool, stripped binary, build-id mismatch…).
    public var notes: [String] = []
    /// Nothing symbolized yet.
    public init() {}
}

/// Offline symbolization of a trace's native frames (run by the import, in its transaction).
public enum Symbolizer {
    /// Symbolizes the native frames of trace `traceID` in `db` (inside the import's transaction).
    static func run(db: Database, traceID: Int64) throws(StoreError) -> SymbolizationReport {
        var report = SymbolizationReport()
        let keys = StoreKey.objects(trace: traceID), k0 = keys.lowerBound, k1 = keys.upperBound
        struct Img { var path: String?; var bias: Int64; var buildID: String? }
        var imgs: [Int64: Img] = [:]
        let qi = try db.prepare("SELECT key, path, load_bias, build_id FROM images WHERE key >= \(k0) AND key < \(k1)")
        while try qi.step() { imgs[qi.int(0)] = Img(path: qi.text(1), bias: qi.int(2), buildID: qi.text(3)) }
        var byImage: [Int64: [(key: Int64, lookup: UInt64, returnAddress: Bool)]] = [:]
        var orphans: [Int64] = []
        let qf = try db.prepare(
            "SELECT key, image_key, address, flags FROM frames WHERE key >= \(k0) AND key < \(k1) AND address IS NOT NULL")
        while try qf.step() {
            report.frames += 1
            let key = qf.int(0)
            guard let ik = qf.optInt(1), let img = imgs[ik] else { orphans.append(key); continue }
            var a = UInt64(bitPattern: qf.int(2)) &- UInt64(bitPattern: img.bias)
            let isReturn = qf.int(3) & 2 != 0
            if isReturn { a &-= 1 }  // a return address: look up the call instruction
            byImage[ik, default: []].append((key, a, isReturn))
        }
        guard report.frames > 0 else { return report }

        let update = try db.prepare(
            "UPDATE frames SET function = ?, file = ?, line = ?, internal = ?, flags = flags | ? WHERE key = ?")
        for key in orphans {  // outside every known image (JIT, unmapped): nothing to attribute to
            update.bindNull(1); update.bindNull(2); update.bindNull(3); update.bind(4, 1); update.bind(5, 0); update.bind(6, key)
            try update.run()
        }
        guard let symbolizer = findTool("llvm-symbolizer") else {
            report.notes.append(
                "native frames not symbolized: llvm-symbolizer not found (looked next to `swift` and on PATH; set UNCLOG_LLVM_SYMBOLIZER)"
            )
            try markInternal(byImage: byImage, imgs: imgs.mapValues { $0.path }, update: update)
            return report
        }
        let demangler = findTool("swift-demangle")
        if demangler == nil { report.notes.append("swift-demangle not found: Swift function names stay mangled") }

        var resolved: [(key: Int64, function: String?, file: String?, line: Int64?, isInternal: Bool, isLibrary: Bool)] = []
        for (ik, frames) in byImage.sorted(by: { $0.key < $1.key }) {
            let img = imgs[ik]!
            let isInternal = isInternalImage(img.path)
            let isLibrary = !isInternal && isLibraryImage(img.path)
            guard let path = img.path, access(path, R_OK) == 0 else {
                if !isInternal {
                    report.notes.append("\(img.path ?? "<unnamed image>"): file not found: \(frames.count) frames not symbolized")
                }
                for f in frames { resolved.append((f.key, nil, nil, nil, isInternal, isLibrary)) }
                continue
            }
            if let want = img.buildID, let have = ELFBuildID.read(path), want != have {
                if !isInternal {
                    report.notes.append(
                        "\(path): build-id \(have) differs from the recorded \(want) (rebuilt since the recording?): \(frames.count) frames not symbolized"
                    )
                }
                for f in frames { resolved.append((f.key, nil, nil, nil, isInternal, isLibrary)) }
                continue
            }
            var answers = runSymbolizer(symbolizer, object: path, addresses: frames.map(\.lookup))
            // An exact pc (a sampled running thread) on compiler-generated code has line 0: take
            // the line of the nearest instruction before it in the same function.
            let backs: [UInt64] = [1, 2, 3, 4, 6, 8, 12, 16, 24, 32]
            var retry: [(index: Int, address: UInt64)] = []
            for (i, f) in frames.enumerated() where !f.returnAddress && i < answers.count {
                if let a = answers[i], a.function != nil, a.line == nil {
                    for b in backs where f.lookup >= b { retry.append((i, f.lookup - b)) }
                }
            }
            if !retry.isEmpty {
                let more = runSymbolizer(symbolizer, object: path, addresses: retry.map(\.address))
                for (k, r) in retry.enumerated() where k < more.count {
                    guard let m = more[k], m.line != nil, m.function == answers[r.index]?.function,
                        answers[r.index]?.line == nil
                    else { continue }
                    answers[r.index]?.line = m.line
                    answers[r.index]?.file = m.file
                }
            }
            var named = 0, userNamed = 0, userLines = 0
            for (i, f) in frames.enumerated() {
                let a = i < answers.count ? answers[i] : nil
                if a?.function != nil { named += 1 }
                // Compiler-generated code (thunks, resume partial functions' entries) and runtime
                // code linked in (-static-stdlib) often have no line even with -g: count only what
                // the program's author wrote.
                if let fn = a?.function, !isGeneratedSymbol(fn), !isInternalFunction(fn) {
                    userNamed += 1
                    if a?.line != nil { userLines += 1 }
                }
                resolved.append((f.key, a?.function, a?.file, a?.line, isInternal, isLibrary))
            }
            let lines = userLines
            if !isInternal && !isLibrary && named < frames.count {
                report.notes.append(
                    named == 0
                        ? "\(path): no symbols (stripped binary?): \(frames.count) frames show as addresses"
                        : "\(path): \(frames.count - named) of \(frames.count) frames have no symbol")
            } else if !isInternal && !isLibrary && lines * 2 < userNamed {  // a few line-0 frames are normal; most: no -g
                report.notes.append("\(path): no line information for \(userNamed - lines) frames (built without -g?)")
            }
        }
        // Demangle all names at once.
        var names = Array(
            Set(resolved.compactMap(\.function).filter { $0.hasPrefix("$s") || $0.hasPrefix("_$s") || $0.hasPrefix("$S") }))
        names.sort()
        var demangled: [String: String] = [:]
        if let demangler, !names.isEmpty {
            let out = runTool(demangler, ["--simplified"], input: names.joined(separator: "\n") + "\n")
            let lines = out.split(separator: "\n", omittingEmptySubsequences: false)
            if lines.count >= names.count {
                for (i, n) in names.enumerated() { demangled[n] = String(lines[i]) }
            }
        }
        for r in resolved {
            let fn = r.function.map { demangled[$0] ?? $0 }
            if fn != nil { report.named += 1 }
            if r.line != nil { report.withLines += 1 }
            update.bind(1, fn); update.bind(2, r.file)
            if let l = r.line { update.bind(3, l) } else { update.bindNull(3) }
            let isInternal = r.isInternal || isInternalFunction(r.function) || isCompilerThunk(fn)
            // Library code (flag 8): the standard library, Foundation, Dispatch's overlay and the
            // packages the program depends on. Attribution prefers the program's own frame above it.
            let isLibrary = !isInternal && (r.isLibrary || isLibraryFunction(r.function) || isDependencyFile(r.file))
            if !r.isInternal && !r.isLibrary {
                report.programFrames += 1
                if fn != nil { report.programNamed += 1 }
            }
            update.bind(4, isInternal ? 1 : 0); update.bind(5, isLibrary ? 8 : 0); update.bind(6, r.key)
            try update.run()
        }
        return report
    }

    static func markInternal(
        byImage: [Int64: [(key: Int64, lookup: UInt64, returnAddress: Bool)]], imgs: [Int64: String?],
        update: Statement
    ) throws(StoreError) {
        for (ik, frames) in byImage where isInternalImage(imgs[ik] ?? nil) {
            for f in frames {
                update.bindNull(1); update.bindNull(2); update.bindNull(3); update.bind(4, 1); update.bind(5, 0);
                update.bind(6, f.key)
                try update.run()
            }
        }
    }

    /// The toolchain's Swift libraries other than the concurrency runtime: the standard library,
    /// Foundation, the Dispatch overlay… (library code, flag 8, rather than internal).
    static func isLibraryImage(_ path: String?) -> Bool {
        guard let path else { return false }
        let name = (path as NSString).lastPathComponent
        let inToolchain = path.hasPrefix("/opt/swift/") || (toolchainRoot.map { path.hasPrefix($0) } ?? false)
        guard inToolchain else { return false }
        for runtime in ["libswift_Concurrency", "libdispatch", "libBlocksRuntime", "libswiftRuntime", "libswift_Backtracing"]
        where name.hasPrefix(runtime) { return false }
        return name.hasPrefix("libswift") || name.hasPrefix("libFoundation") || name.hasPrefix("lib_")
    }

    /// Runtime, system and recorder images: attribution skips their frames.
    static func isInternalImage(_ path: String?) -> Bool {
        guard let path else { return true }
        if isLibraryImage(path) { return false }
        let name = (path as NSString).lastPathComponent
        if name.hasPrefix("libUnclogPreload") || name.hasPrefix("linux-vdso") || name.hasPrefix("ld-linux") { return true }
        for dir in ["/usr/lib/", "/lib/", "/lib64/", "/usr/lib64/", "/opt/swift/", "/usr/libexec/"] where path.hasPrefix(dir) {
            return true
        }
        if let swift = toolchainRoot, path.hasPrefix(swift) { return true }
        return false
    }

    /// Runtime and recorder code linked into the program itself (-static-stdlib builds, the
    /// UnclogRecorder library), told by name: `raw` is the symbol before Swift demangling.
    static func isInternalFunction(_ raw: String?) -> Bool {
        guard let raw else { return false }
        if raw.hasPrefix("unclog_") || ["trampoline", "enqueue_hook", "sample_handler", "record_job"].contains(raw) {
            return true
        }
        for p in [
            "swift_", "_swift", "swift::", "(anonymous namespace)::", "__swift", "_dispatch", "dispatch_", "_Block_",
            "__", "std::", "_CF", "CF", "_ZN5swift", "_ZN12_GLOBAL__N",
        ] where raw.hasPrefix(p) {
            return true
        }
        if let module = swiftModule(raw) { return runtimeModules.contains(module) }
        return false
    }

    /// The Swift standard library and the toolchain's libraries linked into the program (-static-stdlib).
    static func isLibraryFunction(_ raw: String?) -> Bool {
        guard let raw, let module = swiftModule(raw) else { return false }
        return internalModules.contains(module) && !runtimeModules.contains(module)
    }

    /// Source of a SwiftPM dependency (its checkout), not the program's own.
    static func isDependencyFile(_ file: String?) -> Bool {
        guard let file else { return false }
        return file.contains("/.build/checkouts/") || file.contains("/SourcePackages/checkouts/")
    }

    /// The concurrency runtime and the recorder: never a call site.
    static let runtimeModules: Set<String> = ["_Concurrency", "UnclogRecorder"]

    /// Compiler-generated glue in the program's own module (thunks, partial applies, outlined copies):
    /// never the call site a user wants to see.
    static func isCompilerThunk(_ demangled: String?) -> Bool {
        guard let d = demangled else { return false }
        for p in [
            "partial apply for ", "thunk for ", "reabstraction thunk", "protocol witness for ", "outlined ",
            "merged ", "implicit closure #", "type metadata accessor", "value witness",
        ] where d.hasPrefix(p) {
            return true
        }
        return false
    }

    /// A mangled Swift symbol of compiler-generated code: thunks (partial apply, reabstraction,
    /// protocol witness, dispatch), outlined copies, merged functions, await resume partial functions.
    static func isGeneratedSymbol(_ raw: String) -> Bool {
        guard raw.hasPrefix("$s") || raw.hasPrefix("_$s") else { return false }
        for suffix in ["TA", "TR", "Tr", "TW", "Tj", "Tq", "Tm", "TATQ0_", "Wb", "WOy", "WOe", "WOh", "WOs"]
        where raw.hasSuffix(suffix) {
            return true
        }
        if raw.range(of: "TQ[0-9]+_$", options: .regularExpression) != nil { return true }  // await resume partial function
        // A suspend resume partial: user code.
        if raw.range(of: "TY[0-9]+_$", options: .regularExpression) != nil { return false }
        return raw.contains("TATQ") || raw.contains("TRTA")
    }

    static let internalModules: Set<String> = [
        "Swift", "_Concurrency", "Foundation", "FoundationEssentials", "FoundationInternationalization",
        "FoundationNetworking", "FoundationXML", "Dispatch", "_StringProcessing", "Glibc", "SwiftGlibc",
        "CoreFoundation", "Synchronization", "Distributed", "Observation", "_RegexParser", "UnclogRecorder",
    ]

    /// The module of a mangled Swift symbol (`$s4main…` → main, `$ss…`/`$sS…` → Swift), or nil.
    static func swiftModule(_ raw: String) -> String? {
        var u = Substring(raw)
        if u.hasPrefix("_") { u = u.dropFirst() }
        guard u.hasPrefix("$s") || u.hasPrefix("$S") else { return nil }
        u = u.dropFirst(2)
        guard let c = u.first else { return nil }
        if c == "s" { return "Swift" }
        if c == "S" { return u.dropFirst().first == "c" ? "_Concurrency" : "Swift" }  // standard substitutions
        guard c.isNumber else { return nil }
        let digits = u.prefix { $0.isNumber }
        guard let n = Int(digits) else { return nil }
        let name = u.dropFirst(digits.count).prefix(n)
        return name.count == n ? String(name) : nil
    }

    /// The toolchain's root (`…/usr`), from `swift` on PATH.
    static let toolchainRoot: String? = {
        guard let swift = which("swift") else { return nil }
        var buf = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        guard realpath(swift, &buf) != nil else { return nil }
        let real = String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        let bin = (real as NSString).deletingLastPathComponent
        return (bin as NSString).deletingLastPathComponent + "/"
    }()

    static func which(_ tool: String) -> String? {
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":") {
            let p = "\(dir)/\(tool)"
            if access(p, X_OK) == 0 { return p }
        }
        return nil
    }

    /// The toolchain's copy first (next to `swift`), then /opt/swift, then PATH.
    static func findTool(_ tool: String) -> String? {
        let env = "UNCLOG_" + tool.uppercased().replacingOccurrences(of: "-", with: "_")
        if let p = ProcessInfo.processInfo.environment[env], access(p, X_OK) == 0 { return p }
        var candidates: [String] = []
        if let root = toolchainRoot { candidates.append(root + "bin/" + tool) }
        candidates.append("/opt/swift/usr/bin/" + tool)
        if let p = which(tool) { candidates.append(p) }
        return candidates.first { access($0, X_OK) == 0 }
    }

    struct Answer { var function: String?; var file: String?; var line: Int64? }

    /// One `llvm-symbolizer` run for one object: the innermost (inlined) frame of each address.
    static func runSymbolizer(_ tool: String, object: String, addresses: [UInt64]) -> [Answer?] {
        let input = addresses.map { "0x" + String($0, radix: 16) }.joined(separator: "\n") + "\n"
        let out = runTool(tool, ["--obj=\(object)", "--output-style=JSON", "--inlining", "--functions=linkage"], input: input)
        var answers: [Answer?] = []
        for line in out.split(separator: "\n") {
            guard let data = line.data(using: .utf8),
                let obj = try? JSONSerialization.jsonObject(with: data) as? [String: Any]
            else { answers.append(nil); continue }
            guard let syms = obj["Symbol"] as? [[String: Any]], let s = syms.first else { answers.append(nil); continue }
            var a = Answer()
            if let f = s["FunctionName"] as? String, !f.isEmpty { a.function = f }
            // Without line information the "file" is only the symbol table's object-file name: drop it.
            if let f = s["FileName"] as? String, !f.isEmpty, let l = s["Line"] as? Int, l > 0 {
                a.file = f
                a.line = Int64(l)
            }
            answers.append(a.function == nil && a.file == nil ? nil : a)
        }
        return answers
    }

    /// Runs a tool with `input` on stdin; returns its stdout ("" when it cannot run).
    static func runTool(_ tool: String, _ args: [String], input: String) -> String {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: tool)
        p.arguments = args
        let inPipe = Pipe(), outPipe = Pipe()
        p.standardInput = inPipe
        p.standardOutput = outPipe
        p.standardError = FileHandle(forWritingAtPath: "/dev/null")
        do { try p.run() } catch { return "" }
        // Write on another thread so a full stdout pipe cannot deadlock us.
        let data = Data(input.utf8)
        let writer = Thread {
            inPipe.fileHandleForWriting.write(data)
            try? inPipe.fileHandleForWriting.close()
        }
        writer.start()
        let out = outPipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return String(decoding: out, as: UTF8.self)
    }
}

/// Reads the GNU build-id note of an ELF file (lower-case hex), or nil.
enum ELFBuildID {
    static func read(_ path: String) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        func bytes(_ off: UInt64, _ n: Int) -> [UInt8]? {
            guard n > 0, n < 1 << 20 else { return nil }
            var b = [UInt8](repeating: 0, count: n)
            let got = b.withUnsafeMutableBytes { pread(fd, $0.baseAddress, n, off_t(off)) }
            return got == n ? b : nil
        }
        func u16(_ b: [UInt8], _ o: Int) -> UInt64 { UInt64(b[o]) | UInt64(b[o + 1]) << 8 }
        func u32(_ b: [UInt8], _ o: Int) -> UInt64 { u16(b, o) | u16(b, o + 2) << 16 }
        func u64(_ b: [UInt8], _ o: Int) -> UInt64 { u32(b, o) | u32(b, o + 4) << 32 }
        guard let h = bytes(0, 64), h[0] == 0x7F, h[1] == 0x45, h[2] == 0x4C, h[3] == 0x46, h[4] == 2, h[5] == 1 else {
            return nil
        }
        let phoff = u64(h, 32), phentsize = Int(u16(h, 54)), phnum = Int(u16(h, 56))
        guard phentsize >= 56, let ph = bytes(phoff, phentsize * phnum) else { return nil }
        for i in 0..<phnum {
            let o = i * phentsize
            guard u32(ph, o) == 4 else { continue }  // PT_NOTE
            let off = u64(ph, o + 8), size = Int(u64(ph, o + 32))
            guard let n = bytes(off, size) else { continue }
            var p = 0
            while p + 12 <= n.count {
                let namesz = Int(u32(n, p)), descsz = Int(u32(n, p + 4)), type = u32(n, p + 8)
                let name = p + 12, desc = name + ((namesz + 3) & ~3)
                guard desc + descsz <= n.count else { break }
                if type == 3, namesz == 4, n[name] == 0x47, n[name + 1] == 0x4E, n[name + 2] == 0x55 {
                    return n[desc..<desc + min(descsz, 64)].map { b in
                        let s = String(b, radix: 16); return s.count == 1 ? "0" + s : s
                    }.joined()
                }
                p = desc + ((descsz + 3) & ~3)
            }
        }
        return nil
    }
}
