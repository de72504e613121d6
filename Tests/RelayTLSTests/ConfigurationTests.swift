import Foundation
import RelayTLS
import RelayTestSupport
import Testing

/// Loading errors name the file and the problem.
@Suite struct ConfigurationTests {
    @Test func missingFileIsNamed() throws {
        let pki = try TLSTestPKI()
        defer { pki.remove() }
        var configuration = pki.serverConfiguration()
        configuration.certificateChain = .file(pki.directory.file("nope.pem"))
        #expect(throws: TLSConfigurationError.unreadableFile(path: pki.directory.file("nope.pem"), reason: "no such file")) {
            try TLSServerContext(configuration: configuration)
        }
    }

    @Test func keyFileGivenAsCertificateSaysNoCertificate() throws {
        let pki = try TLSTestPKI()
        defer { pki.remove() }
        var configuration = pki.serverConfiguration()
        configuration.certificateChain = .file(pki.server.key)
        do {
            _ = try TLSServerContext(configuration: configuration)
            Issue.record("loading a key as a certificate succeeded")
        } catch {
            #expect(error == .noCertificate(source: pki.server.key))
            #expect(error.description.contains("\(pki.server.key): no certificate in PEM file"))
        }
    }

    @Test func certificateGivenAsKeySaysNoKey() throws {
        let pki = try TLSTestPKI()
        defer { pki.remove() }
        var configuration = pki.clientConfiguration()
        configuration.privateKey = .file(pki.alice.certificate)
        #expect(throws: TLSConfigurationError.noPrivateKey(source: pki.alice.certificate)) { try TLSClientContext(configuration: configuration) }
    }

    @Test func mismatchedKeyIsNamed() throws {
        let pki = try TLSTestPKI()
        defer { pki.remove() }
        var configuration = pki.serverConfiguration()
        configuration.privateKey = .file(pki.alice.key)
        do {
            _ = try TLSServerContext(configuration: configuration)
            Issue.record("a mismatched key was accepted")
        } catch {
            #expect(error == .keyDoesNotMatchCertificate(certificate: pki.server.certificate, key: pki.alice.key))
            #expect(error.description.contains("key does not match certificate"))
        }
    }

    /// `relayctl pki issue --cn server` once wrote a client certificate over
    /// the broker's; it loaded, a reload applied it, and every client then
    /// refused the broker ("unsuitable certificate purpose").
    @Test func clientOnlyCertificateIsRefusedAsTheServerCertificate() throws {
        let pki = try TLSTestPKI()
        defer { pki.remove() }
        var configuration = pki.serverConfiguration()
        configuration.certificateChain = .file(pki.alice.certificate)
        configuration.privateKey = .file(pki.alice.key)
        do {
            _ = try TLSServerContext(configuration: configuration)
            Issue.record("a clientAuth-only certificate was accepted as the server's")
        } catch {
            #expect(error == .notAServerCertificate(source: pki.alice.certificate))
            #expect(error.description.contains("serverAuth"), "\(error)")
        }
    }

    /// A client certificate configured as `client_ca` (a copy-paste of the
    /// wrong file) loaded: every client was then refused with `unknown_ca`,
    /// and a reload applied it the same way.
    @Test func leafCertificateIsRefusedAsClientCA() throws {
        let pki = try TLSTestPKI()
        defer { pki.remove() }
        var configuration = pki.serverConfiguration()
        configuration.clientCAs = [.file(pki.ca.certificate), .file(pki.alice.certificate)]
        do {
            _ = try TLSServerContext(configuration: configuration)
            Issue.record("a leaf certificate was accepted as a client CA")
        } catch {
            #expect(error == .notACertificateAuthority(source: pki.alice.certificate, subject: "CN=alice,OU=payments"))
            #expect(error.description.contains("CA:TRUE"), "\(error)")
        }
    }

    /// An expired server certificate loaded: every client then refused the
    /// broker ("certificate has expired") while relayd ran as if all was well.
    @Test func expiredServerCertificateIsRefused() throws {
        let pki = try TLSTestPKI()
        defer { pki.remove() }
        var request = CertificateRequest.server(commonName: "localhost", sans: [.dns("localhost")])
        request.setValidity(days: 1, startingInDays: -2)
        let expired = try pki.add("expired-server", request)
        var configuration = pki.serverConfiguration()
        configuration.certificateChain = .file(expired.certificate)
        configuration.privateKey = .file(expired.key)
        do {
            _ = try TLSServerContext(configuration: configuration)
            Issue.record("an expired server certificate was accepted")
        } catch {
            guard case .serverCertificateExpired(let source, _) = error else {
                Issue.record("wrong error: \(error)")
                return
            }
            #expect(source == expired.certificate)
            #expect(error.description.contains("expired") && error.description.contains("renew"), "\(error)")
        }
    }

    @Test func crlFileWithoutCRLIsNamed() throws {
        let pki = try TLSTestPKI()
        defer { pki.remove() }
        #expect(throws: TLSConfigurationError.noCRL(source: pki.ca.certificate)) {
            try TLSServerContext(configuration: pki.serverConfiguration(crls: [pki.ca.certificate]))
        }
    }

    @Test func inMemoryPEMWorksAndErrorsUseItsName() throws {
        let pki = try TLSTestPKI()
        defer { pki.remove() }
        let configuration = TLSServerConfiguration(
            certificateChain: .memory(pki.server.issued.certificatePEM, name: "vault:server-cert"),
            privateKey: .memory(pki.server.issued.privateKeyPEM, name: "vault:server-key"),
            clientCAs: [.pem(pki.ca.issued.certificatePEM)])
        _ = try TLSServerContext(configuration: configuration)
        var broken = configuration
        broken.clientCAs = [.memory("not pem", name: "vault:client-ca")]
        #expect(throws: TLSConfigurationError.noCertificate(source: "vault:client-ca")) { try TLSServerContext(configuration: broken) }
    }

    @Test func emptyClientCAListIsRefused() throws {
        let pki = try TLSTestPKI()
        defer { pki.remove() }
        var configuration = pki.serverConfiguration()
        configuration.clientCAs = []
        #expect(throws: TLSConfigurationError.self) { try TLSServerContext(configuration: configuration) }
    }

    @Test func severalClientCABundlesAreAllTrusted() throws {
        let pki = try TLSTestPKI()
        defer { pki.remove() }
        let otherCA = try DevelopmentPKI.createCA(commonName: "Second CA")
        let caFiles = try TLSTestPKI.write(otherCA, name: "second-ca", in: pki.directory)
        let carol = try pki.add("carol", .client(commonName: "carol"), signedBy: otherCA)
        var configuration = pki.serverConfiguration()
        configuration.clientCAs.append(.file(caFiles.certificate))
        let pair = try EmbeddedTLSPair(
            client: try TLSClientContext(configuration: pki.clientConfiguration(carol)).makeHandler(),
            server: try TLSServerContext(configuration: configuration).makeHandler())
        defer { pair.finish() }
        try pair.connect()
        #expect(pair.serverRecorder.handshake?.peer.subject.values(of: "CN") == ["carol"])
        #expect(pair.serverRecorder.handshake?.peer.issuer.values(of: "CN") == ["Second CA"])
    }
}

