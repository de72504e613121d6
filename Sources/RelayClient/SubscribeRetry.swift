import RelayCore

/// The broker refused a SUB with a refusal that time may end, and the client
/// will send the SUB again (0.1 s doubling, 8 tries, about 25 s in all)
/// before it reports the refusal. ``RelayClientConfiguration/onSubscribeRetry``
/// receives one of these per refusal, so a user hears of the wait at once:
/// - `durable_in_use`: the durable is attached to another connection, which
///   may be this client's own dead one, or a second live subscriber that only
///   the user can stop;
/// - `storage_unavailable`: a cluster edge cannot open its tail of the shared
///   log yet (no stream leader, e.g. during an election, or NATS is down).
public struct SubscribeRetry: Sendable, Hashable, CustomStringConvertible {
    /// The subscription's filter.
    public var filter: String
    /// The durable name, nil for an ephemeral subscription.
    public var durableName: String?
    /// The refusal's code, when this client knows it.
    public var code: RelayErrorCode?
    /// The refusal's code as sent.
    public var rawCode: UInt16
    /// This retry's number, from 1.
    public var attempt: Int
    /// How many retries the client makes before it reports the refusal.
    public var attempts: Int
    /// When the SUB goes out again.
    public var retryIn: Duration
    /// The broker's words.
    public var brokerMessage: String

    public init(filter: String, durableName: String?, rawCode: UInt16, attempt: Int, attempts: Int, retryIn: Duration,
                brokerMessage: String) {
        self.filter = filter
        self.durableName = durableName
        self.code = RelayErrorCode(rawValue: rawCode)
        self.rawCode = rawCode
        self.attempt = attempt
        self.attempts = attempts
        self.retryIn = retryIn
        self.brokerMessage = brokerMessage
    }

    /// One line for a human: what is happening, and what to do.
    public var description: String {
        let retry = "retry \(attempt) of \(attempts) in \(Self.format(retryIn))"
        let said = brokerMessage.isEmpty ? "" : ": \(brokerMessage)"
        switch code {
        case .durableInUse?:
            return "durable \"\(durableName ?? "")\" is attached to another connection (durable_in_use\(said)); "
                + "retrying (\(retry)). If another subscriber holds it, stop that one or use another durable name."
        case .storageUnavailable?:
            return "the broker cannot serve the subscription to \(filter) yet (storage_unavailable\(said)); retrying (\(retry)). "
                + "Its storage is not available (in a cluster: the shared log has no leader, or NATS is down); "
                + "if this lasts, check the broker's log and its storage backend."
        default:
            let name = code?.name ?? "code 0x\(String(rawCode, radix: 16))"
            return "the broker refused the subscription to \(filter) for now (\(name)\(said)); retrying (\(retry))."
        }
    }

    /// 100 ms, 1.6 s.
    static func format(_ duration: Duration) -> String {
        let seconds = Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
        return seconds < 1 ? "\(Int((seconds * 1000).rounded())) ms" : "\((seconds * 10).rounded() / 10) s"
    }
}
