import NIOCore
import RelayStore

/// Replay in batches: a read that has taken ``directFirst`` messages by
/// direct gets (one request each) takes the rest in one fetch of an
/// ephemeral pull consumer (three requests: create, fetch, delete). One
/// direct get per message held a replay through an edge to about 4,000
/// msg/s (docs/cluster.md, "What differs from single-node LMDB"). Short
/// reads never make a consumer: on an R3 stream that is a replicated
/// operation, slower than a few direct gets, and impossible while the
/// stream has no leader, when direct gets still work (every replica
/// answers them). The consumer lives on the stream's leader, so a fetch
/// never sees a replica that is behind.
extension JetStreamMessageLog {
    /// Direct gets a read makes before it fetches the rest: a replay of a
    /// few messages stays with them. A replay through an edge ran at 31,000
    /// msg/s with 32 here and 52,000-56,000 with 8 (bench-cluster.sh
    /// REPLAY=50000, two pairs).
    static let directFirst = 8
    /// At most this many messages per fetch (the consumer's `MaxAckPending`
    /// too: nothing is acked, so it bounds what one fetch can deliver).
    static let fetchBatch = 1_024
    /// How long one fetch may take (a healthy one takes milliseconds): a
    /// read waits that long at most before it goes on by direct gets.
    static let fetchTimeout = Duration.seconds(1)
    /// After a failed fetch, reads use direct gets only for this long, so a
    /// leader election costs one fetch's timeout, not one per read.
    static let fetchPause = Duration.seconds(10)

    func fetchAllowed() -> Bool {
        fetchPausedUntil.withLock { until in
            guard let pausedUntil = until else { return true }
            if ContinuousClock.now < pausedUntil { return false }
            until = nil
            return true
        }
    }

    /// The read of ``read(from:filter:maxMessages:maxBytes:maxScan:)``
    /// from `start` on through one fetch; nil when the fetch could not be
    /// made (the caller then goes on by direct gets, which report the
    /// failure themselves if NATS cannot answer at all). `typicalBytes` is
    /// the payload size the direct gets saw: the fetch asks for about as
    /// many messages as `maxBytes` holds of that size, so it brings no more
    /// than the read keeps (a replay turn reads 64 KiB; a fetch of 1,024
    /// large messages would have brought them all to keep one or two).
    func readFetching(start: UInt64, scanEnd: UInt64, subject: String, maxMessages: Int, maxBytes: Int,
                      typicalBytes: Int) throws(StoreError) -> ReadBatch? {
        guard !isClosed else { throw .closed }
        let byBytes = maxBytes / max(typicalBytes, 1) + 1
        let limit = max(1, min(maxMessages, Self.fetchBatch, byBytes))
        let fetched: [NATSStoredMessage]
        do {
            if let failure = failFetchesForTesting.withLock({ $0 }) { throw failure }
            fetched = try nats.fetch(stream: settings.stream, filter: subject, from: start, batch: limit,
                                     waitMs: min(settings.requestTimeout, Self.fetchTimeout).wholeMilliseconds)
        } catch {
            fetchFallbacks.withLock { $0 += 1 }
            fetchPausedUntil.withLock { $0 = ContinuousClock.now.advanced(by: Self.fetchPause) }
            logger.debug("a replay fetch failed; reads use direct gets for \(Self.fetchPause): \(error)")
            return nil
        }
        fetches.withLock { $0 += 1 }
        var batch: [StoredMessage] = []
        var bytes = 0
        var next = start
        for found in fetched {
            // In stream order from `start`; anything else is not this fetch's answer.
            guard found.sequence >= next else { continue }
            guard found.sequence < scanEnd else { return ReadBatch(messages: batch, next: scanEnd, reachedEnd: false) }
            next = found.sequence + 1
            guard let message = try decodeOrSkip(found) else { continue }
            batch.append(message)
            bytes += message.payload.readableBytes
            if batch.count >= max(1, maxMessages) || bytes >= maxBytes {
                return ReadBatch(messages: batch, next: next, reachedEnd: false)
            }
        }
        guard fetched.count < limit else { return ReadBatch(messages: batch, next: next, reachedEnd: false) }
        // The leader had no more when the fetch ran: the end, placed as the
        // direct-get read places it (past the stream's last sequence).
        if let end = try endOfRead(after: next, subject: subject) {
            return ReadBatch(messages: batch, next: max(next, end), reachedEnd: true)
        }
        return ReadBatch(messages: batch, next: next, reachedEnd: false)
    }

    /// Messages the current NATS connection has sent and received; for tests.
    var natsMessageCounts: (sent: UInt64, received: UInt64)? { nats.messageCounts }
}
