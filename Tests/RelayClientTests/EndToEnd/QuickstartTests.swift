import Foundation
import RelayTestSupport
import Testing

/// The README's quickstart, run as a new user would: the commands are read
/// from README.md itself, so the README cannot drift from what works.
@Suite("README quickstart", .serialized)
struct QuickstartTests {
    static let repository = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()

    @Test("every command of the README quickstart works against relayd started from config/relay.toml, and make run prints them")
    func readmeQuickstart() async throws {
        let readme = try String(contentsOf: Self.repository.appendingPathComponent("README.md"), encoding: .utf8)
        let commands = Self.shellCommands(in: try #require(Self.section("## Quickstart", of: readme)))
            .filter { $0.hasPrefix(".build/release/") }
        #expect(commands.count >= 5, "the quickstart lost its commands: \(commands)")

        // `make run` prints exactly these commands (the ones it echoes).
        let makefile = try String(contentsOf: Self.repository.appendingPathComponent("Makefile"), encoding: .utf8)
        let printed = Self.commandsEchoed(by: makefile)
        #expect(!printed.isEmpty)
        for command in printed {
            #expect(commands.contains(command), "make run prints a command the README does not show: \(command)")
        }

        let (tree, relayd, port, metricsPort) = try await Self.startShippedBroker()
        defer { tree.remove(); relayd.signal(SIGKILL) }
        func local(_ command: String) -> String {
            command.replacingOccurrences(of: "127.0.0.1:7443", with: "127.0.0.1:\(port)")
        }

        // The subscriber first (in the background, bounded), then the rest in order.
        let subscribe = try #require(commands.first { $0.hasPrefix(".build/release/relay-sub") })
        let subscriber = try await ChildProcess("/bin/sh", ["-c", local(subscribe) + " --count 1 --timeout 60"], currentDirectory: tree.path)
        defer { subscriber.signal(SIGKILL) }
        // Publish only once relayd counts the subscription (else the message could
        // go by before it exists). Polled: the metric is the broker's only outside sign.
        _ = try await eventually(timeout: 60) {
            try await MetricsProbe.value(port: metricsPort, sample: "relay_subscriptions") ?? 0 >= 1 || !subscriber.isRunning
        }
        for command in commands where command != subscribe {
            // The quickstart shows a refusal on purpose: the payroll topic is outside the grant.
            let expected: Int32 = command.contains("payroll") ? 77 : 0
            let result = try await shell(local(command), in: tree.path)
            #expect(result.status == expected, "\(command)\n\(result.output)")
        }
        let subscriberStatus = await subscriber.waitForExit(timeout: 60)
        #expect(subscriberStatus == 0, "\(subscriber.transcript)")
        let printedLine = subscriber.stdoutLines.first ?? ""
        #expect(printedLine.contains("billing.billing-service.invoice") && printedLine.contains("from billing-service")
                && printedLine.hasSuffix("hello"), "\(subscriber.transcript)")
    }

