import Foundation
import NIOCore
import NIOPosix
import RelayCore
@testable import RelayStore
import RelayTestSupport
import Testing

/// Durability modes and concurrent readers during map growth.
@Suite struct DurabilityAndConcurrencyTests {
    /// What this can prove: close() commits everything queued before it returns,
    /// and a fresh open reads it. What it cannot: whether close() flushed to the
    /// disk. The reopen reads through the page cache, which holds committed pages
    /// whether or not they were fsynced; only a machine crash (or dropping the
    /// cache) would tell, which a unit test cannot do. The periodic flush is
    /// counted by `asyncDurabilitySyncsPeriodically`.
    @Test("async durability: appends still queued when close() is called are committed and read back after reopening")
    func asyncDurabilityCommitsQueuedAppendsOnClose() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        var configuration = StoreConfiguration(directory: dir.path)
        configuration.durability = .async(syncInterval: .milliseconds(20))
        configuration.maxMessagesPerCommit = 1
        var store = try MessageStore.open(configuration)
        try await appendAll(store, (0..<50).map { try message("async.t", "\($0)") })
        // Queued, not awaited: 2,000 appends of one message each, committed one
        // per transaction (maxMessagesPerCommit = 1), so most are still queued
        // when close() is called. close() must drain them before it returns.
        for i in 0..<2_000 { store.append([try message("async.t", "queued-\(i)")]) { _ in } }
        store.close()
        store = try MessageStore.open(StoreConfiguration(directory: dir.path))
        defer { store.close() }
        let texts = try store.read(topic: Topic("async.t"), from: 1, maxMessages: 3_000).messages.map(\.text)
        #expect(texts.count == 2_050)
        #expect(texts.last == "queued-1999")
    }

    @Test("async durability flushes on its own thread every interval, while appends go on, and stops at close")
    func asyncDurabilitySyncsPeriodically() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        var configuration = StoreConfiguration(directory: dir.path)
        configuration.durability = .async(syncInterval: .milliseconds(20))
        let store = try MessageStore.open(configuration)
        for round in 0..<10 {
            try await appendAll(store, (0..<20).map { try message("sync.t", "\(round)-\($0)") })
            try await Task.sleep(for: .milliseconds(25))
        }
        #expect(store.writer.periodicSyncs >= 3, "\(store.writer.periodicSyncs) periodic syncs in ~250 ms")
        store.close()
        let afterClose = store.writer.periodicSyncs
        try await Task.sleep(for: .milliseconds(80))
        #expect(store.writer.periodicSyncs == afterClose)
    }

    @Test("fsync durability runs no periodic flush: every commit is already on disk")
    func fsyncDurabilityHasNoSyncer() async throws {
        try await withStore({ _ in }) { store, _ in
            try await appendAll(store, [try message("sync.f", "x")])
            try await Task.sleep(for: .milliseconds(50))
            #expect(store.writer.periodicSyncs == 0)
        }
    }

    @Test func readersRunWhileTheWriterGrowsTheMap() async throws {
        try await withStore({ $0.initialMapSize = 1 << 20; $0.growthStep = 1 << 20 }) { store, _ in
            let payload = String(repeating: "g", count: 2_000)
            let mapBefore = store.environment.mapSize
            try await withThrowingTaskGroup(of: Int.self) { group in
                group.addTask {
                    for round in 0..<40 {
                        try await appendAll(store, try (0..<50).map { _ in try message("grow.\(round % 3)", payload) })
                    }
                    return 0
                }
                for _ in 0..<3 {
                    group.addTask {
                        var reads = 0
                        var last: UInt64 = 0
                        while last < 2_000 {
                            let batch = try store.read(from: 1, filter: TopicFilter("grow.>"), maxMessages: 5_000, maxBytes: 1 << 30)
                            // A snapshot is always a gap-free prefix of the log.
                            for (index, message) in batch.messages.enumerated() {
                                #expect(message.sequence == UInt64(index + 1))
                            }
                            last = batch.messages.last?.sequence ?? 0
                            reads += 1
                            await Task.yield()
                        }
                        return reads
                    }
                }
                for try await _ in group {}
            }
            #expect(store.environment.mapSize > mapBefore)
            #expect(try store.lastSequence() == 2_000)
        }
    }
}

/// Group commit: appends that arrive while a commit is in flight share the next one.
@Suite struct GroupCommitTests {
    @Test func concurrentAppendsShareCommitsAndGetUniqueContiguousSequences() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let store = try MessageStore.open(StoreConfiguration(directory: dir.path))
        let receipts = ReceiptCollector()
        let done = DispatchGroup()
        let topic = try Topic("group.commit")
        for i in 0..<400 {
            done.enter()
            store.append([NewMessage(topic: topic, payload: ByteBuffer(string: "\(i)"), publisher: testPublisher)]) { results in
                for case .success(let receipt) in results { receipts.add(receipt) }
                done.leave()
            }
        }
        done.wait()
        store.close()
        #expect(receipts.all.map(\.sequence).sorted() == Array(1...400))
        // The store stamps every message of one commit with the commit's
        // timestamp, and no two commits with the same one: one timestamp is
        // one commit. 400 single appends submitted back to back cannot each
        // get their own fsynced commit.
        let commits = Dictionary(grouping: receipts.all, by: \.timestamp).values.map { $0.map(\.sequence).sorted() }
        #expect(commits.count < 400)
        #expect(commits.contains { $0.count > 1 })
        // Each commit holds a contiguous run of sequences.
        for sequences in commits {
            guard let first = sequences.first, let last = sequences.last else { continue }
            #expect(last - first + 1 == UInt64(sequences.count))
        }
    }
}

final class ReceiptCollector: @unchecked Sendable {
    private let lock = NSLock()
    private var receipts: [AppendReceipt] = []
    func add(_ receipt: AppendReceipt) { lock.lock(); receipts.append(receipt); lock.unlock() }
    var all: [AppendReceipt] { lock.lock(); defer { lock.unlock() }; return receipts }
}

@Suite struct EventLoopCompletionTests {
    @Test func futureCompletesOnTheGivenEventLoop() async throws {
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        try await withStore { store, _ in
            let future = store.append([try message("loop.t", "1")], on: loop)
            let (onLoop, results) = try await future.map { (loop.inEventLoop, $0) }.get()
            #expect(onLoop)
            let sequences = try results.map { try $0.get().sequence }
            #expect(sequences == [1])
        }
    }
}

