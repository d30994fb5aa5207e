// Test support: running a real program (the unclog executable, a compiler, a recorded test
// program, headless Chromium) and collecting what it printed.

import Foundation

/// A finished program run.
public struct ProgramRun: CustomStringConvertible, Sendable {
    public var status: Int32
    public var stdout: String
    public var stderr: String
    /// A run that did not happen: exit -1 and why on stderr.
    public static func notRun(_ why: String) -> ProgramRun { ProgramRun(status: -1, stdout: "", stderr: why) }
    public var description: String { "exit \(status)\n--- stdout\n\(stdout)\n--- stderr\n\(stderr)" }
    /// The non-empty lines of stdout.
    public var stdoutLines: [String] { stdout.split(separator: "\n").map(String.init) }
    /// The lines of stderr.
    public var stderrLines: [String] { stderr.split(separator: "\n").map(String.init) }
}

/// Runs `exe args…` and waits for it; with a `timeout`, at most that many seconds (then it is terminated).
/// Output goes through files, so a large output cannot fill a pipe and block the child; stdin
/// is /dev/null. `env` adds to (or overrides) this process's environment; `cwd` is the
/// child's working directory.
public func runProgram(
    _ exe: String, _ args: [String], env: [String: String] = [:], cwd: String? = nil,
    timeout: TimeInterval? = nil
) throws -> ProgramRun {
    let tmp = TempDir(prefix: "unclog-run")
    let outPath = tmp.file("out"), errPath = tmp.file("err")
    FileManager.default.createFile(atPath: outPath, contents: nil)
    FileManager.default.createFile(atPath: errPath, contents: nil)
    let out = try FileHandle(forWritingTo: URL(fileURLWithPath: outPath))
    let err = try FileHandle(forWritingTo: URL(fileURLWithPath: errPath))
    let p = Process()
    p.executableURL = URL(fileURLWithPath: exe)
    p.arguments = args
    if let cwd { p.currentDirectoryURL = URL(fileURLWithPath: cwd) }
    var e = ProcessInfo.processInfo.environment
    for (k, v) in env { e[k] = v }
    p.environment = e
    p.standardInput = FileHandle.nullDevice
    p.standardOutput = out
    p.standardError = err
    try p.run()
    if let timeout {
        let deadline = Date().addingTimeInterval(timeout)
        while p.isRunning && Date() < deadline { usleep(20_000) }
        if p.isRunning { p.terminate() }
    }
    p.waitUntilExit()
    try out.close()
    try err.close()
    return ProgramRun(
        status: p.terminationStatus,
        stdout: String(decoding: FileManager.default.contents(atPath: outPath) ?? Data(), as: UTF8.self),
        stderr: String(decoding: FileManager.default.contents(atPath: errPath) ?? Data(), as: UTF8.self))
}

/// The `unclog` executable the end-to-end tests run, found in order: $UNCLOG_BIN (what `make test`
/// sets), next to the test binary (SwiftPM puts every product of a build in one directory), or
/// in the package's .build/debug and .build/release.
public enum UnclogExecutable {
    /// Its path, or an error naming the places searched.
    public static let path: Result<String, Missing> = {
        var candidates: [String] = []
        if let env = ProcessInfo.processInfo.environment["UNCLOG_BIN"], !env.isEmpty { candidates.append(env) }
        var dirs: [URL] = []
        if let arg0 = CommandLine.arguments.first {
            let url = URL(fileURLWithPath: arg0, relativeTo: URL(fileURLWithPath: FileManager.default.currentDirectoryPath))
            dirs.append(url.standardizedFileURL.resolvingSymlinksInPath().deletingLastPathComponent())
        }
        if let exe = Bundle.main.executableURL { dirs.append(exe.resolvingSymlinksInPath().deletingLastPathComponent()) }
        dirs.append(Bundle.main.bundleURL.deletingLastPathComponent())
        for d in dirs {
            var u = d
            for _ in 0..<4 {
                candidates.append(u.appendingPathComponent("unclog").path)
                u = u.deletingLastPathComponent()
            }
        }
        candidates.append(packageRoot.appendingPathComponent(".build/debug/unclog").path)
        candidates.append(packageRoot.appendingPathComponent(".build/release/unclog").path)
        for c in candidates {
            var isDir: ObjCBool = false
            if FileManager.default.fileExists(atPath: c, isDirectory: &isDir), !isDir.boolValue,
                FileManager.default.isExecutableFile(atPath: c)
            {
                return .success(c)
            }
        }
        return .failure(Missing(searched: candidates))
    }()

    /// The executable was not built.
    public struct Missing: Error, CustomStringConvertible {
        public var searched: [String]
        public var description: String {
            "the unclog executable was not found (build it with `swift build`, or set UNCLOG_BIN); looked at:\n  "
                + searched.joined(separator: "\n  ")
        }
    }
}
