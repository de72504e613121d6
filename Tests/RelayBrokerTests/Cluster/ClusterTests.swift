import Foundation
import NIOCore
import RelayCore
import RelayTestSupport
import RelayWire
import Testing

/// Issue 20, "Done when": two relayd edges on a real 3-node NATS JetStream
/// cluster (R3, mTLS everywhere) started by the test, nodes killed with -9.
/// Heavy (a cluster, two relayds, a leader election): `make test` runs it in
/// the second pass.
@Suite("ClusterTests", .serialized)
struct ClusterTests {
    static let stream = "RELAY"

    /// Edges A and B on `cluster`, both started; stopped at the end.
    private func withEdges(_ cluster: NATSCluster, metrics: Bool = false, publishTimeout: String = "10s",
                           _ body: (RelaydFixture, RelaydFixture) async throws -> Void) async throws {
        let a = try RelaydFixture(pki: cluster.pki, metrics: metrics)
        try a.useJetStream(cluster: cluster, publishTimeout: publishTimeout)
        let b = try RelaydFixture(pki: cluster.pki, metrics: metrics)
        try b.useJetStream(cluster: cluster, publishTimeout: publishTimeout)
        try await withRelayd(a) { a in
            try await withRelayd(b) { b in try await body(a, b) }
        }
    }

    @Test("kill -9 a follower, then the stream leader, then edge A: every acknowledged message exactly once, in one order, durables resume without gaps")
    func failover() async throws {
        try await withNATSCluster { cluster in
            try await withEdges(cluster) { a, b in
                let session = ProducerSessionID(high: 0x2020, low: 0x0005)
                // A live subscriber on B from the start, a durable one on A.
                let live = try await FrameClient.connect(port: b.port, pki: b.pki)
                try await live.hello()
                #expect(try await live.subscribe(1, "cl.>", from: .earliest).isAccepted)
                var durable = try await FrameClient.connect(port: a.port, pki: a.pki)
                try await durable.hello()
                #expect(try await durable.subscribe(7, "cl.>", from: .earliest, durable: "worker").isAccepted)
                var publisher = try await FrameClient.connect(port: a.port, pki: a.pki)
                try await publisher.hello(sessionID: session)
                var acked: [UInt64: UInt64] = [:]

                // 1. Healthy cluster. The durable confirms its cursor at the last one.
                let first = await publisher.publishRecording("cl.t", ids: 1...25)
                #expect(first.acked.count == 25 && first.refused.isEmpty && !first.closedEarly)
                acked.merge(first.acked) { $1 }
                let confirmed = try #require(first.acked[25])
                _ = try await durable.messages(through: confirmed)
                try await durable.acknowledgeDurably(subscriptionID: 7, sequence: confirmed)

                // 2. A follower dies: writes go on, nothing refused.
                let leader = try await cluster.waitForStreamLeader(Self.stream)
                let followers = cluster.runningIndices.filter { $0 != leader }
                let follower = try #require(followers.first)
                await cluster.kill(follower)
                let second = await publisher.publishRecording("cl.t", ids: 26...50)
                #expect(second.acked.count == 25 && second.refused.isEmpty && !second.closedEarly)
                acked.merge(second.acked) { $1 }
                try cluster.launch(follower)
                try await cluster.waitUntilFormed(timeout: 20)

                // 3. The stream leader dies: publishes wait out the election
                //    (relayd retries with the same Nats-Msg-Id), nothing refused.
                let oldLeader = try await cluster.waitForStreamLeader(Self.stream)
                await cluster.kill(oldLeader)
                let electionStart = ContinuousClock.now
                let third = await publisher.publishRecording("cl.t", ids: 51...75)
                let electionCost = ContinuousClock.now - electionStart
                #expect(third.acked.count == 25 && third.refused.isEmpty && !third.closedEarly)
                acked.merge(third.acked) { $1 }
                print("ClusterTests: 25 publishes across a stream leader loss took \(electionCost)")

                // 4. Edge A dies with publishes in flight: the publisher moves to
                //    B (explicitly: one address per FrameClient) with the same
                //    session and resends the burst; dedup keeps each once.
                var buffer = publisher.channel.allocator.buffer(capacity: 4096)
                for id in UInt64(76)...100 {
                    try buffer.writeFrame(.publish(Publish(publishID: id, topic: "cl.t", payload: ByteBuffer(string: "p\(id)"))))
                }
                try await publisher.channel.writeAndFlush(buffer)
                await a.kill()
                await publisher.close()
                publisher = try await FrameClient.connect(port: b.port, pki: b.pki)
                try await publisher.hello(sessionID: session)
                let fourth = await publisher.publishRecording("cl.t", ids: 76...100)
                #expect(fourth.acked.count == 25 && fourth.refused.isEmpty && !fourth.closedEarly)
                acked.merge(fourth.acked) { $1 }
                let last = try #require(acked.values.max())

                // Every subscriber: each acknowledged message once, in one order.
                let seenLive = try await live.messages(through: last)
                checkDelivered(seenLive, acked: acked, subscriber: "live on B")
                #expect(try await live.expectSilence())
                let replay = try await FrameClient.connect(port: b.port, pki: b.pki)
                try await replay.hello()
                #expect(try await replay.subscribe(2, "cl.>", from: .earliest).isAccepted)
                let seenReplay = try await replay.messages(through: last)
                #expect(seenReplay.map(\.sequence) == seenLive.map(\.sequence))

                // The durable, cut off with A, resumes on B right after its cursor.
                await durable.close()
                durable = try await FrameClient.connect(port: b.port, pki: b.pki)
                try await durable.hello()
                #expect(try await durable.subscribe(7, "cl.>", from: .latest, durable: "worker").isAccepted)
                let resumed = try await durable.messages(through: last)
                let afterCursor = seenLive.map(\.sequence).filter { $0 > confirmed }
                #expect(resumed.map(\.sequence) == afterCursor)
                for client in [live, replay, durable, publisher] { await client.close() }
            }
        }
    }

