import Foundation
import NIOCore
import RelayCore
import RelayTLS
import RelayTestSupport
import RelayWire
import Testing

/// docs/security.md, "What is enforced where", TLS handler: no session
/// tickets (no resumption), a client chain of at most 8 intermediate CAs,
/// and trust in the configured `client_ca` only, never the system store.
@Suite("relayd end to end: no resumption, chain depth, no system trust store", .serialized)
struct TLSHardeningTests {
    /// `openssl s_client` as alice; sends a line that is not a Relay frame
    /// (relayd answers with an ERR and closes), so s_client reads everything
    /// relayd sent after the handshake, a session ticket included, before it exits.
    static func sClient(_ relayd: RelaydFixture, _ extra: [String]) async throws -> ChildProcess {
        let pki = relayd.pki
        let child = try await ChildProcess("/usr/bin/openssl", [
            "s_client", "-connect", "127.0.0.1:\(relayd.port)", "-servername", "localhost",
            "-CAfile", pki.ca.certificate, "-cert", pki.alice.certificate, "-key", pki.alice.key,
        ] + extra)
        child.writeToStdin("not a relay frame\n")
        _ = await child.waitForExit(timeout: 30)
        child.closeStdin()
        return child
    }

    @Test("no session tickets and no session cache: s_client -sess_out then -sess_in gets a full handshake (New, not Reused) over TLS 1.3 and 1.2")
    func noResumption() async throws {
        try await withRelayd(start: false) { relayd in
            relayd.tlsExtra = "min_version = \"1.2\""
            relayd.helloTimeout = "5s"
            try relayd.writeConfig()
            try await relayd.start()
            for version in ["-tls1_3", "-tls1_2"] {
                let name = version == "-tls1_3" ? "TLSv1.3" : "TLSv1.2"
                let session = relayd.directory.file("session\(version).pem")
                let first = try await Self.sClient(relayd, [version, "-sess_out", session])
                #expect(first.transcript.contains("New, \(name)"), "\(first.transcript)")
                #expect(first.transcript.contains("Verify return code: 0 (ok)"), "\(first.transcript)")
                // No ticket (TLS 1.3 NewSessionTicket, TLS 1.2 ticket extension) and,
                // with the server cache off, an empty TLS 1.2 session ID: nothing to resume.
                #expect(!first.transcript.contains("New Session Ticket arrived") && !first.transcript.contains("TLS session ticket"),
                        "relayd sent a \(name) session ticket:\n\(first.transcript)")
                let sessionIDs = first.stdoutLines.filter { $0.trimmingCharacters(in: .whitespaces).hasPrefix("Session-ID:") }
                let emptyIDs = sessionIDs.allSatisfy { $0.trimmingCharacters(in: .whitespaces) == "Session-ID:" }
                #expect(version == "-tls1_3" || emptyIDs, "relayd gave a \(name) session ID to resume: \(sessionIDs)")
                // s_client stores a session only when it has one it could resume.
                guard FileManager.default.fileExists(atPath: session) else { continue }
                let second = try await Self.sClient(relayd, [version, "-sess_in", session])
                #expect(second.transcript.contains("New, \(name)") && !second.transcript.contains("Reused"),
                        "a \(name) resumption was not a full handshake:\n\(second.transcript)")
                #expect(second.transcript.contains("Verify return code: 0 (ok)"), "\(second.transcript)")
            }
        }
    }

    @Test("a client chain with 8 intermediate CAs is accepted, one with 9 is refused in the handshake (chain_too_long)")
    func chainDepth() async throws {
        let pki = try TLSTestPKI()
        var intermediates: [TLSTestPKI.Files] = []
        for level in 1...9 {
            intermediates.append(try pki.addIntermediate("int-\(level)", commonName: "Depth CA \(level)", signedBy: intermediates.last))
        }
        // Each client file holds the leaf and its CAs, issuer first, never the root.
        let eight = try pki.addChainedClient("eight", chain: Array(intermediates.prefix(8).reversed()))
        let nine = try pki.addChainedClient("nine", chain: Array(intermediates.reversed()))
        try await withRelayd(pki: pki, metrics: true) { relayd in
            let accepted = try await FrameClient.connect(port: relayd.port, pki: pki, as: eight)
            let welcome = try await accepted.hello()
            #expect(welcome.principal == "CN=eight")
            await accepted.close()

            let outcome = try await FrameClient.helloOutcome(port: relayd.port, pki: pki, as: nine)
            guard case .tlsError(let error) = outcome else {
                Issue.record("a client chain with 9 intermediate CAs was not refused in the handshake: \(outcome)")
                return
            }
            print("chain depth: the 9-intermediate client saw \(error)")
            let event = await relayd.waitForAudit { $0.event == "connection_refused" }
            #expect(event?["cause"] == "chain_too_long", "\(String(describing: event?.fields))")
            let failures = try await relayd.waitForMetric("relay_handshake_failures_total{reason=\"chain_too_long\"}") { $0 >= 1 }
            #expect(failures == 1)
        }
    }

    @Test("relayd never trusts the system store: a client from a CA that SSL_CERT_FILE and SSL_CERT_DIR name (and openssl verify trusts) is refused (unknown_ca); the configured CA's client gets in")
    func systemStoreIsNotTrusted() async throws {
        let pki = try TLSTestPKI()
        let store = try TemporaryDirectory(prefix: "relay-system-store")
        defer { store.remove() }
        let systemCA = try TLSTestPKI.write(try DevelopmentPKI.createCA(commonName: "System Store CA"), name: "system-ca", in: store)
        try FileManager.default.removeItem(atPath: systemCA.key)
        let mallory = try pki.add("mallory", .client(commonName: "mallory"), signedBy: systemCA.issued)
        let rehash = try await ChildProcess("/usr/bin/openssl", ["rehash", store.path])
        #expect(await rehash.waitForExit(timeout: 30) == 0, "\(rehash.transcript)")
        let environment = ["SSL_CERT_FILE": systemCA.certificate, "SSL_CERT_DIR": store.path]
        // The control: OpenSSL's default verify paths, under this environment, trust mallory.
        let verify = try await ChildProcess("/usr/bin/openssl", ["verify", "-purpose", "sslclient", mallory.certificate],
                                            environment: environment)
        #expect(await verify.waitForExit(timeout: 30) == 0, "the system store set up for the test does not trust mallory:\n\(verify.transcript)")

        let relayd = try RelaydFixture(pki: pki)
        relayd.environment = environment
        try await withRelayd(relayd) { relayd in
            let outcome = try await FrameClient.helloOutcome(port: relayd.port, pki: pki, as: mallory)
            guard case .tlsError(.alertReceived(let code, _)) = outcome else {
                Issue.record("a client from the system store's CA was not refused with a TLS alert: \(outcome)")
                return
            }
            #expect(code == 48, "alert \(code), not unknown_ca")
            let event = await relayd.waitForAudit { $0.event == "connection_refused" }
            #expect(event?["cause"] == "unknown_ca", "\(String(describing: event?.fields))")
            let alice = try await FrameClient.connect(port: relayd.port, pki: pki)
            try await alice.hello()
            await alice.close()
        }
    }
}
