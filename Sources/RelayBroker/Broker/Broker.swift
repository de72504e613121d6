import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import RelayCore
import RelayPolicy
import RelayStore
import RelayTLS

/// A running broker: message log, router, listener, metrics listener. Start it,
/// reload it, shut it down. ``BrokerService`` runs it under
/// swift-service-lifecycle; tests can drive it directly.
public final class Broker: Sendable {
    public let context: BrokerContext
    public let server: BrokerServer
    public let metricsServer: MetricsHTTPServer?
    let group: MultiThreadedEventLoopGroup
    let overrides: (listen: String?, dataDirectory: String?)
    /// Holds `<data>/relayd.lock` (``InstanceLock``) until shutdown.
    private let instanceLock: FileHandle
    private let reloadLock = NIOLock()
    /// What this edge's NATS connection presents, as read at start or at the
    /// last reload that renewed it (jetstream backend; Broker+NATSRenewal.swift).
    let natsClientFiles: NIOLockedValueBox<NATSClientFiles?>

    public var port: Int { server.port }

    /// - Parameter openLog: opens the message log the broker runs on (relayd
    ///   passes the durable store's); the broker only ever sees it as `any MessageLog`.
    /// - Parameter createDataDirectory: create a missing data directory
    ///   (`relayd --init`); otherwise a missing one is refused (exit 66).
    public static func start(configuration: BrokerConfiguration, logger: Logger,
                             overrides: (listen: String?, dataDirectory: String?) = (nil, nil),
                             createDataDirectory: Bool = false,
                             openLog: MessageLogFactory) async throws -> Broker {
        let policy = try configuration.makePolicy()
        let tls = try TLSServerContextHolder(configuration: configuration.tlsServerConfiguration)
        let metrics = BrokerMetrics()
        for warning in SecurityWarnings.check(configuration) { logger.warning("\(warning)") }
        metrics.tlsValidity.update(tls.current.validity, metrics: metrics, logger: logger)
        // Read before the log connects to NATS with the same files (NATSClientFiles).
        let natsClientFiles = NATSClientFiles(configuration)
        if let natsClientFiles {
            metrics.tlsValidity.followNATSClientCertificate(natsClientFiles, metrics: metrics, logger: logger)
            // Both series from the start, so an alert on `refused` has a baseline.
            for result in ["taken", "refused"] { metrics.natsClientRenewals(result: result).increment(by: 0) }
        }
        // Refused here with the file's name and 78, not by nats.c as an
        // unexplained lost connection with 1 (which systemd restarts for ever).
        do {
            try natsClientFiles?.check()
        } catch {
            throw BrokerStartError(message: error.description, exitCode: RelayExit.invalidConfiguration.rawValue)
        }
        try DataDirectory.prepare(configuration.storage.path, create: createDataDirectory,
                                  configFile: configuration.sourceFile, logger: logger)
        // The data directory's lock, then the trail's, both before the store:
        // a second relayd on either stops here (each lock names its holder)
        // before it opens the log. Closing the handle releases the lock.
        let instanceLock = try InstanceLock.acquire(dataDirectory: configuration.storage.path)
        let audit: AuditTrail?
        let store: any MessageLog
        do {
            audit = try configuration.audit.path.map { path in
                try AuditTrail(path: path, options: configuration.auditOptions,
                               onWriteFailure: { metrics.auditWriteFailures.record($0) })
            }
            do {
                store = try openLog(configuration.storeConfiguration, logger)
            } catch {
                audit?.close()
                throw error
            }
        } catch {
            try? instanceLock.close()
            throw error
        }
        let router = Router(watermark: try store.lastSequence())
        let context = BrokerContext(configuration: configuration, policy: policy, store: store, router: router,
                                    tls: tls, metrics: metrics, audit: audit, logger: logger)
        // A shared log's tail opens with the first subscription (LiveTail.swift).
        let tailIdle = configuration.storage.jetstream?.tailIdleNanos ?? BrokerConfiguration.JetStream().tailIdleNanos
        router.followTail(of: store, idle: .nanoseconds(tailIdle), metrics: metrics, logger: logger)
        let group = MultiThreadedEventLoopGroup(numberOfThreads: max(1, System.coreCount))
        let server: BrokerServer
        do {
            server = try await BrokerServer.start(context: context, host: configuration.server.host,
                                                  port: configuration.server.port, group: group)
        } catch {
            store.close()
            audit?.close()
            try? instanceLock.close()
            try? await group.shutdownGracefully()
            throw BrokerStartError(message: StartupErrorText.cannotListen(
                "listen", on: "\(configuration.server.host):\(configuration.server.port)", error: error,
                change: "change [server] listen or pass --listen"))
        }
        var metricsServer: MetricsHTTPServer?
        if let listen = configuration.metrics.listen, let colon = listen.lastIndex(of: ":"),
           let port = Int(listen[listen.index(after: colon)...]) {
            do {
                metricsServer = try await MetricsHTTPServer.start(
                    host: String(listen[..<colon]), port: port, group: group, metrics: metrics,
                    maxConnections: configuration.metrics.maxConnections,
                    requestTimeout: .nanoseconds(configuration.metrics.requestTimeoutNanos), logger: logger,
                    notReady: { context.notReadyReason })
            } catch {
                await server.closeListener()
                store.close()
                audit?.close()
                try? instanceLock.close()
                try? await group.shutdownGracefully()
                throw BrokerStartError(message: StartupErrorText.cannotListen(
                    "serve metrics", on: listen, error: error,
                    change: "change [metrics] listen (an empty listen turns the metrics listener off)"))
            }
        }
        audit?.record("broker_started", ["listen": "\(configuration.server.host):\(server.port)"])
        // Warns again when a certificate or CRL deadline nears or passes while relayd runs.
        metrics.tlsValidity.watch(on: group.next())
        let broker = Broker(context: context, server: server, metricsServer: metricsServer, group: group,
                            overrides: overrides, instanceLock: instanceLock, natsClientFiles: natsClientFiles)
        // Weak: the context is the broker's. `relayctl reload` (the admin
        // surface) and BrokerContext.reload(trigger:) run the same reload as SIGHUP.
        context.reloadEntry.install { [weak broker] trigger in
            broker?.reload(trigger: trigger) ?? .refused(reason: "the broker has stopped")
        }
        context.admin.setReloader { [weak broker] in broker?.reload(trigger: .admin) ?? .refused(reason: "the broker has stopped") }
        return broker
    }

