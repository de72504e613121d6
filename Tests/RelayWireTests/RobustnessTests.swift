import Foundation
import NIOCore
import RelayTestSupport
import Testing
@testable import RelayWire

@Suite("Robustness")
struct RobustnessTests {
    /// Runs `bytes` through the fuzz target's checks (FrameCorpus/FrameDecoderInvariants.swift):
    /// whole and in 1-byte reads, straight to the decoder and through the
    /// accumulator. Every decoded frame must round-trip and every error must be
    /// a connection-level decode code with a message.
    func exercise(_ bytes: [UInt8], role: WireRole, handshake: Bool) {
        for (chunkIndex, accumulator) in [(6, false), (0, true)] {
            let config = FrameDecoderInvariants.configByte(role: role, expectHandshake: handshake,
                                                           chunkIndex: chunkIndex, accumulator: accumulator)
            let violations = ([config] + bytes).withUnsafeBytes { FrameDecoderInvariants.violations($0) }
            #expect(violations.isEmpty, "\(violations) for \(bytes.prefix(32)) (config \(config))")
        }
    }

    @Test("random bytes never crash the decoder", arguments: [WireRole.broker, .client])
    func randomInput(_ role: WireRole) throws {
        var rng = SeededRandom(seed: role == .broker ? 1 : 2)
        for _ in 0..<3000 {
            let count = Int(rng.next() % 64)
            var bytes = (0..<count).map { _ in UInt8.random(in: 0...255, using: &rng) }
            // Plausible lengths and types reach deeper than uniform noise.
            if count >= 6, rng.next() % 2 == 0 {
                bytes[0] = 0; bytes[1] = 0; bytes[2] = 0
                bytes[3] = UInt8(count - 4)
                bytes[4] = FrameType.allCases[Int(rng.next() % UInt64(FrameType.allCases.count))].rawValue
                bytes[5] = 0
            }
            exercise(bytes, role: role, handshake: rng.next() % 2 == 0)
        }
    }

    @Test("every strict prefix of a valid frame waits for more bytes and consumes nothing", arguments: Vectors.valid)
    func truncatedInput(_ vector: Vectors.Valid) throws {
        let bytes = try Vectors.bytes(vector.hex)
        let frame = try Vectors.frame(vector.frame)
        for cut in 0..<bytes.count {
            var decoder = RelayFrameDecoder(role: vector.receiver, expectHandshake: isHandshake(frame))
            var buffer = ByteBuffer(bytes: bytes[0..<cut])
            #expect(try decoder.decodeFrame(&buffer) == nil)
            #expect(buffer.readableBytes == cut)
        }
    }

    @Test("every single-byte change of a valid frame decodes (and round-trips) or fails with a WireError",
          arguments: Vectors.valid)
    func mutatedInput(_ vector: Vectors.Valid) throws {
        let bytes = try Vectors.bytes(vector.hex)
        let handshake = isHandshake(try Vectors.frame(vector.frame))
        var rng = SeededRandom(seed: UInt64(bytes.count))
        for index in bytes.indices {
            for delta in [1, 0x80, UInt8.random(in: 1...255, using: &rng)] {
                var mutated = bytes
                mutated[index] &+= delta
                exercise(mutated, role: vector.receiver, handshake: handshake)
            }
        }
    }

    /// docs/security.md says the kept corpora replay in `make test` through the
    /// fuzz target's own checks: this is that replay, with the same function
    /// the target calls. Each input runs as the fuzzer ran it (its first byte
    /// picks role, handshake, chunking and accumulator); inputs up to 4 KiB
    /// also run under every chunking, with and without the accumulator.
    @Test("the kept fuzz corpus replays through the fuzz target's checks: round trip, chunking, accumulator bound, typed errors")
    func fuzzCorpus() throws {
        let directory = Vectors.directory.deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fuzz/corpus/frame-decoder")
        let files = try FileManager.default.contentsOfDirectory(atPath: directory.path).sorted()
        #expect(files.count >= 100)
        var runs = 0, accumulatorRuns = 0
        for file in files {
            var data = [UInt8](try Data(contentsOf: directory.appendingPathComponent(file)))
            guard let config = data.first else { continue }
            var configs = [config]
            if data.count <= 4097 {
                configs += (0..<8).flatMap { chunk in [false, true].map { accumulator in
                    FrameDecoderInvariants.configByte(role: config & 1 == 0 ? .broker : .client, expectHandshake: config & 2 != 0,
                                                      chunkIndex: chunk, accumulator: accumulator)
                } }
            }
            for variant in configs {
                data[0] = variant
                let violations = data.withUnsafeBytes { FrameDecoderInvariants.violations($0) }
                #expect(violations.isEmpty, "\(file) with config \(variant): \(violations)")
                runs += 1
                if variant & 0x20 != 0 { accumulatorRuns += 1 }
            }
        }
        // The replay really went through both paths.
        #expect(accumulatorRuns > 100 && runs - accumulatorRuns > 100, "\(runs) runs, \(accumulatorRuns) through the accumulator")
    }

    @Test("the UTF-8 validator agrees with the standard library")
    func utf8AgreesWithStdlib() {
        var rng = SeededRandom(seed: 42)
        let interesting: [UInt8] = [0x00, 0x41, 0x7F, 0x80, 0xBF, 0xC0, 0xC1, 0xC2, 0xDF, 0xE0, 0xED, 0xEF,
                                    0xF0, 0xF4, 0xF5, 0xFF, 0xA0, 0x9F, 0x90, 0x8F]
        for _ in 0..<20000 {
            let count = Int(rng.next() % 12)
            let bytes = (0..<count).map { _ in
                rng.next() % 2 == 0 ? interesting[Int(rng.next() % UInt64(interesting.count))] : UInt8.random(in: 0...255, using: &rng)
            }
            let ours = bytes.withUnsafeBytes { UTF8Validation.isValid($0) }
            let stdlib = String(validating: bytes, as: UTF8.self) != nil
            #expect(ours == stdlib, "\(bytes)")
        }
        // Long ASCII runs take the 8-byte fast path; a bad byte after it is still found.
        let ascii = [UInt8](repeating: 0x61, count: 37)
        #expect(ascii.withUnsafeBytes { UTF8Validation.isValid($0) })
        #expect(!(ascii + [0xC3]).withUnsafeBytes { UTF8Validation.isValid($0) })
        #expect(!(ascii + [0xFF] + ascii).withUnsafeBytes { UTF8Validation.isValid($0) })
    }
}
