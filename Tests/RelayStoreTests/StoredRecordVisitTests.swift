import NIOCore
import RelayCore
@testable import RelayStore
import RelayWire
import Testing

/// A visiting read (the replay's path: each record written straight into the
/// output) hands over the same messages, bounds and continuation point as a
/// batch read, and a record's delivery fields are the MSG encoding of the
/// decoded message.
@Suite struct StoredRecordVisitTests {
    /// What a visit saw: sequence, timestamp and the written delivery fields.
    struct Seen: Equatable {
        var sequence: UInt64
        var timestamp: UInt64
        var fields: [UInt8]
    }

    /// The fields a MSG carries after its timestamp, encoded from a decoded message.
    static func fields(of message: StoredMessage) throws -> [UInt8] {
        let frame = Frame.message(Message(subscriptionID: 0, sequence: message.sequence, timestamp: message.timestamp,
                                          topic: message.topic.value, publisherPrincipal: message.publisher.principal,
                                          publisherFingerprint: message.publisher.fingerprint,
                                          headers: Headers(validated: message.headers.encoded, count: message.headers.count),
                                          payload: message.payload))
        // length u32, type, flags, subscription id u32, sequence, timestamp
        return Array(try frame.encoded().readableBytesView.dropFirst(4 + 2 + 4 + 16))
    }

    static func visit(_ log: any MessageLog, from: UInt64, filter: String, maxMessages: Int = 1024, maxBytes: Int = 1 << 20,
                      stopAt: UInt64? = nil) throws -> ([Seen], ReadProgress) {
        var seen: [Seen] = [], sizes: [Int] = []
        let progress = try log.visit(from: from, filter: try TopicFilter(filter), maxMessages: maxMessages, maxBytes: maxBytes,
                                     maxScan: 65_536) { record in
            if record.sequence == stopAt { return false }
            var out = ByteBuffer()
            record.writeDeliveryFields(into: &out)
            sizes.append(record.deliveryFieldsSize)
            seen.append(Seen(sequence: record.sequence, timestamp: record.timestamp, fields: Array(buffer: out)))
            return true
        }
        // deliveryFieldsSize (what the MSG's length is computed from) is what was written.
        #expect(sizes == seen.map(\.fields.count))
        return (seen, progress)
    }

    static func messages() throws -> [NewMessage] {
        let block = try headerBlock([("b", "2"), ("a", ""), ("b", String(repeating: "v", count: 600))])
        let other = PublisherStamp(principal: "CN=other", fingerprint: .zero)
        return try (0..<40).map { i in
            try message(i % 4 == 3 ? "v.other" : "v.t", String(repeating: "p", count: i * 50), headers: i % 2 == 0 ? block : .empty,
                        publisher: i % 5 == 0 ? other : testPublisher)
        }
    }

    @Test("a visit writes, for every log and filter, the MSG fields of what a read decodes", arguments: LogKind.local)
    func visitMatchesRead(kind: LogKind) async throws {
        try await withLog(kind) { log in
            _ = try await log.appendAll(try Self.messages())
            for filter in ["v.t", "v.*", ">"] {
                let batch = try log.read(from: 1, filter: try TopicFilter(filter), maxMessages: 1024, maxBytes: 1 << 20, maxScan: 65_536)
                let (seen, progress) = try Self.visit(log, from: 1, filter: filter)
                let wanted = try batch.messages.map { Seen(sequence: $0.sequence, timestamp: $0.timestamp, fields: try Self.fields(of: $0)) }
                #expect(seen == wanted, "filter \(filter)")
                #expect(progress == ReadProgress(next: batch.next, reachedEnd: batch.reachedEnd), "filter \(filter)")
            }
        }
    }

    @Test("a visit stops at maxMessages and maxBytes as a read does, and before a refused record", arguments: LogKind.local)
    func visitBoundsAndRefusal(kind: LogKind) async throws {
        try await withLog(kind) { log in
            _ = try await log.appendAll(try Self.messages())
            for (filter, maxMessages, maxBytes) in [("v.t", 5, 1 << 20), ("v.*", 1024, 3_000), (">", 7, 1)] {
                let batch = try log.read(from: 3, filter: try TopicFilter(filter), maxMessages: maxMessages, maxBytes: maxBytes,
                                         maxScan: 65_536)
                let (seen, progress) = try Self.visit(log, from: 3, filter: filter, maxMessages: maxMessages, maxBytes: maxBytes)
                #expect(seen.map(\.sequence) == batch.messages.map(\.sequence), "filter \(filter)")
                #expect(progress == ReadProgress(next: batch.next, reachedEnd: batch.reachedEnd), "filter \(filter)")
            }
            // Refusing sequence 10 stops before it: the next read starts there.
            for filter in ["v.t", ">"] {
                let (seen, progress) = try Self.visit(log, from: 1, filter: filter, stopAt: 10)
                let last = try #require(seen.last, "filter \(filter)")
                #expect(last.sequence < 10, "filter \(filter)")
                #expect(progress == ReadProgress(next: 10, reachedEnd: false), "filter \(filter)")
            }
        }
    }

    @Test("a record older writers stored (hex fingerprint, u32 header values) visits as its decoded message")
    func oldFormatRecordVisitsAsDecoded() throws {
        let record = OldFormatRecord.encode(timestamp: 9, topic: "t", principal: "p", fingerprint: testDigest.hex,
                                            headers: [(name: "trace", value: "b"), (name: "x", value: "")], payload: "body")
        var decoder = RecordDecoder(expectedBytes: 64)
        var check = RecordCheck()
        var fields: [UInt8] = [], size = 0
        try record.withBytes { (raw) throws(StoreError) in
            try decoder.decode(raw, sequence: 4)
            let visited = try check.check(raw, sequence: 4)
            var out = ByteBuffer()
            visited.writeDeliveryFields(into: &out)
            fields = Array(buffer: out)
            size = visited.deliveryFieldsSize
        }
        let decoded = try #require(decoder.finish().first)
        #expect(decoded.publisher.fingerprint == testDigest)
        #expect(fields == (try Self.fields(of: decoded)))
        #expect(size == fields.count)
    }
}
