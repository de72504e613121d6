import Foundation
import RelayBroker
import RelayTestSupport
import Testing

/// docs/security.md "The audit trail" against the real relayd: size
/// rotation keeps one chain across `<path>.NNNNNN` files that `relayctl
/// audit verify` walks, an edited rotated file breaks it, and a key that does
/// not verify the trail refuses the start (exit 66, docs/exit-codes.md: 66
/// is for relayd's audit files).
@Suite("Audit trail rotation and key under relayd", .serialized)
struct AuditRotationTests {
    /// An unknown `[audit]` key of 3,900 characters: every reload refuses it
    /// and writes a `reload` line of about 4 KiB whose `reason` names it, so
    /// 64 KiB (the smallest `max_file_size`) fill in about 16 SIGHUPs.
    static let longKeyLine = String(repeating: "k", count: 3_900) + " = 1"

    /// Each file's lines, oldest file first (the order verify walks).
    static func lines(of files: [String]) throws -> [[String]] {
        try files.map { file in
            try String(contentsOfFile: file, encoding: .utf8).split(separator: "\n").map(String.init)
        }
    }

    static func field(_ line: String, _ key: String) -> String? {
        guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
              let value = object[key] else { return nil }
        return "\(value)"
    }

    static func relayctlVerify(_ config: String) async throws -> ChildProcess {
        let relayctl = try await ChildProcess(try ProductLocator.executable("relayctl"), ["audit", "verify", "--config", config])
        _ = await relayctl.waitForExit(timeout: 60)
        return relayctl
    }

    @Test("relayd rotates the trail at max_file_size; the chain continues across files, verify walks them all and names an edited middle file")
    func rotationByRelayd() async throws {
        let limit = 64 << 10
        try await withRelayd(extra: "max_file_size = \"64KiB\"", metrics: true) { relayd in
            try relayd.writeConfig(extra: "max_file_size = \"64KiB\"\n" + Self.longKeyLine)
            let second = relayd.auditPath + ".000002"
            var reloads = 0
            while !FileManager.default.fileExists(atPath: second), reloads < 60 {
                reloads += 1
                relayd.reload()
                let count = reloads
                // The event that the reload (and its audit line) happened: the failure counter.
                let seen = try await relayd.waitForMetric("relay_reload_failures_total") { $0 >= Double(count) }
                #expect(seen == Double(count), "reload \(count) not counted")
            }
            #expect(FileManager.default.fileExists(atPath: second), "no second rotation after \(reloads) reloads")
            // The live file after two rotations: relayd keeps writing to it.
            try relayd.writeConfig(extra: "max_file_size = \"64KiB\"")
            relayd.reload()
            let applied = try await relayd.waitForMetric("relay_reloads_total") { $0 >= 1 }
            #expect(applied == 1)
            #expect(await relayd.terminate() == 0)

            let files = [relayd.auditPath + ".000001", second, relayd.auditPath]
            let perFile = try Self.lines(of: files)
            #expect(!FileManager.default.fileExists(atPath: relayd.auditPath + ".000003"))
            for (file, lines) in zip(files, perFile) {
                let size = try #require(try FileManager.default.attributesOfItem(atPath: file)[.size] as? Int)
                #expect(size <= limit, "\(file) is \(size) bytes, past max_file_size")
                #expect(!lines.isEmpty, "\(file) is empty")
            }
            // One chain: seq 1, 2, … across the files, each prev the line before's mac.
            let all = perFile.flatMap { $0 }
            let unchained = all.indices.filter { index in
                let previous = index == 0 ? String(repeating: "0", count: 64) : Self.field(all[index - 1], "mac")
                return Self.field(all[index], "seq") != String(index + 1) || Self.field(all[index], "prev") != previous
            }
            let firstUnchained = (unchained.first ?? -1) + 1
            #expect(unchained.isEmpty, "\(unchained.count) line(s) out of the chain, first at line \(firstUnchained) of \(all.count) (files of \(perFile.map(\.count)) lines)")
            let stopped = perFile[2].contains { Self.field($0, "event") == "broker_stopped" }
            #expect(stopped, "the live file has no broker_stopped line")

            let clean = try await Self.relayctlVerify(relayd.configPath)
            #expect(clean.terminationStatus == 0, "\(clean.transcript)")
            #expect(clean.transcript.contains("\(all.count) line(s) in 3 file(s) verified"), "\(clean.transcript)")
            let report = try AuditVerifier.verify(path: relayd.auditPath, key: try AuditKey.load(path: relayd.auditKeyPath))
            #expect(report.lines == all.count && report.files == files)

            // Edit one line of the middle file (a refused reload made "applied").
            // The first refused reload of the file: which line it is depends on where the
            // size limit cut (each SIGHUP also writes trail_reopened, and line lengths vary).
            var middle = perFile[1]
            let refusedIndex = middle.firstIndex { $0.contains("\"result\":\"refused\"") }
            let edited = try #require(refusedIndex, "no refused reload in \(second)") + 1
            middle[edited - 1] = middle[edited - 1].replacingOccurrences(of: "\"result\":\"refused\"", with: "\"result\":\"applied\"")
            #expect(middle[edited - 1] != perFile[1][edited - 1], "the test's edit changed nothing")
            try (middle.joined(separator: "\n") + "\n").write(toFile: second, atomically: false, encoding: .utf8)
            let tampered = try await Self.relayctlVerify(relayd.configPath)
            #expect(tampered.terminationStatus == 1, "\(tampered.transcript)")
            #expect(tampered.transcript.contains("\(second) line \(edited)"), "\(tampered.transcript)")

            // The middle file removed: the live file no longer follows the first.
            try FileManager.default.removeItem(atPath: second)
            let removed = try await Self.relayctlVerify(relayd.configPath)
            #expect(removed.terminationStatus == 1, "\(removed.transcript)")
            #expect(removed.transcript.contains("\(relayd.auditPath) line 1"), "\(removed.transcript)")
        }
    }

