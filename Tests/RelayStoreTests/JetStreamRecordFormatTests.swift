import Foundation
import NIOConcurrencyHelpers
import NIOCore
import RelayCore
@testable import RelayJetStream
@testable import RelayStore
import RelayTestSupport
import Testing

/// Record format 2 (docs/cluster.md, "Record formats and rolling upgrades"):
/// the record leaves out the topic (the subject carries it) and the
/// Nats-Msg-Id is compact; every edge reads format 1 and 2, so edges of both
/// versions share one stream during a rolling upgrade.
@Suite("JetStream record format 2", .serialized)
struct JetStreamRecordFormatTests {
    private static let stamp: UInt64 = 1_764_000_000_123_456_789

    @Test("format 2 round trip: 'R' 2, no topic inside, the topic from the subject, every other field kept")
    func roundTripV2() throws {
        let original = try message("orders.eu", "payload", headers: try headerBlock([("trace", "abc"), ("k", "v")]))
        let v2 = JetStreamRecord.encode(original, timestamp: Self.stamp, format: .v2)
        let v1 = JetStreamRecord.encode(original, timestamp: Self.stamp, format: .v1)
        #expect(v2.getBytes(at: 0, length: 2) == [0x52, 0x02])
        #expect(v2.readableBytes == v1.readableBytes + 1 - (2 + "orders.eu".utf8.count))
        let decoded = try JetStreamRecord.decode(v2, sequence: 9, topic: "orders.eu")
        #expect(decoded.sequence == 9 && decoded.timestamp == Self.stamp)
        #expect(decoded.topic.value == "orders.eu" && decoded.text == "payload")
        #expect(decoded.publisher == testPublisher && decoded.headers == original.headers)
        #expect(JetStreamRecord.payloadLength(of: v2) == "payload".utf8.count)
        #expect(JetStreamRecord.timestamp(of: v2) == Self.stamp)
        #expect(throws: StoreError.self) { try JetStreamRecord.decode(v2, sequence: 9, topic: nil) }
    }

    @Test("format 1 records are still read, with their own topic, by the new decoder")
    func v1StillReadable() throws {
        let original = try message("billing.q", "old", headers: try headerBlock([("a", "b")]))
        let v1 = JetStreamRecord.encode(original, timestamp: Self.stamp, format: .v1)
        #expect(v1.getInteger(at: 0, as: UInt8.self) == 1)
        for subjectTopic in [nil, "billing.q"] as [Substring?] {
            let decoded = try JetStreamRecord.decode(v1, sequence: 3, topic: subjectTopic)
            #expect(decoded.topic.value == "billing.q" && decoded.text == "old" && decoded.timestamp == Self.stamp)
            #expect(decoded.publisher == testPublisher && decoded.headers == original.headers)
        }
        #expect(JetStreamRecord.payloadLength(of: v1) == 3)
        #expect(JetStreamRecord.timestamp(of: v1) == Self.stamp)
        #expect(throws: StoreError.self) { try JetStreamRecord.decode(ByteBuffer(bytes: [0x52, 0x03, 0, 0]), sequence: 1, topic: "x") }
    }

    @Test("the compact message id carries the whole producer key: one id per key, 'r' + base64url, at most 77 characters")
    func compactIDIsOneToOne() throws {
        let other = CertificateFingerprint(w0: 1, w1: 2, w2: 3, w3: 4)
        var keys: [ProducerKey] = []
        for publisher in [testDigest, other] {
            for (high, low) in [(UInt64(0), UInt64(0)), (7, 8), (8, 7), (.max, .max)] {
                for id in [0, 1, 255, 256, 65_535, 65_536, 1 << 40, .max] as [UInt64] {
                    keys.append(ProducerKey(publisher: publisher, sessionHigh: high, sessionLow: low, publishID: id))
                }
            }
        }
        let ids = keys.map(JetStreamRecord.compactMessageID)
        #expect(Set(ids).count == keys.count)
        for (key, id) in zip(keys, ids) {
            #expect(id.first == "r" && id.count <= 77, "\(id)")
            #expect(id != JetStreamRecord.messageID(key))
            // Decoding the base64url gives back exactly the key's bytes.
            var text = String(id.dropFirst()).replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
            text += String(repeating: "=", count: (4 - text.count % 4) % 4)
            let bytes = try #require(Data(base64Encoded: text).map { [UInt8]($0) }, "\(id)")
            var expected: [UInt8] = []
            for word in [key.publisher.w0, key.publisher.w1, key.publisher.w2, key.publisher.w3, key.sessionHigh, key.sessionLow] {
                expected += withUnsafeBytes(of: word.bigEndian) { Array($0) }
            }
            expected += withUnsafeBytes(of: key.publishID.bigEndian) { Array($0) }.drop { $0 == 0 }
            #expect(bytes == expected, "\(id)")
        }
        #expect(JetStreamRecord.messageID(keys[9], format: .v1) == JetStreamRecord.messageID(keys[9]))
        #expect(JetStreamRecord.messageID(keys[9], format: .v2) == ids[9])
    }

