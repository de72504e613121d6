import NIOCore
import RelayCore
import RelayTestSupport
import RelayWire
import Testing

/// Helpers shared by the end-to-end broker tests (real relayd, real TLS, real LMDB).
extension FrameClient {
    /// Publishes `count` messages on `topic` (pipelined in one write) and
    /// returns their PUBACKs in publish-id order.
    func publish(_ topic: String, count: Int, firstID: UInt64 = 1, payload: (Int) -> String = { "m\($0)" }) async throws -> [PublishAck] {
        var buffer = channel.allocator.buffer(capacity: count * 64)
        for i in 0..<count {
            try buffer.writeFrame(.publish(Publish(publishID: firstID + UInt64(i), topic: topic,
                                                   payload: ByteBuffer(string: payload(i)))))
        }
        try await channel.writeAndFlush(buffer)
        var acks: [PublishAck] = []
        while acks.count < count {
            // Deliveries to this connection's own subscriptions may interleave.
            let reply = try await nextReply { frame in
                if case .message = frame { return false }
                return true
            }
            switch reply {
            case .publishAck(let ack): acks.append(ack)
            case .publishError(let error): throw BrokerTestError.refused("PUBERR \(error.errorCode?.name ?? "?"): \(error.message)")
            case let other: throw BrokerTestError.refused("unexpected \(String(describing: other))")
            }
        }
        return acks.sorted { $0.publishID < $1.publishID }
    }

    /// Subscribes and returns the SUBACK. A durable subscription uses ack_mode
    /// cumulative, as RelayClient does: its cursor moves only on ACK (§4.6).
    func subscribe(_ id: UInt32, _ filter: String, from start: StartPosition = .earliest, credit: UInt32 = 100_000,
                   durable: String = "") async throws -> SubscribeAck {
        try await send(.subscribe(Subscribe(subscriptionID: id, filter: filter, start: start, durableName: durable, initialCredit: credit,
                                            ackMode: durable.isEmpty ? .none : .cumulative)))
        return try await subscribeAck(id)
    }

    /// The SUBACK of subscription `id` (accepted or refused); throws when an
    /// ERR or nothing comes instead.
    func subscribeAck(_ id: UInt32) async throws -> SubscribeAck {
        let reply = try await nextReply { frame in
            if case .subscribeAck(let ack) = frame { return ack.subscriptionID == id }
            if case .error = frame { return true }
            return false
        }
        guard case .subscribeAck(let ack) = reply else { throw BrokerTestError.refused("no SUBACK: \(String(describing: reply))") }
        return ack
    }

    /// The next MSG; throws when an ERR or nothing comes instead.
    func nextMessage() async throws -> Message {
        let reply = try await nextReply { frame in
            if case .message = frame { return true }
            if case .error = frame { return true }
            return false
        }
        guard case .message(let message) = reply else { throw BrokerTestError.refused("no MSG: \(String(describing: reply))") }
        return message
    }

    /// Receives exactly `count` MSG frames.
    func messages(_ count: Int, timeout: TimeAmount = .seconds(20)) async throws -> [Message] {
        var out: [Message] = []
        while out.count < count {
            guard let frame = try await next(timeout: timeout) else { throw BrokerTestError.refused("closed after \(out.count) messages") }
            if case .message(let m) = frame { out.append(m) }
        }
        return out
    }

    /// The messages stored under `filter`, oldest first: subscribes from
    /// earliest (subscription `id`), publishes a marker on `markerTopic`
    /// (which `filter` must match) and reads up to it. One subscription
    /// delivers in sequence order, replay first, so the marker comes after
    /// every stored message: the end of the replay is a frame, not a wait.
    /// The marker itself is left out; earlier markers are not.
    func storedMessages(_ filter: String, marker markerTopic: String, id: UInt32 = 1) async throws -> [Message] {
        let ack = try await subscribe(id, filter, from: .earliest)
        guard ack.isAccepted else { throw BrokerTestError.refused("SUB \(filter): \(ack.message)") }
        let marker = "marker \(UInt64.random(in: 0...UInt64.max))"
        _ = try await publish(markerTopic, count: 1, firstID: UInt64.max - 2) { _ in marker }
        var stored: [Message] = []
        while true {
            guard let frame = try await next() else { throw BrokerTestError.refused("closed during the replay of \(filter)") }
            guard case .message(let message) = frame, message.subscriptionID == id else { continue }
            if message.topic == markerTopic && payloadString(message) == marker { return stored }
            stored.append(message)
        }
    }

    /// Asserts nothing arrives within `window`.
    func expectSilence(_ window: TimeAmount = .milliseconds(300)) async throws -> Bool {
        do {
            _ = try await next(timeout: window)
            return false
        } catch FrameClientError.timeout {
            return true
        }
    }
}

enum BrokerTestError: Error { case refused(String) }

func payloadString(_ message: Message) -> String {
    String(buffer: message.payload)
}
