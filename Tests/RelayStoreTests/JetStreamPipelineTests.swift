import Foundation
import NIOCore
import RelayCore
import RelayJetStream
@testable import RelayStore
import RelayTestSupport
import Testing

/// An append of many records is published as a pipeline (asynchronous
/// publishes, the acks matched back to their records), not one publish and
/// one ack wait per record; each record still completes only with its own
/// JetStream ack (docs/performance-history.md, "Cluster edge history", its first section).
@Suite("JetStream publish pipeline", .serialized)
struct JetStreamPipelineTests {
    private func open(_ server: SingleNATSServer, maxBytes: Int = 256 << 20,
                      requestTimeout: Duration = .seconds(2)) throws -> JetStreamMessageLog {
        var configuration = StoreConfiguration(directory: "/nonexistent/jetstream")
        configuration.maxMapSize = maxBytes
        configuration.pruneInterval = .seconds(3600)
        var settings = server.jetStreamSettings(replicas: 1)
        settings.retryBackoff = .milliseconds(100)
        settings.requestTimeout = requestTimeout
        return try JetStreamMessageLog.open(configuration, settings: settings)
    }

    private func keyed(_ count: Int, session: UInt64) throws -> [NewMessage] {
        try (1...count).map { i in
            try message("pipe.\(i % 3)", "m\(i)",
                        producerKey: ProducerKey(publisher: testDigest, sessionHigh: session, sessionLow: 1, publishID: UInt64(i)))
        }
    }

    @Test("a batch of 500 waits for acks a few times, not 500; every record acked, sequences in batch order")
    func batchIsPipelined() async throws {
        let server = try await SingleNATSServer(pki: TLSTestPKI())
        let log = try open(server)
        defer { log.close() }
        let before = log.publishStatistics
        let sequences = try await log.appendAll(try keyed(500, session: 1))
        let after = log.publishStatistics
        #expect(sequences == Array(1...500), "one connection keeps publish order: \(sequences.prefix(10))...")
        #expect(after.publishes - before.publishes == 500)
        // A serial log waits once per record (500); the pipeline once per window.
        #expect(after.ackWaits - before.ackWaits <= 5, "ack waits for 500 records: \(after.ackWaits - before.ackWaits)")
        #expect(try log.readAll().map(\.text) == (1...500).map { "m\($0)" })
    }

    @Test("a producer key twice in one batch: the second is a duplicate of the first, with its sequence")
    func duplicateKeyWithinOneBatch() async throws {
        let server = try await SingleNATSServer(pki: TLSTestPKI())
        let log = try open(server)
        defer { log.close() }
        let key = ProducerKey(publisher: testDigest, sessionHigh: 9, sessionLow: 9, publishID: 1)
        let results = await log.appendAndWait([try message("d", "one", producerKey: key), try message("d", "other"),
                                               try message("d", "one again", producerKey: key)])
        let receipts = try results.map { try $0.get() }
        #expect(receipts.map(\.sequence) == [1, 2, 1])
        #expect(receipts.map(\.duplicate) == [false, false, true])
        #expect(receipts[2].timestamp == receipts[0].timestamp)
        #expect(try log.readAll().map(\.text) == ["one", "other"])
    }

    @Test("the stream fills in the middle of a batch: the records it took are acked, the others fail with storageFull")
    func streamFullMidBatchFailsOnlyTheRest() async throws {
        let server = try await SingleNATSServer(pki: TLSTestPKI())
        let log = try open(server, maxBytes: 8 << 10)
        defer { log.close() }
        let body = String(repeating: "x", count: 400)
        let results = await log.appendAndWait(try (1...60).map { try message("full", "\($0) \(body)") })
        let stored = results.prefix { (try? $0.get()) != nil }.count
        #expect(stored > 0 && stored < 60, "stored \(stored) of 60 in 8 KiB")
        for (index, result) in results.enumerated().dropFirst(stored) {
            guard case .failure(.storageFull) = result else {
                Issue.record("record \(index): expected storageFull, got \(result)")
                continue
            }
        }
        #expect(try log.readAll().count == stored)
    }

    /// Rounds overlap: the writer publishes the next append while the one
    /// before still awaits its acks (a waiter completes them, in order), so
    /// the publishers' windows refill continuously instead of in steps of one
    /// round trip. Acks are held back by freezing the server (SIGSTOP): the
    /// serial-round writer published the first append and then blocked.
    @Test("an append queued while an earlier one awaits its acks is published at once; both complete, in order")
    func roundsOverlap() async throws {
        let server = try await SingleNATSServer(pki: TLSTestPKI())
        // No idle timeout while the server is frozen (that would retry, and count publishes again).
        let log = try open(server, requestTimeout: .seconds(30))
        defer { log.close() }
        let before = log.publishStatistics.publishes
        server.process.signal(SIGSTOP)
        var resumed = false
        defer { if !resumed { server.process.signal(SIGCONT) } }
        let first = try keyed(300, session: 1), second = try keyed(300, session: 2)
        let a = Task { try await log.appendAll(first) }
        // Waiting on a counter the writer thread keeps: no event announces a publish.
        let firstOut = await eventually(timeout: 5) { log.publishStatistics.publishes - before >= 300 }
        #expect(firstOut, "the first append was not published: \(log.publishStatistics)")
        let b = Task { try await log.appendAll(second) }
        let bothOut = await eventually(timeout: 2) { log.publishStatistics.publishes - before >= 600 }
        let published = log.publishStatistics.publishes - before
        server.process.signal(SIGCONT)
        resumed = true
        #expect(bothOut, "publishes while the first append awaits its acks: \(published) of 600")
        #expect(try await a.value == Array(1...300))
        #expect(try await b.value == Array(301...600))
        #expect(log.publishStatistics.peakInFlight >= 600)
    }
}
