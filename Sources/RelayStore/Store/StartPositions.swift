import RelayCore

/// Resolving a subscription's ``StartPosition`` to the first sequence its
/// replay reads. Runs on the caller's thread (an event loop in relayd), so
/// every case is bounded: `earliest`, `latest`, `sequence` and `time` are one
/// seek each, and `last N` examines at most
/// ``StoreConfiguration/maxStartScan`` entries (issue 16 item 6).
extension MessageStore {
    /// The first sequence a replay of `filter` starting at `position` reads.
    /// `latest` is the next sequence to be committed.
    ///
    /// `last N` walks back from the newest message, through the topic index
    /// for a literal filter and through the log for a wildcard one, until it
    /// has seen N matching messages or examined `maxStartScan` entries. It
    /// returns the oldest match it saw, or the next sequence when it saw none:
    /// past the bound, the subscription gets the matches within it (fewer
    /// than N), as if the log started there.
    public func startSequence(_ position: StartPosition, filter: TopicFilter) throws(StoreError) -> UInt64 {
        let schema = self.schema
        switch position {
        case .earliest:
            if let first = try firstSequence() { return first }
            return try lastSequence() + 1
        case .sequence(let s):
            return max(s, 1)
        case .latest:
            return try lastSequence() + 1
        case .time(let t):
            return try environment.read { (txn) throws(StoreError) -> UInt64 in
                let found = try txn.withCursor(schema.time) { (cursor) throws(StoreError) -> UInt64? in
                    try withBigEndianBytes(t) { (key) throws(StoreError) -> UInt64? in
                        try cursor.move(.keyRange, key: key) { _, v in v.readUInt64BE(at: 0) }
                    }
                }
                if let found { return found }
                return try Reader.nextSequence(schema: schema, in: txn)
            }
        case .last(let n):
            guard n > 0 else { return try lastSequence() + 1 }
            let bound = max(1, configuration.maxStartScan)
            if filter.isLiteral { return try lastMessages(n, ofTopic: filter.value, scanning: bound) }
            return try lastMessages(n, matching: filter, scanning: bound)
        }
    }

    /// Walks the topic index backwards from the topic's newest message, at
    /// most `bound` entries (none when the topic holds at most N messages).
    private func lastMessages(_ n: UInt64, ofTopic topic: String, scanning bound: Int) throws(StoreError) -> UInt64 {
        let schema = self.schema
        let key = Array(topic.utf8)
        let wanted = min(n, UInt64(bound))
        return try environment.read { (txn) throws(StoreError) -> UInt64 in
            let start = try txn.withCursor(schema.topics) { (cursor) throws(StoreError) -> UInt64? in
                let exists = try key.withBytes { (k) throws(StoreError) -> Bool in
                    try cursor.position(.key, key: k)
                }
                guard exists else { return nil }
                // SET_KEY stands on the topic's oldest message: when the topic
                // holds at most N, that is the answer, whatever the bound.
                if try UInt64(cursor.duplicateCount()) <= n {
                    return try cursor.move(.current) { _, v in v.readUInt64BE(at: 0) }
                }
                var sequence = try cursor.move(.lastDuplicate) { _, v in v.readUInt64BE(at: 0) }
                var seen: UInt64 = 1
                while seen < wanted, let previous = try cursor.move(.previousDuplicate, { _, v in v.readUInt64BE(at: 0) }) {
                    sequence = previous
                    seen += 1
                }
                return sequence
            }
            if let start { return start }
            return try Reader.nextSequence(schema: schema, in: txn)
        }
    }

    /// Scans the log backwards from its newest record, at most `bound`
    /// records, in one read transaction.
    private func lastMessages(_ n: UInt64, matching filter: TopicFilter, scanning bound: Int) throws(StoreError) -> UInt64 {
        let schema = self.schema
        return try environment.read { (txn) throws(StoreError) -> UInt64 in
            var start = try Reader.nextSequence(schema: schema, in: txn)
            var remaining = n
            try txn.withCursor(schema.log) { (cursor) throws(StoreError) in
                var found = try cursor.position(.last)
                var scanned = 0
                while found && scanned < bound {
                    try cursor.move(.current) { (k, record) throws(StoreError) in
                        if let topic = RecordCodec.topicBytes(of: record), filter.matches(utf8: topic) {
                            start = k.readUInt64BE(at: 0)
                            remaining -= 1
                        }
                    }
                    scanned += 1
                    if remaining == 0 { return }
                    found = try cursor.position(.previous)
                }
            }
            return start
        }
    }
}
