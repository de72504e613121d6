import NIOCore
import Testing
@testable import RelayWire

/// PUBACK is written in one step (FixedFrameEncoding.swift); its bytes must
/// be the spec's layout (Protocol/relay-v1.md §4.4), after whatever the
/// buffer already holds.
@Suite("One-write PUBACK encoding")
struct FixedFrameEncodingTests {
    /// The layout spelled out field by field, independently of the encoder.
    static func expected(_ ack: PublishAck) -> [UInt8] {
        func be<T: FixedWidthInteger>(_ v: T) -> [UInt8] {
            (0..<MemoryLayout<T>.size).reversed().map { UInt8(truncatingIfNeeded: v >> ($0 * 8)) }
        }
        // The length counts type and flags (2) and the three u64s (24).
        return be(UInt32(26)) + [0x11, ack.duplicate ? 0x01 : 0x00] + be(ack.publishID) + be(ack.sequence) + be(ack.timestamp)
    }

    @Test("PUBACK bytes, duplicate flag off and on, appended after existing bytes, and decoded back")
    func layout() throws {
        let acks = [PublishAck(publishID: 1, sequence: 2, timestamp: 3),
                    PublishAck(publishID: .max, sequence: 0x0102_0304_0506_0708, timestamp: 1_764_800_000_000_000_000,
                               duplicate: true)]
        for ack in acks {
            var buffer = ByteBuffer(bytes: [0xAA, 0xBB])
            try Frame.publishAck(ack).encode(into: &buffer)
            #expect(Array(buffer.readableBytesView) == [0xAA, 0xBB] + Self.expected(ack))
            buffer.moveReaderIndex(forwardBy: 2)
            var decoder = RelayFrameDecoder(role: .client, expectHandshake: false)
            #expect(try decoder.decodeFrame(&buffer) == .publishAck(ack))
            #expect(buffer.readableBytes == 0)
        }
    }

    @Test("many PUBACKs into one growing buffer")
    func growing() throws {
        var buffer = ByteBuffer()
        var expected: [UInt8] = []
        for i in UInt64(0)..<200 {
            let ack = PublishAck(publishID: i, sequence: i * 3, timestamp: i << 40, duplicate: i % 7 == 0)
            try Frame.publishAck(ack).encode(into: &buffer)
            expected += Self.expected(ack)
        }
        #expect(buffer.readableBytes == 200 * 30)
        #expect(buffer.readableBytesView.elementsEqual(expected))
    }
}
