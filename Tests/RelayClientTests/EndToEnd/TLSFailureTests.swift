import Foundation
import RelayClient
import RelayTestSupport
import RelayTLS
import Testing

/// Refused certificates explained in plain words, through the library and the CLIs.
@Suite("TLS and identity failures")
struct TLSFailureTests {
    /// Connects as `client` and returns the error, or records an issue when it connected.
    private func connectError(_ broker: RelaydFixture, _ client: TLSTestPKI.Files?, caPath: String? = nil) async -> RelayClientError? {
        var configuration = broker.clientConfiguration(client)
        if let caPath { configuration.tls.trustRoots = [.file(caPath)] }
        do {
            let connection = try await RelayConnection.connect(configuration)
            await connection.close()
            Issue.record("connected although the broker should have refused")
            return nil
        } catch {
            return error
        }
    }

    @Test("a certificate from a CA the broker does not trust: 'does not trust this certificate's CA', exit 77")
    func unknownCA() async throws {
        try await withBroker { broker in
            let otherCA = try DevelopmentPKI.createCA(commonName: "Other CA")
            let stranger = try broker.pki.add("stranger", .client(commonName: "stranger"), signedBy: otherCA)
            let error = try #require(await connectError(broker, stranger))
            #expect(error.category == .connection)
            #expect(error.message.contains("does not trust this certificate's CA (TLS alert unknown_ca)"), "\(error.message)")
            let cli = try await runCLI("relay-pub", broker.cliArguments(stranger) + ["--topic", "a.b", "--message", "x"])
            #expect(cli.status == 77)
            #expect(cli.stderr.joined().contains("does not trust this certificate's CA"), "\(cli.stderr)")
        }
    }

    @Test("a chain through a certificate that is not a CA: the words say a chain certificate may not act as a CA, not only 'unknown CA', and point at the broker's log")
    func chainThroughNonCA() async throws {
        try await withBroker { broker in
            // OpenSSL answers an invalid CA, an exceeded path length and a too
            // long chain with the same alert as an unknown CA (unknown_ca): the
            // client cannot tell them apart, so its words must cover both and
            // say where the broker names the cause.
            let notACA = try broker.pki.add("not-a-ca", .client(commonName: "not-a-ca"))
            let below = try broker.pki.addChainedClient("below-a-leaf", chain: [notACA, broker.pki.ca])
            let error = try #require(await connectError(broker, below))
            #expect(error.message.contains("TLS alert unknown_ca"), "\(error.message)")
            #expect(error.message.contains("may not act as a CA"), "\(error.message)")
            #expect(error.message.contains("the broker's log names which"), "\(error.message)")
            let named = await eventually(timeout: 10, every: 0.05) { broker.log.contains("invalid_ca") }
            #expect(named, "the broker's log does not name invalid_ca:\n\(broker.log.suffix(2000))")
        }
    }

    @Test("a revoked certificate (CRL): 'it was revoked', exit 77")
    func revoked() async throws {
        let pki = try TLSTestPKI()
        let mallory = try pki.add("mallory", .client(commonName: "mallory"))
        let crl = try pki.writeCRL(revoking: [mallory.issued.serialNumber])
        try await withBroker(crl: crl, pki: pki) { broker in
            let error = try #require(await connectError(broker, mallory))
            #expect(error.message.contains("it was revoked (TLS alert certificate_revoked)"), "\(error.message)")
            let cli = try await runCLI("relay-sub", broker.cliArguments(mallory) + ["--topic", "a.>", "--timeout", "5"])
            #expect(cli.status == 77)
            #expect(cli.stderr.joined().contains("revoked"), "\(cli.stderr)")
            // A certificate that is not revoked still works with the CRL in place.
            let connection = try await RelayConnection.connect(broker.clientConfiguration())
            await connection.close()
        }
    }

    @Test("an expired certificate: 'it has expired', exit 77")
    func expired() async throws {
        try await withBroker { broker in
            var request = CertificateRequest.client(commonName: "old")
            request.setValidity(days: 2, startingInDays: -10)
            let old = try broker.pki.add("old", request)
            let error = try #require(await connectError(broker, old))
            #expect(error.message.contains("expired"), "\(error.message)")
            let cli = try await runCLI("relay-pub", broker.cliArguments(old) + ["--topic", "a.b", "--message", "x"])
            #expect(cli.status == 77)
            #expect(cli.stderr.joined().contains("expired"), "\(cli.stderr)")
        }
    }

    @Test("the broker's certificate from a CA the client does not trust: the client says so, exit 77")
    func untrustedBroker() async throws {
        try await withBroker { broker in
            let otherCA = try TLSTestPKI()
            defer { otherCA.remove() }
            let error = try #require(await connectError(broker, nil, caPath: otherCA.ca.certificate))
            #expect(error.message.contains("does not trust the broker's certificate"), "\(error.message)")
            let cli = try await runCLI("relay-pub", broker.cliArguments(caPath: otherCA.ca.certificate) + ["--topic", "a.b", "--message", "x"])
            #expect(cli.status == 77)
        }
    }

    @Test("no client certificate (TLS alert certificate_required) is explained in plain words")
    func noCertificate() {
        // The library and CLIs always present a certificate, so this alert is
        // only reachable from other clients; check the words it maps to.
        let error = RelayClientError.tls(.alertReceived(code: 116, description: "certificate required"), server: "x:1")
        #expect(error.message.contains("requires a client certificate and none was sent"))
        #expect(error.exitCode == 77)
    }

    @Test("a certificate the policy grants nothing: identity_refused in plain words, category denied, exit 77")
    func identityRefused() async throws {
        let acl = """
        [[acl.rule]]
        name = "billing-only"
        match = { "subject.OU" = "billing" }
        publish = ["billing.>"]
        subscribe = ["billing.>"]
        """
        try await withBroker(acl: acl) { broker in
            let error = try #require(await connectError(broker, nil))
            #expect(error.category == .denied)
            #expect(error.message.contains("the broker's policy grants this certificate nothing"), "\(error.message)")
            let cli = try await runCLI("relay-pub", broker.cliArguments() + ["--topic", "billing.x", "--message", "x"])
            #expect(cli.status == 77)
            #expect(cli.stderr.joined().contains("grants this certificate nothing"), "\(cli.stderr)")
        }
    }

    @Test("nothing listening at --server: connection refused in plain words, exit 69")
    func connectionRefused() async throws {
        let pki = try TLSTestPKI()
        defer { pki.remove() }
        let arguments = ["--server", "127.0.0.1:1", "--cert", pki.alice.certificate, "--key", pki.alice.key,
                         "--ca", pki.ca.certificate, "--topic", "a.b", "--message", "x"]
        let cli = try await runCLI("relay-pub", arguments)
        #expect(cli.status == 69)
        #expect(cli.stderr.joined().contains("127.0.0.1:1"), "\(cli.stderr)")
    }
}
