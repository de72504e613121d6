import Foundation
import RelayCore
import RelayTLS

/// The trail's file state, owned by ``AuditTrail``'s queue (behind its lock).
struct AuditWriter {
    let path: String
    let key: AuditKey
    let maxFileSize: Int64
    var handle: FileHandle?
    var lock: FileHandle?
    var size: Int64
    var seq: Int
    var prev: String
    var nextRotation: Int
    var aggregator: AuditAggregator
    var failures = 0
    var checkpointScheduled = false
    var checkpointedSeq: Int
    /// Set by close(); a nil handle without it is a failed rotation (writes count as failures).
    var isClosed = false

    /// Seals and appends one line, rotating first if it would not fit.
    mutating func append(body: String) throws {
        guard let current = handle else { throw AuditError.cannotOpen(path: path, reason: "the trail is closed") }
        let line = AuditLine.seal(body: body, seq: seq + 1, prev: prev, key: key)
        let data = Data((line.text + "\n").utf8)
        var target = current
        if maxFileSize > 0, size > 0, size + Int64(data.count) > maxFileSize {
            target = try rotate(current)
        }
        do {
            try target.write(contentsOf: data)
        } catch {
            // Undo a partial write so the next line does not follow a fragment.
            try? target.truncate(atOffset: UInt64(size))
            throw error
        }
        size += Int64(data.count)
        seq += 1
        // Chain to a line only once it is written: a lost line must not leave
        // the next one pointing at a mac nobody can find.
        prev = line.mac
    }

    /// Renames the live file to the next `<path>.NNNNNN` and starts a new
    /// one; the next line's `prev` links it to the last line of the old file.
    private mutating func rotate(_ current: FileHandle) throws -> FileHandle {
        try current.synchronize()
        try current.close()
        handle = nil
        let rotated = AuditFiles.rotatedName(path, index: nextRotation)
        guard Foundation.rename(path, rotated) == 0 else {
            throw AuditError.cannotOpen(path: path, reason: "cannot rotate it to \(rotated): \(String(cString: strerror(errno)))")
        }
        nextRotation += 1
        let (fresh, freshSize) = try AuditFiles.openForAppend(path)
        handle = fresh
        size = Int64(freshSize)
        return fresh
    }

    /// Syncs the trail, then seals its last line into the checkpoint (in
    /// that order, so the checkpoint never names a line not yet on disk).
    mutating func checkpoint() {
        checkpointScheduled = false
        guard let handle else { return }
        do {
            try handle.synchronize()
            guard seq != checkpointedSeq else { return }
            try AuditCheckpoint(seq: seq, mac: prev).write(trail: path, key: key)
            checkpointedSeq = seq
        } catch {
            failures += 1
        }
    }

    /// Syncs and closes the live file and opens `path` again (a new file if
    /// the old one was renamed). The new file is opened before the old one is
    /// closed, so a failure leaves the old one in use. Rotation numbering is
    /// recomputed: the operator may have renamed the trail to `<path>.NNNNNN`.
    mutating func reopen() throws(AuditError) {
        guard !isClosed else { throw AuditError.cannotOpen(path: path, reason: "the trail is closed") }
        let (fresh, freshSize) = try AuditFiles.openForAppend(path)
        if let old = handle {
            try? old.synchronize()
            try? old.close()
        }
        handle = fresh
        size = Int64(freshSize)
        nextRotation = max(nextRotation, (AuditFiles.rotated(path).last?.index ?? 0) + 1)
    }

    mutating func close() {
        isClosed = true
        checkpoint()
        try? handle?.close()
        handle = nil
        try? lock?.close()
        lock = nil
    }

    // MARK: opening

