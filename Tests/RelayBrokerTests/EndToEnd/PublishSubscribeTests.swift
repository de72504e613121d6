import Foundation
import NIOCore
import RelayCore
import RelayTLS
import RelayTestSupport
import RelayWire
import Testing

@Suite("relayd end to end: publish, subscribe, replay", .serialized)
struct PublishSubscribeTests {
    @Test("publish, then subscribe through '*' and '>' wildcards; MSG carries the broker-derived publisher identity")
    func wildcardsAndProvenance() async throws {
        try await withRelayd { relayd in
            let publisher = try await FrameClient.connect(port: relayd.port, pki: relayd.pki)
            let welcome = try await publisher.hello()
            _ = try await publisher.publish("orders.eu.created", count: 2)
            _ = try await publisher.publish("orders.us.created", count: 1, firstID: 10)
            _ = try await publisher.publish("billing.eu.created", count: 1, firstID: 20)

            let subscriber = try await FrameClient.connect(port: relayd.port, pki: relayd.pki)
            try await subscriber.hello()
            #expect(try await subscriber.subscribe(1, "orders.*.created").isAccepted)
            #expect(try await subscriber.subscribe(2, "billing.>").isAccepted)
            let got = try await subscriber.messages(4)
            let firstTopics = got.filter { $0.subscriptionID == 1 }.map(\.topic)
            #expect(firstTopics == ["orders.eu.created", "orders.eu.created", "orders.us.created"])
            let secondTopics = got.filter { $0.subscriptionID == 2 }.map(\.topic)
            #expect(secondTopics == ["billing.eu.created"])
            let alice = try Identity(pem: relayd.pki.alice.issued.certificatePEM)
            for message in got {
                #expect(message.publisherPrincipal == welcome.principal)
                #expect(message.publisherFingerprint == alice.fingerprintSHA256)
            }
            // Live delivery after the replay.
            let live = try await publisher.publish("orders.eu.created", count: 1, firstID: 30)
            let next = try await subscriber.messages(1)
            #expect(next.first?.sequence == live.first?.sequence)
            #expect(next.first?.replayed == false)
            await publisher.close(); await subscriber.close()
        }
    }

    @Test("replay from each start position: earliest, sequence, time, last N, new")
    func startPositions() async throws {
        try await withRelayd { relayd in
            let client = try await FrameClient.connect(port: relayd.port, pki: relayd.pki)
            try await client.hello()
            let first = try await client.publish("s.t", count: 5)
            let middleTime = UInt64(Date().timeIntervalSince1970 * 1e9)
            try await Task.sleep(nanoseconds: 5_000_000)
            let second = try await client.publish("s.t", count: 5, firstID: 100)
            let all = (first + second).map(\.sequence)

            func replay(_ id: UInt32, _ start: StartPosition, expect count: Int) async throws -> [UInt64] {
                let ack = try await client.subscribe(id, "s.t", from: start)
                #expect(ack.isAccepted, "\(start): \(ack.message)")
                let got = try await client.messages(count).map(\.sequence)
                #expect(try await client.expectSilence())
                return got
            }
            #expect(try await replay(1, .earliest, expect: 10) == all)
            #expect(try await replay(2, .sequence(all[3]), expect: 7) == Array(all[3...]))
            #expect(try await replay(3, .time(middleTime), expect: 5) == Array(all[5...]))
            #expect(try await replay(4, .last(3), expect: 3) == Array(all[7...]))
            let ack = try await client.subscribe(5, "s.t", from: .latest)
            #expect(ack.isAccepted)
            #expect(try await client.expectSilence())
            let fresh = try await client.publish("s.t", count: 1, firstID: 500)
            // Subscriptions 1-5 all receive the new message live.
            let live = try await client.messages(5)
            #expect(Set(live.map(\.subscriptionID)) == [1, 2, 3, 4, 5])
            let allFresh = live.allSatisfy { $0.sequence == fresh[0].sequence }
            #expect(allFresh)
            await client.close()
        }
    }

    @Test("credit bounds what is in flight; CREDIT releases more")
    func creditFlowControl() async throws {
        try await withRelayd { relayd in
            let client = try await FrameClient.connect(port: relayd.port, pki: relayd.pki)
            try await client.hello()
            _ = try await client.publish("c.x", count: 20)
            #expect(try await client.subscribe(1, "c.x", credit: 5).isAccepted)
            #expect(try await client.messages(5).count == 5)
            #expect(try await client.expectSilence())
            try await client.send(.credit(Credit(subscriptionID: 1, credit: 15)))
            #expect(try await client.messages(15).count == 15)
            #expect(try await client.expectSilence())
            await client.close()
        }
    }
}
