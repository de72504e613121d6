import Foundation
import NIOCore
import RelayTestSupport
import Testing
@testable import RelayClient

/// `--keepalive` / `RELAY_KEEPALIVE` / a profile's `keepalive`: the
/// library's ``RelayClientConfiguration/keepaliveInterval`` for the CLIs,
/// resolved like the other client settings (flag, environment, profile),
/// 0 turning it off, and bad values refused naming where they came from.
@Suite("Client settings: keep-alive interval")
struct KeepaliveSettingsTests {
    func resolve(flag: String? = nil, environment: [String: String] = [:], profile: String? = nil) throws(ClientSettingsError) -> ClientSettings {
        try resolveClientSettings(environment: environment, profile: profile) { $0.keepalive = flag }
    }

    @Test("flag beats environment beats profile; none given: nil, and the library's 15 s stays")
    func precedence() throws {
        #expect(try resolve().keepalive == nil)
        #expect(try resolve(profile: "keepalive = 30").keepalive == 30)
        #expect(try resolve(profile: "keepalive = \"0.5\"").keepalive == 0.5)
        #expect(try resolve(environment: ["RELAY_KEEPALIVE": "5"], profile: "keepalive = 30").keepalive == 5)
        #expect(try resolve(flag: "2.5", environment: ["RELAY_KEEPALIVE": "5"]).keepalive == 2.5)
        let configuration = try RelayClientConfiguration(settings: try resolve(flag: "2.5"))
        #expect(configuration.keepaliveInterval == .milliseconds(2500))
        let defaulted = try RelayClientConfiguration(settings: try resolve())
        #expect(defaulted.keepaliveInterval == .seconds(15))
    }

    @Test("0 turns the keep-alive off (the library's .zero), from the flag, the environment or the profile")
    func zeroTurnsItOff() throws {
        for settings in [try resolve(flag: "0"), try resolve(environment: ["RELAY_KEEPALIVE": "0"]), try resolve(profile: "keepalive = 0")] {
            #expect(settings.keepalive == 0)
            let configuration = try RelayClientConfiguration(settings: settings)
            #expect(configuration.keepaliveInterval == .zero)
        }
    }

    @Test("negative, non-numeric, not finite or over an hour: an invalid-setting error naming the source", arguments: [
        "-1", "abc", "3601", "nan", "inf", "1e9", "0.0001",
    ])
    func rejected(value: String) {
        let fromFlag = Result { () throws(ClientSettingsError) in try resolve(flag: value) }
        guard case .failure(.invalid(let message)) = fromFlag else {
            Issue.record("--keepalive \(value) was accepted: \(fromFlag)")
            return
        }
        #expect(message.contains("--keepalive") && message.contains("3600") && message.contains("0 turns it off"), "\(message)")
        let fromEnvironment = Result { () throws(ClientSettingsError) in try resolve(environment: ["RELAY_KEEPALIVE": value]) }
        guard case .failure(.invalid(let envMessage)) = fromEnvironment else {
            Issue.record("RELAY_KEEPALIVE=\(value) was accepted: \(fromEnvironment)")
            return
        }
        #expect(envMessage.contains("RELAY_KEEPALIVE") && envMessage.contains("--keepalive"), "\(envMessage)")
    }

    @Test("a profile's keepalive that is not a number of seconds in range is refused, naming the key")
    func profileRejected() {
        for line in ["keepalive = -3", "keepalive = \"often\"", "keepalive = 7200"] {
            let result = Result { () throws(ClientSettingsError) in try resolve(profile: line) }
            guard case .failure(.invalid(let message)) = result else {
                Issue.record("\(line) was accepted: \(result)")
                continue
            }
            #expect(message.contains("keepalive in profile"), "\(message)")
        }
    }
}
