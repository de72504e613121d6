// RelayWire: the frame codec on one core, per frame. The same frames as
// relay-bench-wire: PUB with a 128-byte payload on topic orders.eu.created,
// and the MSG a subscriber receives for it (written from a PreparedMessage,
// as the broker's fan-out does).
import Benchmark
import NIOCore
import RelayCore
import RelayWire

/// Frames and buffers shared by the wire benchmarks, built once in setup.
final class WireFixture {
    /// Frames per sample, equal to `perOperation`'s scaling factor (1,000),
    /// so the decode benchmarks, which walk a chunk instead of looping over
    /// `scaledIterations`, are per frame too.
    static let frames = 1_000

    let publish: Frame
    let prepared: PreparedMessage
    /// 1,000 encoded PUB frames back to back: about 160 KB, the size of a
    /// few socket reads, decoded once per sample.
    let pubChunk: ByteBuffer
    let pubWithHeadersChunk: ByteBuffer
    /// 1,000 MSG frames as a subscriber reads them.
    let msgChunk: ByteBuffer
    /// Where encoders write; cleared (keeping its capacity) before each
    /// sample, so encoding measures the codec and not buffer growth.
    var out: ByteBuffer

    init() throws {
        let payload = ByteBuffer(repeating: 0xAB, count: 128)
        publish = Frame.publish(Publish(publishID: 1, topic: "orders.eu.created", payload: payload))
        let withHeaders = Frame.publish(Publish(
            publishID: 1, topic: "orders.eu.created",
            headers: [("content-type", "application/json"), ("trace-id", "4bf92f3577b34da6")], payload: payload))
        let fingerprint = CertificateFingerprint(bytes: [UInt8](repeating: 7, count: 32)) ?? .zero
        prepared = try PreparedMessage(sequence: 1, timestamp: 2, topic: "orders.eu.created",
                                       publisherPrincipal: "orders-api", publisherFingerprint: fingerprint,
                                       headers: .empty, payload: payload)
        var pub = ByteBuffer(), headers = ByteBuffer(), msg = ByteBuffer()
        for _ in 0..<Self.frames {
            try publish.encode(into: &pub)
            try withHeaders.encode(into: &headers)
            try prepared.write(subscriptionID: 7, into: &msg, maxFrameSize: 1 << 20)
        }
        pubChunk = pub
        pubWithHeadersChunk = headers
        msgChunk = msg
        out = ByteBuffer()
        out.reserveCapacity(max(pub.readableBytes, msg.readableBytes) * 2)
    }

    /// Decodes every frame of `chunk` with a fresh decoder (as a new
    /// connection would) and hands each to `use`; fails unless all
    /// `frames` came out, so a decoder regression cannot pass as speed.
    static func decodeAll(_ chunk: ByteBuffer, role: WireRole, _ use: (Frame) throws -> Int) throws -> Int {
        var decoder = RelayFrameDecoder(role: role, expectHandshake: false)
        var input = chunk  // a copy of the view: the fixture's buffer stays unread
        var decoded = 0, checksum = 0
        while let frame = try decoder.decodeFrame(&input) {
            decoded += 1
            checksum &+= try use(frame)
        }
        guard decoded == frames else { throw MicroBenchmarkError("decoded \(decoded) of \(frames) frames") }
        return checksum
    }
}

func registerWireBenchmarks() {
    Benchmark("wire: encode PUB (128 B payload)", configuration: perOperation) { benchmark, fixture in
        fixture.out.clear()
        for _ in benchmark.scaledIterations {
            try fixture.publish.encode(into: &fixture.out)
        }
        blackHole(fixture.out.readableBytes)
    } setup: {
        try WireFixture()
    }

    // The broker's fan-out: one MSG per subscription from the bytes encoded
    // once per message (only the subscription id differs).
    Benchmark("wire: write MSG from PreparedMessage (fan-out)", configuration: perOperation) { benchmark, fixture in
        fixture.out.clear()
        for i in benchmark.scaledIterations {
            try fixture.prepared.write(subscriptionID: UInt32(truncatingIfNeeded: i), into: &fixture.out, maxFrameSize: 1 << 20)
        }
        blackHole(fixture.out.readableBytes)
    } setup: {
        try WireFixture()
    }

    Benchmark("wire: decode PUB (128 B payload)", configuration: perOperation) { _, fixture in
        blackHole(try WireFixture.decodeAll(fixture.pubChunk, role: .broker) { frame in
            if case .publish(let p) = frame { return p.payload.readableBytes }
            return 0
        })
    } setup: {
        try WireFixture()
    }

    // What the broker does with every PUB before storing it.
    Benchmark("wire: decode PUB + validate topic and headers", configuration: perOperation) { _, fixture in
        let limits = PublishLimits()
        blackHole(try WireFixture.decodeAll(fixture.pubChunk, role: .broker) { frame in
            if case .publish(let p) = frame { return try OperationValidation.validate(p, limits: limits).value.utf8.count }
            return 0
        })
    } setup: {
        try WireFixture()
    }

    Benchmark("wire: decode PUB with 2 headers", configuration: perOperation) { _, fixture in
        blackHole(try WireFixture.decodeAll(fixture.pubWithHeadersChunk, role: .broker) { frame in
            if case .publish(let p) = frame { return p.headers.count }
            return 0
        })
    } setup: {
        try WireFixture()
    }

    Benchmark("wire: decode MSG (client side)", configuration: perOperation) { _, fixture in
        blackHole(try WireFixture.decodeAll(fixture.msgChunk, role: .client) { frame in
            if case .message(let m) = frame { return m.payload.readableBytes }
            return 0
        })
    } setup: {
        try WireFixture()
    }
}
