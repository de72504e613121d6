import NIOCore
import RelayCore
import RelayTestSupport
import RelayWire
import Testing

/// Helpers for the spec-conformance end-to-end tests (issue #16, "make the
/// broker match the spec"): each waits for a frame, never for time.
extension FrameClient {
    /// HELLO announcing `maxFrameSize` (the helper `hello()` announces 64 MiB).
    @discardableResult
    func hello(maxFrameSize: UInt32) async throws -> Welcome {
        try await send(.hello(Hello(maxFrameSize: maxFrameSize, clientName: "spec-test")))
        guard case .welcome(let welcome) = try await next() else { throw BrokerTestError.refused("no WELCOME") }
        return welcome
    }

    /// SUB with an explicit ack mode; answers with the SUBACK.
    func subscribe(_ id: UInt32, _ filter: String, from start: StartPosition, credit: UInt32,
                   durable: String, ackMode: AckMode) async throws -> SubscribeAck {
        try await send(.subscribe(Subscribe(subscriptionID: id, filter: filter, start: start, durableName: durable,
                                            initialCredit: credit, ackMode: ackMode)))
        let reply = try await nextReply { frame in
            if case .subscribeAck(let ack) = frame { return ack.subscriptionID == id }
            return false
        }
        guard case .subscribeAck(let ack) = reply else { throw BrokerTestError.refused("no SUBACK for \(id)") }
        return ack
    }

    /// SUB for a durable name, retried while it is `durable_in_use`: §4.10 lets
    /// the broker release a name only after its last cursor commit, and tells
    /// clients to retry with backoff. The SUBACK is the event; the poll has a
    /// deadline of 10 s.
    func subscribeDurable(_ id: UInt32, _ filter: String, from start: StartPosition = .earliest, credit: UInt32,
                          durable: String, ackMode: AckMode) async throws -> SubscribeAck {
        let ack = try await eventuallyValue(timeout: 10, every: 0.02) { () async throws -> SubscribeAck? in
            let ack = try await subscribe(id, filter, from: start, credit: credit, durable: durable, ackMode: ackMode)
            return ack.errorCode == .durableInUse ? nil : ack
        }
        guard let ack else { throw BrokerTestError.refused("durable \"\(durable)\" still in use after 10 s") }
        return ack
    }

    /// The next frame that is not a MSG (MSG frames read on the way stay queued).
    func nextNonMessage(timeout: TimeAmount = .seconds(10)) async throws -> Frame? {
        try await nextReply(timeout: timeout) { frame in
            if case .message = frame { return false }
            return true
        }
    }

    /// PING with `token` and waits for its PONG: proves the connection is open
    /// and that every frame sent before the PING was read. Returns the frames
    /// that arrived before the PONG.
    func pingBarrier(_ token: UInt64 = 0x5bec) async throws -> [Frame] {
        try await send(.ping(token: token))
        var before: [Frame] = []
        while true {
            guard let frame = try await next() else { throw BrokerTestError.refused("closed before PONG \(token)") }
            if case .pong(let t) = frame, t == token { return before }
            before.append(frame)
        }
    }

    /// Reads until the connection closes; the frames read on the way. A
    /// timeout here means the broker did not close.
    func framesUntilClosed(timeout: TimeAmount = .seconds(10)) async throws -> [Frame] {
        var frames: [Frame] = []
        while let frame = try await next(timeout: timeout) { frames.append(frame) }
        return frames
    }
}
