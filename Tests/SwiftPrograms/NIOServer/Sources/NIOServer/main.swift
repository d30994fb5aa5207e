// A SwiftNIO TCP echo server on loopback whose handler blocks the event loop on the line "block"
// (marked `// BLOCK:nio_usleep`); a client thread sends 30 lines, 10 ms apart. With the argument
// `timed`, the handler is wrapped in UnclogNIO's UnclogTimedHandler. With `global`, SwiftNIO is
// first installed as Swift Concurrency's global executor (it must still succeed under the
// recorder) and a task blocks (`// BLOCK:global_task`) on one of its loops. Prints the blocking
// calls' measured durations.

import Foundation
import NIOCore
import NIOPosix
import UnclogNIO

func monotonicNs() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}

final class Echo: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    var blocked: (UInt64, UInt64)?
    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buf = unwrapInboundIn(data)
        if (buf.getString(at: buf.readerIndex, length: buf.readableBytes) ?? "").contains("block") {
            let t0 = monotonicNs()
            usleep(150_000)  // BLOCK:nio_usleep
            blocked = (t0, monotonicNs())
        }
        context.writeAndFlush(data, promise: nil)
    }
}

let mode = CommandLine.arguments.dropFirst().first ?? ""
let timed = mode == "timed"
if mode == "global" {
    // NIO compare-and-swaps the runtime's global-executor hook expecting it unused.
    print("GLOBAL installed=\(NIOSingletons.unsafeTryInstallSingletonPosixEventLoopGroupAsConcurrencyGlobalExecutor())")
    let done = DispatchSemaphore(value: 0)
    Task.detached {  // detached: off the main actor, whose thread waits below
        let t0 = monotonicNs()
        usleep(120_000)  // BLOCK:global_task
        print("BLOCK global_task \(t0) \(monotonicNs())")
        done.signal()
    }
    done.wait()
}
let echo = Echo()
let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
let server = try ServerBootstrap(group: group)
    .childChannelInitializer { ch in
        ch.eventLoop.makeCompletedFuture {
            if timed {
                try ch.pipeline.syncOperations.addHandler(UnclogTimedHandler(echo, name: "handler Echo"))
            } else {
                try ch.pipeline.syncOperations.addHandler(echo)
            }
        }
    }
    .bind(host: "127.0.0.1", port: 0).wait()
let port = server.localAddress!.port!
let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
var addr = sockaddr_in()
addr.sin_family = sa_family_t(AF_INET)
addr.sin_port = in_port_t(UInt16(port).bigEndian)
addr.sin_addr.s_addr = inet_addr("127.0.0.1")
_ = withUnsafePointer(to: &addr) {
    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
}
var reply = [UInt8](repeating: 0, count: 64)
for i in 0..<30 {
    let line = i == 15 ? "block\n" : "hello \(i)\n"
    _ = line.withCString { write(fd, $0, strlen($0)) }
    _ = read(fd, &reply, 64)
    usleep(10_000)
}
close(fd)
try server.close().wait()
try group.syncShutdownGracefully()
if let (a, b) = echo.blocked { print("BLOCK nio_usleep \(a) \(b)") }
print("done")