    private init(context: BrokerContext, server: BrokerServer, metricsServer: MetricsHTTPServer?,
                 group: MultiThreadedEventLoopGroup, overrides: (listen: String?, dataDirectory: String?),
                 instanceLock: FileHandle, natsClientFiles: NATSClientFiles?) {
        self.instanceLock = instanceLock
        self.natsClientFiles = NIOLockedValueBox(natsClientFiles)
        self.context = context
        self.server = server
        self.metricsServer = metricsServer
        self.group = group
        self.overrides = overrides
    }

    /// Re-reads the config file and every TLS file. A bad reload is refused
    /// (logged, counted, audited) and the running configuration stays.
    /// After a good one every live session is re-evaluated at once: a peer
    /// whose certificate no longer verifies (revoked, expired, CA removed)
    /// is disconnected, subscriptions the new rules refuse end, and the next
    /// PUB is checked against the new rules. `trigger` goes to the log and
    /// audit trail. Nothing is applied unless the whole configuration
    /// validates: the file parses, the policy compiles, and the certificate,
    /// key, CAs and CRLs load together.
    @discardableResult
    public func reload(trigger: ReloadTrigger) -> ReloadOutcome {
        // SIGHUP, the file watcher and an admin request may come together; two
        // interleaved reloads could install one's TLS context with the other's policy.
        reloadLock.withLock { reloadLocked(trigger: trigger) }
    }

    /// The earlier entry point: `trigger` is a ``ReloadTrigger`` raw value
    /// (anything else counts as "api"); true when applied.
    @discardableResult
    public func reload(trigger: String = "api") -> Bool {
        reload(trigger: ReloadTrigger(rawValue: trigger) ?? .api).isApplied
    }

