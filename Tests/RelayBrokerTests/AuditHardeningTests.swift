import Foundation
import RelayTestSupport
import RelayTLS
import Testing
@testable import RelayBroker

/// Issue 14 item 6 on the trail itself: flooding, rewriting, truncating,
/// rotating, a second writer, and a start that reads only the end.
@Suite("Audit hardening")
struct AuditHardeningTests {
    struct Trail {
        let dir: TemporaryDirectory
        var path: String { dir.file("audit.jsonl") }
        var keyPath: String { dir.file("audit.key") }
        var options: AuditTrail.Options { AuditTrail.Options(keyFile: keyPath) }

        init() throws { dir = try TemporaryDirectory(prefix: "audit") }

        func open(_ tune: (inout AuditTrail.Options) -> Void = { _ in }) throws -> AuditTrail {
            var options = self.options
            tune(&options)
            return try AuditTrail(path: path, options: options)
        }

        func key() throws -> AuditKey { try AuditKey.load(path: keyPath) }
        func verify(requireCheckpoint: Bool = true) throws -> AuditVerifier.Report {
            try AuditVerifier.verify(path: path, key: try key(), requireCheckpoint: requireCheckpoint)
        }

        func lines(_ file: String? = nil) throws -> [String] {
            try String(contentsOfFile: file ?? path, encoding: .utf8).split(separator: "\n").map(String.init)
        }

        func objects(_ file: String? = nil) throws -> [[String: Any]] {
            try lines(file).map { try #require(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]) }
        }

        func write(_ lines: [String]) throws {
            try (lines.joined(separator: "\n") + "\n").write(toFile: path, atomically: true, encoding: .utf8)
        }
    }

    /// Events of `kind` the trail accounts for: lines written in full plus the
    /// `suppressed` counts of its `event_repeated` summaries.
    static func total(_ objects: [[String: Any]], _ kind: String) -> Int {
        objects.filter { $0["event"] as? String == kind }.count
            + objects.filter { $0["event"] as? String == "event_repeated" && $0["repeated_event"] as? String == kind }
                .reduce(0) { $0 + ($1["suppressed"] as? Int ?? -1_000_000) }
    }

    // MARK: flooding

    @Test("a flood of repeated refusals writes a bounded number of lines whose counts add up, every decision type present")
    func flood() throws {
        let t = try Trail(); defer { t.dir.remove() }
        let trail = try t.open { $0.repeatInterval = 3_600 }
        trail.record("connection_accepted", ["principal": "CN=mallory", "serial": "0A", "fingerprint": "ff01"])
        for i in 0..<5_000 {
            trail.record("publish_denied", ["principal": "CN=mallory", "serial": "0A", "topic": "t.\(i)", "rule": "(none)"])
        }
        for i in 0..<2_000 {
            trail.record("subscribe_denied", ["principal": "CN=mallory", "serial": "0A", "filter": "f.\(i)", "rule": "(none)"])
        }
        for i in 0..<3_000 {  // pre-authentication: one source, a new port each time
            trail.record("connection_refused", ["peer": "[IPv4]10.0.0.9/10.0.0.9:\(20_000 + i)", "cause": "unexpected_eof"])
        }
        trail.record("connection_refused", ["peer": "[IPv4]10.0.0.7/10.0.0.7:4000", "cause": "handshake_failed"])
        // A new reason from the flooding source is its own group: written in full mid-flood.
        trail.record("connection_refused", ["peer": "[IPv4]10.0.0.9/10.0.0.9:30000", "cause": "certificate_rejected_23"])
        trail.close()
        let objects = try t.objects()
        #expect(objects.count <= 10, "\(objects.count) lines for 10,003 events")
        #expect(Self.total(objects, "connection_accepted") == 1)
        #expect(Self.total(objects, "publish_denied") == 5_000)
        #expect(Self.total(objects, "subscribe_denied") == 2_000)
        #expect(Self.total(objects, "connection_refused") == 3_002)
        #expect(objects.contains { $0["event"] as? String == "connection_refused" && $0["cause"] as? String == "certificate_rejected_23" })
        // The other source is its own group: written in full, not folded into the flood.
        #expect(objects.contains { $0["event"] as? String == "connection_refused" && ($0["peer"] as? String)?.contains("10.0.0.7") == true })
        let summary = try #require(objects.first { $0["repeated_event"] as? String == "publish_denied" })
        #expect(summary["actor"] as? String == "serial 0A")
        #expect((summary["last"] as? [String: Any])?["topic"] as? String == "t.4999")
        #expect(try t.verify().lines == objects.count)
    }

