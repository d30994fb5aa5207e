// What the timeline rebuild produces: one plain value per row to be (a slice, an I/O wait, a
// stall, a sample, a victim, a greenthread, a thread, a definition), in the trace's own terms:
// the recorder's ids, times in ns since the trace start, and nil for what the trace did not
// say. The rebuild hands each record to a `TimelineSink` as soon as it is complete (nothing is
// buffered); `RowWriter` turns them into rows, tests collect them.

import UnclogTrace

/// Receives the records of a timeline rebuild, in the order they are complete.
///
/// Records carry numbers, not storage keys: slices, I/O waits, stalls and samples are numbered
/// from 0 in file order, each kind on its own (`id`), and refer to each other by these numbers.
/// A sink is a class so that the rebuild's hot loop calls it without copying or exclusivity
/// checks.
protocol TimelineSink: AnyObject {
    associatedtype Failure: Error

    func slice(_ r: SliceRecord) throws(Failure)
    func ioWait(_ r: IOWaitRecord) throws(Failure)
    func stall(_ r: StallRecord) throws(Failure)
    func sample(_ r: SampleRecord) throws(Failure)
    func victim(_ r: VictimRecord) throws(Failure)
    /// A greenthread's totals so far: the same greenthread can come again (it is written when it
    /// exits and forgotten; its id may be reused), and the sink merges them.
    func greenthread(_ r: GreenthreadRecord) throws(Failure)
    func thread(_ r: ThreadRecord) throws(Failure)
    /// How many greenthreads a stall kept waiting, and for how long in all (once per stall
    /// with victims, at the end).
    func victimTotals(_ r: VictimTotalsRecord) throws(Failure)

    func string(_ r: StringRecord) throws(Failure)
    func frame(_ r: FrameRecord) throws(Failure)
    func stack(_ r: StackRecord) throws(Failure)
    func image(_ r: ImageRecord) throws(Failure)
}

/// A time greenthread `gt` ran on OS thread `thread` (hubs have none).
struct SliceRecord: Equatable, Sendable {
    var id: Int64
    var gt: UInt32
    var thread: UInt32
    /// Since when it was ready to run; nil when the switch did not say.
    var ready: Int64?
    var start: Int64
    var end: Int64
    /// Why it ran; nil when unknown (it was found running).
    var reason: SwitchReason?
    /// The same greenthread's previous slice (its chain), nil for its first.
    var previous: Int64?
    /// Its position among the greenthread's slices and among the thread's (from 0).
    var indexInGreenthread: Int
    var indexInThread: Int
    /// It starts before the end of the greenthread's previous slice: a greenthread that moves
    /// between threads whose chunks reached the file out of time order.
    var outOfOrder: Bool
}

/// A hub waiting for I/O on `thread`.
struct IOWaitRecord: Equatable, Sendable {
    var id: Int64
    var thread: UInt32
    var start: Int64
    var end: Int64
    /// The requested timeout; nil for an unbounded (or unknown) one.
    var timeout: Int64?
    /// Ready file descriptors it returned; nil when it never returned (the recording ended).
    var nready: Int64?
    /// Its position among the thread's I/O waits (from 0).
    var indexInThread: Int
}

/// A slice of `gt` that held `thread` past the threshold.
struct StallRecord: Equatable, Sendable {
    var id: Int64
    var thread: UInt32
    var gt: UInt32
    var start: Int64
    var end: Int64
    /// Where the slice ended, when the recorder said.
    var endStack: UInt32?
    /// False when the recording ended inside the stall (its end is the thread's last sign of life).
    var complete: Bool
    var duration: Int64 { end - start }
}

/// A stack the watchdog sampled on stalled thread `thread`.
struct SampleRecord: Equatable, Sendable {
    var id: Int64
    var thread: UInt32
    var time: Int64
    var stack: UInt32?
    /// 0 unknown, 1 on CPU, 2 + N asleep in syscall N.
    var state: Int64
}

/// Greenthread `gt`, ready at `ready`, resumed at `resumed`, waited `wait` of that because of
/// stall `stall`.
struct VictimRecord: Equatable, Sendable {
    var stall: Int64
    var gt: UInt32
    var ready: Int64
    var resumed: Int64
    var wait: Int64
}

/// A greenthread: what the trace said of it, and its totals over the slices of this record.
struct GreenthreadRecord: Equatable, Sendable {
    var gt: UInt32
    var name: UInt32?
    var spawnStack: UInt32?
    var parent: UInt32?
    var isHub: Bool
    var created: Int64?
    var exited: Int64?
    var slices: Int
    var runNs: Int64
    var readyWaitNs: Int64
    var lastSlice: Int64?
}

/// An OS thread and its totals.
struct ThreadRecord: Equatable, Sendable {
    var tid: UInt32
    var name: UInt32?
    /// Its hub greenthread, when it has one.
    var hub: UInt32?
    var slices: Int
    var busyNs: Int64
    var ioWaitNs: Int64
}

/// The victims of stall `stall`: how many, and the wait they suffered because of it, summed.
struct VictimTotalsRecord: Equatable, Sendable {
    var stall: Int64
    var victims: Int64
    var waitNs: Int64
}

/// An interned string.
struct StringRecord: Equatable, Sendable {
    var id: UInt32
    var value: String
}

/// A stack frame: symbolic (function, file, line) or native (image, address).
struct FrameRecord: Equatable, Sendable {
    var id: UInt32
    var flags: FrameFlags
    var function: UInt32?
    var file: UInt32?
    var line: UInt64?
    var image: UInt32?
    /// Native frames: the address in the process; nil for symbolic frames.
    var address: UInt64?
}

/// A call stack, innermost frame first.
struct StackRecord: Equatable, Sendable {
    var id: UInt32
    var frames: [UInt32]
}

/// A loaded image of a native recording.
struct ImageRecord: Equatable, Sendable {
    var id: UInt32
    var path: UInt32?
    var loadBias: UInt64
    var start: UInt64
    var end: UInt64
    /// The GNU build-id; empty when unknown.
    var buildID: [UInt8]
}
