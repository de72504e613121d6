import Foundation
import RelayClient
import RelayTestSupport
import RelayWire
import Testing

/// README, "Reconnects": publishes without an answer are re-sent with the
/// same publish id in the same producer session, so a lost PUBACK never
/// stores a message twice, and the receipt then has `duplicate == true`.
@Suite("RelayClient: a lost PUBACK is retried once, as a duplicate", .serialized)
struct ClientRetryDedupTests {
    @Test("the connection drops after relayd committed a publish and before its PUBACK arrived: RelayClient reconnects, re-sends it, gets the original sequence flagged duplicate, and relayd stored it once")
    func lostAckIsRetriedAsDuplicate() async throws {
        try await withBroker { broker in
            let proxy = try await TCPProxy.start(to: broker.port)
            defer { Task { await proxy.close() } }

            // The witness is connected straight to relayd: it sees each message once stored.
            let witnessConnection = try await Subscriber.connect(broker.clientConfiguration())
            let witness = try await witnessConnection.subscribe(filter: "retry.order", from: .latest)

            var throughProxy = broker.clientConfiguration()
            throughProxy.port = proxy.port
            let publisher = try await Publisher.connect(throughProxy)
            let states = Recorder()
            let watch = Task { for await state in publisher.connection.states { states.add(state) } }
            defer { watch.cancel() }
            let warm = try await publisher.publish(topic: "retry.warm", text: "through the proxy")
            #expect(!warm.duplicate)
            #expect(proxy.connections == 1)

            // From here relayd's answers on this connection are swallowed.
            proxy.dropReplies()
            let pending = Task { try await publisher.publish(topic: "retry.order", text: "once") }
            let committed = try #require(try await take(1, from: witness).first)
            #expect(committed.text == "once")
            // Stored, its PUBACK lost: now the connection drops.
            await proxy.cutAll()

            let receipt = try await pending.value
            #expect(receipt.duplicate, "the retried publish was stored again as sequence \(receipt.sequence)")
            #expect(receipt.sequence == committed.sequence, "receipt \(receipt.sequence), original \(committed.sequence)")
            #expect(proxy.connections >= 2, "the publish was answered without a reconnect")
            let disconnected = states.all.contains { if case .disconnected = $0 { return true }; return false }
            #expect(disconnected)

            // The next publish in the session is new; reading from the start shows the original once, then it.
            let next = try await publisher.publish(topic: "retry.order", text: "next")
            #expect(!next.duplicate && next.sequence > committed.sequence)
            let reader = try await Subscriber.connect(broker.clientConfiguration())
            let stored = try await take(2, from: try await reader.subscribe(filter: "retry.order", from: .earliest))
            #expect(stored.map(\.sequence) == [committed.sequence, next.sequence])
            #expect(stored.map(\.text) == ["once", "next"])

            await publisher.close()
            await reader.connection.close()
            await witnessConnection.connection.close()
        }
    }

    @Test("a producer session given to a new RelayConnection (a restarted process keeping its session id) stores its publishes: they are not taken for the first run's")
    func reusedSessionIsNotDeduplicated() async throws {
        try await withBroker { broker in
            let session = ProducerSessionID.random()
            var sequences: [UInt64] = []
            for text in ["first run", "second run"] {
                let connection = try RelayConnection(configuration: broker.clientConfiguration(), sessionID: session)
                _ = try await connection.connect()
                let receipt = try await Publisher(connection: connection).publish(topic: "restart.session", text: text)
                #expect(!receipt.duplicate, "\(text) was answered as a duplicate of sequence \(receipt.sequence)")
                sequences.append(receipt.sequence)
                await connection.close()
            }
            #expect(sequences.count == 2 && sequences[0] != sequences[1], "\(sequences)")
        }
    }
}
