import Foundation
import NIOConcurrencyHelpers
import RelayCore
import RelayTLS

/// The append-only, keyed, hash-chained JSON-lines audit trail.
///
/// Every line carries `seq`, `prev` (the previous line's `mac`) and `mac`
/// (HMAC-SHA256 under the ``AuditKey``; see ``AuditLine``). Editing,
/// deleting, reordering or forging a line breaks the chain unless the key is
/// known. A sealed checkpoint beside the trail (``AuditCheckpoint``) records
/// the last line on disk, so cutting lines off the end is detected too.
/// Repeated events are aggregated (``AuditAggregator``); the file rotates by
/// size with the chain continuing into the next file; one process at a time
/// may write a trail (flock on `<path>.lock`). Startup reads only the end of
/// the newest file and the checkpoint. docs/security.md says what this can
/// and cannot detect.
///
/// Writes go to a dedicated serial queue so the publish path never waits on
/// the trail; allowed publishes are counted in metrics, not written here.
public final class AuditTrail: Sendable {
    public struct Options: Sendable {
        /// The key file (hex); created 0600 when neither it nor a trail exists.
        public var keyFile: String
        /// Rotate when the live file would exceed this many bytes; 0 never rotates.
        public var maxFileSize: Int64 = 256 << 20
        /// How long repeats of one (event, actor) are counted before their summary line.
        public var repeatInterval: Double = 10
        /// How often (seconds) the checkpoint follows the trail while lines are written.
        public var checkpointInterval: Double = 0.2
        public var maxGroups = 1_024

        public init(keyFile: String) { self.keyFile = keyFile }
    }

    /// What opening the trail read (a test proves startup does not read it all).
    public struct OpenStatistics: Sendable, Equatable {
        public var bytesRead: Int
        /// The seq of the last line found at startup (0 for a new trail).
        public var resumedAtSeq: Int
    }

    static let tailWindow = 128 << 10
    /// A string value longer than this is cut (the tail read must find a whole line).
    static let maxValueBytes = 4_096

    private let queue = DispatchQueue(label: "relay.audit")
    private let state: NIOLockedValueBox<AuditWriter>
    public let openStatistics: OpenStatistics
    let options: Options

    /// Called (on the trail's queue) with the running count after a write fails.
    private let onWriteFailure: (@Sendable (Int) -> Void)?

    /// Opens (or creates) the trail at `path`, continuing the existing chain.
    /// `onWriteFailure` gets the running failure count (relayd exports it as
    /// the `relay_audit_write_failures` gauge).
    public init(path: String, options: Options, onWriteFailure: (@Sendable (Int) -> Void)? = nil) throws {
        self.onWriteFailure = onWriteFailure
        self.options = options
        var reader = AuditFileReader()
        let opened = try AuditWriter.open(path: path, options: options, reader: &reader)
        openStatistics = OpenStatistics(bytesRead: reader.bytesRead, resumedAtSeq: opened.writer.seq)
        state = NIOLockedValueBox(opened.writer)
        // Integrity findings of the start are written first, before any event.
        for body in opened.findings { append(body: body) }
        queue.sync {}
    }

    /// Appends one event. `fields` are written in the given order after
    /// `ts` and `event`; values are strings, numbers or booleans.
    /// `aggregated: false` writes it in full even within a run of repeats:
    /// for an allowed admin change, whose arguments a summary line would
    /// lose (a purge hidden between two others).
    public func record(_ event: String, _ fields: KeyValuePairs<String, any Sendable> = [:], aggregated: Bool = true) {
        let ts = JSONText.quoted(Self.timestamp())
        var rendered = ""
        rendered.reserveCapacity(256)
        for (key, value) in fields {
            rendered.append(",")
            JSONText.appendQuoted(key, to: &rendered)
            rendered.append(":")
            Self.appendJSONValue(value, to: &rendered)
        }
        let actor = AuditAggregator.actor(from: fields)
        let text = rendered
        queue.async { [self] in
            let (admitted, startedWindow) = state.withLockedValue { writer in
                let wasEmpty = writer.aggregator.isEmpty
                let admitted = !aggregated || writer.aggregator.admit(event: event, actor: actor, ts: ts, fields: text)
                return (admitted, wasEmpty && !writer.aggregator.isEmpty)
            }
            if startedWindow {
                queue.asyncAfter(deadline: .now() + options.repeatInterval) { [self] in drainRepeats() }
            }
            if admitted { write(body: "{\"ts\":\(ts),\"event\":\(JSONText.quoted(event))\(text)") }
        }
    }

