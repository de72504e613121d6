import Foundation
@testable import RelayStore
import RelayTestSupport
import Testing

/// The thin LMDB layer: transactions, cursors, error mapping, map growth.
@Suite struct LMDBWrapperTests {
    func openEnvironment(_ directory: TemporaryDirectory, initial: Int = 1 << 20, max: Int = 64 << 20,
                         step: Int = 1 << 20) throws -> Environment {
        var options = EnvironmentOptions()
        options.initialMapSize = initial
        options.maxMapSize = max
        options.growthStep = step
        return try Environment(path: directory.path, options: options)
    }

    func put(_ txn: borrowing WriteTransaction, _ db: Database, _ key: String, _ value: String) throws(StoreError) {
        try Array(key.utf8).withBytes { (k) throws(StoreError) in
            try Array(value.utf8).withBytes { (v) throws(StoreError) in try txn.put(db, key: k, value: v) }
        }
    }

    func get(_ txn: borrowing some TransactionReading & ~Copyable, _ db: Database, _ key: String) throws(StoreError) -> String? {
        try Array(key.utf8).withBytes { (k) throws(StoreError) -> String? in
            try txn.get(db, key: k) { String(decoding: $0, as: UTF8.self) }
        }
    }

    @Test func committedWriteIsVisibleToLaterReads() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let env = try openEnvironment(dir)
        let db = try env.openDatabase("t")
        try env.write { (txn) throws(StoreError) in try put(txn, db, "k", "v1") }
        let value = try env.read { (txn) throws(StoreError) in try get(txn, db, "k") }
        #expect(value == "v1")
    }

    @Test func throwingWriteAborts() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let env = try openEnvironment(dir)
        let db = try env.openDatabase("t")
        #expect(throws: StoreError.invalidArgument("stop")) {
            try env.write { (txn) throws(StoreError) in
                try Array("k".utf8).withBytes { (k) throws(StoreError) in
                    try Array("v".utf8).withBytes { (v) throws(StoreError) in try txn.put(db, key: k, value: v) }
                }
                throw .invalidArgument("stop")
            }
        }
        #expect(try env.read { (txn) throws(StoreError) in try get(txn, db, "k") } == nil)
    }

    @Test func writeTransactionReadsItsOwnWrites() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let env = try openEnvironment(dir)
        let db = try env.openDatabase("t")
        let seen = try env.write { (txn) throws(StoreError) in
            try put(txn, db, "a", "1")
            return try get(txn, db, "a")
        }
        #expect(seen == "1")
    }

    @Test func noOverwriteReportsExistingKey() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let env = try openEnvironment(dir)
        let db = try env.openDatabase("t")
        let (first, second) = try env.write { (txn) throws(StoreError) -> (Bool, Bool) in
            try Array("k".utf8).withBytes { (k) throws(StoreError) -> (Bool, Bool) in
                try Array("v".utf8).withBytes { (v) throws(StoreError) -> (Bool, Bool) in
                    (try txn.put(db, key: k, value: v, flags: .noOverwrite),
                     try txn.put(db, key: k, value: v, flags: .noOverwrite))
                }
            }
        }
        #expect(first && !second)
    }

    @Test func cursorWalksKeysInBigEndianOrderAndSeeksRanges() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let env = try openEnvironment(dir)
        let db = try env.openDatabase("seq")
        try env.write { (txn) throws(StoreError) in
            for n: UInt64 in [300, 2, 70_000, 1] {
                try withBigEndianBytes(n) { (k) throws(StoreError) in try txn.put(db, key: k, value: k) }
            }
        }
        let (all, fromThree, last) = try env.read { (txn) throws(StoreError) -> ([UInt64], UInt64?, UInt64?) in
            try txn.withCursor(db) { (cursor) throws(StoreError) -> ([UInt64], UInt64?, UInt64?) in
                var keys: [UInt64] = []
                var found = try cursor.position(.first)
                while found {
                    if let k = try cursor.move(.current, { k, _ in k.readUInt64BE(at: 0) }) { keys.append(k) }
                    found = try cursor.position(.next)
                }
                let range = try withBigEndianBytes(3) { (k) throws(StoreError) -> UInt64? in
                    try cursor.move(.keyRange, key: k) { k, _ in k.readUInt64BE(at: 0) }
                }
                let last = try cursor.move(.last) { k, _ in k.readUInt64BE(at: 0) }
                return (keys, range, last)
            }
        }
        #expect(all == [1, 2, 300, 70_000])
        #expect(fromThree == 300)
        #expect(last == 70_000)
    }

    @Test func duplicateCursorOperations() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let env = try openEnvironment(dir)
        let db = try env.openDatabase("dups", flags: [.duplicateSort, .duplicateFixed])
        let topic = Array("a.b".utf8)
        try env.write { (txn) throws(StoreError) in
            try topic.withBytes { (k) throws(StoreError) in
                for n: UInt64 in 1...5 {
                    try withBigEndianBytes(n * 10) { (v) throws(StoreError) in
                        #expect(try txn.put(db, key: k, value: v, flags: .appendDuplicate))
                    }
                }
                // Out of order APPENDDUP is refused, not silently misplaced.
                try withBigEndianBytes(15) { (v) throws(StoreError) in
                    #expect(try txn.put(db, key: k, value: v, flags: .appendDuplicate) == false)
                }
            }
        }
        let result = try env.read { (txn) throws(StoreError) -> (Int, UInt64?, UInt64?, UInt64?) in
            try txn.withCursor(db) { (cursor) throws(StoreError) -> (Int, UInt64?, UInt64?, UInt64?) in
                try topic.withBytes { (k) throws(StoreError) -> (Int, UInt64?, UInt64?, UInt64?) in
                    let range = try withBigEndianBytes(25) { (v) throws(StoreError) -> UInt64? in
                        try cursor.move(.duplicateRange, key: k, value: v) { _, v in v.readUInt64BE(at: 0) }
                    }
                    let count = try cursor.duplicateCount()
                    let last = try cursor.move(.lastDuplicate) { _, v in v.readUInt64BE(at: 0) }
                    let previous = try cursor.move(.previousDuplicate) { _, v in v.readUInt64BE(at: 0) }
                    return (count, range, last, previous)
                }
            }
        }
        #expect(result.0 == 5)
        #expect(result.1 == 30)
        #expect(result.2 == 50)
        #expect(result.3 == 40)
    }

    @Test func mapGrowsAutomaticallyUpToTheMaximum() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let env = try openEnvironment(dir, initial: 1 << 20, max: 8 << 20, step: 1 << 20)
        let db = try env.openDatabase("big")
        let value = [UInt8](repeating: 7, count: 64 << 10)
        // 3 MiB of values: more than the initial 1 MiB map.
        for n: UInt64 in 0..<48 {
            try env.write { (txn) throws(StoreError) in
                try withBigEndianBytes(n) { (k) throws(StoreError) in
                    try value.withBytes { (v) throws(StoreError) in try txn.put(db, key: k, value: v) }
                }
            }
        }
        #expect(env.mapSize > 1 << 20)
        #expect(env.mapSize <= 8 << 20)
        #expect(try env.read { (txn) throws(StoreError) in try txn.count(db) } == 48)
    }

    @Test func fullMapAtMaximumIsStorageFull() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let env = try openEnvironment(dir, initial: 1 << 20, max: 1 << 20)
        let db = try env.openDatabase("big")
        let value = [UInt8](repeating: 1, count: 256 << 10)
        var failure: StoreError?
        for n: UInt64 in 0..<16 where failure == nil {
            do {
                try env.write { (txn) throws(StoreError) in
                    try withBigEndianBytes(n) { (k) throws(StoreError) in
                        try value.withBytes { (v) throws(StoreError) in try txn.put(db, key: k, value: v) }
                    }
                }
            } catch {
                failure = error
            }
        }
        #expect(failure == .storageFull(maxMapSize: 1 << 20))
        // Reads still work after the failed write.
        #expect(try env.read { (txn) throws(StoreError) in try txn.count(db) } > 0)
    }

    @Test func garbageDataFileIsReportedAsInvalidNotCrash() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        try Data(repeating: 0x5A, count: 64 << 10).write(to: URL(fileURLWithPath: dir.file("data.mdb")))
        #expect {
            _ = try openEnvironment(dir)
        } throws: { error in
            guard let error = error as? StoreError, case .lmdbVersionMismatch = error else { return false }
            return true
        }
    }

    @Test func readersFullHasItsOwnError() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        var options = EnvironmentOptions()
        options.maxReaders = 1
        let env = try Environment(path: dir.path, options: options)
        let db = try env.openDatabase("t")
        // With MDB_NOTLS each read transaction takes its own slot: a second
        // concurrent one finds none free.
        #expect(throws: StoreError.readersFull(maxReaders: 1)) {
            try env.read { (outer) throws(StoreError) in
                _ = try outer.count(db)
                try env.read { (inner) throws(StoreError) in _ = try inner.count(db) }
            }
        }
        #expect(try env.read { (txn) throws(StoreError) in try txn.count(db) } == 0)
    }

    @Test func corruptionCodesMapToCorrupted() {
        for code: Int32 in [-30796, -30797, -30795] {
            let error = LMDBResult.error(code, operation: "get", path: "/x", maxMapSize: 1, maxReaders: 3)
            guard case .corrupted = error else {
                Issue.record("code \(code) mapped to \(error)")
                continue
            }
        }
    }

    @Test func closedEnvironmentRefusesTransactions() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let env = try openEnvironment(dir)
        let db = try env.openDatabase("t")
        env.close()
        #expect(throws: StoreError.closed) { try env.read { (txn) throws(StoreError) in try txn.count(db) } }
    }
}
