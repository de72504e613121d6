import Foundation
import NIOCore
import RelayCore
import RelayTestSupport
import RelayWire
import Testing

/// Protocol/relay-v1.md §4.6: a `time` start position delivers from the first
/// message committed at or after that time, also when the time is still in
/// the future at SUB.
@Suite("spec §4.6: time start position in the future", .serialized)
struct FutureTimeStartTests {
    @Test("messages committed between the SUB and the start time are not delivered")
    func futureTimeSkipsEarlierCommits() async throws {
        try await withRelayd { relayd in
            let publisher = try await FrameClient.connect(port: relayd.port, pki: relayd.pki)
            try await publisher.hello()
            let before = try await publisher.publish("ft.x", count: 1, firstID: 1)[0]
            let start = before.timestamp + 4_000_000_000  // 4 s after a commit that just happened (margin for a loaded CI machine)

            let subscriber = try await FrameClient.connect(port: relayd.port, pki: relayd.pki)
            try await subscriber.hello()
            #expect(try await subscriber.subscribe(1, "ft.x", from: .time(start)).isAccepted)
            let early = try await publisher.publish("ft.x", count: 1, firstID: 2)[0]
            try #require(early.timestamp < start, "precondition: committed before the start time")

            // Waiting for the wall clock to pass the start time is the event here.
            let now = UInt64(Date().timeIntervalSince1970 * 1_000_000_000)
            if start > now { try await Task.sleep(nanoseconds: start - now + 50_000_000) }
            let late = try await publisher.publish("ft.x", count: 1, firstID: 3)[0]
            try #require(late.timestamp >= start, "precondition: committed at or after the start time")

            let delivered = try await subscriber.messages(1)
            #expect(delivered.map(\.sequence) == [late.sequence],
                    "delivered \(delivered.map(\.sequence)); before-start sequences \(before.sequence), \(early.sequence)")
            #expect(try await subscriber.expectSilence())
            await subscriber.close()
            await publisher.close()
        }
    }

    @Test("replay with a future time start, served from the store: same rule")
    func futureTimeWithZeroCreditReplays() async throws {
        try await withRelayd { relayd in
            let publisher = try await FrameClient.connect(port: relayd.port, pki: relayd.pki)
            try await publisher.hello()
            let before = try await publisher.publish("ft.y", count: 1, firstID: 1)[0]
            let start = before.timestamp + 4_000_000_000
            let subscriber = try await FrameClient.connect(port: relayd.port, pki: relayd.pki)
            try await subscriber.hello()
            // Credit 0: nothing is delivered live; after the CREDIT the messages come from the store.
            #expect(try await subscriber.subscribe(1, "ft.y", from: .time(start), credit: 0).isAccepted)
            let early = try await publisher.publish("ft.y", count: 3, firstID: 2)
            let allBefore = early.allSatisfy { $0.timestamp < start }
            try #require(allBefore)
            // Time itself is under test: the wall clock must pass the start time
            // before the "late" publishes, and no event stands in for that.
            let now = UInt64(Date().timeIntervalSince1970 * 1_000_000_000)
            if start > now { try await Task.sleep(nanoseconds: start - now + 50_000_000) }
            let late = try await publisher.publish("ft.y", count: 2, firstID: 10)
            let allAtOrAfter = late.allSatisfy { $0.timestamp >= start }
            try #require(allAtOrAfter)
            try await subscriber.send(.credit(Credit(subscriptionID: 1, credit: 10)))
            let delivered = try await subscriber.messages(2)
            #expect(delivered.map(\.sequence) == late.map(\.sequence))
            #expect(try await subscriber.expectSilence())
            await subscriber.close()
            await publisher.close()
        }
    }
}