    /// Queues a line that bypasses aggregation.
    private func append(body: String) {
        queue.async { [self] in write(body: body) }
    }

    /// On the queue: writes summaries of the repeats counted so far.
    private func drainRepeats() {
        let summaries = state.withLockedValue { $0.aggregator.drain() }
        for summary in summaries {
            write(body: "{\"ts\":\(JSONText.quoted(Self.timestamp()))" + summary)
        }
    }

    /// On the queue: seals and appends one line; schedules the checkpoint.
    private func write(body: String) {
        let outcome = state.withLockedValue { writer -> (failures: Int?, scheduleCheckpoint: Bool) in
            // After close() (events racing the shutdown) there is nothing to write to; not a failure.
            guard !writer.isClosed else { return (nil, false) }
            do {
                try writer.append(body: body)
            } catch {
                writer.failures += 1
                return (writer.failures, false)
            }
            guard !writer.checkpointScheduled else { return (nil, false) }
            writer.checkpointScheduled = true
            return (nil, true)
        }
        if let failed = outcome.failures { onWriteFailure?(failed) }
        if outcome.scheduleCheckpoint {
            queue.asyncAfter(deadline: .now() + options.checkpointInterval) { [state] in
                state.withLockedValue { $0.checkpoint() }
            }
        }
    }

    /// Waits until every recorded event is written and synced to disk, and
    /// the checkpoint names the last line. Repeats still being counted are
    /// written when their interval ends (or at ``close()``).
    public func flush() {
        queue.sync {
            state.withLockedValue { $0.checkpoint() }
        }
    }

    /// Opens the configured path again and writes there from now on; the
    /// chain continues (the next line's `prev` is the last line written to
    /// the old file). Returns the path. On failure the old file stays open.
    public func reopen() -> Result<String, AuditError> {
        queue.sync {
            state.withLockedValue { writer in
                do throws(AuditError) {
                    try writer.reopen()
                    return .success(writer.path)
                } catch {
                    writer.failures += 1
                    return .failure(error)
                }
            }
        }
    }

    /// Writes the pending repeat summaries, syncs, and releases the file lock.
    public func close() {
        queue.sync {
            drainRepeats()
            state.withLockedValue { $0.close() }
        }
    }

