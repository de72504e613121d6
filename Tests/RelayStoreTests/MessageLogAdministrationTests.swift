import Foundation
import NIOCore
import RelayCore
@testable import RelayStore
import RelayTestSupport
import Testing

/// ``MessageLogAdministration`` on both logs: the listings the admin
/// operations show, purge, durable deletion; and the LMDB backup opening as
/// a store with every message.
@Suite("MessageLogAdministration")
struct MessageLogAdministrationTests {
    @Test("topics, durables, purge and durable delete agree on both logs", arguments: LogKind.local)
    func listingsAndChanges(_ kind: LogKind) async throws {
        try await withLog(kind) { log in
            let admin = try #require(log as? any MessageLogAdministration)
            let jobs = try (1...4).map { try message("jobs.a", "j\($0)") }
            try await log.appendAll(jobs + [try message("other.b", "o")])
            try await log.commitCursorAndWait(owner: testOwner(1), name: "work", sequence: 2, filter: "jobs.>")
            let topics = try admin.topicStatistics()
            let names = topics.map(\.topic)
            #expect(names == ["jobs.a", "other.b"])
            #expect(topics.first?.messages == 4 && topics.first?.firstSequence == 1 && topics.first?.lastSequence == 4)
            #expect((topics.first?.lastTimestamp ?? 0) >= (topics.first?.firstTimestamp ?? 1) && (topics.first?.firstTimestamp ?? 0) > 0)
            #expect(try admin.durableCursors() == [DurableCursorRecord(owner: testOwner(1), name: "work", cursor: 2, filter: "jobs.>")])

            let purged = try admin.purge(try TopicFilter("jobs.>"))
            #expect(purged.messages == 4 && purged.topics == 1 && (purged.bytes ?? 0) > 0)
            let left = try log.readAll().map(\.topic.value)
            #expect(left == ["other.b"])
            let remaining = try admin.topicStatistics().map(\.topic)
            #expect(remaining == ["other.b"])
            // Sequences are not reused after a purge.
            let after = try await log.appendAll([try message("jobs.a", "after")])
            #expect(after == [6])

            let deleted = try await admin.deleteDurableCursor(owner: testOwner(1), name: "work")
            let deletedAgain = try await admin.deleteDurableCursor(owner: testOwner(1), name: "work")
            #expect(deleted && !deletedAgain)
            #expect(try admin.durableCursors().isEmpty)
        }
    }

    /// The two capabilities the JetStream log has too (docs/cluster.md,
    /// "Operator commands on a cluster edge"), on every log: what a backend
    /// does not count (JetStream: bytes per topic, a purge's bytes and
    /// topics) is nil, never 0; a deleted cursor leaves the owner's count
    /// (what `max_durables` reads) at once; backup only where there is a file.
    @Test("durables, backlog, topics, purge and durable delete on every log; unknown counts are nil", arguments: LogKind.allCases)
    func capabilities(_ kind: LogKind) async throws {
        try await withLog(kind) { log in
            let durables = try #require(log as? any DurableCursorAdministration)
            let topicAdmin = try #require(log as? any TopicAdministration)
            #expect((log is any StoreBackup) == (kind != .jetstream))
            let stored = try await log.appendAll(try (1...4).map { try message("jobs.a", "j\($0)") } + [try message("other.b", "o")])
            try await log.commitCursorAndWait(owner: testOwner(1), name: "work", sequence: 2, filter: "jobs.>")
            try await log.commitCursorAndWait(owner: testOwner(2), name: "b", sequence: 1, filter: "other.b")
            try await log.commitCursorAndWait(owner: testOwner(1), name: "a", sequence: 3, filter: "jobs.>")
            let listed = try durables.durableCursors()
            #expect(listed == [DurableCursorRecord(owner: testOwner(1), name: "a", cursor: 3, filter: "jobs.>"),
                               DurableCursorRecord(owner: testOwner(1), name: "work", cursor: 2, filter: "jobs.>"),
                               DurableCursorRecord(owner: testOwner(2), name: "b", cursor: 1, filter: "other.b")])
            let backlog = try durables.backlog(after: 2, filter: try TopicFilter("jobs.>"), limit: 1_000_000)
            let all = try log.readAll()
            let third = try #require(all.count == 5 ? all[2] : nil)
            #expect(third.sequence == stored[2])
            #expect(backlog == DurableBacklog(messages: 2, capped: false, oldestTimestamp: third.timestamp))

            let topics = try topicAdmin.topicStatistics()
            #expect(topics.map(\.topic) == ["jobs.a", "other.b"])
            let jobs = try #require(topics.first)
            #expect(jobs.messages == 4 && jobs.firstSequence == 1 && jobs.lastSequence == 4)
            #expect(jobs.firstTimestamp != nil && (jobs.lastTimestamp ?? 0) >= (jobs.firstTimestamp ?? .max))
            #expect((jobs.bytes == nil) == (kind == .jetstream), "\(jobs)")

            #expect(try await durables.deleteDurableCursor(owner: testOwner(1), name: "work"))
            #expect(try await !durables.deleteDurableCursor(owner: testOwner(1), name: "work"))
            #expect(try log.durableNames(owner: testOwner(1), limit: 10) == ["a"])
            #expect(try durables.durableCursors().map(\.name) == ["a", "b"])

            let purged = try topicAdmin.purge(try TopicFilter("jobs.>"))
            #expect(purged.messages == 4)
            #expect((purged.bytes == nil && purged.topics == nil) == (kind == .jetstream), "\(purged)")
            #expect(try topicAdmin.topicStatistics().map(\.topic) == ["other.b"])
        }
    }

    @Test("an LMDB backup, streamed while open, opens as a store with every message and cursor")
    func backupOpens() async throws {
        let target = try TemporaryDirectory(prefix: "relay-backup")
        defer { target.remove() }
        try await withStore { store, _ in
            let payloads = (1...300).map { "m\($0)" }
            try await store.appendAll(try payloads.map { try message("orders.eu", $0) })
            try await store.commitCursorAndWait(owner: testOwner(2), name: "billing", sequence: 123, filter: "orders.>")
            var bytes: [UInt8] = []
            var chunks = 0
            // 960: relayd's chunk for a client announcing the smallest frame
            // limit (1,024); a 4,096-byte floor once overran it (wave 18).
            let total = try store.backup(chunkSize: 960) { chunk in
                #expect(chunk.count <= 960)
                chunks += 1
                bytes += chunk
            }
            #expect(total == bytes.count && chunks > 1)
            try Data(bytes).write(to: URL(fileURLWithPath: target.path + "/data.mdb"))
            let copy = try MessageStore.open(StoreConfiguration(directory: target.path))
            defer { copy.close() }
            let restored = try copy.readAll().map(\.text)
            #expect(restored == payloads)
            #expect(try copy.durableCursor(owner: testOwner(2), name: "billing") == DurableCursor(sequence: 123, filter: "orders.>"))
        }
    }
}
