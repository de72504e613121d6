import Foundation
import RelayCore
import RelayStore

extension BrokerContext {
    /// Why `/readyz` answers 503, or nil when the broker is ready: it is
    /// shutting down, the message log is unavailable (a JetStream cluster
    /// without quorum, `MessageLog.isAvailable`), or the store refused its
    /// last commit (``StoreHealth``).
    public var notReadyReason: String? {
        guard isAccepting else { return "shutting down" }
        // A replicated log (JetStream) without quorum: publishes would fail.
        guard store.isAvailable else { return "the replicated log is unavailable (no quorum or no connection to NATS)" }
        // A replicated log's own probe says when it can commit again: a failed
        // commit of `storage_unavailable` does not hold /readyz at 503 after
        // that, or no client would be sent to make the commit that clears it.
        if let failure = storeHealth.failure,
           !(store is any AvailabilityReporting && failure.code == RelayErrorCode.storageUnavailable.name) {
            return "the store cannot commit (\(failure.code)) since \(LogTimestamp.format(failure.since)): \(failure.reason)"
        }
        return nil
    }
}
