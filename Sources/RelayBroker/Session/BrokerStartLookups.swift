import Logging
import RelayCore
import RelayStore

/// A SUB's look-ups (``StartLookups``) answered from the broker's log and
/// durable claims. Sendable, so that on a log whose reads wait on a service
/// they run on an ``OffLoopLogReads`` thread, not the session's event loop;
/// ``SessionIO`` answers with the same code inline on a local log.
struct BrokerStartLookups: StartLookups, Sendable {
    let broker: BrokerContext
    /// The cursor of a durable this connection's own detach was still
    /// committing when the SUB claimed it again (``SessionIO/claimDurable(owner:name:)``).
    let reattached: (key: DurableClaims.Key, cursor: DurableCursor)?
    var logger: Logger { broker.logger }

    func durablesHeld(owner: DurableOwner, besides name: String, upTo limit: Int) throws(StoreError) -> Int {
        try broker.durablesHeld(owner: owner, besides: name, upTo: limit)
    }

    /// The owner's committed cursor; else a cursor migrated from a
    /// schema-1 store under this session's principal, which this owner then
    /// adopts (the legacy key is deleted, so it is handed out once). A
    /// cursor with no stored filter (written before filters were stored)
    /// takes `filter` now, committed at the same position, so the next SUB
    /// under another filter is refused even after a restart.
    func resumeCursor(owner: DurableOwner, name: String, principal: String, filter: String) throws(StoreError) -> DurableCursor? {
        // Attached again behind its own detach: the store may not have the
        // cursor that detach is committing yet, but it is known.
        if let reattached, reattached.key == DurableClaims.Key(owner: owner, name: name) { return reattached.cursor }
        let logger = self.logger
        if let cursor = try broker.store.durableCursor(owner: owner, name: name) {
            guard cursor.filter == nil else { return cursor }
            broker.store.commitCursor(owner: owner, name: name, sequence: cursor.sequence, filter: filter) { result in
                if case .failure(let error) = result {
                    logger.error("storing an adopted durable filter failed", metadata: ["name": "\(name)", "error": "\(error)"])
                }
            }
            logger.notice("durable cursor without a stored filter adopted the SUB's filter",
                          metadata: ["name": "\(name)", "filter": "\(filter)", "sequence": "\(cursor.sequence)"])
            return DurableCursor(sequence: cursor.sequence, filter: filter)
        }
        guard let legacy = try broker.store.legacyCursor(principal: principal, name: name) else { return nil }
        broker.store.adoptLegacyCursor(principal: principal, name: name, owner: owner, sequence: legacy, filter: filter) { result in
            if case .failure(let error) = result {
                logger.error("adopting a migrated durable cursor failed", metadata: ["name": "\(name)", "error": "\(error)"])
            }
        }
        logger.notice("durable cursor migrated from schema 1 adopted",
                      metadata: ["name": "\(name)", "principal": "\(principal)", "sequence": "\(legacy)"])
        return DurableCursor(sequence: legacy, filter: filter)
    }

    func startSequence(_ start: StartPosition, filter: TopicFilter) throws(StoreError) -> UInt64 {
        try broker.store.startSequence(start, filter: filter)
    }
}
