import Testing
@testable import RelayBroker

/// The shutdown closes the store only once the admin operations ended, or after its bound.
@Suite("Admin operations in flight, broker-wide")
struct AdminOperationsInFlightTests {
    @Test("drained is true at once with none running, false at the bound with one running, true once it ended")
    func drainedWaitsForTheLast() async {
        let operations = AdminOperationsInFlight()
        #expect(await operations.drained(within: 0))
        operations.started()
        operations.started()
        #expect(await operations.drained(within: 0.05) == false)
        operations.ended()
        #expect(operations.count == 1)
        let waiter = Task { await operations.drained(within: 30) }
        operations.ended()
        #expect(await waiter.value)
        #expect(operations.count == 0)
    }
}
