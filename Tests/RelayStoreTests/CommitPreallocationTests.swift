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

/// Commits that grow the file by megabytes (4 KiB messages at full load)
/// get their room from `fallocate`, not from zeros: writing the zeros
/// created the file's page cache and wrote every block to the disk twice,
/// a quarter of the store writer's time at 4 KiB (docs/performance.md,
/// "Wave 21: room for large commits is allocated, not zeroed").
@Suite struct LargeCommitPreallocationTests {
    /// `count` messages of `bytes` each, in one commit.
    func bigCommit(_ count: Int, bytes: Int, tag: String) throws -> [NewMessage] {
        let payload = String(repeating: "x", count: bytes - 12)
        return try (0..<count).map { try message("files.stored", "\(tag)-\(String(format: "%05d", $0))-\(payload)") }
    }

    @Test func largeCommitsGetAllocatedRoomWithoutZeros() async throws {
        // A map big enough that its end does not cap the room (the room never reaches past the map).
        try await withStore({ $0.initialMapSize = 64 << 20 }) { store, directory in
            // Each commit grows LMDB by about 3 MiB (700 records of a page each).
            try await appendAll(store, try bigCommit(700, bytes: 4096, tag: "a"))
            let before = store.environment.preallocated.withLock { $0 }
            // Three more, not two: the first commit's room is about four commits
            // of its size (low water two, chunk two), so after two more the room
            // left can equal the low water exactly and no top-up is due (one
            // run failed so, 12,042,240 bytes allocated before and after); after
            // three it is below the low water whatever the B-tree's splits.
            for tag in ["b", "c", "d"] {
                try await appendAll(store, try bigCommit(700, bytes: 4096, tag: tag))
            }
            // The writer tops up the room after a commit's completions: one more
            // small append, answered only after that, so `after` sees d's top-up.
            _ = try await appendAll(store, [try message("barrier.sync", "after d")])
            let after = store.environment.preallocated.withLock { $0 }
            #expect(after.zeros == before.zeros,
                    "large commits' room was zeroed: \(after.zeros - before.zeros) bytes of zeros written")
            #expect(after.allocated > before.allocated, "large commits got no room ahead (\(after.allocated) bytes allocated)")
            // The room is real: allocated on disk, not a sparse hole.
            var info = stat()
            try #require(stat(directory.file("data.mdb"), &info) == 0, "stat data.mdb: errno \(errno)")
            let usage = store.environment.usage()
            let used = usage.pagesUsed * usage.pageSize
            #expect(Int(info.st_size) - used >= 2 << 20, "data.mdb is \(info.st_size) bytes, LMDB uses \(used): no room ahead")
            #expect(Int(info.st_blocks) * 512 >= Int(info.st_size), "data.mdb has \(Int(info.st_blocks) * 512) of \(info.st_size) bytes allocated: sparse")
            // Every message reads back whole, also after the allocated room.
            let batch = try store.read(from: 1, filter: try TopicFilter("files.>"), maxMessages: 3000, maxBytes: 64 << 20)
            #expect(batch.messages.count == 2800)
            #expect(batch.messages.last?.text.hasPrefix("d-00699-") == true)
        }
    }

    @Test func smallCommitsStillWriteZeros() async throws {
        try await withStore { store, _ in
            for index in 0..<20 { try await appendAll(store, [try message("orders.created", "message \(index)")]) }
            let counted = store.environment.preallocated.withLock { $0 }
            #expect(counted.zeros >= StoreWriter.preallocationLowWater, "small commits got \(counted.zeros) bytes of zeroed room")
            #expect(counted.allocated == 0, "small commits' room was allocated, not zeroed (\(counted.allocated) bytes)")
        }
    }

    /// A really full disk (a loop-mounted ext4 image) while the room comes
    /// from `fallocate`: the top-up's ENOSPC is not a commit's, so commits
    /// go on until a commit itself finds no space; that one is refused with
    /// the disk error, and everything acknowledged before reads back after a
    /// reopen.
    @Test func aFullDiskRefusesTheCommitNotTheStore() async throws {
        let disk = try await ScratchFilesystem.ext4(megabytes: 24)
        defer { disk.unmount() }
        var configuration = StoreConfiguration(directory: disk.file("data"))
        configuration.initialMapSize = 64 << 20  // the map is larger than the disk
        configuration.pruneInterval = .seconds(3600)
        var acknowledged = 0
        var refusal: StoreError?
        do {
            let store = try MessageStore.open(configuration)
            defer { store.close() }
            for round in 0..<40 {
                let messages = try bigCommit(500, bytes: 4096, tag: "r\(round)")
                let results = await store.append(messages)
                if case .failure(let error) = results[0] {
                    refusal = error
                    break
                }
                for result in results { _ = try result.get() }
                acknowledged += results.count
            }
            #expect(store.environment.preallocated.withLock { $0.allocated } > 0, "the room was never allocated: this case did not test fallocate")
        }
        let error = try #require(refusal, "500-message commits never filled a 24 MiB disk")
        guard case .lmdb(_, let code, _) = error else {
            Issue.record("a full disk was refused as \(error), not as the disk error")
            return
        }
        #expect(code == ENOSPC || code == EIO, "a full disk was refused with errno \(code): \(error)")
        #expect(acknowledged >= 1000, "only \(acknowledged) messages fitted before the disk was full")
        let reopened = try MessageStore.open(configuration)
        defer { reopened.close() }
        let batch = try reopened.read(from: 1, filter: try TopicFilter("files.>"), maxMessages: 10_000, maxBytes: 64 << 20)
        #expect(batch.messages.count == acknowledged, "\(acknowledged) acknowledged, \(batch.messages.count) read back after a reopen")
        #expect(batch.messages.last?.text.hasPrefix("r\(acknowledged / 500 - 1)-00499-") == true)
    }
}
