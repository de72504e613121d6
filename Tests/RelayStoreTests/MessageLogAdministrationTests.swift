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
