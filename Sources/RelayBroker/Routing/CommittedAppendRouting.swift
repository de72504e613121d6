import RelayCore
import RelayStore
import RelayWire

extension Router {
    /// Routes the messages one append committed: on the router's serial
    /// queue (not the store's writer thread, not a session's loop), encodes
    /// each newly stored message once as a MSG tail, counts it, and fans the
    /// batch out. The single writer calls this in commit order, and the queue
    /// is FIFO, so ``publish(_:)`` still sees commit order.
    func routeCommitted(_ messages: [NewMessage], _ results: [Result<AppendReceipt, StoreError>],
                        metrics: BrokerMetrics) {
        enqueue {
            self.publish(Self.routedMessages(messages, results, metrics: metrics))
        }
    }

    /// Encodes the newly committed messages of one append (duplicates and
    /// failures are skipped) and counts them. Runs on the router's queue.
    static func routedMessages(_ messages: [NewMessage], _ results: [Result<AppendReceipt, StoreError>],
                               metrics: BrokerMetrics) -> [RoutedMessage] {
        var routed: [RoutedMessage] = []
        routed.reserveCapacity(results.count)
        var bytes = 0
        for (message, result) in zip(messages, results) {
            guard case .success(let receipt) = result, !receipt.duplicate else { continue }
            bytes += message.payload.readableBytes
            if let encoded = RoutedMessage.encode(
                sequence: receipt.sequence, timestamp: receipt.timestamp, topic: message.topic.value,
                publisherPrincipal: message.publisher.principal, publisherFingerprint: message.publisher.fingerprint,
                headers: message.headers, payload: message.payload) {
                routed.append(encoded)
            }
        }
        metrics.publishes.increment(by: Int64(routed.count))
        metrics.publishBytes.increment(by: Int64(bytes))
        if let last = routed.last { metrics.lastSequence.record(Int64(last.sequence)) }
        return routed
    }
}
