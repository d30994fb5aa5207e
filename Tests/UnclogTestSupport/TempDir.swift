// Test support shared by the Swift test targets: a temporary directory that removes itself,
// and reading a file's bytes.

import Foundation

/// A fresh directory under the temporary directory, removed when the value dies.
public final class TempDir: @unchecked Sendable {
    public let path: String

    public init(prefix: String = "unclog-test") {
        var template = Array((NSTemporaryDirectory() + "/\(prefix)-XXXXXX").utf8CString)
        let p = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        precondition(p != nil, "mkdtemp failed")
        path = String(cString: p!)
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }

    /// The path of `name` in the directory.
    public func file(_ name: String) -> String { path + "/" + name }

    /// File names in the directory, sorted.
    public func listing() -> [String] { ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []).sorted() }
}

/// The bytes of a file (empty if missing).
public func contents(_ path: String) -> [UInt8] {
    FileManager.default.contents(atPath: path).map { [UInt8]($0) } ?? []
}

/// The package's root directory (the tests read the spec, the sources and the built products).
public let packageRoot: URL = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
