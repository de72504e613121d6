import Foundation
import NIOCore
import RelayCore

/// A ``MessageLog`` in memory: the second real implementation of the seam,
/// for unit tests of the session logic that run without relayd or a disk.
///
/// It keeps the semantics the broker relies on: sequences from 1 that never
/// repeat, one strictly increasing timestamp per append, dedup by producer
/// key until pruned, durable cursors per owner and name, every start
/// position (with ``MessageStore``'s `last N` bound), bounded reads, the
/// size limit, and retention and dedup pruning. What it does not do:
/// survive the process, prune on a timer (only ``prune()`` prunes), or
/// complete on another thread: every completion runs before `append` or
/// `commitCursor` returns, on the caller's thread, which makes tests
/// deterministic. Thread-safe (one lock); reads and appends may race.
public final class InMemoryMessageLog: MessageLog, @unchecked Sendable {
    public let dedupWindow: DedupWindow
    private let retention: [RetentionRule]
    private let maxBytes: Int
    private let maxStartScan: Int
    /// Nanoseconds since the Unix epoch (injectable, for retention and dedup ages).
    private let clock: @Sendable () -> UInt64

    let lock = NSLock()
    // Everything below is guarded by `lock`.
    /// Ascending by sequence (and so by timestamp).
    var messages: [StoredMessage] = []
    private var nextSequence: UInt64 = 1
    private var lastTimestamp: UInt64 = 0
    var usedBytes = 0
    private var dedup: [ProducerKey: (sequence: UInt64, timestamp: UInt64)] = [:]
    /// Dedup keys in the order they were stored (pruned oldest first).
    private var dedupOrder: [(key: ProducerKey, timestamp: UInt64)] = []
    var cursors: [CursorKey: DurableCursor] = [:]
    private var closed = false

    struct CursorKey: Hashable {
        var owner: DurableOwner
        var name: String
    }

    /// - Parameters:
    ///   - maxBytes: the size at which appends fail with `storageFull`
    ///     (counted as ``InMemoryMessageLog/size(of:)``).
    ///   - maxStartScan: as ``StoreConfiguration/maxStartScan``.
    public init(dedupWindow: DedupWindow = DedupWindow(), retention: [RetentionRule] = [], maxBytes: Int = 256 << 20,
                maxStartScan: Int = 65_536, clock: @escaping @Sendable () -> UInt64 = { InMemoryMessageLog.wallClock() }) {
        self.dedupWindow = dedupWindow
        self.retention = retention
        self.maxBytes = maxBytes
        self.maxStartScan = max(1, maxStartScan)
        self.clock = clock
    }

    /// The limits of `configuration` (its directory and LMDB sizing aside).
    public convenience init(configuration: StoreConfiguration) {
        self.init(dedupWindow: configuration.dedup, retention: configuration.retention,
                  maxBytes: configuration.maxMapSize, maxStartScan: configuration.maxStartScan)
    }

    /// Nanoseconds since the Unix epoch, from the real-time clock.
    public static func wallClock() -> UInt64 { Appender.wallClockNanoseconds() }

    /// What a message counts against `maxBytes` and retention's `max_bytes`:
    /// payload, topic, headers and the publisher stamp.
    public static func size(of message: NewMessage) -> Int {
        size(payload: message.payload, topic: message.topic, headers: message.headers, publisher: message.publisher)
    }

    static func size(payload: ByteBuffer, topic: Topic, headers: HeaderBlock, publisher: PublisherStamp) -> Int {
        payload.readableBytes + topic.value.utf8.count + headers.encoded.readableBytes
            + publisher.principal.utf8.count + CertificateFingerprint.byteCount
    }

    func locked<R>(_ body: () throws(StoreError) -> R) throws(StoreError) -> R {
        lock.lock()
        defer { lock.unlock() }
        guard !closed else { throw .closed }
        return try body()
    }

    // MARK: Appending

    public func append(_ messages: [NewMessage],
                       completion: @escaping @Sendable ([Result<AppendReceipt, StoreError>]) -> Void) {
        let results: [Result<AppendReceipt, StoreError>]
        do {
            results = try locked { () throws(StoreError) in appendLocked(messages) }
        } catch {
            results = messages.map { _ in .failure(error) }
        }
        completion(results)
    }