    private func reloadLocked(trigger reloadTrigger: ReloadTrigger) -> ReloadOutcome {
        let trigger = reloadTrigger.rawValue
        let current = context.configuration
        do {
            let next = try BrokerConfiguration.load(path: current.sourceFile)
                .applying(listen: overrides.listen, dataDirectory: overrides.dataDirectory)
            let policy = try next.makePolicy()
            // Loads the TLS material without installing it; the reload below
            // installs the same files (a failure there also changes nothing).
            try BrokerConfigurationCheck.reloadCheck(next)
            // Renewed NATS files: checked and connected with now, switched to
            // once the rest is installed. Files NATS cannot use (or a NATS
            // that cannot be reached now) keep the connection relayd has and
            // do not hold back the rest: a CRL or policy change in the same
            // reload must take effect (docs/cluster.md, "Renewing the edge's
            // NATS certificate"). The next reload tries the files again.
            var natsRenewalRefused: NATSRenewalRefused?
            var natsRenewal: NATSRenewal?
            do {
                natsRenewal = try prepareNATSRenewal(next: next)
            } catch {
                natsRenewalRefused = error
            }
            // Installed before the policy (next line), so a session that sees the
            // new generation also finds the new TLS context.
            let installed = try context.tls.reload(configuration: next.tlsServerConfiguration)
            context.metrics.tlsValidity.update(installed.validity, metrics: context.metrics, logger: context.logger)
            let sessions = context.install(configuration: next, policy: policy)
            var pending = current.settingsNeedingRestart(comparedWith: next)
            natsRenewal?.switchOver(self)
            if natsRenewal != nil { context.metrics.natsClientRenewals(result: "taken").increment() }
            if let natsRenewalRefused {
                context.metrics.natsClientRenewals(result: "refused").increment()
                // Not in effect yet: listed with what waits, and logged with why.
                if !pending.contains("storage.jetstream") { pending.append("storage.jetstream") }
                context.logger.error("renewed NATS files not taken; the rest of the reload is applied",
                                     metadata: ["trigger": "\(trigger)", "error": "\(natsRenewalRefused)"])
            }
            context.metrics.reloads.increment()
            // Recorded before the sessions are re-evaluated, so its timestamp is
            // the moment the new configuration took effect and every
            // session_ended it causes follows it in the trail.
            if let renewed = natsRenewal?.changed {
                // A change of the edge's own credentials: the trail names the files.
                context.audit?.record("reload", ["result": "applied", "trigger": trigger, "config": next.sourceFile,
                                                 "sessions": sessions.count, "restart_required": pending,
                                                 "nats_client_renewed": renewed])
            } else if let natsRenewalRefused {
                context.audit?.record("reload", ["result": "applied", "trigger": trigger, "config": next.sourceFile,
                                                 "sessions": sessions.count, "restart_required": pending,
                                                 "nats_client_renewal_refused": natsRenewalRefused.description])
            } else {
                context.audit?.record("reload", ["result": "applied", "trigger": trigger, "config": next.sourceFile,
                                                 "sessions": sessions.count, "restart_required": pending])
            }
            for session in sessions { session.catchUpWithReload() }
            context.logger.notice("configuration reloaded", metadata: [
                "trigger": "\(trigger)", "sessions": "\(sessions.count)",
                "restart_required": "\(pending.isEmpty ? "none" : pending.joined(separator: ","))"])
            return .applied(sessions: sessions.count, restartRequired: pending)
        } catch {
            context.metrics.reloadFailures.increment()
            context.audit?.record("reload", ["result": "refused", "trigger": trigger, "config": current.sourceFile,
                                             "reason": "\(error)"])
            context.logger.error("reload refused; the previous configuration stays in force",
                                 metadata: ["trigger": "\(trigger)", "error": "\(error)"])
            return .refused(reason: "\(error)")
        }
    }

    /// Reopens the audit trail at its configured path (SIGHUP): after the
    /// operator renamed the file, new lines go to a new file there and the
    /// chain continues across the two (docs/operations.md, "Rotating the
    /// audit trail"). A failure is logged and audited; the old file stays in use.
    public func reopenAuditTrail() {
        guard let audit = context.audit else { return }
        switch audit.reopen() {
        case .success(let path):
            audit.record("trail_reopened", ["path": path])
            context.logger.info("audit trail reopened", metadata: ["path": "\(path)"])
        case .failure(let error):
            context.metrics.auditWriteFailures.record(audit.failures)
            context.logger.error("cannot reopen the audit trail; still writing to the file open before",
                                 metadata: ["error": "\(error)"])
        }
    }

    /// Whether the last ``shutdown()`` left the store open (an admin
    /// operation outlasted its bound): relayd then exits 1.
    private let storeLeftOpen = NIOLockedValueBox(false)
    public var leftStoreOpen: Bool { storeLeftOpen.withLockedValue { $0 } }

