import RelayCore

/// The narrow message-log interface the broker depends on (DESIGN.md
/// "beyond one machine"): append → durable sequence, read from a position,
/// commit a durable cursor. ``MessageStore`` (LMDB) is the only
/// implementation today; a JetStream-backed one could replace it without
/// touching the broker.
public protocol MessageLog: Sendable {
    /// Queues messages for the next durable commit; `completion` gets one
    /// result per message, in order, on the store's writer thread (hop to
    /// your event loop in it; do no work there).
    func append(_ messages: [NewMessage], completion: @escaping @Sendable ([Result<AppendReceipt, StoreError>]) -> Void)
    /// A bounded batch of messages matching `filter`, from `from` on.
    func read(from: UInt64, filter: TopicFilter, maxMessages: Int, maxBytes: Int, maxScan: Int) throws(StoreError) -> ReadBatch
    /// The first sequence a subscription starting at `position` reads.
    func startSequence(_ position: StartPosition, filter: TopicFilter) throws(StoreError) -> UInt64
    /// The newest sequence ever stored (0 when none).
    func lastSequence() throws(StoreError) -> UInt64
    func commitCursor(owner: DurableOwner, name: String, sequence: UInt64,
                      completion: @escaping @Sendable (Result<Void, StoreError>) -> Void)
    func cursor(owner: DurableOwner, name: String) throws(StoreError) -> UInt64?
}

extension MessageStore: MessageLog {}
