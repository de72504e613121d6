import Foundation
@testable import RelayStore
import RelayTestSupport
import RelayWire
import Testing

/// A durable cursor written before filters were stored (a schema-3 store: the
/// sequence alone) takes the filter of the first SUB that attaches it, and
/// from then on another filter is refused, across restarts (docs/storage.md,
/// "Schema history and migration").
@Suite("relayd end to end: a cursor stored without a filter adopts the first SUB's", .serialized)
struct UnfilteredCursorAdoptionTests {
    /// Rewrites the store at `directory` as a schema-3 relay left it: every
    /// owned cursor value cut to its eight-byte sequence, version 3.
    static func downgradeCursorsToVersion3(_ directory: String) throws {
        let store = try MessageStore.open(StoreConfiguration(directory: directory))
        defer { store.close() }
        let schema = store.schema
        try store.environment.write { (txn) throws(StoreError) in
            var owned: [(key: [UInt8], value: [UInt8])] = []
            try txn.withCursor(schema.cursors) { (cursor) throws(StoreError) in
                var operation = CursorOperation.first
                while let entry = try cursor.move(operation, { key, value in (key: Array(key), value: Array(value.prefix(8))) }) {
                    operation = .next
                    if entry.key.first == Schema.ownedCursorPrefix { owned.append(entry) }
                }
            }
            guard owned.count == 1 else { throw .invalidArgument("expected one durable cursor, found \(owned.count)") }
            for entry in owned {
                try entry.key.withBytes { (k) throws(StoreError) in
                    try entry.value.withBytes { (v) throws(StoreError) in _ = try txn.put(schema.cursors, key: k, value: v) }
                }
            }
            let three = withUnsafeBytes(of: UInt32(3).bigEndian) { Array($0) }
            try Schema.versionKey.withBytes { (k) throws(StoreError) in
                try three.withBytes { (v) throws(StoreError) in _ = try txn.put(schema.meta, key: k, value: v) }
            }
        }
    }

    @Test("the first SUB after the upgrade sets the filter, keeping the cursor; another filter is then refused, also after a restart")
    func firstFilterAdopted() async throws {
        try await withRelayd { relayd in
            let seqs = try await relayd.acknowledgedDurable("d", filter: "uf.a.>", topic: "uf.a.x", count: 3, through: 0)
            #expect(await relayd.terminate() == 0)
            try Self.downgradeCursorsToVersion3(relayd.dataDirectory)
            try await relayd.start()

            let first = try await FrameClient.connect(port: relayd.port, pki: relayd.pki)
            try await first.hello()
            // Unknown filter: this SUB's (another one than before the upgrade) is adopted at the same cursor.
            let adopted = try await first.subscribeDurable(1, "uf.>", credit: 0, durable: "d", ackMode: .cumulative)
            #expect(adopted.isAccepted && adopted.firstSequence == seqs[0] + 1, "\(adopted.firstSequence): \(adopted.message)")
            try await first.send(.unsubscribe(subscriptionID: 1))
            let other = try await first.subscribeDurable(2, "uf.a.>", credit: 0, durable: "d", ackMode: .cumulative)
            #expect(other.errorCode == .durableFilterMismatch && other.message.contains("uf.>"), "SUBACK \(other.code): \(other.message)")
            await first.close()
            // The line is written before the SUBACK, but read from relayd's pipe on another thread: waited for.
            let adoptionLogged = await eventually(timeout: 20) { relayd.log.contains("durable cursor without a stored filter adopted the SUB's filter") }
            #expect(adoptionLogged, "no line about the adopted filter:\n\(relayd.log)")

            #expect(await relayd.terminate() == 0)
            try await relayd.start()
            let after = try await FrameClient.connect(port: relayd.port, pki: relayd.pki)
            try await after.hello()
            let refused = try await after.subscribeDurable(1, "uf.a.>", credit: 0, durable: "d", ackMode: .cumulative)
            #expect(refused.errorCode == .durableFilterMismatch, "SUBACK \(refused.code): \(refused.message)")
            let same = try await after.subscribeDurable(2, "uf.>", credit: 0, durable: "d", ackMode: .cumulative)
            #expect(same.isAccepted && same.firstSequence == seqs[0] + 1, "\(same.firstSequence): \(same.message)")
            await after.close()
        }
    }
}