    /// Opens the trail for appending and returns the bodies of any integrity
    /// findings (torn tail, checkpoint ahead of the trail) to write first.
    /// Reads only the lock, the key, the checkpoint and the end of the newest file.
    static func open(path: String, options: AuditTrail.Options,
                     reader: inout AuditFileReader) throws -> (writer: AuditWriter, findings: [String]) {
        let lock = try AuditFiles.lock(path)
        let rotated = AuditFiles.rotated(path)
        // attributesOfItem does not follow links: a trail reached through a
        // symlink would report the link's own size and look non-empty.
        let target = (path as NSString).resolvingSymlinksInPath
        let liveSize = (try? FileManager.default.attributesOfItem(atPath: target)[.size] as? Int) ?? 0
        let exists = liveSize > 0 || !rotated.isEmpty
        let key = try AuditKey.loadOrCreate(path: options.keyFile, mayCreate: !exists)

        var head = (seq: 0, mac: AuditLine.zeroMAC)
        var findings: [String] = []
        var tornTail = false
        let ts = JSONText.quoted(AuditTrail.timestamp())
        // The live file's end, else (crash right after a rotation) the newest rotated file's.
        if let newest = rotated.last, liveSize == 0 {
            let end = try lastLine(of: newest.path, key: key, keyFile: options.keyFile, reader: &reader)
            if let line = end.line { head = (line.seq, line.mac) }
        }
        if liveSize > 0 {
            let end = try lastLine(of: path, key: key, keyFile: options.keyFile, reader: &reader)
            if let line = end.line {
                head = (line.seq, line.mac)
            } else if let newest = rotated.last {
                let before = try lastLine(of: newest.path, key: key, keyFile: options.keyFile, reader: &reader)
                if let line = before.line { head = (line.seq, line.mac) }
            }
            if let torn = end.torn {
                tornTail = true
                findings.append("{\"ts\":\(ts),\"event\":\"trail_recovered\",\"torn_bytes\":\(torn.count)"
                                + ",\"torn_sha256\":\"\(SHA256.hex(torn))\",\"after_seq\":\(head.seq)"
                                + ",\"reason\":\"the last line was cut short (relayd was killed or the disk filled mid-write); it is kept above, outside the chain\"")
            }
        }
        findings += checkpointFindings(path: path, key: key, head: head, hasLines: head.seq > 0, ts: ts, reader: &reader)

        let (handle, size) = try AuditFiles.openForAppend(path)
        if tornTail {
            // End the fragment so the recovery record starts on its own line.
            try handle.write(contentsOf: Data("\n".utf8))
        }
        let writer = AuditWriter(path: path, key: key, maxFileSize: options.maxFileSize, handle: handle, lock: lock,
                                 size: Int64(size) + (tornTail ? 1 : 0),
                                 seq: head.seq, prev: head.mac, nextRotation: (rotated.last?.index ?? 0) + 1,
                                 aggregator: AuditAggregator(maxGroups: options.maxGroups), checkpointedSeq: -1)
        return (writer, findings)
    }

    /// Compares the sealed checkpoint with the end of the trail.
    private static func checkpointFindings(path: String, key: AuditKey, head: (seq: Int, mac: String), hasLines: Bool,
                                           ts: String, reader: inout AuditFileReader) -> [String] {
        switch AuditCheckpoint.read(trail: path, key: key, reader: &reader) {
        case .missing:
            guard hasLines else { return [] }
            return ["{\"ts\":\(ts),\"event\":\"checkpoint_missing\",\"after_seq\":\(head.seq)"
                    + ",\"reason\":\"the trail has lines but no checkpoint; a truncation before this point cannot be ruled out\""]
        case .invalid(let why):
            return ["{\"ts\":\(ts),\"event\":\"checkpoint_invalid\",\"after_seq\":\(head.seq),\"reason\":\(JSONText.quoted(why))"]
        case .valid(let checkpoint):
            if checkpoint.seq > head.seq || (checkpoint.seq == head.seq && checkpoint.mac != head.mac) {
                return ["{\"ts\":\(ts),\"event\":\"trail_truncated\",\"checkpoint_seq\":\(checkpoint.seq)"
                        + ",\"checkpoint_mac\":\"\(checkpoint.mac)\",\"after_seq\":\(head.seq)"
                        + ",\"reason\":\"the checkpoint names a line the trail no longer has; lines were removed from its end\""]
            }
            return []
        }
    }

    /// The last complete line of `file`, authenticated, and any unterminated
    /// fragment after it. Reads at most ``AuditTrail/tailWindow`` bytes.
    static func lastLine(of file: String, key: AuditKey, keyFile: String,
                         reader: inout AuditFileReader) throws(AuditError) -> (line: AuditLine?, torn: Data?) {
        let (bytes, size) = try reader.tail(path: file, count: AuditTrail.tailWindow)
        let newline = UInt8(ascii: "\n")
        let coversStart = UInt64(bytes.count) == size
        guard let lastNewline = bytes.lastIndex(of: newline) else {
            guard coversStart else {
                throw AuditError.broken(file: file, line: 0, reason: "no line ends in its last \(AuditTrail.tailWindow) bytes; run relayctl audit verify")
            }
            return (nil, bytes.isEmpty ? nil : bytes)
        }
        let torn = lastNewline == bytes.index(before: bytes.endIndex) ? nil : bytes[(lastNewline + 1)...]
        let body = bytes[..<lastNewline]
        let start: Data.Index
        if let previous = body.lastIndex(of: newline) {
            start = previous + 1
        } else {
            guard coversStart else {
                throw AuditError.broken(file: file, line: 0, reason: "its last line is longer than \(AuditTrail.tailWindow) bytes; run relayctl audit verify")
            }
            start = body.startIndex
        }
        let text = String(decoding: body[start...], as: UTF8.self)
        do {
            return (try AuditLine.open(text, key: key), torn.map { Data($0) })
        } catch {
            throw AuditError.keyDoesNotVerify(keyFile: keyFile, trail: file, reason: error.reason)
        }
    }
}
