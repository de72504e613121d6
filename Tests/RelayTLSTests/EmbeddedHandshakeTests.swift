import NIOCore
import NIOEmbedded
import RelayCore
import RelayTLS
import RelayTestSupport
import Testing

/// Handshakes and data transfer between our client and server handlers over
/// back-to-back EmbeddedChannels (no sockets, fully deterministic).
@Suite struct EmbeddedHandshakeTests {
    static func makePair(_ pki: TLSTestPKI, client: TLSTestPKI.Files? = nil, serverName: String = "localhost",
                         server: TLSServerConfiguration? = nil) throws -> EmbeddedTLSPair {
        let serverContext = try TLSServerContext(configuration: server ?? pki.serverConfiguration())
        let clientContext = try TLSClientContext(configuration: pki.clientConfiguration(client, serverName: serverName))
        return try EmbeddedTLSPair(client: try clientContext.makeHandler(), server: try serverContext.makeHandler())
    }

    @Test func handshakeDeliversBothIdentities() throws {
        let pki = try TLSTestPKI()
        defer { pki.remove() }
        let pair = try Self.makePair(pki)
        defer { pair.finish() }
        try pair.connect()

        let serverSaw = try #require(pair.serverRecorder.handshake)
        #expect(serverSaw.peer.subject.values(of: "CN") == ["alice"])
        #expect(serverSaw.peer.subject.values(of: "OU") == ["payments"])
        #expect(serverSaw.peer.spiffe?.uri == "spiffe://relay.test/ns/prod/sa/alice")
        #expect(serverSaw.peer.serialNumber == pki.alice.issued.serialNumber)
        #expect(serverSaw.protocolVersion == "TLSv1.3")
        #expect(serverSaw.peerChain.derCertificates.count == 2)  // leaf + CA
        // The chain's expiry is read at the handshake from OpenSSL's decoded
        // certificates (decoding the DER again at HELLO cost ~15 % of the
        // handshake rate), and it is the one the DER gives.
        let atHandshake = try #require(serverSaw.peerChain.verifiedExpiry, "no expiry read at the handshake")
        #expect(atHandshake == PeerCertificateChain(derCertificates: serverSaw.peerChain.derCertificates).earliestExpiry)
        let clientSaw = try #require(pair.clientRecorder.handshake)
        #expect(clientSaw.peer.sans.dns == ["localhost"])
        #expect(pair.serverRecorder.errors.isEmpty && pair.clientRecorder.errors.isEmpty)
    }

    @Test(arguments: [1, 16_384, 8 * 1024 * 1024])
    func dataFlowsBothWays(size: Int) throws {
        let pki = try TLSTestPKI()
        defer { pki.remove() }
        let pair = try Self.makePair(pki)
        defer { pair.finish() }
        try pair.connect()

        let upstream = (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        let downstream = (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ 3) }
        try pair.client.writeOutbound(pair.client.allocator.buffer(bytes: upstream))
        try pair.server.writeOutbound(pair.server.allocator.buffer(bytes: downstream))
        try pair.interact()
        #expect(pair.serverRecorder.received == upstream)
        #expect(pair.clientRecorder.received == downstream)
    }

    @Test func writesBeforeHandshakeAreBufferedAndDelivered() throws {
        let pki = try TLSTestPKI()
        defer { pki.remove() }
        let pair = try Self.makePair(pki)
        defer { pair.finish() }
        // Written and flushed while the handshake has not even started.
        pair.client.pipeline.syncOperations.writeAndFlush(NIOAny(pair.client.allocator.buffer(string: "early")), promise: nil)
        try pair.connect()
        #expect(pair.serverRecorder.received == Array("early".utf8))
    }