    @Test("two of three NATS nodes down: PUBERR storage_unavailable within publish_timeout, /readyz not ready; nothing acknowledged lost when quorum returns")
    func noQuorum() async throws {
        try await withNATSCluster { cluster in
            try await withEdges(cluster, metrics: true, publishTimeout: "3s") { a, _ in
                let client = try await FrameClient.connect(port: a.port, pki: a.pki)
                // A producer session, as RelayClient opens: the dedup key that
                // makes the retry of a refused publish safe needs one.
                try await client.hello(sessionID: ProducerSessionID(high: 0x2020, low: 0x0006))
                let before = await client.publishRecording("nq.t", ids: 1...20)
                #expect(before.acked.count == 20 && before.refused.isEmpty)
                let up = await a.isReady()
                #expect(up)

                let survivor = try await cluster.waitForStreamLeader(Self.stream)
                for index in cluster.runningIndices where index != survivor { await cluster.kill(index) }
                let started = ContinuousClock.now
                let during = await client.publishRecording("nq.t", ids: 21...21, timeout: .seconds(10))
                let elapsed = ContinuousClock.now - started
                #expect(during.refused[21] == "storage_unavailable", "got \(during)")
                // publish_timeout is 3 s; one retry pause more at most, never a hang.
                #expect(elapsed < .seconds(5), "PUBERR after \(elapsed)")
                // /readyz follows relayd's availability probe (every second): polled.
                let notReady = await eventually(timeout: 10, every: 0.1) { await !a.isReady() }
                #expect(notReady)

                for index in cluster.nodes.indices where !cluster.isRunning(index) { try cluster.launch(index) }
                // nats-server 2.9.10 sometimes takes well over 20 s to elect a
                // meta leader after two nodes come back (seen once in four runs).
                try await cluster.waitUntilFormed(timeout: 40)
                let ready = await eventually(timeout: 15, every: 0.1) { await a.isReady() }
                #expect(ready)
                // The refused publish again, same id: stored once.
                let after = await client.publishRecording("nq.t", ids: 21...21)
                #expect(after.acked.count == 1)
                var acked = before.acked
                acked.merge(after.acked) { $1 }
                let last = try #require(acked.values.max())
                let reader = try await FrameClient.connect(port: a.port, pki: a.pki)
                try await reader.hello()
                #expect(try await reader.subscribe(1, "nq.>", from: .earliest).isAccepted)
                let seen = try await reader.messages(through: last)
                checkDelivered(seen, acked: acked, subscriber: "replay after quorum returned")
                await client.close()
                await reader.close()
            }
        }
    }
}
