import Foundation
import Testing
import RelayStore

/// What the operator reads when a commit fails for the disk's reasons. LMDB
/// reports a write the file system cut short (a tmpfs or disk filling up) as
/// EIO, not ENOSPC (wave-14 operator review: "mdb_txn_commit failed:
/// Input/output error (LMDB/errno 5)" and nothing more).
@Suite("Store error texts for disk failures")
struct StoreErrorTextTests {
    @Test("ENOSPC says the file system is full and what to do")
    func noSpace() {
        let text = StoreError.lmdb(operation: "mdb_txn_commit", code: ENOSPC, message: "No space left on device").description
        #expect(text.contains("file system holding the store is full") && text.contains("nothing from this commit was stored"), "\(text)")
    }

    @Test("EIO names both causes: a short write on a full file system, or a disk error")
    func inputOutput() {
        let text = StoreError.lmdb(operation: "mdb_txn_commit", code: EIO, message: "Input/output error").description
        #expect(text.contains("df") && text.contains("dmesg"), "\(text)")
    }

    @Test("other errors keep the plain text")
    func other() {
        let text = StoreError.lmdb(operation: "mdb_put", code: 22, message: "Invalid argument").description
        #expect(text == "mdb_put failed: Invalid argument (LMDB/errno 22)")
    }

    @Test("a cluster cursor conflict names the other edge's cursor, or says it could not be read (never a made-up 0)")
    func durableConflict() {
        let known = StoreError.durableConflict(name: "jobs", stored: 42, mine: 7).description
        #expect(known.contains("moved to 42 there") && known.contains("cursor 7 was not stored"), "\(known)")
        let unreadable = StoreError.durableConflict(name: "jobs", stored: nil, mine: 7).description
        #expect(unreadable.contains("a value this edge cannot read") && !unreadable.contains(" 0 "), "\(unreadable)")
        #expect(StoreError.durableConflict(name: "jobs", stored: nil, mine: 7).relayErrorCode == .durableInUse)
    }
}
