// Durations as users type them (`200us`, `50ms`, `1.5s`) and as tables print them.

import Foundation

/// Parsing and printing of nanosecond durations.
public enum DurationText {
    /// Parses `N[.N](ns|us|µs|ms|s|m|h)`; a bare number is rejected (ambiguous).
    public static func parse(_ text: String) -> Int64? {
        let s = text.trimmingCharacters(in: .whitespaces)
        let units: [(String, Double)] = [
            ("ns", 1), ("us", 1e3), ("µs", 1e3), ("ms", 1e6), ("s", 1e9), ("m", 60e9), ("h", 3600e9),
        ]
        for (suffix, scale) in units.sorted(by: { $0.0.count > $1.0.count }) where s.hasSuffix(suffix) {
            let number = String(s.dropLast(suffix.count))
            guard !number.isEmpty, number.allSatisfy({ $0.isNumber || $0 == "." }),
                number.filter({ $0 == "." }).count <= 1, let v = Double(number), v.isFinite, v >= 0
            else { return nil }
            let ns = v * scale
            guard ns < 9.2e18 else { return nil }
            return Int64(ns.rounded())
        }
        return nil
    }

    /// A short human form: `850ns`, `12.5us`, `231ms`, `1.52s`, `3m05s`.
    public static func format(_ ns: Int64) -> String {
        let a = abs(ns)
        let sign = ns < 0 ? "-" : ""
        func trim(_ v: Double, _ digits: Int) -> String {
            var s = String(format3(v, digits))
            if s.contains(".") {
                while s.hasSuffix("0") { s.removeLast() }
                if s.hasSuffix(".") { s.removeLast() }
            }
            return s
        }
        // A value that rounds up to the next unit is printed in it (999_999ns is `1ms`, not `1000us`).
        if a < 1_000 { return "\(sign)\(a)ns" }
        if a < 1_000_000, case let us = trim(Double(a) / 1e3, a < 10_000 ? 2 : 1), us != "1000" { return sign + us + "us" }
        if a < 1_000_000_000, case let ms = trim(Double(a) / 1e6, a < 10_000_000 ? 2 : 1), ms != "1000" {
            return sign + ms + "ms"
        }
        if a < 60_000_000_000, case let s = trim(Double(a) / 1e9, 2), s != "60" { return sign + s + "s" }
        let totalSeconds = (a + 500_000_000) / 1_000_000_000
        let sec = totalSeconds % 60
        return "\(sign)\(totalSeconds / 60)m\(sec < 10 ? "0" : "")\(sec)s"
    }
}

/// Fixed-point formatting without Foundation's String(format:).
func format3(_ v: Double, _ digits: Int) -> String {
    var scale = 1.0
    for _ in 0..<digits { scale *= 10 }
    // Work on the magnitude so values in (-1, 0) keep their sign (Int64(-0.9) is 0).
    let r = (abs(v) * scale).rounded()
    let sign = v < 0 && r > 0 ? "-" : ""
    let whole = Int64(r / scale)
    let frac = Int64(r) - whole * Int64(scale)
    guard digits > 0 else { return sign + String(whole) }
    var f = String(frac)
    while f.count < digits { f = "0" + f }
    return "\(sign)\(whole).\(f)"
}
