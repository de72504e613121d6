import NIOConcurrencyHelpers
import NIOCore
import RelayCore
import RelayPolicy
import RelayTLS

/// The thread-safe face of a ``SessionHandler``: the router delivers to it
/// from the store's writer thread and the broker re-evaluates it after a
/// reload; every call hops onto the session's event loop.
final class SessionProxy: DeliverySink, SessionControl {
    private let handler: NIOLoopBound<SessionHandler>
    let eventLoop: any EventLoop

    init(handler: SessionHandler, eventLoop: any EventLoop) {
        self.handler = NIOLoopBound(handler, eventLoop: eventLoop)
        self.eventLoop = eventLoop
    }

    /// Deliveries handed to the loop and not yet processed there, at most
    /// ``liveQueueLimit``: the router's queue to one session is bounded
    /// (a client with 1,000 subscriptions that never reads grew relayd by
    /// ~370 MiB through it, wave 14). Counted per batch, not per message.
    private let queued = NIOLockedValueBox(0)
    static let liveQueueLimit = 1 << 18

    var liveRoom: Int { max(0, Self.liveQueueLimit - queued.withLockedValue { $0 }) }

    func deliver(_ batch: [RoutedDelivery], overflowThrough: UInt64?) {
        let count = batch.count
        queued.withLockedValue { $0 += count }
        eventLoop.execute { [handler, queued] in
            handler.value.deliverLive(batch, overflowThrough: overflowThrough)
            queued.withLockedValue { $0 -= count }
        }
    }

    func catchUpWithReload() {
        eventLoop.execute { [handler] in handler.value.catchUpWithReload() }
    }

    func terminate(code: RelayErrorCode, message: String) {
        eventLoop.execute { [handler] in handler.value.terminate(code, message) }
    }

    func shutdown() -> EventLoopFuture<Void> {
        let promise = eventLoop.makePromise(of: Void.self)
        eventLoop.execute { [handler] in handler.value.beginShutdown(promise) }
        return promise.futureResult
    }

    /// Runs `body` on the session's loop (used for commit completions).
    func onLoop(_ body: @escaping @Sendable (SessionHandler) -> Void) {
        eventLoop.execute { [handler] in body(handler.value) }
    }
}
