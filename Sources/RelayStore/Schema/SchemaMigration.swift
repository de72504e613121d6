/// Brings a store to the current ``Schema/version`` when it is opened, in
/// the same write transaction that reads the version: a crash during the
/// migration leaves the old version intact, and the next open runs it again.
///
/// Version 1 → 2 (docs/storage.md, "Schema history"):
/// - each `dedup` entry gains the publisher's certificate digest, read from
///   the log record it points at (the record carries the fingerprint the
///   broker stamped). An entry whose record retention already deleted, or
///   whose fingerprint is not a SHA-256 digest, is dropped: that publish can
///   then no longer be recognised as a retry, which only matters within the
///   dedup window, and is never answered for another identity.
/// - each `cursors` entry is kept under the legacy prefix: version 1 keyed
///   cursors by principal only, which cannot say which workload owns it. The
///   first owner with that principal to attach the name adopts it
///   (``MessageStore/adoptLegacyCursor(principal:name:owner:sequence:filter:completion:)``).
///
/// Version 2 → 3: each `dedup` key's 32-byte publisher digest becomes the
/// publisher's number (``PublisherNumbers``), and `dedup_order` is rewritten
/// with the shorter keys. Every entry is kept. A version-1 store runs both
/// steps in the one transaction.
///
/// Version 3 → 4: nothing is rewritten. Version 4 appends the durable's
/// filter to a cursor's value; a version-3 value (the sequence alone) reads
/// as a cursor whose filter is unknown, and the broker stores the filter of
/// the next SUB that attaches it. The version is bumped so that an older
/// relay, which reads only eight-byte cursor values, refuses the store
/// rather than silently losing every cursor written with a filter.
///
/// Version 4 → 5: nothing is rewritten; `log_tail` is created empty. Version
/// 5 cuts a record a little longer than whole overflow pages and keeps its
/// last bytes in `log_tail` (``RecordSplit``). The version is bumped so that
/// an older relay, which would read such a record's head alone and deliver
/// its payload short, refuses the store instead.
enum SchemaMigration {
    /// Returns the version the store has after this call: ``Schema/version``,
    /// or the unknown version found (the caller refuses it).
    static func bringUpToDate(_ schema: Schema, in txn: borrowing WriteTransaction) throws(StoreError) -> UInt32 {
        let stored = try Schema.versionKey.withBytes { (key) throws(StoreError) -> UInt32? in
            try txn.get(schema.meta, key: key) { value in
                value.count == 4 ? UInt32(bigEndian: value.loadUnaligned(as: UInt32.self)) : 0
            }
        }
        switch stored {
        case nil:
            try writeVersion(schema, in: txn)  // a new store
            return Schema.version
        case 1:
            try migrateDedupFromVersion1(schema, in: txn)
            try migrateCursorsFromVersion1(schema, in: txn)
            try migrateDedupFromVersion2(schema, in: txn)
            try writeVersion(schema, in: txn)
            return Schema.version
        case 2:
            try migrateDedupFromVersion2(schema, in: txn)
            try writeVersion(schema, in: txn)
            return Schema.version
        case 3, 4:
            // 3: cursor values without a filter stay readable; 4: no record has a tail yet.
            try writeVersion(schema, in: txn)
            return Schema.version
        case let found?:
            return found
        }
    }

    private static func writeVersion(_ schema: Schema, in txn: borrowing WriteTransaction) throws(StoreError) {
        try Schema.versionKey.withBytes { (key) throws(StoreError) in
            var be = Schema.version.bigEndian
            _ = try withUnsafeBytes(of: &be) { (value) throws(StoreError) in
                try txn.put(schema.meta, key: key, value: value)
            }
        }
    }

    /// Every (24-byte key, sequence) of a version-1 `dedup`, rewritten with
    /// the digest of the record's publisher.
    private static func migrateDedupFromVersion1(_ schema: Schema, in txn: borrowing WriteTransaction) throws(StoreError) {
        var old: [(key: [UInt8], sequence: UInt64)] = []
        try txn.withCursor(schema.dedup) { (cursor) throws(StoreError) in
            var operation = CursorOperation.first
            while let entry = try cursor.move(operation, { (key, value) -> (key: [UInt8], sequence: UInt64)? in
                key.count == 24 && value.count == 8 ? (Array(key), value.readUInt64BE(at: 0)) : nil
            }) {
                operation = .next
                guard let entry else {
                    throw .corrupted(operation: "schema migration 1→2", detail: "a version-1 dedup entry has an unexpected size")
                }
                old.append(entry)
            }
        }
        try txn.clear(schema.dedup)
        try txn.clear(schema.dedupOrder)
        for entry in old {
            let stamp = try withBigEndianBytes(entry.sequence) { (seqKey) throws(StoreError) -> (digest: [UInt8], timestamp: UInt64)? in
                try txn.get(schema.log, key: seqKey) { (record) throws(StoreError) -> (digest: [UInt8], timestamp: UInt64)? in
                    let layout = try RecordCodec.layout(of: record, sequence: entry.sequence)
                    guard layout.flags & RecordCodec.flagRawFingerprint != 0, layout.fingerprint.count == 32 else { return nil }
                    return (Array(record[layout.fingerprint]), layout.timestamp)
                } ?? nil
            }
            guard let stamp else { continue }  // record pruned, or no digest to key it by
            let key = stamp.digest + entry.key
            var order = key
            withUnsafeBytes(of: stamp.timestamp.bigEndian) { order.append(contentsOf: $0) }
            try withBigEndianBytes(entry.sequence) { (seqKey) throws(StoreError) in
                try key.withBytes { (k) throws(StoreError) in _ = try txn.put(schema.dedup, key: k, value: seqKey) }
                try order.withBytes { (v) throws(StoreError) in _ = try txn.put(schema.dedupOrder, key: seqKey, value: v) }
            }
        }
    }

