import Foundation
import Logging
import RelayCore

/// A swift-log handler that writes one line per event to stderr, as logfmt
/// (`ts=… level=info msg="…" key=value`) or JSON, as `[log] format` says.
public struct StructuredLogHandler: LogHandler {
    public enum Format: Sendable { case logfmt, json }
    public enum Stream: Sendable { case stdout, stderr }

    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level
    private let label: String
    private let format: Format
    private let stream: Stream

    public init(label: String, format: Format, level: Logger.Level, stream: Stream = .stderr) {
        self.label = label
        self.format = format
        self.logLevel = level
        self.stream = stream
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var merged = self.metadata
        if let extra = event.metadata { merged.merge(extra) { $1 } }
        let ts = LogTimestamp.format(Date())
        var line: String
        switch format {
        case .logfmt:
            line = "ts=\(ts) level=\(event.level) logger=\(label) msg=\(Self.logfmtValue("\(event.message)"))"
            for (key, value) in merged.sorted(by: { $0.key < $1.key }) {
                line += " \(key)=\(Self.logfmtValue("\(value)"))"
            }
        case .json:
            line = "{\"ts\":\"\(ts)\",\"level\":\"\(event.level)\",\"logger\":\(JSONText.quoted(label)),\"msg\":\(JSONText.quoted("\(event.message)"))"
            for (key, value) in merged.sorted(by: { $0.key < $1.key }) {
                line += ",\(JSONText.quoted(key)):\(JSONText.quoted("\(value)"))"
            }
            line += "}"
        }
        // One write(2) per line, unbuffered: lines of several threads never
        // interleave. The throwing write: when the reader has gone (EPIPE: a
        // log shipper restarted, `relayd | head`), the line is lost, not the
        // broker (the non-throwing `write(_:)` traps on the error).
        let handle = stream == .stdout ? FileHandle.standardOutput : FileHandle.standardError
        try? handle.write(contentsOf: Data((line + "\n").utf8))
    }

    /// Quotes a logfmt value when it holds spaces, quotes, `=`, or a control,
    /// bidi or other format character (``DisplayText/isUnsafe(_:)``): quoting
    /// escapes those, so a certificate name can neither forge a log line nor
    /// reorder how one displays.
    static func logfmtValue(_ value: String) -> String {
        let needsQuotes = value.isEmpty
            || value.unicodeScalars.contains { $0 == " " || $0 == "\"" || $0 == "=" || DisplayText.isUnsafe($0) }
        return needsQuotes ? JSONText.quoted(value) : value
    }
}
