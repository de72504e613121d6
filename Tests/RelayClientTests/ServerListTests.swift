import Foundation
import RelayTestSupport
import Testing
@testable import RelayClient

/// `--server a:1,b:2` (issue 20 item 4): a comma-separated list of brokers.
@Suite("Server address lists")
struct ServerListTests {
    func resolve(_ server: String) throws(ClientSettingsError) -> ClientSettings {
        try ClientSettings.resolve(flags: .init(server: server, certificate: "/c", privateKey: "/k", ca: "/ca"),
                                   environment: [:], profile: nil, profilePath: "/nonexistent")
    }

    @Test("a:1,b:2 gives two addresses, in order, and the library configuration keeps both")
    func twoAddresses() throws {
        let settings = try resolve("a:1,[::1]:2")
        #expect(settings.serverAddresses == [ServerAddress(host: "a", port: 1), ServerAddress(host: "::1", port: 2)])
        let configuration = try RelayClientConfiguration(settings: settings)
        #expect(configuration.servers == [ServerAddress(host: "a", port: 1), ServerAddress(host: "::1", port: 2)])
        // The single-address API still names the first.
        #expect(configuration.host == "a" && configuration.port == 1 && configuration.server == "a:1")
    }

    @Test("an empty element or a bad port is refused", arguments: ["a:1,", ",a:1", "a:1,,b:2", "a:1,b:0", "a:1,b:x", "a:1,b"])
    func refused(_ list: String) {
        #expect(throws: ClientSettingsError.self) { try resolve(list) }
    }

    @Test("the single-address initialiser is unchanged: one address")
    func singleAddress() {
        let configuration = RelayClientConfiguration(host: "127.0.0.1", port: 7443, certificatePath: "/c",
                                                     privateKeyPath: "/k", caPath: "/ca")
        #expect(configuration.servers == [ServerAddress(host: "127.0.0.1", port: 7443)])
    }
}
