import Foundation
import RelayClient
import RelayTestSupport
import Testing

/// A durable subscription's ACK lost with the connection (an edge killed
/// before it committed the cursor): after the reconnect the broker
/// re-delivers from its older cursor, the library drops what the consumer
/// already had, and the cursor must still reach what the consumer
/// acknowledged, or a later run of the consumer gets those messages again.
@Suite("RelayClient: a durable ACK lost with the connection is sent again", .serialized)
struct DurableAckResendTests {
    @Test("the ACK never reached relayd, the connection drops: after the reconnect the cursor reaches the acknowledged sequence, so the next run starts after it")
    func lostAckIsResentAfterTheRedelivery() async throws {
        try await withBroker { broker in
            let proxy = try await TCPProxy.start(to: broker.port)
            defer { Task { await proxy.close() } }
            let publisher = try await Publisher.connect(broker.clientConfiguration())
            var sent: [UInt64] = []
            for index in 1...5 { sent.append(try await publisher.publish(topic: "ackr.t", text: "m\(index)").sequence) }

            var throughProxy = broker.clientConfiguration()
            throughProxy.port = proxy.port
            let consumer = try await Subscriber.connect(throughProxy)
            let worker = try await consumer.subscribe(filter: "ackr.t", from: .earliest, durable: "w")
            let first = try await take(5, from: worker)
            #expect(first.map(\.sequence) == sent)
            let acknowledged = try #require(first.last)

            // The ACK is written and swallowed: relayd never commits it.
            proxy.dropRequests()
            worker.ack(acknowledged)
            // Polled: the ACK frame reaching the proxy is the event (the proxy counts what it swallows).
            let swallowed = await eventually(timeout: 10, every: 0.01) { proxy.swallowedRequestBytes > 0 }
            #expect(swallowed)
            await proxy.cutAll()

            // The consumer reconnects by itself; relayd has no cursor, so it
            // re-delivers 1...5 (dropped by the library) before this one.
            let sixth = try await publisher.publish(topic: "ackr.t", text: "m6")
            let next = try await take(1, from: worker)
            #expect(next.map(\.sequence) == [sixth.sequence], "the consumer saw \(next.map(\.sequence)) again")
            #expect(proxy.connections >= 2, "the subscription was answered without a reconnect")
            await consumer.connection.close()

            // The next run of the consumer: relayd resumes after the cursor,
            // which must be the acknowledged sequence (m6 was not acknowledged).
            let rerun = try await Subscriber.connect(broker.clientConfiguration())
            let resumed = try await rerun.subscribe(filter: "ackr.t", from: .earliest, durable: "w")
            let again = try await take(1, from: resumed)
            #expect(again.map(\.sequence) == [sixth.sequence],
                    "the next run started at \(again.map(\.sequence)), not after the acknowledged \(acknowledged.sequence)")
            await rerun.connection.close()
            await publisher.close()
        }
    }
}