    /// A fresh tree: config/relay.toml as shipped (metrics listener on a free
    /// port so a running broker on this machine cannot collide), a dev PKI made by
    /// relayctl as `make pki` does, the built products where the README says
    /// they are (and on PATH via bin/), and relayd started from it.
    static func startShippedBroker() async throws -> (TemporaryDirectory, ChildProcess, String, Int) {
        let tree = try TemporaryDirectory(prefix: "quickstart")
        let fm = FileManager.default
        try fm.createDirectory(atPath: tree.file("config"), withIntermediateDirectories: true)
        try fm.createDirectory(atPath: tree.file(".build/release"), withIntermediateDirectories: true)
        try fm.createDirectory(atPath: tree.file("bin"), withIntermediateDirectories: true)
        let shipped = try String(contentsOf: repository.appendingPathComponent("config/relay.toml"), encoding: .utf8)
        let config = shipped.replacingOccurrences(of: #"listen = "127.0.0.1:9464""#, with: #"listen = "127.0.0.1:0""#)
        #expect(config != shipped, "config/relay.toml no longer has the metrics listener this test turns off")
        try config.write(toFile: tree.file("config/relay.toml"), atomically: true, encoding: .utf8)
        for product in ["relayd", "relay-pub", "relay-sub", "relayctl"] {
            let built = try ProductLocator.executable(product)
            try fm.createSymbolicLink(atPath: tree.file(".build/release/\(product)"), withDestinationPath: built)
            try fm.createSymbolicLink(atPath: tree.file("bin/\(product)"), withDestinationPath: built)
        }
        let pki = try await shell(".build/release/relayctl pki init --dir dev/pki", in: tree.path)
        #expect(pki.status == 0, "\(pki.output)")
        let relayd = try await ChildProcess(tree.file(".build/release/relayd"),
                                      ["--init", "--config", "config/relay.toml", "--listen", "127.0.0.1:0"], currentDirectory: tree.path)
        guard let line = await relayd.waitForLine(timeout: 60, where: { RelaydLogLine.listeningPort($0) != nil }),
              let port = RelaydLogLine.listeningPort(line).map(String.init) else {
            relayd.signal(SIGKILL)
            throw QuickstartError.relaydDidNotStart(relayd.transcript)
        }
        guard let metrics = await relayd.waitForLine(timeout: 30, where: { RelaydLogLine.metricsPort($0) != nil }),
              let metricsPort = RelaydLogLine.metricsPort(metrics) else {
            relayd.signal(SIGKILL)
            throw QuickstartError.relaydDidNotStart(relayd.transcript)
        }
        return (tree, relayd, port, metricsPort)
    }

    @Test("the README's command-line examples run in order against the make run broker, every one exiting 0")
    func readmeCommandLineExamples() async throws {
        let readme = try String(contentsOf: Self.repository.appendingPathComponent("README.md"), encoding: .utf8)
        let lines = Self.shellCommands(in: try #require(Self.section("## Command-line clients", of: readme)))
        let exports = lines.filter { $0.hasPrefix("export ") }
        let commands = lines.filter { !$0.hasPrefix("export ") }
        #expect(exports.count == 2 && commands.count >= 7, "\(lines)")
        let (tree, relayd, port, _) = try await Self.startShippedBroker()
        defer { tree.remove(); relayd.signal(SIGKILL) }
        try "first line\nsecond line\n".write(toFile: tree.file("app.log"), atomically: true, encoding: .utf8)
        let prelude = (["export PATH=\"$PWD/bin:$PATH\""] + exports)
            .map { $0.replacingOccurrences(of: "127.0.0.1:7443", with: "127.0.0.1:\(port)") }
            .joined(separator: "; ")
        var outputs: [String: String] = [:]
        for command in commands {
            let result = try await shell(prelude + "; " + command, in: tree.path)
            #expect(result.status == 0, "\(command)\n\(result.output)")
            outputs[command] = result.output
        }
        // The JSON subscriber saw all three messages with the broker-stamped publisher.
        let json = try #require(outputs.first { $0.key.contains("--format json") }?.value)
        #expect(json.components(separatedBy: #""principal":"billing-service""#).count - 1 == 3, "\(json)")
        // The durable subscriber resumed after the two messages its first run acknowledged.
        let resumed = try #require(outputs.first { $0.key.contains("--count 1 --format raw") }?.value)
        #expect(resumed.contains("second line"), "\(resumed)")
    }

    // MARK: Reading the README and the Makefile

    /// The text from `heading` to the next heading of the same level.
    static func section(_ heading: String, of text: String) -> String? {
        guard let start = text.range(of: heading + "\n") else { return nil }
        let rest = text[start.upperBound...]
        let end = rest.range(of: "\n## ")?.lowerBound ?? rest.endIndex
        return String(rest[..<end])
    }

    /// Commands in ```sh blocks, with `\` continuations joined and spaces normalised.
    static func shellCommands(in text: String) -> [String] {
        var commands: [String] = []
        var inBlock = false
        var pending = ""
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("```") { inBlock = line == "```sh"; continue }
            guard inBlock else { continue }
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.hasSuffix("\\") {
                pending += trimmed.dropLast().trimmingCharacters(in: .whitespaces) + " "
            } else if !trimmed.isEmpty, !trimmed.hasPrefix("#") {
                commands.append(normalised(pending + trimmed))
                pending = ""
            }
        }
        return commands
    }

    /// The relay commands `make run` echoes before it starts relayd.
    static func commandsEchoed(by makefile: String) -> [String] {
        var commands: [String] = []
        var pending = ""
        for line in makefile.split(separator: "\n") {
            guard let open = line.range(of: "@echo \"")?.upperBound, line.hasSuffix("\"") else { continue }
            var text = String(line[open..<line.index(before: line.endIndex)]).trimmingCharacters(in: .whitespaces)
            if pending.isEmpty && !text.hasPrefix(".build/release/") { continue }
            if text.hasSuffix("\\\\") {
                text.removeLast(2)
                pending += text.trimmingCharacters(in: .whitespaces) + " "
            } else {
                commands.append(normalised(pending + text))
                pending = ""
            }
        }
        return commands
    }

    static func normalised(_ command: String) -> String {
        command.split(separator: " ", omittingEmptySubsequences: true).joined(separator: " ")
    }
}

enum QuickstartError: Error { case relaydDidNotStart(String) }

/// Runs a command line through /bin/sh in `directory`, as a user's shell would.
private func shell(_ command: String, in directory: String) async throws -> (status: Int32, output: String) {
    let child = try await ChildProcess("/bin/sh", ["-c", command], currentDirectory: directory)
    child.closeStdin()
    guard let status = await child.waitForExit(timeout: 60) else {
        child.signal(SIGKILL)
        return (-1, "timed out: \(command)\n\(child.transcript)")
    }
    return (status, child.transcript)
}
