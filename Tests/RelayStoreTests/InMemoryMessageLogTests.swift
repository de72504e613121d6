import Foundation
import NIOCore
import RelayCore
@testable import RelayStore
import Testing

/// A value shared with @Sendable closures (completions, the clock).
final class LockedBox<Value>: @unchecked Sendable {
    private let lock = NSLock()
    /// Guarded by `lock`.
    private var value: Value
    init(_ value: Value) { self.value = value }
    func withLockedValue<R>(_ body: (inout Value) -> R) -> R {
        lock.lock()
        defer { lock.unlock() }
        return body(&value)
    }
}

/// What is particular to ``InMemoryMessageLog`` (the shared behaviour is in
/// MessageLogContractTests).
@Suite("In-memory message log")
struct InMemoryMessageLogTests {
    @Test("completions run before append and commitCursor return (deterministic session tests)")
    func completionsAreSynchronous() throws {
        let log = InMemoryMessageLog()
        let seen = LockedBox<[UInt64]>([])
        log.append([try message("t", "1"), try message("t", "2")]) { results in
            seen.withLockedValue { $0 += results.compactMap { try? $0.get().sequence } }
        }
        #expect(seen.withLockedValue { $0 } == [1, 2])
        let committed = LockedBox(false)
        log.commitCursor(owner: testOwner(1), name: "c", sequence: 2, filter: "t") { result in
            committed.withLockedValue { $0 = (try? result.get()) != nil }
        }
        #expect(committed.withLockedValue { $0 })
    }

    @Test("an append beyond maxBytes fails alone with storageFull; retention frees room")
    func storageFull() async throws {
        let log = InMemoryMessageLog(retention: [RetentionRule(filter: try TopicFilter(">"), maxMessages: 1)], maxBytes: 3_000)
        let results = await log.appendAndWait([try message("t", String(repeating: "a", count: 1_000)),
                                               try message("t", String(repeating: "b", count: 2_500)),
                                               try message("t", String(repeating: "c", count: 1_000))])
        #expect(try results[0].get().sequence == 1)
        #expect(throws: StoreError.storageFull(maxMapSize: 3_000)) { try results[1].get() }
        #expect(try results[2].get().sequence == 2)
        #expect(try await log.prune() == 1)
        #expect(try await log.appendAndWait(try message("t", String(repeating: "d", count: 1_000))).sequence == 3)
    }

    @Test("retention by age and dedup by age follow the injected clock")
    func agesFollowTheClock() async throws {
        let now = LockedBox<UInt64>(1_000_000_000_000)
        let log = InMemoryMessageLog(dedupWindow: DedupWindow(maxEntries: 100, maxAge: .seconds(10)),
                                     retention: [RetentionRule(filter: try TopicFilter("old.>"), maxAge: .seconds(60))],
                                     clock: { now.withLockedValue { $0 } })
        let key = ProducerKey(publisher: testDigest, sessionHigh: 1, sessionLow: 1, publishID: 1)
        _ = try await log.appendAndWait(try message("old.a", "1", producerKey: key))
        try await log.appendAll([try message("keep", "2")])
        now.withLockedValue { $0 += 30_000_000_000 }  // 30 s: the key is out of the window, the message still kept
        #expect(try await log.prune() == 1)
        #expect(try await !log.appendAndWait(try message("old.a", "3", producerKey: key)).duplicate)
        now.withLockedValue { $0 += 40_000_000_000 }  // 70 s after the first: it goes, the newer one stays
        #expect(try await log.prune() == 2)  // the first message and the second key
        #expect(try log.readAll().map(\.text) == ["2", "3"])
        #expect(try log.startSequence(.time(0), filter: TopicFilter(">")) == 2)
    }

    @Test("a stored payload is the log's own copy, not a view of the caller's buffer")
    func payloadIsCopied() async throws {
        let log = InMemoryMessageLog()
        var big = ByteBuffer(string: String(repeating: "h", count: 65_536) + "payload")
        big.moveReaderIndex(forwardBy: 65_536)
        let read = big.readSlice(length: 7)
        let slice = try #require(read)
        try await log.appendAll([NewMessage(topic: try Topic("t"), payload: slice, publisher: testPublisher)])
        let stored = try #require(try log.readAll().first)
        #expect(String(buffer: stored.payload) == "payload")
        #expect(stored.payload.capacity < 1_024, "kept \(stored.payload.capacity) bytes for a 7-byte payload")
    }
}
