import Foundation
import RelayTestSupport
@testable import RelayClient

/// Resolves client settings the way the CLIs do, with the connection files
/// given as flags, `flags` adjusted by the caller, `environment` as given,
/// and `profile` (when not nil) written as `[profile.default]` of a
/// temporary client.toml.
func resolveClientSettings(environment: [String: String] = [:], profile: String? = nil,
                           _ adjust: (inout ClientSettings.Overrides) -> Void) throws(ClientSettingsError) -> ClientSettings {
    var flags = ClientSettings.Overrides(server: "h:1", certificate: "/c", privateKey: "/k", ca: "/a")
    adjust(&flags)
    let dir = try? TemporaryDirectory(); defer { dir?.remove() }
    let path = dir?.file("client.toml") ?? "/nonexistent/client.toml"
    if let profile {
        try? "[profile.default]\n\(profile)\n".write(toFile: path, atomically: true, encoding: .utf8)
    }
    return try ClientSettings.resolve(flags: flags, environment: environment, profile: nil, profilePath: path)
}
