import Foundation
import RelayTestSupport
import Testing
@testable import RelayBroker

/// `[audit] key_file`, `max_file_size` and `repeat_interval`.
@Suite("Broker configuration: audit")
struct AuditConfigTests {
    func parse(_ audit: String, in dir: TemporaryDirectory) throws -> BrokerConfiguration {
        try dir.createPlaceholders(["server.crt", "server.key", "ca.crt"])
        let text = """
        [tls]
        certificate = "server.crt"
        private_key = "server.key"
        client_ca = "ca.crt"

        [audit]
        path = "audit.jsonl"
        \(audit)
        """
        return try BrokerConfiguration.parse(text, file: dir.file("relay.toml"), baseDirectory: dir.path)
    }

    @Test("defaults: the key in the data directory, 256 MiB files, a 10 s interval")
    func defaults() throws {
        let dir = try TemporaryDirectory(); defer { dir.remove() }
        let config = try parse("", in: dir)
        #expect(config.audit.keyFile == nil)
        #expect(config.auditKeyFile == dir.file("data") + "/audit.key")
        #expect(config.audit.maxFileSize == 256 << 20)
        #expect(config.auditOptions.repeatInterval == 10)
        #expect(try config.applying(listen: nil, dataDirectory: "/srv/relay").auditKeyFile == "/srv/relay/audit.key")
    }

    @Test("set values are resolved against the config's folder; out-of-range values are refused")
    func values() throws {
        let dir = try TemporaryDirectory(); defer { dir.remove() }
        let config = try parse("key_file = \"keys/audit.key\"\nmax_file_size = \"1MiB\"\nrepeat_interval = \"2s\"", in: dir)
        #expect(config.auditKeyFile == dir.file("keys/audit.key"))
        #expect(config.audit.maxFileSize == 1 << 20)
        #expect(config.auditOptions.repeatInterval == 2)
        #expect(try parse("max_file_size = 0", in: dir).audit.maxFileSize == 0)
        #expect(throws: ConfigError.self) { try parse("max_file_size = \"1KiB\"", in: dir) }
        #expect(throws: ConfigError.self) { try parse("repeat_interval = \"10ms\"", in: dir) }
        #expect(throws: ConfigError.self) { try parse("keyfile = \"x\"", in: dir) }
    }

    /// It said "(No such file or directory); check the folder is writable",
    /// sending the operator to check permissions on a folder that is not there.
    @Test("an [audit] path in a folder that does not exist: the start's refusal names the folder and says to create it")
    func missingFolder() throws {
        let dir = try TemporaryDirectory(); defer { dir.remove() }
        let folder = dir.file("no-such-folder")
        do {
            _ = try AuditFiles.lock(folder + "/audit.jsonl")
            Issue.record("a trail in a missing folder was locked")
        } catch {
            guard case .cannotOpen(_, let reason) = error else { Issue.record("unexpected \(error)"); return }
            #expect(reason.contains("\(folder) does not exist") && reason.contains("[audit] path"), "\(reason)")
        }
    }
}