    @Test("many distinct actors overflow into one group per event, still bounded and counted")
    func floodManyActors() throws {
        let t = try Trail(); defer { t.dir.remove() }
        let trail = try t.open { $0.repeatInterval = 3_600; $0.maxGroups = 16 }
        for i in 0..<4_000 {
            trail.record("connection_refused", ["peer": "[IPv4]10.1.\(i / 250).\(i % 250)/x:443", "cause": "unexpected_eof"])
        }
        trail.close()
        let objects = try t.objects()
        #expect(objects.count <= 2 * (16 + 1), "\(objects.count) lines")
        #expect(Self.total(objects, "connection_refused") == 4_000)
        #expect(objects.contains { $0["event"] as? String == "event_repeated" && $0["actor"] as? String == "*" })
    }

    @Test("a summary line is written when the interval ends, without closing the trail")
    func summaryOnInterval() async throws {
        let t = try Trail(); defer { t.dir.remove() }
        let trail = try t.open { $0.repeatInterval = 0.2 }
        defer { trail.close() }
        for _ in 0..<50 { trail.record("publish_denied", ["serial": "0B", "topic": "x"]) }
        // The interval timer is the event waited for: poll the file (deadline 10 s).
        // The summary is written by the aggregator's timer into the file: polled.
        var objects: [[String: Any]] = []
        _ = try await eventually(every: 0.05) {
            trail.flush()
            objects = try t.objects()
            return objects.contains(where: { $0["event"] as? String == "event_repeated" })
        }
        #expect(Self.total(objects, "publish_denied") == 50)
        #expect(objects.count == 2)
    }

    // MARK: rewriting and truncation

