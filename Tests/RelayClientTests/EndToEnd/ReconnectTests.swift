import Foundation
import RelayClient
import RelayTestSupport
import Testing

@Suite("Reconnect and resume")
struct ReconnectTests {
    /// A publish is sent again after a reconnect when its PUBACK had not
    /// arrived (`RelayConnection.resentPublishes` counts them). A kill that
    /// lands between two of the publisher's batches finds nothing in flight,
    /// so the broker is killed again, further on in the stream, until a resend
    /// happened, at most `maximumKills` times. A resent publish comes back as
    /// a duplicate only when the dead broker had committed it and its PUBACK
    /// was lost with the connection; where the SIGKILL lands decides that (one
    /// run saw 256 such receipts, most see none), so duplicates are checked
    /// for consistency, not required (the idempotent-retry tests of issue 15 force that case).
    static let maximumKills = 10

    @Test("relayd killed with SIGKILL mid-stream and restarted (until publishes were resent): 100,000 publishes arrive exactly once, in order, for ephemeral and durable subscribers")
    func killDuringStream() async throws {
        try await withBroker { broker in
            let total = 100_000
            let ephemeral = try await Subscriber.connect(broker.clientConfiguration())
            let live = try await ephemeral.subscribe(filter: "stream.>", from: .latest)
            let durableConnection = try await Subscriber.connect(broker.clientConfiguration())
            let durable = try await durableConnection.subscribe(filter: "stream.>", from: .latest, durable: "kill-test")
            let publisher = try await Publisher.connect(broker.clientConfiguration())
            let states = Recorder()
            let watch = Task { for await state in publisher.connection.states { states.add(state) } }

            let liveProgress = Counter(), durableProgress = Counter()
            async let liveIndices = collect(total, from: live, progress: liveProgress, acknowledge: false)
            async let durableIndices = collect(total, from: durable, progress: durableProgress, acknowledge: true)

            let publishing = Task { () -> (receipts: [PublishReceipt], failures: [String]) in
                var receipts: [PublishReceipt] = []
                var failures: [String] = []
                for chunk in stride(from: 0, to: total, by: 2000) {
                    let batch = (chunk..<min(chunk + 2000, total)).map { OutgoingMessage(topic: "stream.data", text: "\($0)") }
                    for result in await publisher.publish(batch: batch) {
                        switch result {
                        case .success(let receipt): receipts.append(receipt)
                        case .failure(let error): failures.append(error.message)
                        }
                    }
                }
                return (receipts, failures)
            }
            // Kill the broker once the subscribers are well into the stream, then every
            // 5,000 messages until publishes were resent. Polled: progress is a count
            // the subscribers keep, with no event to wait on.
            var kills = 0
            for killAt in stride(from: 30_000, through: total - 10_000, by: 5_000) where kills < Self.maximumKills {
                _ = await eventually(timeout: 60, every: 0.005) { liveProgress.value >= killAt }
                if kills > 0, await publisher.connection.resentPublishes > 0 { break }
                try await broker.restart()
                kills += 1
            }

            let outcome = await publishing.value
            #expect(outcome.failures.isEmpty, "publish failures: \(outcome.failures.prefix(3))")
            #expect(outcome.receipts.count == total)
            let (liveResult, liveSequences) = try await liveIndices
            let (durableResult, _) = try await durableIndices
            #expect(liveResult == Array(0..<total), "ephemeral: \(liveResult.count) messages, first gap at \(firstMismatch(liveResult))")
            #expect(durableResult == Array(0..<total), "durable: \(durableResult.count) messages, first gap at \(firstMismatch(durableResult))")
            // Every receipt names the one stored copy the subscriber saw, in publish
            // order: a resend the broker stored again would add a sequence no receipt
            // names (or two receipts naming different copies of one message).
            let receiptSequences = outcome.receipts.map(\.sequence)
            let mismatch = zip(receiptSequences, liveSequences).enumerated().first { $0.element.0 != $0.element.1 }
            #expect(receiptSequences.count == liveSequences.count && mismatch == nil,
                    "the receipts' sequences are not the stored messages' sequences: publish \(mismatch?.offset ?? -1) has receipt \(mismatch?.element.0 ?? 0), the subscriber got it as \(mismatch?.element.1 ?? 0)")
            // The resend happened: the publisher had unanswered publishes when the
            // broker died and resent them with the same ids; those the dead broker
            // had already committed came back as duplicates, naming the copy stored
            // before the kill (a sequence below the first one the new broker gave).
            // The resend happened, and cannot explain more duplicates than it sent.
            let resent = await publisher.connection.resentPublishes
            let duplicates = outcome.receipts.filter(\.duplicate).count
            print("reconnect: \(resent) publishes resent after \(kills) SIGKILLs, \(duplicates) came back as duplicates")
            #expect(resent > 0, "no publish was in flight at any of \(kills) kills: nothing was resent")
            #expect(duplicates <= resent, "\(duplicates) duplicate receipts, but only \(resent) publishes were resent")
            let disconnected = states.all.contains { if case .disconnected = $0 { return true } else { return false } }
            #expect(disconnected)
            watch.cancel()
            await publisher.close()
            await ephemeral.connection.close()
            await durableConnection.connection.close()
        }
    }

    @Test("with reconnect off, a killed broker fails pending work and closes the connection with a connection error")
    func noReconnect() async throws {
        try await withBroker { broker in
            let publisher = try await Publisher.connect(broker.clientConfiguration(reconnect: .never))
            _ = try await publisher.publish(topic: "a.b", text: "one")
            await broker.kill()
            var finalState: ConnectionState?
            for await state in publisher.connection.states where state.isFinal { finalState = state; break }
            guard case .closed(let error?) = finalState else {
                Issue.record("expected closed with an error, got \(String(describing: finalState))")
                return
            }
            #expect(error.category == .connection)
            // throws(RelayClientError): a do-catch inside a closure does not infer the typed error.
            do throws(RelayClientError) {
                _ = try await publisher.publish(topic: "a.b", text: "two")
                Issue.record("publish after the close succeeded")
            } catch {
                #expect(error.category == .connection)
            }
        }
    }
}

/// Reads `total` messages whose payloads are decimal indices: the indices and the sequences, in arrival order.
private func collect(_ total: Int, from subscription: RelaySubscription, progress: Counter,
                     acknowledge: Bool) async throws -> (indices: [Int], sequences: [UInt64]) {
    try await withThrowingTaskGroup(of: ([Int], [UInt64]).self) { group in
        group.addTask {
            var indices: [Int] = [], sequences: [UInt64] = []
            indices.reserveCapacity(total)
            sequences.reserveCapacity(total)
            for try await message in subscription {
                indices.append(Int(message.text ?? "") ?? -1)
                sequences.append(message.sequence)
                progress.increment()
                if acknowledge, indices.count % 100 == 0 { subscription.ack(message) }
                if indices.count == total { break }
            }
            return (indices, sequences)
        }
        group.addTask {
            try await Task.sleep(nanoseconds: 150_000_000_000)
            return ([], [])
        }
        defer { group.cancelAll() }
        return try await group.next() ?? ([], [])
    }
}

private func firstMismatch(_ values: [Int]) -> Int {
    for (i, v) in values.enumerated() where v != i { return i }
    return values.count
}

final class Recorder: @unchecked Sendable {
    private let lock = NSLock()
    private var states: [ConnectionState] = []
    func add(_ state: ConnectionState) { lock.lock(); states.append(state); lock.unlock() }
    var all: [ConnectionState] { lock.lock(); defer { lock.unlock() }; return states }
}
