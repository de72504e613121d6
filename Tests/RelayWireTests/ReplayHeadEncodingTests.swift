import NIOCore
import RelayCore
import Testing
@testable import RelayWire

/// A replay writes each MSG as `PreparedMessage.writeHead` (length, type,
/// flags, subscription id, sequence, timestamp: one 26-byte write since
/// wave 10) followed by the stored fields. Together they must be the bytes
/// `Frame.message` encodes, after whatever the buffer already holds.
@Suite("Replay MSG head encoding")
struct ReplayHeadEncodingTests {
    static let messages: [Message] = [
        Message(subscriptionID: 1, sequence: 1, timestamp: 2, topic: "t", publisherPrincipal: "p",
                publisherFingerprint: CertificateFingerprint(w0: 1, w1: 2, w2: 3, w3: 4),
                payload: ByteBuffer(string: "x"), replayed: true),
        Message(subscriptionID: .max, sequence: 0x0102_0304_0506_0708, timestamp: 1_764_800_000_000_000_000,
                topic: "orders.eu.created", publisherPrincipal: "svc-orders",
                publisherFingerprint: CertificateFingerprint(w0: .max, w1: 0, w2: 0xABCD, w3: 7),
                headers: [("content-type", "application/json"), ("trace", "")],
                payload: ByteBuffer(bytes: (0..<300).map { UInt8(truncatingIfNeeded: $0) }), replayed: true),
        Message(subscriptionID: 0x8000_0001, sequence: .max, timestamp: 0, topic: "a.b", publisherPrincipal: "",
                publisherFingerprint: CertificateFingerprint(w0: 0, w1: 0, w2: 0, w3: 0),
                payload: ByteBuffer(), replayed: false),
    ]

    /// Head by `writeHead`, then the encoded frame's bytes after its head.
    static func headThenFields(_ m: Message, after prefix: [UInt8], maxFrameSize: Int) throws -> (ByteBuffer, [UInt8]) {
        var reference = ByteBuffer()
        try Frame.message(m).encode(into: &reference)
        let frame = Array(reference.readableBytesView)
        var out = ByteBuffer(bytes: prefix)
        try PreparedMessage.writeHead(subscriptionID: m.subscriptionID, replayed: m.replayed, sequence: m.sequence,
                                      timestamp: m.timestamp, fieldsSize: frame.count - PreparedMessage.headSize,
                                      into: &out, maxFrameSize: maxFrameSize)
        out.writeBytes(frame[PreparedMessage.headSize...])
        return (out, frame)
    }

    @Test("head + fields equal Frame.message's bytes, appended after existing bytes, and decode back")
    func sameBytesAsTheFrameEncoder() throws {
        #expect(PreparedMessage.headSize == 26)
        for m in Self.messages {
            var (out, frame) = try Self.headThenFields(m, after: [0xAA, 0xBB, 0xCC], maxFrameSize: 1 << 20)
            #expect(Array(out.readableBytesView) == [0xAA, 0xBB, 0xCC] + frame)
            out.moveReaderIndex(forwardBy: 3)
            var decoder = RelayFrameDecoder(role: .client, expectHandshake: false)
            #expect(try decoder.decodeFrame(&out) == .message(m))
            #expect(out.readableBytes == 0)
        }
    }

    @Test("a frame one byte over the peer's limit throws frame_too_large and writes nothing; at the limit it is written")
    func limit() throws {
        for m in Self.messages {
            var reference = ByteBuffer()
            try Frame.message(m).encode(into: &reference)
            let length = reference.readableBytes - 4  // the length field does not count itself
            var out = ByteBuffer(bytes: [0x01])
            #expect(throws: WireError.self) {
                try PreparedMessage.writeHead(subscriptionID: m.subscriptionID, replayed: m.replayed, sequence: m.sequence,
                                              timestamp: m.timestamp, fieldsSize: length + 4 - PreparedMessage.headSize,
                                              into: &out, maxFrameSize: length - 1)
            }
            #expect(Array(out.readableBytesView) == [0x01])
            let (atLimit, frame) = try Self.headThenFields(m, after: [], maxFrameSize: length)
            #expect(Array(atLimit.readableBytesView) == frame)
        }
    }
}