    /// One "commit": every message of the call gets the same timestamp.
    private func appendLocked(_ batch: [NewMessage]) -> [Result<AppendReceipt, StoreError>] {
        let timestamp = max(clock(), lastTimestamp + 1)
        var stored = false
        let results = batch.map { message -> Result<AppendReceipt, StoreError> in
            if let key = message.producerKey, let original = dedup[key] {
                return .success(AppendReceipt(sequence: original.sequence, timestamp: original.timestamp, duplicate: true))
            }
            let size = Self.size(of: message)
            guard usedBytes + size <= maxBytes else { return .failure(.storageFull(maxMapSize: maxBytes)) }
            let sequence = nextSequence
            nextSequence += 1
            usedBytes += size
            stored = true
            // Its own copy of the payload: the caller's buffer may be a slice of a large read.
            messages.append(StoredMessage(sequence: sequence, timestamp: timestamp, topic: message.topic,
                                          publisher: message.publisher, headers: message.headers,
                                          payload: ByteBuffer(bytes: message.payload.readableBytesView)))
            if let key = message.producerKey {
                dedup[key] = (sequence, timestamp)
                dedupOrder.append((key, timestamp))
            }
            return .success(AppendReceipt(sequence: sequence, timestamp: timestamp, duplicate: false))
        }
        if stored { lastTimestamp = timestamp }
        return results
    }

    // MARK: Reading

    public func read(from: UInt64, filter: TopicFilter, maxMessages: Int = 1024, maxBytes: Int = 1 << 20,
                     maxScan: Int = 65_536) throws(StoreError) -> ReadBatch {
        try locked { () throws(StoreError) in
            let limit = max(1, maxMessages), scanLimit = max(1, maxScan)
            var batch: [StoredMessage] = []
            var bytes = 0
            var next = max(from, 1)
            var index = firstIndex(atOrAfter: next)
            var scanned = 0
            while index < messages.count {
                let message = messages[index]
                next = message.sequence + 1
                if filter.matches(message.topic) {
                    batch.append(message)
                    bytes += message.payload.readableBytes
                }
                scanned += 1
                index += 1
                if batch.count >= limit || bytes >= maxBytes || scanned >= scanLimit {
                    return ReadBatch(messages: batch, next: next, reachedEnd: false)
                }
            }
            return ReadBatch(messages: batch, next: max(next, nextSequence), reachedEnd: true)
        }
    }

    public func startSequence(_ position: StartPosition, filter: TopicFilter) throws(StoreError) -> UInt64 {
        try locked { () throws(StoreError) in
            switch position {
            case .earliest: return messages.first?.sequence ?? nextSequence
            case .latest: return nextSequence
            case .sequence(let s): return max(s, 1)
            case .time(let t):
                let index = partitionIndex { $0.timestamp >= t }
                return index < messages.count ? messages[index].sequence : nextSequence
            case .last(let n):
                guard n > 0 else { return nextSequence }
                return filter.isLiteral ? lastOfTopic(n, filter) : lastMatching(n, filter)
            }
        }
    }

    /// As ``MessageStore``'s topic index walk: exact when the topic holds at
    /// most N messages, else at most `maxStartScan` of its messages back.
    private func lastOfTopic(_ n: UInt64, _ filter: TopicFilter) -> UInt64 {
        let matching = messages.filter { filter.matches($0.topic) }
        guard let oldest = matching.first else { return nextSequence }
        if UInt64(matching.count) <= n { return oldest.sequence }
        var walked: UInt64 = 0
        var start = oldest.sequence
        for message in matching.reversed() {
            start = message.sequence
            walked += 1
            if walked >= min(n, UInt64(maxStartScan)) { break }
        }
        return start
    }

    /// As ``MessageStore``'s log walk: at most `maxStartScan` records back.
    private func lastMatching(_ n: UInt64, _ filter: TopicFilter) -> UInt64 {
        var start = nextSequence
        var remaining = n
        for message in messages.reversed().prefix(maxStartScan) where filter.matches(message.topic) {
            start = message.sequence
            remaining -= 1
            if remaining == 0 { break }
        }
        return start
    }

    public func lastSequence() throws(StoreError) -> UInt64 {
        try locked { () throws(StoreError) in nextSequence - 1 }
    }

    /// The index of the first message with a sequence of at least `sequence`.
    private func firstIndex(atOrAfter sequence: UInt64) -> Int {
        partitionIndex { $0.sequence >= sequence }
    }