    /// Graceful shutdown: stop accepting, drain every session's in-flight
    /// publishes and ADMINs (answers go out), close them, wait for admin
    /// operations still running, then close the store cleanly.
    ///
    /// `[limits] shutdown_grace` after the signal, the admin operations still
    /// running are asked to stop (a purge rolls back and answers
    /// `server_shutting_down`); the store is closed once none runs, and at
    /// most one grace later. One still running then is inside the store
    /// (blocked on the writer, by a stalled disk say): closing the store
    /// under its transaction is not safe, so the store is left as its last
    /// commit made it, for the next start to open (the store keeps every commit),
    /// and relayd exits 1 (``leftStoreOpen``).
    public func shutdown() async {
        let operations = context.adminOperations
        let graceNanos = context.limits.shutdownGraceNanos
        let bound = Date().addingTimeInterval(2 * TimeInterval(graceNanos) / 1e9)
        let logger = context.logger
        let askToStop = Task {
            guard (try? await Task.sleep(nanoseconds: UInt64(graceNanos))) != nil else { return }
            operations.requestStop()
            let running = operations.count
            if running > 0 {
                logger.warning("the shutdown's grace ended with admin operations running; asking them to stop",
                               metadata: ["operations": "\(running)"])
            }
        }
        context.metrics.tlsValidity.stopWatching()
        await server.closeListener()
        let sessions = context.stopAccepting()
        let drains = sessions.map { $0.shutdown() }
        for drain in drains { try? await drain.get() }
        // The sessions waited for their ADMINs; one whose caller left may still run.
        let drained = await operations.drained(until: bound)
        askToStop.cancel()
        await metricsServer?.stop()
        // A SUB's look-up or a replay read on a thread of its own may still
        // read the log (a cursor read retries for up to 8 s during an
        // election): the log is not closed under it.
        await context.offLoopReads.drain()
        if drained {
            context.store.close()
        } else {
            storeLeftOpen.withLockedValue { $0 = true }
            context.logger.error("admin operations still running at the shutdown's bound; relayd exits without closing the store (not under their write transaction): the next start opens it as its last commit left it",
                metadata: ["operations": "\(operations.count)"])
        }
        context.audit?.record("broker_stopped")
        context.audit?.close()
        // Last: the next relayd may open the store once this one closed it
        // (left open, the lock goes with the process).
        if drained { try? instanceLock.close() }
        try? await group.shutdownGracefully()
    }
}

extension BrokerConfiguration {
    /// The sections that differ from `next` but only apply at restart:
    /// the listener, storage, retention, limits, metrics, log and audit
    /// settings are fixed when the broker starts. A reload applies `[tls]`
    /// and `[acl]` and reports these so the operator knows to restart.
    /// The files relayd presents to NATS are not among them: a reload takes
    /// them, at the same paths or new ones (Broker+NATSRenewal; when it
    /// cannot, the reload lists `storage.jetstream` itself).
    func settingsNeedingRestart(comparedWith next: BrokerConfiguration) -> [String] {
        var changed: [String] = []
        var nextStorage = next.storage
        if let nats = storage.jetstream, nextStorage.jetstream != nil {
            nextStorage.jetstream?.ca = nats.ca
            nextStorage.jetstream?.certificate = nats.certificate
            nextStorage.jetstream?.privateKey = nats.privateKey
        }
        if server != next.server { changed.append("server") }
        if storage != nextStorage { changed.append("storage") }
        if retention != next.retention { changed.append("retention") }
        if limits != next.limits { changed.append("limits") }
        if metrics != next.metrics { changed.append("metrics") }
        if log != next.log { changed.append("log") }
        if audit != next.audit { changed.append("audit") }
        return changed
    }
}

/// Opens the broker's message log from the `[storage]`, `[[retention]]`
/// and dedup settings. relayd's composition root passes the durable store's
/// `open`; the broker never names a concrete log.
public typealias MessageLogFactory = @Sendable (StoreConfiguration, Logger) throws -> any MessageLog

public struct BrokerStartError: Error, CustomStringConvertible {
    public var message: String
    /// relayd's exit status for this refusal (`RelayExit`, RelayCore; 1 otherwise).
    public var exitCode: Int32 = 1
    public var description: String { message }
}
