import Foundation
import NIOCore
import RelayCore
@testable import RelayStore
import Testing

/// ``TopicAdministration/purge(_:stoppingWhen:)``: a stopping broker ends a
/// purge before its commit. LMDB asks before it changes anything and every
/// 1,024 records inside its one write transaction, and aborts it when told
/// to stop: all or nothing, never half a purge (docs/operations.md,
/// "Stopping relayd").
@Suite("purge stopped by a shutdown")
struct PurgeStopTests {
    static let stored = 3_000  // three checks' worth of records, and some

    @Test("asked to stop before it starts, after its first batch of records, or never: nil and nothing deleted, or the whole purge", arguments: LogKind.local)
    func stoppedPurgeDeletesNothing(_ kind: LogKind) async throws {
        try await withLog(kind) { log in
            let admin = try #require(log as? any MessageLogAdministration)
            let jobs = try (0..<Self.stored).map { try message("jobs.a", "j\($0)") }
            _ = try await log.appendAll(jobs + [try message("other.b", "o")])
            let filter = try TopicFilter("jobs.>")

            var asked = 0
            let stoppedAtOnce = try admin.purge(filter, stoppingWhen: { asked += 1; return true })
            #expect(stoppedAtOnce == nil)
            #expect(asked == 1, "asked before anything changed")
            #expect(try log.readAll().count == Self.stored + 1)

            if kind == .lmdb {
                // Stop at the second ask: after 1,024 records were deleted inside the transaction.
                asked = 0
                let stoppedInside = try admin.purge(filter, stoppingWhen: { asked += 1; return asked >= 2 })
                #expect(stoppedInside == nil)
                #expect(asked == 2)
                let left = try log.readAll()
                #expect(left.count == Self.stored + 1, "a stopped purge left \(left.count) of \(Self.stored + 1)")
                let counted = try admin.topicStatistics().first { $0.topic == "jobs.a" }?.messages
                #expect(counted == UInt64(Self.stored))
            }

            asked = 0
            let purged = try admin.purge(filter, stoppingWhen: { asked += 1; return false })
            #expect(purged?.messages == UInt64(Self.stored))
            #expect(asked == (kind == .lmdb ? 1 + Self.stored / 1_024 : 1), "asks: \(asked)")
            #expect(try log.readAll().map(\.topic.value) == ["other.b"])
        }
    }
}
