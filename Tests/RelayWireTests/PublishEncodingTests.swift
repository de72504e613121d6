import NIOCore
import Testing
@testable import RelayWire

/// PUB written by ``ByteBuffer/writePublish(publishID:topic:headers:payload:maxFrameSize:)``
/// (PublishEncoding.swift): the spec's layout (Protocol/relay-v1.md §4.3),
/// byte for byte what ``Frame/encode(into:maxFrameSize:)`` writes, after
/// whatever the buffer already holds; refused, writing nothing, where
/// `Frame.encode` refuses.
@Suite("One-step PUB encoding")
struct PublishEncodingTests {
    /// The layout spelled out field by field, independently of either encoder.
    static func expected(id: UInt64, topic: String, headerCount: UInt16, headerBlock: [UInt8], payload: [UInt8]) -> [UInt8] {
        func be<T: FixedWidthInteger>(_ v: T) -> [UInt8] {
            (0..<MemoryLayout<T>.size).reversed().map { UInt8(truncatingIfNeeded: v >> ($0 * 8)) }
        }
        let body: [UInt8] = [0x10, 0x00] + be(id) + be(UInt16(topic.utf8.count)) + Array(topic.utf8)
            + be(headerCount) + headerBlock + payload
        return be(UInt32(body.count)) + body
    }

    @Test("PUB bytes without and with headers, empty and large payloads, appended after existing bytes")
    func layout() throws {
        let headers = try Headers([HeaderField(key: "trace-id", value: "abc"), HeaderField(key: "k", value: "")])
        let cases: [(UInt64, String, Headers, [UInt8])] = [
            (1, "orders.eu.created", .empty, Array("hello".utf8)),
            (.max, "a", headers, []),
            (0x0102_0304_0506_0708, "bench.pubsub.topic-with-a-longer-name", headers, (0..<4096).map { UInt8(truncatingIfNeeded: $0) }),
        ]
        for (id, topic, headers, payload) in cases {
            var buffer = ByteBuffer(bytes: [0xAA, 0xBB])
            try buffer.writePublish(publishID: id, topic: topic, headers: headers, payload: ByteBuffer(bytes: payload))
            var viaFrame = ByteBuffer(bytes: [0xAA, 0xBB])
            try Frame.publish(Publish(publishID: id, topic: topic, headers: headers, payload: ByteBuffer(bytes: payload)))
                .encode(into: &viaFrame)
            #expect(buffer == viaFrame)
            let block = Array(headers.encoded.readableBytesView)
            #expect(Array(buffer.readableBytesView) == [0xAA, 0xBB]
                + Self.expected(id: id, topic: topic, headerCount: UInt16(headers.count), headerBlock: block, payload: payload))
        }
    }

    /// The client keeps a publish without headers as nil (wave 22): the
    /// same bytes as `.empty`, for short, long (65,535 bytes, the most a str16 holds) and
    /// multi-byte UTF-8 topics, and the same refusals.
    @Test("nil headers write what .empty writes, for any topic length and UTF-8")
    func nilHeaders() throws {
        let topics = ["a", "orders.eu.created", "zürich.preise.€", String(repeating: "t", count: 65_535)]
        for (index, topic) in topics.enumerated() {
            let payload = ByteBuffer(bytes: (0..<(index * 300)).map { UInt8(truncatingIfNeeded: $0) })
            var viaNil = ByteBuffer(bytes: [0xCC])
            try viaNil.writePublish(publishID: UInt64(index) + 7, topic: topic, headers: nil, payload: payload)
            var viaEmpty = ByteBuffer(bytes: [0xCC])
            try viaEmpty.writePublish(publishID: UInt64(index) + 7, topic: topic, headers: .empty, payload: payload)
            var viaFrame = ByteBuffer(bytes: [0xCC])
            try Frame.publish(Publish(publishID: UInt64(index) + 7, topic: topic, headers: .empty, payload: payload))
                .encode(into: &viaFrame)
            #expect(viaNil == viaFrame)
            #expect(viaEmpty == viaFrame)
            #expect(Array(viaNil.readableBytesView) == [0xCC] + Self.expected(
                id: UInt64(index) + 7, topic: topic, headerCount: 0, headerBlock: [], payload: Array(payload.readableBytesView)))
        }
        var buffer = ByteBuffer(bytes: [1])
        let payload = ByteBuffer(repeating: 7, count: 100)
        #expect(throws: WireError.self) {
            try buffer.writePublish(publishID: 1, topic: "a.b", headers: nil, payload: payload, maxFrameSize: 116)
        }
        #expect(throws: WireError.self) {
            try buffer.writePublish(publishID: 1, topic: String(repeating: "x", count: 65_536), headers: nil, payload: payload)
        }
        #expect(Array(buffer.readableBytesView) == [1])
    }

    @Test("a frame over the limit or a topic over 65,535 bytes throws and writes nothing")
    func refusals() throws {
        var buffer = ByteBuffer(bytes: [1, 2, 3])
        let payload = ByteBuffer(repeating: 7, count: 100)
        // 2 + 8 + 2 + 3 ("a.b") + 2 + 100 = 117 bytes after the length: one over 116.
        #expect(throws: WireError.self) {
            try buffer.writePublish(publishID: 1, topic: "a.b", headers: .empty, payload: payload, maxFrameSize: 116)
        }
        #expect(Array(buffer.readableBytesView) == [1, 2, 3])
        try buffer.writePublish(publishID: 1, topic: "a.b", headers: .empty, payload: payload, maxFrameSize: 117)
        #expect(buffer.readableBytes == 3 + 4 + 117)
        var untouched = ByteBuffer(bytes: [9])
        let long = String(repeating: "x", count: 65_536)
        #expect(throws: WireError.self) {
            try untouched.writePublish(publishID: 1, topic: long, headers: .empty, payload: payload)
        }
        #expect(Array(untouched.readableBytesView) == [9])
    }
}
