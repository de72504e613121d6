import Foundation
import NIOCore
import RelayBroker
import RelayCore
import RelayTLS
import RelayTestSupport
import RelayWire
import Testing

/// Hot reload, live revocation, certificate expiry and the audit trail,
/// against the real relayd over real TLS (Relay issue 6). Every test ends by
/// checking the audit trail's hash chain (AuditVerifier and relayctl).
@Suite("relayd end to end: reload, revocation, expiry, audit", .serialized)
struct ReloadTests {
    /// Starts `relayd` and connects two clients past HELLO: alice (the PKI's
    /// default client certificate) and `bob`.
    static func startWithAliceAndBob(_ relayd: RelaydFixture, bob: TLSTestPKI.Files) async throws -> (FrameClient, FrameClient) {
        try await relayd.start()
        let alice = try await FrameClient.connect(port: relayd.port, pki: relayd.pki)
        try await alice.hello()
        let other = try await FrameClient.connect(port: relayd.port, pki: relayd.pki, as: bob)
        try await other.hello()
        return (alice, other)
    }

    /// Connects alice and sends HELLO; the error that ended the connection
    /// (nil if WELCOME came). Under TLS 1.3 the client's side of the handshake
    /// completes before relayd checks its certificate, so the HELLO write can
    /// fail on the channel relayd's alert already closed: then the alert is
    /// the error the connection closed with, which `next()` returns.
    static func refusal(port: Int, pki: TLSTestPKI) async -> (any Error)? {
        let client: FrameClient
        do { client = try await FrameClient.connect(port: port, pki: pki) } catch { return error }
        defer { Task { await client.close() } }
        do {
            try await client.hello()
            return nil
        } catch let error as ChannelError where error == .ioOnClosedChannel {
            do {
                while try await client.next(timeout: .seconds(5)) != nil {}
                return error
            } catch {
                return error
            }
        } catch {
            return error
        }
    }

    @Test("revoking a connected client's certificate then SIGHUP cuts that client at once; another client is untouched")
    func revocationOnSighup() async throws {
        let pki = try TLSTestPKI()
        let bob = try pki.add("bob", .client(commonName: "bob"))
        try await withRelayd(pki: pki, start: false) { relayd in
            let (alice, other) = try await Self.startWithAliceAndBob(relayd, bob: bob)
            #expect(try await alice.subscribe(1, "t.>", from: .latest).isAccepted)
            #expect(try await other.subscribe(1, "t.>", from: .latest).isAccepted)
            _ = try await other.publish("t.before", count: 1)
            #expect(try await alice.messages(1).first?.topic == "t.before")
            #expect(try await other.messages(1).first?.topic == "t.before")

            try relayd.writeConfig(crl: try pki.writeCRL(revoking: [pki.alice.issued.serialNumber]))
            let signalled = Date()
            relayd.reload()
            let error = try await alice.nextError()
            let received = Date()
            #expect(error?.errorCode == .certificateRevoked)
            #expect(error?.subscriptionID == 0)
            #expect(await alice.waitUntilClosed())

            // The other client keeps publishing and receiving.
            #expect(try await other.publish("t.after", count: 1, firstID: 2).count == 1)
            #expect(try await other.messages(1).first?.topic == "t.after")
            // The revoked certificate cannot come back: relayd ends the handshake with
            // the certificate_revoked alert (44), not a timeout or some other error.
            let refusal = await Self.refusal(port: relayd.port, pki: pki)
            #expect(refusal as? TLSError == .alertReceived(code: 44, description: "certificate revoked"),
                    "the revoked certificate's reconnect ended with \(String(describing: refusal)), not the certificate_revoked alert")

            let serial = pki.alice.issued.serialNumber
            let endedEvent = await relayd.waitForAudit { $0.event == "session_ended" && $0["serial"] == serial }
            let ended = try #require(endedEvent)
            #expect(ended["cause"] == "certificate_revoked")
            #expect(ended["trigger"] == "reload")
            #expect(ended["fingerprint"] == (try Identity(pem: pki.alice.issued.certificatePEM)).fingerprintSHA256.hex)
            let lastReload = relayd.auditEvents().last { $0.event == "reload" && $0.line < ended.line }
            let reload = try #require(lastReload)
            #expect(reload["result"] == "applied")
            #expect(reload["restart_required"] == "")  // [tls] and [acl] apply live
            let appliedAt = try #require(reload.timestamp)
            let endedAt = try #require(ended.timestamp)
            print("revocation: reload applied → session ended in relayd: \(seconds(from: appliedAt, to: endedAt)); "
                  + "reload applied → client got ERR: \(seconds(from: appliedAt, to: received)); "
                  + "SIGHUP sent → client got ERR: \(seconds(from: signalled, to: received))")
            // The disconnect is immediate (a hop to the session's event loop), not
            // deferred to the client's next frame or the next file poll.
            // security.md: 1–2 ms in relayd, under 15 ms from SIGHUP to the ERR;
            // asserted with a margin for a loaded machine. relayd's own timing (the
            // audit trail's timestamps) is the precise check. The client's side
            // also counts this test process's scheduling: in one clean-clone CI run
            // with the whole suite in parallel, relayd ended the session 11 ms after
            // the reload and the test read the ERR 1.12 s later, so its bound is
            // wider (still far from "never", which a deferred cut would be).
            #expect(endedAt.timeIntervalSince(appliedAt) < 1.0)
            #expect(received.timeIntervalSince(signalled) < 5.0,
                    "SIGHUP → the revoked client's ERR took \(seconds(from: signalled, to: received))")

