import CoreMetrics
import Metrics
import RelayCore
import Synchronization
import struct Prometheus.PrometheusMetricsFactory
import class Prometheus.PrometheusCollectorRegistry

/// Every metric relayd exports, created once on its own Prometheus registry
/// (no global bootstrap, so tests can run several brokers in one process).
/// Hot-path metrics are updated per batch, not per message.
public final class BrokerMetrics: Sendable {
    public let registry: PrometheusCollectorRegistry
    let factory: PrometheusMetricsFactory

    public let connectionsOpen: Meter
    public let connectionsAccepted: Counter
    public let publishes: Counter
    public let publishBytes: Counter
    public let publishesRefused: Counter
    public let deliveries: Counter
    public let commitLatency: Timer
    public let storageBytes: Gauge
    public let lastSequence: Gauge
    public let subscriptions: Meter
    public let slowSubscriberFallbacks: Counter
    public let reloads: Counter
    public let reloadFailures: Counter
    public let auditWriteFailures: Gauge
    /// Connections whose TLS handshake is in progress (pre-auth slots held).
    public let preAuthConnections: Meter
    /// The metrics listener's own connections: open, refused at its cap,
    /// closed at its request timeout.
    public let metricsConnectionsOpen: Meter
    public let metricsConnectionsRefused: Counter
    public let metricsConnectionsTimedOut: Counter
    /// The store's configured limit (`storage.max_size`) and the free space
    /// of the file system holding it (what an unprivileged writer may use).
    public let storageMaxBytes: Gauge
    public let storageFilesystemFreeBytes: Gauge
    /// Records in a shared log that are not Relay's, skipped by its tail (docs/cluster.md).
    public let storageForeignRecords: Counter
    /// The server certificate's notAfter (Unix seconds; ``TLSValidityGauges``).
    public let tlsCertificateNotAfter: Gauge
    /// The live-buffer bytes of all connections and their budget
    /// (`[limits] live_buffer_budget`), read from ``LiveBufferBudget`` at each scrape.
    let liveBufferBytes: Gauge
    let liveBufferBudgetBytes: Gauge
    /// A cluster edge's off-loop log reads: running on a `read_threads`
    /// thread now, and waiting for one (``OffLoopLogReads``).
    let storageReadsRunning: Gauge
    let storageReadsWaiting: Gauge
    private let liveBuffers = Mutex<LiveBufferBudget?>(nil)

    public init() {
        let registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.defaultDurationHistogramBuckets = [
            .microseconds(50), .microseconds(100), .microseconds(250), .microseconds(500), .milliseconds(1),
            .milliseconds(2), .milliseconds(5), .milliseconds(10), .milliseconds(50), .milliseconds(250), .seconds(1),
        ]
        self.registry = registry
        self.factory = factory
        connectionsOpen = Meter(label: "relay_connections_open", factory: factory)
        connectionsAccepted = Counter(label: "relay_connections_accepted_total", factory: factory)
        publishes = Counter(label: "relay_publishes_total", factory: factory)
        publishBytes = Counter(label: "relay_publish_bytes_total", factory: factory)
        publishesRefused = Counter(label: "relay_publishes_refused_total", factory: factory)
        deliveries = Counter(label: "relay_deliveries_total", factory: factory)
        commitLatency = Timer(label: "relay_commit_latency_seconds", preferredDisplayUnit: .seconds, factory: factory)
        storageBytes = Gauge(label: "relay_storage_bytes", factory: factory)
        lastSequence = Gauge(label: "relay_last_sequence", factory: factory)
        subscriptions = Meter(label: "relay_subscriptions", factory: factory)
        slowSubscriberFallbacks = Counter(label: "relay_slow_subscriber_fallbacks_total", factory: factory)
        reloads = Counter(label: "relay_reloads_total", factory: factory)
        reloadFailures = Counter(label: "relay_reload_failures_total", factory: factory)
        auditWriteFailures = Gauge(label: "relay_audit_write_failures", factory: factory)
        preAuthConnections = Meter(label: "relay_preauth_connections", factory: factory)
        metricsConnectionsOpen = Meter(label: "relay_metrics_connections_open", factory: factory)
        metricsConnectionsRefused = Counter(label: "relay_metrics_connections_refused_total", factory: factory)
        metricsConnectionsTimedOut = Counter(label: "relay_metrics_connections_timed_out_total", factory: factory)
        storageMaxBytes = Gauge(label: "relay_storage_max_bytes", factory: factory)
        storageFilesystemFreeBytes = Gauge(label: "relay_storage_filesystem_free_bytes", factory: factory)
        storageForeignRecords = Counter(label: "relay_storage_foreign_records_total", factory: factory)
        tlsCertificateNotAfter = Gauge(label: "relay_tls_certificate_not_after_seconds", factory: factory)
        liveBufferBytes = Gauge(label: "relay_live_buffer_bytes", factory: factory)
        liveBufferBudgetBytes = Gauge(label: "relay_live_buffer_budget_bytes", factory: factory)
        storageReadsRunning = Gauge(label: "relay_storage_reads_running", factory: factory)
        storageReadsWaiting = Gauge(label: "relay_storage_reads_waiting", factory: factory)
        // At 0 from the start, also on a local store whose reads never leave the loop.
        storageReadsRunning.record(0)
        storageReadsWaiting.record(0)
        // The labelled counters an operator alerts on exist at 0 from the
        // start: a series that first appears with its first failure is one
        // `increase(...)` and `rate(...)` alerts miss (wave-14 operator review).
        for code in [RelayErrorCode.storageFull, .storageFailure] { storageFailures(code: code.name).increment(by: 0) }
        for limit in [BrokerContext.PreAuthRefusal.total, .perAddress] { preAuthRefused(limit: limit.rawValue).increment(by: 0) }
        // Every code that ends a session (revocation, expiry, write_stalled, ...).
        for code in RelayErrorCode.allCases where code.closesConnection { refusal(code: code.name).increment(by: 0) }
        // The limits a client hits one operation at a time (docs/configuration.md, "[limits]").
        for code in [RelayErrorCode.tooManySubscriptions, .tooManyInFlight, .payloadTooLarge, .invalidHeaders, .tooManyDurables] {
            operationRefusal(code: code.name).increment(by: 0)
        }
    }

