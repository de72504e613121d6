import Foundation
import NIOCore
import RelayCore
@testable import RelayStore
import RelayTestSupport
import Testing

/// A data directory written in schema version 1 (dedup keyed by session and
/// publish id only, cursors by principal), or with `version: 2` in version
/// 2's layout (dedup keys start with the 32-byte publisher digest, cursors
/// keyed by owner), built record by record the way those writers laid it
/// out, so the test needs no old binary.
struct Version1Store {
    static let sessionA: [UInt8] = Array(repeating: 0xA, count: 16)
    static let sessionB: [UInt8] = Array(repeating: 0xB, count: 16)
    static let sessionText: [UInt8] = Array(repeating: 0xC, count: 16)
    static let sessionPruned: [UInt8] = Array(repeating: 0xD, count: 16)
    static let otherFingerprint = String(repeating: "a1", count: 32)
    static let timestamp: UInt64 = 1_780_000_000_000_000_000

    static func key24(_ session: [UInt8], _ publishID: UInt64) -> [UInt8] {
        session + withUnsafeBytes(of: publishID.bigEndian) { Array($0) }
    }

    /// Writes the store with `version` in its meta record.
    static func write(at path: String, version: UInt32 = 1) throws {
        var options = EnvironmentOptions()
        options.initialMapSize = 1 << 20
        options.maxDatabases = 10
        let env = try Environment(path: path, options: options)
        defer { env.close() }
        let meta = try env.openDatabase("meta"), log = try env.openDatabase("log")
        let topics = try env.openDatabase("topics", flags: [.duplicateSort, .duplicateFixed])
        let time = try env.openDatabase("time"), cursors = try env.openDatabase("cursors")
        let dedup = try env.openDatabase("dedup"), dedupOrder = try env.openDatabase("dedup_order")
        _ = try env.openDatabase("topic_stats")
        let publishers: [(principal: String, fingerprint: String)] = [
            (testPublisher.principal, testDigest.hex), ("bob", otherFingerprint), ("legacy", "not-a-digest")]
        let topic = "old.t"
        var entries: [(Database, [UInt8], [UInt8])] = []
        func put(_ db: Database, _ key: [UInt8], _ value: [UInt8]) { entries.append((db, key, value)) }
        func be<T: FixedWidthInteger>(_ v: T) -> [UInt8] { withUnsafeBytes(of: v.bigEndian) { Array($0) } }
        do {
            put(meta, Schema.versionKey, be(version))
            put(meta, Appender.nextSequenceKey, be(UInt64(4)))
            put(time, be(timestamp), be(UInt64(1)))
            for (i, publisher) in publishers.enumerated() {
                let sequence = UInt64(i + 1)
                let record = OldFormatRecord.encode(timestamp: timestamp, topic: topic, principal: publisher.principal,
                                                    fingerprint: publisher.fingerprint, payload: "v1-\(sequence)")
                put(log, be(sequence), record)
                put(topics, Array("old.t".utf8), be(sequence))
            }
            if version == 2 {
                // Version-2 dedup key: publisher digest ‖ session ‖ publish id.
                let other = try #require(CertificateFingerprint(hex: otherFingerprint)).bytes
                for (digest, session, sequence) in [(testDigest.bytes, sessionA, UInt64(1)), (other, sessionB, 2)] {
                    put(dedup, digest + key24(session, 1), be(sequence))
                    put(dedupOrder, be(sequence), digest + key24(session, 1) + be(timestamp))
                }
                // Version-2 cursor key: 0x01 ‖ owner digest ‖ name.
                put(cursors, [0x01] + testOwner(7).digest + Array("jobs".utf8), be(UInt64(2)))
            } else {
                // Sequence 9's record is gone (retention): its dedup entry cannot be attributed.
                for (session, sequence) in [(sessionA, UInt64(1)), (sessionB, 2), (sessionText, 3), (sessionPruned, 9)] {
                    put(dedup, key24(session, 1), be(sequence))
                    put(dedupOrder, be(sequence), key24(session, 1) + be(timestamp))
                }
                // Version-1 cursor key: u16 principal length ‖ principal ‖ name.
                put(cursors, [0, 5] + Array("alice".utf8) + Array("jobs".utf8), be(UInt64(2)))
            }
        }
        let all = entries
        try env.write { (txn) throws(StoreError) in
            for (db, key, value) in all {
                try key.withBytes { (k) throws(StoreError) in
                    try value.withBytes { (v) throws(StoreError) in _ = try txn.put(db, key: k, value: v) }
                }
            }
        }
    }
}

