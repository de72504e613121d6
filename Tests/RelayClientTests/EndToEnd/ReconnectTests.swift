import Foundation
import RelayClient
import RelayTestSupport
import Testing

@Suite("Reconnect and resume")
struct ReconnectTests {
    @Test("relayd killed with SIGKILL mid-stream and restarted: 100,000 publishes arrive exactly once, in order, for ephemeral and durable subscribers")
    func killDuringStream() async throws {
        let broker = try await startBroker()
        defer { Task { await broker.stop() } }
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

        let publishing = Task { () -> (ok: Int, duplicates: Int, failures: [String]) in
            var ok = 0, duplicates = 0
            var failures: [String] = []
            for chunk in stride(from: 0, to: total, by: 2000) {
                let batch = (chunk..<min(chunk + 2000, total)).map { OutgoingMessage(topic: "stream.data", text: "\($0)") }
                for result in await publisher.publish(batch: batch) {
                    switch result {
                    case .success(let receipt):
                        ok += 1
                        if receipt.duplicate { duplicates += 1 }
                    case .failure(let error): failures.append(error.message)
                    }
                }
            }
            return (ok, duplicates, failures)
        }
        // Kill the broker once the subscribers are well into the stream.
        let deadline = Date().addingTimeInterval(60)
        while liveProgress.value < 30_000, Date() < deadline { try await Task.sleep(nanoseconds: 5_000_000) }
        try await broker.restart()

        let outcome = await publishing.value
        #expect(outcome.failures.isEmpty, "publish failures: \(outcome.failures.prefix(3))")
        #expect(outcome.ok == total)
        let liveResult = try await liveIndices
        let durableResult = try await durableIndices
        #expect(liveResult == Array(0..<total), "ephemeral: \(liveResult.count) messages, first gap at \(firstMismatch(liveResult))")
        #expect(durableResult == Array(0..<total), "durable: \(durableResult.count) messages, first gap at \(firstMismatch(durableResult))")
        #expect(states.all.contains { if case .disconnected = $0 { return true } else { return false } })
        watch.cancel()
        await publisher.close()
        await ephemeral.connection.close()
        await durableConnection.connection.close()
    }

    @Test("with reconnect off, a killed broker fails pending work and closes the connection with a connection error")
    func noReconnect() async throws {
        let broker = try await startBroker()
        defer { Task { await broker.stop() } }
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
        do {
            _ = try await publisher.publish(topic: "a.b", text: "two")
            Issue.record("publish after the close succeeded")
        } catch {
            #expect(error.category == .connection)
        }
    }
}

/// Reads `total` messages whose payloads are decimal indices.
private func collect(_ total: Int, from subscription: RelaySubscription, progress: Counter, acknowledge: Bool) async throws -> [Int] {
    var out: [Int] = []
    out.reserveCapacity(total)
    let messages = try await withThrowingTaskGroup(of: [Int].self) { group in
        group.addTask {
            var local: [Int] = []
            local.reserveCapacity(total)
            for try await message in subscription {
                local.append(Int(message.text ?? "") ?? -1)
                progress.increment()
                if acknowledge, local.count % 100 == 0 { subscription.ack(message) }
                if local.count == total { break }
            }
            return local
        }
        group.addTask {
            try await Task.sleep(nanoseconds: 150_000_000_000)
            return []
        }
        defer { group.cancelAll() }
        return try await group.next() ?? []
    }
    out.append(contentsOf: messages)
    return out
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
