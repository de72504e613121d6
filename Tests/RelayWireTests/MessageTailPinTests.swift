import NIOCore
import RelayCore
import Testing
@testable import RelayWire

/// Pins the bytes of a MSG as the broker's fast path writes it
/// (``PreparedMessage``'s tail and frame), written out from
/// Protocol/relay-v1.md's MSG layout rather than from another encoder:
/// seen passing before the tail was written in one sized pass (wave 8).
@Suite struct MessageTailPinTests {
    static let fingerprint = CertificateFingerprint(w0: 0x0011_2233_4455_6677, w1: 0x8899_AABB_CCDD_EEFF,
                                                    w2: 0x0102_0304_0506_0708, w3: 0xF0E0_D0C0_B0A0_9080)

    @Test("a MSG tail and frame: sequence, timestamp, str16 topic and principal, fingerprint, u16 header count and block, payload",
          arguments: [false, true])
    func tailAndFrameBytes(withHeaders: Bool) throws {
        let headers: Headers = withHeaders ? [("k", "v"), ("trace", "")] : .empty
        let prepared = try PreparedMessage(sequence: 0x0102, timestamp: 0x1122_3344_5566_7788, topic: "bench.pubsub.ab",
                                           publisherPrincipal: "svc", publisherFingerprint: Self.fingerprint,
                                           headers: headers, payload: ByteBuffer(string: "hello"))
        let headerBytes = withHeaders ? "0002" + "0001" + ascii("k") + "0001" + ascii("v") + "0005" + ascii("trace") + "0000" : "0000"
        let tail = "0000000000000102" + "1122334455667788"
            + "000f" + ascii("bench.pubsub.ab")
            + "0003" + ascii("svc")
            + "00112233445566778899aabbccddeeff0102030405060708f0e0d0c0b0a09080"
            + headerBytes
            + ascii("hello")
        #expect(hex(prepared.tail) == tail)
        var frame = ByteBuffer(bytes: [0xAA])
        try prepared.write(subscriptionID: 0x0A0B_0C0D, replayed: true, into: &frame, maxFrameSize: 1 << 20)
        let length = String(format: "%08x", 2 + 4 + tail.utf8.count / 2)
        #expect(hex(frame) == "aa" + length + "30" + "01" + "0a0b0c0d" + tail)
    }
}

private func hex(_ buffer: ByteBuffer) -> String {
    buffer.readableBytesView.map { String(format: "%02x", $0) }.joined()
}

private func ascii(_ text: String) -> String { text.utf8.map { String(format: "%02x", $0) }.joined() }
