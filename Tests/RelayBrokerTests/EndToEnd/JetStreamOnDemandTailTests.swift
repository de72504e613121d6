import Foundation
import NIOCore
@testable import RelayJetStream
import RelayTestSupport
import RelayWire
import Testing

/// Issue 20 (the edge's share of the cluster's work): an edge follows the
/// stream (an ordered consumer, every message sent back to it by
/// nats-server) only while it has a subscription, plus `tail_idle` after the
/// last one ends. A publish-only edge costs nats-server no delivery per
/// message. A subscription that starts the tail again gets what a subscriber
/// of an always-running tail gets: `latest` only what is stored after its
/// SUB, `earliest` everything once, in order (docs/cluster.md, "Live delivery
/// across edges").
@Suite("relayd edge: the live tail runs only while a subscription needs it", .serialized)
struct JetStreamOnDemandTailTests {
    @Test("a publish-only edge holds no consumer on the stream; a SUB opens one before its SUBACK; it closes tail_idle after the last UNSUB")
    func tailFollowsSubscriptions() async throws {
        let nats = try await SingleNATSServer(pki: TLSTestPKI())
        let edge = try RelaydFixture(pki: nats.pki, metrics: true)
        try edge.useJetStream(nats, tailIdle: "300ms")
        try await withRelayd(edge) { edge in
            let publisher = try await FrameClient.connect(port: edge.port, pki: edge.pki)
            try await publisher.hello()
            #expect(try await publisher.publish("tail.t", count: 50).count == 50)
            #expect(try nats.streamConsumers() == 0, "a publish-only edge must not follow the stream")
            // Counted as this edge's publishes although no tail saw them.
            let counted = await eventually(timeout: 10) { (try? await edge.metric("relay_publishes_total")) == 50 }
            #expect(counted)

            let subscriber = try await FrameClient.connect(port: edge.port, pki: edge.pki)
            try await subscriber.hello()
            #expect(try await subscriber.subscribe(1, "tail.>", from: .latest).isAccepted)
            #expect(try nats.streamConsumers() == 1, "the SUBACK comes after the tail is open")
            // The operator sees it in relayd's log (captured from its stderr as it comes: poll).
            let opened = await eventually(timeout: 10) { edge.log.contains("following the shared log for live delivery") }
            #expect(opened, "\(edge.log)")
            let acked = try await publisher.publish("tail.t", count: 5, firstID: 100).map(\.sequence)
            #expect(try await subscriber.messages(5).map(\.sequence) == acked)
            #expect(try await subscriber.expectSilence())

            try await subscriber.send(.unsubscribe(subscriptionID: 1))
            let closed = await eventually(timeout: 10, every: 0.05) { (try? nats.streamConsumers()) == 0 }
            #expect(closed, "the tail must close tail_idle (300 ms) after the last subscription ended")
            let said = await eventually(timeout: 10) { edge.log.contains("stopped following the shared log") }
            #expect(said, "\(edge.log)")
            await subscriber.close(); await publisher.close()
        }
    }

    @Test("after the tail closed: SUB latest gets only what is stored after it, SUB earliest everything once, in order")
    func restartedTailKeepsStartPositions() async throws {
        let nats = try await SingleNATSServer(pki: TLSTestPKI())
        let a = try RelaydFixture(pki: nats.pki)
        try a.useJetStream(nats, tailIdle: "100ms")
        let b = try RelaydFixture(pki: nats.pki)
        try b.useJetStream(nats, tailIdle: "100ms")
        try await withRelayd(a) { a in
            try await withRelayd(b) { b in
                let onB = try await FrameClient.connect(port: b.port, pki: b.pki)
                try await onB.hello()
                let early = try await onB.publish("gap.t", count: 3).map(\.sequence)
                // A's tail opens and closes again.
                let first = try await FrameClient.connect(port: a.port, pki: a.pki)
                try await first.hello()
                #expect(try await first.subscribe(1, "gap.>", from: .latest).isAccepted)
                try await first.send(.unsubscribe(subscriptionID: 1))
                let closed = await eventually(timeout: 10, every: 0.05) { (try? nats.streamConsumers()) == 0 }
                #expect(closed)
                // Stored while no edge follows the stream.
                let meanwhile = try await onB.publish("gap.t", count: 30, firstID: 10).map(\.sequence)

                let latest = try await FrameClient.connect(port: a.port, pki: a.pki)
                try await latest.hello()
                #expect(try await latest.subscribe(2, "gap.>", from: .latest).isAccepted)
                let after = try await onB.publish("gap.t", count: 5, firstID: 100).map(\.sequence)
                let gotLatest = try await latest.messages(5)
                #expect(gotLatest.map(\.sequence) == after, "latest must not replay the 30 stored before its SUB")
                #expect(try await latest.expectSilence())

                let earliest = try await FrameClient.connect(port: a.port, pki: a.pki)
                try await earliest.hello()
                #expect(try await earliest.subscribe(3, "gap.>", from: .earliest).isAccepted)
                let all = early + meanwhile + after
                #expect(all.count == 38)
                #expect(try await earliest.messages(all.count).map(\.sequence) == all)
                let live = try await onB.publish("gap.t", count: 2, firstID: 200).map(\.sequence)
                #expect(try await earliest.messages(2).map(\.sequence) == live)
                #expect(try await latest.messages(2).map(\.sequence) == live)
                #expect(try await earliest.expectSilence())
                await first.close(); await latest.close(); await earliest.close(); await onB.close()
            }
        }
    }

