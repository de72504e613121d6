import NIOCore
import RelayCore
import RelayTestSupport
import RelayWire
import Testing

/// What Protocol/relay-v1.md §4.6, §4.7 and §4.10 say about SUB, SUBACK and
/// ACK where the spec used to leave a client author guessing (issue #16):
/// each test pins what relayd does, so the spec's text is checked.
@Suite("relayd end to end: SUB check order, SUBACK first_sequence, ACK bounds (relay-v1 §4.6, §4.7, §4.10)", .serialized)
struct SubscribeSemanticsTests {
    @Test("SUB checks run in order: duplicate id, too many subscriptions, filter, start position and durable name, policy, durable in use")
    func subscribeCheckOrder() async throws {
        let acl = """
        [[acl.rule]]
        name = "a-and-c"
        publish = [">"]
        subscribe = ["a.>", "c"]
        """
        let relayd = try RelaydFixture(acl: acl, extra: "[limits]\nmax_subscriptions = 2")
        defer { Task { await relayd.stop() } }
        try await relayd.start()
        let client = try await FrameClient.connect(port: relayd.port, pki: relayd.pki)
        try await client.hello()
        #expect(try await client.subscribe(1, "a.b", from: .latest).isAccepted)
        // An open id with a bad filter: the id is checked first.
        #expect(try await client.subscribe(1, "a.>.b", from: .latest).errorCode == .duplicateSubscriptionID)
        #expect(try await client.subscribe(2, "c", from: .latest).isAccepted)
        // At max_subscriptions: a bad filter and a forbidden one are refused for the limit first.
        #expect(try await client.subscribe(3, "a.>.b", from: .latest).errorCode == .tooManySubscriptions)
        #expect(try await client.subscribe(3, "z", from: .latest).errorCode == .tooManySubscriptions)
        try await client.send(.unsubscribe(subscriptionID: 2))
        // The filter before the start position and the durable name.
        #expect(try await client.subscribe(3, "a.>.b", from: .sequence(0), durable: "bad name").errorCode == .invalidFilter)
        // Start position and durable name before the policy.
        #expect(try await client.subscribe(3, "z", from: .sequence(0)).errorCode == .invalidStartPosition)
        #expect(try await client.subscribe(3, "z", from: .latest, durable: "bad name").errorCode == .invalidStartPosition)
        // The policy before durable_in_use: "d" is attached to another connection of the same workload.
        let other = try await FrameClient.connect(port: relayd.port, pki: relayd.pki)
        try await other.hello()
        #expect(try await other.subscribe(1, "a.x", from: .latest, durable: "d").isAccepted)
        #expect(try await client.subscribe(3, "z", from: .latest, durable: "d").errorCode == .notAuthorized)
        #expect(try await client.subscribe(3, "a.y", from: .latest, durable: "d").errorCode == .durableInUse)
        // None of the refusals opened anything: one more subscription still fits under the limit of 2.
        #expect(try await client.subscribe(3, "a.y", from: .latest).isAccepted)
        await other.close()
        await client.close()
    }

    @Test("SUBACK first_sequence per start kind: latest, earliest, sequence (also beyond the end), time, last N")
    func firstSequencePerStartKind() async throws {
        let relayd = try RelaydFixture()
        defer { Task { await relayd.stop() } }
        try await relayd.start()
        let client = try await FrameClient.connect(port: relayd.port, pki: relayd.pki)
        try await client.hello()
        let a = try await client.publish("t.a", count: 3)  // 1...3
        let b = try await client.publish("t.b", count: 2)  // 4...5, a later commit
        #expect(a.map(\.sequence) == [1, 2, 3] && b.map(\.sequence) == [4, 5])

        /// Subscribes, returns first_sequence and the sequences delivered (`expect` of them), then unsubscribes.
        func probe(_ filter: String, _ start: StartPosition, expect count: Int) async throws -> (UInt64, [UInt64]) {
            let ack = try await client.subscribe(9, filter, from: start)
            #expect(ack.isAccepted, "\(start) on \(filter): \(ack.message)")
            let sequences = try await client.messages(count).map(\.sequence)
            try await client.send(.unsubscribe(subscriptionID: 9))
            #expect(try await client.expectSilence(.milliseconds(200)), "\(start) on \(filter) delivered more than \(count)")
            return (ack.firstSequence, sequences)
        }
        // latest: the sequence the log assigns next; nothing is replayed.
        #expect(try await probe("t.b", .latest, expect: 0) == (6, []))
        // earliest: the oldest retained message of the whole log, whatever its topic.
        #expect(try await probe("t.b", .earliest, expect: 2) == (1, [4, 5]))
        // sequence: the value itself, matching or not.
        #expect(try await probe("t.b", .sequence(2), expect: 2) == (2, [4, 5]))
        // time: the first message of the log committed at or after it.
        #expect(try await probe("t.a", .time(b[0].timestamp), expect: 0) == (4, []))
        #expect(try await probe("t.b", .time(1), expect: 2) == (1, [4, 5]))
        // last N: the Nth-last matching message; fewer than N: the oldest match; none: the next sequence.
        #expect(try await probe("t.a", .last(1), expect: 1) == (3, [3]))
        #expect(try await probe("t.a", .last(10), expect: 3) == (1, [1, 2, 3]))
        #expect(try await probe("t.>", .last(3), expect: 3) == (3, [3, 4, 5]))
        #expect(try await probe("none.x", .last(5), expect: 0) == (6, []))
        #expect(try await probe("none.>", .last(5), expect: 0) == (6, []))

        // sequence beyond the end: first_sequence is the value, and messages
        // committed later below it are never delivered (a latest subscription
        // on the same connection shows the message was fanned out).
        let ahead = try await client.subscribe(1, "t.b", from: .sequence(100))
        #expect(ahead.isAccepted && ahead.firstSequence == 100)
        #expect(try await client.subscribe(2, "t.b", from: .latest).firstSequence == 6)
        #expect(try await client.publish("t.b", count: 1, firstID: 10).map(\.sequence) == [6])
        let live = try await client.messages(1)
        #expect(live.map(\.subscriptionID) == [2] && live.map(\.sequence) == [6])
        #expect(try await client.expectSilence(), "a SUB from sequence 100 was sent sequence 6")
        await client.close()
    }

