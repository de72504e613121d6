import Foundation

/// What one edge knows of each durable cursor key it attached: the key's
/// revision as last read (when a SUB attached the durable) or written (each
/// commit's ack), against which the next commit is a compare-and-set.
/// Thread-safe: attaches read on event loops, commits run on the writer.
///
/// Each attach read starts a new *generation* of the key; a commit carries
/// the generation it was made in, so a commit of an attachment that already
/// ended (its cursor lost to a delete or to another edge) cannot store a
/// cursor for the attachment that followed it.
///
/// An entry stays for as long as the edge runs (one per durable attached
/// here since it started, as the admin's per-durable facts do), and goes
/// when this edge deletes the durable.
final class CursorRevisions: @unchecked Sendable {
    // @unchecked: `entries` is guarded by `lock`.
    enum State: Equatable {
        /// The key's last revision (0: the key has no entry).
        case revision(UInt64)
        /// A commit found the key purged: the durable was deleted.
        case deleted
        /// A commit found the key moved by another writer (another edge);
        /// `stored` nil when its value could not be read.
        case conflict(stored: UInt64?)
    }

    struct Entry: Equatable {
        var generation: UInt64
        var state: State
        /// A value put whose ack never came (it may be stored): a later
        /// commit that finds exactly it stored knows the write was its own.
        var unacknowledged: [UInt8]?
        /// The cursor read at the attach or stored since (nil: none, or lost),
        /// for `relay_subscription_lag` (``KnownCursorReporting``).
        var cursor: UInt64?
    }

    private let lock = NSLock()
    private var entries: [String: Entry] = [:]
    private var generations: UInt64 = 0

    /// A SUB attached the durable and read `revision`: a new generation.
    func attached(_ key: String, revision: UInt64, cursor: UInt64?) {
        lock.withLock {
            generations += 1
            entries[key] = Entry(generation: generations, state: .revision(revision), cursor: cursor)
        }
    }

    /// The current generation of `key`, taken when a commit is queued.
    func generation(_ key: String) -> UInt64? {
        lock.withLock { entries[key]?.generation }
    }

    func entry(_ key: String) -> Entry? {
        lock.withLock { entries[key] }
    }

    /// Sets the key's state if it is still in `generation`, with the cursor
    /// now stored (nil: none, or lost); clears the unacknowledged value.
    func update(_ key: String, generation: UInt64, _ state: State, cursor: UInt64?) {
        lock.withLock {
            guard entries[key]?.generation == generation else { return }
            entries[key]?.state = state
            entries[key]?.unacknowledged = nil
            entries[key]?.cursor = cursor
        }
    }

    /// The known cursor of each of `keys` that has one.
    func cursors(_ keys: [String]) -> [String: UInt64] {
        lock.withLock {
            var out: [String: UInt64] = [:]
            for key in keys { if let cursor = entries[key]?.cursor { out[key] = cursor } }
            return out
        }
    }

    /// Notes a put of `value` whose outcome is unknown (no ack in time).
    func unacknowledged(_ key: String, generation: UInt64, value: [UInt8]) {
        lock.withLock {
            guard entries[key]?.generation == generation else { return }
            entries[key]?.unacknowledged = value
        }
    }

    /// This edge deleted the durable: forget what it knew.
    func forget(_ key: String) {
        _ = lock.withLock { entries.removeValue(forKey: key) }
    }

    var count: Int { lock.withLock { entries.count } }
}
