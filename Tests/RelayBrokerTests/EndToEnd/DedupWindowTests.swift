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
            // client can wait for) forgets the key: poll until a retry is
            // stored anew. Under the default window it would stay a duplicate for 120 s.
            let deadline = ContinuousClock.now.advanced(by: .seconds(20))
            var forgotten: PublishAck?
            while forgotten == nil, ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(250))
                let ack = try #require(try await client.publish("window.t", count: 1, firstID: 1).first)
                if !ack.duplicate { forgotten = ack }
            }
            let stored = try #require(forgotten, "a retry 20 s after a 1 s window was still a duplicate")
            #expect(stored.sequence > first.sequence)
            await client.close()
        }
    }
}
