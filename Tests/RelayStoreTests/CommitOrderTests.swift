import Foundation
import RelayCore
@testable import RelayStore
import RelayTestSupport
import Testing

/// The two halves of "a PUBACK means the message is on disk", checked where
/// a breakage shows every time: the flush itself (`fsync` durability must not open
/// LMDB with a no-sync flag) and the order (a receipt is handed out only
/// after the commit). `make mutants` showed the gap: mutant `fsync` survived
/// every store and durability test (a process crash keeps unflushed pages in
/// the page cache), and `puback-before-commit` was caught only when a SIGKILL
/// or a read happened to land between the early receipt and the commit,
/// microseconds apart. These tests fail on each, every time.
@Suite struct StoreSyncFlagTests {
    @Test("fsync durability: LMDB runs without MDB_NOSYNC, MDB_NOMETASYNC or MDB_MAPASYNC, so each commit is flushed before its receipt")
    func fsyncDurabilityFlushesEveryCommit() async throws {
        try await withStore { store, _ in
            let skipsSync = try store.environment.commitsSkipSync()
            #expect(skipsSync == false)
        }
    }

    /// The check above can fail: the accessor reports the no-sync flag where it is set.
    @Test("async durability: LMDB runs with MDB_NOSYNC (the periodic flush does the syncing)")
    func asyncDurabilitySkipsTheFlush() async throws {
        try await withStore({ $0.durability = .async(syncInterval: .seconds(3600)) }) { store, _ in
            let skipsSync = try store.environment.commitsSkipSync()
            #expect(skipsSync == true)
        }
    }
}

@Suite struct StoreReceiptOrderTests {
    /// The completion is what sends PUBACKs (the broker hops it to the
    /// session's loop), so whatever it can observe, a client can. It runs on
    /// the writer thread; reading the store right there, before returning,
    /// is the only deterministic way to tell "after the commit" from
    /// "just before it": a read transaction sees only committed data.
    @Test("an append's receipts are handed out after the commit: a reader started from the completion already sees every message")
    func receiptsFollowTheCommit() async throws {
        try await withStore { store, _ in
            let topic = try Topic("order.t")
            let messages = [try message("order.t", "a"), try message("order.t", "b")]
            let (receipts, readInCompletion) = await withCheckedContinuation { continuation in
                store.append(messages) { results in
                    let read = Result { () throws(StoreError) -> [String] in
                        try store.read(topic: topic, from: 1, maxMessages: 10).messages.map(\.text)
                    }
                    continuation.resume(returning: (results, read))
                }
            }
            let sequences = try receipts.map { try $0.get().sequence }
            #expect(sequences == [1, 2])
            let texts = try readInCompletion.get()
            #expect(texts == ["a", "b"], "the receipts came before the messages were readable: \(texts)")
        }
    }
}
