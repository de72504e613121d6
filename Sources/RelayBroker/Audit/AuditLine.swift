import Foundation
import RelayTLS

/// One line of the keyed chain:
/// `{"ts":…,"event":…,<fields>,"seq":N,"prev":"<mac of line N-1>","mac":"<hex>"}`.
///
/// `mac` is HMAC-SHA256, under the ``AuditKey``, of the line's text up to and
/// including `"prev":"…"`, then `}`. `seq` counts lines from 1 across rotated
/// files; the first line of the first file has `prev` = 64 zeros. Field values
/// are JSON-escaped, so the markers searched for from the end (`,"mac":"`,
/// `,"prev":"`, `,"seq":`) cannot occur inside a value.
struct AuditLine: Equatable {
    var seq: Int
    var prev: String
    var mac: String
    var event: String
    /// The whole line, without its newline.
    var text: String

    static let zeroMAC = String(repeating: "0", count: 64)

    /// Seals a body (`{"ts":…,"event":…,…` without the closing brace).
    static func seal(body: String, seq: Int, prev: String, key: AuditKey) -> (text: String, mac: String) {
        let covered = body + ",\"seq\":\(seq),\"prev\":\"\(prev)\"}"
        let mac = key.mac(covered.utf8)
        return (String(covered.dropLast()) + ",\"mac\":\"\(mac)\"}", mac)
    }

    /// Parses and authenticates one line; the error says what is wrong with it.
    static func open(_ text: String, key: AuditKey) throws(LineProblem) -> AuditLine {
        let macMarker = ",\"mac\":\""
        guard text.hasSuffix("\"}"), let macRange = text.range(of: macMarker, options: .backwards) else {
            if text.contains(",\"hash\":\"") && !text.contains(macMarker) { throw .legacy }
            throw .malformed("no mac field; the line was altered or truncated")
        }
        let claimed = String(text[macRange.upperBound...].dropLast(2))
        let covered = String(text[..<macRange.lowerBound]) + "}"
        guard key.mac(covered.utf8) == claimed else {
            throw .badMAC
        }
        // From here on the text is authentic (written by a key holder).
        guard let prevRange = covered.range(of: ",\"prev\":\"", options: .backwards),
              let seqRange = covered[..<prevRange.lowerBound].range(of: ",\"seq\":", options: .backwards),
              let seq = Int(covered[seqRange.upperBound..<prevRange.lowerBound]) else {
            throw .malformed("no seq or prev field")
        }
        let prev = String(covered[prevRange.upperBound...].dropLast(2))
        return AuditLine(seq: seq, prev: prev, mac: claimed, event: eventName(text), text: text)
    }

    /// The `event` value (the second field relayd writes), or "" if absent.
    static func eventName(_ text: String) -> String {
        guard let start = text.range(of: ",\"event\":\"") else { return "" }
        let rest = text[start.upperBound...]
        guard let end = rest.firstIndex(of: "\"") else { return "" }
        return String(rest[..<end])
    }

    /// A top-level numeric or string field of an authenticated line (for
    /// recovery records, whose fields relayd wrote itself without escapes).
    func field(_ name: String) -> String? {
        guard let start = text.range(of: ",\"\(name)\":") else { return nil }
        var rest = text[start.upperBound...]
        if rest.first == "\"" {
            rest = rest.dropFirst()
            guard let end = rest.firstIndex(of: "\"") else { return nil }
            return String(rest[..<end])
        }
        guard let end = rest.firstIndex(where: { $0 == "," || $0 == "}" }) else { return nil }
        return String(rest[..<end])
    }

    enum LineProblem: Error, Equatable {
        case malformed(String)
        case badMAC
        /// A line of the unkeyed SHA-256 format relayd wrote before the key.
        case legacy

        var reason: String {
            switch self {
            case .malformed(let why): return why
            case .badMAC: return "its mac does not match its content under this key; the line was edited or written without the key (or this is the wrong key file)"
            case .legacy: return "it is an unkeyed line (\"hash\", written by a relayd before audit.key_file); it cannot be authenticated"
            }
        }
    }
}