@Suite("store schema migrations: 1 → 3 (dedup by identity, cursors by owner), 2 → 3 (publisher numbers)")
struct SchemaMigrationTests {
    func configuration(_ dir: TemporaryDirectory) -> StoreConfiguration {
        var configuration = StoreConfiguration(directory: dir.path)
        configuration.pruneInterval = .seconds(3600)
        return configuration
    }

    @Test("a version-1 data directory opens; its dedup entries keep answering retries for the identity that stored them only")
    func dedupEntriesGainTheirPublisher() async throws {
        let dir = try TemporaryDirectory(prefix: "relay-store-v1")
        defer { dir.remove() }
        try Version1Store.write(at: dir.path)
        let store = try MessageStore.open(configuration(dir))
        defer { store.close() }
        let other = try #require(CertificateFingerprint(hex: Version1Store.otherFingerprint))
        func key(_ digest: CertificateFingerprint, _ session: [UInt8]) throws -> ProducerKey {
            try ProducerKey(publisher: digest, session: session, publishID: 1)
        }
        // The original publisher's retry is still a duplicate, with the original sequence and time.
        let retryA = try await store.append(try message("old.t", "retry", producerKey: try key(testDigest, Version1Store.sessionA)))
        #expect(retryA == AppendReceipt(sequence: 1, timestamp: Version1Store.timestamp, duplicate: true))
        let retryB = try await store.append(try message("old.t", "retry", producerKey: try key(other, Version1Store.sessionB)))
        #expect(retryB.duplicate && retryB.sequence == 2)
        // Another identity with the same session and publish id is stored.
        let intruder = try await store.append(try message("old.t", "mine", producerKey: try key(other, Version1Store.sessionA)))
        #expect(!intruder.duplicate)
        #expect(intruder.sequence == 4)
        // Entries that cannot be attributed were dropped, not given to someone.
        #expect(try await store.append(try message("old.t", "x", producerKey: try key(testDigest, Version1Store.sessionText))).duplicate == false)
        #expect(try await store.append(try message("old.t", "y", producerKey: try key(testDigest, Version1Store.sessionPruned))).duplicate == false)
        // The old records still decode.
        #expect(try store.read(from: 1, filter: TopicFilter("old.t")).messages.prefix(3).map(\.text) == ["v1-1", "v1-2", "v1-3"])
        // Pruning reads the migrated dedup_order values.
        _ = try await store.prune()
    }

    @Test("a version-1 cursor is adopted once by the first owner with its principal, then is gone")
    func legacyCursorIsAdoptedOnce() async throws {
        let dir = try TemporaryDirectory(prefix: "relay-store-v1")
        defer { dir.remove() }
        try Version1Store.write(at: dir.path)
        var store = try MessageStore.open(configuration(dir))
        #expect(try store.legacyCursor(principal: "alice", name: "jobs") == 2)
        #expect(try store.legacyCursor(principal: "alicejobs", name: "x") == nil)
        #expect(try store.cursor(owner: testOwner(7), name: "jobs") == nil)
        let adopted: Result<Void, StoreError> = await withCheckedContinuation { continuation in
            store.adoptLegacyCursor(principal: "alice", name: "jobs", owner: testOwner(7), sequence: 2, filter: "jobs.>") { continuation.resume(returning: $0) }
        }
        try adopted.get()
        #expect(try store.cursor(owner: testOwner(7), name: "jobs") == 2)
        #expect(try store.legacyCursor(principal: "alice", name: "jobs") == nil)
        // Reopening does not migrate again (the store has the current version now).
        store.close()
        store = try MessageStore.open(configuration(dir))
        defer { store.close() }
        #expect(try store.cursor(owner: testOwner(7), name: "jobs") == 2)
        #expect(try store.legacyCursor(principal: "alice", name: "jobs") == nil)
        let retry = try await store.append(try message("old.t", "r", producerKey: try ProducerKey(
            publisher: testDigest, session: Version1Store.sessionA, publishID: 1)))
        #expect(retry.duplicate && retry.sequence == 1)
    }