            let accepted = relayd.auditEvents().filter { $0.event == "connection_accepted" }
            let aliceAccepted = accepted.contains { $0["serial"] == serial && $0["subject"]?.contains("CN=alice") == true && $0["fingerprint"]?.count == 64 }
            #expect(aliceAccepted)
            let bobAccepted = accepted.contains { $0["serial"] == bob.issued.serialNumber && $0["principal"] == "CN=bob" }
            #expect(bobAccepted)
            let refused = await relayd.waitForAudit { $0.event == "connection_refused" && $0["cause"] == "certificate_revoked" }
            #expect(refused?["reason"]?.contains("revoked") == true)
            await other.close()
            try await relayd.verifyAuditChain()
        }
    }

    @Test("a client whose TLS handshake passed before a revoking reload but that sends HELLO after it is refused at HELLO")
    func revocationBetweenHandshakeAndHello() async throws {
        try await withRelayd(start: false) { relayd in
            relayd.helloTimeout = "60s"  // the HELLO is sent only after the reload, however slow the machine
            try relayd.writeConfig()
            try await relayd.start()
            let late = try await FrameClient.connect(port: relayd.port, pki: relayd.pki)
            #expect(try await late.waitForHandshake())  // verified against the old CRL set

            try relayd.writeConfig(crl: try relayd.pki.writeCRL(revoking: [relayd.pki.alice.issued.serialNumber]))
            relayd.reload()
            let applied = await relayd.waitForAudit { $0.event == "reload" && $0["result"] == "applied" }
            #expect(applied != nil)
            do {
                try await late.hello()
                Issue.record("a client revoked between its handshake and its HELLO was admitted")
            } catch FrameClientError.refused(let error) {
                #expect(error.errorCode == .certificateRevoked)
            }
            let refusal = await relayd.waitForAudit { $0.event == "connection_refused" }
            let refused = try #require(refusal)
            #expect(refused["cause"] == "certificate_revoked")
            #expect(refused["serial"] == relayd.pki.alice.issued.serialNumber)
            #expect(refused["subject"]?.contains("CN=alice") == true)
            #expect(refused["fingerprint"] == (try Identity(pem: relayd.pki.alice.issued.certificatePEM)).fingerprintSHA256.hex)
            #expect(refused["reason"]?.contains("revoked") == true)
            await late.close()
            try await relayd.verifyAuditChain()
        }
    }

    static let wideACL = """
    [[acl.rule]]
    name = "wide"
    publish = ["a.>", "b.>"]
    subscribe = ["a.>", "b.>"]
    """

    static let narrowACL = """
    [[acl.rule]]
    name = "narrow"
    match = { "subject.CN" = "alice" }
    publish = ["a.>"]
    subscribe = ["a.>"]
    deny_publish = ["b.>"]
    deny_subscribe = ["b.>"]
    """

    @Test("narrowing the ACL then SIGHUP ends the refused subscription with its id, keeps the allowed one, and refuses the next PUB")
    func narrowedACL() async throws {
        let pki = try TLSTestPKI()
        let bob = try pki.add("bob", .client(commonName: "bob"))
        try await withRelayd(pki: pki, acl: Self.wideACL, start: false) { relayd in
            let (alice, other) = try await Self.startWithAliceAndBob(relayd, bob: bob)
            #expect(try await alice.subscribe(1, "a.>", from: .latest).isAccepted)
            #expect(try await alice.subscribe(2, "b.>", from: .latest).isAccepted)
            _ = try await alice.publish("a.one", count: 1)
            _ = try await alice.publish("b.one", count: 1, firstID: 2)
            let before = try await alice.messages(2)
            #expect(Set(before.map(\.subscriptionID)) == [1, 2])

            try relayd.writeConfig(acl: Self.narrowACL)
            relayd.reload()
            // The subscription the new rules refuse ends with ERR carrying its id
            // (Protocol/relay-v1.md §4.13: subscription_revoked); the connection stays.
            let ended = try #require(try await alice.nextError())
            #expect(ended.subscriptionID == 2)
            #expect(ended.errorCode == .subscriptionRevoked)
            // bob no longer matches any rule: his session ends.
            #expect(try await other.nextError()?.errorCode == .identityRefused)
            #expect(await other.waitUntilClosed())

            // Still allowed: publish and receive on a.>.
            guard case .publishAck = try await alice.publishReply(10, "a.two") else {
                Issue.record("PUB a.two was not acknowledged after the reload"); return
            }
            let live = try await alice.messages(1)
            #expect(live.map(\.subscriptionID) == [1])
            #expect(live.map(\.topic) == ["a.two"])
            // No longer allowed: the next PUB gets PUBERR not_authorized, a new SUB is refused.
            guard case .publishError(let refusedPub) = try await alice.publishReply(11, "b.two") else {
                Issue.record("PUB b.two was not refused after the reload"); return
            }
            #expect(refusedPub.errorCode == .notAuthorized)
            let refusedSub = try await alice.subscribe(3, "b.>", from: .latest)
            #expect(refusedSub.errorCode == .notAuthorized)
            #expect(try await alice.expectSilence())  // nothing more for subscription 2
            // bob cannot reconnect: the policy refuses him at HELLO.
            let connectAgain: () async throws -> sending Void = {
                let again = try await FrameClient.connect(port: relayd.port, pki: pki, as: bob)
                defer { Task { await again.close() } }
                try await again.hello()
            }
            await #expect(throws: FrameClientError.self, performing: connectAgain)

            let aliceSerial = pki.alice.issued.serialNumber
            let subEndedEvent = await relayd.waitForAudit { $0.event == "subscription_ended" }
            let subEnded = try #require(subEndedEvent)
            #expect(subEnded["subscription"] == "2" && subEnded["filter"] == "b.>" && subEnded["rule"] == "narrow")
            #expect(subEnded["serial"] == aliceSerial && subEnded["trigger"] == "reload")
            let pubDenied = await relayd.waitForAudit { $0.event == "publish_denied" }
            #expect(pubDenied?["topic"] == "b.two" && pubDenied?["rule"] == "narrow" && pubDenied?["serial"] == aliceSerial)
            let subDenied = await relayd.waitForAudit { $0.event == "subscribe_denied" }
            #expect(subDenied?["filter"] == "b.>" && subDenied?["rule"] == "narrow")
            let bobEnded = await relayd.waitForAudit { $0.event == "session_ended" && $0["serial"] == bob.issued.serialNumber }
            #expect(bobEnded?["cause"] == "identity_refused" && bobEnded?["trigger"] == "reload")
            let bobRefused = await relayd.waitForAudit { $0.event == "connection_refused" && $0["subject"] == "CN=bob" }
            #expect(bobRefused?["serial"] == bob.issued.serialNumber)
            #expect(bobRefused?["fingerprint"] == (try Identity(pem: bob.issued.certificatePEM)).fingerprintSHA256.hex)
            #expect(bobRefused?["reason"]?.isEmpty == false)
            await alice.close()
            try await relayd.verifyAuditChain()
        }
    }

    @Test("a bad config on reload is refused: the broker keeps the old one, old and new connections work, the failure is counted and audited")
    func badConfigIsRefused() async throws {
        try await withRelayd(metrics: true) { relayd in
            let client = try await FrameClient.connect(port: relayd.port, pki: relayd.pki)
            try await client.hello()
            #expect(try await client.subscribe(1, "x.>", from: .latest).isAccepted)
            let good = try String(contentsOfFile: relayd.configPath, encoding: .utf8)

            // 1. A TOML syntax error.
            try (good + "\nthis is = = not toml\n").write(toFile: relayd.configPath, atomically: true, encoding: .utf8)
            relayd.reload()
            let failures = try await relayd.waitForMetric("relay_reload_failures_total") { $0 >= 1 }
            #expect((failures ?? 0) >= 1)
            let syntax = await relayd.waitForAudit { $0.event == "reload" && $0["result"] == "refused" }
            #expect(syntax?["trigger"] == "sighup" || syntax?["trigger"] == "file_change")
            #expect(syntax?["reason"]?.contains(relayd.configPath) == true)
            try await expectBrokerWorks(relayd, client, id: 1)

            // 2. An unknown key.
            let unknown = good.replacingOccurrences(of: "[log]\n", with: "[log]\nverbosity = \"loud\"\n")
            #expect(unknown != good)
            try unknown.write(toFile: relayd.configPath, atomically: true, encoding: .utf8)
            relayd.reload()
            let unknownKey = await relayd.waitForAudit {
                $0.event == "reload" && $0["result"] == "refused" && $0["reason"]?.contains("unknown key") == true
            }
            #expect(unknownKey?["reason"]?.contains("verbosity") == true)
            let failureCount = try await relayd.waitForMetric("relay_reload_failures_total") { $0 >= 2 }
            #expect((failureCount ?? 0) >= 2)
            try await expectBrokerWorks(relayd, client, id: 10)
            // Nothing was applied.
            #expect((try await relayd.metric("relay_reloads_total") ?? 0) == 0)
            let appliedAny = relayd.auditEvents().contains { $0.event == "reload" && $0["result"] == "applied" }
            #expect(!appliedAny)
            #expect(relayd.process?.isRunning == true)

            // A valid config that changes a start-time setting is applied, and the
            // audit line says which section waits for a restart.
            try relayd.writeConfig(extra: "[limits]\nmax_connections = 50")
            relayd.reload()
            let applied = await relayd.waitForAudit { $0.event == "reload" && $0["result"] == "applied" }
            #expect(applied?["restart_required"] == "limits")
            try await expectBrokerWorks(relayd, client, id: 20)
            await client.close()
            try await relayd.verifyAuditChain()
        }
    }

    /// The existing connection publishes and receives; a new one connects and publishes.
    private func expectBrokerWorks(_ relayd: RelaydFixture, _ client: FrameClient, id: UInt64) async throws {
        #expect(try await client.publish("x.still", count: 1, firstID: id).count == 1)
        #expect(try await client.messages(1).first?.topic == "x.still")
        let fresh = try await FrameClient.connect(port: relayd.port, pki: relayd.pki)
        try await fresh.hello()
        #expect(try await fresh.publish("x.fresh", count: 1).count == 1)
        #expect(try await client.messages(1).first?.topic == "x.fresh")
        await fresh.close()
    }

    @Test("a client certificate that expires during the session closes it with certificate_expired just after notAfter")
    func certificateExpiresDuringSession() async throws {
        try await withRelayd { relayd in
            // Issued after relayd started so the whole lifetime is left for the session.
            let carol = try relayd.pki.addShortLived("carol", validFor: 8)
            let notAfter = try Identity(pem: carol.issued.certificatePEM).notAfter
            let client = try await FrameClient.connect(port: relayd.port, pki: relayd.pki, as: carol)
            try await client.hello()
            #expect(try await client.subscribe(1, "e.>", from: .latest).isAccepted)
            _ = try await client.publish("e.alive", count: 1)
            #expect(try await client.messages(1).first?.topic == "e.alive")
            #expect(Date() < notAfter, "the session should have started before the certificate expired")

            let error = try #require(try await client.nextError(timeout: .seconds(60)))
            let received = Date()
            #expect(error.errorCode == .certificateExpired)
            #expect(error.subscriptionID == 0)
            #expect(error.message.contains("expired"))
            #expect(received >= notAfter, "the session was closed before its certificate expired")
            // security.md: 3 ms after notAfter; asserted with a margin for a loaded machine.
            #expect(received.timeIntervalSince(notAfter) < 1.5, "notAfter → ERR took \(seconds(from: notAfter, to: received))")
            #expect(await client.waitUntilClosed())
            print("expiry: notAfter → client got ERR certificate_expired: \(seconds(from: notAfter, to: received))")

            let endedEvent = await relayd.waitForAudit { $0.event == "session_ended" && $0["serial"] == carol.issued.serialNumber }
            let ended = try #require(endedEvent)
            #expect(ended["cause"] == "certificate_expired")
            #expect(ended["trigger"] == "expiry")
            #expect(ended["subject"] == "CN=carol")
            try await relayd.verifyAuditChain()
        }
    }

    @Test("with [reload] watch = true, changing the CRL file on disk without SIGHUP reloads within ~2 s and cuts the revoked client")
    func crlFileChangeTriggersReload() async throws {
        let pki = try TLSTestPKI()
        let bob = try pki.add("bob", .client(commonName: "bob"))
        let crl = try pki.writeCRL(revoking: [])
        try await withRelayd(pki: pki, extra: "[reload]\nwatch = true", crl: crl, start: false) { relayd in
            let (alice, other) = try await Self.startWithAliceAndBob(relayd, bob: bob)
            #expect(try await alice.subscribe(1, "w.>", from: .latest).isAccepted)
            // A new modification time even where the file system keeps whole seconds.
            try await Task.sleep(nanoseconds: 1_100_000_000)

            let changed = Date()
            #expect(try pki.writeCRL(revoking: [bob.issued.serialNumber]) == crl)
            let error = try await other.nextError(timeout: .seconds(30))
            let latency = Date().timeIntervalSince(changed)
            #expect(error?.errorCode == .certificateRevoked)
            #expect(await other.waitUntilClosed())
            print("file watch: CRL written → revoked client got ERR: \(String(format: "%.3f s", latency))")
            // "Within about 2 s": the next poll (≤ 1 s) sees the change, which must
            // then stay unchanged for 1 s. Never before that second; 5 s is the margin.
            #expect(latency >= 0.95 && latency <= 5, "CRL written → ERR took \(latency) s")
            #expect(try await alice.publish("w.still", count: 1).count == 1)
            #expect(try await alice.messages(1).first?.topic == "w.still")

            let reload = await relayd.waitForAudit { $0.event == "reload" && $0["result"] == "applied" }
            #expect(reload?["trigger"] == "file_change")
            let ended = await relayd.waitForAudit { $0.event == "session_ended" && $0["serial"] == bob.issued.serialNumber }
            #expect(ended?["cause"] == "certificate_revoked")
            await alice.close()
            try await relayd.verifyAuditChain()
        }
    }
}
