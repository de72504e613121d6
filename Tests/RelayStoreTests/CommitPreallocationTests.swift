import Foundation
import RelayCore
@testable import RelayStore
import RelayTestSupport
import Testing

/// The writer keeps zeroed, allocated space ahead of LMDB's last page, so a
/// commit overwrites blocks the file already has instead of growing it: on
/// ext4 a commit that grows the file makes its flush also write the inode,
/// one more serial disk write per small commit (docs/performance-history.md,
/// "The tail at low load").
@Suite struct CommitPreallocationTests {
    /// The data file's size and the bytes allocated to it on disk.
    func dataFile(_ directory: TemporaryDirectory) throws -> (size: Int, allocated: Int) {
        var info = stat()
        let rc = stat(directory.file("data.mdb"), &info)
        try #require(rc == 0, "stat data.mdb: errno \(errno)")
        return (Int(info.st_size), Int(info.st_blocks) * 512)
    }

    /// LMDB's last used byte.
    func usedEnd(_ store: MessageStore) -> Int {
        let usage = store.environment.usage()
        return usage.pagesUsed * usage.pageSize
    }

    @Test func smallCommitsWriteInsideTheFileTheyFind() async throws {
        try await withStore { store, directory in
            try await appendAll(store, [try message("orders.created", "first")])
            let first = try dataFile(directory)
            // Headroom ahead of the used pages, really allocated (not a sparse hole).
            #expect(first.size - usedEnd(store) >= StoreWriter.preallocationLowWater,
                    "data.mdb is \(first.size) bytes, LMDB uses \(usedEnd(store)): no zeroed room ahead of the last page")
            #expect(first.allocated >= first.size, "data.mdb has \(first.allocated) of \(first.size) bytes allocated: sparse")
            // Fifty separate small commits (one message each), as at a low publish
            // rate: each one's pages land inside the file as it was before it.
            var grownBy: [Int] = []
            for index in 0..<50 {
                let before = try dataFile(directory).size
                try await appendAll(store, [try message("orders.created", "message \(index)")])
                let used = usedEnd(store)
                if used > before { grownBy.append(used - before) }
            }
            #expect(grownBy.isEmpty, "\(grownBy.count) of 50 small commits wrote past the end of data.mdb (by \(grownBy) bytes)")
            // Everything is still there, in order.
            let batch = try store.read(from: 1, filter: try TopicFilter("orders.>"), maxMessages: 100, maxBytes: 1 << 20)
            #expect(batch.messages.count == 51)
        }
    }

    /// Checking the room must not `fstat` data.mdb after every commit: with
    /// multigrain timestamps (ext4, Linux 6.13+) reading the file's
    /// timestamps makes the next write stamp a fresh mtime, so every commit's
    /// flush wrote the inode, one more serial disk write per commit (0.7-0.8
    /// more write requests per commit in scripts/commit_probe.c with FSTAT=1).
    @Test func smallCommitsDoNotAskForTheFileSize() async throws {
        try await withStore { store, _ in
            try await appendAll(store, [try message("orders.created", "first")])
            let before = store.environment.fileSizeQueries.withLock { $0 }
            for index in 0..<50 {
                try await appendAll(store, [try message("orders.created", "message \(index)")])
            }
            let queries = store.environment.fileSizeQueries.withLock { $0 } - before
            // 50 small commits stay inside the 128-192 KiB of zeroed room: at most
            // one top-up (which asks the file system before writing zeros).
            #expect(queries <= 1, "50 small commits asked for data.mdb's size \(queries) times (fstat per commit)")
            let batch = try store.read(from: 1, filter: try TopicFilter("orders.>"), maxMessages: 100, maxBytes: 1 << 20)
            #expect(batch.messages.count == 51)
        }
    }

    @Test func theZeroedRoomIsInvisibleAfterReopening() async throws {
        let directory = try TemporaryDirectory(prefix: "relay-store")
        defer { directory.remove() }
        var configuration = StoreConfiguration(directory: directory.path)
        configuration.initialMapSize = 1 << 20
        configuration.pruneInterval = .seconds(3600)
        let first = try MessageStore.open(configuration)
        try await appendAll(first, [try message("orders.created", "one"), try message("orders.created", "two")])
        first.close()
        let second = try MessageStore.open(configuration)
        defer { second.close() }
        let sequence = try await appendAll(second, [try message("orders.created", "three")])
        #expect(sequence == [3])
        let batch = try second.read(from: 1, filter: try TopicFilter("orders.>"), maxMessages: 10, maxBytes: 1 << 20)
        #expect(batch.messages.map(\.text) == ["one", "two", "three"])
    }
}