    /// Every version-2 dedup entry (digest ‖ session ‖ publish id → seq) and
    /// its `dedup_order` entry, rewritten with the digest's publisher number.
    private static func migrateDedupFromVersion2(_ schema: Schema, in txn: borrowing WriteTransaction) throws(StoreError) {
        let oldSize = 56, digestSize = 32
        var old: [(key: [UInt8], sequence: UInt64)] = []
        try txn.withCursor(schema.dedup) { (cursor) throws(StoreError) in
            var operation = CursorOperation.first
            while let entry = try cursor.move(operation, { (key, value) -> (key: [UInt8], sequence: UInt64)? in
                key.count == oldSize && value.count == 8 ? (Array(key), value.readUInt64BE(at: 0)) : nil
            }) {
                operation = .next
                guard let entry else {
                    throw .corrupted(operation: "schema migration 2→3", detail: "a version-2 dedup entry has an unexpected size")
                }
                old.append(entry)
            }
        }
        var timestamps: [UInt64: UInt64] = [:]
        try txn.withCursor(schema.dedupOrder) { (cursor) throws(StoreError) in
            var operation = CursorOperation.first
            while let entry = try cursor.move(operation, { (key, value) -> (sequence: UInt64, timestamp: UInt64)? in
                key.count == 8 && value.count == oldSize + 8 ? (key.readUInt64BE(at: 0), value.readUInt64BE(at: oldSize)) : nil
            }) {
                operation = .next
                guard let entry else {
                    throw .corrupted(operation: "schema migration 2→3", detail: "a version-2 dedup_order entry has an unexpected size")
                }
                timestamps[entry.sequence] = entry.timestamp
            }
        }
        try txn.clear(schema.dedup)
        try txn.clear(schema.dedupOrder)
        for entry in old {
            guard let number = try PublisherNumbers.lookUp(Array(entry.key[0..<digestSize]), allocate: true, schema: schema, in: txn) else {
                continue  // not reached: allocate always gives a number
            }
            var key = withUnsafeBytes(of: number.bigEndian) { Array($0) }
            key += entry.key[digestSize...]
            var order = key
            withUnsafeBytes(of: (timestamps[entry.sequence] ?? 0).bigEndian) { order.append(contentsOf: $0) }
            try withBigEndianBytes(entry.sequence) { (seqKey) throws(StoreError) in
                try key.withBytes { (k) throws(StoreError) in _ = try txn.put(schema.dedup, key: k, value: seqKey) }
                try order.withBytes { (v) throws(StoreError) in _ = try txn.put(schema.dedupOrder, key: seqKey, value: v) }
            }
        }
    }

    /// Moves every version-1 cursor key under the legacy prefix.
    private static func migrateCursorsFromVersion1(_ schema: Schema, in txn: borrowing WriteTransaction) throws(StoreError) {
        var old: [(key: [UInt8], value: [UInt8])] = []
        try txn.withCursor(schema.cursors) { (cursor) throws(StoreError) in
            var operation = CursorOperation.first
            while let entry = try cursor.move(operation, { (key, value) in (Array(key), Array(value)) }) {
                operation = .next
                old.append(entry)
            }
        }
        try txn.clear(schema.cursors)
        for entry in old {
            let key = [Schema.legacyCursorPrefix] + entry.key
            // LMDB keys are at most 511 bytes: a version-1 key of exactly 511
            // (principal and name of 509 bytes together) has no room for the
            // prefix and is dropped; that durable restarts at its start position.
            guard key.count <= 511 else { continue }
            try key.withBytes { (k) throws(StoreError) in
                try entry.value.withBytes { (v) throws(StoreError) in _ = try txn.put(schema.cursors, key: k, value: v) }
            }
        }
    }
}
