import Foundation
import RelayClient
import RelayTestSupport
import Testing

/// Several server addresses (issue 20 item 4): two real relayds on separate
/// data directories with the same PKI stand in for two edges. Without the
/// shared JetStream log they do not share messages, so the second one's log
/// shows exactly what the client published there after the failover.
@Suite("Server failover")
struct ServerFailoverTests {
    @Test("a publisher configured with [first, second] moves to the second when the first stops, and its publishes land there")
    func publisherMovesToTheSecondServer() async throws {
        try await withBroker { first in
            try await withRelayd(pki: first.pki) { second in
                var configuration = first.clientConfiguration()
                configuration.servers = [ServerAddress(host: "127.0.0.1", port: first.port),
                                         ServerAddress(host: "127.0.0.1", port: second.port)]
                let publisher = try await Publisher.connect(configuration)
                let before = try await publisher.publish(topic: "failover.a", text: "on-first")
                #expect(before.sequence >= 1)
                _ = await first.terminate()
                var receipts: [PublishReceipt] = []
                for index in 0..<5 {
                    receipts.append(try await publisher.publish(topic: "failover.a", text: "after-\(index)"))
                }
                #expect(receipts.count == 5)
                let session = await publisher.connection.session
                #expect(session != nil)
                await publisher.close()

                let reader = try await Subscriber.connect(second.clientConfiguration())
                let replay = try await reader.subscribe(filter: "failover.>", from: .earliest)
                let messages = try await take(5, from: replay, timeout: 10)
                let texts = messages.map { $0.text ?? "<binary>" }
                let expected = (0..<5).map { "after-\($0)" }
                #expect(texts == expected)
                await reader.connection.close()
            }
        }
    }

    @Test("relay-pub with a dead first address connects to the second, printing the reconnect line")
    func cliSkipsADeadFirstAddress() async throws {
        try await withBroker { broker in
            // Port 1 on loopback: nothing listens there, so the connect is refused at once.
            let dead = 1
            var arguments = broker.cliArguments()
            arguments[1] = "127.0.0.1:\(dead),127.0.0.1:\(broker.port)"
            let result = try await runCLI("relay-pub", arguments + ["--topic", "cli.failover", "--message", "hello"], timeout: 15)
            #expect(result.status == 0, "stderr: \(result.stderr)")
            let reconnectLine = result.stderr.contains { $0.contains("reconnecting in") && $0.contains("127.0.0.1:\(dead)") }
            #expect(reconnectLine, "stderr: \(result.stderr)")
            arguments[1] = "127.0.0.1:\(broker.port),"
            let usage = try await runCLI("relay-pub", arguments + ["--topic", "cli.failover", "--message", "x"], timeout: 15)
            #expect(usage.status == 64, "stderr: \(usage.stderr)")
        }
    }
}
