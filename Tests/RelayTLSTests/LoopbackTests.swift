import Foundation
import NIOCore
import NIOPosix
import RelayTLS
import RelayTestSupport
import Testing

/// Our client and server over real sockets on 127.0.0.1.
@Suite struct LoopbackTests {
    @Test(arguments: [1, 16_384, 8 * 1024 * 1024])
    func echoRoundTrip(size: Int) async throws {
        let pki = try TLSTestPKI()
        defer { pki.remove() }
        let group = MultiThreadedEventLoopGroup.singleton
        let server = try await LoopbackServer.start(try TLSServerContextHolder(configuration: pki.serverConfiguration()), group: group)
        let (client, clientLog) = try await connectClient(try TLSClientContext(configuration: pki.clientConfiguration()),
                                                          port: server.port, group: group)
        let payload = (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 13 &+ 1) }
        try await client.writeAndFlush(client.allocator.buffer(bytes: payload))
        #expect(await eventually(timeout: 30) { clientLog.received.count >= size })
        #expect(clientLog.received == payload)
        #expect(server.log.received == payload)
        #expect(server.log.handshakes.first?.peer.subject.values(of: "CN") == ["alice"])
        #expect(clientLog.handshakes.first?.peer.sans.ip == ["127.0.0.1", "::1"])
        try await client.close()
        // The server saw our close_notify and closed without an error.
        #expect(await eventually { server.log.closedCount == 1 })
        #expect(server.log.errors.isEmpty)
        await server.stop()
    }

    @Test func connectingByIPAddressChecksTheIPSAN() async throws {
        let pki = try TLSTestPKI()
        defer { pki.remove() }
        let group = MultiThreadedEventLoopGroup.singleton
        let server = try await LoopbackServer.start(try TLSServerContextHolder(configuration: pki.serverConfiguration()), group: group)
        let (client, clientLog) = try await connectClient(try TLSClientContext(configuration: pki.clientConfiguration(serverName: "127.0.0.1")),
                                                          port: server.port, group: group)
        try await client.writeAndFlush(client.allocator.buffer(string: "by ip"))
        #expect(await eventually { clientLog.received == Array("by ip".utf8) })
        try await client.close()
        await server.stop()
    }

    @Test func reloadAppliesToNewHandshakesAndKeepsEstablishedOnes() async throws {
        let pki = try TLSTestPKI()
        defer { pki.remove() }
        let group = MultiThreadedEventLoopGroup.singleton
        let holder = try TLSServerContextHolder(configuration: pki.serverConfiguration())
        let server = try await LoopbackServer.start(holder, group: group)
        let clientContext = try TLSClientContext(configuration: pki.clientConfiguration())
        let (first, firstLog) = try await connectClient(clientContext, port: server.port, group: group)
        try await first.writeAndFlush(first.allocator.buffer(string: "one"))
        #expect(await eventually { firstLog.received == Array("one".utf8) })

        // A reload with a bad key file is refused and the old context stays.
        var broken = pki.serverConfiguration()
        broken.privateKey = .file(pki.alice.key)
        #expect(throws: TLSConfigurationError.keyDoesNotMatchCertificate(certificate: pki.server.certificate, key: pki.alice.key)) {
            try holder.reload(configuration: broken)
        }
        // Now revoke alice: new handshakes are refused, the live session continues.
        let crl = try pki.writeCRL(revoking: [pki.alice.issued.serialNumber])
        let reloaded = try holder.reload(configuration: pki.serverConfiguration(crls: [crl]))
        let (second, secondLog) = try await connectClient(clientContext, port: server.port, group: group)
        try? await second.writeAndFlush(second.allocator.buffer(string: "two"))
        #expect(await eventually { secondLog.tlsErrors.contains(.alertReceived(code: 44, description: "certificate revoked")) })
        #expect(server.log.tlsErrors.contains(.certificateRejected(code: 23, reason: "certificate revoked")))
        try await first.writeAndFlush(first.allocator.buffer(string: "still here"))
        #expect(await eventually { firstLog.received == Array("onestill here".utf8) })
        // The broker re-verifies the live session's chain against the new CRL.
        let liveChain = try #require(server.log.handshakes.first?.peerChain)
        #expect(throws: TLSError.certificateRejected(code: 23, reason: "certificate revoked")) { try reloaded.verify(liveChain) }
        try await first.close()
        await server.stop()
    }
}
