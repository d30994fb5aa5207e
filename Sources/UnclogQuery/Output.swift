// Rendering query results as an aligned table, JSON or CSV (`--format`).

import Foundation
import UnclogStore
import UnclogTrace

/// Output formats of the query commands.
public enum OutputFormat: String, CaseIterable, Sendable {
    case table, json, csv
}

/// One cell: its JSON value and its text for tables and CSV.
public struct Cell: Sendable {
    /// The cell as JSON (a number, a quoted string, null, or a nested array/object).
    public var json: String
    /// The cell as tables show it (durations humanised).
    public var text: String
    /// The cell in CSV (raw numbers; nested values as JSON).
    public var csv: String

    /// Cells of a value; nil is `null` in JSON and empty in tables and CSV. `duration` prints
    /// nanoseconds humanised in tables, `percent` a fraction as a percentage, `raw` a value
    /// whose JSON is already written.
    public static func int(_ v: Int64?) -> Cell {
        guard let v else { return .null }
        return Cell(json: String(v), text: String(v), csv: String(v))
    }
    public static func duration(_ v: Int64?) -> Cell {
        guard let v else { return .null }
        return Cell(json: String(v), text: DurationText.format(v), csv: String(v))
    }
    public static func text(_ v: String?) -> Cell {
        guard let v else { return .null }
        return Cell(json: jsonQuote(v), text: v, csv: v)
    }
    public static func double(_ v: Double?, digits: Int = 3) -> Cell {
        guard let v, v.isFinite else { return .null }
        let s = format3(v, digits)
        return Cell(json: s, text: s, csv: s)
    }
    public static func percent(_ v: Double?) -> Cell {
        guard let v, v.isFinite else { return .null }
        return Cell(json: format3(v, 4), text: format3(v * 100, 1) + "%", csv: format3(v, 4))
    }
    public static func raw(json: String, text: String) -> Cell { Cell(json: json, text: text, csv: json) }
    /// No value.
    public static let null = Cell(json: "null", text: "", csv: "")

    /// A cell from a SQL value, as `unclog sql` shows it.
    public static func sql(_ v: SQLValue) -> Cell {
        switch v {
        case .null: return .null
        case let .int(x): return .int(x)
        case let .double(x):
            let s = "\(x)"
            return Cell(json: x.isFinite ? s : "null", text: s, csv: s)
        case let .text(s): return .text(s)
        case let .blob(b):
            let h = b.map { x in
                let h = String(x, radix: 16); return h.count == 1 ? "0" + h : h
            }.joined()
            return Cell(json: jsonQuote(h), text: "x'\(h)'", csv: h)
        }
    }
}

/// Rows with named columns, printed in one of the output formats.
public struct ResultTable: Sendable {
    /// Column names (JSON keys), and the rows, one cell per column.
    public var columns: [String]
    public var rows: [[Cell]]
    /// Columns whose table cells are right-aligned (numbers).
    public var rightAligned: Set<String> = []

    /// A table with these columns.
    public init(columns: [String], rows: [[Cell]] = [], rightAligned: Set<String> = []) {
        self.columns = columns
        self.rows = rows
        self.rightAligned = rightAligned
    }

    /// The table as text in `format`; table cells longer than `maxWidth` are clipped.
    public func render(_ format: OutputFormat, maxWidth: Int = 60) -> String {
        switch format {
        case .json:
            if rows.isEmpty { return "[]\n" }
            return "[\n"
                + rows.map { row in
                    "  {" + zip(columns, row).map { "\(jsonQuote($0)): \($1.json)" }.joined(separator: ", ") + "}"
                }.joined(separator: ",\n") + "\n]\n"
        case .csv:
            func esc(_ s: String) -> String {
                s.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" })
                    ? "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : s
            }
            return ([columns.map(esc).joined(separator: ",")] + rows.map { $0.map { esc($0.csv) }.joined(separator: ",") })
                .joined(separator: "\n") + "\n"
        case .table:
            let texts = rows.map { $0.map { clip($0.text, maxWidth) } }
            var widths = columns.map(\.count)
            for r in texts { for (i, t) in r.enumerated() { widths[i] = max(widths[i], t.count) } }
            func line(_ cells: [String]) -> String {
                cells.enumerated().map { i, t in
                    let pad = String(repeating: " ", count: widths[i] - t.count)
                    return rightAligned.contains(columns[i]) ? pad + t : t + pad
                }.joined(separator: "  ").trimmingTrailingSpaces()
            }
            var out = line(columns) + "\n"
            for r in texts { out += line(r) + "\n" }
            return out
        }
    }

    private func clip(_ s: String, _ n: Int) -> String {
        let flat = s.replacingOccurrences(of: "\n", with: " ")
        return flat.count <= n ? flat : "…" + String(flat.suffix(n - 1))
    }
}

extension String {
    func trimmingTrailingSpaces() -> String {
        var s = self
        while s.last == " " { s.removeLast() }
        return s
    }
}

let jsonQuote = TraceJSON.quote
