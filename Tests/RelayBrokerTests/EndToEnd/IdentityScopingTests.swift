import Foundation
import NIOCore
import RelayCore
import RelayTLS
import RelayTestSupport
import RelayWire
import Testing

/// One identity never touches another's data (docs/security.md, "Identity
/// scoping"): publish deduplication is keyed by the verified certificate,
/// durable cursors belong to one workload, and a principal template that a
/// certificate cannot fill is refused instead of falling back to a name
/// several certificates share. Real relayd, real TLS, real LMDB.
@Suite("relayd end to end: dedup and durable subscriptions are scoped by identity", .serialized)
struct IdentityScopingTests {
    /// A SPIRE-style SVID: subject `C=US, O=SPIRE` (no CN), the workload
    /// named only by its SPIFFE ID URI SAN.
    static func svid(_ pki: TLSTestPKI, _ name: String, path: String) throws -> TLSTestPKI.Files {
        try pki.add(name, CertificateRequest(subject: [[NameAttribute("C", "US")], [NameAttribute("O", "SPIRE")]],
                                             subjectAlternativeNames: [.uri("spiffe://relay.test\(path)")],
                                             extendedKeyUsage: [.clientAuth]))
    }

    static func connect(_ relayd: RelaydFixture, _ files: TLSTestPKI.Files, session: ProducerSessionID = .none) async throws -> FrameClient {
        let client = try await FrameClient.connect(port: relayd.port, pki: relayd.pki, as: files)
        try await client.hello(sessionID: session)
        return client
    }

    // MARK: Item 4: dedup keyed by identity

    @Test("two certificates with the same session_id and publish_id are both stored; a retry by the same certificate is still a duplicate")
    func dedupIsKeyedByIdentity() async throws {
        let pki = try TLSTestPKI()
        let bob = try pki.add("bob", .client(commonName: "bob"))
        let carol = try pki.add("carol", .client(commonName: "carol"))
        try await withRelayd(pki: pki) { relayd in
            // The session id is not a secret: anyone who sees a client's HELLO
            // (or guesses a badly generated one) can reuse it.
            let shared = ProducerSessionID(high: 0x5EED_5EED_5EED_5EED, low: 42)

            let bobClient = try await Self.connect(relayd, bob, session: shared)
            let bobAcks = try await bobClient.publish("dedup.x", count: 1, firstID: 7) { _ in "from-bob" }
            let bobAck = try #require(bobAcks.first)
            #expect(bobAck.duplicate == false)
            let carolClient = try await Self.connect(relayd, carol, session: shared)
            let carolAcks = try await carolClient.publish("dedup.x", count: 1, firstID: 7) { _ in "from-carol" }
            let carolAck = try #require(carolAcks.first)
            #expect(carolAck.duplicate == false, "carol's publish was taken for bob's: \(carolAck)")
            #expect(carolAck.sequence != bobAck.sequence)

            // Both are stored, each stamped with its own publisher.
            let reader = try await Self.connect(relayd, pki.alice)
            #expect(try await reader.subscribe(1, "dedup.x").isAccepted)
            let stored = try await reader.messages(2)
            #expect(Set(stored.map(payloadString)) == ["from-bob", "from-carol"])
            #expect(Set(stored.map(\.publisherPrincipal)) == ["CN=bob", "CN=carol"])

            // A real retry: bob reconnects with his session and resends id 7.
            await bobClient.close()
            let bobAgain = try await Self.connect(relayd, bob, session: shared)
            let retryAcks = try await bobAgain.publish("dedup.x", count: 1, firstID: 7) { _ in "from-bob" }
            let retry = try #require(retryAcks.first)
            #expect(retry.duplicate == true)
            #expect(retry.sequence == bobAck.sequence)
            #expect(retry.timestamp == bobAck.timestamp)
            // Carol's retry maps to carol's message, not bob's.
            let carolRetryAcks = try await carolClient.publish("dedup.x", count: 1, firstID: 7) { _ in "from-carol" }
            let carolRetry = try #require(carolRetryAcks.first)
            #expect(carolRetry.duplicate == true)
            #expect(carolRetry.sequence == carolAck.sequence)
            // Nothing else was stored.
            #expect(try await reader.expectSilence())
            await bobAgain.close()
            await carolClient.close()
            await reader.close()
        }
    }

