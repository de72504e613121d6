import Foundation
import NIOCore
import RelayBroker
import RelayCore
import RelayTLS
import RelayTestSupport
import RelayWire
import Testing

/// Revocation of intermediate CAs and the client-leaf rules (Relay issue 14,
/// items 2 and 10), against the real relayd over real TLS. With TLS 1.3 a
/// refused client's handshake completes first; it learns of the refusal
/// from the server's alert on its next read, which these tests wait for.
@Suite("relayd end to end: intermediate CA revocation and client-leaf rules", .serialized)
struct ChainRevocationTests {
    static func crlList(_ paths: [String]) -> String {
        "crl = [" + paths.map { "\"\($0)\"" }.joined(separator: ", ") + "]"
    }

    /// Connects as `identity` and sends HELLO; returns the TLS error that
    /// closed the connection. Records an issue when the broker admitted the
    /// client or refused it some other way (timeout, ERR frame).
    static func tlsRefusal(_ relayd: RelaydFixture, as identity: TLSTestPKI.Files) async -> TLSError? {
        let client: FrameClient
        do {
            client = try await FrameClient.connect(port: relayd.port, pki: relayd.pki, as: identity)
        } catch {
            Issue.record("cannot connect: \(error)")
            return nil
        }
        defer { Task { await client.close() } }
        switch await client.helloOutcome() {
        case .tlsError(let error): return error
        case .welcome(let welcome): Issue.record("the broker admitted \(welcome.subject)")
        case .other(let what): Issue.record("expected a TLS alert, got \(what)")
        }
        return nil
    }

    /// A HELLO → WELCOME session as `identity`.
    static func admitted(_ relayd: RelaydFixture, as identity: TLSTestPKI.Files) async throws -> FrameClient {
        let client = try await FrameClient.connect(port: relayd.port, pki: relayd.pki, as: identity)
        try await client.hello()
        return client
    }

    /// True when `client` answers a PING (the session is alive).
    static func answersPing(_ client: FrameClient, token: UInt64) async throws -> Bool {
        try await client.send(.ping(token: token))
        let reply = try await client.nextReply { frame in
            switch frame {
            case .pong, .error: return true
            default: return false
            }
        }
        return reply == .pong(token: token)
    }

    // MARK: Item 2: a revoked intermediate

    @Test("the root's CRL revokes an intermediate: its leaves are refused with certificate_revoked; another branch gets in")
    func revokedIntermediateRefusesNewConnections() async throws {
        let tree = try IntermediateTree()
        let underA = try tree.pki.addChainedClient("under-a", chain: [tree.intermediate])
        let underB = try tree.pki.addChainedClient("under-b", chain: [tree.lower, tree.upper])
        var crls = try tree.emptyCRLs(leaving: ["crl-root"])
        crls.append(try tree.pki.writeCRL(revoking: [tree.intermediate.issued.serialNumber], signedBy: tree.pki.ca, name: "crl-root"))
        try await withRelayd(pki: tree.pki, start: false) { relayd in
            relayd.tlsExtra = Self.crlList(crls)
            try relayd.writeConfig()
            try await relayd.start()

            let refusal = await Self.tlsRefusal(relayd, as: underA)
            #expect(refusal == .alertReceived(code: 44, description: "certificate revoked"))
            let refusedEvent = await relayd.waitForAudit { $0.event == "connection_refused" }
            let refused = try #require(refusedEvent)
            #expect(refused["cause"] == "certificate_revoked", "\(refused.fields)")
            #expect(refused["reason"]?.contains("revoked") == true)
            // The other branch (its CAs not revoked) is admitted.
            let other = try await Self.admitted(relayd, as: underB)
            #expect(try await Self.answersPing(other, token: 1))
            await other.close()
            try await relayd.verifyAuditChain()
        }
    }

