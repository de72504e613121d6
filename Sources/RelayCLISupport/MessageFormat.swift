import ArgumentParser
import Foundation
import RelayClient
import RelayCore

/// How `relay-sub` prints messages.
public enum MessageFormat: String, ExpressibleByArgument, CaseIterable, Sendable {
    /// One readable line: time, topic, sequence, publisher, payload.
    case pretty
    /// One JSON object per line (schema in README.md, "relay-sub JSON output").
    case json
    /// The payload bytes, then a newline.
    case raw

    /// The bytes to write for `message`.
    public func render(_ message: ReceivedMessage) -> [UInt8] {
        switch self {
        case .pretty: return Array((Self.pretty(message) + "\n").utf8)
        case .json: return Array((Self.json(message) + "\n").utf8)
        case .raw: return message.bytes + [UInt8(ascii: "\n")]
        }
    }

    /// `2024-05-01T12:00:00.123456789Z  orders.eu  #42  alice  hello`
    ///
    /// For a terminal: the publisher's principal, the headers and a text
    /// payload pass through ``DisplayText/escaped(_:)``, so a bidi override
    /// or a C1/ESC control sequence in them is shown as `\u{202E}` instead of
    /// acting on the terminal. A principal with non-ASCII characters is
    /// followed by the start of its certificate's fingerprint.
    public static func pretty(_ m: ReceivedMessage) -> String {
        var line = "\(RFC3339.format(nanoseconds: m.timestamp))  \(DisplayText.escaped(m.topic))  #\(m.sequence)"
            + "  from \(DisplayText.escaped(m.publisherPrincipal))"
        // A name with non-ASCII letters may be a look-alike of another
        // (Cyrillic "а" for Latin "a"): the certificate tells them apart.
        if !m.publisherPrincipal.unicodeScalars.allSatisfy(\.isASCII) {
            line += " (non-ASCII name; certificate sha256:\(m.publisherFingerprint.prefix(16))…)"
        }
        if m.replayed { line += " (replayed)" }
        if !m.headers.isEmpty {
            line += "  [" + m.headers.map { DisplayText.escaped("\($0.key)=\($0.value)") }.joined(separator: " ") + "]"
        }
        if let text = m.text {
            line += "  " + DisplayText.escaped(text.replacingOccurrences(of: "\n", with: "\\n"))
        } else {
            let bytes = m.bytes
            let preview = Hex.encode(bytes.prefix(32))
            line += "  <binary, \(bytes.count) bytes: \(preview)\(bytes.count > 32 ? "…" : "")>"
        }
        return line
    }

    /// One JSON object, keys in a fixed order (see README.md).
    public static func json(_ m: ReceivedMessage) -> String {
        let quote = JSONText.quoted
        let text = m.text
        let payload = text ?? Data(m.bytes).base64EncodedString()
        let headers = m.headers.map { "{\"key\":\(quote($0.key)),\"value\":\(quote($0.value))}" }.joined(separator: ",")
        return "{\"topic\":\(quote(m.topic)),\"sequence\":\(m.sequence),"
            + "\"timestamp\":\(quote(RFC3339.format(nanoseconds: m.timestamp))),\"timestamp_ns\":\(m.timestamp),"
            + "\"publisher\":{\"principal\":\(quote(m.publisherPrincipal)),\"fingerprint\":\(quote(m.publisherFingerprint))},"
            + "\"headers\":[\(headers)],\"payload_encoding\":\(quote(text == nil ? "base64" : "utf8")),"
            + "\"payload\":\(quote(payload)),\"replayed\":\(m.replayed)}"
    }
}

/// RFC 3339 timestamps in UTC with nanoseconds.
public enum RFC3339 {
    public static func format(nanoseconds: UInt64) -> String {
        var seconds = time_t(nanoseconds / 1_000_000_000)
        let fraction = nanoseconds % 1_000_000_000
        var parts = tm()
        gmtime_r(&seconds, &parts)
        return String(format: "%04d-%02d-%02dT%02d:%02d:%02d.%09lluZ", Int(parts.tm_year) + 1900, Int(parts.tm_mon) + 1,
                      Int(parts.tm_mday), Int(parts.tm_hour), Int(parts.tm_min), Int(parts.tm_sec), fraction)
    }

    /// A date, to the second.
    public static func format(date: Date) -> String {
        let seconds = max(0, date.timeIntervalSince1970)
        return format(nanoseconds: UInt64(seconds) * 1_000_000_000)
    }

    /// Parses `2024-05-01T12:00:00Z`, with optional fractional seconds and a
    /// `Z` or `±HH:MM` offset; nanoseconds since the epoch.
    public static func parse(_ text: String) -> UInt64? {
        let withFraction = ISO8601DateFormatter()
        withFraction.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        let plain = ISO8601DateFormatter()
        plain.formatOptions = [.withInternetDateTime]
        guard let date = withFraction.date(from: text) ?? plain.date(from: text) else { return nil }
        let seconds = date.timeIntervalSince1970
        guard seconds >= 0 else { return nil }
        return UInt64((seconds * 1_000_000).rounded()) * 1000
    }
}

/// Parses `--from`: `earliest`, `latest`, `seq:N`, `time:RFC3339`, `last:N`.
public func parseStartPosition(_ text: String) throws(RelayClientError) -> StartPosition {
    let usage = "--from must be earliest, latest, seq:N, time:RFC3339 (e.g. time:2024-05-01T12:00:00Z) or last:N; got \"\(text)\""
    switch text {
    case "earliest": return .earliest
    case "latest", "new": return .latest
    default: break
    }
    guard let colon = text.firstIndex(of: ":") else { throw RelayClientError(category: .usage, message: usage) }
    let kind = text[..<colon], value = String(text[text.index(after: colon)...])
    switch kind {
    case "seq", "sequence":
        guard let n = UInt64(value), n >= 1 else { throw RelayClientError(category: .usage, message: usage) }
        return .sequence(n)
    case "last":
        guard let n = UInt64(value), n >= 1 else { throw RelayClientError(category: .usage, message: usage) }
        return .last(n)
    case "time":
        guard let ns = RFC3339.parse(value) else { throw RelayClientError(category: .usage, message: usage) }
        return .time(ns)
    default:
        throw RelayClientError(category: .usage, message: usage)
    }
}
