internal import CLMDB

/// Cursor positioning operations (a subset of `MDB_cursor_op`).
enum CursorOperation: Sendable {
    case first, last, next, previous
    /// Exactly `key`.
    case key
    /// The first key >= `key`.
    case keyRange
    /// Dupsort: the last/next/previous value of the current key.
    case lastDuplicate, nextDuplicate, previousDuplicate
    /// Dupsort: exactly `key`, first value >= `value`.
    case duplicateRange
    case current

    var raw: MDB_cursor_op {
        switch self {
        case .first: return MDB_FIRST
        case .last: return MDB_LAST
        case .next: return MDB_NEXT
        case .previous: return MDB_PREV
        case .key: return MDB_SET_KEY
        case .keyRange: return MDB_SET_RANGE
        case .lastDuplicate: return MDB_LAST_DUP
        case .nextDuplicate: return MDB_NEXT_DUP
        case .previousDuplicate: return MDB_PREV_DUP
        case .duplicateRange: return MDB_GET_BOTH_RANGE
        case .current: return MDB_GET_CURRENT
        }
    }
}

/// A cursor inside one transaction. It is `~Copyable` and only lent to the
/// closure of ``TransactionReading/withCursor(_:_:)``, which closes it, so
/// it cannot outlive its transaction.
struct Cursor: ~Copyable {
    /// MDB_cursor*, valid inside the `withCursor` closure.
    let pointer: OpaquePointer
    let database: Database
    let context: LMDBContext

    /// Moves the cursor and hands the entry it lands on to `body`; nil when
    /// there is no such entry. `key`/`value` are inputs for the positioning
    /// operations that need them. The buffers passed to `body` point into
    /// the map and are valid only inside `body`. Always inlined: the
    /// replay's walk calls it once per record, and a call that the compiler
    /// left out of line there (once the closure grew by the `log_tail` join)
    /// cost about 120 instructions per replayed message.
    @inline(__always)
    func move<R>(_ operation: CursorOperation, key: UnsafeRawBufferPointer? = nil,
                 value: UnsafeRawBufferPointer? = nil,
                 _ body: (_ key: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer) throws(StoreError) -> R)
    throws(StoreError) -> R? {
        var k = key.map(mdbVal) ?? MDB_val()
        var v = value.map(mdbVal) ?? MDB_val()
        let rc = mdb_cursor_get(pointer, &k, &v, operation.raw)
        if rc == MDB_NOTFOUND { return nil }
        try context.check(rc, "mdb_cursor_get(\(database.name), \(operation))")
        return try body(bufferView(k), bufferView(v))
    }

    /// Moves the cursor and reports only whether an entry was found.
    func position(_ operation: CursorOperation, key: UnsafeRawBufferPointer? = nil,
                  value: UnsafeRawBufferPointer? = nil) throws(StoreError) -> Bool {
        try move(operation, key: key, value: value) { _, _ in () } != nil
    }

    /// Number of values of the current key (dupsort databases).
    func duplicateCount() throws(StoreError) -> Int {
        var n: Int = 0
        try context.check(mdb_cursor_count(pointer, &n), "mdb_cursor_count(\(database.name))")
        return n
    }

    /// Deletes the entry under the cursor (write transactions only). The
    /// cursor then stands on the following entry: use `.current` to read it.
    func deleteCurrent() throws(StoreError) {
        try context.check(mdb_cursor_del(pointer, 0), "mdb_cursor_del(\(database.name))")
    }
}

extension Cursor {
    /// Stores `value` under `key` through this cursor (write transactions
    /// only). Returns false when `.noOverwrite` found the key, or `.append` /
    /// `.appendDuplicate` a key or value not after the last one. The writer
    /// appends through one cursor per database for a whole commit: LMDB then
    /// keeps the path to the last leaf (`MDB_APPEND` on a cursor already at
    /// the end skips the B-tree search from the root, and the dirty-page
    /// lookup at every level that comes with it), where `mdb_put` opens a
    /// fresh cursor and searches from the root on every call.
    @discardableResult
    func put(key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer, flags: PutFlags = []) throws(StoreError) -> Bool {
        var k = mdbVal(key)
        var v = mdbVal(value)
        let rc = mdb_cursor_put(pointer, &k, &v, flags.rawValue)
        if rc == MDB_KEYEXIST { return false }
        try context.check(rc, "mdb_cursor_put(\(database.name))")
        return true
    }

    /// Like ``WriteTransaction/putReserved(_:key:size:flags:_:)``, through
    /// this cursor: `fill` writes `source` into the `size` bytes LMDB
    /// reserved in a dirty page of this transaction, valid only in `fill`.
    /// `source` is handed to `fill` borrowed rather than captured by it: a
    /// closure capturing the writer's `NewMessage` made the compiler copy the
    /// message for it (retains of its topic, payload, headers and principal,
    /// then releases: ~290 instructions per stored message; docs/performance-history.md,
    /// "Writer copies and batched PUBACKs (wave 11)").
    func putReserved<Source: ~Copyable>(key: UnsafeRawBufferPointer, size: Int, flags: PutFlags = [],
                                        from source: borrowing Source,
                                        _ fill: (borrowing Source, UnsafeMutableRawBufferPointer) -> Void) throws(StoreError) {
        var k = mdbVal(key)
        var v = MDB_val(mv_size: size, mv_data: nil)
        try context.check(mdb_cursor_put(pointer, &k, &v, flags.rawValue | UInt32(MDB_RESERVE)),
                          "mdb_cursor_put(\(database.name), reserve \(size))")
        fill(source, UnsafeMutableRawBufferPointer(start: v.mv_data, count: size))
    }
}
