import Foundation
import Logging
import NIOCore
import RelayCore
import RelayStore
import Synchronization

/// A ``MessageLog`` on a NATS JetStream stream, shared by every relayd edge
/// that names the same stream (docs/cluster.md has the design and what
/// differs from LMDB):
/// - one stream, subjects `relay.<topic>`: the stream sequence is Relay's
///   global sequence, and per-topic reads are filtered direct gets;
/// - the record (``JetStreamRecord``) carries timestamp, publisher stamp,
///   topic and headers with the payload;
/// - the producer key is the `Nats-Msg-Id`: the stream's duplicate window
///   is Relay's dedup window;
/// - an append completes after JetStream's ack (R3: in memory on 2 of 3
///   nodes), retried with the same id until ``JetStreamSettings/publishTimeout``;
/// - durable cursors live in a replicated key-value bucket, each commit a
///   compare-and-set on the key's revision (JetStreamMessageLog+Cursors.swift).
///
/// Appends (group-committed as pipelined rounds: JetStreamMessageLog+Publishing.swift),
/// cursor commits, durable deletions and pruning run in order on one serial queue (the appends'
/// acks are awaited on a second one, so rounds overlap);
/// reads run on the caller's thread, one request per message or step.
public final class JetStreamMessageLog: SharedMessageLog, AvailabilityReporting, ForeignRecordReporting, @unchecked Sendable {
    // @unchecked: `nats` is thread-safe (NATSBridge.swift); the mutable state is behind `lock`.
    public let dedupWindow: DedupWindow
    let settings: JetStreamSettings
    let configuration: StoreConfiguration
    /// The connection every request, publish and the tail use from now on:
    /// replaced by a renewal (JetStreamMessageLog+Renewal.swift), so read it
    /// once per request and keep that reference for the request's life.
    var nats: NATSConnection { lock.withLock { connection } }
    let logger: Logger  // internal: +Cursors logs a durable lost to another edge
    let writer = DispatchQueue(label: "relay.jetstream.writer")  // internal: +Administration queues deletions on it
    /// Waits for each round's acks, in send order, and completes its appends
    /// (JetStreamMessageLog+Publishing.swift), while the writer sends the next round.
    let acks = DispatchQueue(label: "relay.jetstream.acks")
    private let prober = DispatchQueue(label: "relay.jetstream.probe")
    private let lock = NSLock()
    // Guarded by `lock`.
    private var connection: NATSConnection
    private var closed = false
    private var lastTimestamp: UInt64 = 0
    private var available = true
    private var probeTimer: DispatchSourceTimer?
    private var pruneTimer: DispatchSourceTimer?
    /// Ids for publishes without a producer key (``nextUnkeyedID()``).
    private let edgeID = UUID().uuidString
    private var unkeyedCounter: UInt64 = 0
    /// Appends waiting for the writer, guarded by `lock` (see ``drainAppends()``).
    private var queued: [AppendJob] = []
    /// Records in the stream that are not Relay's, skipped by the tail and by reads (ForeignRecordNotices.swift).
    let foreignRecords: ForeignRecordNotices
    /// The revision of each durable's cursor key as this edge last read or
    /// wrote it: cursor commits are compare-and-sets on it (JetStreamMessageLog+Cursors.swift).
    let cursorRevisions = CursorRevisions()
    /// Round trips of reads (``readStatistics``).
    let readCounters = Mutex(JetStreamReadStatistics())
    /// The live tail, on whichever connection is current (JetStreamMessageLog+Tail.swift).
    let tail = TailFollower()

    struct AppendJob {
        var messages: [NewMessage]
        var completion: @Sendable ([Result<AppendReceipt, StoreError>]) -> Void
    }

    private init(settings: JetStreamSettings, configuration: StoreConfiguration, nats: NATSConnection, logger: Logger) {
        self.settings = settings
        self.configuration = configuration
        self.dedupWindow = configuration.dedup
        self.connection = nats
        self.logger = logger
        foreignRecords = ForeignRecordNotices(logger: logger, interval: settings.foreignRecordSummaryInterval,
                                              stream: settings.stream, subjects: "\(settings.subjectPrefix).>")
    }

