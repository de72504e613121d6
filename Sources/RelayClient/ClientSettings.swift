import RelayCore
import Foundation
import TOMLKit

/// Where a CLI connects and with which certificate, resolved the same way
/// in every CLI: flags, then environment (`RELAY_SERVER`, `RELAY_CERT`,
/// `RELAY_KEY`, `RELAY_CA`, `RELAY_CONNECT_TIMEOUT`, `RELAY_KEEPALIVE`), then the chosen profile of
/// `~/.config/relay/client.toml` (`--profile NAME`, default `default`).
public struct ClientSettings: Equatable, Sendable {
    /// The broker, `HOST:PORT` (`[IPv6]:PORT` for an IPv6 literal).
    public var server: String
    /// The client certificate chain, a PEM file path.
    public var certificate: String
    /// The client certificate's private key, a PEM file path.
    public var privateKey: String
    /// The CA certificates that verify the broker, a PEM file path.
    public var ca: String
    /// How long a connection attempt may take in all (TCP, TLS, WELCOME), in
    /// seconds; nil: the library's default (``RelayClientConfiguration/connectTimeout``).
    public var connectTimeout: Double? = nil
    /// How long the connection may stay silent before the client checks it,
    /// in seconds, 0 for never; nil: the library's default
    /// (``RelayClientConfiguration/keepaliveInterval``).
    public var keepalive: Double? = nil

