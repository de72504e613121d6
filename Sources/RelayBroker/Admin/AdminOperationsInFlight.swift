import Foundation
import NIOConcurrencyHelpers

/// The admin operations running now, broker-wide (each from authorization
/// to its last reply, a backup's thread included). A shutdown closes the
/// store only once none runs, or after its bound: the sessions stop waiting
/// for their ADMINs after their grace, but a purge still running then must
/// not find the store closed under its write transaction.
final class AdminOperationsInFlight: Sendable {
    private let running = NIOLockedValueBox(0)

    var count: Int { running.withLockedValue { $0 } }

    func started() { running.withLockedValue { $0 += 1 } }

    func ended() { running.withLockedValue { $0 -= 1 } }

    /// Waits until none runs or `timeout` passed; true when none runs. Only
    /// the shutdown calls it, once, so a short poll is simpler than waking
    /// waiters from ``ended()``.
    func drained(within timeout: TimeInterval) async -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while count > 0 {
            guard Date() < deadline else { return false }
            try? await Task.sleep(nanoseconds: 20_000_000)
        }
        return true
    }
}
