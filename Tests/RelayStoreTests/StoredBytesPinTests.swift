import NIOCore
import RelayCore
@testable import RelayStore
import Testing

/// Pins the bytes the writer puts on disk: a log record as `RecordCodec`
/// encodes it, and every entry one group commit leaves in each database
/// (docs/storage.md, "Schema" and "Record"). Written from the documented
/// layout, field by field, and seen passing on the writer before the wave 8
/// changes to the append path: a data directory written by an older relayd
/// must stay readable, and one written now must be the same bytes.
@Suite struct StoredBytesPinTests {
    /// A second publisher: principal ".../audit", digest 32 × 0xA1.
    static let auditDigest = CertificateFingerprint(w0: 0xA1A1_A1A1_A1A1_A1A1, w1: 0xA1A1_A1A1_A1A1_A1A1,
                                                    w2: 0xA1A1_A1A1_A1A1_A1A1, w3: 0xA1A1_A1A1_A1A1_A1A1)
    static let audit = PublisherStamp(principal: "spiffe://example.org/audit", fingerprint: auditDigest)

    @Test("a record's bytes: version, flags, timestamp, topic, principal, fingerprint, headers widened to u32, payload")
    func recordBytes() throws {
        let m = try message("orders.eu", "hello", headers: try headerBlock([("k", "v"), ("trace", "")]))
        let size = try RecordCodec.size(of: m)
        var bytes = [UInt8](repeating: 0xEE, count: size)
        bytes.withUnsafeMutableBytes { RecordCodec.encode(m, timestamp: 0x0102_0304_0506_0708, into: $0) }
        let expected = "01" + "01" + "0102030405060708"
            + "09" + ascii("orders.eu")
            + "001b" + ascii("spiffe://example.org/orders")
            + "20" + String(repeating: "0f", count: 32)
            + "0002"
            + "0001" + ascii("k") + "00000001" + ascii("v")
            + "0005" + ascii("trace") + "00000000"
            + ascii("hello")
        #expect(hex(bytes) == expected)
        #expect(size == expected.utf8.count / 2)
    }

    @Test("a record cut at a page boundary: the head is the whole record's first bytes with flag bit 1 set, the tail its last bytes")
    func splitRecordBytes() async throws {
        try await withStore { store, _ in
            let split = store.schema.recordSplit
            let empty = try RecordCodec.size(of: try message("t", ""))
            let payload = (0..<(split.pageCapacity + 10 - empty)).map { UInt8(truncatingIfNeeded: $0) }
            let m = NewMessage(topic: try Topic("t"), payload: ByteBuffer(bytes: payload), headers: .empty,
                               publisher: testPublisher, producerKey: nil)
            let size = try RecordCodec.size(of: m)
            #expect(split.headLength(recordSize: size, payloadStart: empty) == split.pageCapacity)
            let receipt = try #require(try await store.append([m]).first).get()
            var whole = [UInt8](repeating: 0, count: size)
            whole.withUnsafeMutableBytes { RecordCodec.encode(m, timestamp: receipt.timestamp, into: $0) }
            var head = Array(whole[..<split.pageCapacity])
            head[1] = 0x03  // raw fingerprint | continues in log_tail
            let key = u64(receipt.sequence) + "="
            let found = try Self.entries(of: store)
            #expect(found["log"] == [key + hex(head)])
            #expect(found["log_tail"] == [key + hex(Array(whole[split.pageCapacity...]))])
            #expect(Array(whole[split.pageCapacity...]) == Array(payload.suffix(10)))
        }
    }

    @Test("one store's databases after two commits (new, duplicate, out-of-order and second-publisher keys)")
    func databaseEntries() async throws {
        try await withStore { store, _ in
            let key = { (digest: CertificateFingerprint, high: UInt64, low: UInt64, id: UInt64) in
                ProducerKey(publisher: digest, sessionHigh: high, sessionLow: low, publishID: id)
            }
            let first = try await store.append([
                try message("orders.eu", "one", headers: try headerBlock([("k", "v")]), producerKey: key(testDigest, 5, 1, 1)),
                try message("audit", "", publisher: Self.audit),
                try message("orders.eu", "three", producerKey: key(testDigest, 5, 1, 2)),
            ]).map { try $0.get() }
            let second = try await store.append([
                try message("orders.eu", "retry", producerKey: key(testDigest, 5, 1, 1)),  // a duplicate
                try message("orders.eu", "five", producerKey: key(testDigest, 2, 9, 1)),  // sorts below the stored keys
                try message("audit", "six", publisher: Self.audit, producerKey: key(Self.auditDigest, 1, 1, 1)),
            ]).map { try $0.get() }
            let t1 = first[0].timestamp, t2 = second[1].timestamp
            let firstCommit = first.allSatisfy { $0.timestamp == t1 && !$0.duplicate }
            #expect(first.map(\.sequence) == [1, 2, 3] && firstCommit)
            #expect(second == [AppendReceipt(sequence: 1, timestamp: t1, duplicate: true),
                               AppendReceipt(sequence: 4, timestamp: t2, duplicate: false),
                               AppendReceipt(sequence: 5, timestamp: t2, duplicate: false)])

