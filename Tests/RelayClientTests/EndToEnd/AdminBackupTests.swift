import Foundation
import RelayClient
import RelayTestSupport
import Testing

/// `relayctl backup --to DIR` streams a consistent, compacted copy of the
/// running broker's LMDB store over the admin connection; ANOTHER relayd
/// started on that copy serves every message.
@Suite("relayctl backup and restore")
struct AdminBackupTests {
    @Test("a hot backup restores: a second relayd on the copy replays every message from earliest")
    func backupRestore() async throws {
        let ids = try AdminTestIdentities()
        let payloads = (1...200).map { "message-\($0)" }
        let dir = try TemporaryDirectory(prefix: "admin-backup")
        defer { dir.remove() }
        let copy = dir.file("copy")
        try await withRelayd(try ids.fixture()) { relayd in
            try await publish(relayd, ids, topic: "orders.eu", payloads: Array(payloads[..<150]))
            try await publish(relayd, ids, topic: "orders.us", payloads: Array(payloads[150...]))
            let run = try await runCLI("relayctl", ["backup", "--to", copy, "--format", "json"] + relayd.cliArguments(ids.ops))
            #expect(run.status == 0, "\(run.stderr)")
            let size = (try FileManager.default.attributesOfItem(atPath: copy + "/data.mdb")[.size] as? NSNumber)?.intValue
            #expect((size ?? 0) > 0, "the copy is empty")
            #expect(!FileManager.default.fileExists(atPath: copy + "/data.mdb.partial"))
            let refused = try await runCLI("relayctl", ["backup", "--to", copy] + relayd.cliArguments(ids.ops))
            #expect(refused.status == 64, "a non-empty target must be refused: \(refused.stderr)")
            // Another relayd (its own config, data directory and port; nested
            // because the scopes share the PKI) started on the copy.
            try await withRelayd(try ids.fixture(), start: false) { restored in
                try FileManager.default.createDirectory(atPath: restored.dataDirectory, withIntermediateDirectories: true)
                try FileManager.default.copyItem(atPath: copy + "/data.mdb", toPath: restored.dataDirectory + "/data.mdb")
                try await restored.start()
                let replay = try await runCLI("relay-sub", ["--topic", "orders.>", "--from", "earliest", "--count",
                                                            "\(payloads.count)", "--format", "raw"] + restored.cliArguments(ids.app))
                #expect(replay.status == 0, "\(replay.stderr)")
                #expect(replay.stdout == payloads, "restored \(replay.stdout.count) of \(payloads.count) messages")
            }
        }
    }

    /// A file where the directory should be used to surface, after the
    /// broker had started streaming, as Foundation's NSCocoaErrorDomain text.
    @Test("backup --to a file, or a path below one, is refused with a sentence (64) before anything is copied")
    func targetIsAFile() async throws {
        let ids = try AdminTestIdentities()
        let dir = try TemporaryDirectory(prefix: "admin-backup-target")
        defer { dir.remove() }
        let plain = dir.file("plain")
        try Data("x".utf8).write(to: URL(fileURLWithPath: plain))
        try await withRelayd(try ids.fixture()) { relayd in
            for target in [plain, plain + "/copy"] {
                let run = try await runCLI("relayctl", ["backup", "--to", target] + relayd.cliArguments(ids.ops))
                let message = run.stderr.joined(separator: "\n")
                #expect(run.status == 64, "\(target): \(message)")
                #expect(message.contains("\(plain) is a file") && !message.contains("NSCocoaErrorDomain"), "\(target): \(message)")
            }
            #expect(FileManager.default.contents(atPath: plain) == Data("x".utf8))
        }
    }
}
