import Foundation
import RelayCLISupport
import RelayClient
import RelayCore
import RelayTestSupport
import Testing

/// One exit-code table for relayd, relayctl, relay-pub and relay-sub
/// (RelayExit, docs/exit-codes.md), checked through the real binaries.
@Suite("Exit-code table")
struct ExitCodeTableTests {
    /// Every client-CLI code of the table in one broker (one ACL, one start).
    @Test("the client CLIs: 0 done, 64 usage, 66 a missing --cert, 77 a policy denial, 69 nothing listening")
    func clientCodes() async throws {
        let acl = """
        [[acl.rule]]
        name = "limited"
        match = {}
        publish = ["ok.>"]
        subscribe = ["ok.>"]
        """
        try await withBroker(acl: acl) { broker in
            let args = broker.cliArguments()
            let usage = try await runCLI("relay-pub", args + ["--message", "x"])  // no --topic
            #expect(usage.status == 64, "\(usage.stderr)")
            let both = try await runCLI("relay-pub", args + ["--topic", "ok.a", "--message", "x", "--lines"])
            #expect(both.status == 64, "--message with --lines: \(both.stderr)")
            let badTopic = try await runCLI("relay-pub", args + ["--topic", "bad..topic", "--message", "x"])
            #expect(badTopic.status == 64, "\(badTopic.stderr)")
            let badStart = try await runCLI("relay-sub", args + ["--topic", "ok.>", "--from", "yesterday"])
            #expect(badStart.status == 64, "\(badStart.stderr)")
            // No --server, no RELAY_* environment, no profile in this HOME.
            let noServer = try await runCLI("relay-pub", ["--topic", "ok.a", "--message", "x"],
                                            environment: ["HOME": broker.directory.path])
            #expect(noServer.status == 64, "\(noServer.stderr)")
            var missingCert = args
            missingCert[3] = broker.directory.file("no-such-cert.pem")  // --server S --cert C
            let noInput = try await runCLI("relay-pub", missingCert + ["--topic", "ok.a", "--message", "x"])
            #expect(noInput.status == 66, "\(noInput.stderr)")
            #expect(noInput.stderr.joined().contains("--cert \(missingCert[3]) does not exist"), "\(noInput.stderr)")
            // The same file named by RELAY_CERT or by a profile: the message names where it came from.
            let withoutCert = Array(args[0..<2]) + Array(args[4...])
            let fromEnvironment = try await runCLI("relay-pub", withoutCert + ["--topic", "ok.a", "--message", "x"],
                                                   environment: ["HOME": broker.directory.path, "RELAY_CERT": missingCert[3]])
            #expect(fromEnvironment.status == 66, "\(fromEnvironment.stderr)")
            #expect(fromEnvironment.stderr.joined().contains("RELAY_CERT \(missingCert[3]) does not exist"), "\(fromEnvironment.stderr)")
            let profileFolder = broker.directory.file(".config/relay")
            try FileManager.default.createDirectory(atPath: profileFolder, withIntermediateDirectories: true)
            try "[profile.default]\ncert = \"\(missingCert[3])\"\n".write(toFile: profileFolder + "/client.toml", atomically: true, encoding: .utf8)
            let fromProfile = try await runCLI("relay-pub", withoutCert + ["--topic", "ok.a", "--message", "x"],
                                               environment: ["HOME": broker.directory.path])
            #expect(fromProfile.status == 66, "\(fromProfile.stderr)")
            #expect(fromProfile.stderr.joined().contains("cert in profile \"default\" of \(profileFolder)/client.toml (\(missingCert[3])) does not exist"),
                    "\(fromProfile.stderr)")
            try FileManager.default.removeItem(atPath: profileFolder + "/client.toml")
            let denied = try await runCLI("relay-pub", args + ["--topic", "secret.a", "--message", "x"])
            #expect(denied.status == 77, "\(denied.stderr)")
            #expect(denied.stderr.joined().contains("not_authorized"), "\(denied.stderr)")
            let deniedSub = try await runCLI("relay-sub", args + ["--topic", "secret.>", "--count", "1"])
            #expect(deniedSub.status == 77, "\(deniedSub.stderr)")
            let ok = try await runCLI("relay-pub", args + ["--topic", "ok.a", "--message", "x"])
            #expect(ok.status == 0, "\(ok.stderr)")
            let help = try await runCLI("relay-pub", ["--help"])
            #expect(help.status == 0 && help.stdout.joined(separator: "\n").contains("Examples:"), "\(help.stdout)")
            var closed = args
            closed[1] = "127.0.0.1:1"  // nothing listens on port 1
            let unavailable = try await runCLI("relay-pub", closed + ["--topic", "ok.a", "--message", "x"])
            #expect(unavailable.status == 69, "\(unavailable.stderr)")
        }
    }

    @Test("relayd --check-config and relayctl config check: 78 for an invalid config, 66 for a missing one")
    func configCodes() async throws {
        try await withRelayd(start: false) { fixture in
            let broken = fixture.directory.file("broken.toml")
            try "[server]\nlisten = 42\n".write(toFile: broken, atomically: true, encoding: .utf8)
            let relayd = try await runCLI("relayd", ["--check-config", "--config", broken])
            #expect(relayd.status == 78, "\(relayd.stderr)")
            let relayctl = try await runCLI("relayctl", ["config", "check", "--config", broken])
            #expect(relayctl.status == 78, "\(relayctl.stderr)")
            let missing = fixture.directory.file("missing.toml")
            let relaydMissing = try await runCLI("relayd", ["--check-config", "--config", missing])
            #expect(relaydMissing.status == 66, "\(relaydMissing.stderr)")
            let relayctlMissing = try await runCLI("relayctl", ["config", "check", "--config", missing])
            #expect(relayctlMissing.status == 66, "\(relayctlMissing.stderr)")
        }
    }

    /// operations.md: "64 usage (an unknown flag, a bad --listen)"; relayd
    /// exited 78 for it, and took `--data-dir ""` as the working directory.
    @Test("relayd: a bad --listen or an empty --data-dir is a usage error (64), a valid config file notwithstanding")
    func commandLineOverrides() async throws {
        try await withRelayd(start: false) { fixture in
            for extra in [["--listen", "nonsense"], ["--listen", ":7443"], ["--data-dir", ""]] {
                let run = try await runCLI("relayd", ["--check-config", "--config", fixture.configPath] + extra)
                let message = run.stderr.joined(separator: "\n")
                #expect(run.status == 64, "\(extra): \(message)")
                #expect(message.contains(extra[0]), "\(extra): \(message)")
            }
        }
    }

    @Test("a directory given as --config is 66 with a sentence saying so, not 78 with Foundation's error text")
    func configIsDirectory() async throws {
        let dir = try TemporaryDirectory(prefix: "exit-config-dir"); defer { dir.remove() }
        for (tool, arguments) in [("relayd", ["--check-config", "--config", dir.path]),
                                  ("relayctl", ["config", "check", "--config", dir.path])] {
            let run = try await runCLI(tool, arguments)
            let message = run.stderr.joined(separator: "\n")
            #expect(run.status == 66, "\(tool): \(message)")
            #expect(message.contains("is a directory") && !message.contains("NSCocoaErrorDomain"), "\(tool): \(message)")
        }
    }

    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()

    @Test("docs/exit-codes.md lists every code of the table with its meaning")
    func documented() throws {
        let text = try String(contentsOf: Self.root.appendingPathComponent("docs/exit-codes.md"), encoding: .utf8)
        for code in RelayExit.allCases {
            let row = "| \(code.rawValue) | \(code.meaning) |"
            #expect(text.contains(row), "docs/exit-codes.md lacks the row \(row)")
        }
    }

    /// A second definition drifts: relayd, the library and the CLIs once each
    /// named the numbers themselves. Any `Int32` enum or `static let …: Int32 =
    /// <number>` in Sources is an exit-code table; only RelayCore's may exist.
    @Test("the exit-code numbers are defined once, in RelayCore's RelayExit")
    func definedOnce() throws {
        let sources = Self.root.appendingPathComponent("Sources")
        let pattern = try Regex(#"(enum \w+\s*:\s*Int32\b)|(static let \w+\s*:\s*Int32\s*=\s*[0-9])"#)
        var definitions: [String] = []
        let files = try #require(FileManager.default.enumerator(atPath: sources.path))
        for case let path as String in files where path.hasSuffix(".swift") {
            let text = try String(contentsOf: sources.appendingPathComponent(path), encoding: .utf8)
            for (number, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated()
            where line.contains(pattern) {
                definitions.append("Sources/\(path):\(number + 1): \(line.trimmingCharacters(in: .whitespaces))")
            }
        }
        #expect(definitions.count == 1 && definitions.first?.hasPrefix("Sources/RelayCore/RelayExit.swift:") == true,
                "exit codes defined outside RelayCore/RelayExit.swift:\n\(definitions.joined(separator: "\n"))")
    }
}
