import NIOCore
import NIOEmbedded
import NIOTestUtils
import RelayCore
import Testing
@testable import RelayWire

/// Every vector in Protocol/vectors: valid ones decode to their fields and
/// re-encode byte for byte; invalid ones fail with exactly the listed error.
@Suite("Protocol vectors")
struct VectorTests {
    @Test("the vector files load and cover every frame type")
    func coverage() throws {
        #expect(Vectors.valid.count >= 30)
        #expect(Vectors.invalid.count >= 60)
        #expect(Vectors.skipped.count >= 2)
        var types = Set<FrameType>()
        for vector in Vectors.valid { types.insert(try Vectors.frame(vector.frame).type) }
        #expect(types == Set(FrameType.allCases))
        let stages = Set(Vectors.invalid.map(\.stage))
        #expect(stages == ["decode", "eof", "operation"])
    }

    @Test("every vector states the receiver state it assumes; HELLO and WELCOME, and only they, are read fresh")
    func receiverStates() throws {
        let states = Vectors.valid.map(\.state) + Vectors.skipped.map(\.state) + Vectors.invalid.map(\.state)
        #expect(states.allSatisfy { $0 == "fresh" || $0 == "ready" }, "\(Set(states))")
        for vector in Vectors.valid {
            #expect((vector.state == "fresh") == isHandshake(try Vectors.frame(vector.frame)), "\(vector.name)")
            #expect(vector.limits.maxFrameSize == FrameLayout.defaultMaxFrameSize, "\(vector.name)")
        }
        let limits = Vectors.valid.map(\.limits) + Vectors.skipped.map(\.limits) + Vectors.invalid.map(\.limits)
        #expect(limits.allSatisfy { $0.maxFrameSize >= Int(FrameLayout.minimumMaxFrameSize) })
    }

    @Test("valid vectors: fields concatenate to the hex", arguments: Vectors.valid)
    func fieldsMatchHex(_ vector: Vectors.Valid) {
        #expect(vector.fields.map { $0[1] }.joined() == vector.hex)
    }

    @Test("valid vectors decode to their fields", arguments: Vectors.valid)
    func decodes(_ vector: Vectors.Valid) throws {
        let expected = try Vectors.frame(vector.frame)
        var input = try Vectors.buffer(vector.hex)
        var decoder = RelayFrameDecoder(role: vector.receiver, maxFrameSize: vector.limits.maxFrameSize,
                                        expectHandshake: vector.state == "fresh")
        let decoded = try decoder.decodeFrame(&input)
        #expect(decoded == expected)
        #expect(input.readableBytes == 0)
    }

    @Test("valid vectors re-encode byte for byte", arguments: Vectors.valid)
    func encodes(_ vector: Vectors.Valid) throws {
        let frame = try Vectors.frame(vector.frame)
        let expected = try Vectors.bytes(vector.hex)
        #expect(Array(buffer: try frame.encoded()) == expected)
        // The NIO encoder of the sending side produces the same bytes.
        let sender: WireRole = vector.sender == "client" ? .client : .broker
        var out = ByteBuffer()
        try RelayFrameEncoder(role: sender).encode(data: frame, out: &out)
        #expect(Array(buffer: out) == expected)
        // Decoding what was encoded gives the frame back.
        var decoder = RelayFrameDecoder(role: vector.receiver, expectHandshake: isHandshake(frame))
        #expect(try decoder.decodeFrame(&out) == frame)
    }

    @Test("valid vectors through ByteToMessageDecoderVerifier (byte by byte, whole, leftovers)",
          arguments: Vectors.valid)
    func verifier(_ vector: Vectors.Valid) throws {
        let frame = try Vectors.frame(vector.frame)
        // Byte by byte from a fresh decoder, which HELLO/WELCOME need: the
        // verifier replays input into one channel, and they may come only once.
        let bytes = try Vectors.bytes(vector.hex)
        let fed = decodeAll(bytes.map { [$0] }, RelayFrameDecoder(role: vector.receiver, expectHandshake: isHandshake(frame)))
        #expect(fed.error == nil)
        #expect(fed.frames == [frame])
        if isHandshake(frame) { return }
        try ByteToMessageDecoderVerifier.verifyDecoder(
            inputOutputPairs: [(try Vectors.buffer(vector.hex), [frame])],
            decoderFactory: { RelayFrameDecoder(role: vector.receiver, expectHandshake: false) })
    }

