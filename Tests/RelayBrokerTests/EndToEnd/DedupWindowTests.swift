import Foundation
import RelayTestSupport
import RelayWire
import Testing

/// WELCOME's `dedup_window` (Protocol/relay-v1.md §2) is the window the
/// store applies, read from its configuration (`[storage] dedup_window`),
/// not a constant that happens to match the default.
@Suite("relayd end to end: the dedup window WELCOME announces", .serialized)
struct DedupWindowTests {
    @Test("WELCOME announces the default 120 s when the config says nothing")
    func defaultWindow() async throws {
        try await withRelayd { relayd in
            let client = try await FrameClient.connect(port: relayd.port, pki: relayd.pki)
            let welcome = try await client.hello()
            #expect(welcome.dedupWindow == 120_000_000_000)
            await client.close()
        }
    }

    @Test("a configured window is announced in WELCOME and applied by the store: a retry after it is stored again")
    func configuredWindowIsAnnouncedAndApplied() async throws {
        try await withRelayd(start: false) { relayd in
            relayd.storageExtra = #"dedup_window = "1s""#
            try relayd.writeConfig()
            try await relayd.start()
            let session = ProducerSessionID.random()
            let client = try await FrameClient.connect(port: relayd.port, pki: relayd.pki)
            let welcome = try await client.hello(sessionID: session)
            #expect(welcome.dedupWindow == 1_000_000_000, "WELCOME announced \(welcome.dedupWindow) ns")

            let first = try #require(try await client.publish("window.t", count: 1, firstID: 1).first)
            #expect(!first.duplicate)
            // Within the window the same publish id is a duplicate.
            let retried = try #require(try await client.publish("window.t", count: 1, firstID: 1).first)
            #expect(retried.duplicate && retried.sequence == first.sequence)

            // Past the window the store's pruner (every second, no event a
            // client can wait for) forgets the key: retry until one is stored
            // anew, with a deadline. Under the default window it would stay a
            // duplicate for 120 s. Every retry before that is a duplicate of
            // the first, never a third copy.
            var retries: [PublishAck] = []
            let forgotten = try await eventuallyValue(timeout: 20, every: 0.25) { () -> PublishAck? in
                let ack = try #require(try await client.publish("window.t", count: 1, firstID: 1).first)
                retries.append(ack)
                return ack.duplicate ? nil : ack
            }
            let stored = try #require(forgotten, "a retry 20 s after a 1 s window was still a duplicate")
            #expect(stored.sequence > first.sequence)
            let duplicates = retries.dropLast()
            let allOriginal = duplicates.allSatisfy { $0.duplicate && $0.sequence == first.sequence }
            #expect(allOriginal, "retries inside the window: \(duplicates.map(\.sequence))")

            // The store holds the first publish and the one stored after the window: two copies, nothing else.
            let reader = try await FrameClient.connect(port: relayd.port, pki: relayd.pki)
            try await reader.hello()
            #expect(try await reader.subscribe(1, "window.t", from: .earliest).isAccepted)
            let copies = try await reader.messages(2)
            #expect(copies.map(\.sequence) == [first.sequence, stored.sequence])
            #expect(try await reader.pingBarrier() == [], "more than two copies are stored")
            await reader.close()
            await client.close()
        }
    }
}