    // MARK: Item 8: principal collisions never reach durable cursors

    @Test("SPIFFE SVIDs without a CN are refused under principal = {subject.CN} instead of sharing a fallback principal")
    func unrenderablePrincipalIsRefused() async throws {
        let pki = try TLSTestPKI()
        let victim = try Self.svid(pki, "svid-billing", path: "/ns/prod/sa/billing")
        let attacker = try Self.svid(pki, "svid-intruder", path: "/ns/dev/sa/intruder")
        try await withRelayd(pki: pki, acl: "[acl]\nprincipal = \"{subject.CN}\"\n\n" + RelaydFixture.allowAll) { relayd in
            for files in [victim, attacker] {
                let client = try await FrameClient.connect(port: relayd.port, pki: pki, as: files)
                do {
                    let welcome = try await client.hello()
                    Issue.record("an SVID without CN was admitted as principal \(welcome.principal)")
                } catch FrameClientError.refused(let error) {
                    #expect(error.errorCode == .identityRefused)
                }
                await client.close()
            }
            let refused = await relayd.waitForAudit { $0.event == "connection_refused" && $0["subject"]?.contains("O=SPIRE") == true }
            #expect(refused?["reason"]?.contains("subject.CN") == true, "\(refused?.fields ?? [:])")
            // A certificate that has a CN still gets in.
            let alice = try await Self.connect(relayd, pki.alice)
            await alice.close()
        }
    }

    @Test("two SVIDs sharing a principal (principal = {spiffe.trust_domain}) cannot move each other's durable cursor")
    func durableCursorIsNotSharedBySharedPrincipal() async throws {
        let pki = try TLSTestPKI()
        let victimFiles = try Self.svid(pki, "svid-billing", path: "/ns/prod/sa/billing")
        let attackerFiles = try Self.svid(pki, "svid-intruder", path: "/ns/dev/sa/intruder")
        try await withRelayd(pki: pki, acl: "[acl]\nprincipal = \"{spiffe.trust_domain}\"\n\n" + RelaydFixture.allowAll) { relayd in
            let publisher = try await Self.connect(relayd, pki.alice)
            let acks = try await publisher.publish("jobs.q", count: 20)

            // The victim takes 5 of 20 jobs and acknowledges them.
            var victim = try await Self.connect(relayd, victimFiles)
            #expect(try await victim.subscribe(1, "jobs.q", durable: "jobs").firstSequence == acks[0].sequence)
            let firstFive = try await victim.messages(5)
            try await victim.ackDurably(1, firstFive[4].sequence, barrier: 1)
            await victim.close()

            // Same principal ("relay.test"), other workload: it must get its own
            // cursor, not the victim's, and its ACKs must not move the victim's.
            let attacker = try await Self.connect(relayd, attackerFiles)
            let attackerAck = try await attacker.subscribeDurableRetrying(1, "jobs.q", durable: "jobs")
            #expect(attackerAck.firstSequence == acks[0].sequence, "the attacker resumed from the victim's cursor")
            _ = try await attacker.messages(20)
            try await attacker.ackDurably(1, acks[19].sequence, barrier: 1)
            await attacker.close()

            victim = try await Self.connect(relayd, victimFiles)
            let resumed = try await victim.subscribeDurableRetrying(1, "jobs.q", from: .latest, durable: "jobs")
            #expect(resumed.firstSequence == acks[5].sequence, "the victim's unacknowledged jobs 6-20 were skipped")
            let rest = try await victim.messages(15)
            #expect(rest.map(\.sequence) == acks[5...].map(\.sequence))
            await victim.close()
            await publisher.close()
        }
    }

