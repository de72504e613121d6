import Foundation
import RelayCLISupport
import RelayClient
import RelayTestSupport
import Testing

/// One exit-code table for relayd, relayctl, relay-pub and relay-sub
/// (RelayExit, docs/exit-codes.md), checked through the real binaries.
@Suite("Exit-code table")
struct ExitCodeTableTests {
    @Test("the client CLIs: 64 usage, 66 a missing --cert, 77 a policy denial, 69 nothing listening")
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
            let badTopic = try await runCLI("relay-pub", args + ["--topic", "bad..topic", "--message", "x"])
            #expect(badTopic.status == 64, "\(badTopic.stderr)")
            var missingCert = args
            missingCert[3] = broker.directory.file("no-such-cert.pem")  // --server S --cert C
            let noInput = try await runCLI("relay-pub", missingCert + ["--topic", "ok.a", "--message", "x"])
            #expect(noInput.status == 66, "\(noInput.stderr)")
            #expect(noInput.stderr.joined().contains("--cert \(missingCert[3]) does not exist"), "\(noInput.stderr)")
            let denied = try await runCLI("relay-pub", args + ["--topic", "secret.a", "--message", "x"])
            #expect(denied.status == 77, "\(denied.stderr)")
            let deniedSub = try await runCLI("relay-sub", args + ["--topic", "secret.>", "--count", "1"])
            #expect(deniedSub.status == 77, "\(deniedSub.stderr)")
            let ok = try await runCLI("relay-pub", args + ["--topic", "ok.a", "--message", "x"])
            #expect(ok.status == 0, "\(ok.stderr)")
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

    @Test("docs/exit-codes.md lists every code of the table with its meaning")
    func documented() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent()
        let text = try String(contentsOf: root.appendingPathComponent("docs/exit-codes.md"), encoding: .utf8)
        for code in RelayExit.allCases {
            let row = "| \(code.rawValue) | \(code.meaning) |"
            #expect(text.contains(row), "docs/exit-codes.md lacks the row \(row)")
        }
    }
}
