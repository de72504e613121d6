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
        abstract: "Operator tools for Relay: development PKI, config and policy checks, audit trail verification, and the admin surface of a running broker.",
        discussion: """
        Examples:
          relayctl pki init --dir ./pki
          relayctl pki issue --dir ./pki --cn reporting --ou analytics --days 30
          relayctl pki revoke --dir ./pki --serial 3F2A9C01
          relayctl config check --config config/relay.toml
          relayctl acl explain --config config/relay.toml --cert ./pki/billing.pem --publish orders.eu.created
          relayctl audit verify --config config/relay.toml
          relayctl status --server broker:7443 --cert ops.pem --key ops.key --ca ca.pem   (needs admin = ["read"])
        """,
        subcommands: [PKI.self, Config.self, ACL.self, Audit.self, Bench.self,
                      // The admin surface over the broker's mTLS port (AdminListCommands.swift, …).
                      Status.self, Connections.self, Subscriptions.self, Durables.self, Topics.self, Durable.self,
                      Purge.self, Disconnect.self, Backup.self, Reload.self, Top.self])
}

struct Config: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check broker configuration files.", subcommands: [Check.self])

    struct Check: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Parse a broker config and load everything it names (TLS material, CRLs, policy).",
            discussion: """
            Exit codes: 0 valid, 1 invalid (the reason names the file and key). Warnings (a private key or \
            audit key others can read, a data directory others can open, metrics on every interface) are \
            printed to stderr and do not change the exit code.

            Example:
              relayctl config check --config config/relay.toml
            """)

        @Option(name: .long, help: ArgumentHelp("The broker config (TOML).", valueName: "file"))
        var config: String

        func run() throws {
            do {
                let configuration = try BrokerConfiguration.load(path: config)
                try BrokerConfigurationCheck.deepCheck(configuration)
                // Exposure warnings do not make the config invalid (exit 0), but are printed.
                for warning in SecurityWarnings.check(configuration) { printError("relayctl: \(warning)") }
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
            abstract: "Verify an audit trail's keyed chain, its rotated files and its checkpoint.",
            discussion: """
            Needs the key relayd writes the trail with (audit.key_file; by default audit.key in the data \
            directory): pass --key, or --config to take the trail and the key from the broker config.
            Exit codes: 0 every line verified, 1 the chain is broken (the first broken line is named), \
            the end was cut (the checkpoint is ahead of the trail), relayd recorded a loss, or a file \
            cannot be read.

            Examples:
              relayctl audit verify --key /etc/relay/audit.key /var/log/relay/audit.jsonl
              relayctl audit verify --config /etc/relay/relay.toml
            """)

        @Argument(help: ArgumentHelp("The audit trail (JSON lines); its rotated files <file>.NNNNNN are walked first.", valueName: "file"))
        var file: String?

        @Option(name: .long, help: ArgumentHelp("The audit key file (hex).", valueName: "file"))
        var key: String?

        @Option(name: .long, help: ArgumentHelp("Take the trail and key paths from this broker config.", valueName: "file"))
        var config: String?

        @Flag(name: .customLong("no-checkpoint"), help: "Accept a trail without its checkpoint (a cut end then goes unnoticed).")
        var noCheckpoint = false

        func run() throws {
            var trail = file
            var keyFile = key
            if let config {
                do {
                    let loaded = try BrokerConfiguration.load(path: config)
                    trail = trail ?? loaded.audit.path
                    keyFile = keyFile ?? loaded.auditKeyFile
                } catch {
                    printError("relayctl: \(error)")
                    throw ExitCode(1)
                }
            }
            guard let trail, let keyFile else {
                printError("relayctl: pass the trail and --key (or --config); the key is audit.key_file in the broker config")
                throw ExitCode(1)
            }
            do {
                let report = try AuditVerifier.verify(path: trail, key: try AuditKey.load(path: keyFile),
                                                      requireCheckpoint: !noCheckpoint)
                for notice in report.notices { print("notice: \(notice)") }
                for loss in report.recordedLosses { printError("relayctl: loss: \(loss)") }
                print("\(trail): \(report.lines) line(s) in \(report.files.count) file(s) verified (seq \(report.firstSeq)…\(report.lastSeq)); "
                      + "the keyed chain is intact (last mac \(report.lastMAC))")
                if !report.recordedLosses.isEmpty { throw ExitCode(1) }
            } catch let exit as ExitCode {
                throw exit
            } catch {
                printError("relayctl: \(trail): \(error)")
                throw ExitCode(1)
            }
        }
    }
}
