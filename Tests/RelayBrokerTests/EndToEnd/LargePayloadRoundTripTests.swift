import NIOCore
import RelayCore
import RelayTestSupport
import RelayWire
import Testing

/// Payloads that do not fit one store page (a 4 KiB payload and its record
/// header take two; 64 KiB and the default `max_payload`, 1 MiB, many)
/// come back byte for byte: live, replayed from the store, and replayed
/// again after relayd stops and starts on the same data directory (issue
/// 19, large messages: the store hands flushed pages back to the kernel, so
/// a replay may read them from the disk).
@Suite("large payloads round-trip through relayd and its store", .serialized)
struct LargePayloadRoundTripTests {
    static let sizes = [4096, 4096 + 1, 65_536, 1 << 20]

    /// Deterministic bytes that differ per message, so a page swapped,
    /// truncated or zeroed anywhere shows up.
    static func payload(_ index: Int, size: Int) -> [UInt8] {
        var random = SeededRandom(seed: UInt64(0x5EED_0000 + index))
        return (0..<size).map { _ in UInt8(truncatingIfNeeded: random.next()) }
    }

    @Test("4 KiB, 64 KiB and max_payload payloads are stored and replayed byte-exact, before and after a restart")
    func largePayloadsSurviveRestart() async throws {
        let payloads = Self.sizes.enumerated().map { Self.payload($0.offset, size: $0.element) }
        try await withRelayd { relayd in
            let publisher = try await FrameClient.connect(port: relayd.port, pki: relayd.pki)
            try await publisher.hello()
            var sequences: [UInt64] = []
            for (index, bytes) in payloads.enumerated() {
                var buffer = publisher.channel.allocator.buffer(capacity: bytes.count)
                buffer.writeBytes(bytes)
                try await publisher.send(.publish(Publish(publishID: UInt64(index + 1), topic: "big.payload", payload: buffer)))
                let reply = try await publisher.nextReply { frame in
                    if case .message = frame { return false }
                    return true
                }
                guard case .publishAck(let ack) = reply else {
                    Issue.record("no PUBACK for the \(bytes.count)-byte payload: \(String(describing: reply))")
                    return
                }
                sequences.append(ack.sequence)
            }
            await publisher.close()
            let before = try await Self.replay(relayd, count: payloads.count)
            Self.check(before, against: payloads, sequences: sequences, when: "before the restart")

            #expect(await relayd.terminate() == 0)
            try await relayd.start()
            let after = try await Self.replay(relayd, count: payloads.count)
            Self.check(after, against: payloads, sequences: sequences, when: "after the restart")
        }
    }

    /// Subscribes from the earliest message and receives `count` MSG frames.
    static func replay(_ relayd: RelaydFixture, count: Int) async throws -> [Message] {
        let subscriber = try await FrameClient.connect(port: relayd.port, pki: relayd.pki)
        try await subscriber.hello()
        let ack = try await subscriber.subscribe(1, "big.>", from: .earliest, credit: UInt32(count))
        #expect(ack.isAccepted, "SUBACK \(ack.code): \(ack.message)")
        let messages = try await subscriber.messages(count)
        await subscriber.close()
        return messages
    }

    static func check(_ messages: [Message], against payloads: [[UInt8]], sequences: [UInt64], when: String) {
        #expect(messages.map(\.sequence) == sequences, "\(when): sequences")
        for (message, expected) in zip(messages, payloads) {
            let got = message.payload.getBytes(at: message.payload.readerIndex, length: message.payload.readableBytes) ?? []
            #expect(got.count == expected.count, "\(when): a \(expected.count)-byte payload came back with \(got.count) bytes")
            let firstDifference = zip(got, expected).enumerated().first { $0.element.0 != $0.element.1 }?.offset
            #expect(got == expected, "\(when): the \(expected.count)-byte payload differs first at byte \(firstDifference.map(String.init) ?? "-")")
        }
    }
}
