import RelayTestSupport
import Testing

/// Live fan-out keeps commit order with small and large commits mixed, from
/// two publishers at once: a guard for any change to how committed batches
/// reach the subscribers' loops (docs/performance-history.md "Low-load tail (wave 8)"
/// tried routing small commits on the store's writer thread; reverted).
@Suite("relayd end to end: fan-out in commit order", .serialized)
struct FanOutCommitOrderTests {
    @Test("three live subscribers see every message of two publishers once, in one ascending order, small and large commits mixed")
    func subscribersShareCommitOrder() async throws {
        try await withRelayd { relayd in
            var subscribers: [FrameClient] = []
            for _ in 0..<3 {
                let subscriber = try await FrameClient.connect(port: relayd.port, pki: relayd.pki)
                try await subscriber.hello()
                let ack = try await subscriber.subscribe(1, "fan.>", from: .latest)
                #expect(ack.isAccepted)
                subscribers.append(subscriber)
            }
            let single = try await FrameClient.connect(port: relayd.port, pki: relayd.pki)
            try await single.hello()
            let burst = try await FrameClient.connect(port: relayd.port, pki: relayd.pki)
            try await burst.hello()
            // One publisher sends one message at a time (commits of one or two
            // messages), the other bursts of 300 (commits of many), at the same
            // time, so small and large batches interleave on the way to the router.
            @Sendable func sendSingles() async throws -> [UInt64] {
                var sequences: [UInt64] = []
                for i in 0..<60 { sequences += try await single.publish("fan.a", count: 1, firstID: UInt64(i + 1)).map(\.sequence) }
                return sequences
            }
            @Sendable func sendBursts() async throws -> [UInt64] {
                var sequences: [UInt64] = []
                for round in 0..<3 { sequences += try await burst.publish("fan.b", count: 300, firstID: UInt64(round * 300 + 1)).map(\.sequence) }
                return sequences
            }
            async let singles = sendSingles()
            async let bursts = sendBursts()
            let acked = try await (singles + bursts).sorted()
            #expect(acked.count == 960)
            #expect(Set(acked).count == 960)
            for (index, subscriber) in subscribers.enumerated() {
                let received = try await subscriber.messages(acked.count).map(\.sequence)
                #expect(received == acked, "subscriber \(index) did not get the committed sequences once each in ascending order")
                #expect(try await subscriber.expectSilence())
                await subscriber.close()
            }
            await single.close(); await burst.close()
        }
    }
}
