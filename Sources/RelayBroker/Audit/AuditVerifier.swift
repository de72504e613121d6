import Foundation
import RelayTLS

/// Checks an audit trail's hash chain (``AuditTrail``) line by line.
public enum AuditVerifier {
    public struct Report: Equatable, Sendable {
        public var lines: Int
        public var lastHash: String
    }

    /// Verifies the whole file; throws ``AuditError/broken(line:reason:)``
    /// naming the first line that does not hold.
    public static func verify(path: String) throws -> Report {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw AuditError.cannotOpen(path: path, reason: "cannot read the file")
        }
        var lines = data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
        // A trail ends with a newline, which leaves one empty remainder.
        if lines.last?.isEmpty == true { lines.removeLast() }
        var previous = AuditTrail.zeroHash
        for (index, line) in lines.enumerated() {
            guard !line.isEmpty else { throw AuditError.broken(line: index + 1, reason: "empty line") }
            previous = try check(line: String(decoding: line, as: UTF8.self), number: index + 1, previous: previous)
        }
        return Report(lines: lines.count, lastHash: previous)
    }

    /// The `hash` of the last line, or nil for an empty file (used to continue a chain).
    static func lastHash(path: String) throws -> String? {
        guard let data = FileManager.default.contents(atPath: path), !data.isEmpty else { return nil }
        let report = try verify(path: path)
        return report.lines == 0 ? nil : report.lastHash
    }

    /// Checks one line against the previous hash and returns its own hash.
    static func check(line: String, number: Int, previous: String) throws -> String {
        let hashMarker = ",\"hash\":\""
        guard line.hasSuffix("\"}"), let hashRange = line.range(of: hashMarker, options: .backwards) else {
            throw AuditError.broken(line: number, reason: "no hash field; the line was altered or truncated")
        }
        let claimed = String(line[hashRange.upperBound...].dropLast(2))
        let sealed = String(line[..<hashRange.lowerBound]) + "}"
        guard SHA256.hex(Array(sealed.utf8)) == claimed else {
            throw AuditError.broken(line: number, reason: "its content does not match its hash; the line was edited")
        }
        let prevMarker = ",\"prev\":\""
        guard let prevRange = sealed.range(of: prevMarker, options: .backwards) else {
            throw AuditError.broken(line: number, reason: "no prev field")
        }
        let linked = String(sealed[prevRange.upperBound...].dropLast(2))
        guard linked == previous else {
            throw AuditError.broken(line: number, reason: "it does not follow the previous line; a line before it was deleted, inserted or reordered")
        }
        return claimed
    }
}
