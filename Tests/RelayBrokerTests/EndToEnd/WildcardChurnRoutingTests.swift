import NIOCore
import RelayCore
import RelayTestSupport
import RelayWire
import Testing

/// The router caches, per published topic, the subscriptions that match it.
/// A SUB or UNSUB must change what the next publish reaches, whatever the
/// cache held: a stale list would deliver to an ended subscription or miss a
/// new one. Wildcard changes drop the cache (SubscriptionTrie: walking it for
/// each change let one client hold the router's lock), so this pins the
/// deliveries themselves against brute-force matching, through real relayd.
@Suite("relayd end to end: wildcard SUB/UNSUB churn routes every publish exactly")
struct WildcardChurnRoutingTests {
    static let filters = ["k.*", "k.a", "k.>", "k.*.x", "k.a.*", "*.b", "k.b.y", "*.*.*", "k.a.x"]
    static let topics = ["k.a", "k.b", "k.a.x", "k.b.y", "k.a.y", "k.c"]
    static let barrier: UInt32 = 1

    @Test("300 random SUBs and UNSUBs between publishes: each message reaches exactly the live subscriptions that match")
    func churnRoutesExactly() async throws {
        try await withRelayd(durability: "async") { relayd in
            let client = try await FrameClient.connect(port: relayd.port, pki: relayd.pki)
            try await client.hello()
            // Matches every topic: its MSG says the router has routed that publish.
            #expect(try await client.subscribe(Self.barrier, "k.>", from: .latest).isAccepted)
            var rng = SeededRandom(seed: 18)
            var live: [UInt32: TopicFilter] = [:]
            var nextID: UInt32 = 2
            var expected: [UInt64: Set<UInt32>] = [:]
            var received: [UInt64: Set<UInt32>] = [:]
            for step in 0..<300 {
                if rng.next() % 3 == 0, let victim = live.keys.sorted().randomElement(using: &rng) {
                    // No answer; the PUB after it on this connection is read after it.
                    try await client.send(.unsubscribe(subscriptionID: victim))
                    live[victim] = nil
                } else {
                    let filter = Self.filters[Int(rng.next() % UInt64(Self.filters.count))]
                    // Ids are never reused, so a late MSG cannot be taken for another subscription's.
                    #expect(try await client.subscribe(nextID, filter, from: .latest).isAccepted, "step \(step)")
                    live[nextID] = try TopicFilter(filter)
                    nextID += 1
                }
                let topic = Self.topics[Int(rng.next() % UInt64(Self.topics.count))]
                let concrete = try Topic(topic)
                let sequence = try #require(try await client.publish(topic, count: 1, firstID: UInt64(step + 1)).first).sequence
                expected[sequence] = Set(live.filter { $0.value.matches(concrete) }.keys).union([Self.barrier])
                // Every MSG of this publish: the barrier's comes in the same
                // routed batch as the others, so read until it.
                while received[sequence]?.contains(Self.barrier) != true {
                    guard let frame = try await client.next() else { throw BrokerTestError.refused("closed at step \(step)") }
                    if case .message(let message) = frame {
                        received[message.sequence, default: []].insert(message.subscriptionID)
                    }
                }
            }
            // One more publish, routed after all the others: any late MSG of theirs is in by its barrier.
            let last = try #require(try await client.publish("k.a", count: 1, firstID: 10_000).first).sequence
            while received[last]?.contains(Self.barrier) != true {
                guard let frame = try await client.next() else { throw BrokerTestError.refused("closed at the end") }
                if case .message(let message) = frame { received[message.sequence, default: []].insert(message.subscriptionID) }
            }
            received[last] = nil
            #expect(expected.count == 300)
            for sequence in expected.keys.sorted() where received[sequence] != expected[sequence] {
                Issue.record("sequence \(sequence): delivered to \(received[sequence]?.sorted() ?? []), expected \(expected[sequence]?.sorted() ?? [])")
            }
            #expect(Set(received.keys) == Set(expected.keys))
            await client.close()
        }
    }
}
