import Foundation
import RelayTestSupport
import Testing

/// docs/testing.md listed this as a gap: the default `min_version = "1.3"`
/// was tested on the TLS context in process, never against relayd.
@Suite("relayd end to end: the default TLS version")
struct DefaultTLSVersionTests {
    func sClient(_ relayd: RelaydFixture, _ version: String) async throws -> ChildProcess {
        let pki = relayd.pki
        let child = try await ChildProcess("/usr/bin/openssl", [
            "s_client", "-connect", "127.0.0.1:\(relayd.port)", "-servername", "localhost", version,
            "-CAfile", pki.ca.certificate, "-cert", pki.alice.certificate, "-key", pki.alice.key,
        ])
        child.closeStdin()
        return child
    }

    @Test("with the default configuration relayd refuses a TLS 1.2 client holding a valid certificate, and serves the same client over TLS 1.3")
    func tls12RefusedByDefault() async throws {
        try await withRelayd { relayd in

            let old = try await sClient(relayd, "-tls1_2")
            let refused = await old.waitForExit(timeout: 30)
            #expect(refused != nil && refused != 0, "s_client -tls1_2 ended with \(String(describing: refused)):\n\(old.transcript)")
            #expect(old.transcript.contains("alert protocol version"), "\(old.transcript)")

            // The control: the same certificate over TLS 1.3 completes the handshake.
            let current = try await sClient(relayd, "-tls1_3")
            _ = await current.waitForExit(timeout: 30)
            #expect(current.transcript.contains("New, TLSv1.3"), "\(current.transcript)")
            #expect(current.transcript.contains("Verify return code: 0 (ok)"), "\(current.transcript)")
        }
    }
}