    @Test("all non-handshake vectors of one direction as one stream, with extension frames between them",
          arguments: [WireRole.broker, WireRole.client])
    func verifierStream(_ receiver: WireRole) throws {
        var pairs: [(ByteBuffer, [Frame])] = []
        for vector in Vectors.valid where vector.receiver == receiver {
            let frame = try Vectors.frame(vector.frame)
            if !isHandshake(frame) { pairs.append((try Vectors.buffer(vector.hex), [frame])) }
        }
        for skipped in Vectors.skipped where skipped.receiver == receiver {
            pairs.append((try Vectors.buffer(skipped.hex), []))
        }
        #expect(pairs.count >= 8)
        try ByteToMessageDecoderVerifier.verifyDecoder(
            inputOutputPairs: pairs, decoderFactory: { RelayFrameDecoder(role: receiver, expectHandshake: false) })
    }

    @Test("extension frames are skipped whole", arguments: Vectors.skipped)
    func skipped(_ vector: Vectors.Skipped) throws {
        var input = try Vectors.buffer(vector.hex)
        try input.writeFrame(.ping(token: 5), maxFrameSize: 1 << 20)
        var decoder = RelayFrameDecoder(role: vector.receiver, maxFrameSize: vector.limits.maxFrameSize,
                                        expectHandshake: vector.state == "fresh")
        #expect(try decoder.decodeFrame(&input) == .ping(token: 5))
        #expect(input.readableBytes == 0)
    }

    @Test("invalid vectors fail with exactly the listed error, whole and byte by byte", arguments: Vectors.invalid)
    func invalid(_ vector: Vectors.Invalid) throws {
        let bytes = try Vectors.bytes(vector.hex)
        let makeDecoder = {
            RelayFrameDecoder(role: vector.role, maxFrameSize: vector.limits.maxFrameSize,
                              expectHandshake: vector.expectHandshake)
        }
        switch vector.stage {
        case "decode":
            let whole = decodeAll([bytes], makeDecoder())
            #expect(whole.error?.code.name == vector.error, "whole: \(String(describing: whole.error))")
            let byteByByte = decodeAll(bytes.map { [$0] }, makeDecoder())
            #expect(byteByByte.error?.code.name == vector.error, "byte by byte: \(String(describing: byteByByte.error))")
            // Through NIO: ByteToMessageHandler surfaces the same WireError.
            let channel = EmbeddedChannel(handler: ByteToMessageHandler(makeDecoder()))
            #expect {
                try channel.writeInbound(ByteBuffer(bytes: bytes))
            } throws: { error in
                (error as? WireError)?.code.name == vector.error
            }
        case "eof":
            let whole = decodeAll([bytes], makeDecoder())
            #expect(whole.error == nil && whole.frames.isEmpty)
            var decoder = makeDecoder()
            var input = ByteBuffer(bytes: bytes)
            #expect {
                _ = try decoder.decodeLast(buffer: &input, seenEOF: true)
            } throws: { error in
                (error as? WireError)?.code.name == vector.error
            }
        default:
            let result = decodeAll([bytes], makeDecoder())
            #expect(result.error == nil)
            let frame = try #require(result.frames.first)
            #expect(result.frames.count == 1)
            #expect(operationError(frame, limits: vector.limits.publish)?.code.name == vector.error)
        }
    }

    @Test("operation-level vector errors are operation-level codes, decode errors close the connection")
    func errorLevels() throws {
        for vector in Vectors.invalid {
            let code = try #require(RelayErrorCode.allCases.first { $0.name == vector.error }, "\(vector.error)")
            #expect(code.closesConnection == (vector.stage != "operation"), "\(vector.name)")
        }
    }
}

func isHandshake(_ frame: Frame) -> Bool {
    switch frame {
    case .hello, .welcome: return true
    default: return false
    }
}

/// Feeds `chunks` one after the other as a socket would, decoding after each.
func decodeAll(_ chunks: [[UInt8]], _ decoder: RelayFrameDecoder) -> (frames: [Frame], error: WireError?) {
    var decoder = decoder
    var buffer = ByteBuffer()
    var frames: [Frame] = []
    for chunk in chunks {
        buffer.writeBytes(chunk)
        do {
            while let frame = try decoder.decodeFrame(&buffer) { frames.append(frame) }
        } catch {
            return (frames, error)
        }
    }
    return (frames, nil)
}

/// The operation-level check the broker runs for a decoded frame.
func operationError(_ frame: Frame, limits: PublishLimits) -> OperationError? {
    do {
        switch frame {
        case .publish(let p): _ = try OperationValidation.validate(p, limits: limits)
        case .subscribe(let s): _ = try OperationValidation.validate(s)
        default: return nil
        }
        return nil
    } catch {
        return error
    }
}
