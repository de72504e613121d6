import Foundation
import NIOCore
import RelayCore
@testable import RelayStore
import Testing

/// What the broker relies on from any ``MessageLog``, checked on all three
/// implementations: LMDB's ``MessageStore``, ``InMemoryMessageLog`` and
/// `JetStreamMessageLog` (on a real nats-server).
@Suite("MessageLog contract")
struct MessageLogContractTests {
    @Test("append assigns sequences from 1; reads return them in order, by filter, in bounded batches",
          arguments: LogKind.allCases)
    func appendAndRead(_ kind: LogKind) async throws {
        try await withLog(kind) { log in
            #expect(try log.lastSequence() == 0)
            let sequences = try await log.appendAll([try message("a.b", "1"), try message("a.c", "2"), try message("x", "3")])
            #expect(sequences == [1, 2, 3])
            try await log.appendAll([try message("a.b", "4", headers: try headerBlock([("k", "v")]))])
            #expect(try log.lastSequence() == 4)
            #expect(try log.readAll().map(\.text) == ["1", "2", "3", "4"])
            #expect(try log.readAll(filter: "a.*").map(\.sequence) == [1, 2, 4])
            #expect(try log.readAll(filter: "a.b").map(\.text) == ["1", "4"])
            #expect(try log.readAll(from: 3).map(\.text) == ["3", "4"])
            let last = try #require(try log.readAll(filter: "a.b").last)
            #expect(last.headers == (try headerBlock([("k", "v")])))
            #expect(last.publisher == testPublisher)
            #expect(last.topic.value == "a.b")
            // A bounded batch says where to continue.
            let page = try log.read(from: 1, filter: TopicFilter(">"), maxMessages: 2, maxBytes: 1 << 20, maxScan: 65_536)
            #expect(page.messages.map(\.sequence) == [1, 2])
            #expect(!page.reachedEnd && page.next == 3)
            let end = try log.read(from: 5, filter: TopicFilter(">"), maxMessages: 2, maxBytes: 1 << 20, maxScan: 65_536)
            #expect(end.messages.isEmpty && end.reachedEnd && end.next == 5)
            // One append is one commit: one timestamp, later than the previous one.
            let stored = try log.readAll()
            #expect(stored[0].timestamp == stored[2].timestamp)
            #expect(stored[3].timestamp > stored[2].timestamp)
        }
    }

    @Test("a wildcard read examines at most maxScan records and still makes progress", arguments: LogKind.allCases)
    func wildcardReadIsBounded(_ kind: LogKind) async throws {
        try await withLog(kind) { log in
            try await log.appendAll(try (1...10).map { try message("other", "\($0)") } + [try message("m.x", "hit")])
            let page = try log.read(from: 1, filter: TopicFilter("m.*"), maxMessages: 10, maxBytes: 1 << 20, maxScan: 4)
            #expect(page.messages.isEmpty)
            #expect(!page.reachedEnd && page.next == 5)
            #expect(try log.readAll(filter: "m.*").map(\.text) == ["hit"])
        }
    }

    @Test("a retried producer key returns the original sequence, within a batch and across batches, per publisher",
          arguments: LogKind.allCases)
    func dedup(_ kind: LogKind) async throws {
        try await withLog(kind) { log in
            let key = ProducerKey(publisher: testDigest, sessionHigh: 1, sessionLow: 2, publishID: 3)
            let other = try #require(CertificateFingerprint(hex: String(repeating: "a1", count: 32)))
            let theirs = ProducerKey(publisher: other, sessionHigh: 1, sessionLow: 2, publishID: 3)
            let first = try await log.appendAndWait(try message("p", "one", producerKey: key))
            #expect(!first.duplicate)
            let batch = await log.appendAndWait([try message("p", "again", producerKey: key),
                                                 try message("p", "theirs", producerKey: theirs),
                                                 try message("p", "theirs again", producerKey: theirs)])
            let receipts = try batch.map { try $0.get() }
            #expect(receipts[0].duplicate && receipts[0].sequence == first.sequence && receipts[0].timestamp == first.timestamp)
            #expect(!receipts[1].duplicate && receipts[1].sequence == first.sequence + 1)
            #expect(receipts[2].duplicate && receipts[2].sequence == receipts[1].sequence)
            #expect(try log.readAll().map(\.text) == ["one", "theirs"])
        }
    }

    // JetStream's duplicate window is by time only: not run there (docs/cluster.md).
    @Test("pruning forgets producer keys beyond the window's entry count", arguments: LogKind.local)
    func dedupWindowByCount(_ kind: LogKind) async throws {
        try await withLog(kind, { $0.dedup = DedupWindow(maxEntries: 2, maxAge: .seconds(3600)) }) { log in
            #expect(log.dedupWindow == DedupWindow(maxEntries: 2, maxAge: .seconds(3600)))
            let keys = (1...3).map { ProducerKey(publisher: testDigest, sessionHigh: 1, sessionLow: 2, publishID: UInt64($0)) }
            for (i, key) in keys.enumerated() { _ = try await log.appendAndWait(try message("d", "\(i)", producerKey: key)) }
            _ = try await log.prune()  // (LMDB's writer may already have pruned the key when it was over the count)
            #expect(try await !log.appendAndWait(try message("d", "again", producerKey: keys[0])).duplicate)
            let retry = try await log.appendAndWait(try message("d", "again", producerKey: keys[2]))
            #expect(retry.duplicate && retry.sequence == 3)
        }
    }

