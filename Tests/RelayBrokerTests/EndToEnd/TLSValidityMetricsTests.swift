import Foundation
import RelayTestSupport
import Testing

/// A stale CRL locks out every client it covers, and nothing warned before
/// it lapsed (docs/security.md, "Keep CRLs fresh"). relayd now exports the
/// earliest CRL nextUpdate and the server certificate's notAfter as gauges,
/// set at start and at every applied reload, and logs a warning when either
/// is within 7 days. The expected values are read from the PEM files by the
/// openssl CLI, not by Relay's own code.
@Suite("relayd end to end: TLS material deadlines in /metrics", .serialized)
struct TLSValidityMetricsTests {
    @Test("a CRL two days from its next update: the gauge is its nextUpdate, a warning names its issuer; a reload without a CRL removes the series")
    func crlNextUpdateGauge() async throws {
        let pki = try TLSTestPKI()
        defer { pki.remove() }
        let crl = try pki.writeCRL(revoking: [], days: 2)
        try await withRelayd(pki: pki, crl: crl, metrics: true) { relayd in
            let expected = try await OpenSSLCLI.date(["crl", "-noout", "-nextupdate", "-in", crl], field: "nextUpdate")
            let gauge = try #require(try await relayd.metric("relay_tls_crl_next_update_seconds"),
                                     "no relay_tls_crl_next_update_seconds with a CRL loaded")
            #expect(gauge == expected.timeIntervalSince1970, "gauge \(gauge), the CRL's nextUpdate \(expected.timeIntervalSince1970)")
            // One warning line naming the CRL's issuer (logged at start, before "listening").
            let warning = relayd.log.split(separator: "\n").first { $0.contains("reaches its next update soon") }
            let warned = warning?.contains("CN=Relay Test CA") == true
            #expect(warned, "no warning naming the CRL's issuer in the log:\n\(relayd.log)")

            let notAfter = try await OpenSSLCLI.date(["x509", "-noout", "-enddate", "-in", pki.server.certificate], field: "notAfter")
            #expect(try await relayd.metric("relay_tls_certificate_not_after_seconds") == notAfter.timeIntervalSince1970)

            try relayd.writeConfig()  // the same config without `crl`
            relayd.reload()
            let reloaded = await eventually(timeout: 15, every: 0.05) { (try? await relayd.metric("relay_reloads_total")) == 1 }
            #expect(reloaded, "the reload was not applied:\n\(relayd.log)")
            #expect(try await relayd.metric("relay_tls_crl_next_update_seconds") == nil,
                    "the CRL series is still exported after a reload that loads no CRL")
        }
    }

    @Test("a CRL that lapses while relayd runs: 'soon' at start, then an error line at its nextUpdate, with no reload")
    func crlLapsesWhileRunning() async throws {
        let pki = try TLSTestPKI()
        defer { pki.remove() }
        let crl = try await OpenSSLCLI.writeCRL(signedBy: pki.ca, lastUpdate: Date() - 60, nextUpdate: Date() + 12,
                                                to: pki.directory.file("lapsing-crl.pem"))
        let nextUpdate = try await OpenSSLCLI.date(["crl", "-noout", "-nextupdate", "-in", crl], field: "nextUpdate")
        try await withRelayd(pki: pki, crl: crl) { relayd in
            let lapsedLine = { relayd.log.split(separator: "\n").first { $0.contains("past its next update") } }
            #expect(Date() < nextUpdate, "relayd took until the CRL's nextUpdate to start; the test cannot tell the timer's line from the start's")
            // Logged before "listening"; relayd's stderr may lag behind stdout when loaded: wait for it.
            let announced = await eventually(timeout: 10, every: 0.05) { relayd.log.contains("reaches its next update soon") }
            #expect(announced, "no 'soon' warning at start:\n\(relayd.log)")
            #expect(lapsedLine() == nil, "'past its next update' before the CRL lapsed:\n\(relayd.log)")
            // The line is the event (polled); its own timestamp says when relayd logged it.
            let lapsed = await eventually(timeout: 40, every: 0.05) { lapsedLine() != nil }
            #expect(lapsed, "no line when the CRL lapsed (nextUpdate \(nextUpdate)):\n\(relayd.log)")
            let line = try #require(lapsedLine().map(String.init), "no 'past its next update' line")
            #expect(line.contains("level=error") && line.contains("issuer=\"CN=Relay Test CA\""), "\(line)")
            let loggedAt = try #require(RelaydLogLine.timestamp(line), "no ts= in \(line)")
            #expect(loggedAt >= nextUpdate, "logged at \(loggedAt), before nextUpdate \(nextUpdate)")
            #expect(loggedAt.timeIntervalSince(nextUpdate) < 5, "logged at \(loggedAt), not at nextUpdate \(nextUpdate)")
        }
    }

    @Test("without a CRL there is no CRL series (an alert on it must not fire), and a CRL a year out logs no warning")
    func noCRLNoSeries() async throws {
        try await withRelayd(metrics: true) { relayd in
            let crlGauge = try await relayd.metric("relay_tls_crl_next_update_seconds")
            #expect(crlGauge == nil, "a CRL series without a CRL: \(String(describing: crlGauge))")
            let notAfter = try await relayd.metric("relay_tls_certificate_not_after_seconds")
            #expect(notAfter != nil, "no relay_tls_certificate_not_after_seconds")
            // The NATS client certificate's series belongs to the jetstream backend alone.
            let natsGauge = try await relayd.metric("relay_nats_client_certificate_not_after_seconds")
            #expect(natsGauge == nil, "a NATS certificate series on the lmdb backend: \(String(describing: natsGauge))")
        }
        let pki = try TLSTestPKI()
        defer { pki.remove() }
        try await withRelayd(pki: pki, crl: try pki.writeCRL(revoking: [], days: 365), metrics: true) { relayd in
            let gauge = try #require(try await relayd.metric("relay_tls_crl_next_update_seconds"))
            #expect(gauge > Date().timeIntervalSince1970 + 300 * 86_400)
            #expect(!relayd.log.contains("next update"), "a warning for a CRL a year out:\n\(relayd.log)")
        }
    }
}
