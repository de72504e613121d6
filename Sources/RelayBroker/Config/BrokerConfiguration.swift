import RelayPolicy

/// Everything relayd is configured with, after parsing and validation.
/// Paths are absolute (resolved against the config file's folder).
/// docs/configuration.md documents each key; keep the two in step.
public struct BrokerConfiguration: Sendable, Equatable {
    public struct Server: Sendable, Equatable {
        public var host = "127.0.0.1"
        public var port = 7443
        /// How long a client has after the TLS handshake to send HELLO.
        public var helloTimeoutNanos: Int64 = 5_000_000_000
    }

    public struct TLS: Sendable, Equatable {
        public var certificate = ""
        public var privateKey = ""
        public var clientCA: [String] = []
        public var crl: [String] = []
        /// "refuse" (default) or "allow-intermediate": an intermediate CA whose
        /// issuer's CRL is not loaded (see TLSMissingCRLPolicy).
        public var crlMissing = "refuse"
        /// "1.3" (default) or "1.2".
        public var minVersion = "1.3"
        public var handshakeTimeoutNanos: Int64 = 10_000_000_000
    }

    public enum Durability: String, Sendable, Equatable {
        /// Ack after the store's commit returned, with fsync. The default.
        case fsync
        /// Commits without fsync plus a periodic sync: loses at most `syncInterval` on a crash.
        case async
    }

    public struct Storage: Sendable, Equatable {
        public var path = ""
        public var durability = Durability.fsync
        public var maxSize: Int64 = 8 << 30
        public var syncIntervalNanos: Int64 = 100_000_000
        /// How long a producer key is remembered for deduplication (announced in WELCOME).
        public var dedupWindowNanos: Int64 = 120_000_000_000
        /// `page_cache_tail`: flushed data further than this behind the log's
        /// end leaves the page cache (StoreConfiguration.pageCacheTail); nil keeps it.
        public var pageCacheTail: Int?
        /// Which message log relayd runs on (JetStreamConfiguration.swift).
        public var backend = StorageBackend.lmdb
        public var jetstream: JetStream?
    }

    public struct Retention: Sendable, Equatable {
        public var filter: String
        public var maxAgeNanos: Int64?
        public var maxMessages: Int64?
        public var maxBytes: Int64?
    }

    public struct Limits: Sendable, Equatable {
        public var maxConnections = 10_000
        public var maxFrameSize = 1_114_112
        public var maxPayload = 1_048_576
        public var maxHeaders = 64
        public var maxSubscriptionsPerConnection = 1_000
        public var maxInFlightPublishes = 4_096
        /// Messages buffered per subscription before it falls back to reading the store.
        public var subscriptionBuffer = 8_192
        /// Live-buffer bytes of all connections together; past it a
        /// subscription reads from the store, as past its own limits.
        public var liveBufferBudget = 1 << 30
        /// The range `live_buffer_budget` may take.
        public static let liveBufferBudgetRange: ClosedRange<Int64> = (1 << 20)...(1 << 40)
        /// How long a connection may stay unwritable (its unsent output above
        /// the high water mark, because the peer does not read) before it is
        /// closed with `write_stalled`.
        public var writeStallTimeoutNanos: Int64 = 30_000_000_000
        /// How long a graceful shutdown waits for each session's answers
        /// (PUBs committing, ADMINs running), and then for admin operations
        /// still running, before it goes on (`shutdown_grace`).
        public var shutdownGraceNanos: Int64 = 10_000_000_000
        /// The most `shutdown_grace` may be: past an hour it is a typo, and
        /// a supervisor stops waiting long before (systemd's TimeoutStopSec).
        public static let maximumShutdownGraceNanos: Int64 = 3_600_000_000_000
        /// Connections whose TLS handshake has not completed yet, in total and
        /// per source address. They never count against `maxConnections`.
        /// Per address: a client host reconnecting a pool of ~100 connections
        /// at once after a restart must not be refused.
        public var maxPreAuthConnections = 1_024
        public var maxPreAuthPerAddress = 128
        /// Durable subscriptions one durable owner (docs/storage.md) may
        /// hold: stored cursors plus names attached without one yet. A SUB
        /// of a new name beyond it is refused `too_many_durables`.
        public var maxDurablesPerOwner = 1_000
        /// The most `max_durables` may be: a SUB of a new durable reads up to
        /// that many of the owner's names from the store.
        public static let maxDurablesCeiling = 100_000
    }

    public struct Metrics: Sendable, Equatable {
        /// "host:port", or nil to disable the metrics listener.
        public var listen: String? = "127.0.0.1:9464"
        /// Open HTTP connections; more are closed at once.
        public var maxConnections = 64
        /// A connection gets this long to send a complete request; an idle
        /// or slow one is closed after it.
        public var requestTimeoutNanos: Int64 = 5_000_000_000
    }

    public enum LogFormat: String, Sendable, Equatable { case logfmt, json }

    public struct Log: Sendable, Equatable {
        public var format = LogFormat.logfmt
        public var level = "info"
        /// One `info` line per connection accepted, closed and denied.
        public var connections = true
    }

    public struct Audit: Sendable, Equatable {
        /// The JSON-lines audit file, or nil to disable the trail.
        public var path: String?
        /// The chain's HMAC key; nil means `audit.key` in the data directory.
        public var keyFile: String?
        /// Rotate the trail past this size (bytes); 0 never rotates.
        public var maxFileSize: Int64 = 256 << 20
        /// How long repeats of one event by one actor are counted before their summary line.
        public var repeatIntervalNanos: Int64 = 10_000_000_000
    }

    public struct Reload: Sendable, Equatable {
        /// Reload when the config or a TLS file changes on disk. Off by
        /// default: an edit goes live on SIGHUP or `relayctl reload` only.
        public var watch = false
    }

    /// One `[[acl.rule]]` as written; RelayPolicy validates and compiles it.
    public typealias ACLRule = RuleDefinition

    public struct ACL: Sendable, Equatable {
        /// Template for the principal string; nil means the RFC 4514 subject.
        public var principal: String?
        public var rules: [ACLRule] = []
    }

    /// The file it was read from ("" when built in code).
    public var sourceFile = ""
    public var server = Server()
    public var tls = TLS()
    public var storage = Storage()
    public var retention: [Retention] = []
    public var limits = Limits()
    public var metrics = Metrics()
    public var log = Log()
    public var audit = Audit()
    public var reload = Reload()
    public var acl = ACL()

    public init() {}

    /// The compiled policy of `[acl]`. ``ConfigParser`` already validated it,
    /// so this only fails for a configuration built in code.
    public func makePolicy() throws(ConfigError) -> Policy {
        do {
            return try Policy(definitions: acl.rules, principal: acl.principal)
        } catch {
            let key = error.ruleIndex.map { "acl.rule[\($0)].\(error.key)" } ?? "acl.\(error.key)"
            throw ConfigError(file: sourceFile, key: key, message: error.message)
        }
    }
}
