// An event loop like SwiftNIO's, without NIO, for unclog's recorder tests: a thread named
// `NIO-ELT-0-#0` waits in epoll_wait on a pipe; a writer sends 40 messages, 10 ms apart; the
// handler of message 20 blocks the loop (usleep, marked `// BLOCK:loop_usleep`); messages from 30
// on are handled in a recorder span named "handler Echo", and message 35 blocks inside it. The writer
// waits for message 20's handler to end before it goes on (an acknowledgement pipe): otherwise, when
// the block outlasts the writer's 15 pauses, the loop drains messages 21-35 in the same iteration and
// the two blocks share one stall. Prints the blocking calls' measured durations and how many
// messages the loop handled. Built with
// `swiftc -g -import-objc-header EventLoop.h EventLoop.swift`.

import Foundation

#if canImport(Glibc)
    import Glibc
#endif

func monotonicNs() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}

// The recorder's span functions (what UnclogNIO's UnclogTimedHandler uses), when preloaded.
typealias SpanBegin = @convention(c) (UnsafePointer<CChar>) -> UInt32
typealias SpanEnd = @convention(c) (UInt32) -> Void
let spanBegin = dlsym(nil, "unclog_span_begin").map { unsafeBitCast($0, to: SpanBegin.self) }
let spanEnd = dlsym(nil, "unclog_span_end").map { unsafeBitCast($0, to: SpanEnd.self) }

final class Box: @unchecked Sendable {
    var blocked: (UInt64, UInt64)? = nil; var spanBlocked: (UInt64, UInt64)? = nil; var handled = 0
}

func handle(_ message: UInt8, _ box: Box) {
    if message == 35 {
        let t0 = monotonicNs()
        usleep(120_000)  // BLOCK:span_usleep
        box.spanBlocked = (t0, monotonicNs())
    }
    if message == 20 {
        let t0 = monotonicNs()
        usleep(150_000)  // BLOCK:loop_usleep
        box.blocked = (t0, monotonicNs())
    }
    box.handled += 1
}

var fds: [Int32] = [0, 0]
_ = pipe(&fds)
let readFD = fds[0], writeFD = fds[1]
var ackFDs: [Int32] = [0, 0]
_ = pipe(&ackFDs)
let ackReadFD = ackFDs[0], ackWriteFD = ackFDs[1]
let box = Box()
var thread = pthread_t()
let started = pthread_create(
    &thread, nil,
    { _ in
        pthread_setname_np(pthread_self(), "NIO-ELT-0-#0")
        let ep = epoll_create1(0)
        var ev = epoll_event()
        ev.events = UInt32(EPOLLIN.rawValue)
        ev.data.fd = readFD
        _ = epoll_ctl(ep, EPOLL_CTL_ADD, readFD, &ev)
        var events = [epoll_event](repeating: epoll_event(), count: 8)
        var done = false
        while !done {
            let n = epoll_wait(ep, &events, 8, 1000)
            if n <= 0 { continue }
            var byte: UInt8 = 0
            while read(readFD, &byte, 1) == 1 {
                if byte == 255 { done = true; break }
                // Messages from 30 on are handled inside a span ("handler Echo"), like UnclogTimedHandler.
                let token = byte >= 30 ? spanBegin?("handler Echo") ?? 0 : 0
                handle(byte, box)
                if token != 0 { spanEnd?(token) }
                if byte == 20 {
                    var one: UInt8 = 1
                    _ = write(ackWriteFD, &one, 1)
                }
                var more = pollfd(fd: readFD, events: Int16(POLLIN), revents: 0)
                if poll(&more, 1, 0) <= 0 { break }
            }
        }
        return nil
    }, nil)
precondition(started == 0)
for i in 1...40 {
    var b = UInt8(i)
    _ = write(writeFD, &b, 1)
    if i == 20 { _ = read(ackReadFD, &b, 1) }  // message 20's handler has ended
    usleep(10_000)
}
var end: UInt8 = 255
_ = write(writeFD, &end, 1)
pthread_join(thread, nil)
if let (a, b) = box.blocked { print("BLOCK loop_usleep \(a) \(b)") }
if let (a, b) = box.spanBlocked { print("BLOCK span_usleep \(a) \(b)") }
print("handled \(box.handled)")
