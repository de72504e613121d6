import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import RelayCore
import RelayTestSupport
import RelayWire
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Abusive clients against the real relayd while a legitimate publisher and
/// subscriber keep working; each test prints the legitimate client's
/// publish→PUBACK latency during the abuse (never asserted: CI speed varies).
@Suite("relayd end to end: legitimate clients keep working under abuse", .serialized)
struct AbuseTests {
    @Test("1,000 half-open TCP connections that never finish the TLS handshake: others connect and publish; relayd reaps them")
    func halfOpenConnections() async throws {
        let count = try Self.connectionBudget(wanted: 1_000)
        // Per-address and pre-auth limits raised: this measures the handshake timeout, all from 127.0.0.1.
        try await withRelayd(extra: "[limits]\nmax_connections = 5000\nmax_preauth_connections = 5000\nmax_preauth_per_address = 5000", start: false) { relayd in
            // 30 s: opening 1,000 sockets and the measurement take well under that even
            // when the machine is busy with other tests (15 s was not always enough).
            let handshakeTimeout: TimeInterval = 30
            try relayd.replaceInConfig("handshake_timeout = \"10s\"", with: "handshake_timeout = \"30s\"")
            try await relayd.start()
            let legit = try await LegitClient.connect(relayd)

            // Half send nothing, half a TLS record header and the start of a ClientHello that never completes.
            let partialHello: [UInt8] = [0x16, 0x03, 0x01, 0x00, 0xC8, 0x01, 0x00, 0x00, 0xC4, 0x03, 0x03, 0x5A, 0x5A]
            let bootstrap = ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            var sockets: [any Channel] = []
            for chunk in stride(from: 0, to: count, by: 100) {
                let connecting = (chunk..<min(chunk + 100, count)).map { _ in bootstrap.connect(host: "127.0.0.1", port: relayd.port) }
                for (offset, future) in connecting.enumerated() {
                    let channel = try await future.get()
                    if (chunk + offset) % 2 == 0 { try await channel.writeAndFlush(channel.allocator.buffer(bytes: partialHello)) }
                    sockets.append(channel)
                }
            }
            let lastOpened = Date()
            // A new legitimate connection completes its handshake and HELLO among them.
            let latecomer = try await FrameClient.connect(port: relayd.port, pki: relayd.pki)
            try await latecomer.hello()
            let latencies = try await legit.exercise(200)
            let stillOpen = sockets.filter(\.isActive).count
            report("\(count) half-open connections (\(stillOpen) still open after the measurement)", latencies)
            #expect(stillOpen > count / 2, "the abuse was over before the measurement ended; the numbers measure nothing")
            #expect(relayd.process?.isRunning == true)

            // relayd closes every one of them at the handshake timeout (polled: no event says "reaped").
            let deadline = lastOpened.addingTimeInterval(handshakeTimeout + 15)
            while sockets.contains(where: \.isActive), Date() < deadline { try await Task.sleep(nanoseconds: 100_000_000) }
            #expect(sockets.filter(\.isActive).isEmpty, "\(sockets.filter(\.isActive).count) half-open connections were never closed by relayd")
            _ = try await legit.exercise(20)
            for socket in sockets { try? await socket.close() }
            await latecomer.close()
            await legit.close()
        }
    }

