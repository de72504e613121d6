import Foundation
import NIOConcurrencyHelpers
import RelayClient
import RelayCore
import RelayTestSupport
import Testing

/// A SUB that a cluster edge refuses with `storage_unavailable` (its NATS
/// server is down: no stream leader) is retried for about 25 s; the library
/// reports each retry to `onSubscribeRetry`, and relay-sub prints one line
/// per retry instead of sitting silent until the final error.
@Suite("SUB retries are reported (storage_unavailable)", .serialized)
struct SubscribeRetryReportTests {
    @Test("the library reports each storage_unavailable retry to onSubscribeRetry with the code and the attempt numbers")
    func libraryReportsStorageRetries() async throws {
        try await withJetStreamEdge { edge, nats in
            let retries = NIOLockedValueBox<[SubscribeRetry]>([])
            var configuration = edge.clientConfiguration()
            configuration.onSubscribeRetry = { retry in retries.withLockedValue { $0.append(retry) } }
            let subscriber = try await Subscriber.connect(configuration)
            await nats.kill()
            async let opened = subscriber.subscribe(filter: "retry.lib.>")
            let firstTwo = await eventuallyValue(timeout: 30) { () -> [SubscribeRetry]? in
                let seen = retries.withLockedValue { $0 }
                return seen.count >= 2 ? Array(seen.prefix(2)) : nil
            }
            let two = try #require(firstTwo, "fewer than two retries were reported")
            #expect(two.map(\.code) == [.storageUnavailable, .storageUnavailable], "\(two)")
            #expect(two.map(\.rawCode) == [RelayErrorCode.storageUnavailable.rawValue, RelayErrorCode.storageUnavailable.rawValue])
            #expect(two.map(\.attempt) == [1, 2] && two.map(\.attempts) == [8, 8], "\(two)")
            #expect(two.map(\.retryIn) == [.milliseconds(100), .milliseconds(200)], "\(two)")
            let named = two.allSatisfy { $0.filter == "retry.lib.>" && $0.durableName == nil }
            #expect(named, "\(two)")
            #expect(two[0].description.contains("storage_unavailable") && two[0].description.contains("retry 1 of 8"),
                    "\(two[0].description)")
            await subscriber.connection.close()
            _ = try? await opened
        }
    }

    @Test("relay-sub prints one line per storage_unavailable retry (retry N of 8), then the final error and a non-zero exit")
    func relaySubReportsStorageRetries() async throws {
        try await withJetStreamEdge { edge, nats in
            await nats.kill()
            let sub = try await ChildProcess(try ProductLocator.executable("relay-sub"),
                                       edge.cliArguments() + ["--topic", "retry.cli.>", "--format", "raw"])
            defer { sub.signal(SIGKILL) }
            let second = await eventuallyValue(timeout: 30) { () -> String? in
                sub.stderrLines.first { $0.contains("retry 2 of 8") }
            }
            let line = try #require(second, "relay-sub said nothing about the retries: \(sub.transcript)")
            #expect(line.hasPrefix("relay-sub: ") && line.contains("retry.cli.>") && line.contains("storage_unavailable"),
                    "\(line)")
            #expect(sub.isRunning, "relay-sub gave up before its retries were spent: \(sub.transcript)")
            // The retries (0.1 s doubling, 8 of them, plus the edge's answers) are spent well within 120 s.
            let status = try #require(await sub.waitForExit(timeout: 120), "relay-sub still running: \(sub.transcript)")
            #expect(status != 0, "\(sub.transcript)")
            let lines = sub.stderrLines
            let retryLines = lines.indices.filter { lines[$0].contains("storage_unavailable") && lines[$0].contains(" of 8") }
            let finalLine = lines.lastIndex { $0.hasPrefix("relay-sub: error:") }
            #expect(retryLines.count == 8, "\(lines)")
            let retriesFirst = finalLine.map { final in retryLines.allSatisfy { $0 < final } } ?? false
            #expect(retriesFirst, "\(lines)")
        }
    }

    @Test("relay-sub --timeout 3 while the SUB is still refused storage_unavailable: exits 69 then, not after the retries")
    func relaySubTimeoutDuringStorageRetries() async throws {
        try await withJetStreamEdge { edge, nats in
            await nats.kill()
            let started = Date()
            let sub = try await ChildProcess(try ProductLocator.executable("relay-sub"),
                                       edge.cliArguments() + ["--topic", "retry.timeout.>", "--timeout", "3"])
            defer { sub.signal(SIGKILL) }
            // The client's retries alone would take about 25 s.
            let status = await sub.waitForExit(timeout: 20)
            let elapsed = Date().timeIntervalSince(started)
            #expect(status == 69, "exit \(String(describing: status)) after \(elapsed) s: \(sub.transcript)")
            let said = sub.stderrLines.first { $0.contains("still could not serve the subscription to retry.timeout.>") }
            #expect(said?.contains("storage_unavailable") == true, "\(sub.stderrLines)")
        }
    }

    /// A relayd with the jetstream backend on one nats-server, which the
    /// body stops to make the edge refuse SUBs with storage_unavailable.
    func withJetStreamEdge(_ body: (RelaydFixture, SingleNATSServer) async throws -> Void) async throws {
        let nats = try await SingleNATSServer(pki: TLSTestPKI())
        let edge = try RelaydFixture(pki: nats.pki)
        try edge.useJetStream(nats, publishTimeout: "1s", tailIdle: "100ms")
        try await withRelayd(edge) { edge in try await body(edge, nats) }
    }
}
