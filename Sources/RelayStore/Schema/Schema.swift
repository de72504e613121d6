/// The named databases of a store and their key/value layouts
/// (docs/storage.md has the full description).
struct Schema: Sendable {
    /// Bump when a layout changes incompatibly; checked on open. Version 2
    /// keys dedup entries by the publisher's certificate digest and durable
    /// cursors by their owner; version 3 puts a 4-byte publisher number in
    /// the dedup key instead of the 32-byte digest; version 4 stores a
    /// durable's filter after its cursor's sequence (docs/storage.md,
    /// "Schema history").
    static let version: UInt32 = 4
    static let databaseCount = 9
    static let versionKey = Array("schema_version".utf8)

    /// "schema_version" → u32 BE.
    let meta: Database
    /// seq (u64 BE) → record (RecordCodec).
    let log: Database
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

    /// Opens every database, creating them and the version record in a new
    /// store, migrating an older store (``SchemaMigration``), and refusing a
    /// store written with a newer schema version.
    init(environment: Environment) throws(StoreError) {
        meta = try environment.openDatabase("meta")
        log = try environment.openDatabase("log")
        topics = try environment.openDatabase("topics", flags: [.duplicateSort, .duplicateFixed])
        time = try environment.openDatabase("time")
        cursors = try environment.openDatabase("cursors")
        dedup = try environment.openDatabase("dedup")
        dedupOrder = try environment.openDatabase("dedup_order")
        publishers = try environment.openDatabase("publishers")
        topicStats = try environment.openDatabase("topic_stats")
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

    /// Bytes of a dedup key: publisher number ‖ session id ‖ publish id.
    /// Version 2 used the publisher's 32-byte digest in place of the number:
    /// 56-byte keys in two tables cost about 8 % of 1:1 fsync throughput
    /// (docs/performance.md).
    static let dedupKeySize = 28

    /// The 28-byte dedup key of `key`, published by publisher `number`.
    static func dedupKey(publisher number: UInt32, _ key: ProducerKey) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: dedupKeySize)
        // Word by word, no intermediate array: this runs twice per deduplicated publish.
        out.withUnsafeMutableBytes { raw in
            raw.storeBytes(of: number.bigEndian, toByteOffset: 0, as: UInt32.self)
            raw.storeBytes(of: key.sessionHigh.bigEndian, toByteOffset: 4, as: UInt64.self)
            raw.storeBytes(of: key.sessionLow.bigEndian, toByteOffset: 12, as: UInt64.self)
            raw.storeBytes(of: key.publishID.bigEndian, toByteOffset: 20, as: UInt64.self)
        }
        return out
    }
}
