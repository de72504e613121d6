import NIOCore
import RelayCore
import Testing
@testable import RelayWire

/// A client decoder reuses the last MSG's topic and principal strings while
/// the bytes repeat (``MessageStringCache``): every frame must still decode
/// to exactly its own strings, including ones of the same length that
/// differ, and bytes that are not UTF-8 must still be refused.
@Suite("MSG topic and principal reuse in the decoder")
struct MessageStringCacheTests {
    func message(_ sequence: UInt64, topic: String, principal: String) -> Frame {
        .message(Message(subscriptionID: 3, sequence: sequence, timestamp: 1_764_383_000_000_000_000 + sequence, topic: topic,
                         publisherPrincipal: principal, publisherFingerprint: .zero,
                         payload: ByteBuffer(bytes: [UInt8(sequence & 0xFF)])))
    }

    @Test("repeated, changed, same-length and empty strings each decode to their own frame's")
    func decodesEveryFrameExactly() throws {
        let frames = [
            message(1, topic: "bench.fanout.0123456789abcdef", principal: "publisher-one"),
            message(2, topic: "bench.fanout.0123456789abcdef", principal: "publisher-one"),
            message(3, topic: "bench.fanout.0123456789abcdeX", principal: "publisher-two"),  // same lengths, other bytes
            message(4, topic: "bench.fanout.0123456789abcdeX", principal: "publisher-one"),
            message(5, topic: "short", principal: ""),
            message(6, topic: "short", principal: ""),
            message(7, topic: "bench.fanout.0123456789abcdef", principal: "publisher-one"),
        ]
        var input = ByteBuffer()
        for frame in frames { try frame.encode(into: &input) }
        var decoder = RelayFrameDecoder(role: .client, expectHandshake: false)
        var decoded: [Frame] = []
        while let frame = try decoder.decodeFrame(&input) { decoded.append(frame) }
        #expect(decoded == frames)
    }

    @Test("a topic that differs from the last one only in invalid UTF-8 is refused, not reused")
    func invalidUTF8AfterValidIsRefused() throws {
        var input = try message(1, topic: "orders.eu", principal: "p").encoded()
        var bad = try message(2, topic: "orders.eX", principal: "p").encoded()
        // Replace the topic's last byte ('X') with 0xFF: same length as the cached topic.
        // Length 4, type and flags 2, subscription id 4, sequence 8, timestamp 8, topic length 2: the topic starts at 28.
        let at = 28 + "orders.e".utf8.count
        #expect(bad.getInteger(at: at, as: UInt8.self) == UInt8(ascii: "X"))
        bad.setInteger(UInt8(0xFF), at: at)
        input.writeBuffer(&bad)
        var decoder = RelayFrameDecoder(role: .client, expectHandshake: false)
        #expect(try decoder.decodeFrame(&input) == message(1, topic: "orders.eu", principal: "p"))
        #expect(throws: WireError.self) { _ = try decoder.decodeFrame(&input) }
    }
}
