import Foundation
import RelayClient
import RelayTestSupport
import RelayTLS
import Testing

/// The broker's certificate is matched on its subjectAltNames only, never
/// its CN (RFC 9525; Relay issue 14, item 14).
@Suite("server name verification by SAN only", .serialized)
struct ServerNameVerificationTests {
    /// Runs `body` with a relayd whose server certificate is `CN=localhost`
    /// with `sans` (stopped when `body` ends: see `withRelayd`).
    private func withBroker(sans: [SubjectAlternativeName], _ body: (RelaydFixture) async throws -> Void) async throws {
        try await withRelayd(start: false) { broker in
            let server = try DevelopmentPKI.issue(.server(commonName: "localhost", sans: sans), signedBy: broker.pki.ca.issued)
            try server.write(certificateTo: broker.pki.server.certificate, keyTo: broker.pki.server.key)
            try await broker.start()
            try await body(broker)
        }
    }

    private func configuration(_ broker: RelaydFixture, serverName: String) -> RelayClientConfiguration {
        RelayClientConfiguration(host: "127.0.0.1", port: broker.port, certificatePath: broker.pki.alice.certificate,
                                 privateKeyPath: broker.pki.alice.key, caPath: broker.pki.ca.certificate, serverName: serverName)
    }

    @Test("a server certificate with CN=localhost and no SAN is refused by the client, which says the name is not in a SAN")
    func commonNameWithoutSANIsRefused() async throws {
        try await withBroker(sans: []) { broker in
            let libraryError = await Self.connectionError(configuration(broker, serverName: "localhost"))
            let error = try #require(libraryError as? RelayClientError, "\(String(describing: libraryError))")
            #expect(error.category == .connection)
            #expect(error.message.contains("hostname mismatch"), "\(error.message)")
            #expect(error.message.contains("subjectAltName"), "\(error.message)")
            // The TLS layer itself: X509 error 62 (hostname mismatch) on the client.
            let tlsError = await Self.frameClientError(broker)
            guard case .certificateRejected(let code, let reason)? = tlsError else {
                Issue.record("expected the client to reject the certificate, got \(String(describing: tlsError))"); return
            }
            #expect(code == 62 && reason.hasPrefix("hostname mismatch"), "\(reason)")
        }
    }

    private static func connectionError(_ configuration: RelayClientConfiguration) async -> (any Error)? {
        do {
            let connection = try await RelayConnection.connect(configuration)
            await connection.close()
            Issue.record("the client accepted a server certificate that names localhost only in its CN")
            return nil
        } catch {
            return error
        }
    }

    private static func frameClientError(_ broker: RelaydFixture) async -> TLSError? {
        do {
            let client = try await FrameClient.connect(port: broker.port, pki: broker.pki)
            defer { Task { await client.close() } }
            switch await client.helloOutcome() {
            case .tlsError(let error): return error
            case .welcome: Issue.record("FrameClient accepted a CN-only server certificate")
            case .other(let what): Issue.record("expected a certificate rejection, got \(what)")
            }
        } catch {
            Issue.record("cannot connect: \(error)")
        }
        return nil
    }

    @Test("the same name in a DNS SAN is accepted (positive control)")
    func dnsSANIsAccepted() async throws {
        try await withBroker(sans: [.dns("localhost")]) { broker in
            let connection = try await RelayConnection.connect(configuration(broker, serverName: "localhost"))
            await connection.close()
        }
    }
}
