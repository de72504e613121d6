/// `[storage] backend` and `[storage.jetstream]`: where the shared message
/// log lives when relayd runs as one edge of a cluster (docs/cluster.md).
extension BrokerConfiguration {
    public enum StorageBackend: String, Sendable, Equatable {
        /// The embedded store in `[storage] path` (the default).
        case lmdb
        /// A NATS JetStream stream shared by every edge that names it.
        case jetstream
    }

    /// `[storage.jetstream]`. Paths are resolved against the config file's directory.
    public struct JetStream: Sendable, Equatable {
        /// NATS URLs, e.g. `tls://10.0.0.1:4222`; the client tries them all.
        public var servers: [String] = []
        /// The CA that signed the NATS servers' certificates.
        public var ca = ""
        /// The client certificate and key relayd presents to NATS.
        public var certificate = ""
        public var privateKey = ""
        public var stream = "RELAY"
        public var replicas = 3
        /// The most one publish waits for JetStream's ack, retries included.
        public var publishTimeoutNanos: Int64 = 10_000_000_000
        /// How long relayd waits at start for NATS to accept the stream and
        /// cursor bucket (servers still booting, no JetStream quorum yet).
        public var startupTimeoutNanos: Int64 = 60_000_000_000
        /// The first pause before retrying a publish no leader answered (doubles, up to 2 s).
        public var retryBackoffNanos: Int64 = 250_000_000
        /// `record_format`: "v2" (records without the topic, compact message
        /// ids; the default) or "v1" (what older edges write), for a rolling
        /// upgrade (docs/cluster.md, "Record formats and rolling upgrades").
        public var recordFormat = "v2"
        /// `tail_idle`: how long the edge keeps following the stream (its
        /// live tail, an ordered consumer) after its last subscription ended;
        /// with no subscription after that, nats-server sends it nothing
        /// (docs/cluster.md, "Live delivery across edges").
        public var tailIdleNanos: Int64 = 10_000_000_000
        /// `read_threads`: the threads that make a SUB's look-ups and replay
        /// reads off the event loops (OffLoopLogReads.swift). Each read holds
        /// one while it waits on NATS (a cursor read up to 8 s during an
        /// election); more wait their turn.
        public var readThreads = defaultReadThreads
        public static let defaultReadThreads = 16
        /// The most the last retry of a publish waits for its ack (JetStreamSettings.requestTimeout).
        static let retryAckWaitNanos: Int64 = 2_000_000_000
    }
}

