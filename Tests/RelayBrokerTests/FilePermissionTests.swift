import Foundation
import RelayTestSupport
import Testing

/// Issue 14 item 15: relayd keeps its data private (directory 0700, files
/// 0600) and warns, at start and in `relayctl config check`, about a private
/// key others can read and a metrics listener on every interface.
@Suite("File permissions and exposure warnings", .serialized)
struct FilePermissionTests {
    static func mode(_ path: String) throws -> Int {
        let attributes = try FileManager.default.attributesOfItem(atPath: path)
        return try #require(attributes[.posixPermissions] as? Int) & 0o777
    }

    /// Replaces the fixture's `[metrics]` listen value (the fixture writes `""`).
    static func exposeMetrics(_ relayd: RelaydFixture) throws {
        let text = try String(contentsOfFile: relayd.configPath, encoding: .utf8)
        let exposed = text.replacingOccurrences(of: "[metrics]\nlisten = \"\"", with: "[metrics]\nlisten = \"0.0.0.0:0\"")
        #expect(exposed != text, "the fixture's [metrics] section changed shape")
        try exposed.write(toFile: relayd.configPath, atomically: true, encoding: .utf8)
    }

    /// Polls the process output (stderr, where the log goes) for a line:
    /// the warning is logged before "listening", but its pipe may lag.
    static func waitForLog(_ process: ChildProcess, _ predicate: (Substring) -> Bool) async -> Bool {
        await eventually(timeout: 20, every: 0.05) { process.transcript.split(separator: "\n").contains(where: predicate) }
    }

    @Test("relayd creates the data directory 0700, the LMDB files 0600 and the audit files 0600")
    func createdPrivate() async throws {
        try await withRelayd { relayd in
            #expect(try Self.mode(relayd.dataDirectory) == 0o700)
            let files = try FileManager.default.contentsOfDirectory(atPath: relayd.dataDirectory)
            #expect(files.contains("data.mdb"))
            for name in files {
                #expect(try Self.mode(relayd.dataDirectory + "/" + name) == 0o600, "\(name) is readable by others")
            }
            #expect(try Self.mode(relayd.auditPath) == 0o600)
            _ = await relayd.terminate()
        }
    }

    @Test("a group- or world-readable private key and metrics on 0.0.0.0 are warned about at start")
    func startupWarnings() async throws {
        try await withRelayd(start: false) { relayd in
            #expect(chmod(relayd.pki.server.key, 0o644) == 0)
            try Self.exposeMetrics(relayd)
            try await relayd.start()
            let process = try #require(relayd.process)
            let keyWarning = await Self.waitForLog(process) { $0.contains("private key") && $0.contains(relayd.pki.server.key) && $0.contains("readable") }
            #expect(keyWarning, "no warning about the readable key:\n\(process.transcript)")
            let metricsWarning = await Self.waitForLog(process) { $0.contains("metrics") && $0.contains("0.0.0.0") && $0.contains("level=warning") }
            #expect(metricsWarning, "no warning about metrics on 0.0.0.0:\n\(process.transcript)")
            _ = await relayd.terminate()
        }
    }

    @Test("relayctl config check warns about a readable key and exposed metrics, and is quiet otherwise")
    func configCheckWarnings() async throws {
        try await withRelayd(start: false) { relayd in
            let quiet = try await ChildProcess(try ProductLocator.executable("relayctl"), ["config", "check", "--config", relayd.configPath])
            #expect(await quiet.waitForExit(timeout: 60) == 0)
            #expect(!quiet.transcript.contains("warning"), "warned about a private setup:\n\(quiet.transcript)")

            #expect(chmod(relayd.pki.server.key, 0o640) == 0)
            try Self.exposeMetrics(relayd)
            try FileManager.default.createDirectory(atPath: relayd.dataDirectory, withIntermediateDirectories: false,
                                                    attributes: [.posixPermissions: 0o755])
            let check = try await ChildProcess(try ProductLocator.executable("relayctl"), ["config", "check", "--config", relayd.configPath])
            #expect(await check.waitForExit(timeout: 60) == 0, "warnings must not fail the check:\n\(check.transcript)")
            let lines = check.transcript.split(separator: "\n")
            let keyWarning = lines.contains { $0.contains("warning") && $0.contains(relayd.pki.server.key) && $0.contains("group") }
            #expect(keyWarning, "no warning about the group-readable key:\n\(check.transcript)")
            let metricsWarning = lines.contains { $0.contains("warning") && $0.contains("0.0.0.0") && $0.contains("metrics") }
            #expect(metricsWarning, "no warning about metrics on 0.0.0.0:\n\(check.transcript)")
            let dataWarning = lines.contains { $0.contains("warning") && $0.contains(relayd.dataDirectory) && $0.contains("everyone") }
            #expect(dataWarning, "no warning about the data directory open to everyone:\n\(check.transcript)")
        }
    }
}
