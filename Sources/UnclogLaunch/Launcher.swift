// `unclog record`'s launcher: runs the program with the recorder for its runtime injected,
// keeps its stdio, forwards the signals meant for it, and reports how it ended.

import Foundation
import UnclogPythonRecorder
import UnclogTrace

#if canImport(Glibc)
    import Glibc
#endif

/// What to record and how.
public struct RecordOptions: Sendable {
    public var command: [String]
    public var output: String
    public var thresholdNs: Int64
    public var sampleIntervalNs: Int64

    public init(command: [String], output: String, thresholdNs: Int64, sampleIntervalNs: Int64) {
        self.command = command
        self.output = output
        self.thresholdNs = thresholdNs
        self.sampleIntervalNs = sampleIntervalNs
    }
}

/// Why a program cannot be recorded.
public struct RecordError: Error, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}

/// The child being recorded; read by the signal handler (a plain word, set before handlers).
nonisolated(unsafe) private var recordedChild: pid_t = 0

/// Runs programs under a recorder.
public enum Recorder {
    /// The directory holding the Python recorder (`sitecustomize.py`, `unclog_recorder/`).
    public static var pythonRecorderPath: String? { PythonRecorder.directory }

    /// How the program will be recorded.
    public enum Kind: Equatable, Sendable {
        case python
        /// A program that may start Python itself (a shell script): injected, but it may record nothing.
        case maybePython
        /// A dynamically linked Swift executable that loads libswift_Concurrency.so: the recorder
        /// library (libUnclogPreload.so) is injected with LD_PRELOAD.
        case swiftPreload
        /// A program that links the UnclogRecorder library (e.g. a -static-stdlib build): it records
        /// itself when it calls `UnclogRecorder.start()`, reading the same environment variables.
        case swiftLinked
    }

    /// Decides how to record `command`, or says why it cannot be recorded.
    public static func kind(of command: [String]) throws(RecordError) -> Kind {
        guard let program = command.first else { throw RecordError(message: "no program given") }
        guard let path = resolve(program) else {
            throw RecordError(message: "\(program): command not found")
        }
        let name = (program as NSString).lastPathComponent
        if name.hasPrefix("python") || name.hasPrefix("pypy") { return .python }
        guard let fh = FileHandle(forReadingAtPath: path) else {
            throw RecordError(message: "\(path): cannot read it")
        }
        let head = (try? fh.read(upToCount: 256)) ?? Data()
        try? fh.close()
        if head.starts(with: [0x7F, 0x45, 0x4C, 0x46]) {  // ELF
            return try nativeKind(program: program, path: path)
        }
        if let line = String(data: head.prefix(while: { $0 != 0x0A }), encoding: .utf8), line.hasPrefix("#!"),
            line.contains("python")
        {
            return .python
        }
        return .maybePython
    }

    /// A native executable: a Swift program we can record, or a clear reason why not.
    static func nativeKind(program: String, path: String) throws(RecordError) -> Kind {
        guard let elf = ELFInfo.read(path) else {
            throw RecordError(message: "cannot record \(program): not a 64-bit little-endian ELF executable")
        }
        if elf.hasRecorderLibrary { return .swiftLinked }  // never two recorders in one process
        if elf.isDynamic && elf.loadsSwiftConcurrency { return .swiftPreload }
        if elf.isDynamic && elf.loadsSwiftCore {
            throw RecordError(
                message: """
                    cannot record \(program): it is a Swift program that does not load Swift Concurrency \
                    (libswift_Concurrency.so), so it has no tasks for unclog to record
                    """)
        }
        if elf.hasStaticConcurrency {
            throw RecordError(
                message: """
                    cannot record \(program): it is a statically linked Swift program (-static-stdlib or \
                    --static-swift-stdlib), and the recorder cannot be injected into it. Link the UnclogRecorder \
                    library and call UnclogRecorder.start() at the top of main (it reads the settings \
                    `unclog record` passes), or build without -static-stdlib
                    """)
        }
        if !elf.isDynamic {
            throw RecordError(
                message: """
                    cannot record \(program): it is a statically linked native executable without the Swift \
                    Concurrency runtime or the UnclogRecorder library; unclog records Python (eventlet, gevent) \
                    and Swift Concurrency programs
                    """)
        }
        throw RecordError(
            message: """
                cannot record \(program): it is a native executable that is neither a Python interpreter nor a \
                Swift program using Swift Concurrency; unclog records Python (eventlet, gevent) and Swift \
                Concurrency programs. Run e.g. unclog record -- python3 app.py, or -- ./MySwiftServer
                """)
    }

    /// The LD_PRELOAD recorder: $UNCLOG_PRELOAD, else libUnclogPreload.so next to the unclog executable.
    public static var swiftPreloadPath: String? {
        if let p = ProcessInfo.processInfo.environment["UNCLOG_PRELOAD"], access(p, R_OK) == 0 { return absolute(p) }
        var buf = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let n = readlink("/proc/self/exe", &buf, Int(PATH_MAX))
        guard n > 0 else { return nil }
        let exe = String(decoding: buf.prefix(n).map { UInt8(bitPattern: $0) }, as: UTF8.self)
        let dir = (exe as NSString).deletingLastPathComponent
        for candidate in [dir + "/libUnclogPreload.so", dir + "/../lib/libUnclogPreload.so"] where access(candidate, R_OK) == 0 {
            return candidate
        }
        return nil
    }

