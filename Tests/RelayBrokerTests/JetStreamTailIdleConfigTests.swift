import Testing
@testable import RelayBroker

/// `[storage.jetstream] tail_idle`: how long an edge keeps following the
/// stream after its last subscription ended (docs/configuration.md).
@Suite("JetStream tail_idle config")
struct JetStreamTailIdleConfigTests {
    @Test("tail_idle defaults to 10s; 0s, 250ms and 24h are taken as written")
    func accepted() throws {
        #expect(try JetStreamConfigFixture.parse().storage.jetstream?.tailIdleNanos == 10_000_000_000)
        for (text, nanos) in [("0s", Int64(0)), ("250ms", 250_000_000), ("24h", 86_400_000_000_000)] {
            let config = try JetStreamConfigFixture.parse(jetstream: "tail_idle = \"\(text)\"")
            #expect(config.storage.jetstream?.tailIdleNanos == nanos, "tail_idle = \(text)")
        }
    }

    @Test("a tail_idle over 24h, negative or not a duration is refused, naming the key")
    func refused() throws {
        for value in ["\"25h\"", "-1", "\"soon\"", "true"] {
            do {
                let config = try JetStreamConfigFixture.parse(jetstream: "tail_idle = \(value)")
                Issue.record("accepted tail_idle = \(value): \(String(describing: config.storage.jetstream?.tailIdleNanos))")
            } catch let error as ConfigError {
                #expect(error.key == "storage.jetstream.tail_idle", "\(error)")
            }
        }
    }
}
