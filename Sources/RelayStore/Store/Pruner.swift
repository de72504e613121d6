/// Retention and dedup-window pruning, one bounded write transaction per
/// pass (at most `batchSize` deletions), run by the writer between commits.
///
/// Retention walks `topic_stats` (one entry per stored topic), resuming
/// where the previous pass stopped; for each topic the first matching rule
/// decides how many of its oldest messages go. Deleting oldest-first per
/// topic uses the topic index, so no pass scans the global log.
struct Pruner {
    static let prunedAtKey = Array("pruned_at".utf8)

    private let schema: Schema
    private let rules: [RetentionRule]
    private let dedup: DedupWindow
    private let batchSize: Int
    /// The topic the next retention pass starts at (empty: from the start).
    private var resumeTopic: [UInt8] = []
    /// A pass deleted something: the next one commits even if it deletes nothing.
    private var followUpNeeded = false

    init(schema: Schema, rules: [RetentionRule], dedup: DedupWindow, batchSize: Int) {
        self.schema = schema
        self.rules = rules
        self.dedup = dedup
        self.batchSize = max(1, batchSize)
    }

    struct PassResult {
        /// Entries deleted: messages, dedup keys and time index entries.
        var deleted: Int
        /// Messages deleted by retention.
        var messagesDeleted: Int
        /// Nothing more is due right now.
        var complete: Bool
        var resumeTopic: [UInt8]
    }

    mutating func commit(_ result: PassResult) {
        resumeTopic = result.resumeTopic
        followUpNeeded = result.deleted > 0
    }

    func pass(in txn: borrowing WriteTransaction, now: UInt64, nextSequence: UInt64) throws(StoreError) -> PassResult {
        var budget = batchSize
        let dedupDone = try pruneDedup(in: txn, now: now, budget: &budget)
        var result = PassResult(deleted: 0, messagesDeleted: 0, complete: dedupDone, resumeTopic: resumeTopic)
        if !rules.isEmpty && budget > 0 {
            let before = budget
            let (done, next) = try pruneTopics(in: txn, now: now, nextSequence: nextSequence, budget: &budget)
            result.messagesDeleted = before - budget
            result.complete = result.complete && done
            result.resumeTopic = next
        }
        if budget > 0 { try pruneTimeIndex(in: txn, budget: &budget) }
        result.deleted = batchSize - budget
        if followUpNeeded || result.deleted > 0 {
            try Self.prunedAtKey.withBytes { (key) throws(StoreError) in
                try withBigEndianBytes(now) { (value) throws(StoreError) in
                    try txn.put(schema.meta, key: key, value: value)
                }
            }
        }
        return result
    }

    // MARK: Dedup window

    /// Deletes the oldest producer keys beyond the window. True when within it.
    private func pruneDedup(in txn: borrowing WriteTransaction, now: UInt64, budget: inout Int) throws(StoreError) -> Bool {
        var entries = try txn.count(schema.dedupOrder)
        let cutoff = now &- min(now, UInt64(nanoseconds(dedup.maxAge)))
        let schema = self.schema
        return try txn.withCursor(schema.dedupOrder) { (cursor) throws(StoreError) -> Bool in
            while budget > 0 {
                guard let entry = try cursor.move(.first, { (key, value) -> (seq: UInt64, key: [UInt8], ts: UInt64)? in
                    let size = Schema.dedupKeySize
                    guard key.count == 8, value.count == size + 8 else { return nil }
                    return (key.readUInt64BE(at: 0), Array(value[0..<size]), value.readUInt64BE(at: size))
                }) else { return true }
                guard let entry else {
                    throw .corrupted(operation: "dedup pruning", detail: "dedup_order entry has an unexpected size")
                }
                guard entries > dedup.maxEntries || entry.ts < cutoff else { return true }
                try entry.key.withBytes { (dedupKey) throws(StoreError) in
                    // Delete the producer key only if it still points at this message
                    // (mdb_del ignores the value outside dupsort databases, so compare here).
                    let current = try txn.get(schema.dedup, key: dedupKey) { $0.count == 8 ? $0.readUInt64BE(at: 0) : nil }
                    if current == entry.seq { try txn.delete(schema.dedup, key: dedupKey) }
                }
                try cursor.deleteCurrent()
                entries -= 1
                budget -= 1
            }
            return false
        }
    }

    // MARK: Retention

