import NIOCore
import RelayCore
import RelayTestSupport
import RelayWire
import Testing

/// Protocol/relay-v1.md §4.6: with `ack_mode` 0 (none) a durable cursor
/// advances as messages are sent. A resume starts after the last MSG sent,
/// whether the subscription ended with UNSUB, an abrupt TCP close, or a
/// broker restart.
@Suite("spec §4.6: durable subscription with ack_mode none", .serialized)
struct AckModeNoneCursorTests {
    @Test("the cursor follows the sent messages across UNSUB, an abrupt close and a broker restart")
    func cursorAdvancesAsSent() async throws {
        try await withRelayd { relayd in
            let publisher = try await FrameClient.connect(port: relayd.port, pki: relayd.pki)
            try await publisher.hello()
            let seqs = try await publisher.publish("none.x", count: 10).map(\.sequence)
            await publisher.close()

            // 1. Credit 4: four MSG sent, then UNSUB on the same connection.
            let consumer = try await FrameClient.connect(port: relayd.port, pki: relayd.pki)
            try await consumer.hello()
            #expect(try await consumer.subscribeDurable(1, "none.x", credit: 4, durable: "fire", ackMode: .none).isAccepted)
            #expect(try await consumer.messages(4).map(\.sequence) == Array(seqs[0..<4]))
            try await consumer.send(.unsubscribe(subscriptionID: 1))
            let afterUnsub = try await consumer.subscribeDurable(2, "none.x", from: .latest, credit: 3, durable: "fire", ackMode: .none)
            #expect(afterUnsub.firstSequence == seqs[4], "resume after UNSUB at \(afterUnsub.firstSequence)")
            #expect(try await consumer.messages(3).map(\.sequence) == Array(seqs[4..<7]))
            await consumer.close()

            // 2. Abrupt close: the TCP connection is cut under TLS (no BYE, no close_notify).
            let proxy = try await TCPProxy.start(to: relayd.port)
            let cut = try await FrameClient.connect(port: proxy.port, pki: relayd.pki)
            try await cut.hello()
            let viaProxy = try await cut.subscribeDurable(3, "none.x", from: .latest, credit: 2, durable: "fire", ackMode: .none)
            #expect(viaProxy.firstSequence == seqs[7], "resume after close at \(viaProxy.firstSequence)")
            #expect(try await cut.messages(2).map(\.sequence) == Array(seqs[7..<9]))
            await proxy.cutAll()
            await proxy.close()
            await cut.close()

            // 3. Broker restart (SIGKILL) on the same data directory.
            let beforeRestart = try await FrameClient.connect(port: relayd.port, pki: relayd.pki)
            try await beforeRestart.hello()
            let afterCut = try await beforeRestart.subscribeDurable(4, "none.x", from: .latest, credit: 0, durable: "fire", ackMode: .none)
            #expect(afterCut.firstSequence == seqs[9], "resume after the abrupt close at \(afterCut.firstSequence)")
            try await beforeRestart.send(.credit(Credit(subscriptionID: 4, credit: 1)))
            #expect(try await beforeRestart.messages(1).map(\.sequence) == [seqs[9]])
            // The cursor commit for that MSG was queued on the store's writer when
            // the MSG was sent; a PUB queued after it is committed after it, so its
            // PUBACK says the cursor is on disk (the same barrier as for ACK).
            #expect(try await beforeRestart.publish("none.barrier", count: 1, firstID: 99).count == 1)
            try await relayd.restart()
            let afterRestart = try await FrameClient.connect(port: relayd.port, pki: relayd.pki)
            try await afterRestart.hello()
            let resumed = try await afterRestart.subscribeDurable(5, "none.x", from: .earliest, credit: 10, durable: "fire", ackMode: .none)
            #expect(resumed.firstSequence == seqs[9] + 1, "resume after restart at \(resumed.firstSequence)")
            #expect(try await afterRestart.expectSilence())
            await afterRestart.close()
            await beforeRestart.close()
        }
    }

    @Test("an ACK on an ack_mode none durable subscription does not move its cursor back")
    func ackIsIgnored() async throws {
        try await withRelayd { relayd in
            let publisher = try await FrameClient.connect(port: relayd.port, pki: relayd.pki)
            try await publisher.hello()
            let seqs = try await publisher.publish("none.y", count: 5).map(\.sequence)
            let consumer = try await FrameClient.connect(port: relayd.port, pki: relayd.pki)
            try await consumer.hello()
            #expect(try await consumer.subscribeDurable(1, "none.y", credit: 5, durable: "ign", ackMode: .none).isAccepted)
            #expect(try await consumer.messages(5).map(\.sequence) == seqs)
            // §4.10: ignored on ack_mode 0 (no ERR, no cursor change).
            #expect(try await consumer.pingBarrier() == [])
            try await consumer.send(.ack(Ack(subscriptionID: 1, sequence: seqs[0])))
            #expect(try await consumer.pingBarrier(3) == [])
            try await consumer.send(.unsubscribe(subscriptionID: 1))
            let resumed = try await consumer.subscribeDurable(2, "none.y", from: .earliest, credit: 5, durable: "ign", ackMode: .none)
            #expect(resumed.firstSequence == seqs[4] + 1)
            await consumer.close()
            await publisher.close()
        }
    }
}
