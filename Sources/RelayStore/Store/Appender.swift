#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Writes one group commit's messages: log records, topic index, time
/// index, topic stats and dedup entries. Owned by the writer thread.
struct Appender {
    static let nextSequenceKey = Array("next_sequence".utf8)

    let schema: Schema
    /// The sequence the next stored message gets.
    private(set) var nextSequence: UInt64
    /// The last commit's timestamp; commit timestamps strictly increase so
    /// the time index is ordered even if the wall clock steps back.
    private(set) var lastTimestamp: UInt64
    /// Per-commit topic stats deltas, reused between commits.
    private var statDeltas: [String: (count: UInt64, bytes: UInt64)] = [:]
    /// The short numbers dedup keys use for publishers.
    private var publisherNumbers = PublisherNumbers()
    /// The current run of one topic's messages in `write`, not yet in `statDeltas`.
    private var topicRun: (topic: String, count: UInt64, bytes: UInt64)?
    /// The largest dedup key stored, in the current transaction (skips most lookups).
    private var dedupCeiling = DedupCeiling()

    private mutating func flushTopicRun() {
        guard let run = topicRun else { return }
        topicRun = nil
        statDeltas[run.topic, default: (0, 0)].count += run.count
        statDeltas[run.topic, default: (0, 0)].bytes += run.bytes
    }

    init(schema: Schema, nextSequence: UInt64, lastTimestamp: UInt64) {
        self.schema = schema
        self.nextSequence = nextSequence
        self.lastTimestamp = lastTimestamp
    }

    struct Outcome {
        /// One result array per append job, in order.
        var results: [[Result<AppendReceipt, StoreError>]]
        var nextSequence: UInt64
        /// Whether the commit stores any message (not only duplicates or failures).
        var storedAny: Bool
    }

