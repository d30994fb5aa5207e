// The event model of schema/trace-format.md: codes, flags, metadata and decoded events.

/// Constants of the file and chunk layout (spec §2).
public enum TraceFormat {
    /// `\x89UNCLOG\n`: the first 8 bytes of every trace.
    public static let magic: [UInt8] = [0x89, 0x55, 0x4E, 0x43, 0x4C, 0x4F, 0x47, 0x0A]
    /// `\xFFUCK`: the first 4 bytes of every chunk, searched for when resynchronising.
    public static let chunkSync: [UInt8] = [0xFF, 0x55, 0x43, 0x4B]
    public static let versionMajor: UInt16 = 1
    public static let versionMinor: UInt16 = 0
    public static let fileHeaderSize = 16
    public static let chunkHeaderSize = 32
    public static let maxChunkPayload = 16 << 20
    public static let maxStringBytes = 65_536
    public static let maxStackDepth = 1024
    public static let maxBuildIDBytes = 64
    public static let maxMetadataEntries = 4096
}

/// Chunk kinds (spec §2.1).
public enum ChunkKind: UInt8, Sendable {
    case metadata = 1
    case events = 2
}

/// One-byte event codes (spec §4.2). Codes 0x80 and above are length-prefixed and skippable.
public enum EventCode: UInt8, Sendable, CaseIterable {
    case string = 0x01
    case frame = 0x02
    case nativeFrame = 0x03
    case stack = 0x04
    case image = 0x05
    case thread = 0x06
    case greenthreadCreate = 0x07
    case greenthreadExit = 0x08
    case running = 0x09
    case switchToHub = 0x10
    case switchTimer = 0x11
    case switchIO = 0x12
    case switchSpawn = 0x13
    case switchExplicit = 0x14
    case switchOther = 0x15
    case ioWaitBegin = 0x20
    case ioWaitEnd = 0x21
    case stallBegin = 0x30
    case stallSample = 0x31
    case stallEnd = 0x32
    case dropped = 0x40
    case end = 0x7F
}

/// Why a greenthread was switched to; the numbering is the event code minus 0x10.
public enum SwitchReason: UInt8, Sendable, CaseIterable, CustomStringConvertible {
    case timer = 1
    case io = 2
    case spawn = 3
    case explicit = 4
    case other = 5

    public var description: String {
        switch self {
        case .timer: "timer"
        case .io: "io"
        case .spawn: "spawn"
        case .explicit: "explicit"
        case .other: "other"
        }
    }
}

/// Bits of a frame's `flags` field (spec §4.2).
public struct FrameFlags: OptionSet, Sendable, Hashable {
    public let rawValue: UInt64
    public init(rawValue: UInt64) { self.rawValue = rawValue }
    /// Runtime, hub or recorder code: call-site attribution skips it.
    public static let `internal` = FrameFlags(rawValue: 1)
    /// The native address is a return address: symbolize `address - 1`.
    public static let returnAddress = FrameFlags(rawValue: 2)
    /// The native address is a Swift async resume point.
    public static let asyncResume = FrameFlags(rawValue: 4)
    /// Standard-library or third-party code: a stall is charged to the program's frame that
    /// called into it, when there is one.
    public static let library = FrameFlags(rawValue: 8)
}

/// A metadata value (spec §3).
public enum MetadataValue: Sendable, Hashable {
    case uint(UInt64)
    case string(String)
    case list([String])
}

/// One key of the metadata chunk.
public struct MetadataEntry: Sendable, Hashable {
    public var key: String
    public var value: MetadataValue
    public init(_ key: String, _ value: MetadataValue) {
        self.key = key
        self.value = value
    }
}

/// A decoded event: its absolute time (CLOCK_MONOTONIC ns) and what happened.
public struct TraceEvent: Sendable, Hashable {
    public var time: UInt64
    public var kind: Kind

    public init(time: UInt64, _ kind: Kind) {
        self.time = time
        self.kind = kind
    }

    /// What an event says; cases mirror the codes in spec §4.2.
    public enum Kind: Sendable, Hashable {
        case string(id: UInt32, value: String)
        case frame(id: UInt32, flags: FrameFlags, function: UInt32, file: UInt32, line: UInt64)
        case nativeFrame(id: UInt32, flags: FrameFlags, image: UInt32, address: UInt64)
        case stack(id: UInt32, frames: [UInt32])
        case image(id: UInt32, path: UInt32, loadBias: UInt64, start: UInt64, end: UInt64, buildID: [UInt8])
        case thread(tid: UInt32, name: UInt32)
        case greenthreadCreate(gt: UInt32, name: UInt32, spawnStack: UInt32, parent: UInt32)
        case greenthreadExit(gt: UInt32)
        case running(gt: UInt32, hub: UInt32)
        case switchToHub
        case switchTo(to: UInt32, reason: SwitchReason, readyDelta: UInt64)
        /// `timeout` is nil for an unbounded wait.
        case ioWaitBegin(timeout: UInt64?)
        case ioWaitEnd(ready: UInt64)
        case stallBegin(tid: UInt32, gt: UInt32, sinceDelta: UInt64)
        case stallSample(tid: UInt32, stack: UInt32, state: UInt64)
        case stallEnd(gt: UInt32, duration: UInt64, stack: UInt32)
        case dropped(reason: UInt64, count: UInt64)
        case end(chunks: UInt64, events: UInt64)
        /// A length-prefixed event of a later minor version, skipped.
        case skipped(code: UInt8, length: Int)
    }
}
