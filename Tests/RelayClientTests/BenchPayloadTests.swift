import NIOCore
import RelayBench
import Testing

/// The bench's payload (BenchPayload.swift): its layout is what the
/// subscribers check and what `scripts/relay_bench.c` writes too, so the
/// bytes are pinned, not only the round trip.
@Suite("Bench payload layout")
struct BenchPayloadTests {
    @Test("header big endian (publisher u32, counter u64, send time u64), then 'r' up to the size", arguments: [0, 20, 21, 128, 4096])
    func layout(size: Int) {
        let header = BenchPayload.Header(publisher: 0x0102_0304, counter: 0x1112_1314_1516_1718, sentAt: .max - 1)
        let payload = BenchPayload.make(header, size: size)
        let total = max(size, BenchPayload.headerSize)
        let expected: [UInt8] = [0x01, 0x02, 0x03, 0x04, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18,
                                 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFE]
            + Array(repeating: UInt8(ascii: "r"), count: total - BenchPayload.headerSize)
        #expect(Array(payload.readableBytesView) == expected)
        #expect(BenchPayload.parse(payload) == header)
    }
}
