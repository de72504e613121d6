import Foundation
import NIOCore
import RelayCore
import RelayTestSupport
import RelayWire
import Testing

@Suite("relayd end to end: durability, durable subscriptions, shutdown", .serialized)
struct DurabilityTests {
    @Test("every acknowledged message survives SIGKILL of the broker")
    func acksSurviveKill() async throws {
        try await withRelayd { relayd in
            let client = try await FrameClient.connect(port: relayd.port, pki: relayd.pki)
            try await client.hello()
            var acked: [UInt64: String] = [:]
            for round in 0..<5 {
                let acks = try await client.publish("d.k", count: 200, firstID: UInt64(round * 1000)) { "r\(round)-\($0)" }
                for (i, ack) in acks.enumerated() { acked[ack.sequence] = "r\(round)-\(i)" }
            }
            await relayd.kill()
            try await relayd.start()
            let reader = try await FrameClient.connect(port: relayd.port, pki: relayd.pki)
            try await reader.hello()
            #expect(try await reader.subscribe(1, "d.k").isAccepted)
            let stored = try await reader.messages(acked.count)
            for message in stored { #expect(acked[message.sequence] == payloadString(message)) }
            #expect(Set(stored.map(\.sequence)) == Set(acked.keys))
            await reader.close()
        }
    }

    @Test("a durable subscription resumes after the last ACK, across a client reconnect and a broker SIGKILL")
    func durableResume() async throws {
        try await withRelayd { relayd in
            let publisher = try await FrameClient.connect(port: relayd.port, pki: relayd.pki)
            try await publisher.hello()
            let acks = try await publisher.publish("dur.x", count: 30)

            var consumer = try await FrameClient.connect(port: relayd.port, pki: relayd.pki)
            try await consumer.hello()
            #expect(try await consumer.subscribe(7, "dur.x", durable: "worker").isAccepted)
            let firstTen = try await consumer.messages(10)
            // ACK, then a PUB in the same write: its PUBACK says the cursor is committed.
            try await consumer.acknowledgeDurably(subscriptionID: 7, sequence: firstTen[9].sequence, barrierTopic: "dur.barrier")
            await consumer.close()

            // Reconnect: resumes right after the acknowledged message.
            consumer = try await FrameClient.connect(port: relayd.port, pki: relayd.pki)
            try await consumer.hello()
            let resumed = try await consumer.subscribe(7, "dur.x", from: .latest, durable: "worker")
            #expect(resumed.firstSequence == acks[10].sequence)
            let next = try await consumer.messages(5)
            #expect(next.map(\.sequence) == acks[10..<15].map(\.sequence))
            try await consumer.acknowledgeDurably(subscriptionID: 7, sequence: next[4].sequence, barrierTopic: "dur.barrier")

            // Broker crash: the cursor is on disk.
            await relayd.kill()
            try await relayd.start()
            consumer = try await FrameClient.connect(port: relayd.port, pki: relayd.pki)
            try await consumer.hello()
            let afterCrash = try await consumer.subscribe(7, "dur.x", from: .latest, durable: "worker")
            #expect(afterCrash.firstSequence == acks[15].sequence)
            let rest = try await consumer.messages(15)
            #expect(rest.map(\.sequence) == acks[15...].map(\.sequence))
            await consumer.close()
        }
    }

    @Test("a durable name attached to one connection is refused on another")
    func durableInUse() async throws {
        try await withRelayd { relayd in
            let a = try await FrameClient.connect(port: relayd.port, pki: relayd.pki)
            try await a.hello()
            #expect(try await a.subscribe(1, "x", durable: "one").isAccepted)
            let b = try await FrameClient.connect(port: relayd.port, pki: relayd.pki)
            try await b.hello()
            let refused = try await b.subscribe(1, "x", durable: "one")
            #expect(refused.errorCode == .durableInUse)
            await a.close(); await b.close()
        }
    }

    @Test("SIGTERM under load: exit status 0 and no acknowledged message lost")
    func gracefulShutdown() async throws {
        try await withRelayd { relayd in
            let client = try await FrameClient.connect(port: relayd.port, pki: relayd.pki)
            try await client.hello()
            // A publisher that keeps `window` publishes unanswered (below max_in_flight,
            // 4,096, so none is refused): relayd always has work when SIGTERM comes.
            let window = 2_000, refill = 250
            var sent = 0
            func sendMore(_ count: Int) async throws {
                var buffer = client.channel.allocator.buffer(capacity: count * 32)
                for i in sent..<(sent + count) {
                    try buffer.writeFrame(.publish(Publish(publishID: UInt64(i), topic: "g.s", payload: ByteBuffer(string: "p\(i)"))))
                }
                sent += count
                try await client.channel.writeAndFlush(buffer)
            }
            try await sendMore(window)
            var acked: [UInt64: String] = [:]
            var unansweredAtSignal: Int?
            var ackedAfterSignal = 0
            var closedWith: RelayErrorCode?
            while let frame = try? await client.next(timeout: .seconds(20)) {
                switch frame {
                case .publishAck(let ack):
                    acked[ack.sequence] = "p\(ack.publishID)"
                    if unansweredAtSignal != nil { ackedAfterSignal += 1 }
                    // Refill until the signal; after it relayd reads no more, and a full socket would block the write.
                    if unansweredAtSignal == nil, acked.count % refill == 0 { try await sendMore(refill) }
                    if unansweredAtSignal == nil, acked.count >= 4 * window {
                        unansweredAtSignal = sent - acked.count
                        relayd.process?.signal(SIGTERM)
                    }
                case .error(let error): closedWith = error.errorCode
                case .publishError(let refused): Issue.record("publish \(refused.publishID) refused: \(refused.message)")
                default: break
                }
            }
            #expect(closedWith == .serverShuttingDown)
            #expect(await relayd.process?.waitForExit(timeout: 30) == 0)
            // Under load: publishes were on the wire, unanswered, when SIGTERM was sent.
            let unanswered = try #require(unansweredAtSignal, "SIGTERM was never sent: only \(acked.count) PUBACKs")
            #expect(unanswered > 0, "nothing was in flight when SIGTERM was sent")
            try await relayd.start()
            let reader = try await FrameClient.connect(port: relayd.port, pki: relayd.pki)
            try await reader.hello()
            // The stored range first (a subscription from the end says where it is),
            // so a loss shows as messages missing below, not as a read that times out.
            let end = try await reader.subscribe(2, "g.s", from: .latest).firstSequence
            let subscribed = try await reader.subscribe(1, "g.s")
            #expect(subscribed.isAccepted)
            // Everything acknowledged is stored with its bytes (thousands, never none).
            let last = try #require(acked.keys.max())
            let stored = try await reader.messages(Int(min(last + 1, end) - subscribed.firstSequence))
            let payloads = Dictionary(stored.map { ($0.sequence, payloadString($0)) }, uniquingKeysWith: { a, _ in a })
            let lost = acked.filter { payloads[$0.key] != $0.value }
            let examples = lost.sorted { $0.key < $1.key }.prefix(3)
            #expect(lost.isEmpty, "\(lost.count) of \(acked.count) acknowledged messages lost or changed, e.g. \(examples)")
            print("SIGTERM under load: \(unanswered) publishes unanswered at the signal, \(acked.count) of \(sent) acknowledged "
                  + "(\(ackedAfterSignal) after the signal), \(lost.count) of them not stored")
            await reader.close()
        }
    }
}