    /// Runs the program to completion and returns the exit status a shell would report
    /// (its exit code, or 128 + the signal that killed it).
    public static func run(_ options: RecordOptions) throws(RecordError) -> Int32 {
        let kind = try kind(of: options.command)
        let output = absolute(options.output)
        var env = ProcessInfo.processInfo.environment
        switch kind {
        case .python, .maybePython:
            guard let recorderPath = pythonRecorderPath else {
                throw RecordError(message: "the Python recorder is missing from unclog's resources (broken installation)")
            }
            let original = env["PYTHONPATH"]
            if let original { env["UNCLOG_ORIG_PYTHONPATH"] = original }
            env["PYTHONPATH"] = recorderPath + (original.map { ":" + $0 } ?? "")
        case .swiftPreload:
            guard let preload = swiftPreloadPath else {
                throw RecordError(
                    message: """
                        the Swift recorder library libUnclogPreload.so is missing next to unclog (build it with \
                        `swift build --product UnclogPreload`, or set UNCLOG_PRELOAD to its path)
                        """)
            }
            let original = env["LD_PRELOAD"]
            if let original { env["UNCLOG_ORIG_LD_PRELOAD"] = original }
            env["LD_PRELOAD"] = preload + (original.map { ":" + $0 } ?? "")
        case .swiftLinked:
            break  // the program starts the recorder itself from these variables
        }
        unlink(output)  // a stale trace must not pass for this run's
        env["UNCLOG_OUTPUT"] = output
        env["UNCLOG_THRESHOLD_NS"] = String(options.thresholdNs)
        env["UNCLOG_SAMPLE_INTERVAL_NS"] = String(options.sampleIntervalNs)

        let status = try spawnAndWait(options.command, env: env)
        if kind == .swiftPreload || kind == .swiftLinked, let missing = notRecorded(output), !missing.isEmpty {
            let message = "unclog: not recorded in this Swift recording: \(missing.joined(separator: "; "))\n"
            _ = message.withCString { write(2, $0, strlen($0)) }
        }
        if access(output, F_OK) != 0 {
            let why: String
            switch kind {
            case .maybePython: why = "it did not start a Python interpreter that unclog could hook"
            case .python: why = "the recorder did not start (see any error above)"
            case .swiftPreload: why = "the Swift recorder did not start (see any error above)"
            case .swiftLinked: why = "the program links UnclogRecorder but did not call UnclogRecorder.start()"
            }
            let message = "unclog: no trace was written to \(options.output): \(why)\n"
            _ = message.withCString { write(2, $0, strlen($0)) }
        }
        return status
    }

    /// The trace's `not_recorded` metadata (what the Swift recorder could not see), if any.
    static func notRecorded(_ trace: String) -> [String]? {
        guard let reader = try? TraceReader(path: trace), let first = reader.nextChunk(),
            first.kind == ChunkKind.metadata.rawValue
        else { return nil }
        for e in EventDecoder.decodeMetadata(first).entries where e.key == "not_recorded" {
            if case let .list(l) = e.value { return l }
        }
        return nil
    }

    /// posix_spawn with the given environment; SIGINT/SIGTERM/SIGHUP/SIGQUIT sent to unclog
    /// by another process are forwarded (a terminal's Ctrl-C already reaches the whole group).
    static func spawnAndWait(_ argv: [String], env: [String: String]) throws(RecordError) -> Int32 {
        var pid: pid_t = 0
        let cArgs = argv.map { strdup($0) } + [nil]
        let cEnv = env.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            for p in cArgs { free(p) }
            for p in cEnv { free(p) }
        }
        let forwarded: [Int32] = [SIGINT, SIGTERM, SIGHUP, SIGQUIT]
        let blank: sigaction = .init()
        var old: [sigaction] = Array(repeating: blank, count: forwarded.count)
        let rc = posix_spawnp(&pid, argv[0], nil, nil, cArgs, cEnv)
        guard rc == 0 else {
            throw RecordError(message: "\(argv[0]): cannot run: \(String(cString: strerror(rc)))")
        }
        recordedChild = pid
        for (i, sig) in forwarded.enumerated() {
            var sa: sigaction = .init()
            sa.sa_flags = SA_SIGINFO | SA_RESTART
            sa.__sigaction_handler.sa_sigaction = { sig, info, _ in
                // Signals from the terminal (si_code > 0, e.g. SI_KERNEL) reached the child already.
                if let info, info.pointee.si_code <= 0, recordedChild > 0 { kill(recordedChild, sig) }
            }
            sigaction(sig, &sa, &old[i])
        }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 {
            if errno != EINTR { break }
        }
        for (i, sig) in forwarded.enumerated() { sigaction(sig, &old[i], nil) }
        recordedChild = 0
        let termSig = status & 0x7F
        if termSig == 0 { return (status >> 8) & 0xFF }
        return 128 + termSig
    }

    static func resolve(_ program: String) -> String? {
        if program.contains("/") { return access(program, X_OK) == 0 ? program : nil }
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":") {
            let p = "\(dir)/\(program)"
            if access(p, X_OK) == 0 { return p }
        }
        return nil
    }

    static func absolute(_ path: String) -> String {
        path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
    }
}
