import Foundation
import RelayTestSupport
import Testing

/// `relayctl status` says when the TLS material lapses (a stale CRL locks
/// every client out): the values are compared with what the openssl CLI
/// reads from the same files.
@Suite("relayctl status: TLS deadlines")
struct AdminStatusDeadlineTests {
    static let acl = """
    [acl]
    principal = "{subject.CN}"

    [[acl.rule]]
    name = "ops"
    match = { "subject.CN" = ["alice"] }
    admin = ["read"]
    """

    @Test("status names the server certificate's notAfter and the loaded CRL's next update and issuer; without a CRL it says so")
    func deadlines() async throws {
        let pki = try TLSTestPKI()
        defer { pki.remove() }
        let crl = try pki.writeCRL(revoking: [], days: 5)
        try await withRelayd(pki: pki, acl: Self.acl, crl: crl) { relayd in
            let ops = relayd.cliArguments()
            let status = try await adminJSON(["status"] + ops)
            let notAfter = try await OpenSSLCLI.date(["x509", "-noout", "-enddate", "-in", pki.server.certificate], field: "notAfter")
            let nextUpdate = try await OpenSSLCLI.date(["crl", "-noout", "-nextupdate", "-in", crl], field: "nextUpdate")
            #expect(Self.date(status["tls_certificate_not_after"]) == notAfter, "\(status)")
            #expect(Self.date(status["crl_next_update"]) == nextUpdate, "\(status)")
            #expect(status["crl_issuer"] as? String == "CN=Relay Test CA", "\(status)")
            let table = try await runCLI("relayctl", ["status"] + ops)
            let crlRow = table.stdout.first { $0.hasPrefix("CRL next update") }
            #expect(crlRow?.contains("CN=Relay Test CA") == true, "\(table.stdout)")

            try relayd.writeConfig(acl: Self.acl)  // no CRL
            relayd.reload()
            // Only a status that was read and lacks the key counts (a failed
            // relayctl call is not "no CRL").
            let reloaded = await eventually(timeout: 15, every: 0.05) {
                guard let status = try? await adminJSON(["status"] + ops) else { return false }
                return status["crl_next_update"] == nil && status["tls_certificate_not_after"] != nil
            }
            #expect(reloaded, "crl_next_update still set after a reload without a CRL:\n\(relayd.log.suffix(1500))")
            let after = try await runCLI("relayctl", ["status"] + ops)
            let afterRow = after.stdout.first { $0.hasPrefix("CRL next update") }
            #expect(afterRow?.contains("no CRL with a next update") == true, "\(after.stdout)")
        }
    }

    static func date(_ value: Any?) -> Date? {
        guard let text = value as? String else { return nil }
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.date(from: text)
    }
}
