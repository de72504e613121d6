import Foundation
import NIOCore
import RelayCore
@testable import RelayStore
import RelayTestSupport
import Testing

/// Appending, the record round trip, replay modes and durable cursors.
@Suite struct MessageStoreTests {
    @Test func roundTripKeepsEveryField() async throws {
        try await withStore { store, _ in
            let headers = try headerBlock([("content-type", "text/plain"), ("x", "")])
            let other = PublisherStamp(principal: "billing", fingerprint: CertificateFingerprint(w0: 1, w1: 2, w2: 3, w3: 4))
            let receipts = try await store.append([
                try message("orders.eu.created", "hello", headers: headers),
                try message("orders.us.created", "", publisher: other),
            ]).map { try $0.get() }
            #expect(receipts.map(\.sequence) == [1, 2])
            let noneDuplicate = receipts.allSatisfy { !$0.duplicate }
            #expect(noneDuplicate)
            let batch = try store.read(from: 1, filter: TopicFilter(">"))
            #expect(batch.messages.count == 2)
            let first = try #require(batch.messages.first)
            #expect(first.sequence == 1)
            #expect(first.topic.value == "orders.eu.created")
            #expect(first.text == "hello")
            #expect(first.headers == headers)
            #expect(first.publisher == testPublisher)
            #expect(first.timestamp == receipts[0].timestamp)
            let second = try #require(batch.messages.last)
            #expect(second.publisher == other)
            #expect(second.payload.readableBytes == 0)
            #expect(batch.reachedEnd)
            #expect(batch.next == 3)
        }
    }

