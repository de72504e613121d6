import Foundation
import Logging

/// The single writer: one dedicated thread that takes everything queued
/// since its last commit and writes it in one transaction (group commit).
///
/// Completions run on this thread right after `mdb_txn_commit` returned, so
/// they must be cheap (the broker hops to its event loop). Pruning runs here
/// too, as small separate transactions between commits, so it never holds
/// the write lock for more than one bounded batch.
final class StoreWriter: @unchecked Sendable {
    let queue = WriterQueue()
    private let environment: Environment
    private let schema: Schema
    private let configuration: StoreConfiguration
    private let logger: Logger
    /// Signalled when the thread exits.
    private let exited = DispatchSemaphore(value: 0)
    /// `async` durability: the thread that flushes commits every interval,
    /// so a flush never holds up a commit; stopped after the writer.
    private let syncerStop = DispatchSemaphore(value: 0)
    private let syncerExited = DispatchSemaphore(value: 0)
    private var syncerStarted = false
    /// Periodic flushes done so far (guarded by `syncCountLock`, not
    /// `stopLock`, which stop() holds while it waits for the syncer); for tests.
    private let syncCountLock = NSLock()
    private var periodicSyncCount = 0
    var periodicSyncs: Int {
        syncCountLock.lock()
        defer { syncCountLock.unlock() }
        return periodicSyncCount
    }
    private let stopLock = NSLock()
    /// Guarded by `stopLock`.
    private var stopped = false

    // Writer-thread state: touched only by the writer thread after `start()`.
    private var appender: Appender
    private var pruner: Pruner
    private var pruneWaiters: [@Sendable (Result<Int, StoreError>) -> Void] = []
    private var prunedForWaiters = 0
    private var pruneInProgress = false
    /// While set and in the future, appends are refused without trying (map full).
    private var refuseAppendsUntil: ContinuousClock.Instant?
    private let clock = ContinuousClock()

    init(environment: Environment, schema: Schema, configuration: StoreConfiguration, logger: Logger,
         nextSequence: UInt64, lastTimestamp: UInt64) {
        self.environment = environment
        self.schema = schema
        self.configuration = configuration
        self.logger = logger
        self.appender = Appender(schema: schema, nextSequence: nextSequence, lastTimestamp: lastTimestamp)
        self.pruner = Pruner(schema: schema, rules: configuration.retention, dedup: configuration.dedup,
                             batchSize: configuration.pruneBatchSize)
    }

    /// The limit appends may grow the map to; deletions and cursor commits
    /// may use a reserve above it so retention can run in a full store.
    var appendLimit: Int { configuration.maxMapSize }

    /// Zeroed room kept ahead of LMDB's last page (see `keepZeroedRoom`):
    /// topped up by `preallocationChunk` when less than this is left. The
    /// chunk is written by the next commit's flush, next to that commit's own
    /// pages: 64 KiB is about one small commit's data, so it adds little to
    /// that commit, where 512 KiB added milliseconds on a busy disk (about
    /// one commit in 16 at 10,000 msg/s, enough to move the p99).
    static let preallocationLowWater = 128 << 10
    static let preallocationChunk = 64 << 10
    /// The most one top-up appends (a commit is at most 32 MiB of payload).
    static let preallocationMaxChunk = 32 << 20
    static let preallocationRetry = Duration.seconds(10)
    /// From this growth per commit on, the room is allocated rather than
    /// zeroed (`Environment.RoomPlan.allocateOnly`). 4 KiB messages at full
    /// load grow the file by about 4 MiB per commit: allocating took 1.11-1.32x
    /// the acknowledged MB/s of zeroing in four pairs. 128-byte messages at
    /// full load grow it by about 1 MiB, where allocating was no faster
    /// (0.86-1.06x in three pairs), and small commits need the zeros
    /// (docs/performance.md, "Wave 21: room for large commits is allocated").
    static let allocateOnlyGrowth = 2 << 20
    /// Writer-thread state: LMDB's used end at the last top-up check.
    private var lastUsedEnd: Int?
    /// Writer-thread state: preallocation failed; do not retry before this.
    private var preallocationPausedUntil: ContinuousClock.Instant?
    static func reserve(for maxMapSize: Int) -> Int { max(1 << 20, maxMapSize / 32) }

    func start() {
        let thread = Thread { [self] in
            self.keepZeroedRoom()
            self.run()
            self.exited.signal()
        }
        thread.name = "relay-store-writer"
        thread.start()
        if case .async(let interval) = configuration.durability {
            syncerStarted = true
            let syncer = Thread { [self] in
                self.runSyncer(every: interval)
                self.syncerExited.signal()
            }
            syncer.name = "relay-store-syncer"
            syncer.start()
        }
    }

