import Foundation
import RelayClient
import RelayTestSupport
import RelayTLS
import Testing

/// Connections made with the same TLS settings share one client TLS context
/// (TLSClientContextCache), reused only while the files it was loaded from
/// are unchanged on disk. These tests pin the "unchanged" check: a renewed
/// certificate and key written over the same paths must be presented by the
/// next connection.
@Suite("Client TLS context reuse")
struct ClientContextRenewalTests {
    @Test("a certificate and key rewritten at the same paths are presented by the next connection")
    func rewrittenInPlace() async throws {
        let pki = try TLSTestPKI()
        let bob = try pki.add("bob", .client(commonName: "bob", organizationalUnits: ["payments"]))
        // The client's own paths: alice's files now, bob's written over them later.
        let certificate = pki.directory.file("client.pem"), key = pki.directory.file("client.key")
        try copy(pki.alice, toCertificate: certificate, key: key)
        try await withBroker(pki: pki) { relayd in
            let configuration = RelayClientConfiguration(host: "127.0.0.1", port: relayd.port, certificatePath: certificate,
                                                         privateKeyPath: key, caPath: pki.ca.certificate)
            let before = try #require(try await subject(configuration))
            #expect(before.contains("CN=alice"), "\(before)")
            // Reused while nothing changed: the same identity again.
            #expect(try await subject(configuration) == before)

            // Overwrite in place (same inode): a renewal tool rewriting the files.
            try copy(bob, toCertificate: certificate, key: key, inPlace: true)
            let after = try #require(try await subject(configuration))
            #expect(after.contains("CN=bob"), "the next connection presents the rewritten certificate: \(after)")
        }
    }

    /// Connects, returns the certificate subject WELCOME reports, closes.
    private func subject(_ configuration: RelayClientConfiguration) async throws -> String? {
        let connection = try await RelayConnection.connect(configuration)
        let session = await connection.session
        await connection.close()
        return session?.subject
    }

    /// Writes `files`' certificate and key to the given paths; `inPlace`
    /// truncates and rewrites the existing files instead of replacing them.
    private func copy(_ files: TLSTestPKI.Files, toCertificate certificate: String, key: String,
                      inPlace: Bool = false) throws {
        for (source, target) in [(files.certificate, certificate), (files.key, key)] {
            let data = try Data(contentsOf: URL(fileURLWithPath: source))
            if inPlace, let handle = FileHandle(forWritingAtPath: target) {
                try handle.truncate(atOffset: 0)
                try handle.write(contentsOf: data)
                try handle.close()
            } else {
                try data.write(to: URL(fileURLWithPath: target))
            }
        }
    }
}
