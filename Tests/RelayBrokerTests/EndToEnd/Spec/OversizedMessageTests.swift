import NIOCore
import RelayCore
import RelayTestSupport
import RelayWire
import Testing

/// Protocol/relay-v1.md §4.11: a message whose MSG frame would exceed the
/// client's `max_frame_size` ends the subscription with ERR
/// `payload_too_large` naming it, sent at once; a durable cursor moves past
/// that message, so a resume does not end on it again.
@Suite("spec §4.11: MSG above the client's frame limit", .serialized)
struct OversizedMessageTests {
    /// The smallest limit a client may announce (§2); a 2,000-byte payload does not fit.
    static let smallLimit: UInt32 = 1_024
    static let bigPayload = String(repeating: "B", count: 2_000)

    @Test("a live MSG that does not fit: ERR payload_too_large naming the subscription arrives without other traffic")
    func errSentAtOnce() async throws {
        try await withRelayd { relayd in
            let subscriber = try await FrameClient.connect(port: relayd.port, pki: relayd.pki)
            try await subscriber.hello(maxFrameSize: Self.smallLimit)
            #expect(try await subscriber.subscribe(4, "big.live", from: .latest).isAccepted)
            let publisher = try await FrameClient.connect(port: relayd.port, pki: relayd.pki)
            try await publisher.hello()
            let acks = try await publisher.publish("big.live", count: 1) { _ in Self.bigPayload }

            // Nothing else is sent to the subscriber: the ERR must not wait for another write.
            let frame = try await subscriber.next(timeout: .seconds(10))
            guard case .error(let error) = frame else {
                Issue.record("expected ERR payload_too_large, got \(String(describing: frame))")
                return
            }
            #expect(error.errorCode == .payloadTooLarge)
            #expect(error.subscriptionID == 4)
            #expect(error.message.contains("\(acks[0].sequence)"), "the ERR names the message: \(error.message)")
            // An ephemeral subscription has no cursor to move; the text says how to read the message.
            #expect(!error.message.contains("durable"), "\(error.message)")
            #expect(error.message.contains("subscribe from sequence \(acks[0].sequence)"), "\(error.message)")
            // The subscription has ended; the connection has not.
            try await subscriber.send(.credit(Credit(subscriptionID: 4, credit: 1)))
            let after = try await subscriber.pingBarrier()
            let onlyUnknownSubscription = after.count == 1 && { if case .error(let e) = after[0] { return e.errorCode == .unknownSubscription }; return false }()
            #expect(onlyUnknownSubscription, "CREDIT on the ended subscription: \(after)")
            await subscriber.close()
            await publisher.close()
        }
    }

    @Test("a durable cursor moves past a MSG that does not fit: the resume starts after it", arguments: [AckMode.none, .cumulative])
    func durableResumeSkipsIt(ackMode: AckMode) async throws {
        try await withRelayd { relayd in
            let publisher = try await FrameClient.connect(port: relayd.port, pki: relayd.pki)
            try await publisher.hello()
            let acks = try await publisher.publish("big.dur", count: 3) { $0 == 1 ? Self.bigPayload : "small\($0)" }

            var subscriber = try await FrameClient.connect(port: relayd.port, pki: relayd.pki)
            try await subscriber.hello(maxFrameSize: Self.smallLimit)
            #expect(try await subscriber.subscribeDurable(2, "big.dur", credit: 10, durable: "small", ackMode: ackMode).isAccepted)
            let first = try await subscriber.messages(1)
            #expect(first.map(\.sequence) == [acks[0].sequence])
            guard case .error(let error) = try await subscriber.nextNonMessage() else {
                Issue.record("expected ERR payload_too_large")
                return
            }
            #expect(error.errorCode == .payloadTooLarge && error.subscriptionID == 2)
            #expect(error.message.contains("durable 'small' moved past it"), "\(error.message)")
            await subscriber.close()

            // Same limit, same durable name: the resume starts after the oversized message.
            subscriber = try await FrameClient.connect(port: relayd.port, pki: relayd.pki)
            try await subscriber.hello(maxFrameSize: Self.smallLimit)
            let resumed = try await subscriber.subscribeDurable(2, "big.dur", from: .latest, credit: 10, durable: "small", ackMode: ackMode)
            #expect(resumed.firstSequence == acks[2].sequence, "resume at \(resumed.firstSequence), oversized is \(acks[1].sequence)")
            let next = try await subscriber.next()
            guard case .message(let message) = next else {
                Issue.record("expected MSG \(acks[2].sequence) after the resume, got \(String(describing: next))")
                return
            }
            #expect(message.sequence == acks[2].sequence)
            await subscriber.close()
            await publisher.close()
        }
    }
}
