import Foundation
import Testing
@testable import RelayBroker

/// The shutdown closes the store only once the admin operations ended, or
/// after its bound. The wait is woken by the last ``AdminOperationsInFlight/ended()``:
/// the tests give it a deadline a minute away and need it back long before,
/// with no clock in the assertions (a waiter never woken returns false at its deadline).
@Suite("Admin operations in flight, broker-wide", .timeLimit(.minutes(2)))
struct AdminOperationsInFlightTests {
    /// Returns once `operations` has `count` waiters registered (an event: the
    /// waiter is parked, so ending the last operation now must wake it).
    private static func untilWaiting(_ operations: AdminOperationsInFlight, _ count: Int) async {
        while operations.waiting < count { await Task.yield() }
    }

    @Test("drained is true at once with none running, false at the bound with one running, true once it ended")
    func drainedWaitsForTheLast() async {
        let operations = AdminOperationsInFlight()
        #expect(await operations.drained(within: 0))
        #expect(await operations.drained(within: 60), "none runs: true at once, not at the bound")
        operations.started()
        operations.started()
        #expect(await operations.drained(within: 0.05) == false)
        #expect(operations.waiting == 0, "a waiter past its deadline is forgotten")
        operations.ended()
        #expect(operations.count == 1)
        let waiter = Task { await operations.drained(within: 60) }
        await Self.untilWaiting(operations, 1)
        operations.ended()
        #expect(await waiter.value, "the last end must wake the waiter before its deadline a minute away")
        #expect(operations.count == 0 && operations.waiting == 0)
    }

    @Test("the last of several operations wakes every waiter at once; an earlier end wakes none")
    func lastEndWakesEveryWaiter() async {
        let operations = AdminOperationsInFlight()
        for _ in 0..<3 { operations.started() }
        let waiters = (0..<4).map { _ in Task { await operations.drained(until: Date().addingTimeInterval(60)) } }
        await Self.untilWaiting(operations, 4)
        operations.ended()
        operations.ended()
        #expect(operations.waiting == 4, "woken before the last operation ended")
        operations.ended()
        for waiter in waiters { #expect(await waiter.value) }
        #expect(operations.waiting == 0)
    }

    @Test("a deadline that passes first answers false while the operation still runs; that operation's end later wakes no stale waiter")
    func deadlineFirst() async {
        let operations = AdminOperationsInFlight()
        operations.started()
        #expect(await operations.drained(until: Date().addingTimeInterval(-1)) == false, "a deadline already past")
        #expect(await operations.drained(within: 0.01) == false)
        #expect(operations.waiting == 0)
        operations.ended()
        #expect(await operations.drained(within: 60))
    }

    @Test("requestStop: the running operations see it, and so does one started after")
    func stopRequested() {
        let operations = AdminOperationsInFlight()
        operations.started()
        #expect(!operations.stopRequested)
        operations.requestStop()
        #expect(operations.stopRequested)
        operations.started()
        #expect(operations.stopRequested && operations.count == 2)
    }

    @Test("operations starting and ending on many threads while waiters come and go (for the TSan runs): every waiter returns true once all ended")
    func concurrentStartsAndEnds() async {
        let operations = AdminOperationsInFlight()
        operations.started()  // held until every worker ran, so waiters park
        let waiters = await withTaskGroup(of: Bool.self, returning: [Bool].self) { group in
            for worker in 0..<16 {
                group.addTask {
                    for _ in 0..<200 { operations.started(); operations.ended() }
                    return worker % 4 == 0 ? await operations.drained(within: 60) : true
                }
            }
            let early = (0..<4).map { _ in Task { await operations.drained(within: 60) } }
            await Self.untilWaiting(operations, 4)
            var results: [Bool] = []
            // The workers without a wait end first; then the held one ends.
            var finished = 0
            while finished < 12, let result = await group.next() { results.append(result); finished += 1 }
            operations.ended()
            for await result in group { results.append(result) }
            for waiter in early { results.append(await waiter.value) }
            return results
        }
        #expect(waiters.count == 20 && waiters.allSatisfy { $0 })
        #expect(operations.count == 0 && operations.waiting == 0)
    }
}