    @Test func sequencesSurviveReopenAndStartAtOne() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let configuration = StoreConfiguration(directory: dir.path)
        var store = try MessageStore.open(configuration)
        #expect(try store.lastSequence() == 0)
        try await appendAll(store, [try message("a", "1"), try message("a", "2")])
        store.close()
        store = try MessageStore.open(configuration)
        defer { store.close() }
        #expect(try store.lastSequence() == 2)
        #expect(try await appendAll(store, [try message("a", "3")]) == [3])
    }

    @Test func commitTimestampsIncreaseAcrossCommits() async throws {
        try await withStore { store, _ in
            var last: UInt64 = 0
            for i in 0..<5 {
                let receipt = try await store.append(try message("t", "\(i)"))
                #expect(receipt.timestamp > last)
                last = receipt.timestamp
            }
        }
    }

    @Test func wildcardReplayFiltersAndPages() async throws {
        try await withStore { store, _ in
            var batch: [NewMessage] = []
            for i in 0..<30 { batch.append(try message(i % 3 == 0 ? "orders.eu.created" : "audit.x", "\(i)")) }
            try await appendAll(store, batch)
            let filter = try TopicFilter("orders.*.created")
            var seen: [String] = []
            var next: UInt64 = 1
            var reachedEnd = false
            while !reachedEnd {
                let page = try store.read(from: next, filter: filter, maxMessages: 4)
                #expect(page.messages.count <= 4)
                seen += page.messages.map(\.text)
                next = page.next
                reachedEnd = page.reachedEnd
            }
            let everyThird = stride(from: 0, to: 30, by: 3).map { "\($0)" }
            #expect(seen == everyThird)
            #expect(next == 31)
        }
    }

    @Test func maxBytesBoundsABatchButReturnsAtLeastOne() async throws {
        try await withStore { store, _ in
            try await appendAll(store, (0..<10).map { _ in try message("big", String(repeating: "x", count: 1000)) })
            let page = try store.read(from: 1, filter: TopicFilter(">"), maxBytes: 2500)
            #expect(page.messages.count == 3)
            #expect(page.next == 4)
            #expect(!page.reachedEnd)
            let one = try store.read(from: 1, filter: TopicFilter(">"), maxBytes: 10)
            #expect(one.messages.count == 1)
        }
    }

    @Test("a topic replay over runs of consecutive records and gaps returns each record once, in order, with its own content")
    func topicReplayWalksConsecutiveRecords() async throws {
        try await withStore { store, _ in
            let plan = ["x", "x", "x", "y", "x", "x", "y", "y", "x"]
            try await appendAll(store, try plan.enumerated().map { try message("t.\($1)", "\($1)\($0 + 1)") })
            let all = try store.read(topic: Topic("t.x"), from: 1, maxMessages: 100)
            #expect(all.messages.map(\.sequence) == [1, 2, 3, 5, 6, 9])
            #expect(all.messages.map(\.text) == ["x1", "x2", "x3", "x5", "x6", "x9"])
            // Paged two at a time, each page starting where the last one stopped.
            var pages: [[UInt64]] = []
            var from: UInt64 = 1
            while true {
                let page = try store.read(topic: Topic("t.x"), from: from, maxMessages: 2)
                if page.messages.isEmpty { break }
                pages.append(page.messages.map(\.sequence))
                from = page.next
            }
            #expect(pages == [[1, 2], [3, 5], [6, 9]])
            #expect(try store.read(topic: Topic("t.y"), from: 5).messages.map(\.text) == ["y7", "y8"])
        }
    }

    @Test func topicReplayUsesTheTopicIndex() async throws {
        try await withStore { store, _ in
            try await appendAll(store, [try message("a.b", "1"), try message("a.c", "2"), try message("a.b", "3"),
                                        try message("a.b.c", "4"), try message("a.b", "5")])
            let page = try store.read(topic: Topic("a.b"), from: 2)
            #expect(page.messages.map(\.text) == ["3", "5"])
            #expect(page.messages.map(\.sequence) == [3, 5])
            #expect(page.reachedEnd)
            #expect(page.next == 6)
            // A literal filter takes the same path.
            let viaFilter = try store.read(from: 1, filter: TopicFilter("a.b"), maxMessages: 2)
            #expect(viaFilter.messages.map(\.text) == ["1", "3"])
            #expect(!viaFilter.reachedEnd)
            #expect(viaFilter.next == 4)
            #expect(try store.read(topic: Topic("nothing.here"), from: 1).messages.isEmpty)
        }
    }

    @Test func startPositions() async throws {
        try await withStore { store, _ in
            let early = try await appendAll(store, [try message("x.a", "1"), try message("x.b", "2")])
            try await Task.sleep(for: .milliseconds(5))
            let middle = Appender.wallClockNanoseconds()
            try await Task.sleep(for: .milliseconds(5))
            try await appendAll(store, [try message("x.a", "3"), try message("y", "4")])
            try await appendAll(store, [try message("x.a", "5")])
            let any = try TopicFilter(">")
            #expect(early == [1, 2])
            #expect(try store.startSequence(.earliest, filter: any) == 1)
            #expect(try store.startSequence(.latest, filter: any) == 6)
            #expect(try store.startSequence(.sequence(4), filter: any) == 4)
            #expect(try store.startSequence(.time(middle), filter: any) == 3)
            #expect(try store.startSequence(.time(0), filter: any) == 1)
            #expect(try store.startSequence(.time(UInt64.max), filter: any) == 6)
            #expect(try store.startSequence(.last(2), filter: TopicFilter("x.a")) == 3)
            #expect(try store.startSequence(.last(10), filter: TopicFilter("x.a")) == 1)
            #expect(try store.startSequence(.last(2), filter: TopicFilter("x.*")) == 3)
            #expect(try store.startSequence(.last(3), filter: TopicFilter("x.*")) == 2)
            #expect(try store.startSequence(.last(1), filter: TopicFilter("nope.*")) == 6)
        }
    }

    @Test func durableCursorsAreKeyedByOwnerAndName() async throws {
        try await withStore { store, _ in
            try await store.commitCursor(owner: testOwner(1), name: "c", sequence: 10, filter: "c.>")
            try await store.commitCursor(owner: testOwner(2), name: "c", sequence: 20, filter: "c.>")
            try await store.commitCursor(owner: testOwner(1), name: "cc", sequence: 30, filter: "c.>")
            #expect(try store.cursor(owner: testOwner(1), name: "c") == 10)
            #expect(try store.cursor(owner: testOwner(2), name: "c") == 20)
            #expect(try store.cursor(owner: testOwner(1), name: "cc") == 30)
            try await store.commitCursor(owner: testOwner(1), name: "c", sequence: 11, filter: "c.>")
            #expect(try store.cursor(owner: testOwner(1), name: "c") == 11)
            #expect(try store.cursor(owner: testOwner(2), name: "c") == 20)
            try await store.deleteCursor(owner: testOwner(1), name: "c")
            #expect(try store.cursor(owner: testOwner(1), name: "c") == nil)
            #expect(try store.cursor(owner: testOwner(3), name: "c") == nil)
            #expect(try store.legacyCursor(principal: "any", name: "c") == nil)
        }
    }

    @Test("the same session and publish ids from two publishers are two messages")
    func dedupIsKeyedByPublisher() async throws {
        try await withStore { store, _ in
            let other = try #require(CertificateFingerprint(hex: String(repeating: "a1", count: 32)))
            let mine = ProducerKey(publisher: testDigest, sessionHigh: 1, sessionLow: 1, publishID: 7)
            let theirs = ProducerKey(publisher: other, sessionHigh: 1, sessionLow: 1, publishID: 7)
            let first = try await store.append(try message("p", "mine", producerKey: mine))
            let second = try await store.append(try message("p", "theirs", producerKey: theirs))
            #expect(!first.duplicate && !second.duplicate)
            #expect(first.sequence != second.sequence)
            #expect(try await store.append(try message("p", "mine again", producerKey: mine)).sequence == first.sequence)
            #expect(try await store.append(try message("p", "theirs again", producerKey: theirs)).sequence == second.sequence)
        }
    }

    @Test func retriedPublishReturnsTheOriginalSequence() async throws {
        try await withStore { store, _ in
            let key = try ProducerKey(publisher: testDigest, session: [UInt8](repeating: 9, count: 16), publishID: 1)
            let first = try await store.append(try message("p", "one", producerKey: key))
            // Within one batch and across batches.
            let results = try await store.append([try message("p", "one again", producerKey: key),
                                                  try message("p", "two", producerKey: ProducerKey(publisher: testDigest, sessionHigh: 9, sessionLow: 9, publishID: 2)),
                                                  try message("p", "two again", producerKey: ProducerKey(publisher: testDigest, sessionHigh: 9, sessionLow: 9, publishID: 2))])
                .map { try $0.get() }
            #expect(!first.duplicate)
            #expect(results[0] == AppendReceipt(sequence: first.sequence, timestamp: first.timestamp, duplicate: true))
            #expect(!results[1].duplicate)
            #expect(results[2].duplicate && results[2].sequence == results[1].sequence)
            #expect(try store.read(from: 1, filter: TopicFilter(">")).messages.map(\.text) == ["one", "two"])
        }
    }

    @Test("retries are recognised after a restart, the newest id first or not, with producer sessions interleaved")
    func retriesAfterRestart() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let a = (1...5).map { ProducerKey(publisher: testDigest, sessionHigh: 5, sessionLow: 1, publishID: UInt64($0)) }
        let b = (1...3).map { ProducerKey(publisher: testDigest, sessionHigh: 2, sessionLow: 9, publishID: UInt64($0)) }  // sorts before a
        var store = try MessageStore.open(StoreConfiguration(directory: dir.path))
        var original: [ProducerKey: UInt64] = [:]
        for key in [a[0], b[0], a[1], b[1], a[2], b[2], a[3], a[4]] {
            original[key] = try await store.append(try message("r", "\(key.sessionHigh)-\(key.publishID)", producerKey: key)).sequence
        }
        store.close()
        store = try MessageStore.open(StoreConfiguration(directory: dir.path))
        defer { store.close() }
        // Session a's newest id first: nothing cached yet, the index says so.
        let a5 = try await store.append(try message("r", "retry", producerKey: a[4]))
        #expect(a5.duplicate && a5.sequence == original[a[4]])
        let a3 = try await store.append(try message("r", "retry", producerKey: a[2]))
        #expect(a3.duplicate && a3.sequence == original[a[2]])
        let a6key = ProducerKey(publisher: testDigest, sessionHigh: 5, sessionLow: 1, publishID: 6)
        let a6 = try await store.append(try message("r", "new", producerKey: a6key))
        #expect(!a6.duplicate)
        #expect(try await store.append(try message("r", "retry", producerKey: a6key)).sequence == a6.sequence)
        // Session b: its keys are followed by a's in the index.
        let b3 = try await store.append(try message("r", "retry", producerKey: b[2]))
        #expect(b3.duplicate && b3.sequence == original[b[2]])
        let b1 = try await store.append(try message("r", "retry", producerKey: b[0]))
        #expect(b1.duplicate && b1.sequence == original[b[0]])
        #expect(!(try await store.append(try message("r", "new", producerKey: ProducerKey(publisher: testDigest, sessionHigh: 2, sessionLow: 9, publishID: 4)))).duplicate)
        // A session never seen.
        #expect(!(try await store.append(try message("r", "new", producerKey: ProducerKey(publisher: testDigest, sessionHigh: 3, sessionLow: 3, publishID: 1)))).duplicate)
        #expect(try store.read(from: 1, filter: TopicFilter("r")).messages.count == 8 + 3)
    }

    @Test func dedupWindowForgetsOldKeys() async throws {
        try await withStore({ $0.dedup = DedupWindow(maxEntries: 2, maxAge: .seconds(3600)) }) { store, _ in
            let keys = (1...3).map { ProducerKey(publisher: testDigest, sessionHigh: 1, sessionLow: 2, publishID: UInt64($0)) }
            for (i, key) in keys.enumerated() { _ = try await store.append(try message("d", "\(i)", producerKey: key)) }
            _ = try await store.prune()
            // Key 1 fell out of the 2-entry window: a retry is stored again.
            let retry1 = try await store.append(try message("d", "again", producerKey: keys[0]))
            let retry3 = try await store.append(try message("d", "again", producerKey: keys[2]))
            #expect(!retry1.duplicate)
            #expect(retry3.duplicate && retry3.sequence == 3)
        }
    }

    @Test func dedupWindowForgetsKeysByAge() async throws {
        // The test's clock, not sleeps: "old" is 4 s old at prune(), "fresh"
        // inside the window, however long the machine stalls.
        let clock = ManualWallClock()
        try await withStore({
            $0.dedup = DedupWindow(maxEntries: 1_000, maxAge: .seconds(3))
            $0.wallClock = clock.clock
        }) { store, _ in
            let old = ProducerKey(publisher: testDigest, sessionHigh: 7, sessionLow: 7, publishID: 1)
            _ = try await store.append(try message("d", "old", producerKey: old))
            clock.advance(by: .seconds(4))
            let fresh = ProducerKey(publisher: testDigest, sessionHigh: 7, sessionLow: 7, publishID: 2)
            _ = try await store.append(try message("d", "fresh", producerKey: fresh))
            _ = try await store.prune()
            #expect(try await store.append(try message("d", "old again", producerKey: old)).duplicate == false)
            #expect(try await store.append(try message("d", "fresh again", producerKey: fresh)).duplicate)
        }
    }

    @Test func invalidMessageFailsAloneNotTheBatch() async throws {
        try await withStore { store, _ in
            let long = PublisherStamp(principal: String(repeating: "p", count: 70_000), fingerprint: .zero)
            let results = await store.append([try message("ok", "1"), try message("ok", "2", publisher: long), try message("ok", "3")])
            #expect(try results[0].get().sequence == 1)
            let readSecond = { try results[1].get() }
            #expect(throws: StoreError.self, performing: readSecond)
            #expect(try results[2].get().sequence == 2)
        }
    }

    @Test func closedStoreFailsAppendsAndReads() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let store = try MessageStore.open(StoreConfiguration(directory: dir.path))
        store.close()
        let results = await store.append([try message("a", "1")])
        #expect(results.count == 1)
        #expect(throws: StoreError.closed) { try results[0].get() }
        #expect(throws: StoreError.closed) { try store.lastSequence() }
    }

    @Test func secondOpenOfTheSameDirectoryIsRefused() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let store = try MessageStore.open(StoreConfiguration(directory: dir.path))
        #expect(throws: StoreError.self) { _ = try MessageStore.open(StoreConfiguration(directory: dir.path + "/.")) }
        store.close()
        // Closing releases the directory.
        let again = try MessageStore.open(StoreConfiguration(directory: dir.path))
        again.close()
    }

    @Test func schemaVersionIsCheckedOnOpen() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        var options = EnvironmentOptions()
        options.maxDatabases = 16
        let env = try Environment(path: dir.path, options: options)
        let meta = try env.openDatabase("meta")
        try env.write { (txn) throws(StoreError) in
            try Schema.versionKey.withBytes { (k) throws(StoreError) in
                var v = UInt32(99).bigEndian
                _ = try withUnsafeBytes(of: &v) { (value) throws(StoreError) in try txn.put(meta, key: k, value: value) }
            }
        }
        env.close()
        #expect(throws: StoreError.schemaVersionMismatch(path: dir.path, found: 99, supported: Schema.version)) {
            _ = try MessageStore.open(StoreConfiguration(directory: dir.path))
        }
    }
}

