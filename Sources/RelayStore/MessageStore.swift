import Foundation
import Logging
import NIOCore
import RelayCore

/// The durable message log on LMDB: the ``MessageLog`` relayd runs.
///
/// Appends and cursor commits go to a dedicated writer thread that group
/// commits them; their completions run on that thread after the commit
/// (durable under `.fsync`), so they must only hand off. Reads run on the
/// caller's thread in short read transactions that return bounded batches.
/// All methods are thread-safe; none blocks on the writer except `close()`,
/// which waits for the writer thread to finish what it has queued.
public final class MessageStore: Sendable {
    let environment: Environment
    let schema: Schema
    let writer: StoreWriter
    public let configuration: StoreConfiguration

    private let canonicalPath: String

    private init(environment: Environment, schema: Schema, writer: StoreWriter, configuration: StoreConfiguration,
                 canonicalPath: String) {
        self.environment = environment
        self.schema = schema
        self.writer = writer
        self.configuration = configuration
        self.canonicalPath = canonicalPath
    }

    /// Opens (or creates) the store in `configuration.directory`.
    public static func open(_ configuration: StoreConfiguration,
                            logger: Logger = Logger(label: "relay.store")) throws(StoreError) -> MessageStore {
        do {
            // 0700: the directory holds every stored message (issue 14 item 15).
            try FileManager.default.createDirectory(atPath: configuration.directory, withIntermediateDirectories: true,
                                                    attributes: [.posixPermissions: 0o700])
        } catch {
            throw .invalidArgument("cannot create the store directory \(configuration.directory): \(error)")
        }
        guard configuration.maxMapSize >= 1 << 20 else {
            throw .invalidArgument("max_map_size is \(configuration.maxMapSize) bytes; the minimum is 1 MiB")
        }
        // LMDB forbids opening one environment twice in a process (its locks
        // are per process): a second open would corrupt the store silently.
        let canonical = URL(fileURLWithPath: configuration.directory).resolvingSymlinksInPath().path
        guard OpenStores.shared.register(canonical) else {
            throw .invalidArgument("the store at \(canonical) is already open in this process; share the MessageStore instead")
        }
        var options = EnvironmentOptions()
        options.maxMapSize = configuration.maxMapSize + StoreWriter.reserve(for: configuration.maxMapSize)
        options.initialMapSize = min(max(configuration.initialMapSize, 1 << 20), configuration.maxMapSize)
        options.growthStep = max(configuration.growthStep, 1 << 20)
        options.maxReaders = configuration.maxReaders
        options.maxDatabases = Schema.databaseCount + 2
        if case .async = configuration.durability { options.noSync = true }
        options.pageCacheTail = configuration.pageCacheTail

        let environment: Environment
        let schema: Schema
        let next: UInt64, lastTimestamp: UInt64
        do {
            environment = try Environment(path: configuration.directory, options: options)
            try environment.clearStaleReaders()
            schema = try Schema(environment: environment)
            (next, lastTimestamp) = try environment.read { (txn) throws(StoreError) -> (UInt64, UInt64) in
                (try Reader.nextSequence(schema: schema, in: txn), try Reader.lastCommitTimestamp(schema: schema, in: txn))
            }
        } catch {
            OpenStores.shared.unregister(canonical)
            throw error
        }
        let writer = StoreWriter(environment: environment, schema: schema, configuration: configuration,
                                 logger: logger, nextSequence: next, lastTimestamp: lastTimestamp)
        writer.start()
        return MessageStore(environment: environment, schema: schema, writer: writer, configuration: configuration,
                            canonicalPath: canonical)
    }

    /// Stops the writer after it committed everything queued, then closes
    /// the environment. Later calls fail with `.closed`. Idempotent. Do not
    /// call it from a completion (it waits for the writer thread that runs them).
    public func close() {
        writer.stop()
        environment.close()
        OpenStores.shared.unregister(canonicalPath)
    }

    // MARK: Appending

