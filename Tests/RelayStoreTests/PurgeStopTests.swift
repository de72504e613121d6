import Foundation
import NIOCore
import RelayCore
@testable import RelayStore
import Synchronization
import Testing

/// ``TopicAdministration/purge(_:stoppingWhen:)``: LMDB purges in batches of
/// records, each its own write transaction, so publishes commit between
/// them instead of waiting for the whole purge (a purge of a million
/// messages held LMDB's writer, and every PUBACK, for over a second), and a
/// stopping broker ends it between two batches (docs/operations.md,
/// "Purging a topic" and "Stopping relayd").
@Suite("purge in batches, stopped by a shutdown")
struct PurgeStopTests {
    static let stored = 3_000  // one batch, most of a second, and some

    @Test("asked to stop before it starts: stopped, nothing deleted", arguments: LogKind.local)
    func stoppedBeforeItStarts(_ kind: LogKind) async throws {
        try await withLog(kind) { log in
            let admin = try #require(log as? any MessageLogAdministration)
            let jobs = try (0..<Self.stored).map { try message("jobs.a", "j\($0)") }
            _ = try await log.appendAll(jobs + [try message("other.b", "o")])
            var asked = 0
            let result = try admin.purge(try TopicFilter("jobs.>"), stoppingWhen: { asked += 1; return true })
            #expect(result.stopped)
            #expect(result.messages == 0)
            #expect(asked == 1, "asked before anything changed")
            #expect(try log.readAll().count == Self.stored + 1)
        }
    }

    @Test("LMDB, asked to stop after its first batch: that batch is gone for good, the rest is stored, the topic's count agrees, and the answer says how many went")
    func stoppedAfterOneBatch() async throws {
        try await withLog(.lmdb) { log in
            let admin = try #require(log as? any MessageLogAdministration)
            let jobs = try (0..<Self.stored).map { try message("jobs.a", "j\($0)") }
            _ = try await log.appendAll(jobs + [try message("other.b", "o")])
            var asked = 0
            let result = try admin.purge(try TopicFilter("jobs.>"), stoppingWhen: { asked += 1; return asked >= 2 })
            #expect(result.stopped)
            #expect(asked == 2)
            let batch = MessageStore.purgeBatchSize
            #expect(result.messages == UInt64(batch), "a purge stopped after one batch deleted \(result.messages)")
            let left = try log.readAll()
            #expect(left.count == Self.stored + 1 - batch, "a stopped purge left \(left.count) of \(Self.stored + 1)")
            // The oldest went first.
            #expect(left.first?.text == "j\(batch)")
            let counted = try admin.topicStatistics().first { $0.topic == "jobs.a" }?.messages
            #expect(counted == UInt64(Self.stored - batch))
            // Run again, it deletes the rest.
            let rest = try admin.purge(try TopicFilter("jobs.>"), stoppingWhen: { false })
            #expect(!rest.stopped)
            #expect(rest.messages == UInt64(Self.stored - batch))
            #expect(try log.readAll().map(\.topic.value) == ["other.b"])
            #expect(try admin.topicStatistics().map(\.topic) == ["other.b"])
        }
    }

    /// The append is sent after the purge's first batch committed and
    /// waited for before its second starts. Before wave 21 the purge was one
    /// transaction: the same append, sent from its stop check after 1,024
    /// records, could not commit until the purge had, and the wait ran out.
    @Test("LMDB: a publish commits between two of a purge's batches, and a matching message published while it runs is kept (a purge deletes what was stored when it began)")
    func appendsCommitBetweenBatches() async throws {
        try await withLog(.lmdb) { log in
            let admin = try #require(log as? any MessageLogAdministration)
            let jobs = try (0..<Self.stored).map { try message("jobs.a", "j\($0)") }
            _ = try await log.appendAll(jobs + [try message("other.b", "o")])
            let during = try [message("jobs.a", "published during the purge"), message("other.b", "also during")]
            let store = try #require(log as? MessageStore)
            var batchesDone = 0
            var committedDuring: Bool?
            let result = try store.purge(try TopicFilter("jobs.>"), stoppingWhen: { false }, betweenBatches: {
                batchesDone += 1
                if batchesDone == 1 { committedDuring = Self.appendAndWait(during, to: log, seconds: 20) }
            })
            #expect(batchesDone == 1, "\(Self.stored) records took \(batchesDone + 1) batches")
            #expect(committedDuring == true, "a publish sent between the purge's batches did not commit within 20 s")
            #expect(!result.stopped)
            #expect(result.messages == UInt64(Self.stored))
            let left = try log.readAll().map(\.text)
            #expect(left == ["o", "published during the purge", "also during"])
            let counted = try admin.topicStatistics().first { $0.topic == "jobs.a" }?.messages
            #expect(counted == 1)
        }
    }

    @Test("never asked to stop: every matching message goes, asked once per batch", arguments: LogKind.local)
    func wholePurge(_ kind: LogKind) async throws {
        try await withLog(kind) { log in
            let admin = try #require(log as? any MessageLogAdministration)
            let jobs = try (0..<Self.stored).map { try message("jobs.a", "j\($0)") }
            _ = try await log.appendAll(jobs + [try message("jobs.c", "c"), try message("other.b", "o")])
            var asked = 0
            let purged = try admin.purge(try TopicFilter("jobs.>"), stoppingWhen: { asked += 1; return false })
            #expect(!purged.stopped)
            #expect(purged.messages == UInt64(Self.stored + 1))
            let batches = (Self.stored + 1 + MessageStore.purgeBatchSize - 1) / MessageStore.purgeBatchSize
            #expect(asked == (kind == .lmdb ? batches : 1), "asks: \(asked)")
            #expect(try log.readAll().map(\.topic.value) == ["other.b"])
            #expect(try admin.topicStatistics().map(\.topic) == ["other.b"])
        }
    }

    /// Appends through the completion API (called on the store's writer
    /// thread, so it needs no task of the blocked caller) and waits for it.
    static func appendAndWait(_ messages: [NewMessage], to log: any MessageLog, seconds: Int) -> Bool {
        let done = DispatchSemaphore(value: 0)
        let succeeded = Mutex(false)
        log.append(messages) { results in
            succeeded.withLock { $0 = results.allSatisfy { (try? $0.get()) != nil } }
            done.signal()
        }
        return done.wait(timeout: .now() + .seconds(seconds)) == .success && succeeded.withLock { $0 }
    }
}
