import RelayCore

/// The admin operations on the LMDB store. Listings run in one read
/// transaction; purge in batches of write transactions on the calling
/// thread, which a stopping broker can end between two batches (LMDB
/// serialises them with the writer thread's commits; the writer keeps no
/// copy of what purge changes: topic statistics are read inside each
/// commit, and sequences are never reused).
extension MessageStore: MessageLogAdministration {
    public func durableCursors() throws(StoreError) -> [DurableCursorRecord] {
        let schema = self.schema
        return try environment.read { (txn) throws(StoreError) -> [DurableCursorRecord] in
            try txn.withCursor(schema.cursors) { (cursor) throws(StoreError) -> [DurableCursorRecord] in
                var out: [DurableCursorRecord] = []
                var operation = CursorOperation.first
                while let entry = try cursor.move(operation, { key, value -> DurableCursorRecord? in
                    // 0x01 ‖ owner digest (32) ‖ name → seq ‖ filter; legacy (0x00) keys are skipped.
                    guard key.count > 33, key[0] == Schema.ownedCursorPrefix, let stored = DurableCursor.decode(value),
                          let owner = DurableOwner(digest: Array(key[1..<33])) else { return nil }
                    return DurableCursorRecord(owner: owner, name: String(decoding: key[33...], as: UTF8.self),
                                               cursor: stored.sequence, filter: stored.filter)
                }) {
                    operation = .next
                    if let entry { out.append(entry) }
                }
                return out
            }
        }
    }

    public func topicStatistics() throws(StoreError) -> [TopicStatistics] {
        let schema = self.schema
        var stats = try environment.read { (txn) throws(StoreError) -> [TopicStatistics] in
            var out: [TopicStatistics] = []
            try txn.withCursor(schema.topicStats) { (cursor) throws(StoreError) in
                var operation = CursorOperation.first
                while let (topic, count, bytes) = try cursor.move(operation, { key, value in
                    (String(decoding: key, as: UTF8.self), value.count == 16 ? value.readUInt64BE(at: 0) : 0,
                     value.count == 16 ? value.readUInt64BE(at: 8) : 0)
                }) {
                    operation = .next
                    out.append(TopicStatistics(topic: topic, messages: count, bytes: bytes, firstSequence: 0,
                                               lastSequence: 0, firstTimestamp: 0, lastTimestamp: 0))
                }
            }
            try txn.withCursor(schema.topics) { (cursor) throws(StoreError) in
                for i in out.indices {
                    try out[i].topic.withUTF8Bytes { (key) throws(StoreError) in
                        out[i].firstSequence = try cursor.move(.key, key: key) { _, v in v.readUInt64BE(at: 0) } ?? 0
                        out[i].lastSequence = try cursor.move(.lastDuplicate) { _, v in v.readUInt64BE(at: 0) } ?? 0
                    }
                }
            }
            return out
        }
        // Commit times from the records themselves (one literal-topic read each).
        for i in stats.indices {
            guard let topic = try? Topic(stats[i].topic) else { continue }
            let filter = TopicFilter(exactly: topic)
            stats[i].firstTimestamp = try read(from: stats[i].firstSequence, filter: filter, maxMessages: 1)
                .messages.first?.timestamp
            stats[i].lastTimestamp = try read(from: stats[i].lastSequence, filter: filter, maxMessages: 1)
                .messages.first?.timestamp
        }
        return stats
    }

    public func purge(_ filter: TopicFilter) throws(StoreError) -> PurgeResult {
        try purge(filter, stoppingWhen: { false })
    }

    /// Records a purge deletes per write transaction: bounds how long the
    /// appends queued behind it wait (a purge of a million messages in one
    /// transaction held LMDB's writer, and every PUBACK, for over a second).
    static let purgeBatchSize = 2_000

    public func purge(_ filter: TopicFilter, stoppingWhen stop: () -> Bool) throws(StoreError) -> PurgeResult {
        try purge(filter, stoppingWhen: stop, betweenBatches: {})
    }

