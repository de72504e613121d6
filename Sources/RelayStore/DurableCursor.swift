/// A durable subscription's committed position and the filter it was
/// attached with. The filter is stored with the cursor, in the same record,
/// so a restarted broker still refuses the durable's name under another
/// filter (`durable_filter_mismatch`, Protocol/relay-v1.md §4.6) instead of
/// moving its cursor.
public struct DurableCursor: Sendable, Hashable {
    /// The last consumed sequence.
    public var sequence: UInt64
    /// The SUB filter, or nil when the record predates stored filters (an
    /// LMDB store of schema 3 or older, a JetStream cursor written by an older
    /// edge). The broker then adopts the filter of the next SUB that attaches
    /// the durable and stores it (docs/storage.md, "Durable cursors").
    public var filter: String?

    public init(sequence: UInt64, filter: String?) {
        (self.sequence, self.filter) = (sequence, filter)
    }

    /// The stored value, shared by the backends that keep bytes (LMDB's
    /// `cursors` database, JetStream's cursor bucket): the sequence (u64 BE)
    /// followed by the filter's UTF-8 bytes. A filter is never empty, so
    /// eight bytes alone are the older record without one.
    public static func encode(sequence: UInt64, filter: String) -> [UInt8] {
        var value: [UInt8] = []
        value.reserveCapacity(8 + filter.utf8.count)
        withUnsafeBytes(of: sequence.bigEndian) { value.append(contentsOf: $0) }
        value.append(contentsOf: filter.utf8)
        return value
    }

    /// Decodes ``encode(sequence:filter:)``'s bytes (or an older eight-byte
    /// record); nil when shorter than a sequence.
    public static func decode<Bytes: Collection<UInt8>>(_ value: Bytes) -> DurableCursor? {
        guard value.count >= 8 else { return nil }
        let sequence = value.prefix(8).reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        let rest = value.dropFirst(8)
        return DurableCursor(sequence: sequence, filter: rest.isEmpty ? nil : String(decoding: rest, as: UTF8.self))
    }
}
