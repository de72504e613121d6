internal import CLMDB

/// What both transaction kinds can do: read. A write transaction conforms
/// too, so it can do everything a read transaction can (as in heed).
///
/// Transactions are `~Copyable` and handed to closures `borrowing`, so they
/// cannot be stored or escape their ``Environment/read(_:)`` /
/// ``Environment/write(_:)`` scope.
protocol TransactionReading: ~Copyable {
    /// MDB_txn*, valid for the closure the transaction was passed to.
    var pointer: OpaquePointer { get }
    var context: LMDBContext { get }
}

struct ReadTransaction: TransactionReading, ~Copyable {
    let pointer: OpaquePointer
    let context: LMDBContext
}

struct WriteTransaction: TransactionReading, ~Copyable {
    let pointer: OpaquePointer
    let context: LMDBContext
}

/// Write flags, without exposing C constants.
struct PutFlags: OptionSet, Sendable {
    let rawValue: UInt32
    /// Fail with `false` instead of overwriting (`MDB_NOOVERWRITE`).
    static let noOverwrite = PutFlags(rawValue: UInt32(MDB_NOOVERWRITE))
    /// Key is greater than every key in the database (`MDB_APPEND`): no search.
    static let append = PutFlags(rawValue: UInt32(MDB_APPEND))
    /// Value is greater than every value of its key (`MDB_APPENDDUP`).
    static let appendDuplicate = PutFlags(rawValue: UInt32(MDB_APPENDDUP))
}

extension TransactionReading where Self: ~Copyable {
    /// Looks up `key` and hands the value to `body`; nil when absent. The
    /// value points into the map and is valid only inside `body`.
    func get<R>(_ db: Database, key: UnsafeRawBufferPointer,
                _ body: (UnsafeRawBufferPointer) throws(StoreError) -> R) throws(StoreError) -> R? {
        var k = mdbVal(key)
        var v = MDB_val()
        let rc = mdb_get(pointer, db.dbi, &k, &v)
        if rc == MDB_NOTFOUND { return nil }
        try context.check(rc, "mdb_get(\(db.name))")
        return try body(bufferView(v))
    }

    /// Number of entries in `db` as of this transaction.
    func count(_ db: Database) throws(StoreError) -> Int {
        var stat = MDB_stat()
        try context.check(mdb_stat(pointer, db.dbi, &stat), "mdb_stat(\(db.name))")
        return stat.ms_entries
    }

    /// Opens a cursor on `db` for the duration of `body` (cursors live inside
    /// their transaction and are closed when `body` returns).
    func withCursor<R>(_ db: Database, _ body: (borrowing Cursor) throws(StoreError) -> R) throws(StoreError) -> R {
        var cursorPointer: OpaquePointer?
        try context.check(mdb_cursor_open(pointer, db.dbi, &cursorPointer), "mdb_cursor_open(\(db.name))")
        guard let cursorPointer else {
            throw .lmdb(operation: "mdb_cursor_open(\(db.name))", code: -1, message: "no cursor returned")
        }
        // Closed before the transaction ends because `body` returns first.
        defer { mdb_cursor_close(cursorPointer) }
        return try body(Cursor(pointer: cursorPointer, database: db, context: context))
    }
}

extension WriteTransaction {
    /// Stores `value` under `key`. Returns false when `.noOverwrite` found an
    /// existing key, or `.appendDuplicate` a value not after the key's last one.
    @discardableResult
    func put(_ db: Database, key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer,
             flags: PutFlags = []) throws(StoreError) -> Bool {
        var k = mdbVal(key)
        var v = mdbVal(value)
        let rc = mdb_put(pointer, db.dbi, &k, &v, flags.rawValue)
        if rc == MDB_KEYEXIST { return false }
        try context.check(rc, "mdb_put(\(db.name))")
        return true
    }

    /// Reserves `size` bytes for `key` and lets `fill` write the value in
    /// place (`MDB_RESERVE`), saving a copy through an intermediate buffer.
    /// The buffer is dirty page memory of this transaction, valid only in `fill`.
    func putReserved(_ db: Database, key: UnsafeRawBufferPointer, size: Int, flags: PutFlags = [],
                     _ fill: (UnsafeMutableRawBufferPointer) throws(StoreError) -> Void) throws(StoreError) {
        var k = mdbVal(key)
        var v = MDB_val(mv_size: size, mv_data: nil)
        try context.check(mdb_put(pointer, db.dbi, &k, &v, flags.rawValue | UInt32(MDB_RESERVE)),
                          "mdb_put(\(db.name), reserve \(size))")
        try fill(UnsafeMutableRawBufferPointer(start: v.mv_data, count: size))
    }

    /// Deletes `key` (with all its values in a dupsort database). Returns
    /// false when there was no such key.
    @discardableResult
    func delete(_ db: Database, key: UnsafeRawBufferPointer) throws(StoreError) -> Bool {
        var k = mdbVal(key)
        let rc = mdb_del(pointer, db.dbi, &k, nil)
        if rc == MDB_NOTFOUND { return false }
        try context.check(rc, "mdb_del(\(db.name))")
        return true
    }

    /// Removes every entry of `db` (keeps the database).
    func clear(_ db: Database) throws(StoreError) {
        try context.check(mdb_drop(pointer, db.dbi, 0), "mdb_drop(\(db.name))")
    }
}

extension TransactionReading where Self: ~Copyable {
    /// Pages on LMDB's freelist (database 0), i.e. inside the data file but
    /// free for reuse. Each freelist value is an ID list whose first word is
    /// its length (the layout `mdb_stat -f` reads).
    func freePageCount() throws(StoreError) -> Int {
        var cursorPointer: OpaquePointer?
        try context.check(mdb_cursor_open(pointer, 0, &cursorPointer), "mdb_cursor_open(freelist)")
        guard let cursorPointer else { return 0 }
        // Closed before this function returns, inside the transaction.
        defer { mdb_cursor_close(cursorPointer) }
        var key = MDB_val()
        var value = MDB_val()
        var total = 0
        while mdb_cursor_get(cursorPointer, &key, &value, MDB_NEXT) == 0 {
            // The value points into the map; only its first word is read, here.
            if value.mv_size >= MemoryLayout<Int>.size, let data = value.mv_data {
                total += data.loadUnaligned(as: Int.self)
            }
        }
        return total
    }
}