    @Test("a rewrite with recomputed SHA-256 hashes (or another key) is detected at the first rewritten line")
    func recomputed() throws {
        let t = try Trail(); defer { t.dir.remove() }
        let trail = try t.open()
        for i in 0..<3 { trail.record("connection_refused", ["serial": "0\(i)"]) }
        trail.close()
        // What an attacker without the key can do: rebuild every line with SHA-256 as the "mac".
        var prev = AuditLine.zeroMAC
        var forged: [String] = []
        for (index, line) in try t.lines().enumerated() {
            let body = String(line[..<(try #require(line.range(of: ",\"seq\":"))).lowerBound]).replacingOccurrences(of: "connection_refused", with: "connection_accepted")
            let covered = body + ",\"seq\":\(index + 1),\"prev\":\"\(prev)\"}"
            let hash = SHA256.hex(Array(covered.utf8))
            forged.append(String(covered.dropLast()) + ",\"mac\":\"\(hash)\"}")
            prev = hash
        }
        try t.write(forged)
        var brokenAt: Int?
        do { _ = try t.verify() } catch AuditError.broken(_, let line, _) { brokenAt = line }
        #expect(brokenAt == 1)
        // Sealed with another key: the same.
        let other = try AuditKey(bytes: Array(repeating: 9, count: 32))
        prev = AuditLine.zeroMAC
        forged = []
        for index in 1...3 {
            let sealed = AuditLine.seal(body: "{\"ts\":\"x\",\"event\":\"connection_accepted\"", seq: index, prev: prev, key: other)
            forged.append(sealed.text)
            prev = sealed.mac
        }
        try t.write(forged)
        brokenAt = nil
        do { _ = try t.verify() } catch AuditError.broken(_, let line, _) { brokenAt = line }
        #expect(brokenAt == 1)
    }

    @Test("lines cut from the end are detected by the checkpoint, and recorded when relayd next starts")
    func truncatedTail() throws {
        let t = try Trail(); defer { t.dir.remove() }
        let trail = try t.open()
        for i in 0..<5 { trail.record("connection_refused", ["serial": "0\(i)"]) }
        trail.close()
        try t.write(Array(try t.lines().prefix(3)))
        #expect(throws: AuditError.truncated(checkpointSeq: 5, reason: "the trail ends at seq 3")) { _ = try t.verify() }

        // Removing the checkpoint as well is not a way out.
        try FileManager.default.removeItem(atPath: AuditCheckpoint.path(for: t.path))
        #expect(throws: AuditError.self) { _ = try t.verify() }
    }

    @Test("a restart after a cut end records trail_truncated, and verify reports the loss")
    func truncatedThenRestart() throws {
        let t = try Trail(); defer { t.dir.remove() }
        let trail = try t.open()
        for i in 0..<5 { trail.record("connection_refused", ["serial": "0\(i)"]) }
        trail.close()
        try t.write(Array(try t.lines().prefix(3)))
        let again = try t.open()
        again.record("broker_started")
        again.close()
        let objects = try t.objects()
        let recorded = try #require(objects.first { $0["event"] as? String == "trail_truncated" })
        #expect(recorded["checkpoint_seq"] as? Int == 5)
        #expect(recorded["after_seq"] as? Int == 3)
        let report = try t.verify()
        #expect(report.recordedLosses.count == 1)
    }

    // MARK: rotation

    @Test("rotation by size keeps one chain across files; a tampered or missing rotated file is detected")
    func rotation() throws {
        let t = try Trail(); defer { t.dir.remove() }
        let trail = try t.open { $0.maxFileSize = 2_048 }
        for i in 0..<60 { trail.record("connection_accepted", ["serial": "\(i)", "principal": "CN=p\(i)"]) }
        trail.close()
        let rotated = AuditFiles.rotated(t.path).map(\.path)
        #expect(rotated.count >= 3)
        for file in rotated + [t.path] {
            let size = try #require(try FileManager.default.attributesOfItem(atPath: file)[.size] as? Int)
            #expect(size <= 2_048)
        }
        let report = try t.verify()
        #expect(report.lines == 60)
        #expect(report.files == rotated + [t.path])
        // The first line of each file links to the last line of the one before.
        for (older, newer) in zip(rotated, rotated.dropFirst() + [t.path]) {
            let last = try #require(try t.objects(older).last)
            let first = try #require(try t.objects(newer).first)
            #expect(first["prev"] as? String == last["mac"] as? String)
            #expect(first["seq"] as? Int == (last["seq"] as? Int).map { $0 + 1 })
        }

        let middle = rotated[1]
        let original = try String(contentsOfFile: middle, encoding: .utf8)
        try original.replacingOccurrences(of: "CN=p", with: "CN=q").write(toFile: middle, atomically: true, encoding: .utf8)
        var brokenFile: String?
        do { _ = try t.verify() } catch AuditError.broken(let file, _, _) { brokenFile = file }
        #expect(brokenFile == middle)

        try FileManager.default.removeItem(atPath: middle)
        brokenFile = nil
        do { _ = try t.verify() } catch AuditError.broken(let file, _, _) { brokenFile = file }
        #expect(brokenFile == rotated[2], "a missing middle file must break the chain at the next file")
    }

    // MARK: one writer

    @Test("a second writer on the same trail is refused, naming the file and the holder's PID")
    func secondWriter() throws {
        let t = try Trail(); defer { t.dir.remove() }
        let first = try t.open()
        #expect(throws: AuditError.inUse(path: t.path, pid: getpid())) { _ = try t.open() }
        #expect(AuditError.inUse(path: t.path, pid: getpid()).description.contains("process \(getpid())"))
        first.close()
        let second = try t.open()  // the lock goes with the first writer
        second.close()
    }

    // MARK: start

    @Test("opening a large trail reads only its end (bounded bytes, however large the file)")
    func startupReadsTail() throws {
        let t = try Trail(); defer { t.dir.remove() }
        let small = try t.open()
        small.record("broker_started")
        small.close()
        let smallOpen = try t.open()
        let smallRead = smallOpen.openStatistics.bytesRead
        smallOpen.close()

        // ~40 MB of valid chain, sealed directly (the writer would aggregate the repeats).
        let key = try t.key()
        var prev = try #require(try t.objects().last?["mac"] as? String)
        var seq = try #require(try t.objects().last?["seq"] as? Int)
        let handle = try #require(FileHandle(forWritingAtPath: t.path))
        try handle.seekToEnd()
        let pad = String(repeating: "x", count: 900)
        for _ in 0..<40 {
            var chunk = ""
            for _ in 0..<1_000 {
                seq += 1
                let line = AuditLine.seal(body: "{\"ts\":\"2026-01-01T00:00:00.000Z\",\"event\":\"connection_accepted\",\"serial\":\"\(seq)\",\"pad\":\"\(pad)\"",
                                          seq: seq, prev: prev, key: key)
                chunk += line.text + "\n"
                prev = line.mac
            }
            try handle.write(contentsOf: Data(chunk.utf8))
        }
        try handle.close()
        try AuditCheckpoint(seq: seq, mac: prev).write(trail: t.path, key: key)
        let size = try #require(try FileManager.default.attributesOfItem(atPath: t.path)[.size] as? Int)
        #expect(size > 36_000_000)

        let before = try ProcessIO.bytesRead()
        let large = try t.open()
        let processRead = try ProcessIO.bytesRead() - before
        large.record("broker_started")
        large.close()
        #expect(large.openStatistics.resumedAtSeq == seq)
        #expect(large.openStatistics.bytesRead <= AuditTrail.tailWindow + 4_096)
        #expect(large.openStatistics.bytesRead <= smallRead + AuditTrail.tailWindow)
        // The process-wide count (other tests may read meanwhile; 8 MiB is far below the file).
        #expect(processRead < 8 << 20, "opening read \(processRead) bytes of a \(size)-byte trail")
        #expect(try t.verify().lastSeq == seq + 1)
    }

    @Test("a torn last line is kept outside the chain, recorded as trail_recovered, and reported by verify")
    func tornTail() throws {
        let t = try Trail(); defer { t.dir.remove() }
        let trail = try t.open()
        for i in 0..<3 { trail.record("connection_refused", ["serial": "0\(i)"]) }
        trail.close()
        let fragment = "{\"ts\":\"2026-12-03T04:00:00.000Z\",\"event\":\"connection_ref"
        let handle = try #require(FileHandle(forWritingAtPath: t.path))
        try handle.seekToEnd()
        try handle.write(contentsOf: Data(fragment.utf8))
        try handle.close()
        // Before relayd restarts, verify names the fragment but the chain holds.
        #expect(try t.verify().notices.contains { $0.contains("unterminated") })

        let again = try t.open()
        again.record("broker_started")
        again.close()
        let lines = try t.lines()
        #expect(lines[3] == fragment)
        let recovered = try #require(try JSONSerialization.jsonObject(with: Data(lines[4].utf8)) as? [String: Any])
        #expect(recovered["event"] as? String == "trail_recovered")
        #expect(recovered["torn_bytes"] as? Int == fragment.utf8.count)
        #expect(recovered["after_seq"] as? Int == 3)
        let report = try t.verify()
        #expect(report.lines == 5)
        #expect(report.notices.contains { $0.contains("cut short") })

        // A fragment in the middle without relayd's record is a break.
        var edited = lines
        edited.insert("{\"ts\":\"x\"", at: 1)
        try t.write(edited)
        var brokenAt: Int?
        do { _ = try t.verify() } catch AuditError.broken(_, let line, _) { brokenAt = line }
        #expect(brokenAt == 2)
    }

    // MARK: the key

    @Test("relayd refuses to continue a trail under a different key, or without its key")
    func wrongKey() throws {
        let t = try Trail(); defer { t.dir.remove() }
        let trail = try t.open()
        trail.record("broker_started")
        trail.close()
        let mode = try #require(try FileManager.default.attributesOfItem(atPath: t.keyPath)[.posixPermissions] as? Int)
        #expect(mode & 0o777 == 0o600)
        try String(repeating: "ab", count: 32).write(toFile: t.keyPath, atomically: true, encoding: .utf8)
        var reason = ""
        do { _ = try t.open() } catch AuditError.keyDoesNotVerify(_, _, let why) { reason = why }
        #expect(reason.contains("does not match its content"))
        try FileManager.default.removeItem(atPath: t.keyPath)
        #expect(throws: AuditError.self) { _ = try t.open() }
        #expect(!FileManager.default.fileExists(atPath: t.keyPath), "a key must not be created for an existing trail")
    }
}

/// The process's read counter (`rchar` in /proc/self/io: bytes read by read(2) and friends).
enum ProcessIO {
    static func bytesRead() throws -> Int {
        let io = try String(contentsOfFile: "/proc/self/io", encoding: .utf8)
        let line = try #require(io.split(separator: "\n").first { $0.hasPrefix("rchar:") })
        return try #require(Int(line.dropFirst(6).trimmingCharacters(in: .whitespaces)))
    }
}
