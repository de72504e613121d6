import Foundation
import NIOCore
import RelayClient
import RelayTestSupport
import Testing

/// README "Reconnects" under a network partition rather than a killed
/// broker: the path goes silent without a FIN or RST (TCPProxy.partition),
/// so only the client's keep-alive can tell. It must give the connection up
/// within three keep-alive intervals of the last byte it read (two silent
/// checks, one interval apart), reconnect when the path returns, resend
/// what was unanswered with the same publish ids, and relayd must end up
/// with every message once, in order.
@Suite("RelayClient: recovery from a network partition", .serialized)
struct PartitionTests {
    static let keepalive = TimeAmount.milliseconds(500)

    static func messages(_ range: Range<Int>) -> [OutgoingMessage] {
        range.map { OutgoingMessage(topic: "part.a", text: "m\($0)") }
    }

    @Test("an idle connection on a healthy path stays up: relayd answers each keep-alive PING, so eight silent intervals end nothing")
    func idleConnectionStaysUp() async throws {
        try await withBroker { broker in
            var configuration = broker.clientConfiguration()
            // 1 s: a PONG may take up to two intervals before the connection is
            // given up; 300 ms (600 ms for a PONG) dropped it once in a full
            // parallel run at a load average of 4 on 2 cores.
            configuration.keepaliveInterval = .seconds(1)
            let publisher = try await Publisher.connect(configuration)
            let states = Recorder()
            let watch = Task { for await state in publisher.connection.states { states.add(state) } }
            defer { watch.cancel() }
            // The event: three keep-alive PINGs sent (one per two silent intervals
            // when each is answered), so the check ran on an idle connection.
            let pinged = await eventually(timeout: 30, every: 0.05) { await publisher.connection.keepalivePings >= 3 }
            let pings = await publisher.connection.keepalivePings
            #expect(pinged, "the keep-alive sent \(pings) PINGs in 30 s on an idle connection")
            let drops = states.all.filter { if case .disconnected = $0 { return true }; return false }
            #expect(drops.isEmpty, "the keep-alive dropped a healthy idle connection: \(drops)")
            let receipt = try await publisher.publish(topic: "idle.t", text: "still here")
            #expect(!receipt.duplicate)
            await publisher.close()
        }
    }

    @Test("a partition while publishing: the keep-alive gives the silent connection up, the client reconnects after heal and resends with the same ids; relayd stores each message once, in order")
    func partitionWhilePublishing() async throws {
        try await withBroker { broker in
            let proxy = try await TCPProxy.start(to: broker.port)
            defer { Task { await proxy.close() } }
            // The witness is connected straight to relayd: it sees each message once stored.
            let witnessConnection = try await Subscriber.connect(broker.clientConfiguration())
            let witness = try await witnessConnection.subscribe(filter: "part.>", from: .latest)

            var throughProxy = broker.clientConfiguration()
            throughProxy.port = proxy.port
            throughProxy.connectTimeout = .seconds(1)
            throughProxy.keepaliveInterval = Self.keepalive
            let publisher = try await Publisher.connect(throughProxy)
            let states = Recorder()
            let watch = Task { for await state in publisher.connection.states { states.add(state) } }
            defer { watch.cancel() }

            // 1. Acknowledged before anything goes wrong.
            var receipts: [PublishReceipt] = []
            for index in 0..<50 { receipts.append(try await publisher.publish(topic: "part.a", text: "m\(index)")) }
            // 2. relayd's answers are lost from here: these 50 are stored, their PUBACKs never arrive.
            proxy.dropReplies()
            let silentSince = Date()
            // Pipelined (one batch), so all 50 go out while no answer comes back.
            let unanswered = Task { await publisher.publish(batch: Self.messages(50..<100)) }
            let storedBefore = try await take(100, from: witness)
            // 3. The partition: nothing passes either way, nothing is closed.
            proxy.partition()
            let lost = Task { await publisher.publish(batch: Self.messages(100..<150)) }
            // The client gives the silent connection up by itself.
            let detected = await eventually(timeout: 10, every: 0.02) {
                states.all.contains { if case .disconnected = $0 { return true }; return false }
            }
            let detectedAfter = Date().timeIntervalSince(silentSince)
            #expect(detected, "the client still took the silent connection for alive after 10 s: no keep-alive")
            let interval = Double(Self.keepalive.nanoseconds) / 1e9
            // Three intervals at most, plus room for a loaded machine (the old client: never).
            #expect(detectedAfter < 3 * interval + 3, "detected after \(detectedAfter) s")
            guard detected else {
                await publisher.close()
                await witnessConnection.connection.close()
                return
            }
            let firstLoss = states.all.compactMap { state -> RelayClientError? in
                if case .disconnected(let error, _) = state { return error }
                return nil
            }.first
            #expect(firstLoss?.message.contains("keep-alive") == true, "\(String(describing: firstLoss))")
            // Attempts during the partition reach no broker and time out (connectTimeout 1 s).
            let failedDuringPartition = await eventually(timeout: 15, every: 0.05) {
                states.all.filter { if case .disconnected = $0 { return true }; return false }.count >= 2
            }
            #expect(failedDuringPartition, "no reconnect attempt failed during the partition")
            // 4. The path returns: a new connection gets through.
            proxy.heal()
            let answered = try await unanswered.value.map { try $0.get() }
            let resent = try await lost.value.map { try $0.get() }
            receipts += answered + resent

            #expect(proxy.connections >= 2)
            let resentCount = await publisher.connection.resentPublishes
            #expect(resentCount >= 50, "resent: \(resentCount)")
            let duplicates = answered.filter(\.duplicate).count
            #expect(duplicates == 50, "\(duplicates) of the 50 stored-but-unanswered publishes came back as duplicates")
            let storedAfter = try await take(50, from: witness)
            let stored = storedBefore + storedAfter
            let expectedTexts = (0..<150).map { "m\($0)" }
            #expect(stored.map(\.text) == expectedTexts)
            #expect(receipts.map(\.sequence) == stored.map(\.sequence), "the receipts do not name the stored copies")
            // Nothing stored twice: reading the topic from the start gives 150 messages and then nothing.
            let reader = try await Subscriber.connect(broker.clientConfiguration())
            let all = try await take(150, from: try await reader.subscribe(filter: "part.>", from: .earliest))
            #expect(all.map(\.sequence) == stored.map(\.sequence))
            let marker = try await publisher.publish(topic: "part.a", text: "end")
            let next = try await take(1, from: witness)
            #expect(next.map(\.sequence) == [marker.sequence], "a message was stored after m149 before the marker")

            await reader.connection.close()
            await publisher.close()
            await witnessConnection.connection.close()
        }
    }
}
