// The canonical JSON rendering of a decoded trace: what `unclog dump` prints and what the
// conformance vectors in schema/vectors/*.json hold (spec §9).

/// Decodes a whole trace into the canonical JSON document of spec §9.
public enum TraceJSON {
    /// Reads every chunk of `reader` and renders header, metadata, chunks with their events,
    /// and damage. Memory grows with the trace: meant for small traces and vectors.
    public static func render(_ reader: TraceReader) -> String {
        var w = JSONWriter()
        w.open("{")
        w.key("version"); w.raw("[\(reader.header.versionMajor), \(reader.header.versionMinor)]")
        w.key("chunks"); w.open("[")
        while let chunk = reader.nextChunk() {
            w.item(); w.open("{")
            w.key("offset"); w.raw(String(chunk.offset))
            w.key("kind"); w.raw(String(chunk.kind))
            w.key("thread"); w.raw(String(chunk.thread))
            w.key("seq"); w.raw(String(chunk.seq))
            w.key("base_ns"); w.raw(String(chunk.baseTime))
            switch chunk.kind {
            case ChunkKind.metadata.rawValue:
                let (entries, damage) = EventDecoder.decodeMetadata(chunk)
                w.key("metadata"); w.open("[")
                for e in entries {
                    w.item(); w.open("{")
                    w.key("key"); w.string(e.key)
                    switch e.value {
                    case let .uint(v): w.key("uint"); w.raw(String(v))
                    case let .string(s): w.key("string"); w.string(s)
                    case let .list(l): w.key("list"); w.raw("[" + l.map(JSONWriter.quote).joined(separator: ", ") + "]")
                    }
                    w.close("}")
                }
                w.close("]")
                if let damage { reader.report(damage) }
            case ChunkKind.events.rawValue:
                w.key("events"); w.open("[")
                let damage = EventDecoder.decode(chunk) { event in
                    w.item(); w.raw(eventObject(event))
                }
                w.close("]")
                if let damage { reader.report(damage) }
            default:
                break
            }
            w.close("}")
        }
        w.close("]")
        w.key("damage"); w.open("[")
        for d in reader.damage {
            w.item(); w.raw("{\"offset\": \(d.offset), \"bytes_lost\": \(d.bytesLost)}")
        }
        w.close("]")
        w.key("bytes_lost"); w.raw(String(reader.bytesLost))
        w.close("}")
        return w.text + "\n"
    }

    /// A JSON string literal (quotes, backslashes and control characters escaped).
    public static func quote(_ s: String) -> String { JSONWriter.quote(s) }

    /// One event as a single-line JSON object, keys in a fixed order.
    public static func eventObject(_ e: TraceEvent) -> String {
        var f: [(String, String)] = [("t", String(e.time))]
        func n(_ k: String, _ v: some BinaryInteger) { f.append((k, String(v))) }
        let type: String
        switch e.kind {
        case let .string(id, value): type = "string"; n("id", id); f.append(("value", JSONWriter.quote(value)))
        case let .frame(id, flags, function, file, line):
            type = "frame"; n("id", id); n("flags", flags.rawValue); n("function", function); n("file", file); n("line", line)
        case let .nativeFrame(id, flags, image, address):
            type = "native_frame"; n("id", id); n("flags", flags.rawValue); n("image", image); n("address", address)
        case let .stack(id, frames):
            type = "stack"; n("id", id); f.append(("frames", "[" + frames.map(String.init).joined(separator: ", ") + "]"))
        case let .image(id, path, loadBias, start, end, buildID):
            type = "image"; n("id", id); n("path", path); n("load_bias", loadBias); n("start", start); n("end", end)
            f.append(
                (
                    "build_id",
                    JSONWriter.quote(
                        buildID.map { b in
                            let h = String(b, radix: 16); return h.count == 1 ? "0" + h : h
                        }.joined())
                ))
        case let .thread(tid, name): type = "thread"; n("tid", tid); n("name", name)
        case let .greenthreadCreate(gt, name, spawnStack, parent):
            type = "greenthread_create"; n("gt", gt); n("name", name); n("spawn_stack", spawnStack); n("parent", parent)
        case let .greenthreadExit(gt): type = "greenthread_exit"; n("gt", gt)
        case let .running(gt, hub): type = "running"; n("gt", gt); n("hub", hub)
        case .switchToHub: type = "switch_to_hub"
        case let .switchTo(to, reason, readyDelta):
            type = "switch"; n("to", to); f.append(("reason", JSONWriter.quote(reason.description))); n("ready_dt", readyDelta)
        case let .ioWaitBegin(timeout):
            type = "io_wait_begin"; f.append(("timeout_ns", timeout.map(String.init) ?? "null"))
        case let .ioWaitEnd(ready): type = "io_wait_end"; n("nready", ready)
        case let .stallBegin(tid, gt, sinceDelta): type = "stall_begin"; n("tid", tid); n("gt", gt); n("since_dt", sinceDelta)
        case let .stallSample(tid, stack, state): type = "stall_sample"; n("tid", tid); n("stack", stack); n("state", state)
        case let .stallEnd(gt, duration, stack): type = "stall_end"; n("gt", gt); n("duration", duration); n("stack", stack)
        case let .dropped(reason, count): type = "dropped"; n("reason", reason); n("count", count)
        case let .end(chunks, events): type = "end"; n("chunks", chunks); n("events", events)
        case let .skipped(code, length): type = "skipped"; n("code", code); n("length", length)
        }
        f.insert(("type", JSONWriter.quote(type)), at: 0)
        return "{" + f.map { "\(JSONWriter.quote($0.0)): \($0.1)" }.joined(separator: ", ") + "}"
    }
}

/// A minimal pretty-printing JSON writer with a fixed key order (no Foundation needed).
struct JSONWriter {
    var text = ""
    private var depth = 0
    private var first = [true]

    mutating func open(_ bracket: String) {
        text += bracket
        depth += 1
        first.append(true)
    }

    mutating func close(_ bracket: String) {
        depth -= 1
        let wasEmpty = first.removeLast()
        if !wasEmpty { newline() }
        text += bracket
    }

    mutating func item() {
        if !first[first.count - 1] { text += "," }
        first[first.count - 1] = false
        newline()
    }

    mutating func key(_ k: String) {
        item()
        text += JSONWriter.quote(k) + ": "
    }

    mutating func raw(_ s: String) { text += s }
    mutating func string(_ s: String) { text += JSONWriter.quote(s) }

    private mutating func newline() {
        text += "\n" + String(repeating: "  ", count: depth)
    }

    /// A JSON string literal, escaping quotes, backslashes and control characters.
    static func quote(_ s: String) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where u.value < 0x20:
                let h = String(u.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - h.count) + h
            default: out.unicodeScalars.append(u)
            }
        }
        return out + "\""
    }
}