    static func wallClockNanoseconds() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }

    /// The commit timestamp after `now` (the store's ``WallClock``): never
    /// below the last one stored, so timestamps increase with sequences.
    func nextTimestamp(now: UInt64) -> UInt64 {
        max(now, lastTimestamp + 1)
    }

    mutating func committed(_ outcome: Outcome, timestamp: UInt64) {
        if outcome.storedAny { lastTimestamp = timestamp }
        nextSequence = outcome.nextSequence
        publisherNumbers.commit()
    }

    /// Writes every message of `jobs` into `txn`. Safe to repeat after an
    /// abort: it changes no state outside the transaction except caches.
    mutating func write(_ jobs: [[NewMessage]], timestamp: UInt64,
                        in txn: borrowing WriteTransaction) throws(StoreError) -> Outcome {
        let first = nextSequence
        var sequence = first
        statDeltas.removeAll(keepingCapacity: true)
        topicRun = nil
        publisherNumbers.begin()
        dedupCeiling.reset()
        // Once per commit: a copy of the schema (nine database names) per
        // message was about 400 instructions of retains and releases.
        let schema = self.schema
        var results: [[Result<AppendReceipt, StoreError>]] = []
        results.reserveCapacity(jobs.count)
        // One cursor per appended database for the whole commit (see `Cursor.put`).
        try txn.withCursor(schema.log) { (log) throws(StoreError) in
        try txn.withCursor(schema.topics) { (topics) throws(StoreError) in
        try txn.withCursor(schema.dedup) { (dedup) throws(StoreError) in
        try txn.withCursor(schema.dedupOrder) { (dedupOrder) throws(StoreError) in
        try txn.withCursor(schema.logTail) { (logTail) throws(StoreError) in
        for messages in jobs {
            var jobResults: [Result<AppendReceipt, StoreError>] = []
            jobResults.reserveCapacity(messages.count)
            for message in messages {
                let result = try append(message, sequence: sequence, timestamp: timestamp, schema: schema,
                                        in: txn, log: log, logTail: logTail, topics: topics,
                                        dedup: dedup, dedupOrder: dedupOrder)
                if case .success(let receipt) = result, !receipt.duplicate { sequence += 1 }
                jobResults.append(result)
            }
            results.append(jobResults)
        }
        }
        }
        }
        }
        }
        flushTopicRun()
        guard sequence > first else {
            return Outcome(results: results, nextSequence: first, storedAny: false)
        }
        try finishCommit(first: first, next: sequence, timestamp: timestamp, in: txn)
        return Outcome(results: results, nextSequence: sequence, storedAny: true)
    }

    /// One message of `write`: the original receipt of a retried publish, a
    /// failure of this message alone, or the message stored at `sequence`.
    private mutating func append(_ message: borrowing NewMessage, sequence: UInt64, timestamp: UInt64,
                                 schema: borrowing Schema, in txn: borrowing WriteTransaction,
                                 log: borrowing Cursor, logTail: borrowing Cursor, topics: borrowing Cursor,
                                 dedup: borrowing Cursor, dedupOrder: borrowing Cursor)
    throws(StoreError) -> Result<AppendReceipt, StoreError> {
        var entry: DedupEntry?
        if let producerKey = message.producerKey {
            // A publisher without a number has never stored a deduplicated publish.
            if let number = try publisherNumbers.number(for: producerKey.publisher, allocate: false, schema: schema, in: txn) {
                let found = DedupEntry(publisher: number, producerKey)
                if try dedupCeiling.mayHold(found, dedup: dedup),
                   let original = try existingSequence(found, schema: schema, in: txn) {
                    return .success(AppendReceipt(sequence: original.sequence, timestamp: original.timestamp, duplicate: true))
                }
                entry = found
            }
        }
        let size: Int
        do throws(StoreError) {
            size = try RecordCodec.size(of: message)
        } catch {
            return .failure(error)
        }
        if let producerKey = message.producerKey, entry == nil,
           let number = try publisherNumbers.number(for: producerKey.publisher, allocate: true, schema: schema, in: txn) {
            entry = DedupEntry(publisher: number, producerKey)
        }
        try store(message, size: size, dedupEntry: entry, sequence: sequence, timestamp: timestamp,
                  split: schema.recordSplit, log: log, logTail: logTail, topics: topics, dedup: dedup, dedupOrder: dedupOrder)
        // Consecutive messages of one topic are summed before the
        // dictionary sees them: one String hash per run, not two per message.
        if let run = topicRun, run.topic == message.topic.value {
            topicRun = (run.topic, run.count + 1, run.bytes + UInt64(size))
        } else {
            flushTopicRun()
            topicRun = (message.topic.value, 1, UInt64(size))
        }
        return .success(AppendReceipt(sequence: sequence, timestamp: timestamp, duplicate: false))
    }

    private mutating func store(_ message: borrowing NewMessage, size: Int, dedupEntry: DedupEntry?,
                                sequence: UInt64, timestamp: UInt64, split: RecordSplit,
                                log: borrowing Cursor, logTail: borrowing Cursor, topics: borrowing Cursor,
                                dedup: borrowing Cursor, dedupOrder: borrowing Cursor) throws(StoreError) {
        try withBigEndianBytes(sequence) { (seqKey) throws(StoreError) in
            // Sequences only grow, so APPEND skips the B-tree search; the record
            // is encoded straight into the page LMDB reserved for it. A record
            // just over whole overflow pages is cut at the last page boundary
            // and its last bytes go to `log_tail` (``RecordSplit``).
            if let head = split.headLength(recordSize: size, payloadStart: size - message.payload.readableBytes) {
                try log.putReserved(key: seqKey, size: head, flags: .append, from: message) { message, out in
                    RecordCodec.encodeHead(message, timestamp: timestamp, into: out)
                }
                try logTail.putReserved(key: seqKey, size: size - head, flags: .append, from: message) { message, out in
                    RecordCodec.encodeTail(message, into: out)
                }
            } else {
                try log.putReserved(key: seqKey, size: size, flags: .append, from: message) { message, out in
                    RecordCodec.encode(message, timestamp: timestamp, into: out)
                }
            }
            let inserted = try message.topic.value.withUTF8Bytes { (topicBytes) throws(StoreError) -> Bool in
                try topics.put(key: topicBytes, value: seqKey, flags: .appendDuplicate)
            }
            guard inserted else {
                throw .corrupted(operation: "topic index append", detail: "sequence \(sequence) is not above the indexed ones for \(message.topic)")
            }
            guard let dedupEntry else { return }
            try dedupEntry.withBytes(timestamp: timestamp) { (key, orderValue) throws(StoreError) in
                // One producer session's keys grow with its publish ids, so
                // APPEND usually works and fills pages instead of splitting
                // them in half (LMDB splits mid-page otherwise: twice the
                // pages written per commit). A key below the newest one (an
                // older session interleaving) falls back to a normal insert.
                if try !dedup.put(key: key, value: seqKey, flags: .append) {
                    try dedup.put(key: key, value: seqKey)
                }
                // dedup_order value: the dedup key then the timestamp, for age pruning.
                try dedupOrder.put(key: seqKey, value: orderValue, flags: .append)
            }
            dedupCeiling.stored(dedupEntry)
        }
    }

    /// The original sequence and timestamp of an earlier publish with this dedup key.
    private func existingSequence(_ entry: DedupEntry, schema: borrowing Schema,
                                  in txn: borrowing WriteTransaction) throws(StoreError) -> (sequence: UInt64, timestamp: UInt64)? {
        try entry.withBytes(timestamp: 0) { (key, _) throws(StoreError) -> (sequence: UInt64, timestamp: UInt64)? in
            guard let sequence = try txn.get(schema.dedup, key: key, { value in
                value.count == 8 ? value.readUInt64BE(at: 0) : nil
            }) ?? nil else { return nil }
            let timestamp = try withBigEndianBytes(sequence) { (seqKey) throws(StoreError) -> UInt64? in
                try txn.get(schema.dedupOrder, key: seqKey) { value in
                    value.count == Schema.dedupKeySize + 8 ? value.readUInt64BE(at: Schema.dedupKeySize) : 0
                }
            } ?? 0
            return (sequence, timestamp)
        }
    }

    /// Time index, topic stats and the persisted next sequence: once per commit.
    private mutating func finishCommit(first: UInt64, next: UInt64, timestamp: UInt64,
                                       in txn: borrowing WriteTransaction) throws(StoreError) {
        let schema = self.schema
        try withBigEndianBytes(timestamp) { (timeKey) throws(StoreError) in
            try withBigEndianBytes(first) { (firstSeq) throws(StoreError) in
                try txn.put(schema.time, key: timeKey, value: firstSeq, flags: .append)
            }
        }
        for (topic, delta) in statDeltas {
            let topic = topic
            try topic.withUTF8Bytes { (utf8) throws(StoreError) in
                let key = utf8
                let old = try txn.get(schema.topicStats, key: key) { value in
                    value.count == 16 ? (value.readUInt64BE(at: 0), value.readUInt64BE(at: 8)) : (0, 0)
                } ?? (0, 0)
                try TopicStats.put(count: old.0 + delta.count, bytes: old.1 + delta.bytes, key: key, schema: schema, in: txn)
            }
        }
        // Kept so sequences never restart, even when retention empties the log.
        try Self.nextSequenceKey.withBytes { (key) throws(StoreError) in
            try withBigEndianBytes(next) { (value) throws(StoreError) in
                try txn.put(schema.meta, key: key, value: value)
            }
        }
    }
}

/// The per-topic stats value: count ‖ bytes, both u64 BE.
enum TopicStats {
    static func put(count: UInt64, bytes: UInt64, key: UnsafeRawBufferPointer, schema: Schema,
                    in txn: borrowing WriteTransaction) throws(StoreError) {
        var value = (count.bigEndian, bytes.bigEndian)
        _ = try withUnsafeBytes(of: &value) { (raw) throws(StoreError) in
            try txn.put(schema.topicStats, key: key, value: raw)
        }
    }
}
