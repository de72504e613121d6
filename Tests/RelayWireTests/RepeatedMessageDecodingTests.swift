import NIOCore
import RelayCore
import Testing
@testable import RelayWire

/// A client's accumulator decodes a MSG that repeats the last one's topic
/// and principal in place (``FrameAccumulator/nextDecoded()``): every frame
/// must come out exactly as ``FrameAccumulator/next()`` gives it, whichever
/// path it took, however the bytes are split into reads, and what the full
/// decoder refuses must still be refused.
@Suite("MSG decoded in place on the client")
struct RepeatedMessageDecodingTests {
    static func message(_ sequence: UInt64, id: UInt32 = 3, topic: String = "bench.fanout", principal: String = "publisher-one",
                        headers: Headers = .empty, replayed: Bool = false, size: Int = 40) -> Frame {
        .message(Message(subscriptionID: id, sequence: sequence, timestamp: 1_764_383_000_000_000_000 + sequence, topic: topic,
                         publisherPrincipal: principal,
                         publisherFingerprint: CertificateFingerprint(w0: sequence, w1: 2, w2: 3, w3: ~sequence), headers: headers,
                         payload: ByteBuffer(bytes: (0..<size).map { UInt8(truncatingIfNeeded: Int(sequence) &+ $0) }),
                         replayed: replayed))
    }

    static func frames() throws -> [Frame] {
        let headers = try Headers([HeaderField(key: "k", value: "v")])
        return [
            .publishAck(PublishAck(publishID: 1, sequence: 1, timestamp: 2)),
            message(1), message(2), message(3, id: 9, replayed: true, size: 0),
            message(4, topic: "bench.fanouX"),  // same length, other bytes: the full path
            message(5, topic: "bench.fanouX"), message(6, principal: "publisher-two"),
            message(7, principal: "publisher-two", headers: headers),  // headers: the full path
            message(8, principal: "publisher-two", size: 20_000),
            .ping(token: 7), message(9, principal: "publisher-two"),
        ]
    }

    /// Everything `nextDecoded()` yields for `input` cut into reads of `chunk` bytes, as frames.
    static func decodeAll(_ input: ByteBuffer, chunk: Int) throws -> (frames: [Frame], inPlace: Int) {
        var out: [Frame] = [], inPlace = 0
        try feedInReads(input, chunk: chunk, role: .client) { accumulator in
            while let decoded = try accumulator.nextDecoded() {
                switch decoded {
                case .frame(let frame): out.append(frame)
                case .message(let message):
                    out.append(.message(message))
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
        // 2, 3, 5 and 9 repeat the previous MSG's strings without headers (8 too once its bytes are all in).
        #expect(inPlace >= 4)
    }

    @Test("a frame over the limit or with undefined flags is refused on the in-place path too")
    func refusesWhatTheFullDecoderRefuses() throws {
        for mutate in [{ (b: inout ByteBuffer, at: Int) in b.setInteger(UInt8(0x80), at: at + 5) },  // undefined flag bit
                       { (b: inout ByteBuffer, at: Int) in b.setInteger(UInt32(1 << 30), at: at) }] {   // length over the limit
            var input = try Self.message(1).encoded()
            let second = input.writerIndex
            var next = try Self.message(2).encoded()
            input.writeBuffer(&next)
            _ = mutate(&input, second)  // setInteger's byte count
            var accumulator = FrameAccumulator(decoder: RelayFrameDecoder(role: .client, maxFrameSize: 1 << 20, expectHandshake: false))
            accumulator.append(input)
            let first = try accumulator.nextDecoded()
            guard case .frame(let frame) = first else {
                Issue.record("the first MSG (new strings) must come through the full path")
                return
            }
            #expect(frame == Self.message(1))
            #expect(throws: WireError.self) { _ = try accumulator.nextDecoded() }
        }
    }
}