    @Test("a version-2 data directory opens; its dedup entries keep answering retries for their identity only, across a reopen")
    func version2DedupGetsPublisherNumbers() async throws {
        let dir = try TemporaryDirectory(prefix: "relay-store-v2")
        defer { dir.remove() }
        try Version1Store.write(at: dir.path, version: 2)
        let other = try #require(CertificateFingerprint(hex: Version1Store.otherFingerprint))
        func key(_ digest: CertificateFingerprint, _ session: [UInt8], _ publishID: UInt64 = 1) throws -> ProducerKey {
            try ProducerKey(publisher: digest, session: session, publishID: publishID)
        }
        for round in 1...2 {  // the second open finds version 3 and migrates nothing
            let store = try MessageStore.open(configuration(dir))
            let retryA = try await store.append(try message("old.t", "retry", producerKey: try key(testDigest, Version1Store.sessionA)))
            #expect(retryA == AppendReceipt(sequence: 1, timestamp: Version1Store.timestamp, duplicate: true), "round \(round)")
            let retryB = try await store.append(try message("old.t", "retry", producerKey: try key(other, Version1Store.sessionB)))
            #expect(retryB.duplicate && retryB.sequence == 2, "round \(round)")
            #expect(try store.cursor(owner: testOwner(7), name: "jobs") == 2)
            if round == 1 {
                // The other identity with the first one's session and publish id is stored, not answered as a duplicate.
                let intruder = try await store.append(try message("old.t", "mine", producerKey: try key(other, Version1Store.sessionA)))
                #expect(!intruder.duplicate && intruder.sequence == 4)
            }
            // New deduplicated publishes of both identities (numbers exist now) and of a third (a new number).
            let third = try #require(CertificateFingerprint(hex: String(repeating: "b2", count: 32)))
            for digest in [testDigest, other, third] {
                let fresh = try await store.append(try message("old.t", "n", producerKey: try key(digest, Version1Store.sessionText, UInt64(10 + round))))
                #expect(!fresh.duplicate)
                let again = try await store.append(try message("old.t", "n", producerKey: try key(digest, Version1Store.sessionText, UInt64(10 + round))))
                #expect(again.duplicate && again.sequence == fresh.sequence)
            }
            if round == 2 {
                // Pruning reads the rewritten dedup_order values: the migrated
                // entries (stored in 2026-05) are past the 120 s window and go.
                _ = try await store.prune()
                let expired = try await store.append(try message("old.t", "late", producerKey: try key(testDigest, Version1Store.sessionA)))
                #expect(!expired.duplicate)
            }
            store.close()
        }
    }

    @Test("a version-3 cursor (sequence only) opens with an unknown filter; the store becomes version 5 and keeps filters")
    func version3CursorHasNoFilter() async throws {
        let dir = try TemporaryDirectory(prefix: "relay-store-v3")
        defer { dir.remove() }
        // A version-3 store as the old writer left it: an eight-byte cursor value.
        do {
            let store = try MessageStore.open(configuration(dir))
            let key = try Schema.cursorKey(owner: testOwner(7), name: "jobs")
            let old = withUnsafeBytes(of: UInt64(5).bigEndian) { Array($0) }
            let three = withUnsafeBytes(of: UInt32(3).bigEndian) { Array($0) }
            let schema = store.schema
            try store.environment.write { (txn) throws(StoreError) in
                try key.withBytes { (k) throws(StoreError) in
                    try old.withBytes { (v) throws(StoreError) in _ = try txn.put(schema.cursors, key: k, value: v) }
                }
                try Schema.versionKey.withBytes { (k) throws(StoreError) in
                    try three.withBytes { (v) throws(StoreError) in _ = try txn.put(schema.meta, key: k, value: v) }
                }
            }
            store.close()
        }
        let store = try MessageStore.open(configuration(dir))
        defer { store.close() }
        #expect(try store.durableCursor(owner: testOwner(7), name: "jobs") == DurableCursor(sequence: 5, filter: nil))
        #expect(try store.durableCursors() == [DurableCursorRecord(owner: testOwner(7), name: "jobs", cursor: 5, filter: nil)])
        let schema = store.schema
        let version = try store.environment.read { (txn) throws(StoreError) -> UInt32? in
            try Schema.versionKey.withBytes { (k) throws(StoreError) -> UInt32? in
                try txn.get(schema.meta, key: k) { UInt32(bigEndian: $0.loadUnaligned(as: UInt32.self)) }
            }
        }
        #expect(version == 5)
        try await store.commitCursor(owner: testOwner(7), name: "jobs", sequence: 5, filter: "jobs.>")
        #expect(try store.durableCursor(owner: testOwner(7), name: "jobs") == DurableCursor(sequence: 5, filter: "jobs.>"))
    }

    @Test("a store from a newer schema version is refused with what to do, and left untouched")
    func newerVersionIsRefused() throws {
        let dir = try TemporaryDirectory(prefix: "relay-store-newer")
        defer { dir.remove() }
        let newer = Schema.version + 1
        try Version1Store.write(at: dir.path, version: newer)
        #expect {
            _ = try MessageStore.open(configuration(dir))
        } throws: { error in
            guard let error = error as? StoreError, case .schemaVersionMismatch(_, newer, Schema.version) = error else { return false }
            return error.description.contains("run the relay version that wrote the store")
        }
        // Still the newer version: a refused open writes nothing.
        #expect {
            _ = try MessageStore.open(configuration(dir))
        } throws: { error in
            guard case .schemaVersionMismatch(_, newer, _) = error as? StoreError else { return false }
            return true
        }
    }
}
