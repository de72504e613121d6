import NIOCore
import RelayCore
import RelayTestSupport
import RelayWire
import Testing

/// Protocol/relay-v1.md §4.8–4.10: CREDIT, UNSUB and ACK for a subscription id
/// that is not open are answered with ERR `unknown_subscription` naming the
/// id. The code is operation-level (§1, §6), so the connection stays open.
@Suite("spec §4.8-4.10: unknown subscription ids", .serialized)
struct UnknownSubscriptionTests {
    @Test("CREDIT, UNSUB and ACK on an id that is not open: ERR unknown_subscription naming it, connection stays")
    func unknownIDsAreReported() async throws {
        try await withRelayd { relayd in
            let client = try await FrameClient.connect(port: relayd.port, pki: relayd.pki)
            try await client.hello()
            // An open subscription, so "not open" is not the same as "no subscription at all".
            #expect(try await client.subscribe(1, "unk.x").isAccepted)

            try await client.send(.credit(Credit(subscriptionID: 5, credit: 10)),
                                  .unsubscribe(subscriptionID: 6),
                                  .ack(Ack(subscriptionID: 7, sequence: 1)))
            let answers = try await client.pingBarrier()
            let errors = answers.compactMap { frame -> ErrorFrame? in
                if case .error(let e) = frame { return e }
                return nil
            }
            #expect(errors.map(\.subscriptionID) == [5, 6, 7], "answers before PONG: \(answers)")
            let allUnknown = errors.allSatisfy { $0.errorCode == .unknownSubscription }
            #expect(allUnknown)

            // An id that was open and is closed now is unknown too.
            try await client.send(.unsubscribe(subscriptionID: 1), .unsubscribe(subscriptionID: 1))
            let second = try await client.pingBarrier(2)
            #expect(second == [.error(ErrorFrame(code: .unknownSubscription, subscriptionID: 1,
                                                  message: Self.message(second)))], "answers: \(second)")
            await client.close()
        }
    }

    @Test("ACK and CREDIT on an open ephemeral subscription get no answer")
    func openIDsAreNotReported() async throws {
        try await withRelayd { relayd in
            let client = try await FrameClient.connect(port: relayd.port, pki: relayd.pki)
            try await client.hello()
            #expect(try await client.subscribe(3, "unk.y", from: .latest).isAccepted)
            try await client.send(.ack(Ack(subscriptionID: 3, sequence: 1)), .credit(Credit(subscriptionID: 3, credit: 1)))
            #expect(try await client.pingBarrier() == [])
            await client.close()
        }
    }

    @Test("id 0 (never open) is unknown too: ERR unknown_subscription with subscription_id 0, and the connection stays")
    func idZeroIsUnknownNotAConnectionError() async throws {
        try await withRelayd { relayd in
            let client = try await FrameClient.connect(port: relayd.port, pki: relayd.pki)
            try await client.hello()
            try await client.send(.credit(Credit(subscriptionID: 0, credit: 1)), .unsubscribe(subscriptionID: 0),
                                  .ack(Ack(subscriptionID: 0, sequence: 1)))
            let answers = try await client.pingBarrier()
            let errors = answers.compactMap { frame -> ErrorFrame? in
                if case .error(let e) = frame { return e }
                return nil
            }
            let allNameZero = errors.allSatisfy { $0.subscriptionID == 0 }
            #expect(errors.count == 3 && allNameZero, "answers: \(answers)")
            let allUnknown = errors.allSatisfy { $0.errorCode == .unknownSubscription }
            #expect(allUnknown, "\(errors)")
            await client.close()
        }
    }

    /// The message of the one ERR in `frames` (the text is the broker's; the test checks code and id).
    static func message(_ frames: [Frame]) -> String {
        for case .error(let e) in frames { return e.message }
        return "(no ERR)"
    }
}
