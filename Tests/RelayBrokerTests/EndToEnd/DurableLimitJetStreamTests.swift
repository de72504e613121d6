import Foundation
import NIOCore
import RelayCore
import RelayTLS
import RelayTestSupport
import RelayWire
import Testing

/// `[limits] max_durables` on the cluster backend: the count is the cursor
/// bucket's (docs/cluster.md, "Durable cursors"), so an identity cannot get
/// past it by attaching its next durable on another edge.
@Suite("relayd edges on JetStream: durables per identity", .serialized)
struct DurableLimitJetStreamTests {
    @Test("max_durables = 2 on two edges of one stream: two held through edge A, a new one on edge B is refused, a held one re-attaches there")
    func sharedAcrossEdges() async throws {
        let nats = try await SingleNATSServer(pki: TLSTestPKI())
        try await withTwoJetStreamEdges(nats, extra: "[limits]\nmax_durables = 2") { a, b in
            try await DurableLimitTests.publishOne(a)
            let held = try await DurableLimitTests.hold(a, as: a.pki.alice, ["a", "b", "c"])
            #expect(held["a"]?.isAccepted == true && held["b"]?.isAccepted == true, "\(held)")
            #expect(DurableLimitTests.isTooManyDurables(held["c"]), "a third on edge A: \(String(describing: held["c"]))")
            let onB = try await DurableLimitTests.attach(b, as: b.pki.alice, "d")
            #expect(DurableLimitTests.isTooManyDurables(onB), "a third on edge B: \(onB.code) \(onB.message)")
            // `relayctl durable delete` works on this backend too (AdminJetStreamTests): the refusal
            // names it, and no longer sends a cluster edge's client to the NATS tools.
            #expect(onB.message.contains("relayctl durable delete <name> --owner") && !onB.message.contains("docs/cluster.md"),
                    "\(onB.message)")
            let again = try await DurableLimitTests.attach(b, as: b.pki.alice, "a")
            #expect(again.isAccepted, "re-attaching a held durable on edge B: \(again.message)")
        }
    }
}
