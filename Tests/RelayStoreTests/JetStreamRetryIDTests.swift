import Foundation
import RelayCore
import RelayJetStream
@testable import RelayStore
import RelayTestSupport
import Testing

/// A record with no JetStream ack is published again with the same
/// Nats-Msg-Id (JetStreamMessageLog+Publishing.swift), so JetStream's
/// duplicate window turns the attempts that did land into one message.
/// Written with the mutant `jetstream-retry-new-id` (wave 12): no unit-level
/// test made the edge retry and then looked at what was stored.
@Suite("JetStream retries keep the Nats-Msg-Id", .serialized)
struct JetStreamRetryIDTests {
    @Test("a keyed publish retried while NATS is down is stored once after the restart, and its key sent again is a duplicate of it")
    func retriedPublishIsStoredOnce() async throws {
        let server = try await SingleNATSServer(pki: TLSTestPKI())
        var configuration = StoreConfiguration(directory: "/nonexistent/jetstream")
        configuration.maxMapSize = 256 << 20
        var settings = server.jetStreamSettings(replicas: 1)
        settings.publishTimeout = .seconds(40)
        settings.retryBackoff = .milliseconds(100)
        settings.requestTimeout = .milliseconds(500)
        let log = try JetStreamMessageLog.open(configuration, settings: settings)
        defer { log.close() }
        _ = try await log.appendAndWait(try message("retry.id", "one"))

        await server.kill()
        let key = ProducerKey(publisher: testDigest, sessionHigh: 21, sessionLow: 22, publishID: 2)
        let before = log.publishStatistics.publishes
        async let stored = log.appendAndWait(try message("retry.id", "two", producerKey: key))
        // The first attempt and at least one retry went out while the server was down.
        let retried = await eventually(timeout: 30) { log.publishStatistics.publishes >= before + 2 }
        let sent = log.publishStatistics.publishes - before
        #expect(retried, "publishes while NATS was down: \(sent)")
        try await server.restart()

        let receipt = try await stored
        let again = try await log.appendAndWait(try message("retry.id", "two again", producerKey: key))
        // A duplicate receipt is right too: the attempt buffered while NATS was
        // down may land first, and the retry is then answered "duplicate".
        #expect(receipt.sequence == 2, "\(receipt)")
        #expect(again.duplicate && again.sequence == receipt.sequence, "the key sent again: \(again), first: \(receipt)")
        let texts = try log.readAll().map(\.text)
        #expect(texts == ["one", "two"], "stored: \(texts)")
    }
}
