import Logging
import RelayCore
import RelayStore

extension Router {
    /// For a log several edges share (``SharedMessageLog``): feeds this
    /// router from the log's tail, so a subscriber on any edge gets every
    /// edge's messages in the log's one order, once each. The tail is open
    /// only while a subscription exists, and `idle` after the last one ended
    /// (``LiveTail``): the first SUB opens it. For a log local to this edge
    /// this does nothing: sessions route their own committed appends (the
    /// fast path).
    func followTail(of store: any MessageLog, idle: Duration, metrics: BrokerMetrics, logger: Logger) {
        guard let shared = store as? any SharedMessageLog else { return }
        (shared as? any ForeignRecordReporting)?.observeForeignRecords { metrics.storageForeignRecords.increment(by: Int64($0)) }
        attach(LiveTail(log: shared, idle: idle, logger: logger) { [self] (after: UInt64) throws(StoreError) in
            // While the tail is open but no subscription exists (the idle
            // time), a message only moves the watermark: not decoded,
            // encoded or queued (docs/performance-history.md, "Performance, wave 6").
            try shared.startTail(after: after, skip: { [self] sequence, _ in
                guard skipWhileUnsubscribed(sequence) else { return false }
                metrics.lastSequence.record(Int64(sequence))
                return true
            }) { [self] messages in
                // The tail's thread hands off at once; the serial queue keeps log order.
                enqueue { self.publish(Self.routedMessages(messages, metrics: metrics)) }
            }
        })
    }

    /// Encodes messages read back from the log as MSG tails. They are not
    /// counted as publishes: each edge counts its own appends (SessionIO).
    static func routedMessages(_ messages: [StoredMessage], metrics: BrokerMetrics) -> [RoutedMessage] {
        let routed = messages.compactMap { message in
            RoutedMessage.encode(sequence: message.sequence, timestamp: message.timestamp, topic: message.topic.value,
                                 publisherPrincipal: message.publisher.principal,
                                 publisherFingerprint: message.publisher.fingerprint,
                                 headers: message.headers, payload: message.payload)
        }
        if let last = routed.last { metrics.lastSequence.record(Int64(last.sequence)) }
        return routed
    }
}
