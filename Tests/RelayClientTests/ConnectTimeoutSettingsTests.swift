import Foundation
import NIOCore
import RelayTestSupport
import Testing
@testable import RelayClient

/// `--connect-timeout` / `RELAY_CONNECT_TIMEOUT` / a profile's
/// `connect_timeout`: resolved like the other client settings, validated
/// with an error that names where the bad value came from.
@Suite("Client settings: connect timeout")
struct ConnectTimeoutSettingsTests {
    func resolve(flag: String? = nil, environment: [String: String] = [:], profile: String? = nil) throws(ClientSettingsError) -> ClientSettings {
        try resolveClientSettings(environment: environment, profile: profile) { $0.connectTimeout = flag }
    }

    @Test("flag beats environment beats profile; none given: nil (the library's 10 s)")
    func precedence() throws {
        #expect(try resolve().connectTimeout == nil)
        #expect(try resolve(profile: "connect_timeout = 7").connectTimeout == 7)
        // relayd's TOML reader takes no unquoted float: a fraction is quoted.
        #expect(try resolve(profile: "connect_timeout = \"0.5\"").connectTimeout == 0.5)
        #expect(try resolve(environment: ["RELAY_CONNECT_TIMEOUT": "3"], profile: "connect_timeout = 7").connectTimeout == 3)
        #expect(try resolve(flag: "1.5", environment: ["RELAY_CONNECT_TIMEOUT": "3"]).connectTimeout == 1.5)
        let configuration = try RelayClientConfiguration(settings: try resolve(flag: "2.5"))
        #expect(configuration.connectTimeout == .milliseconds(2500))
        let defaulted = try RelayClientConfiguration(settings: try resolve())
        #expect(defaulted.connectTimeout == .seconds(10))
    }

    @Test("0, negative, non-numeric, not finite or over an hour: an invalid-setting error naming the source", arguments: [
        "0", "-1", "abc", "3601", "nan", "inf", "", "1e9",
    ])
    func rejected(value: String) {
        let fromFlag = Result { () throws(ClientSettingsError) in try resolve(flag: value) }
        // An empty flag value counts as not given (as for the other settings).
        if value.isEmpty {
            #expect((try? fromFlag.get())?.connectTimeout == nil)
            return
        }
        guard case .failure(.invalid(let message)) = fromFlag else {
            Issue.record("--connect-timeout \(value) was accepted: \(fromFlag)")
            return
        }
        #expect(message.contains("--connect-timeout") && message.contains("3600"), "\(message)")
        let fromEnvironment = Result { () throws(ClientSettingsError) in
            try resolve(environment: ["RELAY_CONNECT_TIMEOUT": value])
        }
        guard case .failure(.invalid(let envMessage)) = fromEnvironment else {
            Issue.record("RELAY_CONNECT_TIMEOUT=\(value) was accepted: \(fromEnvironment)")
            return
        }
        #expect(envMessage.contains("RELAY_CONNECT_TIMEOUT"), "\(envMessage)")
    }

    @Test("a profile's connect_timeout that is not a positive number of seconds is refused, naming the key")
    func profileRejected() {
        for line in ["connect_timeout = 0", "connect_timeout = \"soon\"", "connect_timeout = 7200"] {
            let result = Result { () throws(ClientSettingsError) in try resolve(profile: line) }
            guard case .failure(.invalid(let message)) = result else {
                Issue.record("\(line) was accepted: \(result)")
                continue
            }
            #expect(message.contains("connect_timeout"), "\(message)")
        }
    }
}
