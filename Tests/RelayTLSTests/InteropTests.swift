import Foundation
import NIOCore
import NIOPosix
import RelayTLS
import RelayTestSupport
import Testing

/// Independent TLS peers (OpenSSL and GnuTLS command-line tools) against our
/// server, and our client against `openssl s_server`.
@Suite struct InteropTests {
    @Test func opensslClientWithCertificateIsEchoed() async throws {
        let pki = try TLSTestPKI()
        defer { pki.remove() }
        let server = try await LoopbackServer.start(try TLSServerContextHolder(configuration: pki.serverConfiguration()),
                                                    group: MultiThreadedEventLoopGroup.singleton)
        let client = try await ChildProcess("/usr/bin/openssl", [
            "s_client", "-connect", "127.0.0.1:\(server.port)", "-servername", "localhost",
            "-cert", pki.alice.certificate, "-key", pki.alice.key, "-CAfile", pki.ca.certificate,
            "-verify_return_error", "-verify_hostname", "localhost", "-quiet",
        ])
        client.writeToStdin("hello from openssl\n")
        let echoed = await client.waitForLine(timeout: 15) { $0 == "hello from openssl" }
        #expect(echoed != nil, "\(client.transcript)")
        #expect(server.log.handshakes.first?.peer.subject.values(of: "CN") == ["alice"])
        // -quiet implies -ign_eof, so s_client stays until killed (SIGKILL: children
        // spawned by Foundation.Process inherit a mask that blocks SIGTERM).
        client.signal(SIGKILL)
        await server.stop()
    }

    @Test("the server sends its certificate without the root CA (the chain is built once per context, not per handshake)")
    func serverChainLeavesOutTheRoot() async throws {
        let pki = try TLSTestPKI()
        defer { pki.remove() }
        let server = try await LoopbackServer.start(try TLSServerContextHolder(configuration: pki.serverConfiguration()),
                                                    group: MultiThreadedEventLoopGroup.singleton)
        let client = try await ChildProcess("/usr/bin/openssl", [
            "s_client", "-connect", "127.0.0.1:\(server.port)", "-servername", "localhost", "-showcerts",
            "-cert", pki.alice.certificate, "-key", pki.alice.key, "-CAfile", pki.ca.certificate, "-verify_return_error",
        ])
        client.writeToStdin("Q\n")
        let status = await client.waitForExit(timeout: 15)
        if status == nil { client.signal(SIGKILL) }
        // s_client lists the certificates the server sent as " N s:subject".
        let sent = client.stdoutLines.filter { $0.range(of: #"^ *[0-9]+ s:"#, options: .regularExpression) != nil }
        #expect(sent.count == 1, "\(client.transcript)")
        #expect(sent.first?.contains("localhost") == true, "\(sent)")
        #expect(client.stdoutLines.contains { $0.contains("Verify return code: 0 (ok)") }, "\(client.transcript)")
        await server.stop()
    }

    @Test func opensslClientWithoutCertificateIsRefused() async throws {
        let pki = try TLSTestPKI()
        defer { pki.remove() }
        let server = try await LoopbackServer.start(try TLSServerContextHolder(configuration: pki.serverConfiguration()),
                                                    group: MultiThreadedEventLoopGroup.singleton)
        let client = try await ChildProcess("/usr/bin/openssl", [
            "s_client", "-connect", "127.0.0.1:\(server.port)", "-CAfile", pki.ca.certificate, "-quiet",
        ])
        client.writeToStdin("let me in\n")
        let status = await client.waitForExit(timeout: 15)
        #expect(status != nil && status != 0)
        // TLS 1.3: the client learns the refusal as an alert after its handshake.
        #expect(client.stderrLines.contains { $0.contains("certificate required") }, "\(client.transcript)")
        #expect(await eventually { server.log.tlsErrors == [.noPeerCertificate] })
        #expect(server.log.received.isEmpty)
        await server.stop()
    }

    @Test func gnutlsClientWithCertificateIsEchoed() async throws {
        let pki = try TLSTestPKI()
        defer { pki.remove() }
        let server = try await LoopbackServer.start(try TLSServerContextHolder(configuration: pki.serverConfiguration()),
                                                    group: MultiThreadedEventLoopGroup.singleton)
        let client = try await ChildProcess("/usr/bin/gnutls-cli", [
            "--port", "\(server.port)", "--x509cafile", pki.ca.certificate,
            "--x509certfile", pki.alice.certificate, "--x509keyfile", pki.alice.key,
            "--verify-hostname", "localhost", "127.0.0.1",
        ])
        client.writeToStdin("hello from gnutls\n")
        let echoed = await client.waitForLine(timeout: 15) { $0 == "hello from gnutls" }
        #expect(echoed != nil, "\(client.transcript)")
        #expect(server.log.handshakes.first?.peer.subject.values(of: "CN") == ["alice"])
        client.closeStdin()
        _ = await client.waitForExit(timeout: 10)
        await server.stop()
    }

    @Test func ourClientTalksToOpensslServerRequiringACertificate() async throws {
        let pki = try TLSTestPKI()
        defer { pki.remove() }
        let port = try freePort()
        let server = try await ChildProcess("/usr/bin/openssl", [
            "s_server", "-accept", "127.0.0.1:\(port)", "-cert", pki.server.certificate, "-key", pki.server.key,
            "-CAfile", pki.ca.certificate, "-Verify", "1", "-verify_return_error",
        ])
        #expect(await server.waitForLine(timeout: 15) { $0.contains("ACCEPT") } != nil, "\(server.transcript)")
        let (channel, log) = try await connectClient(try TLSClientContext(configuration: pki.clientConfiguration()),
                                                     port: port, group: MultiThreadedEventLoopGroup.singleton)
        try await channel.writeAndFlush(channel.allocator.buffer(string: "ping from relay\n"))
        #expect(await server.waitForLine(timeout: 15) { $0 == "ping from relay" } != nil, "\(server.transcript)")
        server.writeToStdin("pong from openssl\n")
        #expect(await eventually { String(decoding: log.received, as: UTF8.self) == "pong from openssl\n" })
        #expect(log.handshakes.first?.peer.subject.values(of: "CN") == ["localhost"])
        #expect(server.stdoutLines.contains { $0.contains("CN = alice") || $0.contains("CN=alice") }, "\(server.transcript)")
        try await channel.close()
        server.signal(SIGKILL)
    }
}