    @Test("a durable resume answers first_sequence = the committed cursor + 1 and ignores the start position; an ACK beyond what was delivered is cut to it, a backward ACK is ignored")
    func durableResumeAndAckBounds() async throws {
        let relayd = try RelaydFixture()
        defer { Task { await relayd.stop() } }
        try await relayd.start()
        let client = try await FrameClient.connect(port: relayd.port, pki: relayd.pki)
        try await client.hello()
        let sequences = try await client.publish("k.a", count: 5).map(\.sequence)
        let ack = try await subscribeCumulative(client, id: 1, "k.a", from: .earliest, credit: 2, durable: "k")
        #expect(ack.isAccepted && ack.firstSequence == 1)
        #expect(try await client.messages(2).map(\.sequence) == Array(sequences.prefix(2)))
        // ACK the fifth message, which was never delivered (no credit): the
        // cursor stops at the second, the last one delivered. Then ACK the
        // first: a cursor never moves back.
        try await client.send(.ack(Ack(subscriptionID: 1, sequence: sequences[4])))
        try await client.acknowledgeDurably(subscriptionID: 1, sequence: sequences[0])
        try await client.send(.unsubscribe(subscriptionID: 1))

        let resumed = try await subscribeRetryingWhileInUse(client, id: 2, "k.a", from: .latest, durable: "k")
        #expect(resumed.firstSequence == sequences[1] + 1, "resumed at \(resumed.firstSequence)")
        #expect(try await client.messages(3).map(\.sequence) == Array(sequences.suffix(3)))
        await client.close()
    }

    @Test("a durable ack_mode 1 subscription writes no cursor until an ACK: a SUB for the name after messages were delivered but none acknowledged starts at its own start position")
    func durableWithoutAckHasNoCursor() async throws {
        let relayd = try RelaydFixture()
        defer { Task { await relayd.stop() } }
        try await relayd.start()
        let client = try await FrameClient.connect(port: relayd.port, pki: relayd.pki)
        try await client.hello()
        let sequences = try await client.publish("n.a", count: 2).map(\.sequence)
        #expect(try await subscribeCumulative(client, id: 1, "n.a", from: .earliest, durable: "n").firstSequence == 1)
        #expect(try await client.messages(2).map(\.sequence) == sequences)
        try await client.send(.unsubscribe(subscriptionID: 1))
        // No cursor: `latest` applies, at the next sequence; nothing is replayed.
        let again = try await subscribeRetryingWhileInUse(client, id: 2, "n.a", from: .latest, durable: "n")
        #expect(again.firstSequence == sequences[1] + 1)
        #expect(try await client.expectSilence(), "a durable SUB without a committed ACK replayed messages")
        await client.close()
    }

    /// SUB with `ack_mode` 1 (the shared `subscribe` helper sends 0); the SUBACK.
    private func subscribeCumulative(_ client: FrameClient, id: UInt32, _ filter: String, from start: StartPosition,
                                     credit: UInt32 = 100_000, durable: String) async throws -> SubscribeAck {
        try await client.send(.subscribe(Subscribe(subscriptionID: id, filter: filter, start: start, durableName: durable,
                                                   initialCredit: credit, ackMode: .cumulative)))
        let reply = try await client.nextReply { frame in
            if case .subscribeAck(let ack) = frame { return ack.subscriptionID == id }
            return false
        }
        guard case .subscribeAck(let ack) = reply else { throw BrokerTestError.refused("no SUBACK for \(id)") }
        return ack
    }

    /// §4.10: a durable name is released only after its last ACK commits,
    /// so a SUB right after UNSUB may still see `durable_in_use`; clients
    /// retry with backoff, and so does this (the SUBACK is the event; the
    /// poll has a deadline of 10 s).
    private func subscribeRetryingWhileInUse(_ client: FrameClient, id: UInt32, _ filter: String, from start: StartPosition,
                                             durable: String) async throws -> SubscribeAck {
        let ack = try await eventuallyValue(timeout: 10, every: 0.02) { () async throws -> SubscribeAck? in
            let ack = try await subscribeCumulative(client, id: id, filter, from: start, durable: durable)
            return ack.errorCode == .durableInUse ? nil : ack
        }
        guard let ack else { throw BrokerTestError.refused("durable \(durable) still in use after 10 s") }
        return ack
    }
}
