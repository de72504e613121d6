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
        let limit = max(1, maxMessages)
        var decoder = RecordDecoder(expectedBytes: maxBytes)
        let progress = try walk(from: from, filter: filter, maxScan: maxScan) { (record, sequence) throws(StoreError) in
            try decoder.decode(record, sequence: sequence)
            return decoder.count >= limit || decoder.payloadBytes >= maxBytes ? .full : .more
        }
        return ReadBatch(messages: decoder.finish(), next: progress.next, reachedEnd: progress.reachedEnd)
    }

    /// Reads messages of one topic from sequence `from` on, through the topic
    /// index (other topics are never touched).
    public func read(topic: Topic, from: UInt64, maxMessages: Int = 1024, maxBytes: Int = 1 << 20) throws(StoreError) -> ReadBatch {
        try read(from: from, filter: TopicFilter(exactly: topic), maxMessages: maxMessages, maxBytes: maxBytes)
    }

    /// ``read(from:filter:maxMessages:maxBytes:maxScan:)`` without decoding:
    /// hands each matching record to `body` inside the read transaction, so
    /// the caller writes it straight into its output (one copy instead of
    /// two, and no ``StoredMessage``). Stops before the record `body`
    /// refuses (``ReadProgress/next`` is its sequence), after `maxMessages`
    /// records or once their header fields and payloads reach `maxBytes`,
    /// as a read would.
    public func visit(from: UInt64, filter: TopicFilter, maxMessages: Int, maxBytes: Int, maxScan: Int,
                      _ body: (borrowing StoredRecord) -> Bool) throws(StoreError) -> ReadProgress {
        let limit = max(1, maxMessages)
        var check = RecordCheck()
        var count = 0, bytes = 0
        return try walk(from: from, filter: filter, maxScan: maxScan) { (raw, sequence) throws(StoreError) in
            let record = try check.check(raw, sequence: sequence)
            guard body(record) else { return .stopBefore }
            count += 1
            bytes += record.countedBytes
            return count >= limit || bytes >= maxBytes ? .full : .more
        }
    }

    /// What a walk's step says about the record it was handed.
    enum WalkStep {
        /// Taken; go on.
        case more
        /// Taken; that was the last one.
        case full
        /// Not taken; stop, and the next read starts at it.
        case stopBefore
    }

    /// Hands each record matching `filter` from `from` on to `take`, inside
    /// one read transaction, until it says stop, the log ends, or (for a
    /// wildcard) `maxScan` records were examined. The record is a view into
    /// the map (or, for a record cut into head and tail, into a buffer
    /// holding both: ``RecordJoiner``), valid only during `take`. A literal filter walks the topic
    /// index; a wildcard one the log.
    func walk(from: UInt64, filter: TopicFilter, maxScan: Int,
              take: (UnsafeRawBufferPointer, UInt64) throws(StoreError) -> WalkStep) throws(StoreError) -> ReadProgress {
        let schema = self.schema
        if filter.isLiteral, let topic = try? Topic(filter.value) {
            let topicBytes = Array(topic.value.utf8)
            return try environment.read { (txn) throws(StoreError) -> ReadProgress in
                var next = max(from, 1)
                var joiner = RecordJoiner()
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
                            var step: WalkStep?
                            if let at = logAt, current == at &+ 1 {
                                step = try log.move(.next) { (key, record) throws(StoreError) -> WalkStep? in
                                    guard key.count == 8, key.readUInt64BE(at: 0) == current else { return nil }
                                    guard RecordCodec.continuesInTail(record) else { return try take(record, current) }
                                    return try joiner.withWhole(record, sequence: current, schema: schema, in: txn) {
                                        (whole) throws(StoreError) -> WalkStep in try take(whole, current)
                                    }
                                } ?? nil
                            }
                            if step == nil {
                                step = try withBigEndianBytes(current) { (key) throws(StoreError) -> WalkStep? in
                                    try log.move(.key, key: key) { (_, record) throws(StoreError) -> WalkStep in
                                        guard RecordCodec.continuesInTail(record) else { return try take(record, current) }
                                        return try joiner.withWhole(record, sequence: current, schema: schema, in: txn) {
                                            (whole) throws(StoreError) -> WalkStep in try take(whole, current)
                                        }
                                    }
                                }
                            }
                            guard let step else {
                                throw .corrupted(operation: "topic replay", detail: "the topic index lists \(current) but the log has no such record")
                            }
                            logAt = current
                            switch step {
                            case .more: break
                            case .full: return false
                            case .stopBefore:
                                next = current
                                return false
                            }
                            sequence = try cursor.move(.nextDuplicate) { _, v in v.readUInt64BE(at: 0) }
                        }
                        return true
                    }
                }
                if reachedEnd { next = max(next, try Reader.nextSequence(schema: schema, in: txn)) }
                return ReadProgress(next: next, reachedEnd: reachedEnd)
            }
        }
        return try environment.read { (txn) throws(StoreError) -> ReadProgress in
            var next = max(from, 1)
            var joiner = RecordJoiner()
            let reachedEnd = try txn.withCursor(schema.log) { (cursor) throws(StoreError) -> Bool in
                var scanned = 0
                // One LMDB call per record: position with SET_RANGE, then NEXT,
                // each handing the entry straight to the closure.
                var operation = CursorOperation.keyRange
                while true {
                    let step = try withBigEndianBytes(next) { (start) throws(StoreError) -> WalkStep? in
                        try cursor.move(operation, key: start) { (key, record) throws(StoreError) -> WalkStep in
                            let sequence = key.readUInt64BE(at: 0)
                            next = sequence + 1
                            guard let topic = RecordCodec.topicBytes(of: record) else {
                                throw .invalidRecord(sequence: sequence, reason: "unknown record version or truncated topic")
                            }
                            guard filter.matches(utf8: topic) else { return .more }
                            // Records stored whole (all but a few large ones) go to
                            // `take` straight from the map; the joiner is out of line.
                            let step = RecordCodec.continuesInTail(record)
                                ? try joiner.withWhole(record, sequence: sequence, schema: schema, in: txn) {
                                    (whole) throws(StoreError) -> WalkStep in try take(whole, sequence)
                                }
                                : try take(record, sequence)
                            if step == .stopBefore { next = sequence }
                            return step
                        }
                    }
                    guard let step else { return true }
                    scanned += 1
                    if step != .more || scanned >= maxScan { return false }
                    operation = .next
                }
            }
            if reachedEnd { next = max(next, try Reader.nextSequence(schema: schema, in: txn)) }
            return ReadProgress(next: next, reachedEnd: reachedEnd)
        }
    }
}
