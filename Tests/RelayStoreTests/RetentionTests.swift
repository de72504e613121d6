import Foundation
import NIOCore
import RelayCore
@testable import RelayStore
import RelayTestSupport
import Testing

/// Retention rules, the pruner, and the full-store behaviour.
@Suite struct RetentionTests {
    func texts(_ store: MessageStore, _ filter: String = ">") throws -> [String] {
        try store.read(from: 1, filter: TopicFilter(filter), maxMessages: 10_000, maxBytes: 1 << 30).messages.map(\.text)
    }

    @Test func maxMessagesKeepsTheNewestPerTopic() async throws {
        try await withStore({ $0.retention = [RetentionRule(filter: try TopicFilter("keep3.>"), maxMessages: 3)] }) { store, _ in
            for i in 0..<6 {
                try await appendAll(store, [try message("keep3.a", "a\(i)"), try message("keep3.b", "b\(i)"),
                                            try message("other", "o\(i)")])
            }
            let deleted = try await store.prune()
            #expect(deleted == 6)
            #expect(try texts(store, "keep3.a") == ["a3", "a4", "a5"])
            #expect(try texts(store, "keep3.b") == ["b3", "b4", "b5"])
            #expect(try texts(store, "other").count == 6)
            // Sequences are not reused after deletion.
            #expect(try await appendAll(store, [try message("keep3.a", "a6")]) == [19])
        }
    }

    @Test func maxBytesKeepsTheNewestWithinTheLimit() async throws {
        try await withStore({ $0.retention = [RetentionRule(filter: try TopicFilter("b"), maxBytes: 2_500)] }) { store, _ in
            for i in 0..<10 { try await appendAll(store, [try message("b", "\(i)" + String(repeating: "x", count: 999))]) }
            _ = try await store.prune()
            let kept = try texts(store)
            #expect(kept.count == 2)   // each record is ~1.1 kB with its envelope
            #expect(kept.last?.hasPrefix("9") == true)
        }
    }

    @Test func maxAgeDropsOldMessagesAndTheirTimeEntries() async throws {
        // The store's clock is the test's: "old" is 4 s old and "new" 0 s at
        // prune() however long the machine stalls (with sleeps, a loaded
        // machine once made "new" older than maxAge too).
        let clock = ManualWallClock()
        try await withStore({
            $0.retention = [RetentionRule(filter: try TopicFilter(">"), maxAge: .seconds(3))]
            $0.wallClock = clock.clock
        }) { store, _ in
            try await appendAll(store, [try message("t", "old1"), try message("u", "old2")])
            clock.advance(by: .seconds(4))
            try await appendAll(store, [try message("t", "new")])
            clock.advance(by: .milliseconds(10))
            _ = try await store.prune()
            #expect(try texts(store) == ["new"])
            #expect(try store.firstSequence() == 3)
            #expect(try store.startSequence(.time(0), filter: TopicFilter(">")) == 3)
        }
    }

    @Test func firstMatchingRuleWins() async throws {
        try await withStore({
            $0.retention = [RetentionRule(filter: try TopicFilter("logs.debug"), maxMessages: 1),
                            RetentionRule(filter: try TopicFilter("logs.>"), maxMessages: 2)]
        }) { store, _ in
            for i in 0..<4 { try await appendAll(store, [try message("logs.debug", "d\(i)"), try message("logs.info", "i\(i)")]) }
            _ = try await store.prune()
            #expect(try texts(store, "logs.debug") == ["d3"])
            #expect(try texts(store, "logs.info") == ["i2", "i3"])
        }
    }

    @Test func prunerWorksInBoundedBatches() async throws {
        try await withStore({
            $0.retention = [RetentionRule(filter: try TopicFilter(">"), maxMessages: 1)]
            $0.pruneBatchSize = 7
            // Only the explicit prune() below may delete, so its count is exact.
            $0.pruneInterval = .seconds(3600)
        }) { store, _ in
            try await appendAll(store, (0..<100).map { try message("many", "\($0)") })
            #expect(try await store.prune() == 99)
            #expect(try texts(store) == ["99"])
        }
    }

    @Test func backgroundPrunerRunsOnItsInterval() async throws {
        try await withStore({
            $0.retention = [RetentionRule(filter: try TopicFilter(">"), maxMessages: 2)]
            $0.pruneInterval = .milliseconds(50)
        }) { store, _ in
            try await appendAll(store, (0..<10).map { try message("bg", "\($0)") })
            var remaining = 10
            for _ in 0..<100 where remaining > 2 {
                try await Task.sleep(for: .milliseconds(20))
                remaining = try texts(store).count
            }
            #expect(remaining == 2)
        }
    }

    @Test func fullStoreRefusesAppendsButKeepsReadsAndCursorCommits() async throws {
        try await withStore({
            $0.initialMapSize = 1 << 20
            $0.maxMapSize = 2 << 20
            $0.pruneInterval = .seconds(3600)   // only the explicit prune below
        }) { store, _ in
            let payload = String(repeating: "z", count: 4_000)
            var stored = 0
            var fullError: StoreError?
            for round in 0..<2_000 where fullError == nil {
                let results = await store.append(try (0..<8).map { _ in try message("fill.\(round % 4)", payload) })
                for result in results {
                    switch result {
                    case .success: stored += 1
                    case .failure(let error): fullError = error
                    }
                }
            }
            #expect(fullError == .storageFull(maxMapSize: 2 << 20))
            #expect(stored > 100)
            // Reads still work on a full store.
            let batch = try store.read(from: 1, filter: TopicFilter("fill.>"), maxMessages: 10)
            #expect(batch.messages.count == 10)
            // Appends keep failing fast; cursor commits still succeed.
            let refused = await store.append(try (0..<8).map { _ in try message("fill.0", payload) })
            let readRefused = { try refused[0].get() }
            #expect(throws: StoreError.storageFull(maxMapSize: 2 << 20), performing: readRefused)
            try await store.commitCursor(owner: testOwner(1), name: "d", sequence: 5, filter: "d.>")
            #expect(try store.cursor(owner: testOwner(1), name: "d") == 5)
        }
    }

    @Test func retentionFreesAFullStore() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        var configuration = StoreConfiguration(directory: dir.path)
        configuration.initialMapSize = 1 << 20
        configuration.maxMapSize = 2 << 20
        configuration.pruneInterval = .seconds(3600)
        configuration.retention = [RetentionRule(filter: try TopicFilter("fill.>"), maxMessages: 20)]
        let store = try MessageStore.open(configuration)
        defer { store.close() }
        // Fill without pruning (the interval is an hour).
        let payload = String(repeating: "z", count: 4_000)
        var full = false
        var stored = 0
        for round in 0..<2_000 where !full {
            for result in await store.append([try message("fill.\(round % 4)", payload)]) {
                if case .failure(let error) = result {
                    #expect(error == .storageFull(maxMapSize: 2 << 20))
                    full = true
                } else {
                    stored += 1
                }
            }
        }
        #expect(full)
        #expect(try store.read(from: 1, filter: TopicFilter(">"), maxMessages: 5).messages.count == 5)
        let deleted = try await store.prune()
        #expect(deleted == stored - 80)
        // Space freed: appends succeed again, right away.
        let receipt = try await store.append(try message("fill.0", payload))
        #expect(receipt.sequence == UInt64(stored + 1))
        #expect(try store.read(topic: Topic("fill.0"), from: 1).messages.count == 21)
    }
}
