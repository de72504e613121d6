import Foundation
import NIOCore
@testable import RelayJetStream
import RelayTestSupport
import RelayWire
import Testing

/// Issue 20, end to end: a relayd edge on a stream that something else also
/// publishes into (the bench's direct nats.c run). The store-level test
/// (RelayStoreTests JetStreamForeignRecordTests) checks the summary lines.
@Suite("relayd edge: foreign records in the JetStream stream", .serialized)
struct JetStreamForeignRecordEdgeTests {
    @Test("200 foreign records: relayd logs one per-record line, relay_storage_foreign_records_total is 200, relay messages around them delivered")
    func foreignRecordsOnAnEdge() async throws {
        let nats = try await SingleNATSServer(pki: TLSTestPKI())
        let edge = try RelaydFixture(pki: nats.pki, metrics: true)
        try edge.useJetStream(nats)
        try await withRelayd(edge) { edge in
            let client = try await FrameClient.connect(port: edge.port, pki: edge.pki)
            try await client.hello()
            #expect(try await client.subscribe(1, "foreign.>", from: .latest).isAccepted)
            let before = try await client.publish("foreign.t", count: 1, payload: { _ in "before" })
            #expect(before.count == 1)

            #expect(try nats.publishForeign(200, subject: "relay.foreign.t") == 200)

            let after = try await client.publish("foreign.t", count: 1, firstID: 2, payload: { _ in "after" })
            #expect(after.count == 1)
            let got = try await client.messages(2)
            #expect(got.map(payloadString) == ["before", "after"])
            #expect(try await client.expectSilence())

            // The tail counted all 200 by the time it delivered "after" (it is in stream order).
            #expect(try await edge.metric("relay_storage_foreign_records_total") == 200)
            let perRecord = edge.log.split(separator: "\n").filter { $0.contains("skipping an undecodable stream message") }
            #expect(perRecord.count == 1, "\(perRecord.count) per-record lines")
            await client.close()
        }
    }
}
