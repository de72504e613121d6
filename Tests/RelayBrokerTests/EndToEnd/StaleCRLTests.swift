import Foundation
import NIOCore
import RelayCore
import RelayTLS
import RelayTestSupport
import RelayWire
import Testing

/// docs/security.md, "Keep CRLs fresh": with a CRL configured, OpenSSL
/// refuses every chain whose CRL is past its next-update time, so a stale
/// CRL locks out all clients at the next handshake and disconnects all
/// sessions at the next reload. The CRL is made by the openssl CLI with a
/// nextUpdate a few seconds ahead, and lapses while relayd runs.
@Suite("relayd end to end: a stale CRL", .serialized)
struct StaleCRLTests {
    @Test("a CRL that passes its nextUpdate while relayd runs: the next handshake is refused (crl_not_current, named CA), live sessions stay until the next reload ends them")
    func lapsedCRLLocksClientsOut() async throws {
        let pki = try TLSTestPKI()
        let bob = try pki.add("bob", .client(commonName: "bob"))
        let crl = pki.directory.file("crl.pem")
        try await OpenSSLCLI.writeCRL(signedBy: pki.ca, lastUpdate: Date().addingTimeInterval(-60),
                                      nextUpdate: Date().addingTimeInterval(30 * 86_400), to: crl)
        try await withRelayd(pki: pki, crl: crl, metrics: true) { relayd in
            let alice = try await FrameClient.connect(port: relayd.port, pki: pki)
            try await alice.hello()
            #expect(try await alice.subscribe(1, "s.>", from: .latest).isAccepted)

            // The same CRL file, now lapsing 8 s from here (whole seconds, as the
            // CRL holds them; 8 s leave room for openssl and the reload on a
            // loaded machine), then a reload while it is still current:
            // applied, alice's session is kept.
            let nextUpdate = Date(timeIntervalSince1970: (Date().timeIntervalSince1970 + 8).rounded(.up))
            try await OpenSSLCLI.writeCRL(signedBy: pki.ca, lastUpdate: Date().addingTimeInterval(-60),
                                          nextUpdate: nextUpdate, to: crl)
            relayd.reload()
            let applied = try await relayd.waitForMetric("relay_reloads_total") { $0 == 1 }
            #expect(applied == 1, "the reload with the soon-stale CRL was not applied")
            try #require(Date() < nextUpdate, "the machine was too slow: the CRL lapsed before the reload was applied")
            #expect(try await alice.publish("s.before", count: 1).count == 1)

            // relayd's own line at the lapse is the event that nextUpdate has passed.
            let lapsed = await eventually(timeout: 40, every: 0.05) { relayd.log.contains("past its next update") }
            try #require(lapsed, "relayd logged no lapse of the CRL (nextUpdate \(nextUpdate)):\n\(relayd.log)")
            #expect(Date() >= nextUpdate)

            // 1. A new handshake (bob, never revoked) is refused in the TLS handshake.
            let outcome = try await FrameClient.helloOutcome(port: relayd.port, pki: pki, as: bob)
            guard case .tlsError(let tlsError) = outcome else {
                Issue.record("a handshake under a stale CRL was not refused by TLS: \(outcome)")
                return
            }
            print("stale CRL: the refused client saw \(tlsError)")
            let failures = try await relayd.waitForMetric("relay_handshake_failures_total{reason=\"crl_not_current\"}") { $0 >= 1 }
            #expect(failures == 1, "relay_handshake_failures_total{reason=\"crl_not_current\"} is \(String(describing: failures))")
            let refusedEvent = await relayd.waitForAudit { $0.event == "connection_refused" && $0["peer"] != nil }
            let refused = try #require(refusedEvent, "no connection_refused line for the handshake")
            #expect(refused["cause"] == "crl_not_current", "\(refused.fields)")
            let reason = refused["reason"] ?? ""
            #expect(reason.contains("CN=Relay Test CA") && reason.contains("next update"),
                    "the refusal does not name the stale CRL's CA and its next update: \(reason)")
            let logged = relayd.log.split(separator: "\n").contains { $0.contains("crl_not_current") && $0.contains("CN=Relay Test CA") }
            #expect(logged, "no log line names crl_not_current and the CA:\n\(relayd.log)")

            // 2. The live session is not re-checked until a reload: it still works.
            #expect(try await alice.publish("s.stale", count: 1, firstID: 2).count == 1)
            #expect(try await alice.messages(2).map(\.topic) == ["s.before", "s.stale"])

            // 3. The next reload (no change) re-verifies alice against the stale CRL and ends her session.
            relayd.reload()
            let error = try? await alice.nextError()
            #expect(error?.errorCode == .identityRefused,
                    "alice's session did not end with identity_refused at a reload under the stale CRL: \(String(describing: error))")
            #expect(await alice.waitUntilClosed())
            let endedEvent = await relayd.waitForAudit { $0.event == "session_ended" && $0["serial"] == pki.alice.issued.serialNumber }
            let ended = try #require(endedEvent)
            #expect(ended["cause"] == "identity_refused" && ended["trigger"] == "reload", "\(ended.fields)")
            #expect(ended["reason"]?.contains("next update") == true, "\(ended.fields)")
            // relayd warns that the loaded CRL is past its next update, naming its issuer.
            let warned = relayd.log.split(separator: "\n").contains { $0.contains("CN=Relay Test CA") && $0.contains("past") }
            #expect(warned, "no warning that the CRL is past its next update:\n\(relayd.log)")
        }
    }
}
