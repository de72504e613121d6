import NIOCore
import RelayCore
import RelayTestSupport
import RelayWire
import Testing

/// Protocol/relay-v1.md §4.14: after a client's BYE the broker answers the PUBs
/// it has already read (including those still waiting for their commit), then
/// sends BYE, then closes. A producer that ends with BYE gets its last
/// acknowledgements, and those messages are stored.
@Suite("spec §4.14: client BYE", .serialized)
struct ClientByeTests {
    @Test("PUBs pipelined just before BYE in one write are all answered and stored, then BYE, then close")
    func pipelinedPublishesBeforeBye() async throws {
        try await withRelayd { relayd in
            let producer = try await FrameClient.connect(port: relayd.port, pki: relayd.pki)
            try await producer.hello()
            // 300 PUBs: more than one append slice (256) is handed to the store
            // while the rest of the read is still being decoded. The last one is
            // refused (reserved topic) to show refusals are answered too.
            let count = 300
            var buffer = producer.channel.allocator.buffer(capacity: count * 64)
            for i in 1...count {
                let topic = i == count ? "_reserved.x" : "bye.x"
                try buffer.writeFrame(.publish(Publish(publishID: UInt64(i), topic: topic, payload: ByteBuffer(string: "p\(i)"))))
            }
            try buffer.writeFrame(.bye(.normal))
            try await producer.channel.writeAndFlush(buffer)

            let frames = try await producer.framesUntilClosed()
            var acked: [UInt64: UInt64] = [:]  // publish id -> sequence
            var refused: [UInt64] = []
            for frame in frames.dropLast() {
                switch frame {
                case .publishAck(let ack): acked[ack.publishID] = ack.sequence
                case .publishError(let error): refused.append(error.publishID)
                default: Issue.record("unexpected frame before BYE: \(frame)")
                }
            }
            #expect(acked.count == count - 1, "PUBACKs before close: \(acked.count) of \(count - 1); frames: \(frames.count)")
            #expect(refused == [UInt64(count)])
            #expect(frames.last == .bye(.normal), "last frame: \(String(describing: frames.last))")

            // Every acknowledged PUB is stored, in publish order.
            let reader = try await FrameClient.connect(port: relayd.port, pki: relayd.pki)
            try await reader.hello()
            #expect(try await reader.subscribe(1, "bye.x").isAccepted)
            let stored = try await reader.messages(count - 1)
            let ackedSequences = (1..<UInt64(count)).compactMap { acked[$0] }
            #expect(stored.map(\.sequence) == ackedSequences)
            let sentPayloads = (1..<count).map { "p\($0)" }
            #expect(stored.map(payloadString) == sentPayloads)
            await reader.close()
        }
    }

    @Test("a BYE with nothing in flight is answered with BYE, then close")
    func idleBye() async throws {
        try await withRelayd { relayd in
            let client = try await FrameClient.connect(port: relayd.port, pki: relayd.pki)
            try await client.hello()
            try await client.send(.bye(.normal), .ping(token: 9))
            // The PING after BYE is not answered: the client said it sends nothing more.
            #expect(try await client.framesUntilClosed() == [.bye(.normal)])
        }
    }

    /// §4.14 and §4.15: every request read before a client's BYE is answered
    /// before the broker's BYE. relayd ran an ADMIN read just before BYE (a
    /// purge deleted the messages) but closed before its ADMINREPLY, so the
    /// caller never learned the outcome of what it changed.
    @Test("ADMINs pipelined just before BYE are answered before the broker's BYE")
    func adminBeforeBye() async throws {
        let acl = RelaydFixture.allowAll + "\nadmin = [\"read\", \"write\"]\n"
        try await withRelayd(acl: acl) { relayd in
            let client = try await FrameClient.connect(port: relayd.port, pki: relayd.pki)
            try await client.hello()
            _ = try await client.publish("purged.x", count: 2)
            var body = ByteBuffer()
            body.writeString(#"{"filter": "purged.>", "confirm": true}"#)
            try await client.send(.admin(AdminRequest(requestID: 7, operation: "purge", body: body)),
                                  .admin(AdminRequest(requestID: 8, operation: "status")), .bye(.normal))
            let frames = try await client.framesUntilClosed()
            let replies = frames.compactMap { frame -> AdminReply? in
                if case .adminReply(let reply) = frame { return reply }
                return nil
            }
            #expect(replies.map(\.requestID).sorted() == [7, 8], "frames: \(frames)")
            let refusals = replies.filter { $0.code != 0 }.map { "\($0.code) \($0.message)" }
            #expect(refusals.isEmpty)
            let purged = replies.first { $0.requestID == 7 }.map { String(buffer: $0.body) } ?? ""
            #expect(purged.contains("\"messages\":2"), "\(purged)")
            #expect(frames.last == .bye(.normal), "last frame: \(String(describing: frames.last))")
        }
    }
}