/// The development PKI's files and CRLs, checked with the OpenSSL CLI.
@Suite struct DevelopmentPKITests {
    @Test func keysAreWrittenWithMode0600() throws {
        let pki = try TLSTestPKI()
        defer { pki.remove() }
        for path in [pki.ca.key, pki.server.key, pki.alice.key] {
            let mode = try #require(try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int)
            #expect(mode == 0o600, "\(path)")
        }
    }

    @Test func issuedChainsVerifyWithTheOpenSSLCLI() throws {
        let pki = try TLSTestPKI()
        defer { pki.remove() }
        let server = try runCLI("/usr/bin/openssl", ["verify", "-CAfile", pki.ca.certificate, "-purpose", "sslserver", pki.server.certificate])
        #expect(server.contains(": OK"), "\(server)")
        let client = try runCLI("/usr/bin/openssl", ["verify", "-CAfile", pki.ca.certificate, "-purpose", "sslclient", pki.alice.certificate])
        #expect(client.contains(": OK"), "\(client)")
        let wrongPurpose = try runCLI("/usr/bin/openssl", ["verify", "-CAfile", pki.ca.certificate, "-purpose", "sslserver", pki.alice.certificate])
        #expect(!wrongPurpose.contains(": OK"))
    }

    @Test func crlRevokesExactlyTheGivenSerials() throws {
        let pki = try TLSTestPKI()
        defer { pki.remove() }
        let crl = try pki.writeCRL(revoking: [pki.alice.issued.serialNumber])
        let text = try runCLI("/usr/bin/openssl", ["crl", "-in", crl, "-noout", "-text"])
        #expect(text.contains("Serial Number: \(pki.alice.issued.serialNumber)"), "\(text)")
        let verify = try runCLI("/usr/bin/openssl", ["verify", "-crl_check", "-CAfile", pki.ca.certificate, "-CRLfile", crl, pki.alice.certificate])
        #expect(verify.contains("certificate revoked"), "\(verify)")
    }

    @Test func invalidAttributeIsReported() {
        let request = CertificateRequest(subject: [[NameAttribute("C", "Germany")]])
        #expect(throws: DevelopmentPKIError.self) { try DevelopmentPKI.selfSigned(request) }
    }
}
