import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import RelayCore
@testable import RelayJetStream
import RelayStore
import RelayTestSupport
import Testing

/// Issue 20: the tail skips records something other than relayd published into
/// the stream (JetStreamForeignRecordTests), but `read()` (replays, durable
/// reads) threw on them, so one foreign record broke every replay across it.
@Suite("JetStream foreign records in reads", .serialized)
struct JetStreamForeignRecordReadTests {
    @Test("3 foreign records between two relay messages: a read from earliest returns exactly those two, each foreign sequence counted once")
    func readSkipsForeignRecords() async throws {
        let server = try await SingleNATSServer(pki: TLSTestPKI())
        let lines = CapturedLogLines()
        var configuration = StoreConfiguration(directory: "/nonexistent/jetstream")
        configuration.maxMapSize = 256 << 20
        let settings = server.jetStreamSettings(replicas: 1)
        let log = try JetStreamMessageLog.open(configuration, settings: settings,
                                               logger: Logger(label: "foreign-read-test") { _ in lines.handler() })
        defer { log.close() }
        let before = try await log.appendAndWait(try message("f.t", "before"))
        #expect(try publishForeignRecords(3, subject: "relay.f.t", endpoint: settings.endpoint) == 3)
        let after = try await log.appendAndWait(try message("f.t", "after"))
        #expect((before.sequence, after.sequence) == (1, 5))

        let filter = try TopicFilter("f.>")
        let start = try log.startSequence(.earliest, filter: filter)
        #expect(start == 1)
        // A replay re-reads the same records: twice here, and still 3 foreign records counted.
        for _ in 0..<2 {
            let batch = try log.read(from: start, filter: filter, maxMessages: 100, maxBytes: 1 << 20, maxScan: 1_000)
            #expect(batch.messages.map(\.text) == ["before", "after"])
            #expect(batch.messages.map(\.sequence) == [1, 5])
            #expect(batch.next == 6)
        }
        // One message per read: the foreign records never take the place of a relay one.
        let first = try log.read(from: 1, filter: filter, maxMessages: 1, maxBytes: 1 << 20, maxScan: 1_000)
        #expect(first.messages.map(\.sequence) == [1])
        let second = try log.read(from: first.next, filter: filter, maxMessages: 1, maxBytes: 1 << 20, maxScan: 1_000)
        #expect(second.messages.map(\.sequence) == [5])
        #expect(second.messages.map(\.text) == ["after"])
        #expect(log.foreignRecordCount == 3)
        let perRecord = lines.matching("skipping an undecodable stream message")
        #expect(perRecord.count == 1, "\(perRecord)")
        let line = try #require(perRecord.first)
        #expect(line.contains("sequence=2"), "\(line)")

        // The tail, started behind them, skips the same three without counting them again.
        let delivered = NIOLockedValueBox<[String]>([])
        try log.startTail(after: 0) { messages in delivered.withLockedValue { $0 += messages.map(\.text) } }
        let both = await eventually(timeout: 10) { delivered.withLockedValue { $0 } == ["before", "after"] }
        #expect(both, "tail delivered \(delivered.withLockedValue { $0 })")
        #expect(log.foreignRecordCount == 3)
    }

    @Test("each foreign sequence is counted once; past the remembered limit the oldest are forgotten, the newest still are not recounted")
    func countedOncePerSequenceBounded() {
        let notices = ForeignRecordNotices(logger: Logger(label: "foreign-notices-test") { _ in SwiftLogNoOpLogHandler() },
                                           interval: .seconds(3_600), stream: "S", subjects: "relay.>")
        let limit = UInt64(ForeignRecordNotices.rememberedLimit)
        for sequence in 1...(limit + 1) { notices.skipped(sequence: sequence, reason: StoreError.closed) }
        #expect(notices.count == limit + 1)
        // A replay re-reading recent ones: not counted again.
        for sequence in (limit - 9)...(limit + 1) { notices.skipped(sequence: sequence, reason: StoreError.closed) }
        #expect(notices.count == limit + 1)
        // The lower half was forgotten when the set passed the limit: sequence 1 counts again (documented).
        notices.skipped(sequence: 1, reason: StoreError.closed)
        #expect(notices.count == limit + 2)
    }

}

/// Publishes `count` records that are not Relay's to `subject` from a plain
/// nats.c JetStream connection (as a bench's direct run); how many were acked.
func publishForeignRecords(_ count: Int, subject: String, endpoint: NATSEndpoint) throws -> Int {
    let foreign = try NATSConnection.connect(endpoint, timeoutMs: 5_000)
    defer { foreign.close() }
    let records = (0..<count).map { i in
        NATSConnection.PublishRecord(subject: subject, messageID: nil, data: ByteBuffer(string: "not a relay record \(i)"))
    }
    let outcomes = foreign.publishPipelined(records, window: 256, idleMs: 5_000, maxWaitMs: 10_000)
    return outcomes.filter { if case .acked = $0 { return true } else { return false } }.count
}
