/// Where the store cuts a record that is a little longer than whole LMDB
/// overflow pages (docs/storage.md, "Records longer than a page").
///
/// LMDB keeps a value over about half a page on overflow pages of its own,
/// each holding the page size less its 16-byte header. A 4 KiB payload with
/// its record fields (about 4,200 bytes) took two of them: 8 KiB written,
/// flushed and cached per message, twice the payload, which capped 4 KiB
/// throughput (docs/performance-history.md, "Large messages (wave 7)"). Cut
/// at the last page boundary, the head fills whole overflow pages and the
/// last bytes go to `log_tail`, small enough to stay inline in its leaf
/// pages: one page and a share of a leaf per message.
struct RecordSplit: Sendable, Equatable {
    /// Bytes one overflow page holds: the page size less LMDB's page header
    /// (`PAGEHDRSZ`, 16 bytes on 64-bit builds).
    let pageCapacity: Int
    /// The longest tail cut off: a quarter of a page. LMDB keeps a value
    /// inline up to about half a page (2,022 bytes with 4 KiB pages); a
    /// quarter keeps at least three tails in each leaf page of `log_tail`.
    let tailLimit: Int

    init(pageSize: Int) {
        pageCapacity = max(pageSize, 4096) - 16
        tailLimit = pageCapacity / 4
    }

    /// The length of the head a record of `recordSize` bytes, its payload
    /// starting at `payloadStart`, is cut to; nil to store it whole. Only
    /// records that end at most ``tailLimit`` bytes past a page boundary
    /// are cut, and only inside the payload, so every field before the
    /// payload stays in the head for readers that look at them alone.
    func headLength(recordSize: Int, payloadStart: Int) -> Int? {
        guard recordSize > pageCapacity else { return nil }
        let tail = recordSize % pageCapacity
        guard tail > 0, tail <= tailLimit else { return nil }
        let head = recordSize - tail
        guard head >= payloadStart else { return nil }
        return head
    }
}

/// Hands readers whole records: the `log` value itself, or, for a head whose
/// flags say it continues in `log_tail`, head and tail copied together into
/// a buffer reused for the whole read.
struct RecordJoiner {
    private var scratch: [UInt8] = []

    /// Calls `body` with the whole record at `sequence`, whose `log` value is
    /// `head` (valid for the read transaction `txn`). The buffer `body` gets
    /// is valid only inside `body`. A head whose tail is missing is
    /// corruption, never a short payload.
    @inline(never)
    mutating func withWhole<R>(_ head: UnsafeRawBufferPointer, sequence: UInt64, schema: Schema,
                               in txn: borrowing some TransactionReading & ~Copyable,
                               _ body: (UnsafeRawBufferPointer) throws(StoreError) -> R) throws(StoreError) -> R {
        guard RecordCodec.continuesInTail(head) else { return try body(head) }  // callers check first; kept for safety
        let found = try withBigEndianBytes(sequence) { (key) throws(StoreError) -> Bool? in
            try txn.get(schema.logTail, key: key) { tail -> Bool in
                scratch.removeAll(keepingCapacity: true)
                scratch.append(contentsOf: head)
                scratch.append(contentsOf: tail)
                return true
            }
        }
        guard found != nil else {
            throw .corrupted(operation: "record read",
                             detail: "record \(sequence) continues in log_tail, which has no entry for it")
        }
        return try scratch.withBytes { (whole) throws(StoreError) -> R in try body(whole) }
    }
}

/// Deleting a record with its tail.
enum LogRecords {
    /// Deletes the record under `sequenceKey` and its tail, if it has one.
    /// Returns the record's bytes (head and tail: what topic stats counted
    /// for it), or nil when there was no such record.
    static func delete(_ sequenceKey: UnsafeRawBufferPointer, schema: Schema,
                       in txn: borrowing WriteTransaction) throws(StoreError) -> Int? {
        guard let (size, continues) = try txn.get(schema.log, key: sequenceKey, { record in
            (record.count, RecordCodec.continuesInTail(record))
        }) else { return nil }
        try txn.delete(schema.log, key: sequenceKey)
        guard continues else { return size }
        let tail = try txn.get(schema.logTail, key: sequenceKey) { $0.count } ?? 0
        try txn.delete(schema.logTail, key: sequenceKey)
        return size + tail
    }
}