            let orders = "001b" + ascii("spiffe://example.org/orders") + "20" + String(repeating: "0f", count: 32)
            let audit = "001a" + ascii("spiffe://example.org/audit") + "20" + String(repeating: "a1", count: 32)
            func record(_ t: UInt64, _ topic: String, _ stamp: String, headers: String = "0000", _ payload: String) -> String {
                "0101" + u64(t) + String(format: "%02x", topic.utf8.count) + ascii(topic) + stamp + headers + ascii(payload)
            }
            let records = [
                record(t1, "orders.eu", orders, headers: "0001" + "0001" + ascii("k") + "00000001" + ascii("v"), "one"),
                record(t1, "audit", audit, ""),
                record(t1, "orders.eu", orders, "three"),
                record(t2, "orders.eu", orders, "five"),
                record(t2, "audit", audit, "six"),
            ]
            let dedupKeys = [
                "00000001" + u64(5) + u64(1) + u64(1),
                "00000001" + u64(5) + u64(1) + u64(2),
                "00000001" + u64(2) + u64(9) + u64(1),
                "00000002" + u64(1) + u64(1) + u64(1),
            ]
            let expected: [String: [String]] = [
                "meta": [ascii("next_sequence") + "=" + u64(6), ascii("schema_version") + "=00000005"],
                "log": records.enumerated().map { u64(UInt64($0.offset + 1)) + "=" + $0.element },
                "topics": [ascii("audit") + "=" + u64(2), ascii("audit") + "=" + u64(5),
                           ascii("orders.eu") + "=" + u64(1), ascii("orders.eu") + "=" + u64(3), ascii("orders.eu") + "=" + u64(4)],
                "time": [u64(t1) + "=" + u64(1), u64(t2) + "=" + u64(4)],
                "dedup": [dedupKeys[2] + "=" + u64(4), dedupKeys[0] + "=" + u64(1), dedupKeys[1] + "=" + u64(3),
                          dedupKeys[3] + "=" + u64(5)],
                "dedup_order": [u64(1) + "=" + dedupKeys[0] + u64(t1), u64(3) + "=" + dedupKeys[1] + u64(t1),
                                u64(4) + "=" + dedupKeys[2] + u64(t2), u64(5) + "=" + dedupKeys[3] + u64(t2)],
                "publishers": [String(repeating: "0f", count: 32) + "=00000001", String(repeating: "a1", count: 32) + "=00000002"],
                "topic_stats": [ascii("audit") + "=" + u64(2) + u64(UInt64((records[1].utf8.count + records[4].utf8.count) / 2)),
                                ascii("orders.eu") + "=" + u64(3)
                                    + u64(UInt64((records[0].utf8.count + records[2].utf8.count + records[3].utf8.count) / 2))],
                "cursors": [],
                "log_tail": [],
            ]
            let found = try Self.entries(of: store)
            for name in expected.keys.sorted() {
                #expect(found[name] == expected[name], "database \(name)")
            }
            #expect(Set(found.keys) == Set(expected.keys))
        }
    }

    /// Every entry of every database, as "key=value" in lower-case hex, in LMDB's order.
    static func entries(of store: MessageStore) throws -> [String: [String]] {
        let s = store.schema
        let databases = [s.meta, s.log, s.logTail, s.topics, s.time, s.cursors, s.dedup, s.dedupOrder, s.publishers, s.topicStats]
        return try store.environment.read { (txn) throws(StoreError) -> [String: [String]] in
            var out: [String: [String]] = [:]
            for db in databases {
                var rows: [String] = []
                try txn.withCursor(db) { (cursor) throws(StoreError) in
                    var operation = CursorOperation.first
                    while let row = try cursor.move(operation, { key, value in hex(key) + "=" + hex(value) }) {
                        rows.append(row)
                        operation = .next
                    }
                }
                out[db.name] = rows
            }
            return out
        }
    }
}

private func hex<Bytes: Sequence>(_ bytes: Bytes) -> String where Bytes.Element == UInt8 {
    bytes.map { String(format: "%02x", $0) }.joined()
}

private func ascii(_ text: String) -> String { hex(Array(text.utf8)) }

private func u64(_ v: UInt64) -> String { String(format: "%016llx", v) }
