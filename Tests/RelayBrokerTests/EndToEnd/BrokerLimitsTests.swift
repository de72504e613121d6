import NIOCore
import RelayCore
import RelayTestSupport
import RelayWire
import Testing

/// `[limits]` (docs/configuration.md) enforced by a real relayd, each with
/// the code Protocol/relay-v1.md §6 documents for it. Every test sets a
/// small limit, shows that the limit itself is allowed, and that one more is
/// refused with exactly that code while the connection stays usable.
@Suite("relayd end to end: broker-side limits", .serialized)
struct BrokerLimitsTests {
    @Test("max_payload: a payload of exactly max_payload is stored, one byte more is PUBERR payload_too_large, and the connection stays")
    func maxPayload() async throws {
        try await withRelayd(extra: "[limits]\nmax_payload = \"2KiB\"") { relayd in
            let client = try await FrameClient.connect(port: relayd.port, pki: relayd.pki)
            let welcome = try await client.hello()
            #expect(welcome.maxPayload == 2048)

            let atLimit = try await reply(client, Publish(publishID: 1, topic: "limits.payload", payload: bytes(2048)))
            #expect(ack(atLimit) != nil, "a 2,048-byte payload was refused: \(String(describing: atLimit))")
            let over = try await reply(client, Publish(publishID: 2, topic: "limits.payload", payload: bytes(2049)))
            #expect(refusal(over) == .payloadTooLarge, "\(String(describing: over))")
            try await expectStillServes(client, id: 3, topic: "limits.payload")
            try await expectStored(relayd, topic: "limits.payload", count: 2)  // ids 1 and 3, not 2
            await client.close()
        }
    }

    @Test("max_headers: max_headers headers are stored, one more is PUBERR invalid_headers, and the connection stays")
    func maxHeaders() async throws {
        try await withRelayd(extra: "[limits]\nmax_headers = 2") { relayd in
            let client = try await FrameClient.connect(port: relayd.port, pki: relayd.pki)
            let welcome = try await client.hello()
            #expect(welcome.maxHeaders == 2)

            let two: Headers = [("a", "1"), ("b", "2")]
            let three: Headers = [("a", "1"), ("b", "2"), ("c", "3")]
            let atLimit = try await reply(client, Publish(publishID: 1, topic: "limits.headers", headers: two, payload: bytes(1)))
            #expect(ack(atLimit) != nil, "two headers were refused: \(String(describing: atLimit))")
            let over = try await reply(client, Publish(publishID: 2, topic: "limits.headers", headers: three, payload: bytes(1)))
            #expect(refusal(over) == .invalidHeaders, "\(String(describing: over))")
            try await expectStillServes(client, id: 3, topic: "limits.headers")
            try await expectStored(relayd, topic: "limits.headers", count: 2)
            await client.close()
        }
    }

    @Test("max_subscriptions: the limit's worth of subscriptions open, one more gets SUBACK too_many_subscriptions; after an UNSUB a new one opens")
    func maxSubscriptions() async throws {
        try await withRelayd(extra: "[limits]\nmax_subscriptions = 3") { relayd in
            let client = try await FrameClient.connect(port: relayd.port, pki: relayd.pki)
            let welcome = try await client.hello()
            #expect(welcome.maxSubscriptions == 3)

            for id: UInt32 in 1...3 {
                let ack = try await client.subscribe(id, "limits.sub.\(id)")
                #expect(ack.isAccepted, "subscription \(id) of 3 refused: \(ack.message)")
            }
            let fourth = try await client.subscribe(4, "limits.sub.4")
            #expect(fourth.errorCode == .tooManySubscriptions, "the 4th subscription got code \(fourth.code): \(fourth.message)")
            // The refused subscription delivers nothing: publish to its topic and to an open one.
            let publisher = try await FrameClient.connect(port: relayd.port, pki: relayd.pki)
            try await publisher.hello()
            _ = try await publisher.publish("limits.sub.4", count: 1)
            _ = try await publisher.publish("limits.sub.1", count: 1, firstID: 2)
            let delivered = try await client.messages(1)
            #expect(delivered.map(\.topic) == ["limits.sub.1"])

            // The limit counts open subscriptions: closing one makes room.
            // UNSUB has no answer: a PING round trip after it shows relayd read it.
            try await client.send(.unsubscribe(subscriptionID: 2), .ping(token: 9))
            let pong = try await client.nextReply { if case .pong(token: 9) = $0 { return true }; return false }
            #expect(pong != nil)
            #expect(try await client.subscribe(5, "limits.sub.5").isAccepted)
            #expect(try await client.subscribe(6, "limits.sub.6").errorCode == .tooManySubscriptions)
            await client.close()
            await publisher.close()
        }
    }