    @Test("frames claiming 4 GiB, 2 GiB and max_frame_size+1 close only their connection with frame_too_large; relayd's memory does not jump")
    func hugeLengthPrefixes() async throws {
        try await withRelayd { relayd in
            let pid = try #require(relayd.process?.pid)
            let legit = try await LegitClient.connect(relayd)
            _ = try await legit.exercise(50)  // warm up, then take the baseline
            let before = try ProcStatus(pid: pid)
            let measuring = Task { try await legit.exercise(300) }
            var rounds = 0
            for round in 0..<60 {
                let length: UInt32 = [0xFFFF_FFFF, 0x8000_0000, 1_114_113][round % 3]
                let liar = try await FrameClient.connect(port: relayd.port, pki: relayd.pki)
                try await liar.hello()
                let prefix = [UInt8(length >> 24), UInt8((length >> 16) & 0xFF), UInt8((length >> 8) & 0xFF), UInt8(length & 0xFF)]
                try await liar.sendRaw(prefix + [0x10, 0x00] + [UInt8](repeating: 0x41, count: 64))
                #expect(try await closingCode(liar) == .frameTooLarge, "a \(length)-byte frame was not refused with frame_too_large")
                rounds += 1
            }
            let latencies = try await measuring.value
            let after = try ProcStatus(pid: pid)
            report("\(rounds) connections sending 4 GiB / 2 GiB / 1 MiB+1 length prefixes", latencies)
            print("relayd memory: VmRSS \(before.rssKiB) → \(after.rssKiB) KiB, RssAnon \(before.anonKiB) → \(after.anonKiB) KiB, VmPeak \(before.peakKiB) → \(after.peakKiB) KiB")
            #expect(after.rssKiB - before.rssKiB < 64 << 10, "relayd's RSS grew by \(after.rssKiB - before.rssKiB) KiB")
            // A 4 GiB buffer would show as virtual size even if never touched.
            #expect(after.peakKiB - before.peakKiB < 1 << 20, "relayd's peak virtual size grew by \(after.peakKiB - before.peakKiB) KiB")
            await legit.close()
        }
    }

    @Test("SUB floods beyond max_subscriptions are refused with too_many_subscriptions; a repeated HELLO closes only that connection")
    func helloAndSubscribeFloods() async throws {
        try await withRelayd(extra: "[limits]\nmax_subscriptions = 100") { relayd in
            let legit = try await LegitClient.connect(relayd)
            let measuring = Task { try await legit.exercise(300) }

            var refusedTotal = 0
            for flooder in 0..<8 {
                let client = try await FrameClient.connect(port: relayd.port, pki: relayd.pki)
                try await client.hello()
                var buffer = client.channel.allocator.buffer(capacity: 2_000 * 32)
                for id in 1...UInt32(2_000) {
                    try buffer.writeFrame(.subscribe(Subscribe(subscriptionID: id, filter: "flood.\(flooder).\(id)", start: .latest,
                                                               durableName: "", initialCredit: 0)))
                }
                try await client.channel.writeAndFlush(buffer)
                var accepted = 0, refused = 0
                while accepted + refused < 2_000 {
                    guard case .subscribeAck(let ack) = try await client.next(timeout: .seconds(30)) else {
                        Issue.record("the flooding connection got something other than SUBACK")
                        break
                    }
                    if ack.isAccepted { accepted += 1 } else {
                        refused += 1
                        #expect(ack.errorCode == .tooManySubscriptions)
                    }
                }
                #expect(accepted == 100 && refused == 1_900)
                refusedTotal += refused
                // The connection itself is fine.
                try await client.send(.ping(token: 1))
                let pong = try await client.nextReply { if case .pong = $0 { return true }; return false }
                #expect(pong != nil)
                await client.close()
            }
            for _ in 0..<20 {
                let client = try await FrameClient.connect(port: relayd.port, pki: relayd.pki)
                let hello = Frame.hello(Hello(maxFrameSize: 64 << 20, sessionID: .none, clientName: "hello-flood"))
                var buffer = client.channel.allocator.buffer(capacity: 64 * 1_000)
                for _ in 0..<1_000 { try buffer.writeFrame(hello) }
                try await client.channel.writeAndFlush(buffer)
                guard case .welcome = try await client.next() else {
                    Issue.record("the first HELLO of the flood was not welcomed")
                    continue
                }
                #expect(try await closingCode(client) == .protocolViolation)
            }
            let latencies = try await measuring.value
            report("8 × 2,000 SUB (\(refusedTotal) refused) and 20 × 1,000 HELLO", latencies)
            #expect(relayd.process?.isRunning == true)
            await legit.close()
        }
    }

