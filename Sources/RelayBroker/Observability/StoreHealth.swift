import Foundation
import Logging
import NIOConcurrencyHelpers
import RelayStore

/// Whether the message log can commit, as the last commit said. A commit
/// refused with `storage_full` or `storage_failure` makes the broker
/// not ready (`/readyz` answers 503 with the reason) until a later commit
/// succeeds: the broker stays up (reads, replays and cursor commits may
/// still work), but a load balancer or operator should send publishers
/// elsewhere. Each refused message is counted in
/// `relay_storage_failures_total{code}`, apart from policy refusals.
/// The log says it once per change (not per message: a full disk refuses
/// thousands a second).
public final class StoreHealth: Sendable {
    private let state = NIOLockedValueBox<(code: String, reason: String, since: Date)?>(nil)
    private let metrics: BrokerMetrics
    private let logger: Logger

    init(metrics: BrokerMetrics, logger: Logger) {
        self.metrics = metrics
        self.logger = logger
    }

    /// Why the store cannot commit, or nil while it can.
    public var failure: (code: String, reason: String, since: Date)? { state.withLockedValue { $0 } }

    /// Called with every append's results (on the writer's thread).
    func record(_ results: [Result<AppendReceipt, StoreError>]) {
        var firstFailure: StoreError?
        var failures = 0
        var successes = 0
        for result in results {
            switch result {
            case .success: successes += 1
            case .failure(let error):
                failures += 1
                if firstFailure == nil { firstFailure = error }
            }
        }
        if let error = firstFailure {
            metrics.storageFailures(code: error.relayErrorCode.name).increment(by: failures)
            // A replicated log without quorum (JetStream) reports that through
            // MessageLog.isAvailable, which its own probe clears when quorum
            // returns; a sticky failure here would only clear on a successful
            // commit, which /readyz then keeps clients from making.
            if case .unavailable = error { return }
            let code = error.relayErrorCode.name
            let changed = state.withLockedValue { current -> Bool in
                guard current?.code != code else { return false }
                current = (code, "\(error)", Date())
                return true
            }
            if changed {
                logger.error("the store cannot commit; publishes are refused and /readyz reports not ready",
                             metadata: ["code": "\(code)", "error": "\(error)"])
            }
        } else if successes > 0 {
            let recovered = state.withLockedValue { current -> (code: String, reason: String, since: Date)? in
                defer { current = nil }
                return current
            }
            if let recovered {
                logger.notice("the store commits again; /readyz reports ready",
                              metadata: ["after_code": "\(recovered.code)",
                                         "not_ready_seconds": "\(Int(Date().timeIntervalSince(recovered.since)))"])
            }
        }
    }
}
