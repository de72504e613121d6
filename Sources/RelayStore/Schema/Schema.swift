/// The named databases of a store and their key/value layouts
/// (docs/storage.md has the full description).
struct Schema: Sendable {
    /// Bump when a layout changes incompatibly; checked on open.
    static let version: UInt32 = 1
    static let databaseCount = 8
    static let versionKey = Array("schema_version".utf8)

    /// "schema_version" → u32 BE.
    let meta: Database
    /// seq (u64 BE) → record (RecordCodec).
    let log: Database
    /// Dupsort, fixed-size values: topic bytes → seq (u64 BE), one value per message.
    let topics: Database
    /// Commit timestamp (u64 BE ns) → first seq of that commit (u64 BE).
    let time: Database
    /// u16 BE principal length ‖ principal ‖ durable name → seq (u64 BE).
    let cursors: Database
    /// session id (16 bytes) ‖ publish id (u64 BE) → seq (u64 BE).
    let dedup: Database
    /// seq (u64 BE) → dedup key (24 bytes) ‖ timestamp (u64 BE): dedup entries in age order, for pruning.
    let dedupOrder: Database
    /// topic bytes → message count (u64 BE) ‖ payload-inclusive record bytes (u64 BE).
    let topicStats: Database

    /// Opens every database, creating them and the version record in a new
    /// store, and refuses a store written with another schema version.
    init(environment: Environment) throws(StoreError) {
        meta = try environment.openDatabase("meta")
        log = try environment.openDatabase("log")
        topics = try environment.openDatabase("topics", flags: [.duplicateSort, .duplicateFixed])
        time = try environment.openDatabase("time")
        cursors = try environment.openDatabase("cursors")
        dedup = try environment.openDatabase("dedup")
        dedupOrder = try environment.openDatabase("dedup_order")
        topicStats = try environment.openDatabase("topic_stats")
        let meta = self.meta
        let found: UInt32 = try environment.write { (txn) throws(StoreError) -> UInt32 in
            try Schema.versionKey.withBytes { (key) throws(StoreError) -> UInt32 in
                if let stored = try txn.get(meta, key: key, { value in
                    value.count == 4 ? UInt32(bigEndian: value.loadUnaligned(as: UInt32.self)) : 0
                }) {
                    return stored
                }
                var be = Schema.version.bigEndian
                _ = try withUnsafeBytes(of: &be) { (value) throws(StoreError) in
                    try txn.put(meta, key: key, value: value)
                }
                return Schema.version
            }
        }
        guard found == Schema.version else {
            throw .schemaVersionMismatch(path: environment.context.path, found: found, supported: Schema.version)
        }
    }

    // MARK: Key encodings

    /// The durable-cursor key: the principal's length first so that
    /// ("ab", "c") and ("a", "bc") never collide.
    static func cursorKey(principal: String, name: String) throws(StoreError) -> [UInt8] {
        let p = Array(principal.utf8)
        let n = Array(name.utf8)
        guard !n.isEmpty else { throw .invalidArgument("a durable cursor name must not be empty") }
        guard p.count <= Int(UInt16.max), 2 + p.count + n.count <= 511 else {
            throw .invalidArgument("principal plus durable name are \(p.count + n.count) bytes; the maximum is 509")
        }
        return [UInt8(p.count >> 8), UInt8(p.count & 0xFF)] + p + n
    }

    /// The 24-byte dedup key.
    static func dedupKey(_ key: ProducerKey) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 24)
        out.withUnsafeMutableBytes { raw in
            raw.storeBytes(of: key.sessionHigh.bigEndian, toByteOffset: 0, as: UInt64.self)
            raw.storeBytes(of: key.sessionLow.bigEndian, toByteOffset: 8, as: UInt64.self)
            raw.storeBytes(of: key.publishID.bigEndian, toByteOffset: 16, as: UInt64.self)
        }
        return out
    }
}
