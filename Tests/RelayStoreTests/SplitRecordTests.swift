import Foundation
import NIOCore
import RelayCore
@testable import RelayStore
import RelayTestSupport
import Testing

/// Records a little longer than whole overflow pages: their last bytes go to
/// `log_tail`, so a 4 KiB payload takes one page of the store instead of two
/// (docs/storage.md, "Records longer than a page").
@Suite struct SplitRecordTests {
    /// A payload whose bytes all differ from their neighbours', so a join at the
    /// wrong offset or a lost byte shows.
    static func payload(_ count: Int, seed: UInt8 = 0) -> [UInt8] {
        (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ $0 >> 8 &+ Int(seed)) }
    }

    static func bigMessage(_ topic: String, _ bytes: [UInt8], headers: HeaderBlock = .empty,
                           producerKey: ProducerKey? = nil) throws -> NewMessage {
        NewMessage(topic: try Topic(topic), payload: ByteBuffer(bytes: bytes), headers: headers,
                   publisher: testPublisher, producerKey: producerKey)
    }

    static func tailCount(_ store: MessageStore) throws -> Int {
        let schema = store.schema
        return try store.environment.read { (txn) throws(StoreError) -> Int in try txn.count(schema.logTail) }
    }

    static func statistics(_ store: MessageStore, _ topic: String) throws -> TopicStatistics? {
        try store.topicStatistics().first { $0.topic == topic }
    }

    /// The detail of the `corrupted` error `body` throws; nil when it throws
    /// nothing or another error.
    static func corruptionDetail(_ body: () throws -> Void) -> String? {
        do {
            try body()
            return nil
        } catch let error as StoreError {
            guard case .corrupted(_, let detail) = error else { return nil }
            return detail
        } catch {
            return nil
        }
    }

    @Test("a 4 KiB payload takes one page of the store, not two")
    func fourKiBTakesOnePage() async throws {
        try await withStore { store, _ in
            let pageSize = store.environment.usage().pageSize
            // Warm up: the first commits create the B-trees' first pages.
            try await appendAll(store, [try Self.bigMessage("big", Self.payload(4096))])
            let before = try store.usage().usedBytes
            let count = 512
            for batch in 0..<(count / 64) {
                try await appendAll(store, try (0..<64).map { i in
                    try Self.bigMessage("big", Self.payload(4096, seed: UInt8(truncatingIfNeeded: batch * 64 + i)))
                })
            }
            let perMessage = Double(try store.usage().usedBytes - before) / Double(count)
            // Two overflow pages per record were 8,192 bytes per message; one
            // page plus its tail's share of a leaf is under 4,096 × 1.25.
            #expect(perMessage < Double(pageSize) * 1.25, "store bytes per 4 KiB message: \(perMessage)")
            #expect(try Self.tailCount(store) == count + 1)
        }
    }

    @Test("records around the page boundaries read back byte-exact, decoded and visited, before and after a reopen",
          arguments: [false, true])
    func boundariesRoundTrip(withHeaders: Bool) async throws {
        let directory = try TemporaryDirectory(prefix: "relay-store-split")
        defer { directory.remove() }
        var configuration = StoreConfiguration(directory: directory.path)
        configuration.initialMapSize = 1 << 20
        configuration.pruneInterval = .seconds(3600)
        let headers = withHeaders ? try headerBlock([("trace", String(repeating: "t", count: 300)), ("k", "v")]) : .empty
        let overhead = try RecordCodec.size(of: try Self.bigMessage("edge.case", [], headers: headers))
        var payloads: [[UInt8]] = []
        do {
            let store = try MessageStore.open(configuration)
            let split = store.schema.recordSplit
            let capacity = split.pageCapacity
            let recordSizes = [capacity - 1, capacity, capacity + 1, capacity + split.tailLimit,
                               capacity + split.tailLimit + 1, 2 * capacity + 5, 3 * capacity]
            let sizes = recordSizes.map { $0 - overhead } + [0, 1, 4096, 4097, 65_536, 1 << 20]
            payloads = sizes.enumerated().map { Self.payload($0.element, seed: UInt8($0.offset)) }
            try await appendAll(store, try payloads.map { try Self.bigMessage("edge.case", $0, headers: headers) })
            // The records that end just past a page, by at most the tail limit, were split.
            let isSplit = { (size: Int) in size > capacity && size % capacity != 0 && size % capacity <= split.tailLimit }
            let expectedSplits = sizes.map { $0 + overhead }.filter(isSplit).count
            #expect(expectedSplits >= 4)
            #expect(try Self.tailCount(store) == expectedSplits)
            try Self.expectReadsBack(store, payloads, headers: headers)
            store.close()
        }
        let reopened = try MessageStore.open(configuration)
        defer { reopened.close() }
        try Self.expectReadsBack(reopened, payloads, headers: headers)
    }

    static func expectReadsBack(_ store: MessageStore, _ payloads: [[UInt8]], headers: HeaderBlock) throws {
        let decoded = try store.read(from: 1, filter: TopicFilter("edge.case"), maxMessages: 100, maxBytes: 1 << 30).messages
        #expect(decoded.count == payloads.count)
        for (message, expected) in zip(decoded, payloads) {
            #expect(Array(buffer: message.payload) == expected, "payload of \(expected.count) bytes, seq \(message.sequence)")
            #expect(message.headers.encoded == headers.encoded)
        }
        // The same through a wildcard visit (the log walk) and the literal
        // one (the topic index), written as MSG fields: the bytes a
        // decoded message would give.
        for filter in ["edge.case", "edge.>"] {
            var visited: [ByteBuffer] = []
            let progress = try store.visit(from: 1, filter: TopicFilter(filter), maxMessages: 100, maxBytes: 1 << 30,
                                           maxScan: 1000) { record in
                var out = ByteBuffer()
                record.writeDeliveryFields(into: &out)
                #expect(out.readableBytes == record.deliveryFieldsSize)
                visited.append(out)
                return true
            }
            #expect(progress.reachedEnd)
            #expect(visited.count == decoded.count)
            for (fields, message) in zip(visited, decoded) {
                var expected = ByteBuffer()
                StoredRecord(message).writeDeliveryFields(into: &expected)
                #expect(fields == expected, "MSG fields of seq \(message.sequence) via \(filter)")
            }
        }
    }

    @Test("purge and retention delete a record's tail with it, and count its bytes")
    func deletionTakesTheTail() async throws {
        try await withStore({ $0.retention = [RetentionRule(filter: try TopicFilter("kept"), maxMessages: 2)] }) { store, _ in
            try await appendAll(store, try (0..<5).map { try Self.bigMessage("kept", Self.payload(4096, seed: UInt8($0))) })
            try await appendAll(store, try (0..<3).map { try Self.bigMessage("gone", Self.payload(4096, seed: UInt8($0))) })
            #expect(try Self.tailCount(store) == 8)
            let recordSize = try RecordCodec.size(of: try Self.bigMessage("gone", Self.payload(4096)))
            let gone = try #require(try Self.statistics(store, "gone"))
            #expect(gone.bytes == UInt64(3 * recordSize))
            let purged = try store.purge(TopicFilter("gone"))
            #expect(purged == PurgeResult(messages: 3, bytes: UInt64(3 * recordSize), topics: 1))
            #expect(try Self.tailCount(store) == 5)
            #expect(try await store.prune() == 3)
            #expect(try Self.tailCount(store) == 2)
            let kept = try #require(try Self.statistics(store, "kept"))
            #expect(kept.messages == 2 && kept.bytes == UInt64(2 * recordSize))
            let left = try store.read(from: 1, filter: TopicFilter(">"), maxMessages: 10, maxBytes: 1 << 30).messages
            let leftPayloads = left.map { Array(buffer: $0.payload) }
            #expect(leftPayloads == [Self.payload(4096, seed: 3), Self.payload(4096, seed: 4)])
        }
    }

    @Test("a split record whose tail is missing is reported as corrupted, not delivered short")
    func missingTailIsCorruption() async throws {
        try await withStore { store, _ in
            let sequence = try #require(try await appendAll(store, [try Self.bigMessage("t", Self.payload(4096))]).first)
            let schema = store.schema
            try store.environment.write { (txn) throws(StoreError) in
                _ = try withBigEndianBytes(sequence) { (key) throws(StoreError) in try txn.delete(schema.logTail, key: key) }
            }
            let readDetail = Self.corruptionDetail {
                _ = try store.read(from: 1, filter: TopicFilter("t"), maxMessages: 10, maxBytes: 1 << 30)
            }
            #expect(readDetail?.contains("log_tail") == true && readDetail?.contains("record \(sequence) ") == true,
                    "read: \(String(describing: readDetail))")
            let visitDetail = Self.corruptionDetail {
                _ = try store.visit(from: 1, filter: TopicFilter(">"), maxMessages: 10, maxBytes: 1 << 30, maxScan: 10) { _ in true }
            }
            #expect(visitDetail?.contains("log_tail") == true, "visit: \(String(describing: visitDetail))")
        }
    }
}
