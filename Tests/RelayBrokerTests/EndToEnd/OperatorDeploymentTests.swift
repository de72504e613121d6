import Foundation
import RelayTestSupport
import Testing

/// Wave 17: a new operator deploying relayd from the docs alone, with the
/// files production hands it (a Kubernetes secret mounted through `..data`,
/// a passphrase-protected key, a chain bundle in the wrong order, a section
/// written without the key that turns it on). Each runs the real relayd or
/// relayctl the way the operator would (`--check-config`, `config check`).
@Suite("Operator deployment: production-shaped files", .serialized)
struct OperatorDeploymentTests {
    /// Runs `executable ARGS` to its end (killed after `timeout`: nil status).
    static func run(_ executable: String, _ arguments: [String], timeout: Double = 20) async throws -> (status: Int32?, transcript: String) {
        let child = try await ChildProcess(executable, arguments)
        let status = await child.waitForExit(timeout: timeout)
        if status == nil {
            child.signal(SIGKILL)
            _ = await child.waitForExit(timeout: 20)
        }
        return (status, child.transcript)
    }

    /// `relayd --check-config` on the fixture's config with `replace` applied.
    static func checkConfig(_ relayd: RelaydFixture, _ replace: [(String, String)] = []) async throws -> (status: Int32?, transcript: String) {
        var text = try String(contentsOfFile: relayd.configPath, encoding: .utf8)
        for (old, new) in replace {
            let changed = text.replacingOccurrences(of: old, with: new)
            #expect(changed != text, "the fixture's config has no \(old)")
            text = changed
        }
        let path = relayd.directory.file("operator.toml")
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return try await run(try ProductLocator.executable("relayd"), ["--check-config", "--config", path])
    }

    /// A passphrase-protected key made OpenSSL ask for the passphrase on the
    /// controlling terminal (its default PEM callback): an operator who ran
    /// `relayd --config …` or `relayctl config check` from a shell saw
    /// `Enter PEM pass phrase:` and a process that waited for ever, and a
    /// SIGHUP reload of such a relayd would have blocked on the terminal.
    @Test("an encrypted private key is refused at once, saying it is encrypted and how to decrypt it, with no passphrase prompt on a terminal")
    func encryptedKeyIsRefusedWithoutAPrompt() async throws {
        try await withRelayd(start: false) { relayd in
            let encrypted = relayd.directory.file("server-encrypted.key")
            let made = try await Self.run("/usr/bin/env", ["openssl", "pkey", "-in", relayd.pki.server.key, "-aes256",
                                                           "-passout", "pass:secret", "-out", encrypted])
            #expect(made.status == 0, "\(made.transcript)")
            var text = try String(contentsOfFile: relayd.configPath, encoding: .utf8)
            text = text.replacingOccurrences(of: "\"\(relayd.pki.server.key)\"", with: "\"\(encrypted)\"")
            let config = relayd.directory.file("encrypted.toml")
            try text.write(toFile: config, atomically: true, encoding: .utf8)
            // script(1) gives relayd a terminal, as an operator's shell does.
            let command = "\(try ProductLocator.executable("relayd")) --check-config --config \(config)"
            let check = try await Self.run("/usr/bin/env", ["script", "-qec", command, "/dev/null"], timeout: 10)
            #expect(check.status == 78, "relayd waited for a passphrase (status \(check.status.map(String.init) ?? "none: killed")):\n\(check.transcript)")
            #expect(!check.transcript.contains("pass phrase"), "relayd prompted for a passphrase:\n\(check.transcript)")
            #expect(check.transcript.contains(encrypted) && check.transcript.contains("encrypted")
                    && check.transcript.contains("openssl pkey -in \(encrypted)"), "\(check.transcript)")
        }
    }
}