    /// Connects, creates or updates the stream and the cursor bucket, and
    /// starts the availability probe (and the pruner when there are rules).
    public static func open(_ configuration: StoreConfiguration, settings: JetStreamSettings,
                            logger: Logger = Logger(label: "relay.jetstream")) throws(StoreError) -> JetStreamMessageLog {
        let nats = try StartupAttempts(settings: settings, logger: logger).run { connection throws(NATSError) in
            let wait = settings.requestTimeout.wholeMilliseconds
            // A connection made by an earlier attempt is kept: it reconnects by itself.
            let nats: NATSConnection
            if let connection { nats = connection } else { nats = try NATSConnection.connect(settings.endpoint, timeoutMs: wait) }
            connection = nats
            try nats.ensureStream(name: settings.stream, subject: "\(settings.subjectPrefix).>", replicas: settings.replicas,
                                  duplicatesNs: Int64(configuration.dedup.maxAge.wholeMilliseconds) * 1_000_000,
                                  maxBytes: Int64(configuration.maxMapSize), waitMs: max(wait, 5_000))
            try nats.openBucket(settings.cursorBucket, replicas: settings.replicas)
            return nats
        }
        let log = JetStreamMessageLog(settings: settings, configuration: configuration, nats: nats, logger: logger)
        log.lastTimestamp = (try? log.newestTimestamp()) ?? 0
        log.startTimers()
        if configuration.retention.contains(where: { $0.maxBytes != nil }) {
            logger.warning("[[retention]] max_bytes is not applied by the jetstream backend (docs/cluster.md); max_age and max_messages are")
        }
        return log
    }

    private func newestTimestamp() throws(StoreError) -> UInt64 {
        let last = try state().lastSequence
        guard last > 0, let message = try get(last, next: false) else { return 0 }
        return JetStreamRecord.timestamp(of: message.data) ?? 0
    }

    private func startTimers() {
        let probe = DispatchSource.makeTimerSource(queue: prober)
        probe.schedule(deadline: .now() + settings.probeInterval.timeInterval, repeating: settings.probeInterval.timeInterval)
        probe.setEventHandler { [weak self] in self?.probeOnce() }
        probe.resume()
        var prune: DispatchSourceTimer?
        if !configuration.retention.isEmpty {
            let timer = DispatchSource.makeTimerSource(queue: writer)
            let interval = max(configuration.pruneInterval, .seconds(1)).timeInterval
            timer.schedule(deadline: .now() + interval, repeating: interval)
            timer.setEventHandler { [weak self] in _ = try? self?.pruneNow() }
            timer.resume()
            prune = timer
        }
        lock.withLock { (probeTimer, pruneTimer) = (probe, prune) }
    }

    /// A stream-info request answered by the stream leader means writes can be acked.
    private func probeOnce() {
        let ok = nats.isConnected && (try? nats.streamState(settings.stream, waitMs: settings.probeInterval.wholeMilliseconds)) != nil
        setAvailable(ok)
        foreignRecords.flush()
    }

    func setAvailable(_ value: Bool) {
        let changed = lock.withLock { () -> Bool in
            defer { available = value }
            return available != value
        }
        if changed {
            if value { logger.notice("JetStream stream \(settings.stream) is available again") }
            else { logger.error("JetStream stream \(settings.stream) is unavailable (no quorum or no connection); publishes fail with storage_unavailable") }
        }
    }

    public var reportsAvailable: Bool { lock.withLock { available && !closed } }

    /// Every read is a NATS request, and a durable cursor read retries for
    /// up to 8 s while the cursor bucket elects a leader: relayd makes a
    /// SUB's look-ups off its event loops.
    public var readsWaitOnService: Bool { true }

    public var foreignRecordCount: UInt64 { foreignRecords.count }

    public func observeForeignRecords(_ observer: @escaping @Sendable (Int) -> Void) { foreignRecords.observe(observer) }

    var isClosed: Bool { lock.withLock { closed } }

    /// Makes `fresh` the connection of every later request and returns the
    /// one it replaces (JetStreamMessageLog+Renewal.swift); nil once closed.
    func replaceConnection(with fresh: NATSConnection) -> NATSConnection? {
        lock.withLock {
            guard !closed else { return nil }
            defer { connection = fresh }
            return connection
        }
    }

    /// The appends queued so far, taken by the writer.
    func takeQueued() -> [AppendJob] {
        lock.withLock { defer { queued = [] }; return queued }
    }