    /// `mdb_env_sync` every `interval` until stopped. It only fdatasyncs the
    /// data file, which is safe next to a committing writer (Environment.sync
    /// holds the resize lock shared), and used to stall the writer, and every
    /// PUBACK waiting on it, for the length of the flush (the async-mode p99).
    private func runSyncer(every interval: Duration) {
        // Between 1 ms and a day: a longer interval would only overflow the timeout arithmetic.
        let seconds = min(max(interval.components.seconds, 0), 86_400)
        let nanoseconds = max(1_000_000, min(seconds * 1_000_000_000 + interval.components.attoseconds / 1_000_000_000,
                                             86_400 * 1_000_000_000))
        while syncerStop.wait(timeout: .now() + .nanoseconds(Int(nanoseconds))) == .timedOut {
            do { try environment.sync() } catch { logger.error("periodic mdb_env_sync failed: \(error)") }
            syncCountLock.lock()
            periodicSyncCount += 1
            syncCountLock.unlock()
        }
    }

    /// Stops accepting work, lets the thread drain the queue, and waits for
    /// it. Safe to call more than once and from several threads.
    func stop() {
        stopLock.lock()
        defer { stopLock.unlock() }
        guard !stopped else { return }
        queue.close()
        exited.wait()  // drained, and the final sync done
        if syncerStarted {
            syncerStop.signal()
            syncerExited.wait()
        }
        stopped = true
    }

    // MARK: The loop

    private func run() {
        var nextPrune = clock.now.advanced(by: configuration.pruneInterval)
        while true {
            let wantPruneNow = pruneInProgress || !pruneWaiters.isEmpty
            let wait = wantPruneNow ? 0 : max(0, seconds(clock.now.duration(to: nextPrune)))
            guard let jobs = queue.take(maxMessages: configuration.maxMessagesPerCommit,
                                        maxBytes: configuration.maxBytesPerCommit,
                                        deadline: Date(timeIntervalSinceNow: wait)) else { break }
            if !jobs.isEmpty { process(jobs) }
            let now = clock.now
            if pruneInProgress || !pruneWaiters.isEmpty || now >= nextPrune {
                if now >= nextPrune {
                    do {
                        let dead = try environment.clearStaleReaders()
                        if dead > 0 { logger.warning("freed \(dead) LMDB reader slots of dead processes") }
                    } catch {
                        logger.error("mdb_reader_check failed: \(error)")
                    }
                }
                prunePass()
                if !pruneInProgress { nextPrune = clock.now.advanced(by: configuration.pruneInterval) }
            }
        }
        // Closed and drained: finish outstanding prune requests and flush async commits.
        for waiter in pruneWaiters { waiter(.failure(.closed)) }
        if case .async = configuration.durability {
            do { try environment.sync() } catch { logger.error("final mdb_env_sync failed: \(error)") }
        }
    }

    private func seconds(_ d: Duration) -> Double {
        Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18
    }

    // MARK: Group commit

    private func process(_ jobs: [WriterJob]) {
        var appends: [(messages: [NewMessage], completion: @Sendable ([Result<AppendReceipt, StoreError>]) -> Void)] = []
        var cursors: [CursorWrite] = []
        for job in jobs {
            switch job {
            case .append(let messages, let completion): appends.append((messages, completion))
            case .cursor(let key, let value, let completion): cursors.append(CursorWrite(key: key, value: value, completion: completion))
            case .prune(let completion): pruneWaiters.append(completion)
            }
        }
        if appends.isEmpty && cursors.isEmpty { return }

        var appendError: StoreError? = nil
        if !appends.isEmpty {
            if let until = refuseAppendsUntil, clock.now < until {
                appendError = .storageFull(maxMapSize: appendLimit)
            } else if !hasRoom(for: appends.map(\.messages)) {
                appendError = .storageFull(maxMapSize: appendLimit)
            } else {
                let timestamp = appender.nextTimestamp(now: configuration.wallClock.nanosecondsSinceEpoch())
                do {
                    let outcome = try environment.write { (txn) throws(StoreError) -> Appender.Outcome in
                        let outcome = try appender.write(appends.map(\.messages), timestamp: timestamp, in: txn)
                        try Self.writeCursors(cursors, schema: schema, in: txn)
                        return outcome
                    }
                    refuseAppendsUntil = nil
                    appender.committed(outcome, timestamp: timestamp)
                    for (index, append) in appends.enumerated() { append.completion(outcome.results[index]) }
                    for cursor in cursors { cursor.completion(.success(())) }
                    keepZeroedRoom()
                    return
                } catch {
                    if case .storageFull = error {
                        // The map hit its hard cap (maximum plus reserve). Retry soon
                        // (retention or released readers may free pages), not on every batch.
                        refuseAppendsUntil = clock.now.advanced(by: .milliseconds(250))
                        logger.warning("store full at \(appendLimit) bytes: refusing appends until retention frees space")
                        appendError = .storageFull(maxMapSize: appendLimit)
                    } else {
                        appendError = error
                    }
                }
            }
        }
        if let appendError {
            for append in appends {
                append.completion(Array(repeating: .failure(appendError), count: append.messages.count))
            }
            // A failed I/O is not the map being full: do not retry cursors into it blindly.
            if case .storageFull = appendError {} else if !appends.isEmpty {
                for cursor in cursors { cursor.completion(.failure(appendError)) }
                return
            }
        }
        guard !cursors.isEmpty else { return }
        // Cursor commits alone, allowed into the reserve so they work in a full store.
        do {
            try environment.write { (txn) throws(StoreError) in
                try Self.writeCursors(cursors, schema: schema, in: txn)
            }
            for cursor in cursors { cursor.completion(.success(())) }
        } catch {
            for cursor in cursors { cursor.completion(.failure(error)) }
        }
    }