    private func pruneTopics(in txn: borrowing WriteTransaction, now: UInt64, nextSequence: UInt64,
                             budget: inout Int) throws(StoreError) -> (done: Bool, resume: [UInt8]) {
        var ageCutoffs: [Int: UInt64] = [:]
        var topic = resumeTopic
        // Visiting topics costs time even when nothing is deleted: bound it too.
        var visitsLeft = 4 * batchSize
        while budget > 0 && visitsLeft > 0 {
            visitsLeft -= 1
            // Next topic at or after `topic` (re-positioned per topic because deletes move cursors).
            guard let next = try nextTopicStats(after: topic, in: txn) else { return (true, []) }
            topic = next.topic
            if let ruleIndex = rules.firstIndex(where: { rule in topic.withUnsafeBytes { rule.filter.matches(utf8: $0) } }) {
                let rule = rules[ruleIndex]
                var keepFrom: UInt64 = 0
                if let maxAge = rule.maxAge {
                    if let cached = ageCutoffs[ruleIndex] { keepFrom = cached } else {
                        let cutoffTime = now &- min(now, UInt64(nanoseconds(maxAge)))
                        keepFrom = try firstSequence(atOrAfter: cutoffTime, in: txn) ?? nextSequence
                        ageCutoffs[ruleIndex] = keepFrom
                    }
                }
                try pruneTopic(topic, count: next.count, bytes: next.bytes, rule: rule, keepFrom: keepFrom,
                               in: txn, budget: &budget)
                // Out of budget: the next pass resumes at this same topic.
                if budget == 0 { return (false, topic) }
            }
            topic.append(0)  // the smallest key after `topic`
        }
        return (false, topic)
    }

    private func nextTopicStats(after topic: [UInt8], in txn: borrowing WriteTransaction)
    throws(StoreError) -> (topic: [UInt8], count: UInt64, bytes: UInt64)? {
        try txn.withCursor(schema.topicStats) { (cursor) throws(StoreError) in
            let body = { (key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer) -> ([UInt8], UInt64, UInt64) in
                (Array(key), value.count == 16 ? value.readUInt64BE(at: 0) : 0, value.count == 16 ? value.readUInt64BE(at: 8) : 0)
            }
            if topic.isEmpty { return try cursor.move(.first, body) }
            return try topic.withBytes { (key) throws(StoreError) in try cursor.move(.keyRange, key: key, body) }
        }
    }

    /// Deletes the oldest messages of one topic until the rule is satisfied.
    private func pruneTopic(_ topic: [UInt8], count: UInt64, bytes: UInt64, rule: RetentionRule, keepFrom: UInt64,
                            in txn: borrowing WriteTransaction, budget: inout Int) throws(StoreError) {
        var count = count, bytes = bytes
        let schema = self.schema
        try topic.withBytes { (topicKey) throws(StoreError) in
            try txn.withCursor(schema.topics) { (cursor) throws(StoreError) in
                while budget > 0 && count > 0 {
                    guard let oldest = try cursor.move(.key, key: topicKey, { _, value in
                        value.count == 8 ? value.readUInt64BE(at: 0) : 0
                    }) else { break }
                    let overCount = rule.maxMessages.map { count > UInt64(max(0, $0)) } ?? false
                    let overBytes = rule.maxBytes.map { bytes > UInt64(max(0, $0)) } ?? false
                    let tooOld = oldest < keepFrom
                    guard overCount || overBytes || tooOld else { break }
                    let size = try withBigEndianBytes(oldest) { (seqKey) throws(StoreError) -> Int in
                        try LogRecords.delete(seqKey, schema: schema, in: txn) ?? 0
                    }
                    try cursor.deleteCurrent()
                    count -= 1
                    bytes -= min(bytes, UInt64(size))
                    budget -= 1
                }
            }
            if count == 0 {
                try txn.delete(schema.topicStats, key: topicKey)
            } else {
                try TopicStats.put(count: count, bytes: bytes, key: topicKey, schema: schema, in: txn)
            }
        }
    }

    /// The first sequence committed at or after `time`, from the time index.
    private func firstSequence(atOrAfter time: UInt64, in txn: borrowing WriteTransaction) throws(StoreError) -> UInt64? {
        try txn.withCursor(schema.time) { (cursor) throws(StoreError) -> UInt64? in
            try withBigEndianBytes(time) { (key) throws(StoreError) -> UInt64? in
                try cursor.move(.keyRange, key: key) { _, value in value.readUInt64BE(at: 0) }
            }
        }
    }

    // MARK: Time index

    /// Drops time entries whose whole commit has been pruned: an entry goes
    /// when the entry after it starts at or below the oldest stored sequence.
    private func pruneTimeIndex(in txn: borrowing WriteTransaction, budget: inout Int) throws(StoreError) {
        let schema = self.schema
        let oldest = try txn.withCursor(schema.log) { (cursor) throws(StoreError) -> UInt64? in
            try cursor.move(.first) { key, _ in key.readUInt64BE(at: 0) }
        }
        try txn.withCursor(schema.time) { (cursor) throws(StoreError) in
            while budget > 0 {
                guard try cursor.position(.first) else { return }
                let second = try cursor.move(.next) { _, value in value.readUInt64BE(at: 0) }
                if let oldest {
                    // The first commit still has messages unless the next one starts at or below the oldest.
                    guard let second, second <= oldest else { return }
                }
                // (An empty log makes every entry obsolete.)
                guard try cursor.position(.first) else { return }
                try cursor.deleteCurrent()
                budget -= 1
            }
        }
    }
}

func nanoseconds(_ d: Duration) -> Int64 {
    let (s, atto) = d.components
    let (ns, overflow) = s.multipliedReportingOverflow(by: 1_000_000_000)
    return overflow ? Int64.max : ns &+ atto / 1_000_000_000
}
