import Foundation
import RelayTestSupport
import RelayTLS
import Testing

/// `relayctl acl explain` checks what the broker's handshake checks (the
/// chain against [tls] client_ca with intermediates, validity, the
/// clientAuth EKU, the CRL) before it explains the policy.
@Suite("acl explain: the handshake checks")
struct ACLExplainHandshakeTests {
    @Test("refused at the handshake, never ALLOWED, exit 77: expired, untrusted CA, revoked, serverAuth only; a good chained cert is ALLOWED with its notAfter")
    func handshakeChecks() async throws {
        let pki = try TLSTestPKI()
        let intermediate = try pki.addIntermediate("int-a", commonName: "Relay Test Intermediate A")
        var expiredRequest = CertificateRequest.client(commonName: "old")
        expiredRequest.setValidity(days: 2, startingInDays: -10)
        let expired = try pki.addChainedClient("old", expiredRequest, chain: [intermediate])
        let otherCA = try DevelopmentPKI.createCA(commonName: "Other CA")
        let stranger = try pki.add("stranger", .client(commonName: "stranger"), signedBy: otherCA)
        let mallory = try pki.add("mallory", .client(commonName: "mallory"))
        var serverOnlyRequest = CertificateRequest.client(commonName: "server-only")
        serverOnlyRequest.extendedKeyUsage = [.serverAuth]
        let serverOnly = try pki.addChainedClient("server-only", serverOnlyRequest, chain: [intermediate])
        let good = try pki.addChainedClient("good", chain: [intermediate])
        // The broker needs a CRL from every CA of a chain it checks: the root's
        // (revoking mallory) and the intermediate's (empty), in one file.
        let rootCRL = try pki.writeCRL(revoking: [mallory.issued.serialNumber])
        let intermediateCRL = try pki.writeCRL(revoking: [], signedBy: intermediate, name: "int-a-crl")
        let crl = pki.directory.file("both-crls.pem")
        try (String(contentsOfFile: rootCRL, encoding: .utf8) + String(contentsOfFile: intermediateCRL, encoding: .utf8))
            .write(toFile: crl, atomically: true, encoding: .utf8)
        try await withRelayd(pki: pki, crl: crl, start: false) { fixture in
            for (name, files, reason) in [("expired", expired, "expired"), ("untrusted CA", stranger, "CA"),
                                          ("revoked", mallory, "revoked"), ("serverAuth only", serverOnly, "purpose")] {
                let run = try await runCLI("relayctl", ["acl", "explain", "--config", fixture.configPath,
                                                        "--cert", files.certificate, "--publish", "a.b"])
                let text = run.stdout.joined(separator: "\n")
                #expect(run.status == 77, "\(name): \(run.status) \(text) \(run.stderr)")
                #expect(!text.contains("ALLOWED"), "\(name): \(text)")
                #expect(text.contains("the broker would refuse the TLS handshake"), "\(name): \(text)")
                #expect(text.lowercased().contains(reason.lowercased()), "\(name): \(text)")
            }
            let run = try await runCLI("relayctl", ["acl", "explain", "--config", fixture.configPath,
                                                    "--cert", good.certificate, "--publish", "a.b"])
            let text = run.stdout.joined(separator: "\n")
            #expect(run.status == 0, "\(text) \(run.stderr)")
            #expect(text.contains("handshake: the broker would accept this certificate"), "\(text)")
            #expect(text.contains("notAfter"), "\(text)")
            let result = run.stdout.last { !$0.isEmpty }
            #expect(result == "result: ALLOWED", "\(text)")
        }
    }
}