    @Test("a CRL revoking the middle CA of a 3-level chain, then SIGHUP: its leaves' live sessions end with certificate_revoked; the 2-level branch stays")
    func revokedIntermediateCutsLiveSessionsOnReload() async throws {
        let tree = try IntermediateTree()
        let identities = try tree.clients(3)  // alternating two-N (int-a) and three-N (int-b2 → int-b1)
        try await withRelayd(pki: tree.pki, start: false) { relayd in
            relayd.tlsExtra = Self.crlList(try tree.emptyCRLs())
            try relayd.writeConfig()
            try await relayd.start()
            var sessions: [FrameClient] = []
            for identity in identities { sessions.append(try await Self.admitted(relayd, as: identity)) }

            // int-b1's CRL now revokes int-b2 (the leaves' issuer, depth 1).
            _ = try tree.pki.writeCRL(revoking: [tree.lower.issued.serialNumber], signedBy: tree.upper, name: "crl-int-b1")
            relayd.reload()
            for (index, client) in sessions.enumerated() {
                if index % 2 == 1 {
                    let error = try await client.nextError()
                    #expect(error?.errorCode == .certificateRevoked, "three-level session \(index): \(String(describing: error))")
                    #expect(await client.waitUntilClosed())
                } else {
                    #expect(await relayd.waitForReloads(1))
                    #expect(try await Self.answersPing(client, token: UInt64(index)), "two-level session \(index) was cut")
                }
            }
            let ended = relayd.auditEvents().filter { $0.event == "session_ended" }
            #expect(ended.count == 3)
            let allRevokedByReload = ended.allSatisfy { $0["cause"] == "certificate_revoked" && $0["trigger"] == "reload" && $0["subject"]?.hasPrefix("CN=three-") == true }
            #expect(allRevokedByReload)
            // And they cannot come back.
            #expect(await Self.tlsRefusal(relayd, as: identities[1]) == .alertReceived(code: 44, description: "certificate revoked"))
            for (index, client) in sessions.enumerated() where index % 2 == 0 { await client.close() }
            try await relayd.verifyAuditChain()
        }
    }

    @Test("no CRL from the root (the CA that issued the intermediate) is loaded: refused by default, and the log names that CA")
    func missingIntermediateCRLFailsClosed() async throws {
        let tree = try IntermediateTree()
        let underA = try tree.pki.addChainedClient("under-a", chain: [tree.intermediate])
        try await withRelayd(pki: tree.pki, start: false) { relayd in
            relayd.tlsExtra = Self.crlList(try tree.emptyCRLs(leaving: ["crl-root"]))
            try relayd.writeConfig()
            try await relayd.start()

            let refusal = await Self.tlsRefusal(relayd, as: underA)
            guard case .alertReceived = refusal else {
                Issue.record("expected a TLS alert, got \(String(describing: refusal))"); return
            }
            let refusedEvent = await relayd.waitForAudit { $0.event == "connection_refused" }
            let refused = try #require(refusedEvent)
            #expect(refused["cause"] == "crl_missing", "\(refused.fields)")
            #expect(refused["reason"]?.contains("no CRL from CA 'CN=Relay Test CA'") == true, "\(refused.fields)")
            let namesCA = await relayd.waitForLogLine { $0.contains("connection denied") && $0.contains("no CRL from CA 'CN=Relay Test CA'") }
            #expect(namesCA, "no log line names the CA whose CRL is missing:\n\(relayd.process?.transcript ?? "")")
            try await relayd.verifyAuditChain()
        }
    }

    @Test("crl_missing = \"allow-intermediate\": a missing CRL for an intermediate is tolerated, a loaded CRL revoking one is still enforced")
    func missingIntermediateCRLAllowedByOption() async throws {
        let tree = try IntermediateTree()
        let underA = try tree.pki.addChainedClient("under-a", chain: [tree.intermediate])
        let underB = try tree.pki.addChainedClient("under-b", chain: [tree.lower, tree.upper])
        var crls = try tree.emptyCRLs(leaving: ["crl-root", "crl-int-b1"])
        crls.append(try tree.pki.writeCRL(revoking: [tree.lower.issued.serialNumber], signedBy: tree.upper, name: "crl-int-b1"))
        try await withRelayd(pki: tree.pki, start: false) { relayd in
            relayd.tlsExtra = Self.crlList(crls) + "\ncrl_missing = \"allow-intermediate\""
            try relayd.writeConfig()
            try await relayd.start()

            #expect(await Self.tlsRefusal(relayd, as: underB) == .alertReceived(code: 44, description: "certificate revoked"))
            let client = try await Self.admitted(relayd, as: underA)
            #expect(try await Self.answersPing(client, token: 7))
            await client.close()
            try await relayd.verifyAuditChain()
        }
    }

    // MARK: Item 10: client leaves without clientAuth, or CA certificates

