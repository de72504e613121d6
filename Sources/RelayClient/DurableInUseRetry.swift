/// The broker refused a durable subscription as attached to another
/// connection (`durable_in_use`), and the client will send the SUB again.
///
/// The holder may be a connection of this same client that the broker has
/// not yet seen die (a reconnect), so the client retries, with backoff, before
/// it reports the refusal; but a user who started a second subscriber of the
/// same durable should hear about it at once, not after the retries.
/// ``RelayClientConfiguration/onDurableInUse`` receives one of these per refusal.
/// Superseded by ``SubscribeRetry`` (``RelayClientConfiguration/onSubscribeRetry``),
/// which reports every retried refusal with its code; kept for source compatibility.
public struct DurableInUseRetry: Sendable, Hashable, CustomStringConvertible {
    /// The subscription's filter.
    public var filter: String
    /// The durable name the broker refused.
    public var durableName: String
    /// This retry's number, from 1.
    public var attempt: Int
    /// How many retries the client makes before it reports the refusal.
    public var attempts: Int
    /// When the SUB goes out again.
    public var retryIn: Duration
    /// The broker's words.
    public var brokerMessage: String

    public init(filter: String, durableName: String, attempt: Int, attempts: Int, retryIn: Duration, brokerMessage: String) {
        self.filter = filter
        self.durableName = durableName
        self.attempt = attempt
        self.attempts = attempts
        self.retryIn = retryIn
        self.brokerMessage = brokerMessage
    }

    /// One line for a human, saying what to do.
    public var description: String {
        let seconds = Double(retryIn.components.seconds) + Double(retryIn.components.attoseconds) / 1e18
        return "durable \"\(durableName)\" is attached to another connection (broker: \(brokerMessage)); "
            + "retrying in \(seconds < 1 ? "\(Int((seconds * 1000).rounded())) ms" : "\(seconds) s") "
            + "(attempt \(attempt) of \(attempts)). If another subscriber holds it, stop that one or use another durable name."
    }
}