    @Test("subscribers that come and go while another edge publishes: with tail_idle 0s the tail closes and reopens, and each gets a gapless run from its SUBACK's first sequence")
    func churnWhilePublishing() async throws {
        let nats = try await SingleNATSServer(pki: TLSTestPKI())
        let a = try RelaydFixture(pki: nats.pki)
        try a.useJetStream(nats, tailIdle: "0s")
        let b = try RelaydFixture(pki: nats.pki)
        try b.useJetStream(nats)
        try await withRelayd(a) { a in
            try await withRelayd(b) { b in
                let onB = try await FrameClient.connect(port: b.port, pki: b.pki)
                try await onB.hello()
                let done = ManagedFlag()
                // B publishes in bursts until every subscriber on A is done.
                let publishing = Task {
                    var next: UInt64 = 1
                    while !done.isSet {
                        _ = try await onB.publish("churn.t", count: 10, firstID: next)
                        next += 10
                    }
                    return next - 1
                }
                for round in 0..<12 {
                    let subscriber = try await FrameClient.connect(port: a.port, pki: a.pki)
                    try await subscriber.hello()
                    let ack = try await subscriber.subscribe(1, "churn.>", from: .latest)
                    #expect(ack.isAccepted, "round \(round): \(ack)")
                    let got = try await subscriber.messages(15).map(\.sequence)
                    let expected = (0..<UInt64(15)).map { ack.firstSequence + $0 }
                    #expect(got == expected, "round \(round): first \(ack.firstSequence), got \(got)")
                    try await subscriber.send(.unsubscribe(subscriptionID: 1))
                    await subscriber.close()
                    if round % 2 == 0 {
                        // Every other round the next SUB finds the tail closed and reopens it mid-stream.
                        let closed = await eventually(timeout: 10, every: 0.02) { (try? nats.streamConsumers()) == 0 }
                        #expect(closed, "round \(round): the tail did not close")
                    }
                }
                done.set()
                let published = try await publishing.value
                #expect(published >= 12 * 15)
                await onB.close()
            }
        }
    }

    @Test("while NATS is down a SUB that must open the tail is refused with storage_unavailable, in time; after recovery it is accepted")
    func subscribeWithoutNATSIsTyped() async throws {
        let nats = try await SingleNATSServer(pki: TLSTestPKI())
        let edge = try RelaydFixture(pki: nats.pki)
        try edge.useJetStream(nats, publishTimeout: "2s", tailIdle: "100ms")
        try await withRelayd(edge) { edge in
            let client = try await FrameClient.connect(port: edge.port, pki: edge.pki)
            try await client.hello()
            #expect(try await client.publish("down.t", count: 1).count == 1)
            await nats.kill()
            let started = ContinuousClock.now
            let refused = try await client.subscribe(1, "down.>", from: .latest)
            let elapsed = ContinuousClock.now - started
            #expect(refused.errorCode == .storageUnavailable, "\(refused)")
            // [storage.jetstream] requests wait at most 2 s; allow a connect attempt more.
            #expect(elapsed < .seconds(6), "SUBACK after \(elapsed)")

            try await nats.restart()
            let accepted = await eventually(timeout: 20, every: 0.2) {
                (try? await client.subscribe(2, "down.>", from: .latest))?.isAccepted == true
            }
            #expect(accepted)
            await client.close()
        }
    }
}

extension SingleNATSServer {
    /// Consumers on the edges' stream (RELAY), asked over a plain nats.c connection.
    func streamConsumers() throws -> Int64 {
        let endpoint = NATSEndpoint(servers: [url], caFile: pki.ca.certificate,
                                    certificateFile: pki.alice.certificate, privateKeyFile: pki.alice.key)
        let connection = try NATSConnection.connect(endpoint, timeoutMs: 5_000)
        defer { connection.close() }
        return try connection.streamState("RELAY", waitMs: 5_000).consumers
    }
}

/// A flag one task sets and another polls.
private final class ManagedFlag: @unchecked Sendable {
    // @unchecked: `value` is guarded by `lock`.
    private let lock = NSLock()
    private var value = false
    var isSet: Bool { lock.withLock { value } }
    func set() { lock.withLock { value = true } }
}
