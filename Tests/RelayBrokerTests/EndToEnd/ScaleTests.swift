import Foundation
import NIOCore
import RelayTestSupport
import RelayWire
import Testing

/// Many connections at once, and a subscriber that stops reading while a
/// million messages flow: the broker keeps every message and bounded memory.
@Suite("relayd end to end: scale and slow subscribers", .serialized)
struct ScaleTests {
    @Test("1,000 concurrent connections each subscribe and publish; every message reaches exactly its subscriber")
    func thousandConnections() async throws {
        try await withRelayd { relayd in
            let count = 1_000
            // Connect in waves so the test's own handshakes do not time out on a 2-core machine.
            var clients: [FrameClient] = []
            for wave in stride(from: 0, to: count, by: 100) {
                let connected = try await withThrowingTaskGroup(of: (Int, FrameClient).self) { group in
                    for i in wave..<min(wave + 100, count) {
                        group.addTask {
                            let client = try await FrameClient.connect(port: relayd.port, pki: relayd.pki)
                            try await client.hello()
                            return (i, client)
                        }
                    }
                    return try await group.reduce(into: [(Int, FrameClient)]()) { $0.append($1) }
                }
                clients += connected.sorted { $0.0 < $1.0 }.map(\.1)
            }
            #expect(clients.count == count)

            // Connection i listens on scale.<i> and publishes to its neighbour's topic.
            try await withThrowingTaskGroup(of: Void.self) { group in
                for (i, client) in clients.enumerated() {
                    group.addTask {
                        let ack = try await client.subscribe(1, "scale.\(i)", from: .latest)
                        #expect(ack.isAccepted)
                    }
                }
                try await group.waitForAll()
            }
            let acked = try await withThrowingTaskGroup(of: Int.self) { group in
                for (i, client) in clients.enumerated() {
                    group.addTask {
                        let acks = try await client.publish("scale.\((i + 1) % count)", count: 1, payload: { _ in "from \(i)" })
                        return acks.count
                    }
                }
                return try await group.reduce(0, +)
            }
            #expect(acked == count)
            let received = try await withThrowingTaskGroup(of: Bool.self) { group in
                for (i, client) in clients.enumerated() {
                    group.addTask {
                        let got = try await client.messages(1, timeout: .seconds(60))
                        let sender = (i + count - 1) % count
                        return got.count == 1 && got[0].topic == "scale.\(i)" && payloadString(got[0]) == "from \(sender)"
                    }
                }
                return try await group.reduce(0) { $0 + ($1 ? 1 : 0) }
            }
            #expect(received == count, "\(count - received) connections did not get their neighbour's message")
            for client in clients { await client.close() }
        }
    }

    @Test("a subscriber stops reading while 1,000,000 messages flow: broker RSS grows < 100 MB, then every message arrives in order")
    func slowSubscriber() async throws {
        try await withRelayd(extra: """
        [limits]
        subscription_buffer = 8192
        # The subscriber stops reading for the whole run (~45 s here), longer
        # than the default stall limit that would close it with write_stalled.
        write_stall_timeout = "10m"
        """) { relayd in
            let pid = try #require(relayd.process?.pid)

            let subscriber = try await FrameClient.connect(port: relayd.port, pki: relayd.pki)
            try await subscriber.hello()
            let total = 1_000_000
            #expect(try await subscriber.subscribe(1, "slow.>", from: .latest, credit: UInt32(total)).isAccepted)
            try await subscriber.pauseReading()
            let baseline = try #require(ProcessMemory.residentBytes(pid: pid))

            // Publish from two connections, pipelined in batches within max_in_flight.
            let publishers = [try await FrameClient.connect(port: relayd.port, pki: relayd.pki),
                              try await FrameClient.connect(port: relayd.port, pki: relayd.pki)]
            for publisher in publishers { try await publisher.hello() }
            let peak = PeakSampler(pid: pid)
            let sampling = Task { await peak.run() }
            try await withThrowingTaskGroup(of: Void.self) { group in
                for (p, publisher) in publishers.enumerated() {
                    group.addTask {
                        let perPublisher = total / publishers.count
                        var published = 0
                        while published < perPublisher {
                            let batch = min(4_000, perPublisher - published)
                            let acks = try await publisher.publish("slow.p\(p)", count: batch, firstID: UInt64(published + 1),
                                                                   payload: { "p\(p)-\(published + $0)" })
                            guard acks.count == batch else { throw BrokerTestError.refused("short ack batch") }
                            published += batch
                        }
                    }
                }
                try await group.waitForAll()
            }
            sampling.cancel()
            let peakBytes = max(await peak.peak, ProcessMemory.residentBytes(pid: pid) ?? 0)
            let growth = peakBytes - baseline
            print("slow subscriber: relayd RSS baseline \(baseline >> 20) MiB, peak \(peakBytes >> 20) MiB, growth \(growth >> 20) MiB over \(total) messages")
            #expect(growth < 100 << 20, "relayd grew by \(growth >> 20) MiB")

            // Reading again: every message, in commit order, none twice.
            try await subscriber.resumeReading()
            var next: [String: Int] = ["slow.p0": 0, "slow.p1": 0]
            var lastSequence: UInt64 = 0
            var received = 0
            var inOrder = true
            while received < total {
                guard let frame = try await subscriber.next(timeout: .seconds(60)) else { break }
                guard case .message(let message) = frame else { continue }
                let expected = "\(message.topic == "slow.p0" ? "p0" : "p1")-\(next[message.topic] ?? -1)"
                if message.sequence <= lastSequence || payloadString(message) != expected { inOrder = false }
                next[message.topic, default: 0] += 1
                lastSequence = message.sequence
                received += 1
            }
            #expect(received == total)
            #expect(inOrder, "a message arrived out of order, twice, or not at all")
            #expect(try await subscriber.expectSilence())
            for publisher in publishers { await publisher.close() }
            await subscriber.close()
        }
    }
}

/// Samples a process's RSS every 50 ms and keeps the highest value.
actor PeakSampler {
    let pid: Int32
    private(set) var peak = 0
    init(pid: Int32) { self.pid = pid }
    func run() async {
        while !Task.isCancelled {
            peak = max(peak, ProcessMemory.residentBytes(pid: pid) ?? 0)
            try? await Task.sleep(nanoseconds: 50_000_000)
        }
    }
}
