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
    /// The tails share a few buffers (``MessageTailBatch``); the messages are
    /// read in place by index, not copied out of the array.
    static func routedMessages(_ messages: [NewMessage], _ results: [Result<AppendReceipt, StoreError>],
                               metrics: BrokerMetrics) -> [RoutedMessage] {
        var tails = MessageTailBatch(count: results.count)
        var heads: [(sequence: UInt64, timestamp: UInt64, topic: String)] = []
        heads.reserveCapacity(results.count)
        var bytes = 0
        for index in 0..<min(messages.count, results.count) {
            guard case .success(let receipt) = results[index], !receipt.duplicate else { continue }
            let topic = messages[index].topic.value
            do {
                try tails.append(sequence: receipt.sequence, timestamp: receipt.timestamp, topic: topic,
                                 publisherPrincipal: messages[index].publisher.principal,
                                 publisherFingerprint: messages[index].publisher.fingerprint,
                                 headers: Headers(messages[index].headers), payload: messages[index].payload)
            } catch {
                continue  // a topic or principal over 65,535 bytes: validation at publish time rules it out
            }
            bytes += messages[index].payload.readableBytes
            heads.append((receipt.sequence, receipt.timestamp, topic))
        }
        let prepared = tails.finish()
        var routed: [RoutedMessage] = []
        routed.reserveCapacity(heads.count)
        for (head, tail) in zip(heads, prepared) {
            routed.append(RoutedMessage(sequence: head.sequence, timestamp: head.timestamp, topic: head.topic, prepared: tail))
        }
        metrics.publishes.increment(by: Int64(routed.count))
        metrics.publishBytes.increment(by: Int64(bytes))
        if let last = routed.last { metrics.lastSequence.record(Int64(last.sequence)) }
        return routed
    }

    /// For a shared log, whose tail routes: counts this edge's newly stored
    /// messages of one append (relay_publishes_total is each edge's own
    /// publishes, whether or not its tail is open). On the writer's thread:
    /// counters only.
    static func countCommitted(_ messages: [NewMessage], _ results: [Result<AppendReceipt, StoreError>],
                               metrics: BrokerMetrics) {
        var count = 0
        var bytes = 0
        var last: UInt64 = 0
        for index in 0..<min(messages.count, results.count) {
            guard case .success(let receipt) = results[index], !receipt.duplicate else { continue }
            count += 1
            bytes += messages[index].payload.readableBytes
            last = max(last, receipt.sequence)
        }
        guard count > 0 else { return }
        metrics.publishes.increment(by: Int64(count))
        metrics.publishBytes.increment(by: Int64(bytes))
        metrics.lastSequence.record(Int64(last))
    }
}
