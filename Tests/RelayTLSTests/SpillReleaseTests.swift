import NIOCore
import NIOEmbedded
import RelayTestSupport
@testable import RelayTLS
import Testing

/// The session BIO's spill buffer holds what OpenSSL writes with no room
/// lent (handshake flights, alerts, close_notify). Kept after the
/// handshake, it cost every idle connection 4 KiB and more (idle RSS per
/// connection 35.7 → 37.1 KiB in `make bench-peers`); it is released once
/// drained, and records of a session never need it.
@Suite struct SpillReleaseTests {
    @Test("no spill buffer is kept once the handshake's flights are sent, nor after records both ways")
    func spillReleasedAfterHandshake() throws {
        let pki = try TLSTestPKI()
        let pair = try CiphertextSplitTests.makePair(pki)
        try pair.connect()
        #expect(pair.clientRecorder.handshake != nil && pair.serverRecorder.handshake != nil)
        let server = try pair.server.pipeline.syncOperations.handler(type: TLSHandler.self)
        let client = try pair.client.pipeline.syncOperations.handler(type: TLSHandler.self)
        #expect(server.retainedSpillBytes == 0)
        #expect(client.retainedSpillBytes == 0)
        // Records of 1 B to past a 16 KiB record, both ways: written into the
        // lent room, so no spill buffer comes back.
        for size in [1, 300, 16_384, 16_385, 70_000] {
            try pair.client.writeOutbound(pair.client.allocator.buffer(bytes: CiphertextSplitTests.payload(size, salt: 1)))
            try pair.server.writeOutbound(pair.server.allocator.buffer(bytes: CiphertextSplitTests.payload(size, salt: 2)))
            try pair.interact()
        }
        #expect(server.retainedSpillBytes == 0)
        #expect(client.retainedSpillBytes == 0)
        #expect(pair.serverRecorder.received.count == 103_070 && pair.clientRecorder.received.count == 103_070)
        pair.finish()
    }
}
