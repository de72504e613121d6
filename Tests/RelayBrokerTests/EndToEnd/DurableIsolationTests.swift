import NIOCore
import RelayCore
import RelayTLS
import RelayTestSupport
import RelayWire
import Testing

/// docs/security.md: an identity cannot "take over another identity's
/// durable subscriptions". Two certificates use the same durable name
/// through a real relayd; each keeps its own cursor.
@Suite("relayd end to end: durable names are per identity", .serialized)
struct DurableIsolationTests {
    @Test("two certificates attach the same durable name at the same time, and neither one's ACKs move the other's cursor")
    func twoIdentitiesSameDurableName() async throws {
        try await withRelayd(start: false) { relayd in
            let bob = try relayd.pki.add("bob", .client(commonName: "bob", organizationalUnits: ["payments"]))
            try await relayd.start()
            try await Self.expectSeparateCursors(relayd, relayd.pki.alice, bob)
        }
    }

    /// The scenario: six messages; A attaches "shared" and acknowledges the
    /// third; B attaches "shared" while A holds it, reads all six (its own,
    /// empty cursor) and acknowledges the sixth; then each reattaches.
    static func expectSeparateCursors(_ relayd: RelaydFixture, _ a: TLSTestPKI.Files, _ b: TLSTestPKI.Files) async throws {
        let publisher = try await FrameClient.connect(port: relayd.port, pki: relayd.pki)
        try await publisher.hello()
        let sequences = try await publisher.publish("iso.work", count: 6).map(\.sequence)

        let clientA = try await FrameClient.connect(port: relayd.port, pki: relayd.pki, as: a)
        let welcomeA = try await clientA.hello()
        #expect(try await clientA.subscribe(1, "iso.work", from: .earliest, durable: "shared").isAccepted)
        #expect(try await clientA.messages(6).map(\.sequence) == sequences)
        try await clientA.acknowledge(1, sequences[2], barrierID: 100)

        // B uses the same name while A is attached: not durable_in_use, and
        // it starts where B asked (the start), not at A's cursor.
        let clientB = try await FrameClient.connect(port: relayd.port, pki: relayd.pki, as: b)
        let welcomeB = try await clientB.hello()
        #expect(welcomeA.fingerprint != welcomeB.fingerprint)
        let attachB = try await clientB.subscribe(1, "iso.work", from: .earliest, durable: "shared")
        #expect(attachB.isAccepted, "B's durable \"shared\" was refused: \(attachB.errorCode?.name ?? "?") \(attachB.message)")
        #expect(attachB.firstSequence == sequences[0], "B started at \(attachB.firstSequence), after A's cursor")
        #expect(try await clientB.messages(6).map(\.sequence) == sequences)
        try await clientB.acknowledge(1, sequences[5], barrierID: 200)
        try await clientB.detach(1, barrierID: 201)
        try await clientA.detach(1, barrierID: 101)

        // A resumes after its own ACK (the fourth message), not after B's.
        let resumeA = try await clientA.subscribe(2, "iso.work", from: .latest, durable: "shared")
        #expect(resumeA.isAccepted, "\(resumeA.message)")
        #expect(resumeA.firstSequence == sequences[3], "A resumed at \(resumeA.firstSequence); its cursor is at \(sequences[2])")
        #expect(try await clientA.messages(3).map(\.sequence) == Array(sequences[3...]))
        // B resumes after the sixth: nothing until a new message.
        let resumeB = try await clientB.subscribe(2, "iso.work", from: .earliest, durable: "shared")
        #expect(resumeB.isAccepted, "\(resumeB.message)")
        #expect(try await clientB.expectSilence(), "B received again what it acknowledged")
        let seventh = try #require(try await publisher.publish("iso.work", count: 1, firstID: 7).first)
        #expect(try await clientB.messages(1).map(\.sequence) == [seventh.sequence])
        #expect(try await clientA.messages(1).map(\.sequence) == [seventh.sequence])
        for client in [publisher, clientA, clientB] { await client.close() }
    }
}

extension FrameClient {
    /// ACKs `sequence`, then publishes (on a topic no test reads) and waits
    /// for the PUBACK: the cursor commit is queued before that append, so it
    /// is on disk when the PUBACK arrives (the ACK→PUB→PUBACK barrier).
    func acknowledge(_ subscription: UInt32, _ sequence: UInt64, barrierID: UInt64) async throws {
        try await send(.ack(Ack(subscriptionID: subscription, sequence: sequence)))
        try await barrier(barrierID)
    }

    /// UNSUB, then the publish barrier: relayd lets go of a durable name
    /// once its last cursor commit is done, which the barrier's PUBACK follows.
    func detach(_ subscription: UInt32, barrierID: UInt64) async throws {
        try await send(.unsubscribe(subscriptionID: subscription))
        try await barrier(barrierID)
    }

    private func barrier(_ id: UInt64) async throws {
        guard case .publishAck = try await publishReply(id, "barrier.\(id)") else {
            throw BrokerTestError.refused("the barrier publish \(id) was not acknowledged")
        }
    }
}
