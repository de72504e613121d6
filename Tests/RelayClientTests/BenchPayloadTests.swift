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

    /// The bench reuses payload buffers (wave 22): each payload is the bytes
    /// `make` writes, and a slot whose previous payload is still held (the
    /// client keeps it until its PUBACK) gets new storage; the held bytes stay.
    @Test("a ring's payloads are make's bytes, and a payload still held is never overwritten", arguments: [0, 20, 128, 4096])
    func ring(size: Int) {
        var ring = BenchPayload.Ring(slots: 3, size: size)
        var held: [(BenchPayload.Header, ByteBuffer)] = []
        for counter in 0..<10 {
            let header = BenchPayload.Header(publisher: 7, counter: UInt64(counter), sentAt: UInt64(1000 + counter))
            let payload = ring.make(header)
            #expect(payload == BenchPayload.make(header, size: size))
            if counter % 4 == 0 { held.append((header, payload)) }  // held across the slot's next turns
        }
        for (header, payload) in held {
            #expect(payload == BenchPayload.make(header, size: size))
            #expect(BenchPayload.parse(payload) == header)
        }
    }
}