    /// Write failures so far (exported as a metric).
    public var failures: Int { state.withLockedValue { $0.failures } }

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
        let year = Int(parts.tm_year) + 1900
        // Years 0-9999 (every date a clock gives): the 24 bytes written
        // one by one; anything else as `pad` spells it (wave 15: the string
        // concatenations were ~10,000 instructions per audit line).
        guard (0...9999).contains(year) else {
            return pad(year, 4) + "-" + pad(Int(parts.tm_mon) + 1, 2) + "-" + pad(Int(parts.tm_mday), 2)
                + "T" + pad(Int(parts.tm_hour), 2) + ":" + pad(Int(parts.tm_min), 2) + ":" + pad(Int(parts.tm_sec), 2)
                + "." + pad(millis, 3) + "Z"
        }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(24)
        func put(_ value: Int, _ width: Int, _ separator: UInt8) {
            var divisor = 1
            for _ in 1..<width { divisor *= 10 }
            while divisor > 0 {
                bytes.append(UInt8(ascii: "0") + UInt8(value / divisor % 10))
                divisor /= 10
            }
            bytes.append(separator)
        }
        put(year, 4, UInt8(ascii: "-"))
        put(Int(parts.tm_mon) + 1, 2, UInt8(ascii: "-"))
        put(Int(parts.tm_mday), 2, UInt8(ascii: "T"))
        put(Int(parts.tm_hour), 2, UInt8(ascii: ":"))
        put(Int(parts.tm_min), 2, UInt8(ascii: ":"))
        put(Int(parts.tm_sec), 2, UInt8(ascii: "."))
        put(millis, 3, UInt8(ascii: "Z"))
        return String(decoding: bytes, as: UTF8.self)
    }

    /// `value` in decimal, zero-padded on the left to `width` digits.
    static func pad(_ value: Int, _ width: Int) -> String {
        let digits = String(value)
        return digits.count >= width ? digits : String(repeating: "0", count: width - digits.count) + digits
    }

    /// Appends ``jsonValue(_:)`` of `value` to `out`. Most values are
    /// strings (names, serials, fingerprints, reasons): tried first, one
    /// cast instead of six failed ones before it, and quoted straight into
    /// `out`. No value is both a String and one of the other types, so the
    /// text is the one ``jsonValue(_:)`` gives.
    static func appendJSONValue(_ value: any Sendable, to out: inout String) {
        if let v = value as? String {
            JSONText.appendQuoted(capped(v), to: &out)
        } else {
            out.append(jsonValue(value))
        }
    }

    static func jsonValue(_ value: any Sendable) -> String {
        switch value {
        case let v as Bool: return v ? "true" : "false"
        case let v as Int: return String(v)
        case let v as Int64: return String(v)
        case let v as UInt64: return String(v)
        case let v as UInt32: return String(v)
        case let v as [String]: return "[" + v.map { JSONText.quoted(capped($0)) }.joined(separator: ",") + "]"
        case let v as String: return JSONText.quoted(capped(v))
        default: return JSONText.quoted(String(describing: value))
        }
    }

    /// Cuts a value to ``maxValueBytes`` (on a character boundary) and says so.
    static func capped(_ s: String) -> String {
        guard s.utf8.count > maxValueBytes else { return s }
        var kept = Substring(s).prefix(maxValueBytes / 2)
        while kept.utf8.count > maxValueBytes - 64 { kept = kept.dropLast() }
        return kept + "…[cut, \(s.utf8.count) bytes]"
    }
}

public enum AuditError: Error, CustomStringConvertible, Equatable {
    case cannotOpen(path: String, reason: String)
    case badKey(path: String, reason: String)
    /// Another process holds `<path>.lock`.
    case inUse(path: String, pid: Int32?)
    /// The first line (1-based, in `file`) at which the chain does not hold.
    case broken(file: String, line: Int, reason: String)
    /// The checkpoint names a line the trail no longer has (or a different one).
    case truncated(checkpointSeq: Int, reason: String)
    /// At start: the trail's last line does not verify under the key
    /// (another key, or the line was edited); relayd refuses to continue it.
    case keyDoesNotVerify(keyFile: String, trail: String, reason: String)

    public var description: String {
        switch self {
        case .cannotOpen(let path, let reason): return "audit trail \(path): \(reason)"
        case .badKey(let path, let reason): return "audit key file \(path): \(reason)"
        case .inUse(let path, let pid):
            let holder = pid.map { "process \($0)" } ?? "another process"
            return "audit trail \(path) is in use by \(holder) (it holds \(path).lock); stop that relayd or give this one its own [audit] path"
        case .broken(let file, let line, let reason): return "audit trail broken at \(file) line \(line): \(reason)"
        case .truncated(let seq, let reason):
            return "audit trail truncated: the checkpoint records line seq \(seq), but \(reason); lines were removed from the end"
        case .keyDoesNotVerify(let keyFile, let trail, let reason):
            return "the audit key \(keyFile) does not verify the last line of the audit trail \(trail) (\(reason)); "
                + "relayd will not continue a chain it cannot authenticate: restore the key that wrote the trail "
                + "([audit] key_file), or check the trail with relayctl audit verify and move it aside"
        }
    }
}
