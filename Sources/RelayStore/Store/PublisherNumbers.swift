import RelayCore

/// Gives each publisher (certificate digest) that sends deduplicated
/// publishes a 4-byte number, stored in the `publishers` table, so that a
/// dedup key carries 4 bytes of identity instead of 32 (``Schema/dedupKey``).
/// The number is exact, not a hash: two certificates never share one.
///
/// Owned by the writer thread (inside ``Appender``). Numbers allocated in a
/// write transaction are cached only once it committed: an aborted
/// transaction takes its allocations with it, and a retry allocates again
/// from what is on disk, so a number is never cached for two digests.
struct PublisherNumbers {
    /// Numbers known to be on disk.
    private var committed: [CertificateFingerprint: UInt32] = [:]
    /// Numbers read or allocated in the current write transaction.
    private var pending: [CertificateFingerprint: UInt32] = [:]
    /// A broker sees few certificates; the cap only bounds a pathological one.
    static let cacheLimit = 65_536

    /// The last answer of ``number(for:allocate:schema:in:)`` in this
    /// transaction: a commit's publishes mostly come from one publisher, and
    /// the digest compare is cheaper than hashing 32 bytes twice per message.
    /// Cleared with `pending`, so an aborted transaction's number is not reused.
    private var last: (digest: CertificateFingerprint, number: UInt32)?

    /// Starts a write transaction (also after an aborted one).
    mutating func begin() {
        pending.removeAll(keepingCapacity: true)
        last = nil
    }

    /// The transaction committed: its numbers are on disk.
    mutating func commit() {
        if committed.count + pending.count > Self.cacheLimit { committed.removeAll() }
        committed.merge(pending) { old, _ in old }
        pending.removeAll(keepingCapacity: true)
    }

    /// `digest`'s number; nil when it has none and `allocate` is false.
    mutating func number(for digest: CertificateFingerprint, allocate: Bool, schema: Schema,
                         in txn: borrowing WriteTransaction) throws(StoreError) -> UInt32? {
        if let last, last.digest == digest { return last.number }
        if let number = committed[digest] ?? pending[digest] {
            last = (digest, number)
            return number
        }
        guard let number = try Self.lookUp(digest.bytes, allocate: allocate, schema: schema, in: txn) else { return nil }
        pending[digest] = number
        last = (digest, number)
        return number
    }

    /// Reads `digest`'s number from the `publishers` table; with `allocate`,
    /// gives it the next one (entries are never deleted, so the next number
    /// is the count plus one). Also used by the schema migration.
    static func lookUp(_ digest: [UInt8], allocate: Bool, schema: Schema,
                       in txn: borrowing WriteTransaction) throws(StoreError) -> UInt32? {
        try digest.withBytes { (key) throws(StoreError) -> UInt32? in
            if let stored = try txn.get(schema.publishers, key: key, { value in
                value.count == 4 ? UInt32(bigEndian: value.loadUnaligned(as: UInt32.self)) : nil
            }) {
                guard let stored else {
                    throw .corrupted(operation: "publisher number", detail: "a publishers entry is not 4 bytes")
                }
                return stored
            }
            guard allocate else { return nil }
            let count = try txn.count(schema.publishers)
            guard count < Int(UInt32.max) else {
                throw .corrupted(operation: "publisher number", detail: "all \(UInt32.max) publisher numbers are used")
            }
            let number = UInt32(count + 1)
            var be = number.bigEndian
            // A plain put: the digest was looked up just above in this same
            // write transaction and was absent, so nothing is overwritten.
            _ = try withUnsafeBytes(of: &be) { (value) throws(StoreError) in
                try txn.put(schema.publishers, key: key, value: value)
            }
            return number
        }
    }
}