/// The sidecar `<trail>.checkpoint`: the seq and mac of the last line known
/// to be on disk, sealed with the key. It lives outside the trail so that
/// cutting lines off the end of the trail leaves the checkpoint ahead of it.
struct AuditCheckpoint: Equatable {
    var seq: Int
    var mac: String

    static func path(for trail: String) -> String { trail + ".checkpoint" }

    func text(key: AuditKey) -> String {
        "{\"seq\":\(seq),\"mac\":\"\(mac)\",\"seal\":\"\(key.mac(Self.covered(seq: seq, mac: mac).utf8))\"}\n"
    }

    private static func covered(seq: Int, mac: String) -> String { "relay-audit-checkpoint\n\(seq)\n\(mac)" }

    enum ReadResult: Equatable {
        case missing
        case invalid(String)
        case valid(AuditCheckpoint)
    }

    /// Reads and authenticates the checkpoint of `trail`.
    static func read(trail: String, key: AuditKey, reader: inout AuditFileReader) -> ReadResult {
        guard let data = reader.readAll(path: path(for: trail), limit: 4096) else { return .missing }
        let text = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard let object = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any],
              let seq = object["seq"] as? Int, let mac = object["mac"] as? String, let seal = object["seal"] as? String else {
            return .invalid("it is not a checkpoint written by relayd")
        }
        guard key.mac(covered(seq: seq, mac: mac).utf8) == seal else {
            return .invalid("its seal does not match under this key; it was edited or written without the key")
        }
        return .valid(AuditCheckpoint(seq: seq, mac: mac))
    }

    /// Writes it atomically (a temporary file renamed over the old one).
    func write(trail: String, key: AuditKey) throws {
        let target = Self.path(for: trail)
        let temporary = target + ".tmp"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw AuditError.cannotOpen(path: temporary, reason: String(cString: strerror(errno))) }
        let handle = FileHandle(fileDescriptor: fd, closeOnDealloc: true)
        // Whatever fails (ENOSPC in the write, EIO in the sync, the rename),
        // the temporary file goes: the old checkpoint stays in force.
        var renamed = false
        defer { if !renamed { unlink(temporary) } }
        try handle.write(contentsOf: Data(text(key: key).utf8))
        try handle.synchronize()
        guard rename(temporary, target) == 0 else {
            throw AuditError.cannotOpen(path: target, reason: "rename failed: \(String(cString: strerror(errno)))")
        }
        renamed = true
    }
}

/// Reads files and counts the bytes it read, so a test can prove relayd's
/// start reads a bounded amount of the trail however large it is.
struct AuditFileReader {
    private(set) var bytesRead = 0

    /// The whole file, or nil if it cannot be read or exceeds `limit` bytes.
    mutating func readAll(path: String, limit: Int) -> Data? {
        guard let handle = FileHandle(forReadingAtPath: path) else { return nil }
        defer { try? handle.close() }
        guard let data = try? handle.read(upToCount: limit + 1), data.count <= limit else { return nil }
        bytesRead += data.count
        return data
    }

    /// The last `count` bytes (fewer if the file is shorter) and the file size.
    mutating func tail(path: String, count: Int) throws(AuditError) -> (bytes: Data, size: UInt64) {
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw AuditError.cannotOpen(path: path, reason: "cannot read it; check its permissions")
        }
        defer { try? handle.close() }
        do {
            let size = try handle.seekToEnd()
            let start = size > UInt64(count) ? size - UInt64(count) : 0
            try handle.seek(toOffset: start)
            let data = try handle.read(upToCount: Int(size - start)) ?? Data()
            bytesRead += data.count
            return (data, size)
        } catch {
            throw AuditError.cannotOpen(path: path, reason: "cannot read its end: \(error)")
        }
    }
}
