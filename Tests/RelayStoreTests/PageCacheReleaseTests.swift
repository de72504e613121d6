import Foundation
import NIOCore
import RelayCore
@testable import RelayStore
import RelayTestSupport
import Testing

/// Once a commit is flushed, the store hands the data file's pages older
/// than `pageCacheTail` back to the kernel, so a growing log reuses freed
/// page-cache pages instead of taking new ones: on this project's VMs a new
/// page-cache page costs ~25 µs and was the limit of 4 KiB messages in fsync
/// mode (docs/performance-history.md, "Large messages"). Dropped pages are clean
/// (on disk); reading them back must return the same bytes.
@Suite(.serialized) struct PageCacheReleaseTests {
    /// 64 commits of 64 messages of 4 KiB: each takes one overflow page and
    /// a tail in `log_tail` (``RecordSplit``), so LMDB uses about 17 MiB.
    static let commits = 64, perCommit = 64, size = 4096

    /// Per-message bytes: its index, then a byte that depends on it, so a
    /// page swapped, zeroed or cut short does not compare equal.
    static func payload(_ index: Int) -> [UInt8] {
        var bytes = [UInt8](repeating: UInt8(truncatingIfNeeded: index % 251 + 1), count: size)
        withUnsafeBytes(of: UInt64(index).bigEndian) { bytes.replaceSubrange(0..<8, with: $0) }
        return bytes
    }

    /// Bytes of `path` in the page cache, as util-linux's `fincore` reports them.
    static func residentBytes(_ path: String) async throws -> Int {
        let fincore = try await ChildProcess("/usr/bin/fincore", ["--bytes", "--noheadings", "--raw", "--output", "RES", path])
        let status = await fincore.waitForExit()
        let text = fincore.stdoutLines.joined(separator: "\n").trimmingCharacters(in: .whitespacesAndNewlines)
        return try #require(Int(text), "fincore printed \(text.debugDescription) (status \(String(describing: status)))")
    }

    /// Fills the store and returns LMDB's used end and the resident bytes of data.mdb.
    static func fill(_ store: MessageStore, _ directory: TemporaryDirectory) async throws -> (used: Int, resident: Int) {
        for commit in 0..<commits {
            let messages = try (0..<perCommit).map { offset in
                NewMessage(topic: try Topic("big.pages"), payload: ByteBuffer(bytes: payload(commit * perCommit + offset)),
                           headers: .empty, publisher: testPublisher, producerKey: nil)
            }
            try await appendAll(store, messages)
        }
        let usage = store.environment.usage()
        return (usage.pagesUsed * usage.pageSize, try await residentBytes(directory.file("data.mdb")))
    }

    @Test func flushedPagesBeyondTheTailLeaveThePageCacheAndReadBackExact() async throws {
        try await withStore({ $0.pageCacheTail = 1 << 20 }) { store, directory in
            let (used, resident) = try await Self.fill(store, directory)
            #expect(used >= 16 << 20, "LMDB uses \(used) bytes; the test needs 16 MiB of pages")
            // The 1 MiB tail, the release step (1 MiB), the zeroed room ahead of
            // the last page (about two commits) and the B-tree pages LMDB maps.
            #expect(resident <= used / 2, "\(resident) of data.mdb's \(used) used bytes are still in the page cache")
            // Read back from the disk, byte for byte, in order.
            var next: UInt64 = 1
            var index = 0
            while index < Self.commits * Self.perCommit {
                let batch = try store.read(from: next, filter: try TopicFilter("big.>"), maxMessages: 256, maxBytes: 4 << 20)
                try #require(!batch.messages.isEmpty, "no message at or after \(next)")
                for message in batch.messages {
                    let bytes = message.payload.getBytes(at: message.payload.readerIndex, length: message.payload.readableBytes)
                    #expect(bytes == Self.payload(index), "message \(index) (sequence \(message.sequence)) differs")
                    index += 1
                    next = message.sequence + 1
                }
            }
        }
    }

    /// The control: without a tail the pages stay, so the check above measures something.
    @Test func withoutATailThePagesStay() async throws {
        try await withStore({ $0.pageCacheTail = nil }) { store, directory in
            let (used, resident) = try await Self.fill(store, directory)
            #expect(resident >= used / 2, "only \(resident) of data.mdb's \(used) used bytes are in the page cache")
        }
    }
}
