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
        // write_stall_timeout 600 s: the subscribers that stop reading must
        // still be there when resumed, however long a loaded machine takes to
        // get there (the default 30 s closed a stalled reader in AbuseTests once).
        try await withRelayd(acl: acl, extra: "[limits]\nlive_buffer_budget = \"1MiB\"\nwrite_stall_timeout = \"600s\"\n", durability: "async", metrics: true) { relayd in
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
            // The event that the budget was reached: a buffer dropped for it, its
            // subscriber switched to reading the store (2 MB offered to 8 slow
            // subscribers against 1 MiB). Measured after it, so the bound below
            // is checked while the buffers are full, not before routing filled them.
            let fallbacks = await eventuallyValue(timeout: 30) { () -> Double? in
                guard let count = try? await relayd.metric("relay_slow_subscriber_fallbacks_total"), count > 0 else { return nil }
                return count
            }
            #expect(fallbacks != nil, "relay_slow_subscriber_fallbacks_total stayed 0: no buffer was dropped for the budget")
            let admin = try await FrameClient.connect(port: relayd.port, pki: relayd.pki)
            try await admin.hello()
            let queued = try await Self.bytesQueued(admin, sessions: Self.subscribers + 2)
            #expect(queued <= Self.budget, "bytes queued in live buffers of all connections: \(queued)")
            let gauge = try #require(try await relayd.metric("relay_live_buffer_bytes"), "no relay_live_buffer_bytes gauge")
            #expect(gauge <= Double(Self.budget), "relay_live_buffer_bytes \(gauge)")
            #expect(try await relayd.metric("relay_live_buffer_budget_bytes") == Double(Self.budget))

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
    /// live-buffer bytes plus its unflushed output); throws unless the
    /// listing has `sessions` entries, each with its `bytes_queued` (a missing
    /// field must not read as 0 bytes, within any budget).
    static func bytesQueued(_ admin: FrameClient, sessions: Int) async throws -> Int {
        try await admin.send(.admin(AdminRequest(requestID: 1, operation: "connections")))
        let reply = try await admin.nextReply { if case .adminReply = $0 { return true }; return false }
        guard case .adminReply(let answer)? = reply, answer.code == 0 else {
            throw BrokerTestError.refused("connections: \(String(describing: reply))")
        }
        let body = String(buffer: answer.body)
        let json = try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any]
        guard let items = json?["items"] as? [[String: Any]], items.count == sessions else {
            throw BrokerTestError.refused("connections: not \(sessions) sessions: \(body)")
        }
        let queued = items.compactMap { $0["bytes_queued"] as? Int }
        guard queued.count == items.count else { throw BrokerTestError.refused("connections: an entry without bytes_queued: \(body)") }
        return queued.reduce(0, +)
    }
}
