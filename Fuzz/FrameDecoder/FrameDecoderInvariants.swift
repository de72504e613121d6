// Shared by the relay-fuzz-frame-decoder target and the corpus replay test
// (Tests/RelayWireTests/FrameCorpus/ links to this file): one set of checks,
// so `swift test` replays the kept corpus through exactly what the fuzzer runs.
import NIOCore
import RelayCore
import RelayWire

/// One input: the first byte picks the receiving role (bit 0), whether
/// HELLO/WELCOME is expected first (bit 1), the chunk size the bytes arrive
/// in (bits 2-4: 1 byte … all) and whether they go through
/// ``FrameAccumulator`` (bit 5) or straight to the decoder; the rest is the
/// byte stream.
///
/// Invariants, besides "never crashes, never leaks, never reads out of
/// bounds" (ASan in the fuzz build):
/// - every decoded frame re-encodes, and the encoding decodes to the same frame;
/// - the operation checks run on every PUB and SUB without trapping;
/// - the accumulator never holds more than one frame's limit plus one read;
/// - the accumulator, in any chunking, yields the frames and the error that the
///   decoder yields for the whole stream at once (it is the broker's read path);
/// - a decode error is a connection-level code the decoder documents, with a message;
/// - after an error the decoder is not used again (as ByteToMessageHandler does).
enum FrameDecoderInvariants {
    static let chunkSizes = [1, 2, 3, 7, 64, 4096, Int.max, Int.max]

    /// The codes a decoder may throw for bytes from the network (relay-v1 §6):
    /// all close the connection. Anything else (an operation-level code, or
    /// internal_error) means a malformed frame was misclassified.
    static let decodeErrorCodes: Set<RelayErrorCode> = [
        .protocolViolation, .frameTooLarge, .unknownFrameType, .unsupportedVersion, .helloRequired, .invalidUTF8,
    ]

    /// The configuration byte for the given choices (the inverse of `violations(_:)`'s parsing).
    static func configByte(role: WireRole, expectHandshake: Bool, chunkIndex: Int, accumulator: Bool) -> UInt8 {
        (role == .client ? 1 : 0) | (expectHandshake ? 2 : 0) | UInt8((chunkIndex & 7) << 2) | (accumulator ? 0x20 : 0)
    }

    /// Every broken invariant for `input`; empty when all hold.
    static func violations(_ input: UnsafeRawBufferPointer) -> [String] {
        guard let config = input.first else { return [] }
        let role: WireRole = config & 1 == 0 ? .broker : .client
        let expectHandshake = config & 2 != 0
        let chunk = chunkSizes[Int(config >> 2) & 7]
        let useAccumulator = config & 0x20 != 0
        let stream = UnsafeRawBufferPointer(rebasing: input.dropFirst())
        let decoder = RelayFrameDecoder(role: role, maxFrameSize: FrameLayout.defaultMaxFrameSize,
                                        expectHandshake: expectHandshake)
        let run = chunked(stream, decoder: decoder, chunk: chunk, useAccumulator: useAccumulator)
        if !run.violations.isEmpty { return run.violations }
        // Reads may split frames anywhere: the result must not depend on where.
        let reference = wholeStream(stream, decoder: decoder)
        if reference.frames != run.frames || reference.failure?.code != run.failure?.code {
            let path = useAccumulator ? "the accumulator" : "the decoder"
            return ["\(path) in \(chunk)-byte reads gave \(run.frames.count) frames and \(run.failure?.code.name ?? "no error"); "
                    + "the decoder on the whole stream gave \(reference.frames.count) frames and \(reference.failure?.code.name ?? "no error")"]
        }
        return []
    }

    /// Feeds `stream` in `chunk`-byte reads, as a connection would, checking each frame and error.
    static func chunked(_ stream: UnsafeRawBufferPointer, decoder: RelayFrameDecoder, chunk: Int,
                        useAccumulator: Bool) -> (violations: [String], frames: [Frame], failure: WireError?) {
        var out: [String] = []
        var frames: [Frame] = []
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
                    while let frame = try accumulator.next() { frames.append(frame); out += violations(frame, role: decoder.role) }
                    let limit = FrameLayout.defaultMaxFrameSize + 4 + read.readableBytes
                    if accumulator.bufferedBytes > limit {
                        out.append("the accumulator holds \(accumulator.bufferedBytes) bytes, more than \(limit)")
                    }
                } else {
                    buffer.writeImmutableBuffer(read)
                    while let frame = try direct.decodeFrame(&buffer) { frames.append(frame); out += violations(frame, role: decoder.role) }
                }
            } catch {
                // The connection is closed: the decoder is not used again.
                return (out + violations(error), frames, error)
            }
            if !out.isEmpty { return (out, frames, nil) }
        }
        do {
            if useAccumulator {
                try accumulator.finish()
            } else {
                _ = try direct.decodeLast(buffer: &buffer, seenEOF: true)
            }
        } catch let error as WireError {
            return (out + violations(error), frames, error)
        } catch {
            return (out + ["end of input threw \(type(of: error)), not a WireError: \(error)"], frames, nil)
        }
        return (out, frames, nil)
    }

    /// The frames and the first error of the decoder given the whole stream in one read.
    static func wholeStream(_ stream: UnsafeRawBufferPointer, decoder: RelayFrameDecoder) -> (frames: [Frame], failure: WireError?) {
        var direct = decoder
        var buffer = ByteBuffer(bytes: stream)
        var frames: [Frame] = []
        do {
            while let frame = try direct.decodeFrame(&buffer) { frames.append(frame) }
            _ = try direct.decodeLast(buffer: &buffer, seenEOF: true)
        } catch let error as WireError {
            return (frames, error)
        } catch {
            return (frames, WireError(.internalError, "\(error)"))
        }
        return (frames, nil)
    }

    static func violations(_ error: WireError) -> [String] {
        var out: [String] = []
        if !decodeErrorCodes.contains(error.code) { out.append("a decode error has code \(error.code.name), not a decode code") }
        if error.message.isEmpty { out.append("a decode error (\(error.code.name)) without a message") }
        return out
    }

    static func violations(_ frame: Frame, role: WireRole) -> [String] {
        switch frame {
        case .publish(let p): _ = try? OperationValidation.validate(p, limits: PublishLimits())
        case .subscribe(let s): _ = try? OperationValidation.validate(s)
        default: break
        }
        guard var encoded = try? frame.encoded() else {
            return ["a decoded \(frame.type) frame failed to encode"]
        }
        let handshake: Bool
        switch frame {
        case .hello, .welcome: handshake = true
        default: handshake = false
        }
        var fresh = RelayFrameDecoder(role: role, maxFrameSize: Int(FrameLayout.maximumMaxFrameSize),
                                      expectHandshake: handshake)
        let again = try? fresh.decodeFrame(&encoded)
        var out: [String] = []
        if again != frame { out.append("\(frame.type) did not survive encode → decode") }
        if encoded.readableBytes != 0 { out.append("\(frame.type) re-encoding left \(encoded.readableBytes) bytes") }
        return out
    }
}
