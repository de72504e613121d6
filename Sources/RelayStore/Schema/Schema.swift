/// The named databases of a store and their key/value layouts
/// (docs/storage.md has the full description).
struct Schema: Sendable {
    /// Bump when a layout changes incompatibly; checked on open. Version 2
    /// keys dedup entries by the publisher's certificate digest and durable
    /// cursors by their owner; version 3 puts a 4-byte publisher number in
    /// the dedup key instead of the 32-byte digest; version 4 stores a
    /// durable's filter after its cursor's sequence; version 5 adds
    /// `log_tail`, where a record a little longer than whole overflow pages
    /// keeps its last bytes (docs/storage.md, "Schema history").
    static let version: UInt32 = 5
    static let databaseCount = 10
    static let versionKey = Array("schema_version".utf8)

    /// "schema_version" → u32 BE.
    let meta: Database
    /// seq (u64 BE) → record (RecordCodec), or its head when the record's
    /// flags say it continues in `logTail`.
    let log: Database
    /// seq (u64 BE) → the last bytes of a record cut at a page boundary
    /// (``RecordSplit``): at most a quarter of a page, stored inline.
    let logTail: Database
    /// Dupsort, fixed-size values: topic bytes → seq (u64 BE), one value per message.
    let topics: Database
    /// Commit timestamp (u64 BE ns) → first seq of that commit (u64 BE).
    let time: Database
    /// 0x01 ‖ owner digest (32 bytes) ‖ durable name → seq (u64 BE) ‖ the
    /// SUB filter's UTF-8 bytes (``DurableCursor``; versions 2-3 wrote the
    /// seq alone, read as an unknown filter); and 0x00 ‖ a version-1 key
    /// (u16 BE principal length ‖ principal ‖ name) → seq (u64 BE) for
    /// cursors migrated from version 1 and not yet adopted by an owner.
    let cursors: Database
    /// publisher number (u32 BE) ‖ session id (16 bytes) ‖ publish id (u64 BE) → seq (u64 BE).
    let dedup: Database
    /// seq (u64 BE) → dedup key (28 bytes) ‖ timestamp (u64 BE): dedup entries in age order, for pruning.
    let dedupOrder: Database
    /// Publisher digest (32 bytes) → publisher number (u32 BE, from 1, in
    /// order of first deduplicated publish; never reused or deleted): keeps
    /// the dedup key short (``PublisherNumbers``).
    let publishers: Database
    /// topic bytes → message count (u64 BE) ‖ payload-inclusive record bytes (u64 BE).
    let topicStats: Database
    /// Where this store cuts records longer than whole overflow pages.
    let recordSplit: RecordSplit

    /// Opens every database, creating them and the version record in a new
    /// store, migrating an older store (``SchemaMigration``), and refusing a
    /// store written with a newer schema version.
    init(environment: Environment) throws(StoreError) {
        meta = try environment.openDatabase("meta")
        log = try environment.openDatabase("log")
        logTail = try environment.openDatabase("log_tail")
        topics = try environment.openDatabase("topics", flags: [.duplicateSort, .duplicateFixed])
        time = try environment.openDatabase("time")
        cursors = try environment.openDatabase("cursors")
        dedup = try environment.openDatabase("dedup")
        dedupOrder = try environment.openDatabase("dedup_order")
        publishers = try environment.openDatabase("publishers")
        topicStats = try environment.openDatabase("topic_stats")
        recordSplit = RecordSplit(pageSize: environment.usage().pageSize)
        let found = try environment.write { (txn) throws(StoreError) -> UInt32 in
            try SchemaMigration.bringUpToDate(self, in: txn)
        }
        guard found == Schema.version else {
            throw .schemaVersionMismatch(path: environment.context.path, found: found, supported: Schema.version)
        }
    }

    // MARK: Key encodings

    /// Prefix of a cursor key owned by a ``DurableOwner``.
    static let ownedCursorPrefix: UInt8 = 0x01
    /// Prefix of a cursor migrated from schema version 1 (keyed by principal).
    static let legacyCursorPrefix: UInt8 = 0x00

    /// The durable-cursor key of `owner`'s durable `name`.
    static func cursorKey(owner: DurableOwner, name: String) throws(StoreError) -> [UInt8] {
        let n = Array(name.utf8)
        guard !n.isEmpty else { throw .invalidArgument("a durable cursor name must not be empty") }
        guard n.count <= 255 else { throw .invalidArgument("a durable name is \(n.count) bytes; the maximum is 255") }
        return [ownedCursorPrefix] + owner.digest + n
    }

