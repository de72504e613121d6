import RelayCore
import RelayStore

/// A ``MessageLog`` that forwards every call to `base`: the tests subclass
/// it to change one behaviour of a real log (hold a read, drop the admin
/// half) and keep the rest as the real log does it.
class ForwardingMessageLog: MessageLog, @unchecked Sendable {
    let base: any MessageLog

    init(base: any MessageLog) { self.base = base }

    var readsWaitOnService: Bool { base.readsWaitOnService }
    var dedupWindow: DedupWindow { base.dedupWindow }

    func append(_ messages: [NewMessage], completion: @escaping @Sendable ([Result<AppendReceipt, StoreError>]) -> Void) {
        base.append(messages, completion: completion)
    }

    func read(from: UInt64, filter: TopicFilter, maxMessages: Int, maxBytes: Int, maxScan: Int) throws(StoreError) -> ReadBatch {
        try base.read(from: from, filter: filter, maxMessages: maxMessages, maxBytes: maxBytes, maxScan: maxScan)
    }

    func visit(from: UInt64, filter: TopicFilter, maxMessages: Int, maxBytes: Int, maxScan: Int,
               _ body: (borrowing StoredRecord) -> Bool) throws(StoreError) -> ReadProgress {
        try base.visit(from: from, filter: filter, maxMessages: maxMessages, maxBytes: maxBytes, maxScan: maxScan, body)
    }

    func startSequence(_ position: StartPosition, filter: TopicFilter) throws(StoreError) -> UInt64 {
        try base.startSequence(position, filter: filter)
    }

    func lastSequence() throws(StoreError) -> UInt64 { try base.lastSequence() }

    func commitCursor(owner: DurableOwner, name: String, sequence: UInt64, filter: String,
                      completion: @escaping @Sendable (Result<Void, StoreError>) -> Void) {
        base.commitCursor(owner: owner, name: name, sequence: sequence, filter: filter, completion: completion)
    }

    func durableCursor(owner: DurableOwner, name: String) throws(StoreError) -> DurableCursor? {
        try base.durableCursor(owner: owner, name: name)
    }

    func durableNames(owner: DurableOwner, limit: Int) throws(StoreError) -> [String] {
        try base.durableNames(owner: owner, limit: limit)
    }

    func legacyCursor(principal: String, name: String) throws(StoreError) -> UInt64? {
        try base.legacyCursor(principal: principal, name: name)
    }

    func adoptLegacyCursor(principal: String, name: String, owner: DurableOwner, sequence: UInt64, filter: String,
                           completion: @escaping @Sendable (Result<Void, StoreError>) -> Void) {
        base.adoptLegacyCursor(principal: principal, name: name, owner: owner, sequence: sequence, filter: filter,
                               completion: completion)
    }

    func prune() async throws(StoreError) -> Int { try await base.prune() }
    func usage() throws(StoreError) -> StorageUsage { try base.usage() }
    func close() { base.close() }
}
