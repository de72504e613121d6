import Foundation
import RelayClient
import RelayTestSupport

/// The client library's side of the cluster tests: a connection configured
/// with every edge, publishing in numbered bursts, reading until a sequence.

extension RelaydFixture {
    /// A RelayClient configuration (alice) listing `edges` in order, with
    /// fast reconnects: the library moves to the next edge by itself.
    func clusterClientConfiguration(edges: [RelaydFixture]) -> RelayClientConfiguration {
        var configuration = RelayClientConfiguration(host: "127.0.0.1", port: port, certificatePath: pki.alice.certificate,
                                                     privateKeyPath: pki.alice.key, caPath: pki.ca.certificate)
        configuration.servers = edges.map { ServerAddress(host: "127.0.0.1", port: $0.port) }
        configuration.reconnect = ReconnectPolicy(initialDelay: .milliseconds(20), maximumDelay: .milliseconds(500))
        configuration.clientName = "cluster-tests"
        return configuration
    }
}

/// What a burst of library publishes got: sequences by payload number
/// (`p<n>`), errors by payload number, and how many receipts were duplicates
/// (a retry through another edge of a publish the first one had stored).
struct LibraryPublishOutcome {
    var acked: [UInt64: UInt64] = [:]
    var failed: [UInt64: String] = [:]
    var duplicates = 0

    mutating func record(_ number: UInt64, _ result: Result<PublishReceipt, RelayClientError>) {
        switch result {
        case .success(let receipt):
            acked[number] = receipt.sequence
            if receipt.duplicate { duplicates += 1 }
        case .failure(let error):
            failed[number] = error.description
        }
    }
}

extension Publisher {
    /// Publishes `p<n>` for every n in `numbers` on `topic` in one hand-over
    /// and waits for every answer (the library retries across reconnects).
    func publishNumbered(_ topic: String, _ numbers: ClosedRange<UInt64>) async -> LibraryPublishOutcome {
        let results = await publish(batch: numbers.map { OutgoingMessage(topic: topic, text: "p\($0)") })
        var outcome = LibraryPublishOutcome()
        for (number, result) in zip(numbers, results) { outcome.record(number, result) }
        return outcome
    }
}

/// Takes messages from `subscription` until one with sequence >= `last`
/// arrived, acknowledging each when `ack` (a durable consumer that processed
/// it); throws when `timeout` seconds pass first.
func receive(_ subscription: RelaySubscription, through last: UInt64, ack: Bool = false,
             timeout: Double = 30) async throws -> [(sequence: UInt64, text: String)] {
    try await withThrowingTaskGroup(of: [(sequence: UInt64, text: String)].self) { group in
        group.addTask {
            var out: [(sequence: UInt64, text: String)] = []
            for try await message in subscription {
                out.append((message.sequence, message.text ?? "<binary>"))
                if ack { subscription.ack(message) }
                if message.sequence >= last { return out }
            }
            throw BrokerTestError.refused("the subscription ended after \(out.count) messages, waiting for sequence \(last)")
        }
        group.addTask {
            try await Task.sleep(nanoseconds: UInt64(timeout * 1_000_000_000))
            throw BrokerTestError.refused("sequence \(last) did not arrive within \(timeout) s")
        }
        defer { group.cancelAll() }
        guard let first = try await group.next() else { return [] }
        return first
    }
}

extension Publisher {
    /// Hands over `p<n>` for every n in `numbers` at once and returns at once;
    /// the task completes with every answer (the library retries across
    /// reconnects, so the caller may kill the edge meanwhile).
    func publishNumberedBurst(_ topic: String, _ numbers: ClosedRange<UInt64>) -> Task<LibraryPublishOutcome, Never> {
        let (answers, answerSink) = AsyncStream<(UInt64, Result<PublishReceipt, RelayClientError>)>.makeStream()
        for number in numbers {
            publish(topic: topic, payload: ByteBuffer(string: "p\(number)")) { answerSink.yield((number, $0)) }
        }
        let expected = numbers.count
        return Task {
            var outcome = LibraryPublishOutcome()
            var answered = 0
            for await (number, result) in answers {
                answered += 1
                outcome.record(number, result)
                if answered == expected { break }
            }
            return outcome
        }
    }
}