    @Test("max_in_flight: PUBs beyond max_in_flight unanswered ones are answered PUBERR too_many_in_flight and not stored; the connection stays")
    func maxInFlight() async throws {
        try await withRelayd(extra: "[limits]\nmax_in_flight = 4") { relayd in
            let client = try await FrameClient.connect(port: relayd.port, pki: relayd.pki)
            let welcome = try await client.hello()
            #expect(welcome.maxInFlight == 4)

            // Ten PUBs in one write (one TLS record, so relayd decodes them in
            // one read, before any commit can answer the first four).
            var buffer = client.channel.allocator.buffer(capacity: 1024)
            for id: UInt64 in 1...10 {
                try buffer.writeFrame(.publish(Publish(publishID: id, topic: "limits.flight", payload: bytes(8))))
            }
            try await client.channel.writeAndFlush(buffer)
            var acked: [UInt64] = [], refused: [UInt64: RelayErrorCode?] = [:]
            while acked.count + refused.count < 10 {
                switch try await client.next() {
                case .publishAck(let ack): acked.append(ack.publishID)
                case .publishError(let error): refused[error.publishID] = error.errorCode
                case let other: throw BrokerTestError.refused("unexpected \(String(describing: other))")
                }
            }
            #expect(acked.sorted() == [1, 2, 3, 4], "acknowledged: \(acked.sorted())")
            #expect(refused.keys.sorted() == Array(5...10), "refused: \(refused.keys.sorted())")
            let allTooMany = refused.values.allSatisfy { $0 == .tooManyInFlight }
            let codes = refused.values.map { String(describing: $0) }
            #expect(allTooMany, "codes: \(codes)")
            try await expectStillServes(client, id: 11, topic: "limits.flight")
            try await expectStored(relayd, topic: "limits.flight", count: 5)  // 1-4 and 11
            await client.close()
        }
    }

    @Test("max_connections: with the limit's worth of sessions open another connection is refused after its handshake with ERR too_many_connections, counted; a freed slot admits one again")
    func maxConnections() async throws {
        try await withRelayd(extra: "[limits]\nmax_connections = 2", metrics: true) { relayd in
            let sample = "relay_refusals_total{code=\"too_many_connections\"}"
            #expect(try await relayd.metric(sample) ?? 0 == 0)
            let first = try await FrameClient.connect(port: relayd.port, pki: relayd.pki)
            try await first.hello()
            let second = try await FrameClient.connect(port: relayd.port, pki: relayd.pki)
            try await second.hello()

            // The third gets no session: max_connections counts authenticated
            // sessions, so relayd completes the handshake (the connection held a
            // pre-auth slot until then) and answers with ERR too_many_connections.
            let third = try await FrameClient.connect(port: relayd.port, pki: relayd.pki)
            do {
                let welcome = try await third.hello()
                Issue.record("a third connection got a session past max_connections = 2: \(welcome.principal)")
            } catch FrameClientError.refused(let error) {
                #expect(error.errorCode == .tooManyConnections, "refused with \(error.code): \(error.message)")
            } catch {
                Issue.record("the third connection ended without ERR too_many_connections: \(error)")
            }
            let sampled = try await relayd.waitForMetric(sample) { $0 >= 1 }
            #expect(sampled == 1)
            await third.close()
            // The refused connection never had a session: the open-connection gauge still counts two.
            let openAfterRefusal = try await relayd.metric("relay_connections_open")
            #expect(openAfterRefusal == 2, "relay_connections_open is \(String(describing: openAfterRefusal)) with two sessions open")

            // The two sessions keep working, and a freed slot admits a new one.
            try await expectStillServes(second, id: 1, topic: "limits.connections")
            await first.close()
            // relayd frees the slot when it sees the close: wait for its gauge to say so.
            let openAfterClose = try await relayd.waitForMetric("relay_connections_open") { $0 == 1 }
            #expect(openAfterClose == 1, "relay_connections_open is \(String(describing: openAfterClose)) with one session open")
            let replacement = try await FrameClient.connect(port: relayd.port, pki: relayd.pki)
            try await replacement.hello()
            try await expectStillServes(replacement, id: 1, topic: "limits.connections")
            #expect(try await relayd.metric(sample) == 1)
            await second.close()
            await replacement.close()
        }
    }

    // MARK: Helpers

    private func bytes(_ count: Int) -> ByteBuffer { ByteBuffer(repeating: UInt8(ascii: "x"), count: count) }

    /// Sends one PUB and returns its PUBACK or PUBERR.
    private func reply(_ client: FrameClient, _ publish: Publish) async throws -> Frame? {
        try await client.send(.publish(publish))
        return try await client.nextReply { frame in
            switch frame {
            case .publishAck(let ack): return ack.publishID == publish.publishID
            case .publishError(let error): return error.publishID == publish.publishID
            case .error: return true
            default: return false
            }
        }
    }

    private func ack(_ frame: Frame?) -> PublishAck? {
        if case .publishAck(let ack) = frame { return ack }
        return nil
    }

    private func refusal(_ frame: Frame?) -> RelayErrorCode? {
        if case .publishError(let error) = frame { return error.errorCode }
        return nil
    }

    /// A refusal is per operation: the same connection still publishes and answers PING.
    private func expectStillServes(_ client: FrameClient, id: UInt64, topic: String) async throws {
        #expect(ack(try await client.publishReply(id, topic)) != nil, "the connection no longer publishes")
        try await client.send(.ping(token: id))
        #expect(try await client.nextReply { if case .pong(token: id) = $0 { return true }; return false } != nil)
    }

    /// Reads `topic` from the start: exactly `count` messages are stored.
    private func expectStored(_ relayd: RelaydFixture, topic: String, count: Int) async throws {
        let reader = try await FrameClient.connect(port: relayd.port, pki: relayd.pki)
        try await reader.hello()
        #expect(try await reader.subscribe(1, topic, from: .earliest).isAccepted)
        let stored = try await reader.messages(count)
        #expect(try await reader.expectSilence(), "more than \(count) messages are stored")
        #expect(stored.count == count)
        await reader.close()
    }
}