    /// The key a version-1 store used (the principal's length first so that
    /// ("ab", "c") and ("a", "bc") never collide), under the legacy prefix.
    static func legacyCursorKey(principal: String, name: String) throws(StoreError) -> [UInt8] {
        let p = Array(principal.utf8)
        let n = Array(name.utf8)
        guard !n.isEmpty else { throw .invalidArgument("a durable cursor name must not be empty") }
        guard p.count <= Int(UInt16.max), 3 + p.count + n.count <= 511 else {
            throw .invalidArgument("principal plus durable name are \(p.count + n.count) bytes; the maximum is 508")
        }
        return [legacyCursorPrefix, UInt8(p.count >> 8), UInt8(p.count & 0xFF)] + p + n
    }

    /// Whether a version-1 store could have held a cursor for `principal`
    /// and `name`: its key had to fit LMDB's 511 bytes (and the principal a
    /// u16 length). For longer ones there is no legacy cursor to look for,
    /// and ``legacyCursorKey(principal:name:)`` would throw.
    static func legacyCursorKeyFits(principal: String, name: String) -> Bool {
        let p = principal.utf8.count
        return p <= Int(UInt16.max) && 3 + p + name.utf8.count <= 511
    }

    /// Bytes of a dedup key: publisher number ‖ session id ‖ publish id.
    /// Version 2 used the publisher's 32-byte digest in place of the number:
    /// 56-byte keys in two tables cost about 8 % of 1:1 fsync throughput
    /// (docs/performance.md).
    static let dedupKeySize = 28
}

/// One deduplicated publish's `dedup` key (publisher number ‖ session id ‖
/// publish id, ``Schema/dedupKeySize`` bytes, all big-endian) and, after it,
/// the commit timestamp: the `dedup_order` value. Built on the stack: the
/// writer needs the key twice and the value once per deduplicated publish,
/// which were three heap arrays per message (docs/performance-history.md, "Store
/// writer CPU (wave 8)"). Ordered as LMDB orders the keys (big-endian, so
/// numeric order is byte order).
struct DedupEntry: Comparable {
    let publisher: UInt32
    let sessionHigh: UInt64
    let sessionLow: UInt64
    let publishID: UInt64

    init(publisher number: UInt32, _ key: ProducerKey) {
        (publisher, sessionHigh, sessionLow, publishID) = (number, key.sessionHigh, key.sessionLow, key.publishID)
    }

    /// Parses a stored key; nil unless it is exactly ``Schema/dedupKeySize`` bytes.
    init?(key: UnsafeRawBufferPointer) {
        guard key.count == Schema.dedupKeySize else { return nil }
        publisher = UInt32(bigEndian: key.loadUnaligned(fromByteOffset: 0, as: UInt32.self))
        (sessionHigh, sessionLow, publishID) = (key.readUInt64BE(at: 4), key.readUInt64BE(at: 12), key.readUInt64BE(at: 20))
    }

    static func < (a: DedupEntry, b: DedupEntry) -> Bool {
        (a.publisher, a.sessionHigh, a.sessionLow, a.publishID) < (b.publisher, b.sessionHigh, b.sessionLow, b.publishID)
    }

    /// `body` gets the key, then, with `timestamp`, the `dedup_order` value (key ‖ u64 timestamp).
    /// Both point into this call's stack frame and are valid only inside `body`.
    @inline(__always)
    func withBytes<R>(timestamp: UInt64,
                      _ body: (_ key: UnsafeRawBufferPointer, _ orderValue: UnsafeRawBufferPointer) throws(StoreError) -> R)
    throws(StoreError) -> R {
        var words: (UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0)  // 40 bytes for 36
        return try withUnsafeMutableBytes(of: &words) { (raw) throws(StoreError) -> R in
            raw.storeBytes(of: publisher.bigEndian, toByteOffset: 0, as: UInt32.self)
            raw.storeBytes(of: sessionHigh.bigEndian, toByteOffset: 4, as: UInt64.self)
            raw.storeBytes(of: sessionLow.bigEndian, toByteOffset: 12, as: UInt64.self)
            raw.storeBytes(of: publishID.bigEndian, toByteOffset: 20, as: UInt64.self)
            raw.storeBytes(of: timestamp.bigEndian, toByteOffset: Schema.dedupKeySize, as: UInt64.self)
            let bytes = UnsafeRawBufferPointer(raw)
            return try body(UnsafeRawBufferPointer(rebasing: bytes[..<Schema.dedupKeySize]),
                            UnsafeRawBufferPointer(rebasing: bytes[..<(Schema.dedupKeySize + 8)]))
        }
    }
}
