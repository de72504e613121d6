import NIOCore
import RelayCore
import RelayTestSupport
import RelayWire
import Testing

/// Live fan-out encodes each MSG once and shares it across subscriptions,
/// patching only the subscription id; replay writes each MSG straight from
/// the stored record. Either way every subscription must get exactly the
/// frame a fresh encoding of its own fields gives: its id, the sequence and
/// commit time of the PUBACK, the publisher's principal and fingerprint from
/// its WELCOME, the header block and payload byte for byte, the replayed flag.
@Suite("relayd end to end: shared MSG encoding per subscription", .serialized)
struct SharedFrameTests {
    /// (connection, subscription id, filter, durable name): ids far apart,
    /// literal and wildcard filters, durable and not, two on one connection.
    static let plan: [(Int, UInt32, String, String)] = [
        (0, 1, "fan.t", ""),
        (1, 0xFFFF_FFFE, "fan.>", ""),
        (2, 77, "fan.t", "d-two"),
        (3, 5, "fan.*", "d-three"),
        (3, 6, "fan.t", ""),
    ]
    static let count = 200

    @Test("K subscriptions with different ids and durables get byte-correct MSG frames, live and replayed")
    func everySubscriptionGetsItsOwnFrame() async throws {
        try await withRelayd { relayd in
            var connections: [FrameClient] = []
            for _ in 0..<4 {
                let connection = try await FrameClient.connect(port: relayd.port, pki: relayd.pki)
                try await connection.hello()
                connections.append(connection)
            }
            for (index, id, filter, durable) in Self.plan {
                let ack = try await connections[index].subscribe(id, filter, from: .latest, durable: durable)
                #expect(ack.isAccepted, "SUB \(id) \(filter): \(ack.message)")
            }
            let publisher = try await FrameClient.connect(port: relayd.port, pki: relayd.pki)
            let welcome = try await publisher.hello()
            let sent = try Self.publishes()
            let acks = try await publisher.publishFrames(sent)
            #expect(acks.count == sent.count)

            let expected = { (id: UInt32, replayed: Bool) -> [Frame] in
                zip(sent, acks).map { publish, ack in
                    .message(Message(subscriptionID: id, sequence: ack.sequence, timestamp: ack.timestamp, topic: publish.topic,
                                     publisherPrincipal: welcome.principal, publisherFingerprint: welcome.fingerprint,
                                     headers: publish.headers, payload: publish.payload, replayed: replayed))
                }
            }
            // Live: each subscription gets all of them, in order, with its own id.
            try await Self.check(connections, plan: Self.plan, expected: expected, replayed: false)

            // Replay from the store: new subscriptions (new ids, new durable names) from the earliest.
            let replayPlan = Self.plan.map { ($0.0, $0.1 &+ 1_000, $0.2, $0.3.isEmpty ? "" : "r-\($0.3)") }
            for (index, id, filter, durable) in replayPlan {
                let ack = try await connections[index].subscribe(id, filter, from: .earliest, durable: durable)
                #expect(ack.isAccepted, "SUB \(id) \(filter): \(ack.message)")
            }
            try await Self.check(connections, plan: replayPlan, expected: expected, replayed: true)
            await publisher.close()
            for connection in connections { await connection.close() }
        }
    }

    /// Payloads of 1 to ~3,000 bytes (together several 64 KiB store reads
    /// and flushes), a header block on every third.
    static func publishes() throws -> [Publish] {
        let headers = try Headers([HeaderField(key: "k", value: "v1"), HeaderField(key: "trace", value: String(repeating: "x", count: 300)),
                                   HeaderField(key: "k", value: "")])
        return (0..<count).map { i in
            var payload = ByteBuffer()
            payload.writeRepeatingByte(UInt8(truncatingIfNeeded: i), count: 1 + (i * 37) % 3_000)
            return Publish(publishID: UInt64(i + 1), topic: "fan.t", headers: i % 3 == 0 ? headers : .empty, payload: payload)
        }
    }

    /// Receives every subscription's messages per connection and compares
    /// them, frame for frame and encoded byte for byte, with `expected`.
    static func check(_ connections: [FrameClient], plan: [(Int, UInt32, String, String)],
                      expected: (UInt32, Bool) -> [Frame], replayed: Bool) async throws {
        for index in connections.indices {
            let ids = plan.filter { $0.0 == index }.map(\.1)
            let received = try await connections[index].messages(ids.count * count)
            for id in ids {
                let mine = received.filter { $0.subscriptionID == id }.map { Frame.message($0) }
                let wanted = expected(id, replayed)
                #expect(mine.count == wanted.count, "subscription \(id): \(mine.count) of \(wanted.count) messages")
                #expect(mine == wanted, "subscription \(id) (replayed \(replayed)): the frames differ")
                let mineBytes = try mine.map { Array(buffer: try $0.encoded()) }
                let wantedBytes = try wanted.map { Array(buffer: try $0.encoded()) }
                #expect(mineBytes == wantedBytes, "subscription \(id) (replayed \(replayed)): the encoded bytes differ")
            }
        }
    }
}

extension FrameClient {
    /// Publishes `frames` pipelined in one write and returns their PUBACKs in publish-id order.
    func publishFrames(_ frames: [Publish]) async throws -> [PublishAck] {
        var buffer = channel.allocator.buffer(capacity: frames.count * 256)
        for frame in frames { try buffer.writeFrame(.publish(frame)) }
        try await channel.writeAndFlush(buffer)
        var acks: [PublishAck] = []
        while acks.count < frames.count {
            guard case .publishAck(let ack) = try await nextReply(where: { _ in true }) else {
                throw BrokerTestError.refused("a PUB was not acknowledged")
            }
            acks.append(ack)
        }
        return acks.sorted { $0.publishID < $1.publishID }
    }
}
