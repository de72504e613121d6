import Foundation
import NIOCore
import RelayCore
import RelayTestSupport
import RelayWire
import Testing

/// The router remembers, per recently published topic, the list of every
/// subscription its filters match. A client with a valid certificate and a
/// wildcard grant can make each list long (its own subscriptions, within
/// `max_subscriptions` per connection) and the number of topics large (one
/// publish per distinct topic): the memory is the product of the two. Three
/// connections of 1,000 zero-credit `fan.>` subscriptions (the default
/// limits) and one publish to each of 4,096 topics grew relayd by 382 MiB
/// before the cache had a subscriber budget, held until the next 4,096 topics.
@Suite("relayd end to end: the router's topic cache is bounded in subscriptions, not only in topics", .serialized)
struct RouterCacheBoundTests {
    static let hoarders = 3
    static let topics = 4_096

    @Test("3 × 1,000 zero-credit wildcard subscriptions and 4,096 distinct topics: relayd grows < 200 MiB (was +382), every message delivered")
    func wideFanOutOverManyTopicsIsBounded() async throws {
        try await withRelayd { relayd in
            let pid = try #require(relayd.process?.pid)
            var clients: [FrameClient] = []
            for _ in 0..<Self.hoarders {
                let hoarder = try await FrameClient.connect(port: relayd.port, pki: relayd.pki)
                try await hoarder.hello()
                // Pipelined: 1,000 SUBs in one write, then their SUBACKs in order.
                var buffer = hoarder.channel.allocator.buffer(capacity: 1_000 * 40)
                for id in UInt32(1)...1_000 {
                    try buffer.writeFrame(.subscribe(Subscribe(subscriptionID: id, filter: "fan.>", initialCredit: 0)))
                }
                try await hoarder.channel.writeAndFlush(buffer)
                for id in UInt32(1)...1_000 {
                    guard case .subscribeAck(let ack) = try await hoarder.next() else { throw BrokerTestError.refused("no SUBACK \(id)") }
                    #expect(ack.subscriptionID == id && ack.isAccepted, "SUB \(id): \(ack.message)")
                }
                clients.append(hoarder)
            }
            // A reader on another connection: once it has the last message,
            // the router has matched (and cached) every topic.
            let reader = try await FrameClient.connect(port: relayd.port, pki: relayd.pki)
            try await reader.hello()
            #expect(try await reader.subscribe(1, "fan.>", from: .latest, credit: 100_000).isAccepted)
            let publisher = try await FrameClient.connect(port: relayd.port, pki: relayd.pki)
            try await publisher.hello()
            let baseline = try #require(ProcessMemory.residentBytes(pid: pid))

            var buffer = publisher.channel.allocator.buffer(capacity: Self.topics * 32)
            for i in 0..<Self.topics {
                try buffer.writeFrame(.publish(Publish(publishID: UInt64(i + 1), topic: "fan.t\(i)", payload: ByteBuffer(string: "x"))))
            }
            try await publisher.channel.writeAndFlush(buffer)
            var acked = 0
            while acked < Self.topics {
                guard case .publishAck = try await publisher.next() else { throw BrokerTestError.refused("no PUBACK") }
                acked += 1
            }
            let received = try await reader.messages(Self.topics, timeout: .seconds(60))
            let expected = (0..<Self.topics).map { "fan.t\($0)" }
            #expect(received.map(\.topic) == expected)
            let grown = try #require(ProcessMemory.residentBytes(pid: pid)) - baseline
            print("router cache: RSS baseline \(baseline >> 20) MiB, +\(grown >> 20) MiB after \(Self.topics) topics "
                + "× \(Self.hoarders * 1_000 + 1) subscriptions")
            // What stays is the connections' own bounded state: three 64 MiB
            // live-buffer budgets (counted at 48 bytes over each MSG, held as
            // smaller entries) and the router's queues to them; +130 MiB here.
            #expect(grown < 200 << 20, "relayd's RSS grew by \(grown >> 20) MiB")
            for client in clients { await client.close() }
            await reader.close()
            await publisher.close()
        }
    }
}
