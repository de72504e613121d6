import RelayCore
import Foundation
import TOMLKit

/// Where a CLI connects and with which certificate, resolved the same way
/// in every CLI: flags, then environment (`RELAY_SERVER`, `RELAY_CERT`,
/// `RELAY_KEY`, `RELAY_CA`), then the chosen profile of
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

        /// Overrides; nothing given by default.
        public init(server: String? = nil, certificate: String? = nil, privateKey: String? = nil, ca: String? = nil) {
            self.server = server
            self.certificate = certificate
            self.privateKey = privateKey
            self.ca = ca
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
                            privateKey: environment["RELAY_KEY"], ca: environment["RELAY_CA"])
        let file = try loadProfile(named: profile, path: profilePath)
        func pick(_ keyPath: KeyPath<Overrides, String?>, flag: String, variable: String, key: String) throws(ClientSettingsError) -> String {
            if let v = flags[keyPath: keyPath], !v.isEmpty { return v }
            if let v = env[keyPath: keyPath], !v.isEmpty { return v }
            if let v = file[keyPath: keyPath], !v.isEmpty { return v }
            throw .missing("no \(key) given: pass \(flag), set \(variable), or add `\(key) = …` to profile \"\(profile ?? "default")\" in \(profilePath)")
        }
        let server = try pick(\.server, flag: "--server HOST:PORT", variable: "RELAY_SERVER", key: "server")
        let settings = ClientSettings(
            server: server,
            certificate: try pick(\.certificate, flag: "--cert PEM", variable: "RELAY_CERT", key: "cert"),
            privateKey: try pick(\.privateKey, flag: "--key PEM", variable: "RELAY_KEY", key: "key"),
            ca: try pick(\.ca, flag: "--ca PEM", variable: "RELAY_CA", key: "ca"))
        guard settings.serverAddresses != nil else {
            throw .invalid("server \"\(server)\" is not HOST:PORT or a comma-separated list of them, with no empty element (for example 127.0.0.1:7443 or a:7443,b:7443)")
        }
        return settings
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
        for key in section.keys where !["server", "cert", "key", "ca"].contains(key) {
            throw .invalid("\(path): profile \"\(wanted)\": unknown key \"\(key)\" (expected server, cert, key, ca)")
        }
        return Overrides(server: section["server"]?.string, certificate: resolvedPath("cert"), privateKey: resolvedPath("key"), ca: resolvedPath("ca"))
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
