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
        let relayd = try RelaydFixture()
        defer { Task { await relayd.stop() } }
        try await relayd.start()
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

    @Test("a durable subscription resumes after the last ACK, across a client reconnect and a broker SIGKILL")
    func durableResume() async throws {
        let relayd = try RelaydFixture()
        defer { Task { await relayd.stop() } }
        try await relayd.start()
        let publisher = try await FrameClient.connect(port: relayd.port, pki: relayd.pki)
        try await publisher.hello()
        let acks = try await publisher.publish("dur.x", count: 30)

        var consumer = try await FrameClient.connect(port: relayd.port, pki: relayd.pki)
        try await consumer.hello()
        #expect(try await consumer.subscribe(7, "dur.x", durable: "worker").isAccepted)
        let firstTen = try await consumer.messages(10)
        try await consumer.send(.ack(Ack(subscriptionID: 7, sequence: firstTen[9].sequence)))
        try await consumer.send(.ping(token: 1))  // a round trip, so the ACK has been read
        _ = try await consumer.next()
        await consumer.close()
        try await Task.sleep(nanoseconds: 200_000_000)  // the cursor commit is group-committed

        // Reconnect: resumes right after the acknowledged message.
        consumer = try await FrameClient.connect(port: relayd.port, pki: relayd.pki)
        try await consumer.hello()
        let resumed = try await consumer.subscribe(7, "dur.x", from: .latest, durable: "worker")
        #expect(resumed.firstSequence == acks[10].sequence)
        let next = try await consumer.messages(5)
        #expect(next.map(\.sequence) == acks[10..<15].map(\.sequence))
        try await consumer.send(.ack(Ack(subscriptionID: 7, sequence: next[4].sequence)))
        try await consumer.send(.ping(token: 2))
        _ = try await consumer.next()
        try await Task.sleep(nanoseconds: 200_000_000)

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

    @Test("a durable name attached to one connection is refused on another")
    func durableInUse() async throws {
        let relayd = try RelaydFixture()
        defer { Task { await relayd.stop() } }
        try await relayd.start()
        let a = try await FrameClient.connect(port: relayd.port, pki: relayd.pki)
        try await a.hello()
        #expect(try await a.subscribe(1, "x", durable: "one").isAccepted)
        let b = try await FrameClient.connect(port: relayd.port, pki: relayd.pki)
        try await b.hello()
        let refused = try await b.subscribe(1, "x", durable: "one")
        #expect(refused.errorCode == .durableInUse)
        await a.close(); await b.close()
    }

    @Test("SIGTERM under load: exit status 0 and no acknowledged message lost")
    func gracefulShutdown() async throws {
        let relayd = try RelaydFixture()
        defer { Task { await relayd.stop() } }
        try await relayd.start()
        let client = try await FrameClient.connect(port: relayd.port, pki: relayd.pki)
        try await client.hello()
        var buffer = client.channel.allocator.buffer(capacity: 1 << 20)
        for i in 0..<5_000 {
            try buffer.writeFrame(.publish(Publish(publishID: UInt64(i), topic: "g.s", payload: ByteBuffer(string: "p\(i)"))))
        }
        try await client.channel.writeAndFlush(buffer)
        try await Task.sleep(nanoseconds: 20_000_000)
        relayd.process?.signal(SIGTERM)
        var acked: Set<UInt64> = []
        var closedWith: RelayErrorCode?
        while let frame = try? await client.next(timeout: .seconds(20)) {
            if case .publishAck(let ack) = frame { acked.insert(ack.sequence) }
            if case .error(let error) = frame { closedWith = error.errorCode }
        }
        #expect(closedWith == .serverShuttingDown)
        #expect(await relayd.process?.waitForExit(timeout: 30) == 0)
        try await relayd.start()
        let reader = try await FrameClient.connect(port: relayd.port, pki: relayd.pki)
        try await reader.hello()
        #expect(try await reader.subscribe(1, "g.s").isAccepted)
        if !acked.isEmpty {
            let stored = Set(try await reader.messages(acked.count).map(\.sequence))
            #expect(acked.isSubset(of: stored))
        }
        await reader.close()
    }
}
