import RelayCore

/// When an append's completion runs relative to the disk.
public enum Durability: Sendable, Equatable {
    /// Completion after `mdb_txn_commit` returned, which fsyncs (the default).
    case fsync
    /// Commits skip fsync (`MDB_NOSYNC`); the writer flushes every `syncInterval`.
    /// A crash of the machine (not just the process) loses at most that interval.
    case async(syncInterval: Duration)
}

/// How long messages of the topics matching `filter` are kept. The first
/// rule whose filter matches a topic applies to it; limits are per topic.
/// A topic no rule matches is kept until deleted by a rule.
public struct RetentionRule: Sendable, Equatable {
    public var filter: TopicFilter
    public var maxAge: Duration?
    public var maxMessages: Int?
    /// Bytes of stored records (payload plus envelope) per topic.
    public var maxBytes: Int?

    public init(filter: TopicFilter, maxAge: Duration? = nil, maxMessages: Int? = nil, maxBytes: Int? = nil) {
        self.filter = filter
        self.maxAge = maxAge
        self.maxMessages = maxMessages
        self.maxBytes = maxBytes
    }
}

/// How far back retried publishes are recognised.
public struct DedupWindow: Sendable, Equatable {
    /// Keep at most this many producer keys (oldest pruned first).
    public var maxEntries: Int
    /// Forget producer keys older than this.
    public var maxAge: Duration

    public init(maxEntries: Int = 1_000_000, maxAge: Duration = .seconds(120)) {
        self.maxEntries = maxEntries
        self.maxAge = maxAge
    }
}

/// Everything ``MessageStore/open(_:)`` needs.
public struct StoreConfiguration: Sendable {
    /// The data directory (created if missing). Use a real disk, not tmpfs.
    public var directory: String
    public var durability: Durability = .fsync
    /// Map size on first open; the map grows on demand.
    public var initialMapSize: Int = 64 << 20
    /// The most the store may use; appends then fail with `storageFull`.
    public var maxMapSize: Int = 16 << 30
    /// Growth adds min(current size, growthStep).
    public var growthStep: Int = 1 << 30
    /// Concurrent read transactions (replays) allowed.
    public var maxReaders: Int = 126
    public var retention: [RetentionRule] = []
    public var dedup = DedupWindow()
    /// How often the background pruner runs.
    public var pruneInterval: Duration = .seconds(1)
    /// Where commit timestamps and the pruner's "now" come from: the system
    /// clock, or a test's own, so age-based retention and the dedup window's
    /// age are tested by moving the clock instead of sleeping.
    public var wallClock: WallClock = .system
    /// Deletions per pruning transaction: bounds how long an append waits behind it.
    public var pruneBatchSize: Int = 2_000
    /// The most index entries or log records resolving a `last N` start
    /// position examines (``MessageStore/startSequence(_:filter:)``). It runs
    /// on the subscriber's event loop; past this bound the subscription
    /// starts at the oldest match found, so it may get fewer than N.
    public var maxStartScan: Int = 65_536
    /// Upper bounds of one group commit, so one commit's latency stays bounded.
    public var maxMessagesPerCommit: Int = 65_536
    public var maxBytesPerCommit: Int = 32 << 20
    /// Bytes of the newest flushed log data kept in the page cache; written
    /// pages further back are handed back to the kernel once flushed (nil,
    /// the default: keep them all). Off by default because a replay or a
    /// subscriber further behind then reads from the disk: with a 64 MiB
    /// tail, replay of 1M 128 B messages fell from 1.71M to 1.22M msg/s
    /// (3 pairs), while cold 4 KiB writes rose 2.9x. docs/storage.md, "Page cache".
    public var pageCacheTail: Int? = nil

    public init(directory: String) {
        self.directory = directory
    }
}

/// Wall-clock time in nanoseconds since the epoch, as the store stamps and
/// ages messages (``StoreConfiguration/wallClock``).
public struct WallClock: Sendable {
    public let nanosecondsSinceEpoch: @Sendable () -> UInt64

    public init(_ nanosecondsSinceEpoch: @escaping @Sendable () -> UInt64) {
        self.nanosecondsSinceEpoch = nanosecondsSinceEpoch
    }

    /// `CLOCK_REALTIME`.
    public static let system = WallClock { Appender.wallClockNanoseconds() }
}
