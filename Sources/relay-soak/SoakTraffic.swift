import Foundation
import NIOConcurrencyHelpers
import RelayClient

/// Totals shared by every connection's work.
final class SoakCounters: Sendable {
    let published = NIOLockedValueBox(0)
    let refused = NIOLockedValueBox(0)
    let delivered = NIOLockedValueBox(0)
    let connectFailures = NIOLockedValueBox(0)
    let lastError = NIOLockedValueBox("")

    func add(_ box: NIOLockedValueBox<Int>, _ n: Int = 1) { box.withLockedValue { $0 += n } }
    func value(_ box: NIOLockedValueBox<Int>) -> Int { box.withLockedValue { $0 } }
    func fail(_ error: any Error) {
        add(refused)
        lastError.withLockedValue { $0 = "\(error)" }
    }
}

/// A durable subscription and the highest sequence it was given (acked by a sweep).
final class DurableReader: Sendable {
    let seen = NIOLockedValueBox<UInt64>(0)
    let handle = NIOLockedValueBox<SubscriptionHandle?>(nil)

    func ackSeen() {
        let upTo = seen.withLockedValue { $0 }
        if upTo > 0, let handle = handle.withLockedValue({ $0 }) { handle.ack(upTo: upTo) }
    }
}

/// The long-lived connections: half publishers, a quarter ephemeral
/// subscribers (a few on `soak.>`), a quarter durable subscribers that ack.
final class Fleet: @unchecked Sendable {
    // @unchecked: the arrays are filled by `connect` before any concurrent use and only read after.
    let configuration: RelayClientConfiguration
    let topics: Int
    let counters: SoakCounters
    private(set) var connections: [RelayConnection] = []
    private(set) var publishers: [(Publisher, String)] = []
    private(set) var durables: [DurableReader] = []

    init(configuration: RelayClientConfiguration, topics: Int, counters: SoakCounters) {
        self.configuration = configuration
        self.topics = topics
        self.counters = counters
    }

    /// Opens `count` connections, `concurrency` handshakes at a time.
    func connect(count: Int, concurrency: Int) async throws {
        let configuration = self.configuration, counters = self.counters, topics = self.topics
        try await withThrowingTaskGroup(of: (Int, RelayConnection, SubscriptionHandle?, DurableReader?).self) { group in
            var next = 0
            func launch() {
                let index = next
                next += 1
                group.addTask {
                    let connection = try await RelayConnection.connect(configuration)
                    let subscriber = Subscriber(connection: connection)
                    switch index % 4 {
                    case 2:
                        let filter = index % 500 == 2 ? "soak.>" : "soak.t\(index / 4 % topics)"
                        let handle = try await subscriber.subscribe(filter: filter, from: .latest, window: 1024,
                                                                    onMessage: { _ in counters.add(counters.delivered) })
                        return (index, connection, handle, nil)
                    case 3:
                        let reader = DurableReader()
                        let handle = try await subscriber.subscribe(
                            filter: "soak.t\(index / 4 % topics)", from: .latest, durable: "soak-d\(index)", window: 1024,
                            onMessage: { message in
                                counters.add(counters.delivered)
                                reader.seen.withLockedValue { $0 = max($0, message.sequence) }
                            })
                        reader.handle.withLockedValue { $0 = handle }
                        return (index, connection, handle, reader)
                    default:
                        return (index, connection, nil, nil)
                    }
                }
            }
            while next < min(concurrency, count) { launch() }
            while let (index, connection, _, reader) = try await group.next() {
                connections.append(connection)
                if let reader { durables.append(reader) }
                if index % 4 < 2 { publishers.append((Publisher(connection: connection), "soak.t\(index / 4 % topics)")) }
                if next < count { launch() }
                if connections.count % 500 == 0 { print("  \(connections.count) connections open") }
            }
        }
    }

    /// Publishers send 1–4 messages of 64–512 bytes every 0.5–1.5 s until
    /// `deadline`; durable subscribers ack what they got every 2 s.
    func run(until deadline: Date) async {
        let counters = self.counters
        await withTaskGroup(of: Void.self) { group in
            for (publisher, topic) in publishers {
                group.addTask {
                    var n = 0
                    while Date() < deadline {
                        try? await Task.sleep(nanoseconds: UInt64.random(in: 500_000_000...1_500_000_000))
                        let batch = (0..<Int.random(in: 1...4)).map { _ in
                            OutgoingMessage(topic: topic, payload: [UInt8](repeating: UInt8(truncatingIfNeeded: n), count: Int.random(in: 64...512)))
                        }
                        n += 1
                        for result in await publisher.publish(batch: batch) {
                            switch result {
                            case .success: counters.add(counters.published)
                            case .failure(let error): counters.fail(error)
                            }
                        }
                    }
                }
            }
            let durables = self.durables
            group.addTask {
                while Date() < deadline {
                    try? await Task.sleep(nanoseconds: 2_000_000_000)
                    for reader in durables { reader.ackSeen() }
                }
            }
        }
    }

    func close() async {
        for reader in durables { reader.ackSeen() }
        await withTaskGroup(of: Void.self) { group in
            for connection in connections { group.addTask { await connection.close() } }
        }
        connections.removeAll()
        publishers.removeAll()
        durables.removeAll()
    }
}

/// `count` connect → TLS handshake → HELLO/WELCOME → close cycles, `concurrency` at a time.
func connectCycles(_ count: Int, concurrency: Int, configuration: RelayClientConfiguration, counters: SoakCounters) async {
    await withTaskGroup(of: Void.self) { group in
        var started = 0
        func launch() {
            started += 1
            group.addTask {
                do {
                    let connection = try await RelayConnection.connect(configuration)
                    await connection.close()
                } catch {
                    counters.add(counters.connectFailures)
                    counters.lastError.withLockedValue { $0 = "\(error)" }
                }
            }
        }
        while started < min(concurrency, count) { launch() }
        var done = 0
        while await group.next() != nil {
            done += 1
            if started < count { launch() }
            if done % 2_000 == 0 { print("  \(done) cycles") }
        }
    }
}