    /// Queues `messages` for the next group commit and returns at once.
    /// `completion` gets one result per message, in order, on the writer
    /// thread after the commit (or with `.closed` right away).
    public func append(_ messages: [NewMessage],
                       completion: @escaping @Sendable ([Result<AppendReceipt, StoreError>]) -> Void) {
        guard !messages.isEmpty else { completion([]); return }
        let job = WriterJob.append(messages, completion)
        if !writer.queue.submit(job) { job.fail(.closed) }
    }

    /// Appends `messages` and waits for their durable commit.
    public func append(_ messages: [NewMessage]) async -> [Result<AppendReceipt, StoreError>] {
        await withCheckedContinuation { continuation in
            append(messages) { continuation.resume(returning: $0) }
        }
    }

    /// Appends `messages`; the future completes on `eventLoop` after the
    /// durable commit (NIO hops the result from the writer thread).
    public func append(_ messages: [NewMessage], on eventLoop: any EventLoop) -> EventLoopFuture<[Result<AppendReceipt, StoreError>]> {
        let promise = eventLoop.makePromise(of: [Result<AppendReceipt, StoreError>].self)
        append(messages) { promise.succeed($0) }
        return promise.futureResult
    }

    /// Appends one message and waits for its durable commit.
    public func append(_ message: NewMessage) async throws(StoreError) -> AppendReceipt {
        let results = await append([message])
        guard let result = results.first else {
            throw .lmdb(operation: "append", code: -1, message: "the writer returned no result")
        }
        return try result.get()
    }

    // MARK: Durable cursors

    /// Records that durable `name` of `owner`, attached with `filter`, has
    /// consumed up to `sequence` (one record: the position and the filter).
    /// Batched with appends; works in a full store.
    public func commitCursor(owner: DurableOwner, name: String, sequence: UInt64, filter: String,
                             completion: @escaping @Sendable (Result<Void, StoreError>) -> Void) {
        submitCursor({ () throws(StoreError) in try Schema.cursorKey(owner: owner, name: name) },
                     value: DurableCursor.encode(sequence: sequence, filter: filter), completion: completion)
    }

    public func commitCursor(owner: DurableOwner, name: String, sequence: UInt64, filter: String) async throws(StoreError) {
        try await cursorResult { self.commitCursor(owner: owner, name: name, sequence: sequence, filter: filter, completion: $0) }
    }

    /// Forgets a durable cursor.
    public func deleteCursor(owner: DurableOwner, name: String) async throws(StoreError) {
        try await cursorResult {
            self.submitCursor({ () throws(StoreError) in try Schema.cursorKey(owner: owner, name: name) }, value: nil,
                              completion: $0)
        }
    }

    /// The committed position of a durable cursor and its filter (nil for
    /// a record written by schema 3 or older), or nil when there is none.
    public func durableCursor(owner: DurableOwner, name: String) throws(StoreError) -> DurableCursor? {
        try readCursor(try Schema.cursorKey(owner: owner, name: name))
    }

    /// Up to `limit` names of `owner`'s cursors: a range scan of the
    /// `cursors` keys that start with 0x01 ‖ the owner's digest.
    public func durableNames(owner: DurableOwner, limit: Int) throws(StoreError) -> [String] {
        guard limit > 0 else { return [] }
        let prefix = [Schema.ownedCursorPrefix] + owner.digest
        let schema = self.schema
        return try environment.read { (txn) throws(StoreError) -> [String] in
            try txn.withCursor(schema.cursors) { (cursor) throws(StoreError) -> [String] in
                var names: [String] = []
                var found = try prefix.withBytes { (key) throws(StoreError) -> String?? in
                    try cursor.move(.keyRange, key: key) { key, _ in Self.durableName(key, prefix) }
                }
                while let entry = found, let name = entry {
                    names.append(name)
                    if names.count == limit { break }
                    found = try cursor.move(.next) { key, _ in Self.durableName(key, prefix) }
                }
                return names
            }
        }
    }

    /// The name in an owned cursor key under `prefix`; nil past the owner's keys.
    private static func durableName(_ key: UnsafeRawBufferPointer, _ prefix: [UInt8]) -> String? {
        guard key.count > prefix.count, key.prefix(prefix.count).elementsEqual(prefix) else { return nil }
        return String(decoding: key[prefix.count...], as: UTF8.self)
    }

