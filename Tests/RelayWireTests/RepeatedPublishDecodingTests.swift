import NIOCore
import RelayCore
import Testing
@testable import RelayWire

/// The broker's accumulator decodes a PUB that repeats the last one's topic
/// in place (``FrameAccumulator/nextForBroker()``): every frame must come
/// out exactly as ``FrameAccumulator/next()`` gives it, whichever path it
/// took, however the bytes are split into reads, and what the full decoder
/// refuses must still be refused.
@Suite("PUB decoded in place on the broker")
struct RepeatedPublishDecodingTests {
    static func publish(_ id: UInt64, topic: String = "bench.pubsub.ab", headers: Headers = .empty, size: Int = 40) -> Frame {
        .publish(Publish(publishID: id, topic: topic, headers: headers,
                         payload: ByteBuffer(bytes: (0..<size).map { UInt8(truncatingIfNeeded: Int(id) &+ $0) })))
    }

    static func frames() throws -> [Frame] {
        let headers = try Headers([HeaderField(key: "k", value: "v")])
        return [
            .ping(token: 1),
            publish(1), publish(2), publish(3, size: 0),
            publish(4, topic: "bench.pubsub.aX"),  // same length, other bytes: the full path
            publish(5, topic: "bench.pubsub.aX"), publish(6, topic: "t"),
            publish(7, topic: "t", headers: headers),  // headers: the full path
            publish(8, topic: "t", size: 20_000),
            .ack(Ack(subscriptionID: 3, sequence: 9)), publish(9, topic: "t"),
        ]
    }

    /// Everything `nextForBroker()` yields for `input` cut into reads of `chunk` bytes, as frames.
    static func decodeAll(_ input: ByteBuffer, chunk: Int) throws -> (frames: [Frame], inPlace: Int) {
        var out: [Frame] = [], inPlace = 0
        try feedInReads(input, chunk: chunk, role: .broker) { accumulator in
            while let decoded = try accumulator.nextForBroker() {
                switch decoded {
                case .frame(let frame): out.append(frame)
                case .publish(let publish):
                    out.append(.publish(publish))
                    inPlace += 1
                }
            }
        }
        return (out, inPlace)
    }

    @Test("every frame decodes exactly as the full decoder gives it, for any split into reads", arguments: [1, 7, 100, 16_384, 1 << 20])
    func decodesEveryFrameExactly(chunk: Int) throws {
        let frames = try Self.frames()
        var input = ByteBuffer()
        for frame in frames { try frame.encode(into: &input) }
        let (decoded, inPlace) = try Self.decodeAll(input, chunk: chunk)
        #expect(decoded == frames)
        // 2, 3, 5 and 9 repeat the previous PUB's topic without headers (8 too once its bytes are all in).
        #expect(inPlace >= 4)
    }

    @Test("a frame over the limit, with undefined flags or trailing header bytes is refused on the in-place path too")
    func refusesWhatTheFullDecoderRefuses() throws {
        let mutations: [(inout ByteBuffer, Int) -> Void] = [
            { b, at in b.setInteger(UInt8(0x01), at: at + 5) },     // undefined flag bit
            { b, at in b.setInteger(UInt32(1 << 30), at: at) },    // length over the limit
            { b, at in b.setInteger(UInt16(1), at: at + 4 + 2 + 8 + 2 + 15) },  // a header count with no header block
        ]
        for mutate in mutations {
            var input = try Self.publish(1).encoded()
            let second = input.writerIndex
            var next = try Self.publish(2).encoded()
            input.writeBuffer(&next)
            mutate(&input, second)
            var accumulator = FrameAccumulator(decoder: RelayFrameDecoder(role: .broker, maxFrameSize: 1 << 20, expectHandshake: false))
            accumulator.append(input)
            let first = try accumulator.nextForBroker()
            guard case .frame(let frame) = first else {
                Issue.record("the first PUB (a new topic) must come through the full path")
                return
            }
            #expect(frame == Self.publish(1))
            #expect(throws: WireError.self) { _ = try accumulator.nextForBroker() }
        }
    }
}
