import RelayStore

/// `[storage.jetstream]`: where the shared log lives and how long a publish
/// may wait for it (docs/cluster.md, docs/configuration.md).
public struct JetStreamSettings: Sendable, Equatable {
    /// NATS URLs, mTLS files and the connection name.
    public var endpoint: NATSEndpoint
    /// The stream holding every message; subjects `<subjectPrefix>.<topic>`.
    public var stream = "RELAY"
    public var subjectPrefix = "relay"
    /// Copies of the stream and of the cursor bucket (1, 3 or 5).
    public var replicas = 3
    /// How long one append may wait for JetStream's ack, retries included,
    /// before it fails with ``StoreError/unavailable(_:)``. Longer than a
    /// leader election (3-5 s), so an election costs latency, not errors.
    public var publishTimeout: Duration = .seconds(10)
    /// The first wait after a publish found no leader; it doubles up to
    /// ``maxRetryBackoff``. Retries reuse the Nats-Msg-Id.
    public var retryBackoff: Duration = .milliseconds(250)
    public var maxRetryBackoff: Duration = .seconds(2)
    /// The most publishes awaiting JetStream's ack at one time; the writer
    /// waits for acks when it is reached (docs/performance-history.md, "Cluster edge history", its first section).
    public var publishWindow = 4_096
    /// How long `open` keeps retrying, with the publish backoff, while the
    /// NATS servers do not answer or JetStream has no quorum yet (hosts
    /// booting together, a meta leader still being elected); then relayd
    /// gives up with the last reason. Zero: one attempt.
    public var startupTimeout: Duration = .seconds(60)
    /// The most one read request (direct get, stream info) waits.
    public var requestTimeout: Duration = .seconds(2)
    /// How often availability (a stream leader answering) is probed for /readyz.
    public var probeInterval: Duration = .seconds(1)
    /// After the first record in the stream that is not Relay's, at most one
    /// summary line per this interval (ForeignRecordNotices.swift).
    public var foreignRecordSummaryInterval: Duration = .seconds(10)
    /// `last N` up to this N walks the newest matching messages with direct
    /// gets; a larger N counts them with ephemeral consumers
    /// (JetStreamMessageLog+Positions.swift). Not in relayd's config: the
    /// tests set it to run both ways.
    public var lastNWalkLimit: UInt64 = 256

    /// The record and Nats-Msg-Id this edge writes; it reads both formats
    /// (JetStreamRecordFormat.swift, docs/cluster.md "Record formats and rolling upgrades").
    public var recordFormat: JetStreamRecordFormat = .v2

    /// The key-value bucket holding durable cursors.
    public var cursorBucket: String { "\(stream)_CURSORS" }

    public init(endpoint: NATSEndpoint) {
        self.endpoint = endpoint
    }
}

extension Duration {
    var wholeMilliseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1000 + attoseconds / 1_000_000_000_000_000
    }
}