    private func open(_ server: SingleNATSServer, format: JetStreamRecordFormat) throws -> JetStreamMessageLog {
        var configuration = StoreConfiguration(directory: "/nonexistent/jetstream")
        configuration.maxMapSize = 256 << 20
        var settings = server.jetStreamSettings(replicas: 1)
        settings.recordFormat = format
        return try JetStreamMessageLog.open(configuration, settings: settings)
    }

    @Test("a rolling upgrade: a format 1 edge and a format 2 edge on one stream read each other's messages (reads and tail)")
    func mixedFormatsShareOneLog() async throws {
        let server = try await SingleNATSServer(pki: TLSTestPKI())
        let old = try open(server, format: .v1), new = try open(server, format: .v2)
        defer { old.close(); new.close() }
        let tailed = NIOLockedValueBox<[String]>([])
        try old.startTail(after: 0) { messages in tailed.withLockedValue { $0 += messages.map { "\($0.topic.value):\($0.text)" } } }
        let headers = try headerBlock([("h", "1")])
        _ = try await old.appendAndWait(try message("t.one", "from v1", headers: headers))
        _ = try await new.appendAndWait(try message("t.two.deep", "from v2", headers: headers))
        let stored = try #require(try new.get(2, next: false))
        #expect(stored.data.getBytes(at: 0, length: 2) == [0x52, 0x02])
        for log in [old, new] {
            let all = try log.readAll()
            #expect(all.map { "\($0.topic.value):\($0.text)" } == ["t.one:from v1", "t.two.deep:from v2"])
            #expect(all.allSatisfy { $0.headers == headers && $0.publisher == testPublisher })
            #expect(try log.readAll(filter: "t.two.>").map(\.text) == ["from v2"])
        }
        // The tail is pushed by the server: wait for it, with a deadline.
        let both = await eventually(timeout: 5) { tailed.withLockedValue { $0 }.count == 2 }
        let saw = tailed.withLockedValue { $0 }
        #expect(both && saw == ["t.one:from v1", "t.two.deep:from v2"], "tail saw \(saw)")
    }

    @Test("format 2: a producer key retried through another edge is a duplicate with the original sequence and timestamp")
    func compactIDDeduplicatesAcrossEdges() async throws {
        let server = try await SingleNATSServer(pki: TLSTestPKI())
        let a = try open(server, format: .v2), b = try open(server, format: .v2)
        defer { a.close(); b.close() }
        let key = ProducerKey(publisher: testDigest, sessionHigh: 1, sessionLow: 2, publishID: 300)
        let first = try await a.appendAndWait(try message("d.x", "once", producerKey: key))
        let other = try await a.appendAndWait(try message("d.x", "other id",
                                                          producerKey: ProducerKey(publisher: testDigest, sessionHigh: 1, sessionLow: 2, publishID: 301)))
        let retried = try await b.appendAndWait(try message("d.x", "once again", producerKey: key))
        #expect(!first.duplicate && !other.duplicate && other.sequence == first.sequence + 1)
        #expect(retried.duplicate && retried.sequence == first.sequence && retried.timestamp == first.timestamp)
        #expect(try b.readAll().map(\.text) == ["once", "other id"])
    }
}