    @Test("a client leaf without an extendedKeyUsage extension is refused (unsupported certificate), with the reason in the audit trail")
    func leafWithoutEKUIsRefused() async throws {
        let tree = try IntermediateTree()
        var request = CertificateRequest.client(commonName: "no-eku")
        request.extendedKeyUsage = []
        let noEKU = try tree.pki.addChainedClient("no-eku", request, chain: [tree.intermediate])
        try await withRelayd(pki: tree.pki) { relayd in

            #expect(await Self.tlsRefusal(relayd, as: noEKU) == .alertReceived(code: 43, description: "unsupported certificate"))
            let refusal = await relayd.waitForAudit { $0.event == "connection_refused" }
            let refused = try #require(refusal)
            #expect(refused["cause"] == "wrong_eku", "\(refused.fields)")
            #expect(refused["reason"]?.contains("clientAuth") == true, "\(refused.fields)")
            // Positive control: the same chain with EKU clientAuth gets in.
            let good = try await Self.admitted(relayd, as: try tree.pki.addChainedClient("with-eku", chain: [tree.intermediate]))
            await good.close()
            try await relayd.verifyAuditChain()
        }
    }

    @Test("a CA certificate (basicConstraints CA:TRUE) presented as a client leaf is refused, with the reason in the audit trail")
    func caCertificateAsLeafIsRefused() async throws {
        let tree = try IntermediateTree()
        var request = CertificateRequest.client(commonName: "sub-ca")
        request.isCA = true
        // Able to sign a handshake, so OpenSSL's own purpose check (key
        // usage) lets it through: only the CA:TRUE rule refuses it.
        request.keyUsage = [.digitalSignature, .keyCertSign]
        let caLeaf = try tree.pki.addChainedClient("sub-ca", request, chain: [tree.intermediate])
        try await withRelayd(pki: tree.pki) { relayd in

            let refusal = await Self.tlsRefusal(relayd, as: caLeaf)
            #expect(refusal == .alertReceived(code: 46, description: "certificate unknown"), "\(String(describing: refusal))")
            let refusedEvent = await relayd.waitForAudit { $0.event == "connection_refused" }
            let refused = try #require(refusedEvent)
            #expect(refused["cause"] == "ca_certificate_as_client", "\(refused.fields)")
            #expect(refused["reason"]?.contains("CA certificate") == true, "\(refused.fields)")
            try await relayd.verifyAuditChain()
        }
    }

    @Test("a v1 self-signed certificate (no extensions) that client_ca lists is never accepted as a client leaf (X509 error 37, ca_certificate_as_client)")
    func v1SelfSignedLeafIsRefused() async throws {
        let pki = try TLSTestPKI()
        // Made by the openssl CLI: `x509 -req -signkey` without extensions writes a version 1 certificate.
        let key = pki.directory.file("v1.key"), request = pki.directory.file("v1.csr"), certificate = pki.directory.file("v1.pem")
        for arguments in [["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", key],
                          ["req", "-new", "-key", key, "-subj", "/CN=v1-client", "-out", request],
                          ["x509", "-req", "-in", request, "-signkey", key, "-days", "30", "-out", certificate]] {
            let openssl = try await ChildProcess("/usr/bin/openssl", arguments)
            #expect(await openssl.waitForExit(timeout: 30) == 0, "openssl \(arguments[0]):\n\(openssl.transcript)")
        }
        let text = try await ChildProcess("/usr/bin/openssl", ["x509", "-in", certificate, "-noout", "-text"])
        _ = await text.waitForExit(timeout: 30)
        try #require(text.stdoutLines.contains { $0.contains("Version: 1 (0x0)") }, "not a v1 certificate:\n\(text.transcript)")
        let pem = try String(contentsOfFile: certificate, encoding: .utf8)
        let v1 = try TLSTestPKI.write(IssuedCertificate(certificatePEM: pem, privateKeyPEM: try String(contentsOfFile: key, encoding: .utf8),
                                                        serialNumber: ""), name: "v1", in: pki.directory)
        let relayd = try RelaydFixture(pki: pki)
        // Trusted as its own anchor: only the client-leaf rule can refuse it.
        relayd.clientCAs = [pki.ca.certificate, certificate]
        try relayd.writeConfig()
        try await withRelayd(relayd) { relayd in
            let refusal = await Self.tlsRefusal(relayd, as: v1)
            #expect(refusal == .alertReceived(code: 46, description: "certificate unknown"), "\(String(describing: refusal))")
            let refusedEvent = await relayd.waitForAudit { $0.event == "connection_refused" }
            let refused = try #require(refusedEvent)
            #expect(refused["cause"] == "ca_certificate_as_client", "\(refused.fields)")
            #expect(refused["reason"]?.contains("CA certificate") == true, "\(refused.fields)")
        }
    }
}
