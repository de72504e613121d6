import Foundation
import NIOConcurrencyHelpers

/// The admin operations running now, broker-wide (each from authorization
/// to its last reply, a backup's thread included). A shutdown closes the
/// store only once none runs: the sessions wait for their ADMINs for the
/// grace, then the broker asks the operations still running to stop
/// (``requestStop()``: a purge rolls back at its next check, a backup ends)
/// and waits for them up to its bound; past that it leaves the store open
/// rather than close it under a write transaction (docs/operations.md,
/// "Stopping relayd").
final class AdminOperationsInFlight: Sendable {
    private struct State {
        var running = 0
        var stopRequested = false
        var nextWaiter = 0
        /// The shutdown's waits; each is resumed once, by the last ``ended()``
        /// (true) or by its deadline (false), whichever takes it out first.
        var waiters: [Int: CheckedContinuation<Bool, Never>] = [:]
        /// The waiters' deadline timers, cancelled when the last one ended.
        var timers: [Int: Task<Void, Never>] = [:]
    }

    private let state = NIOLockedValueBox(State())

    var count: Int { state.withLockedValue { $0.running } }

    /// How many ``drained(until:)`` calls wait now (tests wait for their waiter to park).
    var waiting: Int { state.withLockedValue { $0.waiters.count } }

    /// Set by a shutdown whose grace ended: a running operation stops at its
    /// next check and answers `server_shutting_down`.
    var stopRequested: Bool { state.withLockedValue { $0.stopRequested } }

    func started() { state.withLockedValue { $0.running += 1 } }

    /// One operation ended; the last one wakes every waiter.
    func ended() {
        let (woken, timers) = state.withLockedValue { state in
            state.running -= 1
            guard state.running == 0 else { return ([CheckedContinuation<Bool, Never>](), [Task<Void, Never>]()) }
            defer { state.waiters.removeAll(); state.timers.removeAll() }
            return (Array(state.waiters.values), Array(state.timers.values))
        }
        for timer in timers { timer.cancel() }
        for waiter in woken { waiter.resume(returning: true) }
    }

    /// Asks the running operations, and any that starts after, to stop.
    func requestStop() { state.withLockedValue { $0.stopRequested = true } }

    /// Waits until none runs (true, as soon as the last one ends) or
    /// `deadline` came first (false, whatever runs then).
    func drained(until deadline: Date) async -> Bool {
        let id: Int? = state.withLockedValue { state in
            guard state.running > 0 else { return nil }
            defer { state.nextWaiter += 1 }
            return state.nextWaiter
        }
        guard let id else { return true }
        return await withCheckedContinuation { (continuation: CheckedContinuation<Bool, Never>) in
            let registered = state.withLockedValue { state -> Bool in
                // The last one may have ended since the count was read.
                guard state.running > 0 else { return false }
                state.waiters[id] = continuation
                return true
            }
            guard registered else { return continuation.resume(returning: true) }
            let delay = max(0, deadline.timeIntervalSinceNow)
            let timer = Task { [state] in
                try? await Task.sleep(nanoseconds: UInt64(min(delay, 86_400) * 1e9))
                // Nil when ``ended()`` took it out (and resumed it) first.
                let expired = state.withLockedValue { state in
                    state.timers[id] = nil
                    return state.waiters.removeValue(forKey: id)
                }
                expired?.resume(returning: false)
            }
            state.withLockedValue { state in
                // Only while its waiter still waits (else it ends by itself).
                if state.waiters[id] != nil { state.timers[id] = timer }
            }
        }
    }

    /// ``drained(until:)`` from now.
    func drained(within timeout: TimeInterval) async -> Bool {
        await drained(until: Date().addingTimeInterval(timeout))
    }
}
