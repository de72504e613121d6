import NIOCore
import NIOEmbedded
import RelayTLS
import RelayTestSupport
import Testing

/// Wave 22: a client session whose read had to grow its buffer (more than
/// one 16 KiB record was waiting) starts its next reads at the grown size
/// instead of growing again by `realloc` (which copied the first record
/// every time); after four reads of one record or less in a row, reads
/// start small again. The broker's sessions keep starting small (their reads stay
/// pinned by payload slices until the commit). The plaintext is the same
/// either way.
@Suite struct AdaptiveReadTests {
    static func bytes(_ count: Int, salt: Int) -> [UInt8] {
        (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 13 &+ salt) }
    }

    /// A burst whose last read is over one record, then five small writes:
    /// the reader's capacity for each small write, and everything it got.
    static func burstThenSmall(from writer: EmbeddedChannel, pair: EmbeddedTLSPair,
                               recorder: TLSEventRecorder) throws -> (capacities: [Int], sent: [UInt8]) {
        // 2 × 64 KiB reads, then 40,000 bytes: the burst's last read is over 16 KiB.
        let burst = bytes(2 * 65_536 + 40_000, salt: 1)
        try writer.writeAndFlush(writer.allocator.buffer(bytes: burst)).wait()
        try pair.interact()
        var capacities: [Int] = []
        var sent = burst
        for salt in 2...6 {
            let small = bytes(1000, salt: salt)
            try writer.writeAndFlush(writer.allocator.buffer(bytes: small)).wait()
            try pair.interact()
            capacities.append(recorder.readCapacities.last ?? 0)
            sent += small
        }
        return (capacities, sent)
    }

    @Test("client reads after a grown read start large, small again after four small reads; the broker's stay small")
    func adaptiveClientReads() throws {
        let pki = try TLSTestPKI()
        defer { pki.remove() }
        let pair = try EmbeddedTLSPair(
            client: try TLSClientContext(configuration: pki.clientConfiguration()).makeHandler(),
            server: try TLSServerContext(configuration: pki.serverConfiguration()).makeHandler())
        defer { pair.finish() }
        try pair.connect()
        #expect(pair.clientRecorder.handshake != nil)

        let toClient = try Self.burstThenSmall(from: pair.server, pair: pair, recorder: pair.clientRecorder)
        #expect(pair.clientRecorder.received == toClient.sent)
        #expect(toClient.capacities.count == 5)
        let startedLarge = toClient.capacities.prefix(4).allSatisfy { $0 >= 65_536 }
        #expect(startedLarge)                                 // the next four start at the grown size
        #expect((toClient.capacities.last ?? .max) < 65_536)  // small again after four small reads

        let toServer = try Self.burstThenSmall(from: pair.client, pair: pair, recorder: pair.serverRecorder)
        #expect(pair.serverRecorder.received == toServer.sent)
        let serverCapacities = toServer.capacities
        let allSmall = serverCapacities.allSatisfy { $0 < 65_536 }
        #expect(serverCapacities.count == 5 && allSmall)
    }
}
