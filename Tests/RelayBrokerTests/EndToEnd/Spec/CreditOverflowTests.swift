import NIOCore
import RelayCore
import RelayTestSupport
import RelayWire
import Testing

/// Protocol/relay-v1.md §4.9: outstanding credit (granted and not used) above
/// 2^32 − 1 is `credit_overflow` (0x000D), which closes the connection.
@Suite("spec §4.9: credit overflow", .serialized)
struct CreditOverflowTests {
    @Test("credit up to 2^32-1 is accepted; one more is ERR credit_overflow, then close; counted, logged and audited as that code; other sessions stay")
    func overflowCloses() async throws {
        try await withRelayd(metrics: true) { relayd in
            let refusals = #"relay_refusals_total{code="credit_overflow"}"#
            let closed = #"relay_sessions_closed_total{reason="credit_overflow"}"#
            #expect(try await relayd.metric(refusals) == 0, "exported at 0 from the start (operations.md)")
            let bystander = try await FrameClient.connect(port: relayd.port, pki: relayd.pki)
            try await bystander.hello()
            let client = try await FrameClient.connect(port: relayd.port, pki: relayd.pki)
            try await client.hello()
            // Nothing is published on the topic, so no credit is used.
            #expect(try await client.subscribe(1, "co.x", from: .latest, credit: UInt32.max - 1).isAccepted)
            try await client.send(.credit(Credit(subscriptionID: 1, credit: 1)))
            #expect(try await client.pingBarrier() == [], "exactly 2^32-1 outstanding is allowed")

            try await client.send(.credit(Credit(subscriptionID: 1, credit: 1)))
            let frames = try await client.framesUntilClosed()
            guard case .error(let error) = frames.first else {
                Issue.record("expected ERR credit_overflow then close, got \(frames)")
                return
            }
            #expect(error.errorCode == .creditOverflow)
            #expect(error.subscriptionID == 0)
            #expect(frames.count == 1, "nothing after the ERR: \(frames)")

            // docs/operations.md: relay_refusals_total{code} counts the
            // connection-level ERR, relay_sessions_closed_total{reason} and the
            // session_closed audit line name it, and the log's "closing session" line too.
            let counted = try await relayd.waitForMetric(refusals) { $0 >= 1 }
            #expect(counted == 1, "\(refusals) is \(String(describing: counted))")
            let closedCount = try await relayd.waitForMetric(closed) { $0 >= 1 }
            #expect(closedCount == 1, "\(closed) is \(String(describing: closedCount))")
            let audited = try await SessionCloseTests.auditEvent("session_closed", in: relayd)
            #expect(audited["reason"] as? String == "credit_overflow", "session_closed: \(audited)")
            let logged = await relayd.waitForStderr { $0.contains("closing session") }
            #expect(logged?.contains("credit_overflow") == true, "log line: \(logged ?? "none")")
            // Only the offending connection closed.
            #expect(try await bystander.pingBarrier() == [])
            #expect(try await relayd.metric("relay_connections_open") == 1)
            await bystander.close()
        }
    }

    @Test("a large CREDIT on a subscription with zero credit left is an overflow too")
    func overflowInOneGrant() async throws {
        try await withRelayd { relayd in
            let client = try await FrameClient.connect(port: relayd.port, pki: relayd.pki)
            try await client.hello()
            #expect(try await client.subscribe(1, "co.y", from: .latest, credit: 0).isAccepted)
            try await client.send(.credit(Credit(subscriptionID: 1, credit: UInt32.max)))
            #expect(try await client.pingBarrier() == [])
            try await client.send(.credit(Credit(subscriptionID: 1, credit: UInt32.max)))
            let frames = try await client.framesUntilClosed()
            #expect(frames.count == 1)
            guard case .error(let error) = frames.first else {
                Issue.record("expected ERR credit_overflow then close, got \(frames)")
                return
            }
            #expect(error.errorCode == .creditOverflow)
        }
    }
}
