import Foundation
import RelayTestSupport
import Testing

/// README "Command-line clients": `--generate-completion-script bash|zsh|fish` and
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

    /// Writes `tool --generate-completion-script SHELL` to `file` in
    /// `directory` and checks it with the shell's syntax check
    /// (`syntaxCheck`: the shell and its flag); returns the file's path.
    static func generatedScript(_ tool: String, shell: String, file: String, in directory: TemporaryDirectory,
                                syntaxCheck: [String]) async throws -> String {
        let generated = try await run(try ProductLocator.executable(tool), ["--generate-completion-script", shell])
        #expect(generated.status == 0, "\(generated.transcript)")
        let script = directory.file(file)
        try (generated.stdout.joined(separator: "\n") + "\n").write(toFile: script, atomically: true, encoding: .utf8)
        let syntax = try await run(syntaxCheck[0], Array(syntaxCheck.dropFirst()) + [script])
        #expect(syntax.status == 0, "\(syntaxCheck.joined(separator: " ")) refused the \(shell) script of \(tool): \(syntax.transcript)")
        return script
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
        let script = try await Self.generatedScript(tool, shell: "bash", file: "\(tool).bash", in: directory, syntaxCheck: ["/bin/bash", "-n"])
        let probe = directory.file("probe.sh")
        try Self.probe.write(toFile: probe, atomically: true, encoding: .utf8)
        let completed = try await Self.run("/bin/bash", [probe, script, line, tool])
        #expect(completed.status == 0, "\(completed.transcript)")
        for word in expected {
            #expect(completed.stdout.contains(word), "completing \"\(line)\" does not offer \(word): \(completed.stdout)")
        }
    }

    /// Drives an interactive zsh in a pseudo-terminal (zsh/zpty): `compinit`
    /// with the script's folder first in `fpath`, a `compadd` that prints
    /// each candidate it is given as `<<word>>`, a post-completion hook that
    /// prints an end mark, then the line and a TAB (`complete-word`); reads
    /// until the end mark (the event, no timer) and prints the candidates.
    /// Arguments: the folder holding `_TOOL`, the command line.
    static let zshProbe = """
    zmodload zsh/zpty || exit 2
    zpty z zsh -f -i
    zpty -w z "PROMPT= ; fpath=(${(q)1} \\$fpath); autoload -U compinit; compinit -u -D"
    zpty -w z 'compadd () { if [[ ${@[1,(i)(-|--)]} == *-(O|A|D)\\ * ]]; then builtin compadd "$@"; return $?; fi; typeset -a __hits; builtin compadd -A __hits "$@"; local h; for h in $__hits; do print -r -- "<<$h>>"; done }'
    zpty -w z '__end () { print -r -- "<<END""MARK>>" }; comppostfuncs=(__end)'
    zpty -w z "bindkey '^I' complete-word"
    zpty -w z "print READY""MARK"
    zpty -r z line '*READYMARK*' || exit 3
    zpty -w -n z "$2"$'\\t'
    zpty -r z output '*<<ENDMARK>>*' || exit 4
    zpty -d z
    print -r -- "$output" | sed -n 's/.*<<\\(.*\\)>>.*/\\1/p' | grep -v '^ENDMARK$'
    """

    static let completionCases: [(String, String, [String])] = [
        ("relayctl", "relayctl ", ["audit", "pki", "status", "reload", "backup"]),
        ("relayctl", "relayctl durable delete --ow", ["--owner"]),
        ("relay-pub", "relay-pub --to", ["--topic"]),
        ("relay-sub", "relay-sub --ke", ["--keepalive", "--key"]),
    ]

    @Test("relayctl, relay-pub and relay-sub print a zsh completion script that zsh -n accepts and that an interactive zsh uses to complete subcommands and options", arguments: completionCases)
    func zshCompletion(tool: String, line: String, expected: [String]) async throws {
        let directory = try TemporaryDirectory(prefix: "completion")
        defer { directory.remove() }
        // compinit finds a completion function by its file name, `_TOOL`, in fpath.
        _ = try await Self.generatedScript(tool, shell: "zsh", file: "_\(tool)", in: directory, syntaxCheck: ["/usr/bin/zsh", "-n"])
        let probe = directory.file("probe.zsh")
        try Self.zshProbe.write(toFile: probe, atomically: true, encoding: .utf8)
        let completed = try await Self.run("/usr/bin/zsh", ["-f", probe, directory.path, line])
        #expect(completed.status == 0, "\(completed.transcript)")
        for word in expected {
            #expect(completed.stdout.contains(word), "completing \"\(line)\" in zsh does not offer \(word): \(completed.stdout)")
        }
    }

    @Test("relayctl, relay-pub and relay-sub print a fish completion script that fish -n accepts and that fish's complete -C uses to complete subcommands and options", arguments: completionCases)
    func fishCompletion(tool: String, line: String, expected: [String]) async throws {
        let directory = try TemporaryDirectory(prefix: "completion")
        defer { directory.remove() }
        let script = try await Self.generatedScript(tool, shell: "fish", file: "\(tool).fish", in: directory,
                                                    syntaxCheck: ["/usr/bin/fish", "--no-execute"])
        // `complete -C LINE` prints the candidates, one per line, a tab before each description.
        let completed = try await Self.run("/usr/bin/fish", ["--no-config", "-c", "source $argv[1]; complete -C $argv[2]", script, line])
        #expect(completed.status == 0, "\(completed.transcript)")
        let words = completed.stdout.map { String($0.prefix { $0 != "\t" }) }
        for word in expected {
            #expect(words.contains(word), "completing \"\(line)\" in fish does not offer \(word): \(completed.stdout)")
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
