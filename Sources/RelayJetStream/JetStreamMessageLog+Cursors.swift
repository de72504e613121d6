import RelayCore
import RelayStore

/// Durable cursors in the shared bucket (docs/cluster.md, "Durable cursors").
/// Every commit is a compare-and-set on the key's revision as this edge
/// last read or wrote it (``CursorRevisions``), so a cursor another edge
/// deleted (purged) is never stored again and a cursor another edge moved
/// is never overwritten:
/// - the key is gone: ``StoreError/durableDeleted(name:)``, and the broker
///   ends the subscription with `durable_deleted`;
/// - the key holds the value this commit writes, or the one a put whose
///   ack was lost wrote: that was this edge's own write; adopted (retried
///   once on the new revision);
/// - the key holds another value: another edge has the durable attached
///   too; ``StoreError/durableConflict(name:stored:mine:)``, and the broker
///   ends this edge's subscription with `durable_in_use`. The cursor stored
///   is the other edge's.
/// A commit makes at most three requests (put, read, one retried put) and
/// never loops.
extension JetStreamMessageLog: KnownCursorReporting {
    /// Key-value keys allow `[-/_=.a-zA-Z0-9]`: the owner digest and the name in hex.
    func cursorKey(_ owner: DurableOwner, _ name: String) -> String {
        Self.cursorKeyPrefix(owner) + Hex.encode(Array(name.utf8))
    }

    fileprivate static func cursorKeyPrefix(_ owner: DurableOwner) -> String { "c." + Hex.encode(owner.digest) + "." }

    /// The bucket's keys under `c.<owner hex>.`, listed by one stream-info
    /// request (every edge sees the same count: the bucket is shared).
    public func durableNames(owner: DurableOwner, limit: Int) throws(StoreError) -> [String] {
        guard !isClosed else { throw .closed }
        guard limit > 0 else { return [] }
        let prefix = Self.cursorKeyPrefix(owner)
        let keys: [String]
        do { keys = try nats.keys(matching: prefix + ">") } catch { throw Self.storeError(error) }
        return keys.lazy.compactMap { key -> String? in
            guard key.hasPrefix(prefix), let bytes = Hex.decode(String(key.dropFirst(prefix.count))) else { return nil }
            return String(decoding: bytes, as: UTF8.self)
        }.prefix(limit).map { $0 }
    }

    /// The value is ``DurableCursor``'s encoding: the sequence, then the
    /// filter; stored only if the key's revision is still the one this
    /// edge's attachment knows (see the type's comment).
    public func commitCursor(owner: DurableOwner, name: String, sequence: UInt64, filter: String,
                             completion: @escaping @Sendable (Result<Void, StoreError>) -> Void) {
        guard !name.isEmpty else { return completion(.failure(.invalidArgument("a durable name is not empty"))) }
        guard !isClosed else { return completion(.failure(.closed)) }
        let key = cursorKey(owner, name)
        // Taken now, on the caller's thread: the attachment this commit belongs to.
        let generation = cursorRevisions.generation(key)
        writer.async {
            let value = DurableCursor.encode(sequence: sequence, filter: filter)
            completion(self.storeCursor(key: key, name: name, value: value, sequence: sequence, generation: generation))
        }
    }

    /// On the writer.
    private func storeCursor(key: String, name: String, value: [UInt8], sequence: UInt64,
                             generation: UInt64?) -> Result<Void, StoreError> {
        let wait = settings.requestTimeout.wholeMilliseconds
        do throws(NATSError) {
            guard let generation else {
                // No SUB attached it on this edge (not a path relayd takes): compare with the key as it is now.
                let now = try nats.getRevisioned(key: key, waitMs: wait)
                guard case .stored = try nats.put(key: key, value: value, expecting: now.revision, waitMs: wait) else {
                    return .failure(.durableConflict(name: name, stored: nil, mine: sequence))
                }
                return .success(())
            }
            guard let entry = cursorRevisions.entry(key), entry.generation == generation else {
                // The attachment this commit belongs to ended because its cursor was lost
                // (reported then), or this edge deleted the durable since: nothing to store.
                logger.debug("dropped a cursor commit of a durable attachment that has ended",
                             metadata: ["durable": "\(name)", "cursor": "\(sequence)"])
                return .success(())
            }
            let expected: UInt64
            switch entry.state {
            case .deleted: return .failure(.durableDeleted(name: name))
            case .conflict(let stored): return .failure(.durableConflict(name: name, stored: stored, mine: sequence))
            case .revision(let revision): expected = revision
            }
            let put: NATSConnection.ExpectingPut
            do {
                put = try nats.put(key: key, value: value, expecting: expected, waitMs: wait)
            } catch {
                // No ack in time: the value may be stored. A later commit that finds it knows it is its own.
                if error.isUnavailable { cursorRevisions.unacknowledged(key, generation: generation, value: value) }
                throw error
            }
            if case .stored(let revision) = put {
                cursorRevisions.update(key, generation: generation, .revision(revision), cursor: sequence)
                return .success(())
            }
            return try resolveWrongRevision(key: key, name: name, value: value, sequence: sequence, entry: entry)
        } catch {
            return .failure(Self.storeError(error))
        }
    }