    @Test func writesBetweenFlushesShareOneRecordAndOneChannelWrite() throws {
        let pki = try TLSTestPKI()
        defer { pki.remove() }
        let pair = try Self.makePair(pki)
        defer { pair.finish() }
        try pair.connect()
        let before = pair.clientWrites.count
        for index in 0..<100 {
            pair.client.pipeline.syncOperations.write(NIOAny(pair.client.allocator.buffer(string: "m\(index);")), promise: nil)
        }
        pair.client.pipeline.syncOperations.flush()
        try pair.interact()
        let written = pair.clientWrites[before...]
        #expect(written.count == 1)
        // One TLS 1.3 application-data record: 5-byte header, content type and 16-byte tag.
        let expected = (0..<100).map { "m\($0);" }.joined()
        #expect(written.first?.readableBytes == 5 + expected.utf8.count + 1 + 16)
        #expect(pair.serverRecorder.received == Array(expected.utf8))
    }

    @Test func ciphertextFedOneByteAtATimeStillDecrypts() throws {
        let pki = try TLSTestPKI()
        defer { pki.remove() }
        let pair = try Self.makePair(pki)
        defer { pair.finish() }
        try pair.connect()
        try pair.client.writeOutbound(pair.client.allocator.buffer(string: "partial reads work"))
        var ciphertext = try #require(try pair.client.readOutbound(as: ByteBuffer.self))
        while let byte = ciphertext.readSlice(length: 1) { try pair.server.writeInbound(byte) }
        #expect(pair.serverRecorder.received == Array("partial reads work".utf8))
    }

    @Test func closeNotifyTravelsBothWays() throws {
        let pki = try TLSTestPKI()
        defer { pki.remove() }
        let pair = try Self.makePair(pki)
        defer { pair.finish() }
        try pair.connect()
        try pair.client.writeOutbound(pair.client.allocator.buffer(string: "last words"))
        try pair.interact()
        let writesBeforeClose = pair.serverWrites.count
        let closed = pair.client.close()
        try pair.interact()
        try closed.wait()
        // The server got the data, then the close_notify, answered and closed cleanly.
        #expect(pair.serverRecorder.received == Array("last words".utf8))
        #expect(!pair.server.isActive)
        #expect(pair.serverRecorder.errors.isEmpty)
        #expect(pair.serverRecorder.inactive)
        // The server answered the close_notify with its own, and wrote nothing else.
        // TLS 1.3 hides an alert's type inside the record (outer type is always 23),
        // so check the shape: exactly one record of 2 alert bytes + 1 inner type
        // byte + a 16-byte AEAD tag = 19 bytes. No answer, or data after the
        // close, changes the bytes.
        var answer = ByteBuffer()
        for write in pair.serverWrites[writesBeforeClose...] { answer.writeImmutableBuffer(write) }
        #expect(answer.readableBytes == 5 + 19 && answer.getBytes(at: answer.readerIndex, length: 5) == [23, 3, 3, 0, 19],
                "the server's writes after the client's close_notify: \(pair.serverWrites[writesBeforeClose...].map(\.readableBytes)) bytes")
    }

    @Test func handshakeThatStopsHalfWayTimesOut() throws {
        let pki = try TLSTestPKI()
        defer { pki.remove() }
        let pair = try Self.makePair(pki, server: pki.serverConfiguration(handshakeTimeout: .milliseconds(500)))
        defer { pair.finish() }
        _ = pair.server.connect(to: try SocketAddress(ipAddress: "127.0.0.1", port: 1))
        // Half a ClientHello, then silence.
        _ = pair.client.connect(to: try SocketAddress(ipAddress: "127.0.0.1", port: 1))
        let hello = try #require(try pair.client.readOutbound(as: ByteBuffer.self))
        try pair.server.writeInbound(hello.getSlice(at: hello.readerIndex, length: hello.readableBytes / 2))
        pair.loop.advanceTime(by: .milliseconds(499))
        #expect(pair.server.isActive)
        pair.loop.advanceTime(by: .milliseconds(1))
        #expect(!pair.server.isActive)
        #expect(pair.serverRecorder.tlsErrors == [.handshakeTimedOut(milliseconds: 500)])
    }
}
