import RelayCore
import RelayStore

extension Router {
    /// For a log several edges share (``SharedMessageLog``): feeds this
    /// router from the log's tail, after the sequence it starts from, so a
    /// subscriber on any edge gets every edge's messages in the log's one
    /// order, once each. For a log local to this edge this does nothing:
    /// sessions route their own committed appends (the fast path).
    func followTail(of store: any MessageLog, metrics: BrokerMetrics) throws(StoreError) {
        guard let shared = store as? any SharedMessageLog else { return }
        (shared as? any ForeignRecordReporting)?.observeForeignRecords { metrics.storageForeignRecords.increment(by: Int64($0)) }
        // While no subscription exists on this edge (a publish-only edge, or
        // a bench) a message is only counted: not decoded, encoded or queued
        // (docs/cluster.md, "Performance", wave 6).
        try shared.startTail(after: watermark, skip: { [self] sequence, payloadBytes in
            guard skipWhileUnsubscribed(sequence) else { return false }
            metrics.publishes.increment()
            metrics.publishBytes.increment(by: Int64(payloadBytes))
            metrics.lastSequence.record(Int64(sequence))
            return true
        }) { [self] messages in
            // The tail's thread hands off at once; the serial queue keeps log order.
            enqueue { self.publish(Self.routedMessages(messages, metrics: metrics)) }
        }
    }

    /// Encodes messages read back from the log as MSG tails and counts them.
    static func routedMessages(_ messages: [StoredMessage], metrics: BrokerMetrics) -> [RoutedMessage] {
        let routed = messages.compactMap { message in
            RoutedMessage.encode(sequence: message.sequence, timestamp: message.timestamp, topic: message.topic.value,
                                 publisherPrincipal: message.publisher.principal,
                                 publisherFingerprint: message.publisher.fingerprint,
                                 headers: message.headers, payload: message.payload)
        }
        metrics.publishes.increment(by: Int64(routed.count))
        metrics.publishBytes.increment(by: Int64(messages.reduce(0) { $0 + $1.payload.readableBytes }))
        if let last = routed.last { metrics.lastSequence.record(Int64(last.sequence)) }
        return routed
    }
}
