import Foundation
import RelayCore
import RelayTestSupport
import RelayWire
import Testing

/// A client that subscribes many times and grants no credit never reads a
/// MSG, so no write stalls and `write_stall_timeout` never fires; every
/// live message matching its filters is buffered once per subscription
/// (wave-14 attack run: 1,000 subscriptions and 8,100 one-byte publishes
/// grew relayd by 600-900 MiB per connection). The buffers of one
/// connection share one byte budget; past it the store serves them later.
@Suite("relayd end to end: live buffers of one connection share a budget", .serialized)
struct SubscriptionBufferBudgetTests {
    @Test("999 zero-credit subscriptions on one connection and 8,100 publishes: relayd grows < 200 MiB (was +949, then +371), nothing is lost")
    func zeroCreditSubscriptionsAreBounded() async throws {
        try await withRelayd { relayd in
            let pid = try #require(relayd.process?.pid)
            let hoarder = try await FrameClient.connect(port: relayd.port, pki: relayd.pki)
            try await hoarder.hello()
            for id in UInt32(1)...999 {
                #expect(try await hoarder.subscribe(id, "amp.>", from: .latest, credit: 0).isAccepted)
            }
            // The last subscription reads: once it has every message, the
            // router has offered all of them to this connection's other 999.
            #expect(try await hoarder.subscribe(1000, "amp.>", from: .latest, credit: 100_000).isAccepted)
            let publisher = try await FrameClient.connect(port: relayd.port, pki: relayd.pki)
            try await publisher.hello()
            let baseline = try #require(ProcessMemory.residentBytes(pid: pid))

            let total = 8_100
            for batch in 0..<9 {
                let acks = try await publisher.publish("amp.x", count: 900, firstID: UInt64(batch * 900 + 1)) { _ in "x" }
                #expect(acks.count == 900)
            }
            let received = try await hoarder.messages(total, timeout: .seconds(60))
            let readers = Set(received.map(\.subscriptionID))
            #expect(readers == [1000])
            let grown = try #require(ProcessMemory.residentBytes(pid: pid)) - baseline
            print("zero-credit hoarder: RSS baseline \(baseline >> 20) MiB, +\(grown >> 20) MiB after \(total) publishes")
            // The buffers' 64 MiB budget plus the router's queue to this
            // connection (at most 262,144 deliveries). With the budget alone
            // the router's per-subscription deliveries queued for the loop
            // still grew it by 354-371 MiB.
            #expect(grown < 200 << 20, "relayd's RSS grew by \(grown >> 20) MiB")

            // Credit later: a starved subscription still gets every message, in order (from the store).
            try await hoarder.send(.credit(Credit(subscriptionID: 7, credit: UInt32(total))))
            let late = try await hoarder.messages(total, timeout: .seconds(60))
            #expect(late.map(\.subscriptionID) == Array(repeating: 7, count: total))
            #expect(late.map(\.sequence) == received.map(\.sequence))
            await hoarder.close()
            await publisher.close()
        }
    }
}
