// libFuzzer target for the relay v1 frame decoder (Fuzz/run-frame-decoder.sh).
//
// Built with -sanitize=fuzzer,address -DRELAY_FUZZ, libFuzzer supplies main()
// and calls the check below (Fuzz/Support/FuzzDriver.swift). Built normally
// (a plain `swift build`), it is a replay tool: `relay-fuzz-frame-decoder
// FILE...` runs each file through the same checks, so a crash input can be
// debugged without sanitizers.
import NIOCore
import RelayCore
import RelayWire
import FuzzSupport

/// One input: the first byte picks the receiving role (bit 0), whether
/// HELLO/WELCOME is expected first (bit 1), the chunk size the bytes arrive
/// in (bits 2-4: 1 byte … all) and whether they go through
/// ``FrameAccumulator`` (bit 5) or straight to the decoder; the rest is the
/// byte stream.
///
/// Invariants checked, besides "never crashes, never leaks, never reads out
/// of bounds" (ASan):
/// - every decoded frame re-encodes, and the encoding decodes to the same frame;
/// - the operation checks run on every PUB and SUB without trapping;
/// - the accumulator never holds more than one frame's limit plus one read;
/// - after an error the decoder is not used again (as ByteToMessageHandler does).
func runOne(_ input: UnsafeRawBufferPointer) {
    guard let config = input.first else { return }
    let role: WireRole = config & 1 == 0 ? .broker : .client
    let expectHandshake = config & 2 != 0
    let chunkSizes = [1, 2, 3, 7, 64, 4096, Int.max, Int.max]
    let chunk = chunkSizes[Int(config >> 2) & 7]
    let useAccumulator = config & 0x20 != 0
    let stream = UnsafeRawBufferPointer(rebasing: input.dropFirst())

    let decoder = RelayFrameDecoder(role: role, maxFrameSize: FrameLayout.defaultMaxFrameSize,
                                    expectHandshake: expectHandshake)
    var direct = decoder
    var accumulator = FrameAccumulator(decoder: decoder)
    var buffer = ByteBuffer()
    var offset = 0
    while offset < stream.count {
        let end = offset + min(chunk, stream.count - offset)
        let read = ByteBuffer(bytes: UnsafeRawBufferPointer(rebasing: stream[offset..<end]))
        offset = end
        do {
            if useAccumulator {
                accumulator.append(read)
                while let frame = try accumulator.next() { check(frame, role: role) }
                precondition(accumulator.bufferedBytes <= FrameLayout.defaultMaxFrameSize + 4 + read.readableBytes,
                             "the accumulator holds \(accumulator.bufferedBytes) bytes")
            } else {
                buffer.writeImmutableBuffer(read)
                while let frame = try direct.decodeFrame(&buffer) { check(frame, role: role) }
            }
        } catch {
            _ = error.code.closesConnection  // every decode error is typed; nothing more to check
            return
        }
    }
    if useAccumulator {
        _ = try? accumulator.finish()
    } else {
        _ = try? direct.decodeLast(buffer: &buffer, seenEOF: true)
    }
}

func check(_ frame: Frame, role: WireRole) {
    switch frame {
    case .publish(let p): _ = try? OperationValidation.validate(p, limits: PublishLimits())
    case .subscribe(let s): _ = try? OperationValidation.validate(s)
    default: break
    }
    // Round trip. A mismatch is a codec bug: trapping is how a fuzz target
    // reports it to libFuzzer, which then saves the input.
    guard var encoded = try? frame.encoded() else {
        preconditionFailure("a decoded \(frame.type) frame failed to encode")
    }
    let handshake: Bool
    switch frame {
    case .hello, .welcome: handshake = true
    default: handshake = false
    }
    var fresh = RelayFrameDecoder(role: role, maxFrameSize: Int(FrameLayout.maximumMaxFrameSize),
                                  expectHandshake: handshake)
    let again = try? fresh.decodeFrame(&encoded)
    precondition(again == frame, "\(frame.type) did not survive encode → decode")
    precondition(encoded.readableBytes == 0, "\(frame.type) re-encoding left \(encoded.readableBytes) bytes")
}

#if RELAY_FUZZ
@_cdecl("relay_fuzz_frame_decoder_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    FuzzDriver.run(argc: argc, argv: argv, runOne)
}
#else
@main
struct ReplayFrameDecoderInputs {
    static func main() { FuzzDriver.replay(tool: "relay-fuzz-frame-decoder", script: "Fuzz/run-frame-decoder.sh", runOne) }
}
#endif
