import Foundation
import RelayTLS
import RelayTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Issue 18 item 4: a refused handshake is logged, audited and counted
/// under a name an operator can alert on (`certificate_expired`,
/// `unknown_ca`, `certificate_revoked`, `no_client_certificate`,
/// `wrong_eku`), not an X509 error number; and a client that completes the
/// handshake and then vanishes without close_notify is no handshake failure.
/// Every refusal below is a real handshake against relayd, with leaves under
/// an intermediate CA as production PKIs issue them.
@Suite("relayd end to end: handshake failure names", .serialized)
struct HandshakeFailureNameTests {
    @Test("each refused handshake is counted, audited and logged under its name; a client killed after its handshake is not a failure")
    func namedReasons() async throws {
        let tree = try IntermediateTree()
        let pki = tree.pki
        let good = try pki.addChainedClient("good", chain: [tree.intermediate])
        var expiredRequest = CertificateRequest.client(commonName: "expired")
        expiredRequest.notBefore = Date().addingTimeInterval(-2 * 86_400)
        expiredRequest.notAfter = Date().addingTimeInterval(-86_400)
        let expired = try pki.addChainedClient("expired", expiredRequest, chain: [tree.intermediate])
        let revoked = try pki.addChainedClient("revoked", chain: [tree.intermediate])
        var serverOnly = CertificateRequest.client(commonName: "server-eku")
        serverOnly.extendedKeyUsage = [.serverAuth]
        let wrongEKU = try pki.addChainedClient("server-eku", serverOnly, chain: [tree.intermediate])
        let stranger = try TLSTestPKI()  // its own root: a CA relayd does not trust
        defer { stranger.remove() }
        var crls = try tree.emptyCRLs(leaving: ["crl-int-a"])
        crls.append(try pki.writeCRL(revoking: [revoked.issued.serialNumber], signedBy: tree.intermediate, name: "crl-int-a"))

        try await withRelayd(pki: pki, metrics: true, start: false) { relayd in
            relayd.tlsExtra = ChainRevocationTests.crlList(crls)
            try relayd.writeConfig()
            try await relayd.start()

            // A good client completes the handshake, then is killed: a TCP close without close_notify.
            let vanishing = try await Self.openssl(relayd, certificate: good)
            defer { vanishing.signal(SIGKILL) }
            let connected = await eventually(timeout: 20, every: 0.05) { vanishing.outputLines.contains { $0.contains("CONNECTION ESTABLISHED") } }
            #expect(connected, "openssl s_client did not complete its handshake:\n\(vanishing.transcript)")
            let registered = await eventually(timeout: 10, every: 0.05) { (try? await relayd.metric("relay_connections_open")) == 1 }
            #expect(registered, "relayd did not count the verified connection")
            vanishing.signal(SIGKILL)
            let gone = await eventually(timeout: 10, every: 0.05) { (try? await relayd.metric("relay_connections_open")) == 0 }
            #expect(gone, "relayd did not see the killed client's connection close")

            for identity in [expired, revoked, wrongEKU, stranger.alice] {
                let client = try await FrameClient.connect(port: relayd.port, pki: relayd.pki, as: identity)
                let outcome = await client.helloOutcome()
                if case .welcome = outcome { Issue.record("\(identity.certificate) was admitted") }
                await client.close()
            }
            let anonymous = try await Self.openssl(relayd, certificate: nil)
            defer { anonymous.signal(SIGKILL) }
            _ = await anonymous.waitForExit(timeout: 20)

            let expected = ["certificate_expired", "certificate_revoked", "wrong_eku", "unknown_ca", "no_client_certificate"]
            let allCounted = await eventually(timeout: 10, every: 0.05) {
                let text = (try? await relayd.scrapeMetrics()) ?? ""
                return expected.allSatisfy { text.contains("relay_handshake_failures_total{reason=\"\($0)\"} 1") }
            }
            let metrics = try await relayd.scrapeMetrics()
            let failureLines = metrics.split(separator: "\n").filter { $0.hasPrefix("relay_handshake_failures_total{") }
            #expect(allCounted, "expected one failure for each of \(expected):\n\(failureLines.joined(separator: "\n"))")
            #expect(failureLines.count == expected.count, "other failures were counted (the killed client?):\n\(failureLines.joined(separator: "\n"))")
            #expect(!metrics.contains("certificate_rejected_"), "an X509 number is still a label:\n\(failureLines.joined(separator: "\n"))")

            for name in expected {
                let audited = await relayd.waitForAudit { $0.event == "connection_refused" && $0["cause"] == name }
                #expect(audited != nil, "no connection_refused audit event with cause \(name)")
                let logged = await relayd.waitForLogLine { $0.contains("reason=\(name)") && $0.contains("peer=127.0.0.1:") }
                #expect(logged, "no log line names \(name) and the peer as 127.0.0.1:PORT")
            }
        }
    }

    /// `openssl s_client` to relayd as `certificate` (none: no client
    /// certificate), TLS 1.3, its stdin left open so it stays connected.
    static func openssl(_ relayd: RelaydFixture, certificate: TLSTestPKI.Files?) async throws -> ChildProcess {
        var arguments = ["s_client", "-connect", "127.0.0.1:\(relayd.port)", "-servername", "localhost",
                         "-CAfile", relayd.pki.ca.certificate, "-verify_return_error", "-brief"]
        // -cert_chain: the file holds the leaf and its intermediate, and -cert alone sends only the leaf.
        if let certificate { arguments += ["-cert", certificate.certificate, "-cert_chain", certificate.certificate, "-key", certificate.key] }
        return try await ChildProcess("/usr/bin/openssl", arguments)
    }
}
