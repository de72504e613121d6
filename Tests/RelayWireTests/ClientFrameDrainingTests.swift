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

/// A read that ends inside a frame leaves that frame's start pending. The
/// read's buffer is still referenced then (the caller's `NIOAny`, payload
/// slices handed out), so `discardReadBytes()` copied its whole capacity
/// to keep those few bytes (wave 12): the pending frame must get a buffer of
/// its own size, and still decode whole once the rest arrives.
@Suite("Accumulator keeps an incomplete frame in its own buffer")
struct IncompleteFrameBufferTests {
    @Test("after a 64 KiB read ending inside a frame, the pending buffer is the frame's size; the frame completes intact")
    func pendingFrameDoesNotPinTheRead() throws {
        var frames: [Frame] = []
        var input = ByteBuffer()
        var sequence: UInt64 = 1
        while input.readableBytes < 64 * 1024 {
            let frame = RepeatedMessageDecodingTests.message(sequence, size: 128)
            try frame.encode(into: &input)
            frames.append(frame)
            sequence += 1
        }
        // Cut the first read 10 bytes into the frame after 60,000 bytes' worth.
        var frameStarts: [Int] = []
        var at = 0
        while at < input.readableBytes, let length = input.getInteger(at: at, as: UInt32.self) {
            frameStarts.append(at)
            at += 4 + Int(length)
        }
        let cut = try #require(frameStarts.first { $0 > 60_000 }) + 10
        let read = try #require(input.getSlice(at: 0, length: cut))
        let rest = try #require(input.getSlice(at: cut, length: input.readableBytes - cut))
        let frameSize = 4 + Int(try #require(input.getInteger(at: cut - 10, as: UInt32.self)))

        var accumulator = FrameAccumulator(decoder: RelayFrameDecoder(role: .client, expectHandshake: false))
        var out: [Frame] = []
        accumulator.append(read)  // `read` stays alive, as the channel's read does
        try accumulator.drainClientFrames(publishAck: { out.append(.publishAck($0)) }, message: { out.append(.message($0)) },
                                          frame: { out.append($0) })
        #expect(accumulator.bufferedBytes == 10)
        #expect(accumulator.pendingCapacity < 4 * frameSize, "a pending frame of \(frameSize) bytes pins \(accumulator.pendingCapacity)")
        #expect(read.readableBytes == cut)
        accumulator.append(rest)
        try accumulator.drainClientFrames(publishAck: { out.append(.publishAck($0)) }, message: { out.append(.message($0)) },
                                          frame: { out.append($0) })
        #expect(out == frames)
        try accumulator.finish()
    }
}
