// Prints the frame codec's rates on one core. Build with -c release:
//   swift build -c release --product relay-bench-wire && .build/release/relay-bench-wire
import Foundation
import NIOCore
import NIOEmbedded
import RelayCore
import RelayWire

/// Optional first argument: run only the measurements whose label contains it.
let only = CommandLine.arguments.dropFirst().first

/// Frames per second over `frames` work items, best of `rounds`.
func measure(_ label: String, frames: Int, rounds: Int = 5, _ body: () throws -> Int) rethrows {
    if let only, !label.contains(only) { return }
    var best = Double.infinity
    var checksum = 0
    for _ in 0..<rounds {
        let start = DispatchTime.now().uptimeNanoseconds
        checksum &+= try body()
        let elapsed = Double(DispatchTime.now().uptimeNanoseconds - start)
        best = min(best, elapsed)
    }
    let rate = Double(frames) / (best / 1e9)
    let perFrame = best / Double(frames)
    let padded = label.padding(toLength: 48, withPad: " ", startingAt: 0)
    print(padded + String(format: "%12.0f frames/s  %7.1f ns/frame", rate, perFrame)
        + (checksum == 42 ? " " : ""))  // using the checksum keeps the work from being optimised away
}

let frameCount = 1_000_000
let payload = ByteBuffer(repeating: 0xAB, count: 128)
let publish = Frame.publish(Publish(publishID: 1, topic: "orders.eu.created", payload: payload))
let withHeaders = Frame.publish(Publish(publishID: 1, topic: "orders.eu.created",
                                        headers: [("content-type", "application/json"), ("trace-id", "4bf92f3577b34da6")],
                                        payload: payload))
let fingerprint = CertificateFingerprint(bytes: [UInt8](repeating: 7, count: 32)) ?? .zero

func stream(of frame: Frame, count: Int) throws -> ByteBuffer {
    var buffer = ByteBuffer()
    for _ in 0..<count { try frame.encode(into: &buffer) }
    return buffer
}

/// Decoding reads what one socket read delivers: about 64 KiB of whole
/// frames, decoded `frameCount / framesPerChunk` times. (One 160 MB buffer
/// would be unrealistic, and NIO copies slices that start past 16 MiB.)
let framesPerChunk = 400

func decodeRate(_ label: String, _ chunk: ByteBuffer, role: WireRole, _ use: (Frame) throws -> Int) throws {
    try measure(label, frames: frameCount) {
        var decoder = RelayFrameDecoder(role: role, expectHandshake: false)
        var n = 0
        for _ in 0..<(frameCount / framesPerChunk) {
            var input = chunk
            while let frame = try decoder.decodeFrame(&input) { n &+= try use(frame) }
        }
        return n
    }
}

do {
    let pubStream = try stream(of: publish, count: frameCount)
    let pubChunk = try stream(of: publish, count: framesPerChunk)
    let headerChunk = try stream(of: withHeaders, count: framesPerChunk)
    let frameBytes = pubChunk.readableBytes / framesPerChunk
    print("relay-bench-wire: \(frameCount) frames per round, best of 5; PUB with a 128-byte payload is "
        + "\(frameBytes) bytes on the wire; decoding reads \(pubChunk.readableBytes)-byte chunks")

    try decodeRate("decode PUB (128 B payload)", pubChunk, role: .broker) { frame in
        if case .publish(let p) = frame { return p.payload.readableBytes }
        return 0
    }
    let limits = PublishLimits()
    try decodeRate("decode PUB + validate topic/headers", pubChunk, role: .broker) { frame in
        if case .publish(let p) = frame { return try OperationValidation.validate(p, limits: limits).value.utf8.count }
        return 0
    }
    try decodeRate("decode PUB with 2 headers", headerChunk, role: .broker) { frame in
        if case .publish(let p) = frame { return p.headers.count }
        return 0
    }
    try measure("encode PUB (128 B payload)", frames: frameCount) {
        var out = ByteBuffer()
        out.reserveCapacity(frameBytes * 4096)
        var n = 0
        for i in 0..<frameCount {
            try publish.encode(into: &out)
            if i & 4095 == 4095 { n &+= out.readableBytes; out.clear() }
        }
        return n
    }
    let prepared = try PreparedMessage(sequence: 1, timestamp: 2, topic: "orders.eu.created",
                                       publisherPrincipal: "orders-api", publisherFingerprint: fingerprint,
                                       headers: .empty, payload: payload)
    try measure("write MSG from PreparedMessage (fan-out)", frames: frameCount) {
        var out = ByteBuffer()
        out.reserveCapacity(prepared.frameSize * 4096)
        var n = 0
        for i in 0..<frameCount {
            try prepared.write(subscriptionID: UInt32(truncatingIfNeeded: i), into: &out, maxFrameSize: 1 << 20)
            if i & 4095 == 4095 { n &+= out.readableBytes; out.clear() }
        }
        return n
    }
    var msgChunk = ByteBuffer()
    for _ in 0..<framesPerChunk { try prepared.write(subscriptionID: 7, into: &msgChunk, maxFrameSize: 1 << 20) }
    try decodeRate("decode MSG (128 B payload, client side)", msgChunk, role: .client) { frame in
        if case .message(let m) = frame { return m.payload.readableBytes }
        return 0
    }
    // Through NIO's ByteToMessageHandler into a counting handler, in 64 KiB
    // reads as a socket would deliver them; includes NIO's per-frame cost
    // (NIOAny boxing, pipeline dispatch).
    let chunks: [ByteBuffer] = stride(from: 0, to: pubStream.readableBytes, by: 65536).compactMap { offset in
        pubStream.getSlice(at: pubStream.readerIndex + offset, length: min(65536, pubStream.readableBytes - offset))
            .map { slice in var own = ByteBuffer(); own.writeImmutableBuffer(slice); return own }
    }
    try measure("decode PUB via ByteToMessageHandler (64 KiB)", frames: frameCount, rounds: 3) {
        let sink = CountingSink()
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(
            ByteToMessageHandler(RelayFrameDecoder(role: .broker, expectHandshake: false)))
        try channel.pipeline.syncOperations.addHandler(sink)
        for chunk in chunks { try channel.writeInbound(chunk) }
        _ = try channel.finish()
        return sink.bytes
    }
    try measure("decode PUB via FrameAccumulator in a handler", frames: frameCount, rounds: 3) {
        let sink = AccumulatingSink()
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(sink)
        for chunk in chunks { try channel.writeInbound(chunk) }
        _ = try channel.finish()
        return sink.bytes
    }
} catch {
    print("relay-bench-wire failed: \(error)")
    exit(1)
}

/// Counts payload bytes of the PUB frames that reach it.
final class CountingSink: ChannelInboundHandler {
    typealias InboundIn = Frame
    var bytes = 0

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .publish(let p) = unwrapInboundIn(data) { bytes &+= p.payload.readableBytes }
    }
}

/// A session-style handler: takes reads, decodes and handles frames inline.
final class AccumulatingSink: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    var accumulator = FrameAccumulator(decoder: RelayFrameDecoder(role: .broker, expectHandshake: false))
    var bytes = 0

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        accumulator.append(unwrapInboundIn(data))
        do {
            while let frame = try accumulator.next() {
                if case .publish(let p) = frame { bytes &+= p.payload.readableBytes }
            }
        } catch {
            context.fireErrorCaught(error)
        }
    }
}
