import Foundation
import NIOCore
import RelayCore
import RelayTestSupport
import RelayWire
import Testing

/// Protocol/relay-v1.md §4.6: a `time` start position delivers from the first
/// message committed at or after that time, also when the time is still in
/// the future at SUB.
///
/// The start time is `margin` after a commit (`before`), and the SUB and the
/// "early" commit must both fit in that margin. Both clients are connected and
/// welcomed before `before`: under load (a full-suite run at load 7-11 on
/// 2 vCPUs) relayd took ~8 s to accept a new connection, which ate the old
/// 4 s margin when the subscriber connected inside it. Now only two requests
/// on open connections (SUB, PUB) are in the window.
@Suite("spec §4.6: time start position in the future", .serialized)
struct FutureTimeStartTests {
    /// From the `before` commit to the start time: also how long each test waits.
    static let margin: UInt64 = 4_000_000_000

    /// A publisher and a subscriber, both past WELCOME.
    static func twoClients(_ relayd: RelaydFixture) async throws -> (FrameClient, FrameClient) {
        let publisher = try await FrameClient.connect(port: relayd.port, pki: relayd.pki)
        try await publisher.hello()
        let subscriber = try await FrameClient.connect(port: relayd.port, pki: relayd.pki)
        try await subscriber.hello()
        return (publisher, subscriber)
    }

    /// How long the SUB and the early commit took, for a failed precondition.
    static func window(_ before: PublishAck, _ early: PublishAck) -> String {
        "the SUB and the early commit took \(Int64(bitPattern: early.timestamp &- before.timestamp) / 1_000_000) ms of the \(margin / 1_000_000) ms margin"
    }

    @Test("messages committed between the SUB and the start time are not delivered")
    func futureTimeSkipsEarlierCommits() async throws {
        try await withRelayd { relayd in
            let (publisher, subscriber) = try await Self.twoClients(relayd)
            let before = try await publisher.publish("ft.x", count: 1, firstID: 1)[0]
            let start = before.timestamp + Self.margin
            #expect(try await subscriber.subscribe(1, "ft.x", from: .time(start)).isAccepted)
            let early = try await publisher.publish("ft.x", count: 1, firstID: 2)[0]
            try #require(early.timestamp < start, "precondition: committed before the start time; \(Self.window(before, early))")

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
            let (publisher, subscriber) = try await Self.twoClients(relayd)
            let before = try await publisher.publish("ft.y", count: 1, firstID: 1)[0]
            let start = before.timestamp + Self.margin
            // Credit 0: nothing is delivered live; after the CREDIT the messages come from the store.
            #expect(try await subscriber.subscribe(1, "ft.y", from: .time(start), credit: 0).isAccepted)
            let early = try await publisher.publish("ft.y", count: 3, firstID: 2)
            let allBefore = early.allSatisfy { $0.timestamp < start }
            try #require(allBefore, "precondition: committed before the start time; \(Self.window(before, early[early.count - 1]))")
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