extension ConfigParser {
    /// `backend` of `[storage]`, and its `[storage.jetstream]` table.
    func parseStorageBackend(_ t: inout TOMLReader, into s: inout BrokerConfiguration.Storage) throws(ConfigError) {
        if let b = try t.string("backend") {
            guard let backend = BrokerConfiguration.StorageBackend(rawValue: b) else {
                throw t.error("backend", "expected \"lmdb\" (the embedded store, the default) or \"jetstream\" (a NATS JetStream cluster), got \"\(b)\"")
            }
            s.backend = backend
        }
        if var j = try t.table("jetstream") {
            var js = BrokerConfiguration.JetStream()
            js.servers = try j.strings("servers") ?? []
            for (i, url) in js.servers.enumerated() where !(url.hasPrefix("tls://") || url.hasPrefix("nats://")) {
                throw j.error("servers[\(i)]", "expected a NATS URL such as \"tls://10.0.0.1:4222\", got \"\(url)\"")
            }
            // Checked like [tls]'s files: a missing one is named here, not by nats.c at connect.
            if let v = try j.string("ca") { js.ca = try existingFile(v, reader: j, key: "ca") }
            if let v = try j.string("certificate") { js.certificate = try existingFile(v, reader: j, key: "certificate") }
            if let v = try j.string("private_key") { js.privateKey = try existingFile(v, reader: j, key: "private_key") }
            if let v = try j.string("stream") {
                guard !v.isEmpty, v.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_" || $0 == "-") }) else {
                    throw j.error("stream", "a stream name is letters, digits, '_' and '-', got \"\(v)\"")
                }
                js.stream = v
            }
            if let v = try j.int("replicas", min: 1, max: 5) { js.replicas = Int(v) }
            if let v = try j.duration("publish_timeout") {
                guard v >= 1_000_000_000 else { throw j.error("publish_timeout", "must be at least 1s (a leader election takes 3-5 s; 10s is the default)") }
                js.publishTimeoutNanos = v
            }
            if let v = try j.duration("startup_timeout") {
                guard v <= 86_400_000_000_000 else {
                    throw j.error("startup_timeout", "must be at most 24h (\"0s\": one attempt; 60s is the default)")
                }
                js.startupTimeoutNanos = v
            }
            if let v = try j.duration("retry_backoff") {
                guard v >= 10_000_000 && v <= 5_000_000_000 else { throw j.error("retry_backoff", "must be between 10ms and 5s") }
                js.retryBackoffNanos = v
            }
            if let v = try j.string("record_format") {
                guard v == "v1" || v == "v2" else {
                    throw j.error("record_format", "expected \"v2\" (the default) or \"v1\" (while edges older than record format 2 still run), got \"\(v)\"")
                }
                js.recordFormat = v
            }
            if let v = try j.duration("tail_idle") {
                guard v <= 86_400_000_000_000 else {
                    throw j.error("tail_idle", "must be at most 24h (\"0s\": stop following the stream as soon as the last subscription ends; 10s is the default)")
                }
                js.tailIdleNanos = v
            }
            if let v = try j.int("read_threads", min: .min) {
                guard (1...256).contains(v) else {
                    throw j.error("read_threads", "must be 1 to 256, got \(v): the threads that make SUB look-ups and replay reads while they wait on NATS (16 is the default)")
                }
                js.readThreads = Int(v)
            }
            try j.finish()
            s.jetstream = js
        }
        guard s.backend == .jetstream else {
            // Read only with the jetstream backend: ignoring it ran every edge on a local store of its own.
            if s.jetstream != nil {
                throw t.error("jetstream", "is set, but [storage] backend is \"lmdb\" (the default), which would ignore it and keep every message in this relayd's own store; add backend = \"jetstream\" to [storage] (docs/cluster.md), or remove [storage.jetstream]")
            }
            return
        }
        guard let js = s.jetstream else {
            throw t.error("jetstream", "missing: backend = \"jetstream\" needs a [storage.jetstream] table with servers, ca, certificate and private_key")
        }
        for (key, value) in [("servers", js.servers.first ?? ""), ("ca", js.ca), ("certificate", js.certificate),
                             ("private_key", js.privateKey)] where value.isEmpty {
            throw t.error("jetstream.\(key)", "missing; backend = \"jetstream\" needs servers, ca, certificate and private_key")
        }
        try checkDedupWindow(s, js, t)
    }

    /// The stream's duplicate window must outlast every retry of a publish:
    /// the edge resends with the same Nats-Msg-Id for up to `publish_timeout`,
    /// and the last attempt may wait `retryAckWaitNanos` for its ack. A retry
    /// arriving after JetStream forgot the first attempt's id is stored twice.
    private func checkDedupWindow(_ s: BrokerConfiguration.Storage, _ js: BrokerConfiguration.JetStream,
                                  _ t: TOMLReader) throws(ConfigError) {
        let budget = js.publishTimeoutNanos + BrokerConfiguration.JetStream.retryAckWaitNanos
        guard s.dedupWindowNanos > budget else {
            throw t.error("dedup_window", "must be longer than publish_timeout + 2s (\(budget / 1_000_000_000)s here) "
                + "with backend = \"jetstream\": it is JetStream's duplicate window, and a publish is retried with the same "
                + "id for that long; raise dedup_window (default 120s) or lower [storage.jetstream] publish_timeout "
                + "(docs/cluster.md, \"The dedup window and the retry budget\")")
        }
    }
}
