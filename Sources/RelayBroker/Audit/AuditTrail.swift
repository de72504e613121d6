import Foundation
import NIOConcurrencyHelpers
import RelayTLS

/// The append-only, hash-chained JSON-lines audit trail.
///
/// Every line is one JSON object whose last two fields are `prev` (the hash
/// of the previous line, 64 zeros for the first) and `hash` (SHA-256 of the
/// line's text up to and including `"prev":"…"`, then `}`). Editing a line
/// breaks its own `hash`; deleting or reordering lines breaks the next
/// line's `prev`. ``AuditVerifier`` names the first broken line.
///
/// Writes go to a dedicated serial queue so the publish path never waits on
/// the trail; allowed publishes are counted in metrics, not written here.
public final class AuditTrail: Sendable {
    public static let zeroHash = String(repeating: "0", count: 64)

    private let queue = DispatchQueue(label: "relay.audit")
    private let state: NIOLockedValueBox<State>

    private struct State {
        var handle: FileHandle?
        var previousHash: String
        /// The file's length after the last line written whole.
        var length: UInt64
        var failures = 0
    }

    /// Called (on the trail's queue) with the running count after a write fails.
    private let onWriteFailure: (@Sendable (Int) -> Void)?

    /// Opens (or creates) the trail at `path`, continuing the existing chain.
    /// `onWriteFailure` gets the running failure count (relayd exports it as
    /// the `relay_audit_write_failures` gauge).
    public init(path: String, onWriteFailure: (@Sendable (Int) -> Void)? = nil) throws {
        self.onWriteFailure = onWriteFailure
        let fm = FileManager.default
        if !fm.fileExists(atPath: path) {
            guard fm.createFile(atPath: path, contents: nil, attributes: [.posixPermissions: 0o600]) else {
                throw AuditError.cannotOpen(path: path, reason: "could not create the file; check the folder exists and is writable")
            }
        }
        guard let handle = FileHandle(forUpdatingAtPath: path) else {
            throw AuditError.cannotOpen(path: path, reason: "could not open it for appending; check its permissions")
        }
        let last = try AuditVerifier.lastHash(path: path)
        let length = handle.seekToEndOfFile()
        state = NIOLockedValueBox(State(handle: handle, previousHash: last ?? Self.zeroHash, length: length))
    }

    /// Appends one event. `fields` are written in the given order after
    /// `ts` and `event`; values are strings, numbers or booleans.
    public func record(_ event: String, _ fields: KeyValuePairs<String, any Sendable> = [:]) {
        var body = "{\"ts\":\(Self.jsonString(Self.timestamp())),\"event\":\(Self.jsonString(event))"
        for (key, value) in fields {
            body += ",\(Self.jsonString(key)):\(Self.jsonValue(value))"
        }
        let text = body
        queue.async { [state, onWriteFailure] in
            let failed = state.withLockedValue { state -> Int? in
                let line = Self.seal(body: text, previous: state.previousHash)
                let bytes = Data((line.text + "\n").utf8)
                do {
                    try state.handle?.write(contentsOf: bytes)
                    // Chain to a line only once it is on disk: a lost line must
                    // not leave the next one pointing at a hash nobody can find.
                    state.previousHash = line.hash
                    state.length += UInt64(bytes.count)
                    return nil
                } catch {
                    // A full disk takes what fits and then fails (ENOSPC):
                    // cut the torn part off, or the next line would be glued
                    // to it and relayd would refuse the trail at its next start.
                    try? state.handle?.truncate(atOffset: state.length)
                    state.failures += 1
                    return state.failures
                }
            }
            if let failed { onWriteFailure?(failed) }
        }
    }

    /// Waits until every recorded event is written and synced to disk.
    public func flush() {
        queue.sync {
            state.withLockedValue { state in try? state.handle?.synchronize() }
        }
    }

    public func close() {
        flush()
        state.withLockedValue { state in
            try? state.handle?.close()
            state.handle = nil
        }
    }

    /// Write failures so far (exported as a metric).
    public var failures: Int { state.withLockedValue { $0.failures } }

    /// Adds `prev` and `hash` to a line body that lacks its closing brace.
    static func seal(body: String, previous: String) -> (text: String, hash: String) {
        let hashed = body + ",\"prev\":\"\(previous)\"}"
        let hash = SHA256.hex(Array(hashed.utf8))
        return (String(hashed.dropLast()) + ",\"hash\":\"\(hash)\"}", hash)
    }

    /// The current UTC time as RFC 3339 with milliseconds
    /// (`2026-11-29T06:28:03.123Z`), the same text ISO8601DateFormatter
    /// gives with `.withInternetDateTime, .withFractionalSeconds`. Formatted
    /// by hand: building a formatter per line cost ~9% of relayd's CPU when
    /// clients connect at a high rate.
    static func timestamp(_ date: Date = Date()) -> String {
        let since1970 = date.timeIntervalSince1970
        var seconds = time_t(since1970.rounded(.down))
        let millis = min(999, max(0, Int(((since1970 - Double(seconds)) * 1000).rounded(.down))))
        var parts = tm()
        guard gmtime_r(&seconds, &parts) != nil else { return "1970-01-01T00:00:00.000Z" }
        return pad(Int(parts.tm_year) + 1900, 4) + "-" + pad(Int(parts.tm_mon) + 1, 2) + "-" + pad(Int(parts.tm_mday), 2)
            + "T" + pad(Int(parts.tm_hour), 2) + ":" + pad(Int(parts.tm_min), 2) + ":" + pad(Int(parts.tm_sec), 2)
            + "." + pad(millis, 3) + "Z"
    }

    private static func pad(_ value: Int, _ width: Int) -> String {
        let digits = String(value)
        return digits.count >= width ? digits : String(repeating: "0", count: width - digits.count) + digits
    }

    static func jsonValue(_ value: any Sendable) -> String {
        switch value {
        case let v as Bool: return v ? "true" : "false"
        case let v as Int: return String(v)
        case let v as Int64: return String(v)
        case let v as UInt64: return String(v)
        case let v as UInt32: return String(v)
        case let v as [String]: return "[" + v.map(jsonString).joined(separator: ",") + "]"
        case let v as String: return jsonString(v)
        default: return jsonString(String(describing: value))
        }
    }

    static func jsonString(_ s: String) -> String { JSONText.quoted(s) }
}

public enum AuditError: Error, CustomStringConvertible, Equatable {
    case cannotOpen(path: String, reason: String)
    /// The first line (1-based) at which the chain does not hold.
    case broken(line: Int, reason: String)

    public var description: String {
        switch self {
        case .cannotOpen(let path, let reason): return "audit trail \(path): \(reason)"
        case .broken(let line, let reason): return "audit trail broken at line \(line): \(reason)"
        }
    }
}
