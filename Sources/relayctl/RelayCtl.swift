import ArgumentParser
import Foundation
import RelayBroker
import RelayCLISupport
import RelayCore
import RelayPolicy
import RelayTLS

/// `relayctl`: operator tools for a Relay deployment.
struct RelayCtl: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "relayctl",
        abstract: "Operator tools for Relay: development PKI, config and policy checks, audit trail verification.",
        discussion: """
        Examples:
          relayctl pki init --dir ./pki
          relayctl pki issue --dir ./pki --cn reporting --ou analytics --days 30
          relayctl pki revoke --dir ./pki --serial 3F2A9C01
          relayctl config check --config config/relay.toml
          relayctl acl explain --config config/relay.toml --cert ./pki/billing.pem --publish orders.eu.created
          relayctl audit verify /var/lib/relay/audit.jsonl
        """,
        subcommands: [PKI.self, Config.self, ACL.self, Audit.self, Bench.self])
}

struct Config: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check broker configuration files.", subcommands: [Check.self])

    struct Check: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Parse a broker config and load everything it names (TLS material, CRLs, policy).",
            discussion: """
            Exit codes: 0 valid, 1 invalid (the reason names the file and key).

            Example:
              relayctl config check --config config/relay.toml
            """)

        @Option(name: .long, help: ArgumentHelp("The broker config (TOML).", valueName: "file"))
        var config: String

        func run() throws {
            do {
                let configuration = try BrokerConfiguration.load(path: config)
                try BrokerConfigurationCheck.deepCheck(configuration)
            } catch {
                printError("relayctl: \(config) is not valid: \(error)")
                throw ExitCode(1)
            }
            print("\(config): OK")
        }
    }
}

struct ACL: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "acl", abstract: "Explain the broker's access policy.", subcommands: [Explain.self])

    struct Explain: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show which rules match a certificate and whether it may publish or subscribe.",
            discussion: """
            Exit codes: 0 allowed, 1 denied, 2 the config or certificate cannot be read.

            Examples:
              relayctl acl explain --config relay.toml --cert billing.pem
              relayctl acl explain --config relay.toml --cert billing.pem --publish orders.eu.created --subscribe 'orders.>'
            """)

        @Option(name: .long, help: ArgumentHelp("The broker config (TOML).", valueName: "file"))
        var config: String

        @Option(name: .long, help: ArgumentHelp("The client certificate to explain, PEM.", valueName: "pem"))
        var cert: String

        @Option(name: .long, help: ArgumentHelp("Check a publish to this topic.", valueName: "topic"))
        var publish: String?

        @Option(name: .long, help: ArgumentHelp("Check a subscription with this filter.", valueName: "filter"))
        var subscribe: String?

        func run() throws {
            func usage(_ message: String) -> ExitCode {
                printError("relayctl: \(message)")
                return ExitCode(2)
            }
            let policy: Policy
            do {
                policy = try BrokerConfiguration.load(path: config).makePolicy()
            } catch {
                throw usage("cannot use \(config): \(error)")
            }
            guard let pem = try? String(contentsOfFile: cert, encoding: .utf8) else {
                throw usage("cannot read --cert \(cert); check the path and its permissions")
            }
            let identity: Identity
            do { identity = try Identity(pem: pem) } catch { throw usage("\(cert): \(error)") }
            var topic: Topic?
            var filter: TopicFilter?
            do {
                topic = try publish.map { try Topic($0) }
                filter = try subscribe.map { try TopicFilter($0) }
            } catch {
                throw usage("\(error)")
            }
            let explanation = policy.explain(identity, publish: topic, subscribe: filter)
            print(explanation.renderText())
            if explanation.exitCode != 0 { throw ExitCode(explanation.exitCode) }
        }
    }
}

struct Audit: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Work with the broker's audit trail.", subcommands: [Verify.self])

    struct Verify: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Verify an audit trail's hash chain.",
            discussion: """
            Exit codes: 0 every line verified, 1 the chain is broken (the first broken line is named) \
            or the file cannot be read.

            Example:
              relayctl audit verify /var/lib/relay/audit.jsonl
            """)

        @Argument(help: ArgumentHelp("The audit trail (JSON lines).", valueName: "file"))
        var file: String

        func run() throws {
            do {
                let report = try AuditVerifier.verify(path: file)
                print("\(file): \(report.lines) line(s) verified; the hash chain is intact (last hash \(report.lastHash))")
            } catch {
                printError("relayctl: \(file): \(error)")
                throw ExitCode(1)
            }
        }
    }
}
