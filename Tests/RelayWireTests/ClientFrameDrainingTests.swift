import NIOCore
import RelayCore
import Testing
@testable import RelayWire

/// A client's accumulator hands PUBACKs and repeated MSGs straight to their
/// handlers (``FrameAccumulator/drainClientFrames(publishAck:message:frame:)``):
/// every frame must come out exactly as ``FrameAccumulator/next()`` gives
/// it, in order, however the bytes are split into reads, and what the full
/// decoder refuses must still be refused.
@Suite("Client frames drained to handlers")
struct ClientFrameDrainingTests {
    static func frames() throws -> [Frame] {
        var frames = try RepeatedMessageDecodingTests.frames()
        frames += [.publishAck(PublishAck(publishID: 2, sequence: 10, timestamp: 11, duplicate: true)),
                   .publishAck(PublishAck(publishID: .max, sequence: .max, timestamp: 0)),
                   RepeatedMessageDecodingTests.message(10, principal: "publisher-two"),
                   .publishError(PublishError(publishID: 3, code: .notAuthorized, message: "no")),
                   .publishAck(PublishAck(publishID: 4, sequence: 12, timestamp: 13))]
        return frames
    }

    /// Everything drained from `input` cut into reads of `chunk` bytes, as frames, and how many took each fast path.
    static func drainAll(_ input: ByteBuffer, chunk: Int) throws -> (frames: [Frame], acks: Int, messages: Int) {
        var out: [Frame] = [], acks = 0, messages = 0
        try feedInReads(input, chunk: chunk, role: .client) { accumulator in
            try accumulator.drainClientFrames(
                publishAck: { ack in
                    out.append(.publishAck(ack))
                    acks += 1
                },
                message: { message in
                    out.append(.message(message))
                    messages += 1
                },
                frame: { out.append($0) })
        }
        return (out, acks, messages)
    }

    /// Drains `accumulator`, counting in `handed` the frames any handler got (kept when it throws).
    static func drainCounting(_ accumulator: inout FrameAccumulator, handed: inout Int) throws(WireError) {
        try accumulator.drainClientFrames(publishAck: { _ in handed += 1 }, message: { _ in handed += 1 },
                                          frame: { _ in handed += 1 })
    }

    @Test("every frame comes out exactly as the full decoder gives it, in order, for any split into reads",
          arguments: [1, 5, 26, 100, 16_384, 1 << 20])
    func drainsEveryFrameExactly(chunk: Int) throws {
        let frames = try Self.frames()
        var input = ByteBuffer()
        for frame in frames { try frame.encode(into: &input) }
        let (drained, acks, messages) = try Self.drainAll(input, chunk: chunk)
        #expect(drained == frames)
        #expect(acks == 4)
        #expect(messages >= 5)
    }

    @Test("a PUBACK with an undefined flag, a wrong length or before WELCOME is refused as the full decoder refuses it")
    func refusesWhatTheFullDecoderRefuses() throws {
        let ack = try Frame.publishAck(PublishAck(publishID: 1, sequence: 2, timestamp: 3)).encoded()
        var badFlag = ack
        badFlag.setInteger(UInt8(0x80), at: 5)
        var longer = ack  // length 27 with one more byte: a PUBACK body has exactly 26
        longer.setInteger(UInt32(27), at: 0)
        longer.writeInteger(UInt8(0))
        for input in [badFlag, longer] {
            var accumulator = FrameAccumulator(decoder: RelayFrameDecoder(role: .client, expectHandshake: false))
            accumulator.append(input)
            var handed = 0
            #expect(throws: WireError.self) { try Self.drainCounting(&accumulator, handed: &handed) }
            #expect(handed == 0)
        }
        var beforeWelcome = FrameAccumulator(decoder: RelayFrameDecoder(role: .client))
        beforeWelcome.append(ack)
        var handed = 0
        #expect(throws: WireError.self) { try Self.drainCounting(&beforeWelcome, handed: &handed) }
        #expect(handed == 0)
    }
}
