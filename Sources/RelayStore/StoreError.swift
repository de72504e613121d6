import Foundation
import RelayCore

/// Everything that can go wrong in the store. Each case says what happened
/// and, in ``description``, what the operator or caller should do.
public enum StoreError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The map reached its configured maximum size; appends are refused until
    /// retention frees space. Reads and cursor commits keep working.
    case storageFull(maxMapSize: Int)
    /// All reader slots are in use (`MDB_READERS_FULL`).
    case readersFull(maxReaders: Int)
    /// LMDB found a damaged page (`MDB_CORRUPTED` / `MDB_PAGE_NOTFOUND` / `MDB_PANIC`).
    case corrupted(operation: String, detail: String)
    /// The data file was written by an incompatible LMDB build (`MDB_VERSION_MISMATCH`,
    /// `MDB_INVALID`, `MDB_INCOMPATIBLE`).
    case lmdbVersionMismatch(path: String, detail: String)
    /// The store's schema version is not one this build understands.
    case schemaVersionMismatch(path: String, found: UInt32, supported: UInt32)
    /// A stored record could not be decoded.
    case invalidRecord(sequence: UInt64, reason: String)
    /// Any other LMDB or system error, with the failing call.
    case lmdb(operation: String, code: Int32, message: String)
    /// The caller passed a value the store cannot accept.
    case invalidArgument(String)
    /// The store was closed; no further operations are possible.
    case closed
    /// A replicated log (JetStream) did not acknowledge within the configured
    /// time: no quorum, a leader election that outlasted it, or no connection.
    /// Nothing is known to be stored; a retry with the same publish id is safe.
    case unavailable(String)
    /// The replicated log could not be opened before the start-up timeout
    /// passed: relayd does not start. The text names the servers, the
    /// reason and what to check.
    case notOpened(String)
    /// A cursor commit of a shared log found the durable's cursor deleted
    /// (`relayctl durable delete`, possibly through another edge) since this
    /// edge attached it: nothing was stored, and the subscription ends with
    /// `durable_deleted` rather than bring the durable back.
    case durableDeleted(name: String)
    /// A cursor commit of a shared log found the cursor moved by another
    /// writer (the durable attached on another edge as well): nothing was
    /// stored; the stored cursor is the other writer's, and the subscription
    /// ends with `durable_in_use`.
    /// `stored`: the other edge's cursor, nil when it could not be read.
    case durableConflict(name: String, stored: UInt64?, mine: UInt64)

    public var description: String {
        switch self {
        case .storageFull(let max):
            return "storage full: the store reached its maximum size of \(max) bytes; "
                + "appends resume once retention frees space (tighten [[retention]] rules or raise storage.max_size)"
        case .readersFull(let n):
            return "all \(n) LMDB reader slots are in use; raise max_readers or reduce concurrent replays"
        case .corrupted(let op, let detail):
            return "the store is corrupted (\(op): \(detail)); restore from a backup or copy the data "
                + "out with mdb_copy and investigate the disk"
        case .lmdbVersionMismatch(let path, let detail) where detail.hasPrefix("MDB_INVALID"):
            // Random bytes, another program's file or a damaged header, not another LMDB build.
            return "the store at \(path) is not an LMDB file (\(detail)): the data directory holds something else, "
                + "or a store damaged beyond LMDB's header; point [storage] path (or --data-dir) at the right directory, "
                + "or move this one aside and restore from a backup (relayctl backup)"
        case .lmdbVersionMismatch(let path, let detail):
            return "the store at \(path) was written by an incompatible LMDB version (\(detail)); "
                + "open it with the LMDB build that created it and export the data"
        case .schemaVersionMismatch(let path, let found, let supported):
            return "the store at \(path) has schema version \(found), which this build cannot read (it reads versions 1 to "
                + "\(supported) and upgrades older ones when it opens them); run the relay version that wrote the store, "
                + "or restore the data directory from a backup made before that version first opened it"
        case .invalidRecord(let seq, let reason):
            return "message \(seq) cannot be decoded: \(reason); the store may be damaged"
        case .lmdb(let op, let code, let message):
            let text = "\(op) failed: \(message) (LMDB/errno \(code))"
            switch code {
            case ENOSPC:
                return text + "; the file system holding the store is full: nothing from this commit was stored; "
                    + "free space on it (df shows it) or move the data directory, and publishes succeed again"
            case EIO:
                // LMDB turns a write the kernel cut short into EIO: on a full file system that is the usual cause.
                return text + "; either the file system holding the store filled up during the write (check df) "
                    + "or the disk failed (check dmesg); nothing from this commit was stored"
            default:
                return text
            }
        case .invalidArgument(let why):
            return "invalid argument: \(why)"
        case .closed:
            return "the store is closed; reopen it before using it"
        case .unavailable(let why):
            return "the replicated log is unavailable (\(why)); retry with the same publish id once the NATS "
                + "cluster has a quorum again (check that at least 2 of 3 nodes run)"
        case .notOpened(let why):
            return why
        case .durableDeleted(let name):
            return "durable \(name) was deleted (relayctl durable delete, on this edge or another) while attached here; "
                + "its cursor was not stored again"
        case .durableConflict(let name, let stored, let mine):
            let moved = stored.map { "moved to \($0)" } ?? "moved (to a value this edge cannot read)"
            return "durable \(name) is attached on another edge as well: its cursor \(moved) there, so this "
                + "edge's cursor \(mine) was not stored; attach a durable on one edge at a time"
        }
    }

    /// The protocol error code a broker reports for this error.
    public var relayErrorCode: RelayErrorCode {
        switch self {
        case .storageFull: return .storageFull
        case .unavailable: return .storageUnavailable
        case .durableDeleted: return .durableDeleted
        case .durableConflict: return .durableInUse
        default: return .storageFailure
        }
    }
}
