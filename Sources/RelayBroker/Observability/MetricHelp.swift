/// The HELP text of every metric relayd exports (docs/operations.md
/// "Metrics" lists the same). swift-metrics has no help argument and the
/// Prometheus registry refuses one family with two help texts, so the
/// metrics are created without it and ``annotate(_:)`` adds a `# HELP`
/// line before each family's `# TYPE` line. A family missing here has no
/// HELP line, which `promtool check metrics` reports (PromtoolTests).
enum MetricHelp {
    static let text: [String: String] = [
        "relay_connections_open": "Authenticated client sessions open now.",
        "relay_connections_accepted_total": "TCP connections accepted on the client listener (before TLS).",
        "relay_publishes_total": "Messages committed to the store.",
        "relay_publish_bytes_total": "Payload bytes committed to the store.",
        "relay_publishes_refused_total": "Publishes answered with PUBERR (any reason: policy, limits, storage).",
        "relay_operation_refusals_total": "Operations refused while the connection stays open (PUBERR, refused SUBACK, ERR naming a subscription), by code (e.g. too_many_subscriptions, too_many_in_flight, payload_too_large, too_many_durables).",
        "relay_deliveries_total": "Messages delivered to subscribers.",
        "relay_commit_latency_seconds": "Time from handing a batch of publishes to the store to its durable commit.",
        "relay_storage_bytes": "Bytes the store uses (sampled every 5 s).",
        "relay_storage_max_bytes": "The store's configured size limit, storage.max_size (sampled every 5 s).",
        "relay_storage_filesystem_free_bytes": "Free bytes on the file system holding the store, as an unprivileged writer sees them (sampled every 5 s).",
        "relay_storage_failures_total": "Messages the store refused to commit, by code (storage_full, storage_failure); policy refusals are not counted here.",
        "relay_storage_reads_running": "Log reads a cluster edge is making off the event loops now (SUB look-ups, replay batches): at most storage.jetstream.read_threads. Always 0 with a local store.",
        "relay_storage_reads_waiting": "Log reads waiting for a storage.jetstream.read_threads thread; staying above 0 means raise read_threads, or NATS is slow to answer. Always 0 with a local store.",
        "relay_storage_foreign_records_total": "Records in the shared JetStream stream that relayd could not decode and skipped: something other than relayd publishes into its subjects (docs/cluster.md). Always 0 with a local store.",
        "relay_last_sequence": "The highest committed message sequence.",
        "relay_subscriptions": "Subscriptions open now.",
        "relay_subscription_lag": "Sequences committed after a stored durable cursor (an upper bound of its backlog), by durable name and owner digest (sampled every 5 s).",
        "relay_slow_subscriber_fallbacks_total": "Times a live subscription fell behind and switched to replay from the store.",
        "relay_live_buffer_bytes": "Bytes held in the live buffers of all subscriptions of all connections (read at scrape time).",
        "relay_live_buffer_budget_bytes": "The live-buffer bytes all connections together may hold, limits.live_buffer_budget.",
        "relay_reloads_total": "Configuration reloads applied.",
        "relay_reload_failures_total": "Configuration reloads refused (the previous configuration stayed).",
        "relay_audit_write_failures": "Audit trail writes that failed since start (e.g. a full disk).",
        "relay_preauth_connections": "Connections whose TLS handshake is in progress.",
        "relay_preauth_refused_total": "Connections closed at accept because a pre-authentication limit was full, by limit.",
        "relay_handshake_failures_total": "TLS handshakes refused or failed, by reason (e.g. certificate_expired, unknown_ca, certificate_revoked).",
        "relay_sessions_closed_total": "Sessions that ended after HELLO, by reason.",
        "relay_refusals_total": "Connection-level errors the broker sent before closing a session, by code.",
        "relay_tls_certificate_not_after_seconds": "The server certificate's notAfter, Unix time (set at start and reload).",
        "relay_tls_crl_next_update_seconds": "The earliest nextUpdate of the loaded CRLs, Unix time: past it every client chain that CRL covers is refused (absent without a CRL that has one).",
        "relay_nats_client_renewals_total": "Reloads that found renewed NATS client files (or new paths), by result: taken or refused (jetstream backend).",
        "relay_nats_client_certificate_not_after_seconds": "The notAfter of the certificate relayd presents to NATS, Unix time (jetstream backend; read at start and at each reload that takes a renewed one).",
        "relay_metrics_connections_open": "Connections open on the metrics listener.",
        "relay_metrics_connections_refused_total": "Metrics listener connections closed at accept (metrics.max_connections reached).",
        "relay_metrics_connections_timed_out_total": "Metrics listener connections closed at metrics.request_timeout.",
    ]

    /// `exposition` with a `# HELP` line before each `# TYPE` line whose
    /// family has help text and none yet.
    static func annotate(_ exposition: String) -> String {
        var out = ""
        out.reserveCapacity(exposition.utf8.count + text.count * 80)
        var lastHelp: Substring?
        for line in exposition.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("# HELP ") {
                lastHelp = line.dropFirst(7).split(separator: " ", maxSplits: 1).first
            } else if line.hasPrefix("# TYPE "), let name = line.dropFirst(7).split(separator: " ").first,
                      lastHelp != name, let help = text[String(name)] {
                out += "# HELP \(name) \(help)\n"
            }
            out += line
            out += "\n"
        }
        if out.hasSuffix("\n\n") { out.removeLast() }  // the split's empty last piece
        return out
    }
}