    /// A timestamp for one append: the wall clock, never behind the last one.
    func nextTimestamp() -> UInt64 {
        lock.withLock {
            lastTimestamp = max(InMemoryMessageLog.wallClock(), lastTimestamp + 1)
            return lastTimestamp
        }
    }

    /// An id for a publish without a producer key, so a retry after a timeout is still deduplicated.
    func nextUnkeyedID() -> String {
        lock.withLock {
            unkeyedCounter += 1
            return "\(edgeID)-\(unkeyedCounter)"
        }
    }

    /// Publishes and ack waits so far (tests check that appends are pipelined).
    public var publishStatistics: JetStreamPublishStatistics { nats.publishStatistics }
    /// What the reads have asked NATS since the log opened: for tests and
    /// diagnostics (how many round trips a replay takes).
    public var readStatistics: JetStreamReadStatistics { readCounters.withLock { $0 } }

    // MARK: Appending

    public func append(_ messages: [NewMessage], completion: @escaping @Sendable ([Result<AppendReceipt, StoreError>]) -> Void) {
        let accepted = lock.withLock { () -> Bool in
            guard !closed else { return false }
            queued.append(AppendJob(messages: messages, completion: completion))
            return true
        }
        guard accepted else { return completion(messages.map { _ in .failure(.closed) }) }
        // One drain per append; a drain that finds the queue emptied by an
        // earlier one does nothing. Cursor commits queued on `writer` after
        // this append still run after it (the drain before them took it).
        writer.async { self.drainAppends() }
    }

    // MARK: Reading

    /// One stored message: the one at `sequence`, or with `next` the first
    /// at or after it (on any subject of the stream).
    func get(_ sequence: UInt64, next: Bool, filter: String? = nil) throws(StoreError) -> NATSStoredMessage? {
        guard !isClosed else { throw .closed }
        readCounters.withLock { $0.singleGets += 1 }
        do {
            let subject = filter ?? (next ? "\(settings.subjectPrefix).>" : nil)
            return try nats.directGet(stream: settings.stream, sequence: sequence, nextBySubject: subject,
                                      waitMs: settings.requestTimeout.wholeMilliseconds)
        } catch {
            throw Self.storeError(error)
        }
    }

    func state(subjects: String? = nil) throws(StoreError) -> NATSConnection.StreamState {
        guard !isClosed else { throw .closed }
        do {
            return try nats.streamState(settings.stream, subjectsFilter: subjects, waitMs: settings.requestTimeout.wholeMilliseconds)
        } catch {
            throw Self.storeError(error)
        }
    }

    /// Every failed NATS request is `unavailable`: the log could not answer
    /// now, and the caller retries (the text says which request and why).
    static func storeError(_ error: NATSError) -> StoreError {
        .unavailable("\(error)")
    }

    func subject(_ filter: TopicFilter) -> String { "\(settings.subjectPrefix).\(filter.value)" }

