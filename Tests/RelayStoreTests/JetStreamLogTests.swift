import Foundation
import NIOConcurrencyHelpers
import NIOCore
import RelayCore
import RelayJetStream
@testable import RelayStore
import RelayTestSupport
import Testing

/// What only the shared JetStream log does, beyond the MessageLog contract:
/// two logs on one stream act as two relayd edges.
@Suite("JetStream message log", .serialized)
struct JetStreamLogTests {
    private func open(_ server: SingleNATSServer, publishTimeout: Duration = .seconds(10)) throws -> JetStreamMessageLog {
        var configuration = StoreConfiguration(directory: "/nonexistent/jetstream")
        configuration.maxMapSize = 256 << 20
        var settings = server.jetStreamSettings(replicas: 1)
        settings.publishTimeout = publishTimeout
        settings.retryBackoff = .milliseconds(100)
        return try JetStreamMessageLog.open(configuration, settings: settings)
    }

    @Test("two edges: one sequence, a producer key retried through the other edge is a duplicate, each tail sees both in order")
    func twoEdgesShareOneLog() async throws {
        let server = try await SingleNATSServer(pki: TLSTestPKI())
        let a = try open(server), b = try open(server)
        defer { a.close(); b.close() }
        let seen = NIOLockedValueBox<[UInt64]>([])
        try b.startTail(after: 0) { messages in seen.withLockedValue { $0 += messages.map(\.sequence) } }

        let key = ProducerKey(publisher: testDigest, sessionHigh: 7, sessionLow: 8, publishID: 1)
        let first = try await a.appendAndWait(try message("t.a", "one", producerKey: key))
        let second = try await b.appendAndWait(try message("t.b", "two"))
        let retried = try await b.appendAndWait(try message("t.a", "one again", producerKey: key))
        #expect(first.sequence == 1 && second.sequence == 2)
        #expect(retried.duplicate && retried.sequence == first.sequence && retried.timestamp == first.timestamp)
        #expect(try a.readAll().map(\.text) == ["one", "two"])
        #expect(try b.readAll().map(\.publisher) == [testPublisher, testPublisher])
        // The tail is pushed by the server: wait for it, with a deadline.
        let both = await eventually(timeout: 5) { seen.withLockedValue { $0 } == [1, 2] }
        let saw = seen.withLockedValue { $0 }
        #expect(both, "tail saw \(saw)")
    }

    @Test("no server: an append fails with .unavailable within publishTimeout, and the log reports itself unavailable")
    func unavailableIsTypedAndInTime() async throws {
        let server = try await SingleNATSServer(pki: TLSTestPKI())
        let log = try open(server, publishTimeout: .seconds(1))
        defer { log.close() }
        _ = try await log.appendAndWait(try message("u", "before"))
        #expect(log.isAvailable)
        await server.kill()
        let started = ContinuousClock.now
        let results = await log.appendAndWait([try message("u", "lost"), try message("u", "after it")])
        let elapsed = ContinuousClock.now - started
        #expect(results.count == 2)
        for result in results {
            guard case .failure(.unavailable) = result else {
                Issue.record("expected .unavailable, got \(result)")
                continue
            }
        }
        #expect(elapsed < .milliseconds(2_500), "failed after \(elapsed)")
        #expect(!log.isAvailable)
    }
}
