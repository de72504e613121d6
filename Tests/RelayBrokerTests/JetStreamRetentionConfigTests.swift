import Foundation
import RelayTestSupport
import Testing
@testable import RelayBroker

/// docs/cluster.md, "What differs": the jetstream backend cannot apply a
/// per-topic `max_bytes` (JetStream keeps byte limits per stream), so a
/// config asking for one is refused at load, never run with the limit ignored.
@Suite("JetStream retention config")
struct JetStreamRetentionConfigTests {
    static let base = """
    [tls]
    certificate = "server.crt"
    private_key = "server.key"
    client_ca = "ca.crt"

    [storage]
    backend = "jetstream"

    [storage.jetstream]
    servers = ["tls://127.0.0.1:4222"]
    ca = "ca.crt"
    certificate = "server.crt"
    private_key = "server.key"
    """

    func parse(_ text: String) throws -> BrokerConfiguration {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        try dir.createPlaceholders(["server.crt", "server.key", "ca.crt"])
        return try BrokerConfiguration.parse(text, file: dir.file("relay.toml"), baseDirectory: dir.path)
    }

    @Test("a [[retention]] max_bytes with backend = \"jetstream\" is refused, naming the rule and what to use instead")
    func maxBytesRefused() throws {
        let text = Self.base + """

        [[retention]]
        filter = "logs.>"
        max_age = "7d"

        [[retention]]
        filter = "metrics.>"
        max_bytes = "1GiB"
        """
        do {
            let config = try parse(text)
            Issue.record("accepted, with retention \(config.retention)")
        } catch let error as ConfigError {
            #expect(error.key == "retention[1].max_bytes")
            #expect(error.message.contains("metrics.>"), "\(error)")
            #expect(error.message.contains("max_messages") && error.message.contains("max_size"), "\(error)")
        }
    }

    @Test("max_messages and max_age on jetstream, and max_bytes on lmdb, are accepted")
    func otherLimitsAccepted() throws {
        let jetstream = try parse(Self.base + "\n[[retention]]\nfilter = \"logs.>\"\nmax_messages = 100\nmax_age = \"1d\"\n")
        #expect(jetstream.retention.count == 1)
        // [storage.jetstream] is refused without the jetstream backend (OperatorDeploymentTests): cut it off.
        let storage = try #require(Self.base.range(of: "[storage.jetstream]"))
        let lmdbText = Self.base[..<storage.lowerBound].replacingOccurrences(of: "backend = \"jetstream\"", with: "backend = \"lmdb\"")
            + "\n[[retention]]\nfilter = \"logs.>\"\nmax_bytes = \"1GiB\"\n"
        let lmdb = try parse(lmdbText)
        #expect(lmdb.retention.first?.maxBytes == 1 << 30)
    }
}
