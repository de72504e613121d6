import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import RelayCore
@testable import RelayJetStream
import RelayStore
import RelayTestSupport
import Testing

/// Issue 20: something other than relayd (a bench's direct nats.c publisher)
/// writes into the stream's subjects. relayd skips those records; it must say
/// so once with a hint, then only in periodic summaries, not once per record.
@Suite("JetStream foreign records", .serialized)
struct JetStreamForeignRecordTests {
    @Test("200 foreign records in relay.<topic>: one per-record log line, counted, relay messages around them delivered")
    func foreignRecordsAreCountedNotLoggedEach() async throws {
        let server = try await SingleNATSServer(pki: TLSTestPKI())
        let lines = CapturedLogLines()
        var configuration = StoreConfiguration(directory: "/nonexistent/jetstream")
        configuration.maxMapSize = 256 << 20
        var settings = server.jetStreamSettings(replicas: 1)
        settings.foreignRecordSummaryInterval = .seconds(1)  // the summary line within the test's time
        let log = try JetStreamMessageLog.open(configuration, settings: settings,
                                               logger: Logger(label: "foreign-test") { _ in lines.handler() })
        defer { log.close() }
        let delivered = NIOLockedValueBox<[String]>([])
        let observed = NIOLockedValueBox(0)
        log.observeForeignRecords { count in observed.withLockedValue { $0 += count } }
        try log.startTail(after: 0) { messages in delivered.withLockedValue { $0 += messages.map(\.text) } }

        _ = try await log.appendAndWait(try message("f.t", "before"))
        // A plain nats.c JetStream publisher on its own connection, as the bench's direct run.
        #expect(try publishForeignRecords(200, subject: "relay.f.t", endpoint: settings.endpoint) == 200)
        _ = try await log.appendAndWait(try message("f.t", "after"))

        // The tail is pushed by the server: wait for the message after the foreign ones, with a deadline.
        let both = await eventually(timeout: 10) { delivered.withLockedValue { $0 } == ["before", "after"] }
        let got = delivered.withLockedValue { $0 }
        #expect(both, "tail delivered \(got)")
        let perRecord = lines.matching("skipping an undecodable stream message")
        #expect(perRecord.count == 1, "\(perRecord.count) per-record lines; first: \(perRecord.first ?? "none")")
        // Sequence 1 is "before", 2...201 the foreign ones: the first is named with its reason and the hint.
        let first = try #require(perRecord.first)
        #expect(first.contains("sequence=2") && first.contains("docs/cluster.md") && first.contains("relay.>"), "\(first)")
        #expect(log.foreignRecordCount == 200)
        #expect(observed.withLockedValue { $0 } == 200)
        // The other 199 are summed up once the interval has passed (the probe timer flushes every second):
        // one line, or two if the burst straddled an interval on a slow machine; never one per record.
        let summarised = await eventually(timeout: 5) { Self.skippedInSummaries(lines) == 199 }
        let summaries = lines.matching("more undecodable stream messages")
        #expect(summarised, "summary lines: \(summaries)")
        #expect((1...2).contains(summaries.count), "summary lines: \(summaries)")
        let last = try #require(summaries.last)
        #expect(last.contains("last sequence 201"), "\(last)")
    }

    /// The N of every "skipped N more undecodable stream messages" line, summed.
    private static func skippedInSummaries(_ lines: CapturedLogLines) -> Int {
        lines.matching("more undecodable stream messages").reduce(0) { sum, line in
            guard let range = line.range(of: "skipped ") else { return sum }
            return sum + (Int(line[range.upperBound...].prefix { $0.isNumber }) ?? 0)
        }
    }
}

/// Log lines (message and metadata) a test logger wrote, thread-safe.
final class CapturedLogLines: Sendable {
    private let lines = NIOLockedValueBox<[String]>([])

    func handler() -> some LogHandler { Handler(lines: self) }

    func matching(_ text: String) -> [String] { lines.withLockedValue { $0.filter { $0.contains(text) } } }

    private struct Handler: LogHandler {
        let lines: CapturedLogLines
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .trace

        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }

        func log(event: LogEvent) {
            let all = self.metadata.merging(event.metadata ?? [:]) { $1 }
            let rendered = all.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
            lines.lines.withLockedValue { $0.append("\(event.level) \(event.message) \(rendered)") }
        }
    }
}
