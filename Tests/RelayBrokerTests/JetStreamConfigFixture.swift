import Foundation
import RelayTestSupport
@testable import RelayBroker

/// A relay.toml with `[storage] backend` and a complete `[storage.jetstream]`
/// table (placeholder files, as only parsing runs), plus the caller's extra
/// lines in each table: the boilerplate the JetStream config suites share.
enum JetStreamConfigFixture {
    static func parse(storage: String = "", jetstream: String = "", backend: String = "jetstream") throws -> BrokerConfiguration {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        try dir.createPlaceholders(["server.crt", "server.key", "ca.crt"])
        let text = """
        [tls]
        certificate = "server.crt"
        private_key = "server.key"
        client_ca = "ca.crt"

        [storage]
        backend = "\(backend)"
        \(storage)

        [storage.jetstream]
        servers = ["tls://127.0.0.1:4222"]
        ca = "ca.crt"
        certificate = "server.crt"
        private_key = "server.key"
        \(jetstream)
        """
        // The section is refused without the jetstream backend (OperatorDeploymentTests): left out then.
        let section = backend == "jetstream" ? text : String(text[..<(text.range(of: "[storage.jetstream]")?.lowerBound ?? text.endIndex)])
        return try BrokerConfiguration.parse(section, file: dir.file("relay.toml"), baseDirectory: dir.path)
    }
}
