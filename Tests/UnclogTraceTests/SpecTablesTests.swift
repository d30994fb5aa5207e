// schema/trace-format.md is the one truth for event codes and metadata keys. These tests parse
// its tables and compare them with every implementation's constants (the Swift enum, the Swift
// recorder's C header, the Python recorder's constants) and with the metadata keys the code
// writes and reads, so the spellings cannot drift apart again.

import Foundation
import Testing
import UnclogTestSupport

@testable import UnclogTrace

@Suite("the spec's tables against the code")
struct SpecTablesTests {
    static let root = packageRoot

    static func read(_ path: String) throws -> String {
        try String(contentsOf: root.appendingPathComponent(path), encoding: .utf8)
    }

    /// Every file below `dir` (relative to the root) whose name ends in one of `extensions`.
    static func files(in dir: String, extensions: [String]) -> [String] {
        let base = root.appendingPathComponent(dir)
        guard let e = FileManager.default.enumerator(atPath: base.path) else { return [] }
        return e.compactMap { $0 as? String }
            .filter { f in extensions.contains { f.hasSuffix($0) } }
            .map { dir + "/" + $0 }
            .sorted()
    }

    /// All matches of `pattern` in `text`: each match's capture groups.
    static func matches(_ pattern: String, in text: String) throws -> [[String]] {
        let re = try NSRegularExpression(pattern: pattern, options: [.anchorsMatchLines])
        let ns = text as NSString
        return re.matches(in: text, range: NSRange(location: 0, length: ns.length)).map { m in
            (1..<m.numberOfRanges).map { ns.substring(with: m.range(at: $0)) }
        }
    }

    /// The §4.2 event table: name → code.
    static func specEvents() throws -> [String: UInt8] {
        var out: [String: UInt8] = [:]
        for m in try matches(#"^\| 0x([0-9A-F]{2}) \| `([A-Za-z]+)` \|"#, in: try read("schema/trace-format.md")) {
            out[m[1]] = UInt8(m[0], radix: 16)
        }
        return out
    }

    /// The §3 metadata table's keys.
    static func specMetadataKeys() throws -> Set<String> {
        Set(try matches(#"^\| `([a-z_]+)` \| (?:uint|string|list) \|"#, in: try read("schema/trace-format.md")).map { $0[0] })
    }

    /// `IOWaitBegin` → ["IO", "Wait", "Begin"].
    static func words(_ name: String) throws -> [String] {
        try matches(#"([A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|[0-9]+)"#, in: name).map { $0[0] }
    }

    /// The C and Python spelling: `EV_IO_WAIT_BEGIN`.
    static func upperSnake(_ name: String) throws -> String {
        "EV_" + (try words(name)).map { $0.uppercased() }.joined(separator: "_")
    }

    /// The Swift spelling: `ioWaitBegin`.
    static func lowerCamel(_ name: String) throws -> String {
        let w = try words(name)
        return w.enumerated().map { $0.offset == 0 ? $0.element.lowercased() : $0.element }.joined()
    }

    @Test("the spec's event table is complete and well-formed")
    func specTableParses() throws {
        let events = try Self.specEvents()
        #expect(events.count == EventCode.allCases.count, "the spec lists \(events.count) events")
        #expect(Set(events.values).count == events.count, "two events share a code")
        #expect(try Self.upperSnake("IOWaitBegin") == "EV_IO_WAIT_BEGIN")
        #expect(try Self.lowerCamel("SwitchIO") == "switchIO")
        #expect(try Self.lowerCamel("IOWaitBegin") == "ioWaitBegin")
    }

    @Test("Swift's EventCode is the spec's table")
    func swiftEnum() throws {
        let spec = try Self.specEvents()
        var swift: [String: UInt8] = [:]
        for c in EventCode.allCases { swift["\(c)"] = c.rawValue }
        let expected = Dictionary(uniqueKeysWithValues: try spec.map { (try Self.lowerCamel($0.key), $0.value) })
        #expect(swift == expected)
    }

    /// Checks `EV_…` constants found in `files` against the spec: every constant is a spec event
    /// with the spec's code, and at least `atLeast` are defined.
    func check(constants pattern: String, in files: [String], atLeast: Int) throws {
        let spec = try Self.specEvents()
        let byConstant = Dictionary(uniqueKeysWithValues: try spec.map { (try Self.upperSnake($0.key), $0.value) })
        var found: [String: UInt8] = [:]
        for f in files {
            for m in try Self.matches(pattern, in: try Self.read(f)) {
                let code = UInt8(m[1], radix: 16)
                #expect(byConstant[m[0]] != nil, "\(f): \(m[0]) is not an event of the spec (spelled from §4.2's names)")
                #expect(byConstant[m[0]] == nil || byConstant[m[0]] == code, "\(f): \(m[0]) = 0x\(m[1]), the spec says otherwise")
                #expect(found[m[0]] == nil || found[m[0]] == code, "\(f): \(m[0]) defined twice, differently")
                found[m[0]] = code
            }
        }
        #expect(found.count >= atLeast, "only \(found.count) event constants found in \(files)")
    }

    @Test("the Swift recorder's C constants are the spec's")
    func cConstants() throws {
        let files = Self.files(in: "Sources/CUnclogSwiftRecorder", extensions: [".c", ".h"])
        try check(constants: #"\b(EV_[A-Z_]+)\s*=\s*0x([0-9A-Fa-f]+)"#, in: files, atLeast: 15)
    }

    @Test("the Python recorder's constants are the spec's")
    func pythonConstants() throws {
        let dir = "Sources/UnclogPythonRecorder/python/unclog_recorder"
        // _wire.py defines the whole table (the trace reader's tests use it too).
        let all = try Self.specEvents().count
        try check(constants: #"^(EV_[A-Z_]+)\s*=\s*0x([0-9A-Fa-f]+)"#, in: Self.files(in: dir, extensions: [".py"]), atLeast: all)
        // The native tracer (_fast.c and any header beside it) spells the codes it writes.
        try check(
            constants: #"^#define\s+(EV_[A-Z_]+)\s+0x([0-9A-Fa-f]+)"#,
            in: Self.files(in: dir, extensions: [".c", ".h"]), atLeast: 4)
    }

    @Test("every metadata key the Swift code writes or reads is in the spec's table")
    func metadataKeys() throws {
        let spec = try Self.specMetadataKeys()
        #expect(spec.contains("threshold_ns") && spec.contains("not_recorded"))
        // The C recorder writes keys with KEY("…"); Swift reads them with meta("…"), metadata["…"] or
        // compares `key == "…"`. (The Python recorder's keys are checked on real recordings:
        // Tests/python/test_format_spec.py.)
        let sources: [(String, String)] = [
            ("Sources/CUnclogSwiftRecorder", #"KEY\("([a-z_]+)"\)"#),
            ("Sources", #"\bmeta\("([a-z_]+)"\)"#),
            ("Sources", #"\bkey == "([a-z_]+)""#),
            ("Sources", #"\bmetadata\["([a-z_]+)"\]"#),
        ]
        var seen = 0
        for (dir, pattern) in sources {
            for f in Self.files(in: dir, extensions: [".c", ".h", ".swift"]) {
                for m in try Self.matches(pattern, in: try Self.read(f)) {
                    seen += 1
                    #expect(spec.contains(m[0]), "\(f) uses metadata key \(m[0]), which schema/trace-format.md §3 does not list")
                }
            }
        }
        #expect(seen >= 15, "only \(seen) metadata key uses found: the patterns no longer match the code")
    }
}
