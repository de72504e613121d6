import Foundation
import Testing
@testable import RelayBroker

/// `[limits] live_buffer_budget`: a size from 1 MiB to 1 TiB; outside it
/// the config is refused at load, naming the key, the range and what it bounds.
@Suite("Broker configuration: live_buffer_budget")
struct LiveBufferBudgetConfigTests {
    @Test("live_buffer_budget: default 1GiB; 1MiB and 1TiB accepted; 0, 1023KiB, 2TiB and -1 refused")
    func values() throws {
        try withLimitsParser { parse in try budgetValues(parse) }
    }

    private func budgetValues(_ parse: (String) -> Result<BrokerConfiguration, ConfigError>) throws {
        #expect(try parse("").get().limits.liveBufferBudget == 1 << 30)
        #expect(try parse("[limits]\nlive_buffer_budget = \"1MiB\"").get().limits.liveBufferBudget == 1 << 20)
        #expect(try parse("[limits]\nlive_buffer_budget = \"1TiB\"").get().limits.liveBufferBudget == 1 << 40)
        for (value, words) in [("0", "outside 1MiB to 1TiB"), ("\"1023KiB\"", "outside 1MiB to 1TiB"),
                               ("\"2TiB\"", "outside 1MiB to 1TiB"), ("-1", "expected a size")] {
            guard case .failure(let error) = parse("[limits]\nlive_buffer_budget = \(value)") else {
                Issue.record("live_buffer_budget = \(value) was accepted")
                continue
            }
            #expect(error.key == "limits.live_buffer_budget" && error.message.contains(words), "\(value): \(error)")
        }
    }
}
