/// The largest key in the `dedup` table as of the current write
/// transaction, so the writer can skip the lookup of a producer key above
/// it: such a key cannot be stored. One producer session's keys grow with
/// its publish ids, so under load almost every key of a commit is above the
/// ceiling, and the B-tree search from the root that the lookup was (about
/// 1,800 instructions, 8 % of relayd's per message) is not made.
///
/// Only the writer thread changes `dedup` between its own commits' puts (the
/// pruner only deletes, in transactions of its own), so the ceiling is read
/// from the table once per commit, when its first deduplicated publish
/// arrives, and raised by each put of that commit. An aborted transaction
/// starts the next try with ``reset()``, so a key it put is never assumed stored.
struct DedupCeiling {
    private enum State {
        /// Not read in this transaction yet.
        case unread
        /// The table is empty.
        case empty
        case key(DedupEntry)
        /// The last key is not a dedup key of this schema: look every key up.
        case unknown
    }

    private var state = State.unread

    /// A new write transaction (also after an aborted one).
    mutating func reset() { state = .unread }

    /// Whether `entry` may be stored, i.e. must be looked up. Reads the last
    /// key through `dedup` (the commit's cursor on the `dedup` table) the first time.
    mutating func mayHold(_ entry: DedupEntry, dedup: borrowing Cursor) throws(StoreError) -> Bool {
        if case .unread = state {
            // nil: no entry; .some(nil): an entry that is not a 28-byte key.
            switch try dedup.move(.last, { key, _ in DedupEntry(key: key) }) {
            case nil: state = .empty
            case .some(nil): state = .unknown
            case .some(.some(let last)): state = .key(last)
            }
        }
        switch state {
        case .unread, .unknown: return true
        case .empty: return false
        case .key(let last): return entry <= last
        }
    }

    /// `entry` was put into the table in this transaction.
    mutating func stored(_ entry: DedupEntry) {
        switch state {
        case .empty: state = .key(entry)
        case .key(let last) where last < entry: state = .key(entry)
        case .unread, .unknown, .key: break  // unread: the next read sees the put
        }
    }
}
