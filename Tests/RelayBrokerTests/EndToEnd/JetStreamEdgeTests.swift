import Foundation
import NIOCore
import RelayCore
import RelayTLS
import RelayTestSupport
import RelayWire
import Testing

/// Issue 20: relayd edges on one JetStream stream (a single nats-server with
/// JetStream and mutual TLS, started by the test; the 3-node cluster tests
/// are NATSCluster*). Fails, not skips, when nats-server is missing.
@Suite("relayd edges on JetStream", .serialized)
struct JetStreamEdgeTests {
    @Test("a subscriber on edge B receives what edge A acknowledged: in order, once, with A's publisher stamp")
    func crossEdgeDelivery() async throws {
        let nats = try await SingleNATSServer(pki: TLSTestPKI())
        try await withTwoJetStreamEdges(nats) { a, b in
            let onB = try await FrameClient.connect(port: b.port, pki: b.pki)
            try await onB.hello()
            #expect(try await onB.subscribe(1, "edge.>", from: .latest).isAccepted)
            let onA = try await FrameClient.connect(port: a.port, pki: a.pki)
            let welcome = try await onA.hello()
            #expect(try await onA.subscribe(1, "edge.>", from: .latest).isAccepted)

            // Two topics interleaved, in two pipelined bursts.
            let acks = try await onA.publish("edge.x", count: 20, payload: { "x\($0)" })
                + (try await onA.publish("edge.y", count: 20, firstID: 100, payload: { "y\($0)" }))
            let acked = acks.map(\.sequence)
            #expect(acked == acked.sorted() && Set(acked).count == 40)

            let gotB = try await onB.messages(40)
            #expect(gotB.map(\.sequence) == acked)
            let expectedPayloads = (0..<20).map { "x\($0)" } + (0..<20).map { "y\($0)" }
            #expect(gotB.map(payloadString) == expectedPayloads)
            let alice = try Identity(pem: b.pki.alice.issued.certificatePEM)
            let stamped = gotB.allSatisfy {
                $0.publisherPrincipal == welcome.principal && $0.publisherFingerprint == alice.fingerprintSHA256
            }
            #expect(stamped)
            #expect(try await onB.expectSilence())  // no duplicates
            // Edge A delivers the same order (it is fed from the stream too).
            let gotA = try await onA.messages(40)
            #expect(gotA.map(\.sequence) == acked)
            #expect(try await onA.expectSilence())

            // A replay on B reads the stream: the same messages.
            #expect(try await onB.subscribe(2, "edge.y", from: .last(5)).isAccepted)
            let replayed = try await onB.messages(5)
            #expect(replayed.map(\.sequence) == Array(acked.suffix(5)))
            await onA.close(); await onB.close()
        }
    }

    @Test("no quorum: a publish gets PUBERR storage_unavailable within publish_timeout, /readyz is not ready; both recover")
    func noQuorumIsATypedErrorInTime() async throws {
        let nats = try await SingleNATSServer(pki: TLSTestPKI())
        try await withTwoJetStreamEdges(nats, metrics: true, publishTimeout: "2s") { a, _ in
            let client = try await FrameClient.connect(port: a.port, pki: a.pki)
            try await client.hello()
            #expect(try await client.publish("q.t", count: 1).count == 1)
            #expect(await a.isReady())

            await nats.kill()
            let started = ContinuousClock.now
            try await client.send(.publish(Publish(publishID: 10, topic: "q.t", payload: ByteBuffer(string: "lost?"))))
            let reply = try await client.nextReply(timeout: .seconds(8)) { frame in
                if case .message = frame { return false }
                return true
            }
            let elapsed = ContinuousClock.now - started
            guard case .publishError(let refused) = reply else {
                Issue.record("expected PUBERR, got \(String(describing: reply))")
                return
            }
            #expect(refused.errorCode == .storageUnavailable)
            // publish_timeout is 2 s; the answer may take one retry pause longer, never a hang.
            #expect(elapsed < .seconds(4), "PUBERR after \(elapsed)")
            // /readyz follows the availability probe (every second): poll with a deadline.
            let notReady = await eventually(timeout: 5, every: 0.1) { await !a.isReady() }
            #expect(notReady)

            try await nats.restart()
            let ready = await eventually(timeout: 10, every: 0.1) { await a.isReady() }
            #expect(ready)
            // The same publish id again: stored once (whether or not the lost attempt was).
            let retried = try await client.publish("q.t", count: 1, firstID: 10)
            #expect(retried.count == 1)
            await client.close()
        }
    }
}
