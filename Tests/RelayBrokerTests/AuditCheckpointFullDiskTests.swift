import Foundation
import RelayTestSupport
import Testing
@testable import RelayBroker

/// The audit checkpoint is written to a temporary file and renamed over the
/// old one. On a full file system the write fails; the temporary file must
/// not stay behind (the wave-14 operator review found a 0-byte
/// `audit.jsonl.checkpoint.tmp` after filling a 2 MiB tmpfs).
@Suite("Audit checkpoint on a full file system", .serialized)
struct AuditCheckpointFullDiskTests {
    @Test("ENOSPC while writing the checkpoint: the write throws and leaves no temporary file")
    func noTemporaryFileLeft() throws {
        let disk = try ScratchFilesystem(tmpfsSize: "1m")
        defer { disk.unmount() }
        try disk.fillRemaining("filler")
        let trail = disk.file("audit.jsonl")
        let key = try AuditKey(bytes: Array(repeating: 7, count: 32))
        #expect(throws: (any Error).self) {
            try AuditCheckpoint(seq: 1, mac: String(repeating: "a", count: 64)).write(trail: trail, key: key)
        }
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: disk.path).filter { $0.hasSuffix(".tmp") }
        #expect(leftovers.isEmpty, "left behind: \(leftovers)")
    }
}
