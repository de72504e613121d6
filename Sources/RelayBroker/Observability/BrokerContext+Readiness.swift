import Foundation

extension BrokerContext {
    /// Why `/readyz` answers 503, or nil when the broker is ready: it is
    /// shutting down, or the store refused its last commit (``StoreHealth``).
    public var notReadyReason: String? {
        guard isAccepting else { return "shutting down" }
        if let failure = storeHealth.failure {
            return "the store cannot commit (\(failure.code)) since \(LogTimestamp.format(failure.since)): \(failure.reason)"
        }
        return nil
    }
}