    /// A counter with a `reason` label, e.g. handshake failures by reason.
    public func handshakeFailure(reason: String) -> Counter {
        Counter(label: "relay_handshake_failures_total", dimensions: [("reason", reason)], factory: factory)
    }

    /// Sessions that got past HELLO and ended, by reason: a `RelayErrorCode`
    /// name when the broker closed it, `bye`, `peer_closed` (close_notify),
    /// `closed_without_close_notify` (TCP close, e.g. a killed client),
    /// `connection_reset` (a TCP reset: a killed client with unread data).
    public func sessionClosed(reason: String) -> Counter {
        Counter(label: "relay_sessions_closed_total", dimensions: [("reason", reason)], factory: factory)
    }

    /// Connections closed at accept because a pre-auth limit was full,
    /// labelled with the limit's config key.
    public func preAuthRefused(limit: String) -> Counter {
        Counter(label: "relay_preauth_refused_total", dimensions: [("limit", limit)], factory: factory)
    }

    /// Messages the store refused to commit, by `RelayErrorCode` name
    /// (`storage_full`, `storage_failure`); policy refusals are not here.
    public func storageFailures(code: String) -> Counter {
        Counter(label: "relay_storage_failures_total", dimensions: [("code", code)], factory: factory)
    }

    /// Operations refused while the connection stays open (PUBERR, a
    /// refused SUBACK, ERR naming a subscription), by `RelayErrorCode` name.
    public func operationRefusal(code: String) -> Counter {
        Counter(label: "relay_operation_refusals_total", dimensions: [("code", code)], factory: factory)
    }

    public func refusal(code: String) -> Counter {
        Counter(label: "relay_refusals_total", dimensions: [("code", code)], factory: factory)
    }

    /// Per-durable lag (sequences committed after its cursor), labelled by
    /// durable name and owner (``SubscriptionLagGauges`` bounds the series).
    func lag(durable: String, owner: String) -> Gauge {
        Gauge(label: "relay_subscription_lag", dimensions: [("durable", durable), ("owner", owner)], factory: factory)
    }

    /// The earliest nextUpdate of the loaded CRLs (Unix seconds), while there is one.
    func crlNextUpdate() -> Gauge {
        Gauge(label: "relay_tls_crl_next_update_seconds", factory: factory)
    }

    /// The notAfter of the certificate relayd presents to NATS (Unix seconds;
    /// jetstream backend only, set at start and at each renewal: ``NATSClientFiles``).
    func natsClientCertificateNotAfter() -> Gauge {
        Gauge(label: "relay_nats_client_certificate_not_after_seconds", factory: factory)
    }

    /// Reloads that found the files relayd presents to NATS renewed (or
    /// named at new paths), by `result`: `taken` (the edge moved to a
    /// connection with them) or `refused` (not taken; the reload itself was
    /// applied, so `relay_reload_failures_total` does not count it).
    func natsClientRenewals(result: String) -> Counter {
        Counter(label: "relay_nats_client_renewals_total", dimensions: [("result", result)], factory: factory)
    }

    /// The TLS material's deadlines (set at start and reload).
    let tlsValidity = TLSValidityGauges()

    /// The exported lag series (sampled every 5 s).
    let lagGauges = SubscriptionLagGauges()

    /// The Prometheus text exposition: the registry's families with their
    /// HELP lines (``MetricHelp``), then build info and process metrics.
    public func exposition() -> String {
        if let budget = liveBuffers.withLock({ $0 }) {
            liveBufferBytes.record(budget.bytes)
            liveBufferBudgetBytes.record(budget.limit)
        }
        return MetricHelp.annotate(registry.emitToString()) + ProcessMetrics.exposition(startTime: startTime)
    }

    /// The broker's live-buffer budget, whose use each scrape reports.
    func watchLiveBuffers(_ budget: LiveBufferBudget) {
        liveBuffers.withLock { $0 = budget }
    }

    /// When this registry (the broker) started, for `process_start_time_seconds`.
    let startTime = ProcessMetrics.processStartTime()
}
