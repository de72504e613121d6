import NIOCore
import RelayCore
import RelayTestSupport
import RelayWire
import Testing

/// A client that runs into `max_subscriptions`, `max_payload` or
/// `max_in_flight` is refused one operation at a time and stays connected,
/// so `relay_refusals_total` (connection-level codes) never sees it, and
/// `relay_publishes_refused_total` has no code. The operator must still be
/// able to tell which limit clients hit.
@Suite("relayd end to end: operation-level refusals are counted by code", .serialized)
struct LimitVisibilityTests {
    @Test("too_many_subscriptions, payload_too_large and unknown_subscription are counted in relay_operation_refusals_total{code}; the limit codes are exported at 0 from the start")
    func operationRefusalsAreCounted() async throws {
        try await withRelayd(extra: "[limits]\nmax_subscriptions = 1\nmax_payload = \"2KiB\"", metrics: true) { relayd in
            let family = "relay_operation_refusals_total"
            for code in ["too_many_subscriptions", "too_many_in_flight", "payload_too_large", "invalid_headers"] {
                #expect(try await relayd.metric("\(family){code=\"\(code)\"}") == 0, "\(code) exported at 0 from the start")
            }
            let client = try await FrameClient.connect(port: relayd.port, pki: relayd.pki)
            try await client.hello()
            #expect(try await client.subscribe(1, "vis.a", from: .latest).isAccepted)
            #expect(try await client.subscribe(2, "vis.b", from: .latest).errorCode == .tooManySubscriptions)
            try await client.send(.publish(Publish(publishID: 1, topic: "vis.a", payload: ByteBuffer(repeating: 0x61, count: 2049))))
            guard case .publishError(let refused) = try await client.nextNonMessage() else { throw BrokerTestError.refused("no PUBERR") }
            #expect(refused.errorCode == .payloadTooLarge)
            try await client.send(.unsubscribe(subscriptionID: 9))
            guard case .error(let unknown) = try await client.nextNonMessage() else { throw BrokerTestError.refused("no ERR") }
            #expect(unknown.errorCode == .unknownSubscription)
            for code in ["too_many_subscriptions", "payload_too_large", "unknown_subscription"] {
                let sample = "\(family){code=\"\(code)\"}"
                let counted = try await relayd.waitForMetric(sample) { $0 >= 1 }
                #expect(counted == 1, "\(sample) is \(String(describing: counted))")
            }
            #expect(try await relayd.metric("relay_publishes_refused_total") == 1)
            await client.close()
        }
    }
}