    /// The host and port of ``server``.
    public var hostAndPort: (host: String, port: Int)? {
        guard let colon = server.lastIndex(of: ":"), let port = Int(server[server.index(after: colon)...]),
              (1...65535).contains(port) else { return nil }
        var host = String(server[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        return host.isEmpty ? nil : (host, port)
    }

    /// The addresses of ``server``, a comma-separated list (`a:7443,b:7443`);
    /// nil when an element is empty or not `HOST:PORT`.
    public var serverAddresses: [ServerAddress]? { ServerAddress.parseList(server) }

    /// Settings given explicitly (flags, or the environment); nil: not given.
    public struct Overrides: Equatable, Sendable {
        /// See ``ClientSettings/server``.
        public var server: String?
        /// See ``ClientSettings/certificate``.
        public var certificate: String?
        /// See ``ClientSettings/privateKey``.
        public var privateKey: String?
        /// See ``ClientSettings/ca``.
        public var ca: String?
        /// See ``ClientSettings/connectTimeout``: seconds, as text (validated on resolving).
        public var connectTimeout: String?
        /// See ``ClientSettings/keepalive``: seconds, as text (validated on resolving).
        public var keepalive: String?

        /// Overrides; nothing given by default.
        public init(server: String? = nil, certificate: String? = nil, privateKey: String? = nil, ca: String? = nil,
                    connectTimeout: String? = nil, keepalive: String? = nil) {
            self.server = server
            self.certificate = certificate
            self.privateKey = privateKey
            self.ca = ca
            self.connectTimeout = connectTimeout
            self.keepalive = keepalive
        }
    }

    /// `~/.config/relay/client.toml` (from `HOME`).
    public static var defaultProfilePath: String {
        let home = ProcessInfo.processInfo.environment["HOME"] ?? NSHomeDirectory()
        return URL(fileURLWithPath: home).appendingPathComponent(".config/relay/client.toml").path
    }

    /// Resolves settings. A missing profile file is fine unless a profile was
    /// named explicitly; a missing setting is an error that lists all three
    /// ways to give it.
    public static func resolve(flags: Overrides, environment: [String: String], profile: String?,
                               profilePath: String = defaultProfilePath) throws(ClientSettingsError) -> ClientSettings {
        let env = Overrides(server: environment["RELAY_SERVER"], certificate: environment["RELAY_CERT"],
                            privateKey: environment["RELAY_KEY"], ca: environment["RELAY_CA"],
                            connectTimeout: environment["RELAY_CONNECT_TIMEOUT"], keepalive: environment["RELAY_KEEPALIVE"])
        let file = try loadProfile(named: profile, path: profilePath)
        func pick(_ keyPath: KeyPath<Overrides, String?>, flag: String, variable: String, key: String) throws(ClientSettingsError) -> String {
            if let v = flags[keyPath: keyPath], !v.isEmpty { return v }
            if let v = env[keyPath: keyPath], !v.isEmpty { return v }
            if let v = file[keyPath: keyPath], !v.isEmpty { return v }
            throw .missing("no \(key) given: pass \(flag), set \(variable), or add `\(key) = …` to profile \"\(profile ?? "default")\" in \(profilePath)")
        }
        let server = try pick(\.server, flag: "--server HOST:PORT", variable: "RELAY_SERVER", key: "server")
        let inProfile = "in profile \"\(profile ?? "default")\" of \(profilePath)"
        var connectTimeout: Double?
        for (value, source) in [(flags.connectTimeout, "--connect-timeout"), (env.connectTimeout, "RELAY_CONNECT_TIMEOUT"),
                                (file.connectTimeout, "connect_timeout \(inProfile)")]
        where connectTimeout == nil {
            if let value, !value.isEmpty { connectTimeout = try parseConnectTimeout(value, source: source) }
        }
        var keepalive: Double?
        for (value, source) in [(flags.keepalive, "--keepalive"), (env.keepalive, "RELAY_KEEPALIVE"), (file.keepalive, "keepalive \(inProfile)")]
        where keepalive == nil {
            if let value, !value.isEmpty { keepalive = try parseKeepalive(value, source: source) }
        }
        let settings = ClientSettings(
            server: server,
            certificate: try pick(\.certificate, flag: "--cert PEM", variable: "RELAY_CERT", key: "cert"),
            privateKey: try pick(\.privateKey, flag: "--key PEM", variable: "RELAY_KEY", key: "key"),
            ca: try pick(\.ca, flag: "--ca PEM", variable: "RELAY_CA", key: "ca"),
            connectTimeout: connectTimeout, keepalive: keepalive)
        guard settings.serverAddresses != nil else {
            throw .invalid("server \"\(server)\" is not HOST:PORT or a comma-separated list of them, with no empty element (for example 127.0.0.1:7443 or a:7443,b:7443)")
        }
        return settings
    }

    /// The longest connect timeout accepted: a value beyond it is a typo
    /// (milliseconds given as seconds), not a wait anyone means.
    public static let maximumConnectTimeout: Double = 3600

    /// Seconds, more than 0 and at most ``maximumConnectTimeout``; `source`
    /// names where the text came from (the flag, the variable, the profile key).
    static func parseConnectTimeout(_ text: String, source: String) throws(ClientSettingsError) -> Double {
        let limit = "a number of seconds more than 0 and at most \(Int(maximumConnectTimeout)) (for example 2 or 0.5)"
        guard let seconds = Double(text.trimmingCharacters(in: .whitespaces)), seconds.isFinite else {
            throw .invalid("\(source) \"\(text)\" is not a number of seconds; give \(limit)\(hint(source))")
        }
        guard seconds > 0, seconds <= maximumConnectTimeout else {
            throw .invalid("\(source) \(text) is out of range; give \(limit)\(hint(source))")
        }
        return seconds
    }

    /// The shortest keep-alive interval accepted: a check more often than
    /// ten times a second is a PING storm, not a setting anyone means.
    public static let minimumKeepalive: Double = 0.1

    /// Seconds: 0 (off), or from ``minimumKeepalive`` to
    /// ``maximumConnectTimeout`` (an hour); `source` as for the connect timeout.
    static func parseKeepalive(_ text: String, source: String) throws(ClientSettingsError) -> Double {
        let limit = "a number of seconds from 0.1 to 3600 (for example 5 or 0.5); 0 turns it off"
        guard let seconds = Double(text.trimmingCharacters(in: .whitespaces)), seconds.isFinite else {
            throw .invalid("\(source) \"\(text)\" is not a number of seconds; give \(limit)\(hint(source, flag: "--keepalive"))")
        }
        guard seconds == 0 || (seconds >= minimumKeepalive && seconds <= maximumConnectTimeout) else {
            throw .invalid("\(source) \(text) is out of range; give \(limit)\(hint(source, flag: "--keepalive"))")
        }
        return seconds
    }

    /// The flag is what a user of the environment variable or profile key
    /// searches the help for.
    private static func hint(_ source: String, flag: String = "--connect-timeout") -> String {
        source == flag ? "" : " (the setting behind \(flag))"
    }

    /// Reads `[profile.NAME]` (or a top-level `[NAME]`) from the profile file.
    static func loadProfile(named name: String?, path: String) throws(ClientSettingsError) -> Overrides {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            if let name { throw .invalid("profile \"\(name)\" was requested but \(path) cannot be read") }
            return Overrides()
        }
        // Constructs TOMLKit's parser would abort the process on (see TOMLPreflight).
        if let problem = TOMLPreflight.problem(in: text) {
            throw .invalid("\(path) line \(problem.line): \(problem.message)")
        }
        let table: TOMLTable
        do { table = try TOMLTable(string: text) } catch {
            throw .invalid("\(path) is not valid TOML: \(error)")
        }
        let wanted = name ?? "default"
        let section = table["profile"]?[wanted]?.table ?? table[wanted]?.table
        guard let section else {
            if name != nil { throw .invalid("profile \"\(wanted)\" not found in \(path); add a [profile.\(wanted)] table") }
            return Overrides()
        }
        let base = URL(fileURLWithPath: path).deletingLastPathComponent()
        func resolvedPath(_ key: String) -> String? {
            guard let value = section[key]?.string else { return nil }
            return value.hasPrefix("/") ? value : base.appendingPathComponent(value).standardizedFileURL.path
        }
        for key in section.keys where !["server", "cert", "key", "ca", "connect_timeout", "keepalive"].contains(key) {
            throw .invalid("\(path): profile \"\(wanted)\": unknown key \"\(key)\" (expected server, cert, key, ca, connect_timeout, keepalive)")
        }
        // A value of another type was read as absent: `server = 7443` gave "no server given".
        for key in ["server", "cert", "key", "ca"] {
            if let value = section[key], value.string == nil {
                throw .invalid("\(path): profile \"\(wanted)\": \(key) must be a quoted string, got \(value.type) \(value)")
            }
        }
        // connect_timeout and keepalive: a number (2, 0.5); any other value is
        // passed on as text so that resolving refuses it with the usual sentence.
        func seconds(_ key: String) -> String? {
            section[key].map { value in value.int.map(String.init) ?? value.double.map { String($0) } ?? value.string ?? "\(value)" }
        }
        return Overrides(server: section["server"]?.string, certificate: resolvedPath("cert"), privateKey: resolvedPath("key"),
                         ca: resolvedPath("ca"), connectTimeout: seconds("connect_timeout"), keepalive: seconds("keepalive"))
    }
}

/// Why ``ClientSettings/resolve(flags:environment:profile:profilePath:)`` failed;
/// the text says how to fix it.
public enum ClientSettingsError: Error, CustomStringConvertible, Equatable {
    /// A setting was given nowhere (the text lists the flag, variable and profile key).
    case missing(String)
    /// The profile file or a value in it is wrong.
    case invalid(String)

    /// The explanation, fit to print.
    public var description: String {
        switch self {
        case .missing(let m), .invalid(let m): return m
        }
    }
}
