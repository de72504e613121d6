import Foundation

extension BrokerContext {
    /// Why `/readyz` answers 503, or nil when the broker is ready: it is
    /// shutting down, the message log is unavailable (a JetStream cluster
    /// without quorum, `MessageLog.isAvailable`), or the store refused its
    /// last commit (``StoreHealth``).
    public var notReadyReason: String? {
        guard isAccepting else { return "shutting down" }
        guard store.isAvailable else { return "the message log is unavailable (JetStream: no quorum or no stream leader)" }
        if let failure = storeHealth.failure {
            return "the store cannot commit (\(failure.code)) since \(LogTimestamp.format(failure.since)): \(failure.reason)"
        }
        return nil
    }
}