    public func read(from: UInt64, filter: TopicFilter, maxMessages: Int, maxBytes: Int, maxScan: Int) throws(StoreError) -> ReadBatch {
        let start = max(from, 1)
        // The server skips non-matching records; the distance skipped counts as examined.
        let scanEnd = start + UInt64(max(1, maxScan))
        let subject = subject(filter)
        let wanted = max(1, maxMessages)
        var batch: [StoredMessage] = []
        var bytes = 0
        var next = start
        var staleAnswers = 0
        var runs = ReadRuns()
        func full() -> Bool { batch.count >= wanted || bytes >= maxBytes }
        // Appends a stored message unless it is not Relay's record (skipped and counted).
        func take(_ found: NATSStoredMessage, topic: Substring?) throws(StoreError) {
            do throws(StoreError) {
                let message = try JetStreamRecord.decode(found.data, sequence: found.sequence, topic: topic)
                batch.append(message)
                bytes += message.payload.readableBytes
            } catch {
                // Only a record that is not in Relay's format is skipped (a failed
                // request threw above): something other than relayd published it
                // (docs/cluster.md, "Foreign messages in the stream"). Throwing made
                // every replay across it fail, on every retry.
                guard case .invalidRecord = error else { throw error }
                foreignRecords.skipped(sequence: found.sequence, reason: error)
            }
        }
        reading: while next < scanEnd {
            // Once a message is found, the ones after it come in runs of
            // direct gets sent together (docs/cluster.md, "Replay: runs of
            // direct gets"). A run stops at its first gap; from there the
            // filtered get below reads on.
            if !batch.isEmpty, let count = runs.length(wanted: wanted - batch.count, bytesLeft: maxBytes - bytes,
                                                         averageBytes: bytes / batch.count, scanLeft: scanEnd - next) {
                let run = try getRun(next, count: count)
                var matched = 0
                var unbroken = true
                for found in run {
                    guard let found, found.sequence == next, let topic = topic(ofSubject: found.subject) else {
                        unbroken = false
                        break
                    }
                    next += 1
                    guard filter.matches(tokens: topic.split(separator: ".", omittingEmptySubsequences: false)) else { continue }
                    matched += 1
                    try take(found, topic: topic)
                    if full() { break reading }
                }
                runs.record(sent: count, matched: matched, unbroken: unbroken)
                if unbroken { continue }
                if next >= scanEnd { break }
            }
            guard let found = try get(next, next: true, filter: subject) else {
                // The replica that answered may be behind the leader: ask again (another
                // replica, or the same one caught up) rather than skip (endOfRead).
                if let end = try endOfRead(after: next, subject: subject) {
                    return ReadBatch(messages: batch, next: max(next, end), reachedEnd: true)
                }
                staleAnswers += 1
                if staleAnswers > 20 { return ReadBatch(messages: batch, next: next, reachedEnd: false) }
                continue
            }
            guard found.sequence < scanEnd else { break }
            next = found.sequence + 1
            try take(found, topic: topic(ofSubject: found.subject))
            if full() { break }
        }
        return ReadBatch(messages: batch, next: full() ? next : max(next, scanEnd), reachedEnd: false)
    }

    /// ``NATSConnection/directGetRun(stream:first:count:waitMs:)`` on this log's stream, counted.
    func getRun(_ first: UInt64, count: Int) throws(StoreError) -> [NATSStoredMessage?] {
        guard !isClosed else { throw .closed }
        readCounters.withLock {
            $0.runs += 1
            $0.runGets += UInt64(count)
        }
        do {
            return try nats.directGetRun(stream: settings.stream, first: first, count: count,
                                         waitMs: settings.requestTimeout.wholeMilliseconds)
        } catch {
            throw Self.storeError(error)
        }
    }

    public func lastSequence() throws(StoreError) -> UInt64 {
        try state().lastSequence
    }

    // MARK: Retention, size, lifetime

    public func prune() async throws(StoreError) -> Int {
        let result: Result<Int, StoreError> = await withCheckedContinuation { continuation in
            writer.async {
                do throws(StoreError) { continuation.resume(returning: .success(try self.pruneNow())) }
                catch { continuation.resume(returning: .failure(error)) }
            }
        }
        return try result.get()
    }

    public func usage() throws(StoreError) -> StorageUsage {
        let state = try state()
        return StorageUsage(usedBytes: Int(state.bytes), allocatedBytes: Int(state.bytes),
                            maxBytes: configuration.maxMapSize, messages: Int(state.messages))
    }

    public func close() {
        let timers = lock.withLock { () -> [DispatchSourceTimer?]? in
            // Appends queued but not yet taken by the writer fail (below).
            guard !closed else { return nil }
            closed = true
            return [probeTimer, pruneTimer]
        }
        guard let timers else { return }
        timers.forEach { $0?.cancel() }
        takeQueued().forEach { job in job.completion(job.messages.map { _ in .failure(.closed) }) }
        writer.sync {}  // what was queued before `closed` finishes (it fails fast: `closed` is set)
        acks.sync {}  // then the rounds the writer sent get their acks (or time out)
        tail.stop()
        nats.close()
    }

    /// The topic of a stream subject (`<prefix>.<topic>`), which format 2
    /// records leave out; nil when the read did not say the subject.
    func topic(ofSubject subject: String?) -> Substring? {
        subject.map { Self.topic(ofSubject: $0, prefixLength: settings.subjectPrefix.utf8.count + 1) }
    }

    static func topic(ofSubject subject: String, prefixLength: Int) -> Substring {
        Substring(subject.utf8.dropFirst(prefixLength))
    }
}

extension Duration {
    var timeInterval: TimeInterval {
        let (seconds, attoseconds) = components
        return TimeInterval(seconds) + TimeInterval(attoseconds) / 1e18
    }
}
