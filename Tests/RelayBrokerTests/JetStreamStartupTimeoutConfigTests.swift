import Testing
@testable import RelayBroker

/// `[storage.jetstream] startup_timeout`: how long relayd waits at start for
/// NATS to accept its stream (docs/configuration.md; JetStreamStartupTests
/// runs it against a real nats-server).
@Suite("JetStream startup_timeout config")
struct JetStreamStartupTimeoutConfigTests {
    @Test("startup_timeout defaults to 60 s, takes 0s (one attempt) and durations up to 24h, and refuses more or a non-duration")
    func startupTimeout() throws {
        #expect(try JetStreamConfigFixture.parse().storage.jetstream?.startupTimeoutNanos == 60_000_000_000)
        #expect(try JetStreamConfigFixture.parse(jetstream: "startup_timeout = \"0s\"").storage.jetstream?.startupTimeoutNanos == 0)
        #expect(try JetStreamConfigFixture.parse(jetstream: "startup_timeout = \"5m\"").storage.jetstream?.startupTimeoutNanos
            == 300_000_000_000)
        for bad in ["\"25h\"", "\"soon\"", "-1"] {
            do {
                let config = try JetStreamConfigFixture.parse(jetstream: "startup_timeout = \(bad)")
                Issue.record("accepted startup_timeout = \(bad): \(String(describing: config.storage.jetstream))")
            } catch let error as ConfigError {
                #expect(error.key == "storage.jetstream.startup_timeout", "\(error)")
            }
        }
    }
}