    @Test("two certificates with the same subject from the same CA (a key rotation) share one durable cursor")
    func sameSubjectSameIssuerIsOneWorkload() async throws {
        let pki = try TLSTestPKI()
        let before = try pki.add("worker-old-key", .client(commonName: "worker"))
        let after = try pki.add("worker-new-key", .client(commonName: "worker"))
        #expect(before.issued.serialNumber != after.issued.serialNumber)
        try await withRelayd(pki: pki) { relayd in
            let publisher = try await Self.connect(relayd, pki.alice)
            let acks = try await publisher.publish("work.q", count: 10)

            let old = try await Self.connect(relayd, before)
            #expect(try await old.subscribe(1, "work.q", durable: "w").isAccepted)
            let firstFour = try await old.messages(4)
            try await old.ackDurably(1, firstFour[3].sequence, barrier: 1)

            // While the old certificate is attached, the rotated one is the same
            // workload: the name is in use, not a second cursor.
            let rotated = try await Self.connect(relayd, after)
            let inUse = try await rotated.subscribe(1, "work.q", durable: "w")
            #expect(inUse.code == RelayErrorCode.durableInUse.rawValue)
            await old.close()
            let resumed = try await rotated.subscribeDurableRetrying(2, "work.q", from: .latest, durable: "w")
            #expect(resumed.firstSequence == acks[4].sequence)
            await rotated.close()
            await publisher.close()
        }
    }

    @Test("the same subject and SPIFFE ID from two trusted CAs (client_ca lists both) are two workloads: neither resumes nor moves the other's durable cursor")
    func sameSubjectFromAnotherCAIsAnotherWorkload() async throws {
        let pki = try TLSTestPKI()
        let twins = try pki.sameWorkloadFromTwoCAs()
        let (ours, theirs, partnerCA) = (twins.ours, twins.theirs, twins.partnerCA)
        let relayd = try RelaydFixture(pki: pki)
        relayd.clientCAs = [pki.ca.certificate, partnerCA.certificate]
        try relayd.writeConfig()
        try await withRelayd(relayd) { relayd in
            let publisher = try await Self.connect(relayd, pki.alice)
            let acks = try await publisher.publish("work.q", count: 10)

            var victim = try await Self.connect(relayd, ours)
            #expect(try await victim.subscribe(1, "work.q", durable: "w").firstSequence == acks[0].sequence)
            let firstFour = try await victim.messages(4)
            try await victim.ackDurably(1, firstFour[3].sequence, barrier: 1)

            // Attached at the same time: another owner, so not durable_in_use, and its own cursor from the start.
            let other = try await Self.connect(relayd, theirs)
            let otherAck = try await other.subscribe(1, "work.q", durable: "w")
            #expect(otherAck.isAccepted && otherAck.firstSequence == acks[0].sequence,
                    "the partner CA's 'worker' got \(otherAck.code) \(otherAck.message), first \(otherAck.firstSequence)")
            if otherAck.isAccepted {
                _ = try await other.messages(10)
                try await other.ackDurably(1, acks[9].sequence, barrier: 1)
            }
            await other.close()
            await victim.close()

            victim = try await Self.connect(relayd, ours)
            let resumed = try await victim.subscribeDurableRetrying(1, "work.q", from: .latest, durable: "w")
            #expect(resumed.firstSequence == acks[4].sequence, "our worker's cursor was moved by the partner CA's")
            await victim.close()
            await publisher.close()
        }
    }
}

extension FrameClient {
    /// ACK, then a PUB on the same connection: its PUBACK means the ACK is
    /// on disk (Protocol/relay-v1.md §4.10).
    func ackDurably(_ subscription: UInt32, _ sequence: UInt64, barrier: UInt64) async throws {
        try await send(.ack(Ack(subscriptionID: subscription, sequence: sequence)))
        _ = try await publish("barrier.ack", count: 1, firstID: 1_000_000 + barrier)
    }

    /// SUB for a durable name, retried while the broker still sees it
    /// attached to a connection that just closed (the client rule of §4.10).
    func subscribeDurableRetrying(_ id: UInt32, _ filter: String, from start: StartPosition = .earliest,
                                  durable: String) async throws -> SubscribeAck {
        // The previous holder's release reaches relayd with no event here: retried.
        var last: SubscribeAck?
        if let ack = try await eventuallyValue(every: 0.02, { () async throws -> SubscribeAck? in
            let ack = try await subscribe(id, filter, from: start, durable: durable)
            last = ack
            return ack.code == RelayErrorCode.durableInUse.rawValue ? nil : ack
        }) {
            return ack
        }
        return try #require(last)
    }
}
