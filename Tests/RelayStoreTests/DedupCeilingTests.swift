import RelayCore
@testable import RelayStore
import Testing

/// The writer skips the dedup lookup of a producer key above the largest
/// stored one (``DedupCeiling``). That is only sound if ``DedupEntry`` orders
/// keys exactly as LMDB orders their bytes, and if the ceiling follows every
/// put and every pruning.
@Suite struct DedupCeilingTests {
    @Test("dedup entries order as their stored bytes do (LMDB's memcmp order), and parse back from them")
    func entriesOrderAsTheirBytes() throws {
        var generator = SystemRandomNumberGenerator()
        // Few distinct values per field, so equal prefixes (and equal keys) are common.
        let words: [UInt64] = [0, 1, 0xFF, 0x100, 0x8000_0000_0000_0000, .max]
        func entry() -> DedupEntry {
            DedupEntry(publisher: [0, 1, 2, 0x0100_0000].randomElement(using: &generator) ?? 0,
                       ProducerKey(publisher: .zero, sessionHigh: words.randomElement(using: &generator) ?? 0,
                                   sessionLow: words.randomElement(using: &generator) ?? 0,
                                   publishID: words.randomElement(using: &generator) ?? 0))
        }
        func bytes(_ e: DedupEntry) throws -> [UInt8] {
            try e.withBytes(timestamp: 7) { (key, _) throws(StoreError) in Array(key) }
        }
        for _ in 0..<2_000 {
            let a = entry(), b = entry()
            let (ka, kb) = (try bytes(a), try bytes(b))
            #expect(ka.count == Schema.dedupKeySize)
            #expect((a < b) == ka.lexicographicallyPrecedes(kb), "\(ka) vs \(kb)")
            #expect((a == b) == (ka == kb))
            let parsed = ka.withUnsafeBytes { DedupEntry(key: $0) }
            #expect(parsed == a)
        }
        #expect([UInt8](repeating: 0, count: 27).withUnsafeBytes { DedupEntry(key: $0) } == nil)
    }

    @Test("a retry in the same commit as the first publish is a duplicate: in a new store, and once pruning emptied the dedup table")
    func retryInTheCommitThatFillsAnEmptyTable() async throws {
        // maxEntries 0: every prune empties the dedup table, but the publisher keeps its number.
        try await withStore({ $0.dedup = DedupWindow(maxEntries: 0, maxAge: .seconds(3600)) }) { store, _ in
            let key = { (id: UInt64) in ProducerKey(publisher: testDigest, sessionHigh: 3, sessionLow: 3, publishID: id) }
            let first = try await store.append([try message("e", "first", producerKey: key(1)),
                                                try message("e", "retry", producerKey: key(1))]).map { try $0.get() }
            #expect(first.map(\.duplicate) == [false, true])
            #expect(first.map(\.sequence) == [1, 1])
            _ = try await store.prune()
            let second = try await store.append([try message("e", "second", producerKey: key(2)),
                                                 try message("e", "retry", producerKey: key(2))]).map { try $0.get() }
            #expect(second.map(\.duplicate) == [false, true])
            #expect(second.map(\.sequence) == [2, 2])
        }
    }

    @Test("retries are recognised when the largest stored key was pruned, and within one commit, above and below the others")
    func retriesAroundAPrunedCeiling() async throws {
        try await withStore({ $0.dedup = DedupWindow(maxEntries: 2, maxAge: .seconds(3600)) }) { store, _ in
            let high = ProducerKey(publisher: testDigest, sessionHigh: 9, sessionLow: 0, publishID: 1)  // sorts last
            let low = (1...2).map { ProducerKey(publisher: testDigest, sessionHigh: 1, sessionLow: 0, publishID: UInt64($0)) }
            let stored = try await appendAll(store, [try message("c", "high", producerKey: high),
                                                     try message("c", "low1", producerKey: low[0]),
                                                     try message("c", "low2", producerKey: low[1])])
            // The window keeps the two newest: `high`, the largest key, goes.
            _ = try await store.prune()
            let next = ProducerKey(publisher: testDigest, sessionHigh: 1, sessionLow: 0, publishID: 3)
            let results = try await store.append([
                try message("c", "high again", producerKey: high),  // forgotten: stored anew
                try message("c", "high again", producerKey: high),  // now a retry, same commit
                try message("c", "low2 again", producerKey: low[1]),  // below the ceiling
                try message("c", "next", producerKey: next),
                try message("c", "next again", producerKey: next),
            ]).map { try $0.get() }
            #expect(results.map(\.duplicate) == [false, true, true, false, true])
            #expect(results[1].sequence == results[0].sequence && results[0].sequence == 4)
            #expect(results[2].sequence == stored[2])
            #expect(results[4].sequence == results[3].sequence && results[3].sequence == 5)
            #expect(try store.read(from: 1, filter: TopicFilter("c")).messages.map(\.text) == ["high", "low1", "low2", "high again", "next"])
        }
    }
}
