import Foundation
import RelayCore
import RelayStore

/// The admin operations JetStream answers honestly (docs/cluster.md,
/// "Operator commands on a cluster edge"): durable cursors from the shared
/// bucket, per-topic counts from the stream's subject state, purge by a
/// subject filter. Not a ``StoreBackup``: the data is NATS's, and NATS's
/// stream snapshots back it up (``alternative(to:)`` says so).
extension JetStreamMessageLog: DurableCursorAdministration, TopicAdministration, AdministrationAlternatives {
    private var wait: Int64 { settings.requestTimeout.wholeMilliseconds }
    private var bucketStream: String { "KV_\(settings.cursorBucket)" }

    // MARK: Durable cursors

    /// Every key `c.<owner hex>.<name hex>` of the bucket that holds a
    /// value: one stream-info request for the keys, then one read through
    /// the bucket stream's leader per key (a key whose last entry is a
    /// delete marker is left out).
    public func durableCursors() throws(StoreError) -> [DurableCursorRecord] {
        guard !isClosed else { throw .closed }
        let keys: [String]
        do { keys = try nats.keys(matching: "c.>", waitMs: wait) } catch { throw Self.storeError(error) }
        var out: [DurableCursorRecord] = []
        for key in keys {
            let parts = key.split(separator: ".", omittingEmptySubsequences: false)
            guard parts.count == 3, let digest = Hex.decode(String(parts[1])), let owner = DurableOwner(digest: digest),
                  let name = Hex.decode(String(parts[2])), !name.isEmpty else { continue }
            let value: [UInt8]?
            do { value = try nats.get(key: key, waitMs: wait) } catch { throw Self.storeError(error) }
            guard let value, let cursor = DurableCursor.decode(value) else { continue }
            out.append(DurableCursorRecord(owner: owner, name: String(decoding: name, as: UTF8.self),
                                           cursor: cursor.sequence, filter: cursor.filter))
        }
        return out.sorted { $0.owner.digest.lexicographicallyPrecedes($1.owner.digest) || ($0.owner == $1.owner && $0.name < $1.name) }
    }

    /// Purges the key's messages from the bucket's stream (a KV delete
    /// would leave a marker, which still counts toward `max_durables`),
    /// on the writer queue: after the cursor commits this edge queued
    /// before it. True when the key held a cursor. Another edge that has
    /// the durable attached finds the key gone at its next commit (a
    /// compare-and-set on the revision) and ends that subscription with
    /// `durable_deleted` (docs/cluster.md, "Durable cursors").
    public func deleteDurableCursor(owner: DurableOwner, name: String) async throws(StoreError) -> Bool {
        guard !isClosed else { throw .closed }
        let key = cursorKey(owner, name)
        let subject = "$KV.\(settings.cursorBucket).\(key)"
        let result: Result<Bool, StoreError> = await withCheckedContinuation { continuation in
            writer.async {
                do throws(NATSError) {
                    let held = try self.nats.get(key: key, waitMs: self.wait) != nil
                    // Purged even without a value: a delete marker is cleared too.
                    _ = try self.nats.purgeCounting(stream: self.bucketStream, filter: subject, waitMs: self.wait)
                    self.cursorRevisions.forget(key)
                    continuation.resume(returning: .success(held))
                } catch {
                    continuation.resume(returning: .failure(Self.storeError(error)))
                }
            }
        }
        return try result.get()
    }

    /// Exact, not capped: the count of matching messages from `cursor + 1`
    /// (an ephemeral consumer's pending count) and the first of them by a
    /// filtered direct get, two requests whatever the backlog.
    public func backlog(after cursor: UInt64, filter: TopicFilter, limit: UInt64) throws(StoreError) -> DurableBacklog {
        let subject = subject(filter)
        let count = try self.count(subject, from: cursor + 1)
        guard count > 0 else { return DurableBacklog(messages: 0, capped: false, oldestTimestamp: nil) }
        let first = try get(cursor + 1, next: true, filter: subject)
        return DurableBacklog(messages: count, capped: false, oldestTimestamp: first.flatMap { JetStreamRecord.timestamp(of: $0.data) })
    }

    // MARK: Topics

    /// One entry per subject `relay.<topic>` holding messages: the count
    /// from the stream's subject state (one request), then the first and
    /// last message of each topic through the stream leader (two requests a
    /// topic) for their sequences and Relay timestamps. JetStream keeps no
    /// byte count per subject: `bytes` is nil. Not one snapshot: a message
    /// appended between the requests may show in one field and not another.
    public func topicStatistics() throws(StoreError) -> [TopicStatistics] {
        let state = try state(subjects: "\(settings.subjectPrefix).>")
        var out: [TopicStatistics] = []
        for (subject, messages) in state.subjects where messages > 0 {
            let first: NATSStoredMessage?, last: NATSStoredMessage?
            do {
                first = try nats.leaderMessage(stream: settings.stream, request: ["seq": 1, "next_by_subj": subject], waitMs: wait)
                last = try nats.leaderMessage(stream: settings.stream, request: ["last_by_subj": subject], waitMs: wait)
            } catch {
                throw Self.storeError(error)
            }
            // Purged between the requests: no longer a topic holding messages.
            guard let first, let last else { continue }
            out.append(TopicStatistics(topic: String(Self.topic(ofSubject: subject, prefixLength: settings.subjectPrefix.utf8.count + 1)),
                                       messages: messages, bytes: nil, firstSequence: first.sequence, lastSequence: last.sequence,
                                       firstTimestamp: JetStreamRecord.timestamp(of: first.data),
                                       lastTimestamp: JetStreamRecord.timestamp(of: last.data)))
        }
        return out.sorted { $0.topic < $1.topic }
    }

    /// One JetStream purge of the subjects `relay.<filter>`; the server
    /// answers how many messages went, not their bytes or topics (nil).
    public func purge(_ filter: TopicFilter) throws(StoreError) -> PurgeResult {
        guard !isClosed else { throw .closed }
        do {
            let purged = try nats.purgeCounting(stream: settings.stream, filter: subject(filter), waitMs: wait)
            return PurgeResult(messages: purged, bytes: nil, topics: nil)
        } catch {
            throw Self.storeError(error)
        }
    }

    // MARK: What is not here

    public func alternative(to operation: String) -> String? {
        guard operation == "backup" else { return nil }
        return "a cluster edge keeps no data of its own: the messages are the JetStream stream \(settings.stream) and the "
            + "durable cursors the stream \(bucketStream); back both up with NATS stream snapshots, the cursors first "
            + "(`nats stream backup \(bucketStream) DIR1`, then `nats stream backup \(settings.stream) DIR2`; restored with "
            + "`nats stream restore`), see docs/cluster.md \"Operator commands on a cluster edge\""
    }
}