    @Test("relayd refuses to start on a key that does not verify the trail, or without its key: exit 66 naming the key file and the trail, nothing written")
    func wrongKeyRefusesTheStart() async throws {
        try await withRelayd { relayd in
            #expect(await relayd.terminate() == 0)
            let before = try Data(contentsOf: URL(fileURLWithPath: relayd.auditPath))
            let otherKey = String(repeating: "5a", count: 32)
            try otherKey.write(toFile: relayd.auditKeyPath, atomically: true, encoding: .utf8)
            let arguments = ["--config", relayd.configPath, "--listen", "127.0.0.1:0"]
            let wrong = try await ChildProcess(try ProductLocator.executable("relayd"), arguments)
            let wrongStatus = await wrong.waitForExit(timeout: 60)
            #expect(wrongStatus == 66, "wrong key: exit \(wrongStatus.map(String.init) ?? "none (timeout)")\n\(wrong.transcript)")
            #expect(wrong.transcript.contains(relayd.auditKeyPath) && wrong.transcript.contains(relayd.auditPath)
                    && wrong.transcript.contains("does not verify"), "\(wrong.transcript)")
            #expect(!wrong.transcript.contains("listening"))
            #expect(try Data(contentsOf: URL(fileURLWithPath: relayd.auditPath)) == before, "the trail changed")
            #expect(try String(contentsOfFile: relayd.auditKeyPath, encoding: .utf8) == otherKey, "the key changed")

            try FileManager.default.removeItem(atPath: relayd.auditKeyPath)
            let missing = try await ChildProcess(try ProductLocator.executable("relayd"), arguments)
            let missingStatus = await missing.waitForExit(timeout: 60)
            #expect(missingStatus == 66, "no key: exit \(missingStatus.map(String.init) ?? "none (timeout)")\n\(missing.transcript)")
            #expect(missing.transcript.contains(relayd.auditKeyPath), "\(missing.transcript)")
            #expect(!FileManager.default.fileExists(atPath: relayd.auditKeyPath), "a key was created for an existing trail")
        }
    }
}
