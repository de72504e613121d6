import RelayCore

/// Read-side queries shared by the store's public methods; each runs inside
/// a transaction it is given.
enum Reader {
    static func nextSequence(schema: Schema, in txn: borrowing some TransactionReading & ~Copyable) throws(StoreError) -> UInt64 {
        let persisted = try Appender.nextSequenceKey.withBytes { (key) throws(StoreError) -> UInt64? in
            try txn.get(schema.meta, key: key) { $0.count == 8 ? $0.readUInt64BE(at: 0) : nil } ?? nil
        } ?? 1
        let last = try txn.withCursor(schema.log) { (cursor) throws(StoreError) -> UInt64? in
            try cursor.move(.last) { key, _ in key.readUInt64BE(at: 0) }
        }
        return max(persisted, (last ?? 0) + 1, 1)
    }

    static func lastCommitTimestamp(schema: Schema, in txn: borrowing some TransactionReading & ~Copyable) throws(StoreError) -> UInt64 {
        try txn.withCursor(schema.time) { (cursor) throws(StoreError) -> UInt64? in
            try cursor.move(.last) { key, _ in key.readUInt64BE(at: 0) }
        } ?? 0
    }
}

extension MessageStore {
    /// The sequence of the newest message ever stored (0 when none was).
    public func lastSequence() throws(StoreError) -> UInt64 {
        let schema = self.schema
        return try environment.read { (txn) throws(StoreError) -> UInt64 in try Reader.nextSequence(schema: schema, in: txn) } - 1
    }

    /// The sequence of the oldest stored message, or nil when the log is empty.
    public func firstSequence() throws(StoreError) -> UInt64? {
        let schema = self.schema
        return try environment.read { (txn) throws(StoreError) -> UInt64? in
            try txn.withCursor(schema.log) { (cursor) throws(StoreError) -> UInt64? in
                try cursor.move(.first) { key, _ in key.readUInt64BE(at: 0) }
            }
        }
    }

    /// Reads up to `maxMessages` messages matching `filter` from sequence
    /// `from` on (at least one message even if it exceeds `maxBytes`). A
    /// literal filter uses the topic index; a wildcard one scans the log, at
    /// most `maxScan` records per call so the read transaction stays short.
    public func read(from: UInt64, filter: TopicFilter, maxMessages: Int = 1024, maxBytes: Int = 1 << 20,
                     maxScan: Int = 65_536) throws(StoreError) -> ReadBatch {
        if filter.isLiteral, let topic = try? Topic(filter.value) {
            return try read(topic: topic, from: from, maxMessages: maxMessages, maxBytes: maxBytes)
        }
        let schema = self.schema
        let limit = max(1, maxMessages)
        return try environment.read { (txn) throws(StoreError) -> ReadBatch in
            var decoder = RecordDecoder(expectedBytes: maxBytes)
            var next = max(from, 1)
            let reachedEnd = try txn.withCursor(schema.log) { (cursor) throws(StoreError) -> Bool in
                var scanned = 0
                // One LMDB call per record: position with SET_RANGE, then NEXT,
                // each handing the entry straight to the closure.
                var operation = CursorOperation.keyRange
                while true {
                    let step = try withBigEndianBytes(next) { (start) throws(StoreError) -> Bool? in
                        try cursor.move(operation, key: start) { (key, record) throws(StoreError) -> Bool in
                            let sequence = key.readUInt64BE(at: 0)
                            next = sequence + 1
                            guard let topic = RecordCodec.topicBytes(of: record) else {
                                throw .invalidRecord(sequence: sequence, reason: "unknown record version or truncated topic")
                            }
                            if filter.matches(utf8: topic) { try decoder.decode(record, sequence: sequence) }
                            return decoder.count >= limit || decoder.payloadBytes >= maxBytes
                        }
                    }
                    guard let full = step else { return true }
                    scanned += 1
                    if full || scanned >= maxScan { return false }
                    operation = .next
                }
            }
            if reachedEnd { next = max(next, try Reader.nextSequence(schema: schema, in: txn)) }
            return ReadBatch(messages: decoder.finish(), next: next, reachedEnd: reachedEnd)
        }
    }

    /// Reads messages of one topic from sequence `from` on, through the topic
    /// index (other topics are never touched).
    public func read(topic: Topic, from: UInt64, maxMessages: Int = 1024, maxBytes: Int = 1 << 20) throws(StoreError) -> ReadBatch {
        let schema = self.schema
        let limit = max(1, maxMessages)
        let topicBytes = Array(topic.value.utf8)
        return try environment.read { (txn) throws(StoreError) -> ReadBatch in
            var decoder = RecordDecoder(expectedBytes: maxBytes)
            var next = max(from, 1)
            let reachedEnd = try txn.withCursor(schema.topics) { (cursor) throws(StoreError) -> Bool in
                // The records are fetched with a second cursor on the log: when the
                // topic's next sequence is the log's next record (one topic
                // written at a time, the common case), NEXT steps to it instead
                // of a B-tree search from the root for every message.
                try txn.withCursor(schema.log) { (log) throws(StoreError) -> Bool in
                    var sequence = try topicBytes.withBytes { (key) throws(StoreError) -> UInt64? in
                        try withBigEndianBytes(next) { (seq) throws(StoreError) -> UInt64? in
                            try cursor.move(.duplicateRange, key: key, value: seq) { _, v in v.readUInt64BE(at: 0) }
                        }
                    }
                    var logAt: UInt64?  // the sequence the log cursor stands on
                    while let current = sequence {
                        next = current + 1
                        var found = false
                        if let at = logAt, current == at &+ 1 {
                            found = try log.move(.next) { (key, record) throws(StoreError) -> Bool in
                                guard key.count == 8, key.readUInt64BE(at: 0) == current else { return false }
                                try decoder.decode(record, sequence: current)
                                return true
                            } ?? false
                        }
                        if !found {
                            found = try withBigEndianBytes(current) { (key) throws(StoreError) -> Bool in
                                try log.move(.key, key: key) { (_, record) throws(StoreError) in
                                    try decoder.decode(record, sequence: current)
                                } != nil
                            }
                        }
                        guard found else {
                            throw .corrupted(operation: "topic replay", detail: "the topic index lists \(current) but the log has no such record")
                        }
                        logAt = current
                        if decoder.count >= limit || decoder.payloadBytes >= maxBytes { return false }
                        sequence = try cursor.move(.nextDuplicate) { _, v in v.readUInt64BE(at: 0) }
                    }
                    return true
                }
            }
            if reachedEnd { next = max(next, try Reader.nextSequence(schema: schema, in: txn)) }
            return ReadBatch(messages: decoder.finish(), next: next, reachedEnd: reachedEnd)
        }
    }
}
