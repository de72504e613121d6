import Foundation
import RelayTestSupport
import Testing

/// README "Command-line clients": `--generate-completion-script bash` and
/// the clients' profile file (`[profile.NAME]` in
/// `~/.config/relay/client.toml`), run as the real binaries.
@Suite("CLI completion scripts and the profile file", .serialized)
struct CompletionAndProfileTests {
    /// Sources a completion script and asks its function (`_NAME`, as bash's
    /// `complete -F` would call it) to complete `line`; prints COMPREPLY.
    static let probe = """
    source "$1"
    COMP_LINE="$2"
    COMP_POINT=${#COMP_LINE}
    read -ra COMP_WORDS <<< "$COMP_LINE"
    [[ "$COMP_LINE" == *" " ]] && COMP_WORDS+=("")
    COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
    cur="${COMP_WORDS[COMP_CWORD]}"
    prev="${COMP_WORDS[COMP_CWORD - 1]}"
    "_$3" "$3" "$cur" "$prev"
    printf '%s\\n' "${COMPREPLY[@]}"
    """

    static func run(_ executable: String, _ arguments: [String], environment: [String: String]? = nil)
        async throws -> (status: Int32?, stdout: [String], transcript: String) {
        let child = try await ChildProcess(executable, arguments, environment: environment)
        child.closeStdin()
        let status = await child.waitForExit(timeout: 60)
        if status == nil { child.signal(SIGKILL) }
        return (status, child.stdoutLines, child.transcript)
    }

    @Test("relayctl, relay-pub and relay-sub print a bash completion script that bash -n accepts and that completes subcommands and options", arguments: [
        ("relayctl", "relayctl ", ["audit", "pki", "status", "reload", "backup"]),
        ("relayctl", "relayctl audit ", ["verify"]),
        ("relay-pub", "relay-pub --to", ["--topic"]),
        ("relay-sub", "relay-sub --for", ["--format"]),
    ])
    func bashCompletion(tool: String, line: String, expected: [String]) async throws {
        let directory = try TemporaryDirectory(prefix: "completion")
        defer { directory.remove() }
        let generated = try await Self.run(try ProductLocator.executable(tool), ["--generate-completion-script", "bash"])
        #expect(generated.status == 0, "\(generated.transcript)")
        let script = directory.file("\(tool).bash")
        try (generated.stdout.joined(separator: "\n") + "\n").write(toFile: script, atomically: true, encoding: .utf8)
        let syntax = try await Self.run("/bin/bash", ["-n", script])
        #expect(syntax.status == 0, "bash -n refused the script: \(syntax.transcript)")
        let probe = directory.file("probe.sh")
        try Self.probe.write(toFile: probe, atomically: true, encoding: .utf8)
        let completed = try await Self.run("/bin/bash", [probe, script, line, tool])
        #expect(completed.status == 0, "\(completed.transcript)")
        for word in expected {
            #expect(completed.stdout.contains(word), "completing \"\(line)\" does not offer \(word): \(completed.stdout)")
        }
    }

    @Test("a profile file alone configures relay-pub and relay-sub (relative paths from its folder); a garbled file, a missing profile or a missing file is a usage error (64) naming the file")
    func profileFileEndToEnd() async throws {
        try await withBroker { broker in
            let home = try TemporaryDirectory(prefix: "profile-home")
            defer { home.remove() }
            let folder = home.file(".config/relay")
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            for (source, name) in [(broker.pki.alice.certificate, "alice.pem"), (broker.pki.alice.key, "alice.key"),
                                   (broker.pki.ca.certificate, "ca.pem")] {
                try FileManager.default.copyItem(atPath: source, toPath: folder + "/" + name)
            }
            let profilePath = folder + "/client.toml"
            let profile = """
            [profile.default]
            server = "127.0.0.1:\(broker.port)"
            cert = "alice.pem"
            key = "alice.key"
            ca = "ca.pem"

            [profile.reader]
            server = "127.0.0.1:\(broker.port)"
            cert = "alice.pem"
            key = "alice.key"
            ca = "ca.pem"
            connect_timeout = 5
            """
            try profile.write(toFile: profilePath, atomically: true, encoding: .utf8)
            // Only the profile: no flags, and no RELAY_* variable from the test's own environment.
            let environment = ["HOME": home.path, "RELAY_SERVER": "", "RELAY_CERT": "", "RELAY_KEY": "", "RELAY_CA": "",
                               "RELAY_CONNECT_TIMEOUT": ""]
            let pub = try await Self.run(try ProductLocator.executable("relay-pub"),
                                         ["--topic", "profile.t", "--message", "from the profile"], environment: environment)
            #expect(pub.status == 0, "\(pub.transcript)")
            let sub = try await Self.run(try ProductLocator.executable("relay-sub"),
                                         ["--profile", "reader", "--topic", "profile.t", "--from", "earliest", "--count", "1",
                                          "--format", "raw"], environment: environment)
            #expect(sub.status == 0, "\(sub.transcript)")
            #expect(sub.stdout == ["from the profile"], "\(sub.transcript)")

            let refusals: [(profile: String, arguments: [String], says: [String])] = [
                ("[profile.default]\nserver = 127.0.0.1:7443\n", [], [profilePath, "line 2"]),
                (profile, ["--profile", "nosuch"], ["profile \"nosuch\" not found in \(profilePath)"]),
                ("[profile.default]\nserver = \"127.0.0.1:\(broker.port)\"\ncertificate = \"alice.pem\"\n", [],
                 [profilePath, "unknown key \"certificate\""]),
            ]
            for refusal in refusals {
                try refusal.profile.write(toFile: profilePath, atomically: true, encoding: .utf8)
                let run = try await Self.run(try ProductLocator.executable("relay-pub"),
                                             refusal.arguments + ["--topic", "profile.t", "--message", "x"], environment: environment)
                #expect(run.status == 64, "\(refusal.arguments): \(run.transcript)")
                for text in refusal.says {
                    #expect(run.transcript.contains(text), "\(refusal.arguments) does not say \(text): \(run.transcript)")
                }
            }
            try FileManager.default.removeItem(atPath: profilePath)
            let noFile = try await Self.run(try ProductLocator.executable("relay-pub"),
                                            ["--profile", "reader", "--topic", "profile.t", "--message", "x"], environment: environment)
            #expect(noFile.status == 64, "\(noFile.transcript)")
            #expect(noFile.transcript.contains("profile \"reader\" was requested but \(profilePath) cannot be read"), "\(noFile.transcript)")
        }
    }
}
