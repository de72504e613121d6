import Foundation
import NIOCore
import RelayCore
import RelayTestSupport
import RelayWire
import Testing

@Suite("relayd end to end: a full store", .serialized)
struct FullDiskTests {
    /// 16 KiB payloads fill a 3 MiB store in a couple of hundred publishes.
    static let payload = String(repeating: "f", count: 16 << 10)

    @Test("a full store refuses PUB with storage_full, keeps delivering and keeps what it acked; once retention frees space, publishes succeed again")
    func fullStore() async throws {
        try await withRelayd(extra: """
        [[retention]]
        filter = "fill.>"
        max_age = "4s"
        """, start: false) { relayd in
            // The fixture writes a 1 GiB limit; this test needs a small one.
            try relayd.replaceInConfig("max_size = \"1GiB\"", with: "max_size = \"3MiB\"")
            try await relayd.start()

            // Messages on a topic no retention rule touches: they must survive everything below.
            let keeper = try await FrameClient.connect(port: relayd.port, pki: relayd.pki)
            try await keeper.hello()
            let kept = try await keeper.publish("keep.a", count: 40) { "keep-\($0)-" + String(repeating: "k", count: 1000) }

            let subscriber = try await FrameClient.connect(port: relayd.port, pki: relayd.pki)
            try await subscriber.hello()
            #expect(try await subscriber.subscribe(1, "fill.>", from: .latest, credit: 1_000_000).isAccepted)

            // Fill until the store says storage_full, in rounds of 20, then to the brim one at a time.
            let filler = try await FrameClient.connect(port: relayd.port, pki: relayd.pki)
            try await filler.hello()
            var acked: [UInt64] = []
            var refusal: PublishError?
            var nextID: UInt64 = 1
            for roundSize: UInt64 in [20, 1] {
                refusal = nil
                while refusal == nil, nextID < 5_000 {
                    for outcome in try await publishRound(filler, topic: "fill.x", ids: nextID..<(nextID + roundSize)) {
                        switch outcome {
                        case .acked(let ack): acked.append(ack.sequence)
                        case .refused(let error): refusal = refusal ?? error
                        }
                    }
                    nextID += roundSize
                }
            }
            let full = try #require(refusal, "5,000 publishes of 16 KiB into a 3 MiB store were all accepted")
            #expect(full.errorCode == .storageFull, "refused with \(full.errorCode?.name ?? String(full.code)): \(full.message)")
            #expect(relayd.process?.isRunning == true)
            print("full store: \(acked.count) publishes of 16 KiB accepted before a single one got storage_full (\"\(full.message)\")")

            // The subscriber received every accepted fill message, in order.
            let delivered = try await subscriber.messages(acked.count)
            #expect(delivered.map(\.sequence) == acked.sorted())

            // Everything acknowledged outside the retention rule is readable, with its bytes, from a new connection.
            try await expectReadable(kept, topic: "keep.a", relayd: relayd)
            // The connection that was refused is still usable: PING answers.
            try await filler.send(.ping(token: 7))
            let pong = try await filler.nextReply { if case .pong = $0 { return true }; return false }
            #expect(pong != nil)

            // Retention deletes fill messages once 4 s old (pruning runs every second): publishes succeed again.
            let deadline = Date().addingTimeInterval(40)
            var recovered: PublishAck?
            var attempts = 0
            while recovered == nil, Date() < deadline {
                attempts += 1
                if case .acked(let ack) = try await publishRound(filler, topic: "fill.x", ids: nextID..<(nextID + 1)).first {
                    recovered = ack
                } else {
                    try await Task.sleep(nanoseconds: 250_000_000)
                }
                nextID += 1
            }
            let resumed = try #require(recovered, "publishes were still refused 40 s after the store filled")
            print("full store: publishes succeeded again after \(attempts) attempts (sequence \(resumed.sequence))")
            // And keep succeeding as retention keeps freeing space: ten more go
            // through (a refusal is retried: on a slow machine the store may
            // still be at the brim until the next prune), and the subscriber
            // sees them live.
            var roundAcks: [PublishAck] = []
            var refusedOnTheWay = 0
            let keepGoing = Date().addingTimeInterval(40)
            while roundAcks.count < 10, Date() < keepGoing {
                if case .acked(let ack) = try await publishRound(filler, topic: "fill.x", ids: nextID..<(nextID + 1)).first {
                    roundAcks.append(ack)
                } else {
                    refusedOnTheWay += 1
                    try await Task.sleep(nanoseconds: 250_000_000)
                }
                nextID += 1
            }
            #expect(roundAcks.count == 10, "after recovery only \(roundAcks.count) of 10 were accepted within 40 s")
            print("full store: 10 more accepted after recovery, \(refusedOnTheWay) refusals retried on the way")
            let live = try await subscriber.nextReply { frame in
                if case .message(let m) = frame { return m.sequence == roundAcks.last?.sequence }
                return false
            }
            #expect(live != nil)
            try await expectReadable(kept, topic: "keep.a", relayd: relayd)
            // Space came from retention: the oldest fill messages are gone.
            let reader = try await FrameClient.connect(port: relayd.port, pki: relayd.pki)
            try await reader.hello()
            #expect(try await reader.subscribe(1, "fill.>", from: .earliest).isAccepted)
            let oldest = try #require(try await reader.messages(1).first)
            #expect(oldest.sequence > (acked.min() ?? 0), "retention deleted nothing, yet publishes succeed again")
            await reader.close()
            #expect(relayd.process?.isRunning == true)
            await keeper.close(); await subscriber.close(); await filler.close()
        }
    }

    /// Sends one PUB per id (16 KiB each) in one write and returns each one's PUBACK or PUBERR, in id order.
    private func publishRound(_ client: FrameClient, topic: String, ids: Range<UInt64>) async throws -> [PublishOutcome] {
        var buffer = client.channel.allocator.buffer(capacity: ids.count * (Self.payload.utf8.count + 64))
        for id in ids {
            try buffer.writeFrame(.publish(Publish(publishID: id, topic: topic, payload: ByteBuffer(string: Self.payload))))
        }
        try await client.channel.writeAndFlush(buffer)
        var outcomes: [UInt64: PublishOutcome] = [:]
        while outcomes.count < ids.count {
            let reply = try await client.nextReply(timeout: .seconds(30)) { frame in
                switch frame {
                case .publishAck, .publishError, .error: return true
                default: return false
                }
            }
            switch reply {
            case .publishAck(let ack): outcomes[ack.publishID] = .acked(ack)
            case .publishError(let error): outcomes[error.publishID] = .refused(error)
            case let other: throw BrokerTestError.refused("the connection ended while publishing: \(String(describing: other))")
            }
        }
        return ids.compactMap { outcomes[$0] }
    }

    /// Reads `topic` from the start on a new connection and compares with what was acknowledged.
    private func expectReadable(_ acked: [PublishAck], topic: String, relayd: RelaydFixture) async throws {
        let reader = try await FrameClient.connect(port: relayd.port, pki: relayd.pki)
        try await reader.hello()
        #expect(try await reader.subscribe(1, topic).isAccepted)
        let stored = try await reader.messages(acked.count)
        #expect(stored.map(\.sequence) == acked.map(\.sequence))
        for (index, message) in stored.enumerated() {
            #expect(payloadString(message) == "keep-\(index)-" + String(repeating: "k", count: 1000))
        }
        await reader.close()
    }
}

/// A PUB's answer.
private enum PublishOutcome {
    case acked(PublishAck)
    case refused(PublishError)

    var ack: PublishAck? {
        if case .acked(let ack) = self { return ack }
        return nil
    }
}
