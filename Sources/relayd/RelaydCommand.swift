import ArgumentParser
import Foundation
import Logging
import RelayBroker
import RelayStore

@main
struct RelaydCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "relayd",
        abstract: "The Relay broker: mutual-TLS publish/subscribe with durable, identity-stamped messages.",
        discussion: """
        Examples:
          relayd --config config/relay.toml
          relayd --config config/relay.toml --listen 0.0.0.0:7443 --data-dir /var/lib/relay
          relayd --check-config --config config/relay.toml

        Signals: SIGTERM/SIGINT stop gracefully (in-flight commits finish, acks are sent);
        SIGHUP reloads the config, certificates, CA bundles and CRLs.
        """)

    @Option(name: .long, help: "The broker config file (TOML). See docs/configuration.md.")
    var config: String = "config/relay.toml"

    @Option(name: .long, help: "Override [server] listen, as HOST:PORT (port 0 picks a free port).")
    var listen: String?

    @Option(name: .customLong("data-dir"), help: "Override [storage] path.")
    var dataDir: String?

    @Flag(name: .customLong("check-config"), help: "Validate the config and the files it names, then exit.")
    var checkConfig = false

    mutating func run() async throws {
        let loaded: BrokerConfiguration
        do {
            loaded = try BrokerConfiguration.load(path: config).applying(listen: listen, dataDirectory: dataDir)
        } catch {  // typed throws: always a ConfigError
            FileHandle.standardError.write(Data("relayd: invalid configuration: \(error)\n".utf8))
            throw ExitCode(2)
        }
        if checkConfig {
            do {
                try BrokerConfigurationCheck.deepCheck(loaded)
            } catch {
                FileHandle.standardError.write(Data("relayd: invalid configuration: \(error)\n".utf8))
                throw ExitCode(2)
            }
            for warning in SecurityWarnings.check(loaded) { FileHandle.standardError.write(Data("relayd: \(warning)\n".utf8)) }
            print("relayd: configuration \(config) is valid")
            return
        }
        // The composition root: the one place that picks the message log
        // implementation (`[storage] backend`); the broker sees only `any MessageLog`.
        do {
            try await BrokerMain.run(configuration: loaded, overrides: (listen, dataDir),
                                     openLog: MessageLogChoice.factory(for: loaded.storage))
        } catch is BrokerStartFailure {
            throw ExitCode.failure  // already logged, in the configured format
        }
    }
}