    /// The key's revision was not the one expected: read it (through the
    /// bucket stream's leader) and decide, retrying at most once.
    private func resolveWrongRevision(key: String, name: String, value: [UInt8], sequence: UInt64,
                                      entry: CursorRevisions.Entry) throws(NATSError) -> Result<Void, StoreError> {
        let wait = settings.requestTimeout.wholeMilliseconds
        let now = try nats.getRevisioned(key: key, waitMs: wait)
        guard let stored = now.value else {
            cursorRevisions.update(key, generation: entry.generation, .deleted, cursor: nil)
            logger.warning("durable deleted on another edge while attached here: its cursor is not stored again, and the subscription ends with durable_deleted",
                           metadata: ["durable": "\(name)", "key": "\(key)", "cursor": "\(sequence)"])
            return .failure(.durableDeleted(name: name))
        }
        if stored == value {
            cursorRevisions.update(key, generation: entry.generation, .revision(now.revision), cursor: sequence)
            return .success(())
        }
        if stored == entry.unacknowledged,
           case .stored(let revision) = try nats.put(key: key, value: value, expecting: now.revision, waitMs: wait) {
            cursorRevisions.update(key, generation: entry.generation, .revision(revision), cursor: sequence)
            return .success(())
        }
        let theirs = DurableCursor.decode(stored)?.sequence  // nil: unreadable, never a made-up 0
        cursorRevisions.update(key, generation: entry.generation, .conflict(stored: theirs), cursor: nil)
        logger.warning("durable attached on another edge as well: its cursor moved there, so this edge's is not stored, and the subscription here ends with durable_in_use",
                       metadata: ["durable": "\(name)", "key": "\(key)", "cursor": "\(sequence)", "stored": "\(theirs.map(String.init) ?? "unreadable")"])
        return .failure(.durableConflict(name: name, stored: theirs, mine: sequence))
    }

    /// Read through the bucket stream's leader when a SUB attaches the
    /// durable; the key's revision is what this attachment's commits
    /// compare with. An eight-byte value (an edge from before filters were
    /// stored) has a nil filter.
    public func durableCursor(owner: DurableOwner, name: String) throws(StoreError) -> DurableCursor? {
        guard !isClosed else { throw .closed }
        let key = cursorKey(owner, name)
        let read: NATSConnection.RevisionedValue
        do { read = try nats.getRevisioned(key: key) } catch { throw Self.storeError(error) }
        guard let value = read.value else {
            cursorRevisions.attached(key, revision: read.revision, cursor: nil)
            return nil
        }
        guard let cursor = DurableCursor.decode(value) else {
            throw .invalidRecord(sequence: 0, reason: "a cursor value of \(value.count) bytes")
        }
        cursorRevisions.attached(key, revision: read.revision, cursor: cursor.sequence)
        return cursor
    }

    /// From what this edge read and stored (``CursorRevisions``): no request.
    public func knownCursors(_ durables: [(owner: DurableOwner, name: String)]) -> [DurableCursorRecord] {
        let keys = durables.map { cursorKey($0.owner, $0.name) }
        let known = cursorRevisions.cursors(keys)
        return zip(durables, keys).compactMap { durable, key in
            known[key].map { DurableCursorRecord(owner: durable.owner, name: durable.name, cursor: $0, filter: nil) }
        }
    }

    /// Always nil: there is no older schema behind this log.
    public func legacyCursor(principal: String, name: String) throws(StoreError) -> UInt64? {
        guard !isClosed else { throw .closed }
        return nil
    }

    public func adoptLegacyCursor(principal: String, name: String, owner: DurableOwner, sequence: UInt64, filter: String,
                                  completion: @escaping @Sendable (Result<Void, StoreError>) -> Void) {
        commitCursor(owner: owner, name: name, sequence: sequence, filter: filter, completion: completion)
    }
}
