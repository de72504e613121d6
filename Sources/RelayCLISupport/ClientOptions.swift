import ArgumentParser
import Foundation
import RelayClient
import RelayCore

/// The options every client CLI shares. Each is resolved as: flag, then
/// environment (`RELAY_SERVER`, `RELAY_CERT`, `RELAY_KEY`, `RELAY_CA`,
/// `RELAY_CONNECT_TIMEOUT`), then the profile in `~/.config/relay/client.toml`.
/// relay-pub and relay-sub add ``KeepaliveOption``.
public struct ClientOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("The broker, HOST:PORT, or several edges HOST:PORT,HOST:PORT tried in turn (env RELAY_SERVER).", valueName: "host:port[,host:port]"))
    public var server: String?

    @Option(name: .customLong("cert"), help: ArgumentHelp("This client's certificate, PEM (env RELAY_CERT).", valueName: "pem"))
    public var certificate: String?

    @Option(name: .long, help: ArgumentHelp("This client's private key, PEM (env RELAY_KEY).", valueName: "pem"))
    public var key: String?

    @Option(name: .long, help: ArgumentHelp("The CA that issued the broker's certificate, PEM (env RELAY_CA).", valueName: "pem"))
    public var ca: String?

    @Option(name: .long, help: ArgumentHelp("How long one connection attempt may take in all: TCP, TLS handshake and the broker's WELCOME; more than 0, at most 3600 (env RELAY_CONNECT_TIMEOUT; default 10).", valueName: "seconds"))
    public var connectTimeout: String?

    @Option(name: .long, help: ArgumentHelp("A [profile.NAME] of ~/.config/relay/client.toml (default: default).", valueName: "name"))
    public var profile: String?

    public init() {}

    /// Resolves flags, environment and profile into a library configuration;
    /// `keepalive` is ``KeepaliveOption``'s flag, for the CLIs that keep a
    /// connection open (relayctl's requests do not take it; a profile's
    /// `keepalive` key is then unused).
    public func configuration(clientName: String, keepalive: String? = nil) throws(RelayClientError) -> RelayClientConfiguration {
        let settings: ClientSettings
        do {
            settings = try ClientSettings.resolve(
                flags: .init(server: server, certificate: certificate, privateKey: key, ca: ca, connectTimeout: connectTimeout,
                             keepalive: keepalive),
                environment: ProcessInfo.processInfo.environment, profile: profile)
        } catch {
            throw RelayClientError(category: .usage, message: error.description)
        }
        let files = [(settings.certificate, certificate, "--cert", "RELAY_CERT", "cert"), (settings.privateKey, key, "--key", "RELAY_KEY", "key"),
                     (settings.ca, ca, "--ca", "RELAY_CA", "ca")]
        for (path, flagValue, flag, variable, profileKey) in files where !FileManager.default.isReadableFile(atPath: path) {
            let exists = FileManager.default.fileExists(atPath: path)
            // Name where the path came from, as `resolve` picked it: flag, environment, then profile.
            let named: String
            if let flagValue, !flagValue.isEmpty {
                named = "\(flag) \(path)"
            } else if let value = ProcessInfo.processInfo.environment[variable], !value.isEmpty {
                named = "\(variable) \(path)"
            } else {
                named = "\(profileKey) in profile \"\(profile ?? "default")\" of \(ClientSettings.defaultProfilePath) (\(path))"
            }
            throw RelayClientError(category: .usage, message: "\(named) \(exists ? "cannot be read; check its permissions" : "does not exist; check the path")",
                                   exitCode: RelayExit.noInput.rawValue)
        }
        var configuration = try RelayClientConfiguration(settings: settings)
        configuration.clientName = clientName
        configuration.reconnect = ReconnectPolicy(retryInitialConnection: false, maximumDelay: .seconds(2))
        return configuration
    }
}

/// `--keepalive SECONDS` (env `RELAY_KEEPALIVE`, profile key `keepalive`):
/// the library's ``RelayClientConfiguration/keepaliveInterval``, for relay-pub
/// and relay-sub, whose connections stay open.
public struct KeepaliveOption: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("After this long without a byte from the broker, send PING; after as long again, take the connection as lost and reconnect (a silent network path is found 2 to 3 intervals after the last byte). 0 turns it off; 0.1 to 3600 (env RELAY_KEEPALIVE; default 15).", valueName: "seconds"))
    public var keepalive: String?

    public init() {}
}
