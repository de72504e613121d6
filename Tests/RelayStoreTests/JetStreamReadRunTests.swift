import Foundation
import Logging
import NIOCore
import RelayCore
@testable import RelayJetStream
import RelayStore
import RelayTestSupport
import Testing

/// Issue 20 (wave 22): a replay through a cluster edge read one message per
/// NATS round trip (a direct get each), about 3,800 messages/s
/// (docs/cluster.md, "Replay: runs of direct gets"). Reads now take the
/// messages after the first in runs of direct gets sent together. These
/// tests pin that the runs return exactly what one-message reads return
/// (the reference: a read of one message never makes a run), across a
/// purged topic's gap and foreign records, and count the round trips.
@Suite("JetStream reads in runs of direct gets", .serialized)
struct JetStreamReadRunTests {
    /// Every message from `from` on, read `maxMessages` at a time until the end.
    static func readAll(_ log: JetStreamMessageLog, filter: TopicFilter, from: UInt64,
                        maxMessages: Int) throws -> [(UInt64, String)] {
        var out: [(UInt64, String)] = []
        var next = from
        for _ in 0..<10_000 {
            let batch = try log.read(from: next, filter: filter, maxMessages: maxMessages, maxBytes: 1 << 20, maxScan: 100_000)
            out += batch.messages.map { ($0.sequence, String(buffer: $0.payload)) }
            next = batch.next
            if batch.reachedEnd { return out }
        }
        Issue.record("no end of read after 10,000 reads")
        return out
    }

    static func openLog(_ server: SingleNATSServer) throws -> JetStreamMessageLog {
        var configuration = StoreConfiguration(directory: "/nonexistent/jetstream")
        configuration.maxMapSize = 256 << 20
        configuration.pruneInterval = .seconds(3600)
        return try JetStreamMessageLog.open(configuration, settings: server.jetStreamSettings(replicas: 1),
                                            logger: Logger(label: "read-run-test") { _ in SwiftLogNoOpLogHandler() })
    }

    @Test("1,200 messages on three topics with a purged topic's gap and 3 foreign records: reads of 100 return exactly what one-message reads return, for `r.>` and for `r.a`, in at most a tenth of the round trips")
    func runsReturnWhatSingleReadsReturn() async throws {
        let server = try await SingleNATSServer(pki: TLSTestPKI())
        let log = try Self.openLog(server)
        defer { log.close() }
        // r.a, r.a, r.b, r.a ... with r.gone in the middle (purged below) and foreign records after it.
        var messages: [NewMessage] = []
        for i in 0..<600 { messages.append(try message(i % 3 == 2 ? "r.b" : "r.a", "m\(i)")) }
        try await log.appendAll(messages)
        try await log.appendAll(try (0..<50).map { try message("r.gone", "g\($0)") })
        #expect(try publishForeignRecords(3, subject: "relay.r.a", endpoint: server.jetStreamSettings(replicas: 1).endpoint) == 3)
        messages = try (600..<1_200).map { i in try message(i % 3 == 2 ? "r.b" : "r.a", "m\(i)") }
        try await log.appendAll(messages)
        _ = try log.purge(try TopicFilter("r.gone"))

        for filterText in ["r.>", "r.a"] {
            let filter = try TopicFilter(filterText)
            let start = try log.startSequence(.earliest, filter: filter)
            let before = log.readStatistics
            let batched = try Self.readAll(log, filter: filter, from: start, maxMessages: 100)
            let during = log.readStatistics
            let single = try Self.readAll(log, filter: filter, from: start, maxMessages: 1)
            let expectedCount = filterText == "r.>" ? 1_200 : 800
            #expect(batched.count == expectedCount, "\(filterText): \(batched.count) messages")
            #expect(batched.map(\.0) == single.map(\.0), "\(filterText): the sequences differ from one-message reads")
            #expect(batched.map(\.1) == single.map(\.1), "\(filterText): the payloads differ from one-message reads")
            #expect(!batched.contains { $0.1.hasPrefix("g") }, "\(filterText): a purged message was read")
            let singleGets = during.singleGets - before.singleGets
            #expect(singleGets * 10 <= UInt64(expectedCount),
                    "\(filterText): \(singleGets) one-message round trips for \(expectedCount) messages (runs: \(during.runs - before.runs))")
            // Each read's first message is a single get; the runs bring the rest (and, for r.a, the r.b between).
            #expect((during.runGets - before.runGets) * 10 >= UInt64(expectedCount) * 9, "\(filterText): \(during) against \(before)")
        }
        #expect(log.foreignRecordCount == 3)
    }

    @Test("a filter that matches 1 message in 50: the reads stop making runs (the server's filtered get skips the rest) and still return every match once, in order")
    func sparseFilterStopsRuns() async throws {
        let server = try await SingleNATSServer(pki: TLSTestPKI())
        let log = try Self.openLog(server)
        defer { log.close() }
        try await log.appendAll(try (0..<1_000).map { i in try message(i % 50 == 0 ? "s.rare" : "s.common", "m\(i)") })
        let filter = try TopicFilter("s.rare")
        let start = try log.startSequence(.earliest, filter: filter)
        let before = log.readStatistics
        let batched = try Self.readAll(log, filter: filter, from: start, maxMessages: 100)
        let after = log.readStatistics
        #expect(batched.map(\.1) == (0..<20).map { "m\($0 * 50)" })
        // One run at most: the first tells the read its filter is sparse.
        #expect(after.runs - before.runs <= 1, "\(after) against \(before)")
        #expect(after.runGets - before.runGets <= UInt64(ReadRuns.firstLength), "\(after) against \(before)")
    }

    @Test("the run's policy: short first, doubling while unbroken, off when under half matched, never past what is wanted, the bytes left or the scan")
    func runPolicy() {
        var runs = ReadRuns()
        let first = ReadRuns.firstLength
        #expect(first == 64)
        #expect(runs.length(wanted: 1_000, bytesLeft: 1 << 20, averageBytes: 100, scanLeft: 10_000) == first)
        runs.record(sent: first, matched: first, unbroken: true)
        #expect(runs.length(wanted: 1_000, bytesLeft: 1 << 20, averageBytes: 100, scanLeft: 10_000) == 2 * first)
        #expect(runs.length(wanted: 5, bytesLeft: 1 << 20, averageBytes: 100, scanLeft: 10_000) == 5)
        #expect(runs.length(wanted: 1_000, bytesLeft: 1_000, averageBytes: 100, scanLeft: 10_000) == 11)
        #expect(runs.length(wanted: 1_000, bytesLeft: 1 << 20, averageBytes: 100, scanLeft: 3) == 3)
        #expect(runs.length(wanted: 1, bytesLeft: 1 << 20, averageBytes: 100, scanLeft: 10_000) == nil)
        for _ in 0..<10 { runs.record(sent: 32, matched: 32, unbroken: true) }
        #expect(runs.length(wanted: 100_000, bytesLeft: 1 << 30, averageBytes: 1, scanLeft: 1 << 20) == NATSConnection.maxRunLength)
        runs.record(sent: 32, matched: 15, unbroken: true)
        #expect(runs.length(wanted: 1_000, bytesLeft: 1 << 20, averageBytes: 100, scanLeft: 10_000) == nil)
        // A broken run (a gap) says nothing about the filter: runs stay on.
        var gapped = ReadRuns()
        gapped.record(sent: 16, matched: 2, unbroken: false)
        #expect(gapped.length(wanted: 1_000, bytesLeft: 1 << 20, averageBytes: 100, scanLeft: 10_000) == ReadRuns.firstLength)
    }
}
