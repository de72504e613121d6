import RelayCore

/// The admin operations on the LMDB store. Listings run in one read
/// transaction; purge in one write transaction on the calling thread, which
/// a stopping broker can abort between batches of records (LMDB
/// serialises it with the writer thread's commits; the writer keeps no
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
        // Never stopped: a result always comes.
        try purge(filter, stoppingWhen: { false }) ?? PurgeResult(messages: 0, bytes: 0, topics: 0)
    }

    /// How many records a purge deletes between two asks whether to stop.
    static let purgeStopCheckInterval = 1_024

    public func purge(_ filter: TopicFilter, stoppingWhen stop: () -> Bool) throws(StoreError) -> PurgeResult? {
        let schema = self.schema
        // Thrown out of the transaction to abort it; only this function throws it.
        let stopping = StoreError.invalidArgument("purge stopped before its commit")
        var stopped = false
        func checkStop() throws(StoreError) {
            if stop() { stopped = true; throw stopping }
        }
        do {
            return try purgeInOneTransaction(filter, schema: schema, check: checkStop)
        } catch {
            if stopped, error == stopping { return nil }
            throw error
        }
    }

    private func purgeInOneTransaction(_ filter: TopicFilter, schema: Schema,
                                       check: () throws(StoreError) -> Void) throws(StoreError) -> PurgeResult {
        try environment.write { (txn) throws(StoreError) -> PurgeResult in
            // Asked once the writer is ours: a purge waiting for it may be stopped.
            try check()
            var topics: [[UInt8]] = []
            try txn.withCursor(schema.topicStats) { (cursor) throws(StoreError) in
                var operation = CursorOperation.first
                while let key = try cursor.move(operation, { key, _ in filter.matches(utf8: key) ? Array(key) : nil }) {
                    operation = .next
                    if let key { topics.append(key) }
                }
            }
            var (messages, bytes): (UInt64, UInt64) = (0, 0)
            var visited = 0
            for topic in topics {
                try topic.withBytes { (topicKey) throws(StoreError) in
                    var sequences: [UInt64] = []
                    try txn.withCursor(schema.topics) { (cursor) throws(StoreError) in
                        var operation = CursorOperation.key
                        while let seq = try cursor.move(operation, key: topicKey, { _, v in v.readUInt64BE(at: 0) }) {
                            operation = .nextDuplicate
                            sequences.append(seq)
                        }
                    }
                    for seq in sequences {
                        visited += 1
                        if visited % Self.purgeStopCheckInterval == 0 { try check() }
                        try withBigEndianBytes(seq) { (seqKey) throws(StoreError) in
                            if let size = try LogRecords.delete(seqKey, schema: schema, in: txn) {
                                bytes += UInt64(size)
                                messages += 1
                            }
                        }
                    }
                    try txn.delete(schema.topics, key: topicKey)
                    try txn.delete(schema.topicStats, key: topicKey)
                }
            }
            return PurgeResult(messages: messages, bytes: bytes, topics: topics.count)
        }
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