    /// A cursor migrated from a schema-version-1 store, which keyed cursors
    /// by principal only; nil when there is none (or it was adopted), and
    /// nil when principal and name are too long for a version-1 key: a
    /// long certificate subject (the default principal) once made every
    /// durable SUB fail with "principal plus durable name are … bytes".
    public func legacyCursor(principal: String, name: String) throws(StoreError) -> UInt64? {
        guard Schema.legacyCursorKeyFits(principal: principal, name: name) else { return nil }
        return try readCursor(try Schema.legacyCursorKey(principal: principal, name: name))?.sequence
    }

    /// Gives a migrated cursor to `owner`: writes `owner`'s cursor at
    /// `sequence` with `filter` and deletes the legacy one, so no other
    /// identity with the same principal can adopt it later. The caller holds
    /// the durable name and has seen that `owner` has no cursor of its own.
    public func adoptLegacyCursor(principal: String, name: String, owner: DurableOwner, sequence: UInt64, filter: String,
                                  completion: @escaping @Sendable (Result<Void, StoreError>) -> Void) {
        commitCursor(owner: owner, name: name, sequence: sequence, filter: filter) { result in
            guard case .success = result else { return completion(result) }
            // Queued after the owner's cursor: the legacy key goes only once the owned one is durable.
            self.submitCursor({ () throws(StoreError) in try Schema.legacyCursorKey(principal: principal, name: name) },
                              value: nil, completion: completion)
        }
    }

    private func readCursor(_ key: [UInt8]) throws(StoreError) -> DurableCursor? {
        let schema = self.schema
        return try environment.read { (txn) throws(StoreError) -> DurableCursor? in
            try key.withBytes { (k) throws(StoreError) -> DurableCursor? in
                try txn.get(schema.cursors, key: k) { DurableCursor.decode($0) } ?? nil
            }
        }
    }

    /// `value` nil deletes the cursor.
    private func submitCursor(_ makeKey: () throws(StoreError) -> [UInt8], value: [UInt8]?,
                              completion: @escaping @Sendable (Result<Void, StoreError>) -> Void) {
        let key: [UInt8]
        do { key = try makeKey() } catch {
            completion(.failure(error))
            return
        }
        let job = WriterJob.cursor(key: key, value: value, completion)
        if !writer.queue.submit(job) { job.fail(.closed) }
    }

    private func cursorResult(_ submit: (@escaping @Sendable (Result<Void, StoreError>) -> Void) -> Void) async throws(StoreError) {
        let result: Result<Void, StoreError> = await withCheckedContinuation { continuation in
            submit { continuation.resume(returning: $0) }
        }
        try result.get()
    }

    // MARK: Retention

    /// Runs retention and dedup pruning now, until nothing more is due;
    /// returns how many entries were deleted. (A background pass runs every
    /// `pruneInterval` anyway.)
    public func prune() async throws(StoreError) -> Int {
        let result: Result<Int, StoreError> = await withCheckedContinuation { continuation in
            let job = WriterJob.prune { continuation.resume(returning: $0) }
            if !writer.queue.submit(job) { job.fail(.closed) }
        }
        return try result.get()
    }

    // MARK: Introspection

    /// Size figures for metrics and `relayctl`: the bytes of the pages in
    /// use, the current map size and its configured maximum.
    public func usage() throws(StoreError) -> StorageUsage {
        let u = environment.usage()
        let schema = self.schema
        let messages = try environment.read { (txn) throws(StoreError) -> Int in try txn.count(schema.log) }
        return StorageUsage(usedBytes: u.pageSize * u.pagesUsed, allocatedBytes: u.mapSize,
                            maxBytes: configuration.maxMapSize, messages: messages)
    }
}

/// The data directories open in this process.
final class OpenStores: @unchecked Sendable {
    static let shared = OpenStores()
    private let lock = NSLock()
    /// Guarded by `lock`.
    private var paths: Set<String> = []

    func register(_ path: String) -> Bool {
        lock.lock()
        defer { lock.unlock() }
        return paths.insert(path).inserted
    }

    func unregister(_ path: String) {
        lock.lock()
        defer { lock.unlock() }
        paths.remove(path)
    }
}