extension OperatorDeploymentTests {
    /// `[storage.jetstream]` is read only with `backend = "jetstream"`; an
    /// operator who wrote the section and forgot the key got a relayd that
    /// stored everything in its local LMDB, each edge alone, with no word.
    @Test("[storage.jetstream] without backend = \"jetstream\" is refused (78), naming the section and the backend key")
    func jetstreamSectionWithoutBackend() async throws {
        try await withRelayd(start: false) { relayd in
            relayd.storageExtra = """
            [storage.jetstream]
            servers = ["tls://127.0.0.1:4222"]
            ca = "\(relayd.pki.ca.certificate)"
            certificate = "\(relayd.pki.server.certificate)"
            private_key = "\(relayd.pki.server.key)"
            """
            try relayd.writeConfig()
            let check = try await Self.checkConfig(relayd)
            #expect(check.status == 78, "status \(check.status.map(String.init) ?? "none"):\n\(check.transcript)")
            #expect(check.transcript.contains("storage.jetstream") && check.transcript.contains("backend = \"jetstream\""),
                    "\(check.transcript)")
        }
    }

    /// The exposure warning read the link's own mode (lstat): a key mounted
    /// from a Kubernetes secret (`tls.key -> ..data/tls.key`) was reported
    /// "readable by everyone (mode 0777)" however private the file was, and
    /// `chmod 600` could never silence it; a data directory behind a link
    /// was never checked.
    @Test("exposure warnings judge the file a symlink points at: a private key through ..data is quiet, a 0644 one is named with its mode")
    func warningsFollowSymlinks() async throws {
        try await withRelayd(start: false) { relayd in
            let key = try String(contentsOfFile: relayd.pki.server.key, encoding: .utf8)
            let volume = try ProjectedVolume(directory: relayd.directory.file("secret"), files: ["tls.key": key])
            let target = volume.directory + "/..data/tls.key"
            #expect(chmod(target, 0o600) == 0)
            let config = relayd.directory.file("k8s.toml")
            let text = try String(contentsOfFile: relayd.configPath, encoding: .utf8)
                .replacingOccurrences(of: "\"\(relayd.pki.server.key)\"", with: "\"\(volume.path("tls.key"))\"")
            try text.write(toFile: config, atomically: true, encoding: .utf8)
            let relayctl = try ProductLocator.executable("relayctl")
            let quiet = try await Self.run(relayctl, ["config", "check", "--config", config])
            #expect(quiet.status == 0, "\(quiet.transcript)")
            #expect(!quiet.transcript.contains("warning"), "warned about a 0600 key behind a symlink:\n\(quiet.transcript)")

            #expect(chmod(target, 0o644) == 0)
            let open = try await Self.run(relayctl, ["config", "check", "--config", config])
            #expect(open.transcript.contains("warning: the TLS private key \(volume.path("tls.key"))")
                    && open.transcript.contains("mode 0644"), "\(open.transcript)")

            // A data directory that is a link to a folder open to everyone.
            let real = relayd.directory.file("real-data")
            try FileManager.default.createDirectory(atPath: real, withIntermediateDirectories: false, attributes: [.posixPermissions: 0o755])
            try FileManager.default.createSymbolicLink(atPath: relayd.dataDirectory, withDestinationPath: real)
            #expect(chmod(target, 0o600) == 0)
            let data = try await Self.run(relayctl, ["config", "check", "--config", config])
            #expect(data.transcript.contains("warning: the data directory \(relayd.dataDirectory)")
                    && data.transcript.contains("mode 0755"), "\(data.transcript)")
        }
    }

    /// `relayd --check-config` passed an `[audit] key_file` that is a folder
    /// (warning to `chmod 600` it), then the start exited 66; an empty one
    /// silently meant the default key in the data directory.
    @Test("[audit] key_file that is a directory or empty is refused at load (78), naming audit.key_file")
    func auditKeyFileDirectoryOrEmpty() async throws {
        try await withRelayd(start: false) { relayd in
            let folder = relayd.directory.file("keys")
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: false)
            let audit = "path = \"\(relayd.auditPath)\""
            let directory = try await Self.checkConfig(relayd, [(audit, "\(audit)\nkey_file = \"\(folder)\"")])
            #expect(directory.status == 78, "status \(directory.status.map(String.init) ?? "none"):\n\(directory.transcript)")
            #expect(directory.transcript.contains("audit.key_file") && directory.transcript.contains("\(folder) is a directory"),
                    "\(directory.transcript)")
            let empty = try await Self.checkConfig(relayd, [(audit, "\(audit)\nkey_file = \"\"")])
            #expect(empty.status == 78, "status \(empty.status.map(String.init) ?? "none"):\n\(empty.transcript)")
            #expect(empty.transcript.contains("audit.key_file") && empty.transcript.contains("empty"), "\(empty.transcript)")
        }
    }
}

extension OperatorDeploymentTests {
    /// A reload whose config file was moved away logged Foundation's text
    /// ("The operation could not be completed. The file doesn't exist.")
    /// and told the operator to "pass an existing file with --config", which
    /// a running relayd cannot be given.
    @Test("a SIGHUP after the config file was moved away is refused in plain words: it does not exist, put it back; the old config stays")
    func reloadWithTheConfigFileGone() async throws {
        try await withRelayd { relayd in
            let process = try #require(relayd.process)
            try FileManager.default.moveItem(atPath: relayd.configPath, toPath: relayd.configPath + ".moved")
            relayd.reload()
            let refusal = await eventuallyValue(timeout: 20, every: 0.05) {
                process.transcript.split(separator: "\n").first { $0.contains("reload refused") }
            }
            #expect(refusal != nil, "no refused reload logged:\n\(process.transcript)")
            let line = String(refusal ?? "")
            #expect(line.contains(relayd.configPath) && line.contains("does not exist") && line.contains("put it back"), "\(line)")
            #expect(!line.contains("could not be completed") && !line.contains("--config"), "\(line)")
            #expect(process.isRunning)
        }
    }
}

extension OperatorDeploymentTests {
    /// An audit trail relayd's user may not write (a logrotate `create 0444`,
    /// a file copied in by root): the start said "cannot open it for
    /// appending (Permission denied)", the system's words and no uid.
    @Test("an audit trail relayd may not write (mode 0444, relayd not root): exit 66, naming the uid, the mode and what to do")
    func unwritableAuditTrail() async throws {
        try await withRelayd(start: false) { relayd in
            try "".write(toFile: relayd.auditPath, atomically: true, encoding: .utf8)
            #expect(chmod(relayd.auditPath, 0o444) == 0)
            // relayd as uid 1000 of a user namespace (as StartupErrorTests), so the mode applies under root too.
            let child = try await ChildProcess("/usr/bin/unshare", ["--user", "--map-user=1000", "--map-group=1000",
                                                              try ProductLocator.executable("relayd"), "--init", "--config", relayd.configPath])
            child.closeStdin()
            let status = await child.waitForExit(timeout: 20)
            #expect(status == 66, "exit \(String(describing: status)):\n\(child.transcript)")
            let line = child.transcript.split(separator: "\n").first { $0.contains("relayd cannot start") }.map(String.init) ?? ""
            #expect(line.contains(relayd.auditPath) && line.contains("uid 1000") && line.contains("mode 0444")
                    && line.contains("chown or chmod"), "\(child.transcript)")
            #expect(!line.contains("Permission denied"), "\(line)")
        }
    }
}
