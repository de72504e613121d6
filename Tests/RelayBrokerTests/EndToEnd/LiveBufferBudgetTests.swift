import Foundation
import NIOCore
import RelayCore
import RelayTestSupport
import RelayWire
import Testing

/// `[limits] live_buffer_budget`: the live-buffer bytes of every connection
/// together. Each subscription's buffer was bounded, and each connection's
/// (64 MiB), but not their sum: 10,000 slow connections could hold 64 MiB
/// each. Past the broker's budget a subscription drops its buffer and
/// reads from the store, as past its connection's: nothing is lost.
@Suite("[limits] live_buffer_budget bounds all live buffers together", .serialized)
struct LiveBufferBudgetTests {
    static let budget = 1 << 20
    static let subscribers = 8
    static let count = 2_000
    static let payload = String(repeating: "p", count: 1_000)

    @Test("subscribers that stop reading hold at most the budget; resumed, each gets every message once, in order")
    func slowSubscribersStayWithinTheBudget() async throws {
        let acl = RelaydFixture.allowAll + "\nadmin = [\"read\"]\n"
        try await withRelayd(acl: acl, extra: "[limits]\nlive_buffer_budget = \"1MiB\"\n", durability: "async", metrics: true) { relayd in
            // Half grant one message of credit and no more; half grant plenty
            // but stop reading their socket.
            var clients: [FrameClient] = []
            for index in 0..<Self.subscribers {
                let client = try await FrameClient.connect(port: relayd.port, pki: relayd.pki)
                try await client.hello()
                let starved = index % 2 == 0
                #expect(try await client.subscribe(1, "slow.x", from: .latest, credit: starved ? 1 : 1_000_000).isAccepted)
                if !starved { try await client.pauseReading() }
                clients.append(client)
            }
            let publisher = try await FrameClient.connect(port: relayd.port, pki: relayd.pki)
            try await publisher.hello()
            var sequences: [UInt64] = []
            for batch in 0..<(Self.count / 1_000) {
                let acks = try await publisher.publish("slow.x", count: 1_000, firstID: UInt64(batch * 1_000 + 1)) { _ in Self.payload }
                sequences += acks.map(\.sequence)
            }
            // Every subscriber's loop has taken its deliveries once its PING is answered... for
            // the starved ones; the paused ones are asked through the admin listing.
            let admin = try await FrameClient.connect(port: relayd.port, pki: relayd.pki)
            try await admin.hello()
            let queued = try await Self.bytesQueued(admin)
            #expect(queued <= Self.budget, "bytes queued in live buffers of all connections: \(queued)")
            let gauge = try await relayd.metric("relay_live_buffer_bytes")
            #expect(gauge != nil && gauge! <= Double(Self.budget), "relay_live_buffer_bytes \(String(describing: gauge))")
            #expect(try await relayd.metric("relay_live_buffer_budget_bytes") == Double(Self.budget))
            // Each buffer dropped for the budget is a subscriber switched to reading the store.
            let fallbacks = try await relayd.metric("relay_slow_subscriber_fallbacks_total") ?? 0
            #expect(fallbacks > 0, "relay_slow_subscriber_fallbacks_total \(fallbacks)")

            // Resumed: every message exactly once, in order, on every subscriber.
            for (index, client) in clients.enumerated() {
                if index % 2 == 0 {
                    try await client.send(.credit(Credit(subscriptionID: 1, credit: 1_000_000)))
                } else {
                    try await client.resumeReading()
                }
                let received = try await client.messages(Self.count)
                #expect(received.map(\.sequence) == sequences, "subscriber \(index): \(received.count) messages")
                let intact = received.allSatisfy { payloadString($0) == Self.payload }
                #expect(intact, "subscriber \(index): a payload changed")
            }
            // Every buffer drained: the budget is whole again.
            #expect(try await relayd.metric("relay_live_buffer_bytes") == 0)
        }
    }

    /// The sum of `bytes_queued` over `relayctl connections` (each session's
    /// live-buffer bytes plus its unflushed output).
    static func bytesQueued(_ admin: FrameClient) async throws -> Int {
        try await admin.send(.admin(AdminRequest(requestID: 1, operation: "connections")))
        let reply = try await admin.nextReply { if case .adminReply = $0 { return true }; return false }
        guard case .adminReply(let answer)? = reply, answer.code == 0 else {
            throw BrokerTestError.refused("connections: \(String(describing: reply))")
        }
        let json = try JSONSerialization.jsonObject(with: Data(String(buffer: answer.body).utf8)) as? [String: Any]
        let items = json?["items"] as? [[String: Any]] ?? []
        return items.reduce(0) { $0 + (($1["bytes_queued"] as? Int) ?? 0) }
    }
}
