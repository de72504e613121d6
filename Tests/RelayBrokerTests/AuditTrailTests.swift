import Foundation
import RelayTestSupport
import Testing
@testable import RelayBroker

@Suite("Audit trail")
struct AuditTrailTests {
    /// Writes `count` events and returns the file's lines.
    func makeTrail(_ dir: TemporaryDirectory, count: Int = 5) throws -> [String] {
        let trail = try AuditTrail(path: dir.file("audit.jsonl"), options: AuditTrail.Options(keyFile: dir.file("audit.key")))
        for i in 0..<count {
            trail.record("connection_refused", ["serial": "0A\(i)", "reason": "revoked \"x\"\n", "n": i])
        }
        trail.close()
        let text = try String(contentsOfFile: dir.file("audit.jsonl"), encoding: .utf8)
        return text.split(separator: "\n").map(String.init)
    }

    func rewrite(_ dir: TemporaryDirectory, _ lines: [String]) throws {
        try (lines.joined(separator: "\n") + "\n").write(toFile: dir.file("audit.jsonl"), atomically: true, encoding: .utf8)
    }

    func brokenLine(_ dir: TemporaryDirectory) -> Int? {
        do {
            _ = try AuditVerifier.verify(path: dir.file("audit.jsonl"), key: try AuditKey.load(path: dir.file("audit.key")))
            return nil
        } catch AuditError.broken(_, let line, _) {
            return line
        } catch {
            return -1
        }
    }

    @Test("an untouched trail verifies, and lines are valid JSON")
    func intact() throws {
        let dir = try TemporaryDirectory(); defer { dir.remove() }
        let lines = try makeTrail(dir)
        #expect(lines.count == 5)
        let report = try AuditVerifier.verify(path: dir.file("audit.jsonl"), key: try AuditKey.load(path: dir.file("audit.key")))
        #expect(report.lines == 5)
        #expect(report.lastSeq == 5)
        for line in lines {
            let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
            #expect(object?["event"] as? String == "connection_refused")
            #expect(object?["reason"] as? String == "revoked \"x\"\n")
        }
    }

    @Test("reopening continues the chain")
    func reopen() throws {
        let dir = try TemporaryDirectory(); defer { dir.remove() }
        _ = try makeTrail(dir, count: 2)
        let lines = try makeTrail(dir, count: 2)
        #expect(lines.count == 4)
        #expect(try AuditVerifier.verify(path: dir.file("audit.jsonl"), key: try AuditKey.load(path: dir.file("audit.key"))).lines == 4)
    }

    @Test("an edited line is named")
    func edited() throws {
        let dir = try TemporaryDirectory(); defer { dir.remove() }
        var lines = try makeTrail(dir)
        lines[2] = lines[2].replacingOccurrences(of: "0A2", with: "0A9")
        try rewrite(dir, lines)
        #expect(brokenLine(dir) == 3)
    }

    @Test("a deleted line is detected at the line after it")
    func deleted() throws {
        let dir = try TemporaryDirectory(); defer { dir.remove() }
        var lines = try makeTrail(dir)
        lines.remove(at: 1)
        try rewrite(dir, lines)
        #expect(brokenLine(dir) == 2)
    }

    @Test("reordered lines are detected at the first moved line")
    func reordered() throws {
        let dir = try TemporaryDirectory(); defer { dir.remove() }
        var lines = try makeTrail(dir)
        lines.swapAt(3, 4)
        try rewrite(dir, lines)
        #expect(brokenLine(dir) == 4)
    }

    @Test("a forged line sealed with another key is detected")
    func forgedLink() throws {
        let dir = try TemporaryDirectory(); defer { dir.remove() }
        var lines = try makeTrail(dir)
        let wrongKey = try AuditKey(bytes: Array(repeating: 7, count: 32))
        let forged = AuditLine.seal(body: "{\"ts\":\"x\",\"event\":\"reload\"", seq: 4, prev: AuditLine.zeroMAC, key: wrongKey)
        lines[3] = forged.text
        try rewrite(dir, lines)
        #expect(brokenLine(dir) == 4)
    }

    @Test("a truncated line is detected")
    func truncated() throws {
        let dir = try TemporaryDirectory(); defer { dir.remove() }
        var lines = try makeTrail(dir)
        lines[4] = String(lines[4].prefix(20))
        try rewrite(dir, lines)
        #expect(brokenLine(dir) == 5)
    }
}
