import Foundation
import NIOCore
import RelayCore
import RelayTLS
import RelayTestSupport
import RelayWire
import Testing

/// docs/security.md, "Operator procedures": rotating the broker's server
/// certificate and the client CA on a running relayd, through a reload.
@Suite("relayd end to end: rotating the server certificate and the client CA", .serialized)
struct TLSRotationTests {
    @Test("a new server certificate and key over the configured files, then SIGHUP: new handshakes get it (s_client sees its PEM), the session opened before keeps working")
    func serverCertificateRotation() async throws {
        try await withRelayd { relayd in
            let pki = relayd.pki
            let before = try await FrameClient.connect(port: relayd.port, pki: pki)
            try await before.hello()
            #expect(try await before.subscribe(1, "rot.>", from: .latest).isAccepted)
            let oldLeaf = try #require(try await before.peerLeaf())
            #expect(oldLeaf.serialNumber == pki.server.issued.serialNumber)

            let renewed = try DevelopmentPKI.issue(
                .server(commonName: "localhost", sans: [.dns("localhost"), .ip("127.0.0.1")]), signedBy: pki.ca.issued)
            #expect(renewed.serialNumber != pki.server.issued.serialNumber)
            try renewed.write(certificateTo: pki.server.certificate, keyTo: pki.server.key)
            relayd.reload()
            let applied = await relayd.waitForAudit { $0.event == "reload" && $0["result"] == "applied" }
            #expect(applied?["trigger"] == "sighup", "the rotation was not applied:\n\(relayd.log)")

            // A new connection: our client reads the new leaf from its handshake…
            let after = try await FrameClient.connect(port: relayd.port, pki: pki)
            try await after.hello()
            let newLeaf = try #require(try await after.peerLeaf())
            let renewedIdentity = try Identity(pem: renewed.certificatePEM)
            #expect(newLeaf.serialNumber == renewed.serialNumber, "new handshakes still get serial \(newLeaf.serialNumber)")
            #expect(newLeaf.fingerprintSHA256 == renewedIdentity.fingerprintSHA256)
            // …and so does openssl s_client, byte for byte.
            let served = try await Self.servedCertificate(relayd)
            #expect(served == renewed.certificatePEM.trimmingCharacters(in: .whitespacesAndNewlines),
                    "s_client was served another certificate:\n\(served)")

            // The session from before the rotation keeps its TLS session and works both ways.
            #expect(try await before.peerLeaf()?.serialNumber == pki.server.issued.serialNumber)
            #expect(try await after.publish("rot.new", count: 1).count == 1)
            #expect(try await before.messages(1).first?.topic == "rot.new")
            #expect(try await before.publish("rot.old", count: 1, firstID: 2).count == 1)
            #expect(try await before.messages(1).first?.topic == "rot.old")
            await before.close()
            await after.close()
        }
    }

    /// The first certificate `openssl s_client` prints (the server's leaf), as PEM.
    static func servedCertificate(_ relayd: RelaydFixture) async throws -> String {
        let pki = relayd.pki
        let child = try await ChildProcess("/usr/bin/openssl", [
            "s_client", "-connect", "127.0.0.1:\(relayd.port)", "-servername", "localhost",
            "-CAfile", pki.ca.certificate, "-cert", pki.alice.certificate, "-key", pki.alice.key, "-verify_return_error",
        ])
        child.closeStdin()
        _ = await child.waitForExit(timeout: 30)
        let lines = child.stdoutLines
        let begin = try #require(lines.firstIndex(of: "-----BEGIN CERTIFICATE-----"), "s_client printed no certificate:\n\(child.transcript)")
        let end = try #require(lines[begin...].firstIndex(of: "-----END CERTIFICATE-----"))
        return lines[begin...end].joined(separator: "\n")
    }

    static let operatorACL = """
    [[acl.rule]]
    name = "allow-all"
    publish = [">"]
    subscribe = [">"]

    [[acl.rule]]
    name = "operators"
    match = { "subject.CN" = "ops" }
    publish = ["ops.>"]
    admin = ["read", "write"]
    """

    @Test("client CA rotation: SIGHUP with both CAs admits the new CA's client; relayctl reload without the old CA ends the old CA's live session (identity_refused) and refuses its next handshake (unknown_ca); the new CA's session goes on")
    func clientCARotation() async throws {
        let pki = try TLSTestPKI()
        let newCA = try TLSTestPKI.write(try DevelopmentPKI.createCA(commonName: "Relay Test CA 2"), name: "ca2", in: pki.directory)
        let carol = try pki.add("carol", .client(commonName: "carol"), signedBy: newCA.issued)
        let ops = try pki.add("ops", .client(commonName: "ops"), signedBy: newCA.issued)
        try await withRelayd(pki: pki, acl: Self.operatorACL, metrics: true) { relayd in
            let alice = try await FrameClient.connect(port: relayd.port, pki: pki)
            try await alice.hello()
            #expect(try await alice.subscribe(1, "ca.>", from: .latest).isAccepted)
            // Before: the new CA's client is not trusted yet.
            #expect(try await Self.alert(relayd, as: carol) == 48, "carol got in before her CA was configured")

            // 1. Add the new CA next to the old one.
            relayd.clientCAs = [pki.ca.certificate, newCA.certificate]
            try relayd.writeConfig(acl: Self.operatorACL)
            relayd.reload()
            let both = await relayd.waitForAudit { $0.event == "reload" && $0["result"] == "applied" }
            #expect(both != nil, "the reload adding the new CA was not applied:\n\(relayd.log)")
            let moved = try await FrameClient.connect(port: relayd.port, pki: pki, as: carol)
            try await moved.hello()
            #expect(try await moved.publish("ca.carol", count: 1).count == 1)
            #expect(try await alice.messages(1).first?.topic == "ca.carol", "alice's session did not survive adding a CA")

            // 2. Remove the old CA, reloading with relayctl as an operator from the new CA.
            relayd.clientCAs = [newCA.certificate]
            try relayd.writeConfig(acl: Self.operatorACL)
            let relayctl = try await ChildProcess(try ProductLocator.executable("relayctl"), [
                "reload", "--format", "json", "--server", "127.0.0.1:\(relayd.port)",
                "--cert", ops.certificate, "--key", ops.key, "--ca", pki.ca.certificate])
            relayctl.closeStdin()
            let status = await relayctl.waitForExit(timeout: 60)
            #expect(status == 0 && relayctl.stdoutLines.joined().contains("\"applied\""), "relayctl reload:\n\(relayctl.transcript)")

            // alice's live session, verified only by the removed CA, ends at once.
            let error = try? await alice.nextError()
            #expect(error?.errorCode == .identityRefused,
                    "alice's session, verified only by the removed CA, did not end with identity_refused: \(String(describing: error))")
            #expect(await alice.waitUntilClosed())
            let endedEvent = await relayd.waitForAudit { $0.event == "session_ended" && $0["serial"] == pki.alice.issued.serialNumber }
            let ended = try #require(endedEvent, "no session_ended for alice")
            #expect(ended["cause"] == "identity_refused" && ended["trigger"] == "reload", "\(ended.fields)")
            let reloadEvent = relayd.auditEvents().last { $0.event == "reload" && $0.line < ended.line }
            #expect(reloadEvent?["trigger"] == "admin" && reloadEvent?["result"] == "applied")
            // Her next connection is refused in the handshake: her CA is unknown now.
            #expect(try await Self.alert(relayd, as: pki.alice) == 48)
            // Counted, not audited again: the trail aggregates carol's earlier refusal from the same address.
            let refusals = try await relayd.waitForMetric("relay_handshake_failures_total{reason=\"unknown_ca\"}") { $0 >= 2 }
            #expect(refusals == 2, "unknown_ca refusals: \(String(describing: refusals)) (carol before her CA, alice after hers)")
            // carol, under the new CA, is untouched.
            #expect(try await moved.publish("ca.still", count: 1, firstID: 2).count == 1)
            await moved.close()
        }
    }

    /// The TLS alert that ended a connection as `client`, or nil when it was admitted.
    static func alert(_ relayd: RelaydFixture, as client: TLSTestPKI.Files) async throws -> Int? {
        switch try await FrameClient.helloOutcome(port: relayd.port, pki: relayd.pki, as: client) {
        case .welcome: return nil
        case .tlsError(.alertReceived(let code, _)): return code
        case let other:
            Issue.record("expected a TLS alert, got \(other)")
            return -1
        }
    }
}

extension FrameClient {
    /// The peer's leaf certificate from this connection's TLS handshake (the
    /// broker's, for a client), read by Relay's extractor; nil before the handshake.
    func peerLeaf() async throws -> Identity? {
        let channel = self.channel
        let der = try await channel.eventLoop.submit {
            try channel.pipeline.syncOperations.handler(type: TLSHandler.self).peerChain?.derCertificates.first
        }.get()
        return try der.map { try Identity(der: $0) }
    }
}
