import NIOCore
import RelayCore
import RelayTestSupport
import RelayWire
import Testing

/// The publish path remembers the last topic's verdict (PublishCache) and
/// the last topic that passed the grammar (SessionHandler): a publisher
/// that sends to one topic is checked with a comparison, not a hash lookup
/// and a grammar scan. Neither may outlive a policy reload: the next PUB to
/// that very topic must get the new policy's answer (revocation on live
/// sessions, Protocol/relay-v1.md §4.13).
@Suite("relayd end to end: publish memos and reload", .serialized)
struct PublishMemoReloadTests {
    @Test("a reload that denies the topic a live session keeps publishing to refuses its very next PUB there")
    func sameTopicAfterNarrowingReload() async throws {
        try await withRelayd(acl: ReloadTests.wideACL) { relayd in
            let alice = try await FrameClient.connect(port: relayd.port, pki: relayd.pki)
            try await alice.hello()
            // The reload ends this subscription (ERR subscription_revoked):
            // the event that says the session has the new permissions.
            #expect(try await alice.subscribe(7, "b.>", from: .latest).isAccepted)
            for id in UInt64(1)...3 {
                let reply = try await alice.publishReply(id, "b.same")
                guard case .publishAck = reply else {
                    Issue.record("PUB \(id) to b.same before the reload: \(String(describing: reply))"); return
                }
            }

            try relayd.writeConfig(acl: ReloadTests.narrowACL)
            relayd.reload()
            let revoked = try #require(try await alice.nextError())
            #expect(revoked.subscriptionID == 7 && revoked.errorCode == .subscriptionRevoked)

            let refused = try await alice.publishReply(4, "b.same")
            guard case .publishError(let error) = refused else {
                Issue.record("PUB to b.same after the narrowing reload was not refused: \(String(describing: refused))"); return
            }
            #expect(error.errorCode == .notAuthorized)
            // Another topic in between, then the same one again: still refused.
            guard case .publishAck = try await alice.publishReply(5, "a.same") else {
                Issue.record("PUB to a.same after the reload was not acknowledged"); return
            }
            guard case .publishError(let again) = try await alice.publishReply(6, "b.same") else {
                Issue.record("the second PUB to b.same after the reload was not refused"); return
            }
            #expect(again.errorCode == .notAuthorized)
            await alice.close()
        }
    }
}
