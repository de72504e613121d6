import Foundation
import NIOCore
import RelayCore
@testable import RelayStore
import RelayTLS
import RelayTestSupport
import RelayWire
import Testing

/// A durable cursor migrated from a schema-1 store (keyed by principal only)
/// is adopted by the first workload with that principal that attaches the
/// name, and by no other (docs/storage.md, "Schema history and migration").
@Suite("relayd end to end: cursors migrated from schema 1 are adopted once", .serialized)
struct LegacyCursorAdoptionTests {
    /// Three messages on `old.t` and a legacy cursor ("payments", "jobs") at
    /// sequence 2, as the 1→2 migration leaves a version-1 cursor.
    static func seed(_ directory: String) async throws {
        var configuration = StoreConfiguration(directory: directory)
        configuration.initialMapSize = 1 << 20
        let store = try MessageStore.open(configuration)
        let publisher = PublisherStamp(principal: "seed", fingerprint: .zero)
        for i in 1...3 {
            _ = try await store.append(NewMessage(topic: try Topic("old.t"), payload: ByteBuffer(string: "m\(i)"), publisher: publisher))
        }
        let key = try Schema.legacyCursorKey(principal: "payments", name: "jobs")
        let schema = store.schema
        try store.environment.write { (txn) throws(StoreError) in
            try key.withBytes { (k) throws(StoreError) in
                try withBigEndianBytes(UInt64(2)) { (v) throws(StoreError) in _ = try txn.put(schema.cursors, key: k, value: v) }
            }
        }
        store.close()
    }

    @Test("the first workload with the cursor's principal resumes from it; another workload with that principal starts fresh")
    func adoptedOnce() async throws {
        let pki = try TLSTestPKI()  // alice: CN=alice, OU=payments
        let carol = try pki.add("carol", .client(commonName: "carol", organizationalUnits: ["payments"]))
        try await withRelayd(pki: pki, acl: "[acl]\nprincipal = \"{subject.OU}\"\n\n" + RelaydFixture.allowAll, start: false) { relayd in
            try await Self.seed(relayd.dataDirectory)
            try await relayd.start()

            var alice = try await FrameClient.connect(port: relayd.port, pki: pki)
            #expect(try await alice.hello().principal == "payments")
            #expect(try await alice.subscribe(1, "old.t", durable: "jobs").firstSequence == 3)
            #expect(try await alice.messages(1).first?.sequence == 3)
            await alice.close()

            let other = try await FrameClient.connect(port: relayd.port, pki: pki, as: carol)
            #expect(try await other.hello().principal == "payments")
            let fresh = try await other.subscribeDurableRetrying(1, "old.t", durable: "jobs")
            #expect(fresh.firstSequence == 1, "carol was handed alice's migrated cursor")
            await other.close()

            alice = try await FrameClient.connect(port: relayd.port, pki: pki)
            try await alice.hello()
            let resumed = try await alice.subscribeDurableRetrying(1, "old.t", from: .latest, durable: "jobs")
            #expect(resumed.firstSequence == 3)
            await alice.close()
        }
    }
}
