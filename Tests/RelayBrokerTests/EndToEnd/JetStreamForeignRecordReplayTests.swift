import Foundation
import NIOCore
@testable import RelayJetStream
import RelayTestSupport
import RelayWire
import Testing

/// Issue 20, end to end: a replay across records something other than relayd
/// published into the stream. The live tail skips them too
/// (JetStreamForeignRecordEdgeTests); a replay threw on the first one, so a
/// subscriber from earliest got nothing past it, on every attempt.
@Suite("relayd edge: replay across foreign records in the JetStream stream", .serialized)
struct JetStreamForeignRecordReplayTests {
    @Test("3 foreign records between two relay messages: two subscribers from earliest each get exactly before, after; the metric stays 3")
    func replayAcrossForeignRecords() async throws {
        let nats = try await SingleNATSServer(pki: TLSTestPKI())
        let edge = try RelaydFixture(pki: nats.pki, metrics: true)
        try edge.useJetStream(nats)
        try await withRelayd(edge) { edge in
            let publisher = try await FrameClient.connect(port: edge.port, pki: edge.pki)
            try await publisher.hello()
            let before = try await publisher.publish("foreign.t", count: 1, payload: { _ in "before" })
            #expect(before.count == 1)
            #expect(try nats.publishForeign(3, subject: "relay.foreign.t") == 3)
            let after = try await publisher.publish("foreign.t", count: 1, firstID: 2, payload: { _ in "after" })
            #expect(after.count == 1)
            // No subscription yet, so the edge does not follow the stream
            // (JetStreamOnDemandTailTests): nothing has seen the three yet.
            #expect(try await edge.metric("relay_storage_foreign_records_total") == 0)

            let expectedSequences = (before + after).map(\.sequence)
            #expect(expectedSequences.count == 2)
            // Two replays over the same records: each gets exactly the relay messages, in order.
            for id in [UInt32(1), 2] {
                let subscriber = try await FrameClient.connect(port: edge.port, pki: edge.pki)
                try await subscriber.hello()
                #expect(try await subscriber.subscribe(id, "foreign.>", from: .earliest).isAccepted)
                let got = try await subscriber.messages(2)
                #expect(got.map(payloadString) == ["before", "after"])
                #expect(got.map(\.sequence) == expectedSequences)
                #expect(try await subscriber.expectSilence())
                await subscriber.close()
                // The first replay counted the three as it passed them (no frame announces that: poll).
                let counted = await eventually(timeout: 10) { (try? await edge.metric("relay_storage_foreign_records_total")) == 3 }
                #expect(counted)
            }
            // A replay re-reading a foreign record it or the tail already counted does not count it again.
            #expect(try await edge.metric("relay_storage_foreign_records_total") == 3)
            await publisher.close()
        }
    }
}

extension SingleNATSServer {
    /// Publishes `count` records that are not Relay's to `subject` from a plain nats.c
    /// JetStream connection on its own (as the bench's direct run); how many were acked.
    func publishForeign(_ count: Int, subject: String) throws -> Int {
        let endpoint = NATSEndpoint(servers: [url], caFile: pki.ca.certificate,
                                    certificateFile: pki.alice.certificate, privateKeyFile: pki.alice.key)
        let foreign = try NATSConnection.connect(endpoint, timeoutMs: 5_000)
        defer { foreign.close() }
        let records = (0..<count).map { i in
            NATSConnection.PublishRecord(subject: subject, messageID: nil, data: ByteBuffer(string: "bench \(i)"))
        }
        let outcomes = foreign.publishPipelined(records, window: 256, idleMs: 5_000, maxWaitMs: 10_000)
        return outcomes.filter { if case .acked = $0 { return true } else { return false } }.count
    }
}