    /// Whether the store stays under its configured maximum after these
    /// appends. The map itself may grow into a reserve above the maximum
    /// (so deletions and cursor commits work in a full store); appends are
    /// held to the maximum here, counting the freelist as available because
    /// LMDB reuses freed pages before growing the file.
    private func hasRoom(for jobs: [[NewMessage]]) -> Bool {
        var estimate = 0
        for messages in jobs {
            for message in messages { estimate += message.payload.readableBytes + 128 }
        }
        // Records plus index pages and copy-on-write of the tree path: about twice the data.
        estimate *= 2
        let usage = environment.usage()
        if usage.pagesUsed * usage.pageSize + estimate <= appendLimit { return true }
        do {
            let free = try environment.read { (txn) throws(StoreError) -> Int in try txn.freePageCount() }
            return (usage.pagesUsed - free) * usage.pageSize + estimate <= appendLimit
        } catch {
            logger.error("could not read the LMDB freelist: \(error)")
            return false
        }
    }

    struct CursorWrite {
        var key: [UInt8]
        /// Nil deletes.
        var value: [UInt8]?
        var completion: @Sendable (Result<Void, StoreError>) -> Void
    }

    private static func writeCursors(_ cursors: [CursorWrite], schema: Schema, in txn: borrowing WriteTransaction) throws(StoreError) {
        for cursor in cursors {
            try cursor.key.withBytes { (key) throws(StoreError) in
                if let value = cursor.value {
                    try value.withBytes { (value) throws(StoreError) in try txn.put(schema.cursors, key: key, value: value) }
                } else {
                    try txn.delete(schema.cursors, key: key)
                }
            }
        }
    }

    // MARK: Preallocation

    /// Tops up the zeroed room ahead of LMDB's last page after a commit (see
    /// `Environment.keepZeroedRoom`), so the next small commits do not grow
    /// the file. It only saves disk round trips: a failure (a full disk) is
    /// logged and retried after `preallocationRetry`, and commits go on
    /// growing the file as before.
    private func keepZeroedRoom() {
        if let until = preallocationPausedUntil, clock.now < until { return }
        preallocationPausedUntil = nil
        do {
            _ = try environment.keepZeroedRoom { usedEnd in
                // Room for about two more commits like the last one, and at least
                // the small-commit sizes: a 4 KiB-message commit grows the file by
                // megabytes, and would otherwise grow it itself.
                let growth = lastUsedEnd.map { max(0, usedEnd - $0) } ?? 0
                lastUsedEnd = usedEnd
                let size = min(max(2 * growth, Self.preallocationChunk), Self.preallocationMaxChunk)
                return Environment.RoomPlan(lowWater: max(Self.preallocationLowWater, size), chunk: size,
                                            allocateOnly: growth >= Self.allocateOnlyGrowth)
            }
        } catch {
            preallocationPausedUntil = clock.now.advanced(by: Self.preallocationRetry)
            logger.warning("could not preallocate the store's data file (commits grow it instead): \(error)")
        }
    }

    // MARK: Pruning

    private func prunePass() {
        let now = configuration.wallClock.nanosecondsSinceEpoch()
        do {
            let result = try environment.write {
                (txn) throws(StoreError) -> Pruner.PassResult in
                try pruner.pass(in: txn, now: now, nextSequence: appender.nextSequence)
            }
            pruner.commit(result)
            prunedForWaiters += result.messagesDeleted
            if result.deleted > 0 { refuseAppendsUntil = nil }
            // Keep going while there is more, plus one follow-up pass after any
            // deletion: LMDB reuses pages freed by commit N only from commit N+2 on.
            pruneInProgress = !result.complete || result.deleted > 0
            if !pruneInProgress {
                let waiters = pruneWaiters
                pruneWaiters.removeAll()
                for waiter in waiters { waiter(.success(prunedForWaiters)) }
                prunedForWaiters = 0
            }
        } catch {
            logger.error("pruning failed: \(error)")
            pruneInProgress = false
            let waiters = pruneWaiters
            pruneWaiters.removeAll()
            for waiter in waiters { waiter(.failure(error)) }
            prunedForWaiters = 0
        }
    }
}