    /// The first index where `isAfter` holds (it holds for every later one).
    private func partitionIndex(_ isAfter: (StoredMessage) -> Bool) -> Int {
        var low = 0, high = messages.count
        while low < high {
            let middle = (low + high) / 2
            if isAfter(messages[middle]) { high = middle } else { low = middle + 1 }
        }
        return low
    }

    // MARK: Durable cursors

    public func commitCursor(owner: DurableOwner, name: String, sequence: UInt64, filter: String,
                             completion: @escaping @Sendable (Result<Void, StoreError>) -> Void) {
        let result: Result<Void, StoreError>
        do {
            try locked { () throws(StoreError) in
                guard !name.isEmpty else { throw .invalidArgument("a durable name is not empty") }
                cursors[CursorKey(owner: owner, name: name)] = DurableCursor(sequence: sequence, filter: filter)
            }
            result = .success(())
        } catch {
            result = .failure(error)
        }
        completion(result)
    }

    public func durableCursor(owner: DurableOwner, name: String) throws(StoreError) -> DurableCursor? {
        try locked { () throws(StoreError) in cursors[CursorKey(owner: owner, name: name)] }
    }

    public func durableNames(owner: DurableOwner, limit: Int) throws(StoreError) -> [String] {
        try locked { () throws(StoreError) in
            Array(cursors.keys.lazy.filter { $0.owner == owner }.map(\.name).prefix(max(limit, 0)))
        }
    }

    /// Always nil: this log has no older schema to migrate from.
    public func legacyCursor(principal: String, name: String) throws(StoreError) -> UInt64? {
        try locked { () throws(StoreError) in nil }
    }

    /// Commits `owner`'s cursor (there is no legacy one to forget).
    public func adoptLegacyCursor(principal: String, name: String, owner: DurableOwner, sequence: UInt64, filter: String,
                                  completion: @escaping @Sendable (Result<Void, StoreError>) -> Void) {
        commitCursor(owner: owner, name: name, sequence: sequence, filter: filter, completion: completion)
    }

    // MARK: Retention, size, lifetime

    /// Drops dedup keys beyond the window (count, then age) and messages the
    /// retention rules no longer keep (per topic, the first matching rule);
    /// returns the messages plus dedup keys deleted.
    public func prune() async throws(StoreError) -> Int {
        try locked { () throws(StoreError) in pruneLocked(now: clock()) }
    }

    private func pruneLocked(now: UInt64) -> Int {
        var deleted = 0
        let cutoff = now &- min(now, UInt64(nanoseconds(dedupWindow.maxAge)))
        var drop = 0
        while drop < dedupOrder.count,
              dedupOrder.count - drop > dedupWindow.maxEntries || dedupOrder[drop].timestamp < cutoff {
            let entry = dedupOrder[drop]
            if dedup[entry.key]?.timestamp == entry.timestamp { dedup[entry.key] = nil }
            drop += 1
        }
        dedupOrder.removeFirst(drop)
        deleted += drop
        guard !retention.isEmpty else { return deleted }
        // Per topic, newest first: what the rule keeps.
        var kept: [StoredMessage] = []
        var perTopic: [String: (count: Int, bytes: Int)] = [:]
        for message in messages.reversed() {
            guard let rule = retention.first(where: { $0.filter.matches(message.topic) }) else {
                kept.append(message)
                continue
            }
            let size = Self.size(payload: message.payload, topic: message.topic, headers: message.headers,
                                 publisher: message.publisher)
            var seen = perTopic[message.topic.value, default: (0, 0)]
            seen.count += 1
            seen.bytes += size
            perTopic[message.topic.value] = seen
            let tooOld = rule.maxAge.map { message.timestamp < now &- min(now, UInt64(nanoseconds($0))) } ?? false
            let overCount = rule.maxMessages.map { seen.count > max(0, $0) } ?? false
            let overBytes = rule.maxBytes.map { seen.bytes > max(0, $0) } ?? false
            if tooOld || overCount || overBytes {
                usedBytes -= size
                deleted += 1
            } else {
                kept.append(message)
            }
        }
        messages = kept.reversed()
        return deleted
    }

    public func usage() throws(StoreError) -> StorageUsage {
        try locked { () throws(StoreError) in
            StorageUsage(usedBytes: usedBytes, allocatedBytes: usedBytes, maxBytes: maxBytes, messages: messages.count)
        }
    }

    public func close() {
        lock.lock()
        defer { lock.unlock() }
        closed = true
    }
}
