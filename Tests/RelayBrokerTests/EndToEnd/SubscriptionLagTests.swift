import Foundation
import RelayTestSupport
import RelayWire
import Testing

/// Issue 18 item 4: `relay_subscription_lag` is emitted per durable
/// (labels `durable` and `owner`), as the number of committed sequences
/// after the durable's cursor, sampled every 5 s.
@Suite("relayd end to end: relay_subscription_lag", .serialized)
struct SubscriptionLagTests {
    @Test("a durable that acked part of the stream and left shows its lag; catching up brings it to 0")
    func lagPerDurable() async throws {
        try await withRelayd(metrics: true) { relayd in
            let (publisher, consumer, first) = try await Self.ackTwoOfFive(publishOn: relayd, consumeOn: relayd, durable: "reports")
            try await consumer.detach(1, barrierID: 901)
            let more = try await publisher.publish("lag.a", count: 4, firstID: 100)
            let tail = try #require(more.last?.sequence)
            let expected = Double(tail - first[1].sequence)

            // Sampled every 5 s: polled with a deadline.
            let lag = await eventuallyValue(timeout: 15, every: 0.25) { () -> Double? in
                guard let value = try? await Self.lag(relayd, durable: "reports") else { return nil }
                return value == expected ? value : nil
            }
            let seen = try? await Self.lag(relayd, durable: "reports")
            #expect(lag == expected, "relay_subscription_lag for durable reports is \(String(describing: seen)), expected \(expected)")
            let text = try await relayd.scrapeMetrics()
            let check = try await Promtool.checkMetrics(text)
            #expect(check.status == 0 && check.output.isEmpty, "promtool with the lag family:\n\(check.output)")

            // Resume and acknowledge everything: the lag goes to 0.
            #expect(try await consumer.subscribe(2, "lag.>", from: .earliest, durable: "reports").isAccepted)
            let rest = try await consumer.messages(7)
            try await consumer.acknowledge(2, try #require(rest.last?.sequence), barrierID: 902)
            try await consumer.detach(2, barrierID: 903)
            // What was committed after the last ack: the two barrier publishes and this one.
            let newest = try #require(try await publisher.publish("other.x", count: 1, firstID: 500).last?.sequence)
            let remaining = Double(newest - tail)
            let caughtUp = await eventually(timeout: 15, every: 0.25) {
                (try? await Self.lag(relayd, durable: "reports")) == remaining
            }
            #expect(caughtUp, "the lag did not drop after the durable caught up")
            await publisher.close(); await consumer.close()
        }
    }

    /// docs/cluster.md: a cluster edge exports the lag of the durables
    /// attached to it, from the cursor it read or stored and the stream's
    /// last sequence (one stream-info request per sample), not the bucket.
    @Test("a cluster edge exports the lag of the durables attached to it (last sequence minus cursor); the other edge none")
    func lagOnClusterEdge() async throws {
        let nats = try await SingleNATSServer(pki: TLSTestPKI())
        try await withTwoJetStreamEdges(nats, metrics: true) { a, b in
            let (publisher, consumer, first) = try await Self.ackTwoOfFive(publishOn: a, consumeOn: b, durable: "edge")
            let more = try await publisher.publish("other.x", count: 3, firstID: 100)
            let expected = Double(try #require(more.last?.sequence) - first[1].sequence)
            let lag = await eventuallyValue(timeout: 15, every: 0.25) { () -> Double? in
                guard let value = try? await Self.lag(b, durable: "edge") else { return nil }
                return value == expected ? value : nil
            }
            let seen = try? await Self.lag(b, durable: "edge")
            #expect(lag == expected, "relay_subscription_lag on edge B is \(String(describing: seen)), expected \(expected)")
            #expect(try await Self.lag(a, durable: "edge") == nil, "edge A does not have it attached")
            // Detached: edge B stops exporting it at its next sample.
            try await consumer.detach(1, barrierID: 901)
            let gone = await eventually(timeout: 15, every: 0.25) { (try? await Self.lag(b, durable: "edge")) == nil }
            #expect(gone, "edge B still exports the lag of a durable no longer attached to it")
            await publisher.close(); await consumer.close()
        }
    }

    /// A publisher on `publishOn` and a consumer on `consumeOn` whose durable
    /// subscription 1 (`lag.>`, from earliest) read 5 published messages and
    /// acknowledged the second (barrier publish 900); returns both and the 5.
    static func ackTwoOfFive(publishOn: RelaydFixture, consumeOn: RelaydFixture,
                             durable: String) async throws -> (FrameClient, FrameClient, [PublishAck]) {
        let publisher = try await FrameClient.connect(port: publishOn.port, pki: publishOn.pki)
        try await publisher.hello()
        let consumer = try await FrameClient.connect(port: consumeOn.port, pki: consumeOn.pki)
        try await consumer.hello()
        #expect(try await consumer.subscribe(1, "lag.>", from: .earliest, durable: durable).isAccepted)
        let first = try await publisher.publish("lag.a", count: 5)
        _ = try await consumer.messages(5)
        try await consumer.acknowledge(1, first[1].sequence, barrierID: 900)
        return (publisher, consumer, first)
    }

    /// The value of `relay_subscription_lag{durable="<durable>",owner="…"}`, or nil.
    static func lag(_ relayd: RelaydFixture, durable: String) async throws -> Double? {
        let text = try await relayd.scrapeMetrics()
        let prefix = "relay_subscription_lag{durable=\"\(durable)\",owner=\""
        guard let line = text.split(separator: "\n").first(where: { $0.hasPrefix(prefix) }),
              let value = line.split(separator: " ").last else { return nil }
        return Double(value)
    }
}
