import Foundation
import RelayTLS

/// Checks a keyed audit trail (``AuditTrail``): every file in chain order,
/// every line's mac under the key, `seq` and `prev` links across files, and
/// the sealed checkpoint against the end of the trail.
public enum AuditVerifier {
    public struct Report: Equatable, Sendable {
        /// Chain lines verified (torn fragments are not counted).
        public var lines: Int
        public var firstSeq: Int
        public var lastSeq: Int
        public var lastMAC: String
        public var files: [String]
        /// Things that are not a break but an operator should know (a torn
        /// line relayd recovered from, a trail that starts after seq 1).
        public var notices: [String]
        /// Losses relayd itself recorded in the chain (`trail_truncated`,
        /// `checkpoint_invalid`): the chain holds, but lines were lost before them.
        public var recordedLosses: [String]
    }

    /// Verifies the trail at `path` (with its rotated files); throws
    /// ``AuditError/broken(file:line:reason:)`` naming the first line that
    /// does not hold, or ``AuditError/truncated(checkpointSeq:reason:)``.
    /// A missing checkpoint is an error unless `requireCheckpoint` is false.
    public static func verify(path: String, key: AuditKey, requireCheckpoint: Bool = true) throws -> Report {
        let files = AuditFiles.chainOrder(path)
        guard !files.isEmpty else { throw AuditError.cannotOpen(path: path, reason: "no such trail (and no rotated files)") }
        var reader = AuditFileReader()
        let checkpoint = AuditCheckpoint.read(trail: path, key: key, reader: &reader)
        var walk = ChainWalk(key: key)
        if case .valid(let point) = checkpoint { walk.watchSeq = point.seq }
        for (index, file) in files.enumerated() {
            guard let data = try? Data(contentsOf: URL(fileURLWithPath: file), options: .alwaysMapped) else {
                throw AuditError.cannotOpen(path: file, reason: "cannot read the file")
            }
            try walk.check(file: file, data: data, isLast: index == files.count - 1)
        }
        var report = Report(lines: walk.lines, firstSeq: walk.firstSeq ?? 0, lastSeq: walk.seq, lastMAC: walk.prev,
                            files: files, notices: walk.notices, recordedLosses: walk.losses)
        if let first = walk.firstSeq, first > 1 {
            report.notices.insert("the chain starts at seq \(first): the files before it were removed or archived; their content is not checked", at: 0)
        }
        switch checkpoint {
        case .missing:
            if requireCheckpoint && walk.lines > 0 {
                throw AuditError.truncated(checkpointSeq: 0, reason: "\(AuditCheckpoint.path(for: path)) is missing, so a cut end cannot be ruled out (pass --no-checkpoint to accept that)")
            }
            report.notices.append("no checkpoint: lines cut from the end would not be detected")
        case .invalid(let why):
            throw AuditError.truncated(checkpointSeq: 0, reason: "\(AuditCheckpoint.path(for: path)) is invalid: \(why)")
        case .valid(let point):
            if point.seq > walk.seq {
                throw AuditError.truncated(checkpointSeq: point.seq, reason: "the trail ends at seq \(walk.seq)")
            }
            if let seen = walk.watchedMAC, seen != point.mac {
                throw AuditError.truncated(checkpointSeq: point.seq, reason: "the line with that seq has a different mac (the end was cut and rewritten)")
            }
            if walk.watchedMAC == nil {
                report.notices.append("the checkpoint (seq \(point.seq)) is before the oldest file kept; it could not be compared")
            }
        }
        return report
    }
}

/// The state of one pass over the chain.
private struct ChainWalk {
    let key: AuditKey
    var seq = 0
    var prev = AuditLine.zeroMAC
    var firstSeq: Int?
    var lines = 0
    var notices: [String] = []
    var losses: [String] = []
    var watchSeq: Int?
    var watchedMAC: String?

    init(key: AuditKey) { self.key = key }

    mutating func check(file: String, data: Data, isLast: Bool) throws {
        var segments = data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
        // The remainder after the final newline: empty, or an unterminated fragment.
        let fragment = segments.removeLast()
        var pendingTorn: (line: Int, bytes: Data)?
        for (offset, segment) in segments.enumerated() {
            let number = offset + 1
            let text = String(decoding: segment, as: UTF8.self)
            let line: AuditLine
            do {
                guard !segment.isEmpty else { throw AuditLine.LineProblem.malformed("empty line") }
                line = try AuditLine.open(text, key: key)
            } catch {
                // A fragment may stand only if the next line is relayd's recovery record for it.
                guard pendingTorn == nil else {
                    throw AuditError.broken(file: file, line: number - 1, reason: "a line was cut short and no trail_recovered record follows it")
                }
                pendingTorn = (number, Data(segment))
                continue
            }
            if let torn = pendingTorn {
                try acceptRecovery(line, torn: torn.bytes, file: file, number: number)
                notices.append("\(file) line \(torn.line): a line cut short (\(torn.bytes.count) bytes) and recovered at seq \(line.seq) (relayd was killed or the disk filled mid-write)")
                pendingTorn = nil
            }
            try link(line, file: file, number: number)
        }
        if let torn = pendingTorn {
            throw AuditError.broken(file: file, line: torn.line, reason: "the line does not verify: \(problem(String(decoding: torn.bytes, as: UTF8.self)))")
        }
        if !fragment.isEmpty {
            guard isLast else {
                throw AuditError.broken(file: file, line: segments.count + 1, reason: "a rotated file ends in an unterminated line")
            }
            notices.append("\(file) ends with an unterminated line (\(fragment.count) bytes) outside the chain; relayd records its recovery when it next starts")
        }
    }

    /// Why a line does not open (for the error message).
    private func problem(_ text: String) -> String {
        do { _ = try AuditLine.open(text, key: key); return "unknown" } catch { return error.reason }
    }

    private mutating func link(_ line: AuditLine, file: String, number: Int) throws {
        if firstSeq == nil {
            firstSeq = line.seq
            if line.seq == 1 && line.prev != AuditLine.zeroMAC {
                throw AuditError.broken(file: file, line: number, reason: "the first line of the chain must link to zeros")
            }
        } else {
            guard line.seq == seq + 1 else {
                throw AuditError.broken(file: file, line: number, reason: "seq \(line.seq) follows seq \(seq); lines were deleted, inserted or reordered")
            }
            guard line.prev == prev else {
                throw AuditError.broken(file: file, line: number, reason: "it does not follow the previous line; a line before it was deleted, inserted or reordered")
            }
        }
        if line.event == "trail_truncated" || line.event == "checkpoint_invalid" {
            losses.append("\(file) line \(number) (seq \(line.seq)): relayd recorded \(line.event) at start: \(line.field("reason") ?? "")")
        }
        if line.seq == watchSeq { watchedMAC = line.mac }
        seq = line.seq
        prev = line.mac
        lines += 1
    }

    /// The line after a fragment must be a recovery record naming exactly it.
    private func acceptRecovery(_ line: AuditLine, torn: Data, file: String, number: Int) throws {
        guard line.event == "trail_recovered", line.field("torn_bytes") == String(torn.count),
              line.field("torn_sha256") == SHA256.hex(torn) else {
            throw AuditError.broken(file: file, line: number - 1, reason: "the line does not verify and the next line is not relayd's trail_recovered record for it")
        }
    }
}
