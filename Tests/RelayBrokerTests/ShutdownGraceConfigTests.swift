import Foundation
import Testing
@testable import RelayBroker

/// `[limits] shutdown_grace`: a duration more than 0 and at most 1h; outside
/// it the config is refused at load, naming the key, the range and what it is.
@Suite("Broker configuration: shutdown_grace")
struct ShutdownGraceConfigTests {
    @Test("shutdown_grace: default 10s; 500ms and 1h accepted; 0s, 2h and a non-duration refused")
    func values() throws {
        try withLimitsParser { parse in try graceValues(parse) }
    }

    private func graceValues(_ parse: (String) -> Result<BrokerConfiguration, ConfigError>) throws {
        #expect(try parse("").get().limits.shutdownGraceNanos == 10_000_000_000)
        #expect(try parse("[limits]\nshutdown_grace = \"500ms\"").get().limits.shutdownGraceNanos == 500_000_000)
        #expect(try parse("[limits]\nshutdown_grace = \"1h\"").get().limits.shutdownGraceNanos == 3_600_000_000_000)
        let range = "more than 0 and at most 1h"
        for (value, words) in [("\"0s\"", range), ("\"2h\"", range), ("\"soon\"", "expected a duration")] {
            guard case .failure(let error) = parse("[limits]\nshutdown_grace = \(value)") else {
                Issue.record("shutdown_grace = \(value) was accepted")
                continue
            }
            #expect(error.key == "limits.shutdown_grace" && error.message.contains(words), "\(value): \(error)")
        }
        guard case .failure(let long) = parse("[limits]\nshutdown_grace = \"2h\"") else {
            Issue.record("shutdown_grace = \"2h\" was accepted")
            return
        }
        #expect(long.message.contains("TimeoutStopSec"), "\(long)")
    }
}