    /// ``purge(_:stoppingWhen:)``; `betweenBatches` runs after each
    /// committed batch that leaves work for another, outside any
    /// transaction (tests publish there).
    func purge(_ filter: TopicFilter, stoppingWhen stop: () -> Bool,
               betweenBatches: () -> Void) throws(StoreError) -> PurgeResult {
        let schema = self.schema
        let target = try purgeTarget(filter, schema: schema)
        var result = PurgeResult(messages: 0, bytes: 0, topics: target.topics.count)
        var next = 0  // index of the first topic not yet emptied up to `target.end`
        // Thrown out of a batch's transaction to abort it; only this function throws it.
        let stopping = StoreError.invalidArgument("purge stopped before its batch")
        while next < target.topics.count {
            var stopped = false
            let batch: PurgeBatch
            do {
                batch = try environment.write { (txn) throws(StoreError) -> PurgeBatch in
                    // Asked once the writer is ours: a purge that waited for it may be stopped.
                    if stop() { stopped = true; throw stopping }
                    return try Self.purgeBatch(target, from: next, schema: schema, in: txn)
                }
            } catch {
                if stopped, error == stopping {
                    result.stopped = true
                    return result
                }
                throw error
            }
            result.messages += batch.messages
            result.bytes = (result.bytes ?? 0) + batch.bytes
            next = batch.next
            if next < target.topics.count { betweenBatches() }
        }
        // Nothing matched: still asked once, so a stopping broker's answer does not depend on the filter.
        if target.topics.isEmpty, stop() { result.stopped = true }
        return result
    }

    /// What a purge deletes: the topics matching its filter and the log's
    /// last sequence, as they were when it began. A message committed
    /// later, to any topic, is kept.
    private func purgeTarget(_ filter: TopicFilter, schema: Schema) throws(StoreError) -> (topics: [[UInt8]], end: UInt64) {
        try environment.read { (txn) throws(StoreError) -> ([[UInt8]], UInt64) in
            var topics: [[UInt8]] = []
            try txn.withCursor(schema.topicStats) { (cursor) throws(StoreError) in
                var operation = CursorOperation.first
                while let key = try cursor.move(operation, { key, _ in filter.matches(utf8: key) ? Array(key) : nil }) {
                    operation = .next
                    if let key { topics.append(key) }
                }
            }
            let end = try txn.withCursor(schema.log) { (cursor) throws(StoreError) -> UInt64 in
                try cursor.move(.last) { key, _ in key.readUInt64BE(at: 0) } ?? 0
            }
            return (topics, end)
        }
    }

    struct PurgeBatch {
        var messages: UInt64
        var bytes: UInt64
        /// The first topic with messages up to the target's end left.
        var next: Int
    }

    /// Deletes up to ``purgeBatchSize`` records, oldest first, topic by
    /// topic from `first`, keeping each topic's statistics exact (the
    /// appends between batches read and update them in their own commits).
    private static func purgeBatch(_ target: (topics: [[UInt8]], end: UInt64), from first: Int, schema: Schema,
                                   in txn: borrowing WriteTransaction) throws(StoreError) -> PurgeBatch {
        var batch = PurgeBatch(messages: 0, bytes: 0, next: first)
        var budget = purgeBatchSize
        while batch.next < target.topics.count && budget > 0 {
            let emptied = try target.topics[batch.next].withBytes { (topicKey) throws(StoreError) -> Bool in
                var (count, bytes) = try txn.get(schema.topicStats, key: topicKey) { (value) -> (UInt64, UInt64) in
                    value.count == 16 ? (value.readUInt64BE(at: 0), value.readUInt64BE(at: 8)) : (0, 0)
                } ?? (0, 0)
                var emptied = false
                try txn.withCursor(schema.topics) { (cursor) throws(StoreError) in
                    while budget > 0 {
                        // The topic's oldest sequence (re-positioned after each delete).
                        guard let oldest = try cursor.move(.key, key: topicKey, { _, value in
                            value.count == 8 ? value.readUInt64BE(at: 0) : 0
                        }), oldest <= target.end else {
                            emptied = true
                            return
                        }
                        let size = try withBigEndianBytes(oldest) { (seqKey) throws(StoreError) -> Int? in
                            try LogRecords.delete(seqKey, schema: schema, in: txn)
                        }
                        try cursor.deleteCurrent()
                        budget -= 1
                        count -= min(count, 1)
                        if let size {
                            bytes -= min(bytes, UInt64(size))
                            batch.messages += 1
                            batch.bytes += UInt64(size)
                        }
                    }
                }
                if count == 0 {
                    try txn.delete(schema.topicStats, key: topicKey)
                } else {
                    try TopicStats.put(count: count, bytes: bytes, key: topicKey, schema: schema, in: txn)
                }
                return emptied
            }
            if emptied { batch.next += 1 }
        }
        return batch
    }

    public func deleteDurableCursor(owner: DurableOwner, name: String) async throws(StoreError) -> Bool {
        guard try cursor(owner: owner, name: name) != nil else { return false }
        try await deleteCursor(owner: owner, name: name)
        return true
    }

    public func backup(chunkSize: Int, to sink: (ArraySlice<UInt8>) throws -> Void) throws -> Int {
        try environment.streamCompactedCopy(chunkSize: chunkSize, to: sink)
    }
}
