import Foundation
import Testing
import RelayTestSupport
@testable import RelayBroker

/// `[limits] max_durables`: 0, a negative number and one past the ceiling
/// are refused at load, naming the key and what it must be; both config
/// checks print that refusal and exit 78.
@Suite("Broker configuration: max_durables")
struct DurableLimitConfigTests {
    @Test("max_durables: default 1000; 0, -1 and 1000000 refused naming the key, the range and why")
    func values() throws {
        try withLimitsParser { parse in try durableValues(parse) }
    }

    private func durableValues(_ parse: (String) -> Result<BrokerConfiguration, ConfigError>) throws {
        #expect(try parse("").get().limits.maxDurablesPerOwner == 1_000)
        #expect(try parse("[limits]\nmax_durables = 1").get().limits.maxDurablesPerOwner == 1)
        #expect(try parse("[limits]\nmax_durables = 100000").get().limits.maxDurablesPerOwner == 100_000)
        for (value, words) in [("0", "would refuse every new durable"), ("-1", "would refuse every new durable"),
                               ("1000000", "above 100000"), ("\"1000\"", "expected an integer")] {
            guard case .failure(let error) = parse("[limits]\nmax_durables = \(value)") else {
                Issue.record("max_durables = \(value) was accepted")
                continue
            }
            #expect(error.key == "limits.max_durables" && error.message.contains(words), "\(value): \(error)")
            if value != "\"1000\"" { #expect(error.message.contains("1 to 100000"), "\(value): \(error)") }
        }
    }

    @Test("relayd --check-config and relayctl config check print the refusal of max_durables = 0 and exit 78")
    func checks() async throws {
        try await withRelayd(extra: "[limits]\nmax_durables = 0", start: false) { relayd in
            for (tool, arguments) in [("relayd", ["--check-config", "--config", relayd.configPath]),
                                      ("relayctl", ["config", "check", "--config", relayd.configPath])] {
                let child = try await ChildProcess(try ProductLocator.executable(tool), arguments)
                let status = await child.waitForExit(timeout: 30)
                let text = child.transcript
                print("\(tool) \(arguments.joined(separator: " ")) → \(status.map(String.init) ?? "none"):\n\(text)")
                #expect(status == 78, "\(tool): \(text)")
                #expect(text.contains("max_durables") && text.contains("would refuse every new durable"), "\(tool): \(text)")
            }
        }
    }
}

/// Runs `body` with a parser of a minimal config (placeholder TLS files)
/// plus the given `[limits]` text.
func withLimitsParser(_ body: ((String) -> Result<BrokerConfiguration, ConfigError>) throws -> Void) throws {
    let dir = try TemporaryDirectory(prefix: "relay-config-limits"); defer { dir.remove() }
    try dir.createPlaceholders(["server.crt", "server.key", "ca.crt"])
    let tls = "[tls]\ncertificate = \"server.crt\"\nprivate_key = \"server.key\"\nclient_ca = \"ca.crt\"\n"
    try body { limits in
        do throws(ConfigError) { return .success(try BrokerConfiguration.parse(tls + limits, file: dir.file("relay.toml"), baseDirectory: dir.path)) }
        catch { return .failure(error) }
    }
}
