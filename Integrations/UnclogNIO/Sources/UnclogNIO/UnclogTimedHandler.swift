// Per-handler attribution on SwiftNIO event loops. `unclog record` (LD_PRELOAD) records each
// event-loop iteration as one slice; wrapping a handler in `UnclogTimedHandler` makes each of its
// inbound events (channelRead, channelActive, errorCaught, …) a slice of its own, named after the
// handler, so a stall inside it is charged to that handler (with the stack sampled as usual).
//
//     try channel.pipeline.syncOperations.addHandler(UnclogTimedHandler(MyHandler()))
//
// Without the recorder (or in a program recorded through the UnclogRecorder library, which does not
// watch event loops) the wrapper only forwards: two pointer checks per event.

import NIOCore

#if canImport(Glibc)
    import Glibc
#endif

/// The recorder's span functions, found at run time in the preloaded libUnclogPreload.so.
enum UnclogSpans {
    typealias Begin = @convention(c) (UnsafePointer<CChar>) -> UInt32
    typealias End = @convention(c) (UInt32) -> Void
    static let functions: (begin: Begin, end: End)? = {
        guard let b = dlsym(nil, "unclog_span_begin"), let e = dlsym(nil, "unclog_span_end") else { return nil }
        return (unsafeBitCast(b, to: Begin.self), unsafeBitCast(e, to: End.self))
    }()
}

/// Wraps an inbound handler and times each event it handles as a span named `name` (default: the
/// handler's type name).
public final class UnclogTimedHandler<Wrapped: ChannelInboundHandler>: ChannelInboundHandler {
    public typealias InboundIn = Wrapped.InboundIn
    public typealias InboundOut = Wrapped.InboundOut

    public let wrapped: Wrapped
    private let name: [CChar]

    public init(_ wrapped: Wrapped, name: String? = nil) {
        self.wrapped = wrapped
        self.name = Array((name ?? "handler \(Wrapped.self)").utf8CString)
    }

    @inline(__always)
    private func timed(_ body: () -> Void) {
        guard let f = UnclogSpans.functions else { return body() }
        let token = name.withUnsafeBufferPointer { f.begin($0.baseAddress!) }
        body()
        f.end(token)
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        timed { wrapped.channelRead(context: context, data: data) }
    }
    public func channelReadComplete(context: ChannelHandlerContext) {
        timed { wrapped.channelReadComplete(context: context) }
    }
    public func channelActive(context: ChannelHandlerContext) {
        timed { wrapped.channelActive(context: context) }
    }
    public func channelInactive(context: ChannelHandlerContext) {
        timed { wrapped.channelInactive(context: context) }
    }
    public func channelRegistered(context: ChannelHandlerContext) {
        timed { wrapped.channelRegistered(context: context) }
    }
    public func channelUnregistered(context: ChannelHandlerContext) {
        timed { wrapped.channelUnregistered(context: context) }
    }
    public func channelWritabilityChanged(context: ChannelHandlerContext) {
        timed { wrapped.channelWritabilityChanged(context: context) }
    }
    public func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        timed { wrapped.userInboundEventTriggered(context: context, event: event) }
    }
    public func errorCaught(context: ChannelHandlerContext, error: Error) {
        timed { wrapped.errorCaught(context: context, error: error) }
    }
    public func handlerAdded(context: ChannelHandlerContext) { wrapped.handlerAdded(context: context) }
    public func handlerRemoved(context: ChannelHandlerContext) { wrapped.handlerRemoved(context: context) }
}
