import Foundation
import NIOConcurrencyHelpers
import NIOCore
import RelayCore
import RelayJetStream
@testable import RelayStore
import RelayTestSupport
import Testing

/// The tail asks first whether anything needs a message live, and decodes
/// only what is wanted: an edge without subscribers (a publish-only edge, a
/// bench) no longer decodes, encodes and queues every message of the stream
/// (docs/performance-history.md, "Performance, wave 6").
@Suite("JetStream tail skip", .serialized)
struct JetStreamTailSkipTests {
    @Test("skipped messages are offered with their sequence and payload size and not delivered; the rest are delivered, in order")
    func skipThenDeliver() async throws {
        let server = try await SingleNATSServer(pki: TLSTestPKI())
        var configuration = StoreConfiguration(directory: "/nonexistent/jetstream")
        configuration.maxMapSize = 64 << 20
        let log = try JetStreamMessageLog.open(configuration, settings: server.jetStreamSettings(replicas: 1))
        defer { log.close() }
        let offered = NIOLockedValueBox<[String]>([])
        let delivered = NIOLockedValueBox<[UInt64]>([])
        try log.startTail(after: 0, skip: { sequence, payloadBytes in
            offered.withLockedValue { $0.append("\(sequence):\(payloadBytes)") }
            return sequence <= 3
        }) { messages in delivered.withLockedValue { $0 += messages.map(\.sequence) } }
        let bodies = ["a", "bb", "ccc", "dddd", "eeeee"]
        _ = try await log.appendAll(try bodies.map { try message("skip.t", $0) })
        // The tail is pushed by the server: wait for it, with a deadline.
        let all = await eventually(timeout: 5) { delivered.withLockedValue { $0 } == [4, 5] }
        #expect(all, "delivered: \(delivered.withLockedValue { $0 })")
        #expect(offered.withLockedValue { $0 } == ["1:1", "2:2", "3:3", "4:4", "5:5"])
    }
}