    @Test("start positions resolve to the first sequence to read", arguments: LogKind.allCases)
    func startPositions(_ kind: LogKind) async throws {
        try await withLog(kind) { log in
            let any = try TopicFilter(">")
            #expect(try log.startSequence(.earliest, filter: any) == 1)
            #expect(try log.startSequence(.last(3), filter: any) == 1)
            try await log.appendAll([try message("x.a", "1"), try message("x.b", "2")])
            let middle = try #require(try log.readAll().last).timestamp + 1
            try await log.appendAll([try message("x.a", "3"), try message("y", "4")])
            try await log.appendAll([try message("x.a", "5")])
            #expect(try log.startSequence(.earliest, filter: any) == 1)
            #expect(try log.startSequence(.latest, filter: any) == 6)
            #expect(try log.startSequence(.sequence(4), filter: any) == 4)
            #expect(try log.startSequence(.sequence(0), filter: any) == 1)
            #expect(try log.startSequence(.time(middle), filter: any) == 3)
            #expect(try log.startSequence(.time(0), filter: any) == 1)
            #expect(try log.startSequence(.time(UInt64.max), filter: any) == 6)
            #expect(try log.startSequence(.last(2), filter: TopicFilter("x.a")) == 3)
            #expect(try log.startSequence(.last(10), filter: TopicFilter("x.a")) == 1)
            #expect(try log.startSequence(.last(2), filter: TopicFilter("x.*")) == 3)
            #expect(try log.startSequence(.last(3), filter: TopicFilter("x.*")) == 2)
            #expect(try log.startSequence(.last(1), filter: TopicFilter("nope.*")) == 6)
            #expect(try log.startSequence(.last(1), filter: TopicFilter("nope")) == 6)
        }
    }

    @Test("durable cursors are kept per owner and name; a new log has no legacy cursors", arguments: LogKind.allCases)
    func cursors(_ kind: LogKind) async throws {
        try await withLog(kind) { log in
            #expect(try log.cursor(owner: testOwner(1), name: "c") == nil)
            try await log.commitCursorAndWait(owner: testOwner(1), name: "c", sequence: 7)
            try await log.commitCursorAndWait(owner: testOwner(2), name: "c", sequence: 9)
            try await log.commitCursorAndWait(owner: testOwner(1), name: "c", sequence: 8)
            #expect(try log.cursor(owner: testOwner(1), name: "c") == 8)
            #expect(try log.cursor(owner: testOwner(2), name: "c") == 9)
            #expect(try log.cursor(owner: testOwner(1), name: "d") == nil)
            #expect(try log.legacyCursor(principal: "anyone", name: "c") == nil)
            let adopted: Result<Void, StoreError> = await withCheckedContinuation { continuation in
                log.adoptLegacyCursor(principal: "anyone", name: "e", owner: testOwner(3), sequence: 4, filter: "e.>") {
                    continuation.resume(returning: $0)
                }
            }
            try adopted.get()
            #expect(try log.cursor(owner: testOwner(3), name: "e") == 4)
        }
    }

    @Test("a durable cursor keeps the filter it was committed with, across a reopen of the log", arguments: LogKind.allCases)
    func cursorFilterSurvivesReopen(_ kind: LogKind) async throws {
        try await withReopenableLog(kind) { open in
            let first = try open()
            try await first.commitCursorAndWait(owner: testOwner(1), name: "d", sequence: 5, filter: "a.>")
            try await first.commitCursorAndWait(owner: testOwner(2), name: "d", sequence: 6, filter: "b.*.c")
            try await first.commitCursorAndWait(owner: testOwner(1), name: "d", sequence: 7, filter: "a.>")
            if kind != .memory { first.close() }  // the in-memory log is its own "reopen"
            let again = try open()
            defer { if kind != .memory { again.close() } }
            #expect(try again.durableCursor(owner: testOwner(1), name: "d") == DurableCursor(sequence: 7, filter: "a.>"))
            #expect(try again.durableCursor(owner: testOwner(2), name: "d") == DurableCursor(sequence: 6, filter: "b.*.c"))
            #expect(try again.durableCursor(owner: testOwner(1), name: "e") == nil)
        }
    }

    @Test("retention keeps the newest messages of each topic a rule matches", arguments: LogKind.allCases)
    func retentionByCount(_ kind: LogKind) async throws {
        try await withLog(kind, { $0.retention = [RetentionRule(filter: try TopicFilter("r.>"), maxMessages: 2)] }) { log in
            try await log.appendAll(try (1...4).map { try message("r.a", "a\($0)") } + [try message("r.b", "b1"), try message("k", "k1")])
            #expect(try await log.prune() >= 2)
            #expect(try log.readAll().map(\.text) == ["a3", "a4", "b1", "k1"])
            #expect(try log.startSequence(.earliest, filter: TopicFilter(">")) == 3)
            #expect(try log.lastSequence() == 6)
            #expect(try log.usage().messages == 4)
        }
    }

    @Test("usage counts messages and bytes; a closed log refuses appends with .closed", arguments: LogKind.allCases)
    func usageAndClose(_ kind: LogKind) async throws {
        try await withLog(kind) { log in
            let empty = try log.usage()
            try await log.appendAll([try message("u", String(repeating: "x", count: 10_000))])
            let used = try log.usage()
            #expect(used.messages == 1 && empty.messages == 0)
            #expect(used.usedBytes > empty.usedBytes)
            #expect(used.maxBytes >= used.allocatedBytes && used.allocatedBytes >= used.usedBytes)
            log.close()
            log.close()  // idempotent
            let results = await log.appendAndWait([try message("u", "late")])
            #expect(results.count == 1)
            let readFirst = { try results[0].get() }
            #expect(throws: StoreError.closed, performing: readFirst)
        }
    }
}
