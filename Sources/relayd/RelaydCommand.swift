import ArgumentParser
import Foundation
import RelayCore
import Logging
import RelayBroker
import RelayCLISupport
import RelayStore
import RelayTLS

@main
struct RelaydCommand: AsyncParsableCommand {
    /// The CLIs' `main` (``CLIRunner/main(_:)``): ArgumentParser's statuses
    /// and messages, and the end through ``CLIRunner/end(_:)``: output
    /// flushed, then `_exit`, with no atexit handler or library finalizer.
    /// relayd has stopped its own threads by then, but not every library's
    /// (nats.c's on a cluster edge, dispatch's), and `exit` runs OpenSSL's
    /// atexit cleanup, which frees the locks such a thread may still take:
    /// the race that made relay-pub exit with SIGSEGV (CLIExitTests).
    /// It also ignores SIGPIPE: a write to a closed pipe (a log reader gone)
    /// fails with EPIPE instead of killing relayd.
    static func main() async {
        await CLIRunner.main(RelaydCommand.self)
    }

    static let configuration = CommandConfiguration(
        commandName: "relayd",
        abstract: "The Relay broker: mutual-TLS publish/subscribe with durable, identity-stamped messages.",
        discussion: """
        Examples:
          relayd --config config/relay.toml
          relayd --config config/relay.toml --listen 0.0.0.0:7443 --data-dir /var/lib/relay
          relayd --check-config --config config/relay.toml
          relayd --init --config /etc/relay/relay.toml     # first start: create the data directory

        A data directory that does not exist is refused (exit 66) unless --init is
        given, so a mistyped path never becomes a new, empty store.

        Exit status: 0 stopped cleanly; 1 failure after start, a listen or metrics
        port in use, or a stop that left the store open (an admin operation outlasted
        twice shutdown_grace); 64 usage; 66 a named file or directory missing or unreadable, a
        data directory relayd cannot write, or an audit trail its key does not
        verify; 75 the data directory or audit trail is in use by another relayd;
        78 invalid configuration.

        Signals: SIGTERM/SIGINT stop gracefully (in-flight commits finish, acks and admin replies are sent,
        for at most [limits] shutdown_grace, 10 s by default);
        SIGHUP reloads the config, certificates, CA bundles and CRLs.
        """,
        version: RelayVersion.description)

    @Option(name: .long, help: "The broker config file (TOML). See docs/configuration.md.")
    var config: String = "config/relay.toml"

    @Option(name: .long, help: "Override [server] listen, as HOST:PORT (port 0 picks a free port).")
    var listen: String?

    @Option(name: .customLong("data-dir"), help: "Override [storage] path.")
    var dataDir: String?

    @Flag(name: .customLong("check-config"), help: "Validate the config and the files it names, then exit.")
    var checkConfig = false

    @Flag(name: .customLong("init"), help: "Create the data directory if it does not exist (logged), then start. Without it a missing data directory is refused.")
    var initialize = false

    mutating func run() async throws {
        let loaded: BrokerConfiguration
        // Exit codes: RelayExit (docs/exit-codes.md); 66 no config file, 78 an invalid one, 64 a bad --listen or --data-dir.
        if let problem = CLIRunner.unreadableFileProblem(config, flag: "--config") {
            printError("relayd: cannot read the config file: \(problem)")
            throw RelayExit.noInput.exitCode
        }
        let parsed: BrokerConfiguration
        do {
            parsed = try BrokerConfiguration.load(path: config)
        } catch {  // typed throws: always a ConfigError
            printError("relayd: invalid configuration: \(error)")
            throw RelayExit.invalidConfiguration.exitCode
        }
        do {
            loaded = try parsed.applying(listen: listen, dataDirectory: dataDir)
        } catch {  // a bad --listen or --data-dir: the command line is wrong, not the file
            printError("relayd: \(error)")
            throw RelayExit.usage.exitCode
        }
        if checkConfig {
            do {
                try BrokerConfigurationCheck.deepCheck(loaded)
            } catch {
                printError("relayd: invalid configuration: \(error)")
                throw RelayExit.invalidConfiguration.exitCode
            }
            do {
                for note in try StartPathCheck.check(loaded) { printError("relayd: \(note)") }
            } catch {  // typed throws: a BrokerStartError, with the status the start would exit with
                printError("relayd: \(error)")
                throw ExitCode(error.exitCode)
            }
            for warning in SecurityWarnings.check(loaded) { printError("relayd: \(warning)") }
            print("relayd: configuration \(config) is valid")
            return
        }
        // The composition root: the one place that picks the message log
        // implementation (`[storage] backend`); the broker sees only `any MessageLog`.
        do {
            try await BrokerMain.run(configuration: loaded, overrides: (listen, dataDir), createDataDirectory: initialize,
                                     openLog: MessageLogChoice.factory(for: loaded.storage))
        } catch let failure as BrokerStartFailure {
            // Already logged, in the configured format; the status says which kind.
            throw ExitCode(Self.exitStatus(for: failure.underlying))
        } catch is BrokerStopFailure {
            // Logged: an admin operation outlasted the shutdown and the store was left open.
            throw ExitCode(RelayExit.failure.rawValue)
        }
    }

    /// The exit status of a failed start (the table is in the discussion above).
    static func exitStatus(for error: any Error) -> Int32 {
        switch error {
        case let refusal as BrokerStartError: return refusal.exitCode
        case AuditError.inUse: return RelayExit.inUse.rawValue
        case AuditError.cannotOpen, AuditError.badKey, AuditError.keyDoesNotVerify, AuditError.broken: return RelayExit.noInput.rawValue
        // TLS files the config names that do not load (key of another certificate, DER,
        // encrypted): invalid configuration, as --check-config says; 1 was retried by systemd.
        case is ConfigError, is TLSConfigurationError: return RelayExit.invalidConfiguration.rawValue
        // A store relayd cannot read: fix the data directory (66), not retry (1, restarted by systemd for ever).
        case StoreError.lmdbVersionMismatch, StoreError.schemaVersionMismatch, StoreError.corrupted: return RelayExit.noInput.rawValue
        default: return 1
        }
    }
}
