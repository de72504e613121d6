import RelayCore

/// The admin operations over the in-memory log, for unit tests of the
/// broker's admin layer. `backup` has nothing on disk to copy: it throws.
extension InMemoryMessageLog: MessageLogAdministration {
    public func durableCursors() throws(StoreError) -> [DurableCursorRecord] {
        try locked { () throws(StoreError) -> [DurableCursorRecord] in
            cursors.map { DurableCursorRecord(owner: $0.key.owner, name: $0.key.name, cursor: $0.value.sequence,
                                              filter: $0.value.filter) }
                .sorted { ($0.owner.digest.lexicographicallyPrecedes($1.owner.digest)) || ($0.owner == $1.owner && $0.name < $1.name) }
        }
    }

    public func topicStatistics() throws(StoreError) -> [TopicStatistics] {
        try locked { () throws(StoreError) -> [TopicStatistics] in
            var byTopic: [String: TopicStatistics] = [:]
            for message in messages {
                let size = UInt64(Self.size(payload: message.payload, topic: message.topic, headers: message.headers,
                                            publisher: message.publisher))
                if var entry = byTopic[message.topic.value] {
                    entry.messages += 1
                    entry.bytes = (entry.bytes ?? 0) + size
                    entry.lastSequence = message.sequence
                    entry.lastTimestamp = message.timestamp
                    byTopic[message.topic.value] = entry
                } else {
                    byTopic[message.topic.value] = TopicStatistics(
                        topic: message.topic.value, messages: 1, bytes: size, firstSequence: message.sequence,
                        lastSequence: message.sequence, firstTimestamp: message.timestamp, lastTimestamp: message.timestamp)
                }
            }
            return byTopic.values.sorted { $0.topic < $1.topic }
        }
    }

    public func purge(_ filter: TopicFilter) throws(StoreError) -> PurgeResult {
        try locked { () throws(StoreError) -> PurgeResult in
            var (count, bytes): (UInt64, UInt64) = (0, 0)
            var topics: Set<String> = []
            messages.removeAll { message in
                guard filter.matches(message.topic) else { return false }
                let size = Self.size(payload: message.payload, topic: message.topic, headers: message.headers,
                                     publisher: message.publisher)
                count += 1
                bytes += UInt64(size)
                usedBytes -= size
                topics.insert(message.topic.value)
                return true
            }
            return PurgeResult(messages: count, bytes: bytes, topics: topics.count)
        }
    }

    public func deleteDurableCursor(owner: DurableOwner, name: String) async throws(StoreError) -> Bool {
        try locked { () throws(StoreError) -> Bool in
            cursors.removeValue(forKey: CursorKey(owner: owner, name: name)) != nil
        }
    }

    public func backup(chunkSize: Int, to sink: (ArraySlice<UInt8>) throws -> Void) throws -> Int {
        throw StoreError.invalidArgument("the in-memory log has no files to back up; back up a relayd running on LMDB")
    }
}