    @Test("a subscriber that stops reading until its TCP window is full: relayd's memory stays bounded, other clients are unaffected, it catches up later")
    func stalledSubscriber() async throws {
        // write_stall_timeout 600 s, not the default 30 s: the subscriber reads
        // nothing while 40 MiB flows, and in one clean-clone CI run that took
        // longer than 30 s, so relayd closed it write_stalled as it should
        // (WriteStallTests holds that limit) and the catch-up found no connection.
        try await withRelayd(extra: "[limits]\nsubscription_buffer = 1024\nwrite_stall_timeout = \"600s\"") { relayd in
            let pid = try #require(relayd.process?.pid)
            let legit = try await LegitClient.connect(relayd)
            let stalled = try await FrameClient.connect(port: relayd.port, pki: relayd.pki)
            try await stalled.hello()
            #expect(try await stalled.subscribe(1, "bulk.>", from: .latest, credit: 1_000_000).isAccepted)
            try await stalled.channel.setOption(.autoRead, value: false).get()
            let reader = try await FrameClient.connect(port: relayd.port, pki: relayd.pki)
            try await reader.hello()
            #expect(try await reader.subscribe(1, "bulk.>", from: .latest, credit: 1_000_000).isAccepted)
            _ = try await legit.exercise(50)
            let before = try ProcStatus(pid: pid)

            // 40 MiB for a subscriber that reads nothing.
            let measuring = Task { try await legit.exercise(300) }
            let bulk = try await FrameClient.connect(port: relayd.port, pki: relayd.pki)
            try await bulk.hello()
            let body = String(repeating: "b", count: 1_024)
            let total = 40_960
            var sequences: [UInt64] = []
            var middle: ProcStatus?
            for round in 0..<(total / 1_024) {
                if round == total / 2_048 { middle = try ProcStatus(pid: pid) }
                let acks = try await bulk.publish("bulk.data", count: 1_024, firstID: UInt64(round * 1_024)) { _ in body }
                sequences += acks.map(\.sequence)
                // The healthy subscriber keeps pace, so its own backlog is not what we measure.
                #expect(try await reader.messages(1_024).map(\.sequence) == acks.map(\.sequence))
            }
            let latencies = try await measuring.value
            let after = try ProcStatus(pid: pid)
            report("a subscriber not reading while 40 MiB flowed to it", latencies)
            let half = middle ?? before
            print("relayd memory: RssAnon \(before.anonKiB) → \(half.anonKiB) (20 MiB in) → \(after.anonKiB) KiB (heap; the store's mapped pages are RssFile), VmRSS \(before.rssKiB) → \(after.rssKiB) KiB")
            // Bounded: far less than the 40 MiB it could not deliver.
            #expect(after.anonKiB - before.anonKiB < 20 << 10, "relayd's heap grew by \(after.anonKiB - before.anonKiB) KiB for a stalled subscriber")
            // And it stopped growing: the second 20 MiB added little.
            #expect(after.anonKiB - half.anonKiB < 6 << 10, "relayd's heap kept growing: \(half.anonKiB) → \(after.anonKiB) KiB over the second 20 MiB")

            // Once it reads again it gets everything, in order, from the store.
            try await stalled.channel.setOption(.autoRead, value: true).get()
            stalled.channel.read()
            let caughtUp = try await stalled.messages(total, timeout: .seconds(30))
            #expect(caughtUp.map(\.sequence) == sequences)
            await stalled.close(); await reader.close(); await bulk.close(); await legit.close()
        }
    }

    // MARK: Helpers

