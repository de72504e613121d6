import RelayCore

/// A per-connection memo of publish decisions by topic: a publisher
/// usually sends to a handful of topics, so after the first message each
/// check is one hash lookup.
///
/// Owned by one session and never shared (it is a mutable value). Bounded:
/// when `capacity` topics are cached the memo is cleared and refilled, so a
/// client cycling through endless distinct topics costs CPU, never memory.
/// A reload builds new ``Permissions`` and so a new cache: stale answers
/// cannot survive a policy change.
public struct PublishCache: Sendable {
    public let permissions: Permissions
    public let capacity: Int
    private var entries: [String: Permissions.Verdict]
    /// The last topic asked about and its verdict: a publisher mostly
    /// repeats one topic, and comparing it (usually the very same String,
    /// which the decoder hands out again) is cheaper than hashing it for
    /// the dictionary. Lives and dies with `entries`.
    private var last: (topic: String, verdict: Permissions.Verdict)?

    public init(permissions: Permissions, capacity: Int = 1024) {
        self.permissions = permissions
        self.capacity = max(1, capacity)
        self.entries = Dictionary(minimumCapacity: min(self.capacity, 64))
    }

    /// The number of cached topics.
    public var count: Int { entries.count }

    /// The fast check for the publish path.
    public mutating func isAllowed(_ topic: Topic) -> Bool {
        verdict(topic).isAllowed
    }

    /// The full decision (for PUBERR and the audit trail), cached as well.
    public mutating func decision(_ topic: Topic) -> Decision {
        permissions.decision(verdict(topic))
    }

    private mutating func verdict(_ topic: Topic) -> Permissions.Verdict {
        if let last, last.topic == topic.value { return last.verdict }
        let verdict: Permissions.Verdict
        if let cached = entries[topic.value] {
            verdict = cached
        } else {
            verdict = permissions.publishVerdict(tokens: topic.tokens)
            if entries.count >= capacity { entries.removeAll(keepingCapacity: true) }
            entries[topic.value] = verdict
        }
        last = (topic.value, verdict)
        return verdict
    }
}
