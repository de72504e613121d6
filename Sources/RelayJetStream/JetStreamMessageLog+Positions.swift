import RelayCore
import RelayStore

/// Start positions and retention: the parts of the log that search the
/// stream (binary searches over sequences, each step one request).
extension JetStreamMessageLog {
    public func startSequence(_ position: StartPosition, filter: TopicFilter) throws(StoreError) -> UInt64 {
        let state = try state()
        let end = state.lastSequence + 1
        switch position {
        case .earliest: return state.messages == 0 ? end : state.firstSequence
        case .latest: return end
        case .sequence(let s): return max(s, 1)
        case .time(let t): return try firstSequence(notBefore: t, in: state)
        case .last(let n):
            guard n > 0, state.messages > 0 else { return end }
            return try lastN(n, subject: subject(filter), first: state.firstSequence, end: end)
        }
    }

    /// The first sequence whose record's timestamp is at least `t`. Relay's
    /// timestamps are stamped by the edge that appended (one per append),
    /// so across edges they follow the sequence only as closely as the edges'
    /// clocks agree (docs/cluster.md).
    func firstSequence(notBefore t: UInt64, in state: NATSConnection.StreamState) throws(StoreError) -> UInt64 {
        var low = state.firstSequence, high = state.lastSequence + 1
        guard state.messages > 0 else { return high }
        while low < high {
            let middle = low + (high - low) / 2
            // Deleted sequences resolve to the next stored message.
            guard let found = try get(middle, next: true), found.sequence < high else {
                high = middle
                continue
            }
            let timestamp = JetStreamRecord.timestamp(of: found.data) ?? 0
            if timestamp >= t { high = middle } else { low = found.sequence + 1 }
        }
        return low
    }

    /// The sequence of the `n`-th newest message on `subject`, exact. Up to
    /// ``JetStreamSettings/lastNWalkLimit`` by walking the newest matches; above it by a binary
    /// search over "how many match from here on" (an ephemeral consumer's
    /// pending count), about 2·log2(stream length) requests.
    func lastN(_ n: UInt64, subject: String, first: UInt64, end: UInt64) throws(StoreError) -> UInt64 {
        if n <= settings.lastNWalkLimit { return try lastNByWalking(n, subject: subject, first: first, end: end) }
        let total = try count(subject, from: first)
        if total == 0 { return end }
        if total <= n { return try get(first, next: true, filter: subject)?.sequence ?? end }
        // Invariant: count(low) >= n > count(high).
        var low = first, high = end
        while high - low > 1 {
            let middle = low + (high - low) / 2
            if try count(subject, from: middle) >= n { low = middle } else { high = middle }
        }
        return low
    }

    /// The `n`-th newest match, from filtered direct gets over windows that
    /// end at the stream's end and grow fourfold until one holds `n` matches
    /// or starts at the first message: one get per match in the window, plus
    /// one. No consumer is made: nats-server 2.9 undercounted a new consumer's
    /// pending messages under a wildcard filter now and then (the contract
    /// test's `last(2)` of `x.*` started one message late in a loaded CI run,
    /// wave 24), and a consumer goes through the cluster's meta leader. A
    /// replica that lags answers without the newest messages: the start can
    /// then be earlier, never later.
    func lastNByWalking(_ n: UInt64, subject: String, first: UInt64, end: UInt64) throws(StoreError) -> UInt64 {
        var window = max(4 * n, 64)
        while true {
            let from = end - first > window ? end - window : first
            var newest: [UInt64] = []  // the last `n` matches of the window, oldest first
            var sequence = from
            while sequence < end, let found = try get(sequence, next: true, filter: subject), found.sequence < end {
                newest.append(found.sequence)
                if newest.count > 2 * Int(n) { newest.removeFirst(newest.count - Int(n)) }
                sequence = found.sequence + 1
            }
            if newest.count > Int(n) { newest.removeFirst(newest.count - Int(n)) }
            // Fewer than `n` in the whole stream: from its first match (none: the end).
            if newest.count == Int(n) || from == first { return newest.first ?? end }
            // Here end - first > window: the next is four times as long, or reaches the first message.
            let grown = window.multipliedReportingOverflow(by: 4)
            window = grown.overflow ? end - first : min(grown.partialValue, end - first)
        }
    }

    func count(_ subject: String, from start: UInt64) throws(StoreError) -> UInt64 {
        do {
            return try nats.count(stream: settings.stream, filter: subject, from: start, waitMs: settings.requestTimeout.wholeMilliseconds)
        } catch {
            throw Self.storeError(error)
        }
    }

    /// Applies the retention rules (per topic, the first matching rule):
    /// `max_messages` by purging the topic's subject down to the newest N,
    /// `max_age` by purging it below the first sequence young enough.
    /// `max_bytes` per topic has no JetStream equivalent and is not applied.
    /// JetStream expires dedup ids on its own. Returns the messages removed.
    func pruneNow() throws(StoreError) -> Int {
        guard !configuration.retention.isEmpty else { return 0 }
        let before = try state()
        var handled = Set<String>()
        let now = InMemoryMessageLog.wallClock()
        for rule in configuration.retention {
            let subjects = try state(subjects: subject(rule.filter)).subjects
            var ageCutoff: UInt64?
            if let maxAge = rule.maxAge {
                let age = UInt64(maxAge.components.seconds) * 1_000_000_000 + UInt64(maxAge.components.attoseconds / 1_000_000_000)
                ageCutoff = try firstSequence(notBefore: now &- min(now, age), in: before)
            }
            for (name, messages) in subjects where handled.insert(name).inserted {
                do {
                    if let max = rule.maxMessages, messages > UInt64(max) {
                        try nats.purge(stream: settings.stream, subject: name, keep: UInt64(max), upTo: 0,
                                       waitMs: settings.requestTimeout.wholeMilliseconds)
                    }
                    if let ageCutoff, ageCutoff > before.firstSequence {
                        try nats.purge(stream: settings.stream, subject: name, keep: 0, upTo: ageCutoff,
                                       waitMs: settings.requestTimeout.wholeMilliseconds)
                    }
                } catch {
                    throw Self.storeError(error)
                }
            }
        }
        let after = try state()
        return Int(before.messages) - Int(after.messages)
    }
}