    /// Raises the soft open-file limit up to the hard one when `wanted`
    /// connections (plus 512 for relayd's and the test's other files) need it
    /// (relayd inherits it). Fails, rather than quietly opening fewer, when the
    /// hard limit is too low: the test's title promises `wanted`.
    static func connectionBudget(wanted: Int) throws -> Int {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { throw BrokerTestError.refused("getrlimit failed") }
        let needed = rlim_t(wanted + 512)
        if limit.rlim_cur < needed, limit.rlim_cur < limit.rlim_max {
            limit.rlim_cur = min(needed, limit.rlim_max)
            _ = setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
            _ = getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        }
        print("ulimit -n: soft \(limit.rlim_cur), hard \(limit.rlim_max); opening \(wanted) half-open connections")
        try #require(limit.rlim_cur >= needed,
                     "the open-file limit (soft \(limit.rlim_cur), hard \(limit.rlim_max)) is below the \(needed) this test needs; raise it (ulimit -Hn)")
        return wanted
    }

    /// Reads until the connection closes; the ERR code it closed with.
    func closingCode(_ client: FrameClient) async throws -> RelayErrorCode? {
        var seen: RelayErrorCode?
        while let frame = try await client.next(timeout: .seconds(20)) {
            if case .error(let error) = frame { seen = error.errorCode }
        }
        return seen
    }

    func report(_ abuse: String, _ latencies: [Double]) {
        let sorted = latencies.sorted()
        func percentile(_ p: Double) -> Double { sorted.isEmpty ? 0 : sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))] }
        print(String(format: "legit publish→ack during %@: %d publishes, p50 %.2f ms, p99 %.2f ms, max %.2f ms",
                     abuse, sorted.count, percentile(0.5), percentile(0.99), sorted.last ?? 0))
    }
}

/// A well-behaved publisher and a subscriber on its topic.
private final class LegitClient: @unchecked Sendable {
    // @unchecked: used by one task at a time.
    let publisher: FrameClient
    let subscriber: FrameClient
    private var nextID: UInt64 = 1

    private init(publisher: FrameClient, subscriber: FrameClient) {
        self.publisher = publisher
        self.subscriber = subscriber
    }

    static func connect(_ relayd: RelaydFixture) async throws -> LegitClient {
        let publisher = try await FrameClient.connect(port: relayd.port, pki: relayd.pki)
        try await publisher.hello()
        let subscriber = try await FrameClient.connect(port: relayd.port, pki: relayd.pki)
        try await subscriber.hello()
        #expect(try await subscriber.subscribe(1, "legit.>", from: .latest, credit: 1_000_000).isAccepted)
        return LegitClient(publisher: publisher, subscriber: subscriber)
    }

    /// Publishes `count` messages one at a time, timing each PUB→PUBACK, and
    /// checks the subscriber got them all in order. Latencies in ms.
    func exercise(_ count: Int) async throws -> [Double] {
        var latencies: [Double] = []
        var sequences: [UInt64] = []
        for _ in 0..<count {
            let started = NIODeadline.now()
            let ack = try await publisher.publish("legit.ping", count: 1, firstID: nextID)
            latencies.append(Double((NIODeadline.now() - started).nanoseconds) / 1e6)
            sequences += ack.map(\.sequence)
            nextID += 1
        }
        let received = try await subscriber.messages(count, timeout: .seconds(30))
        #expect(received.map(\.sequence) == sequences, "the legitimate subscriber missed or reordered messages")
        return latencies
    }

    func close() async {
        await publisher.close()
        await subscriber.close()
    }
}

/// Memory figures from /proc/<pid>/status, in KiB.
private struct ProcStatus {
    var rssKiB = 0, anonKiB = 0, peakKiB = 0

    init(pid: Int32) throws {
        let text = try String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)
        for line in text.split(separator: "\n") {
            let parts = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard parts.count >= 2, let value = Int(parts[1]) else { continue }
            switch parts[0] {
            case "VmRSS:": rssKiB = value
            case "RssAnon:": anonKiB = value
            case "VmPeak:": peakKiB = value
            default: break
            }
        }
    }
}

extension RelaydFixture {
    /// Edits the written config (for keys the fixture fixes, like the handshake timeout).
    func replaceInConfig(_ old: String, with new: String) throws {
        let text = try String(contentsOfFile: configPath, encoding: .utf8)
        let edited = text.replacingOccurrences(of: old, with: new)
        guard edited != text else { throw BrokerTestError.refused("the fixture's config has no \(old)") }
        try edited.write(toFile: configPath, atomically: true, encoding: .utf8)
    }
}
