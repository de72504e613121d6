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
    private let reloadLock = NIOLock()

    public var port: Int { server.port }

    /// - Parameter openLog: opens the message log the broker runs on (relayd
    ///   passes the durable store's); the broker only ever sees it as `any MessageLog`.
    public static func start(configuration: BrokerConfiguration, logger: Logger,
                             overrides: (listen: String?, dataDirectory: String?) = (nil, nil),
                             openLog: MessageLogFactory) async throws -> Broker {
        let policy = try configuration.makePolicy()
        let tls = try TLSServerContextHolder(configuration: configuration.tlsServerConfiguration)
        let metrics = BrokerMetrics()
        for warning in SecurityWarnings.check(configuration) { logger.warning("\(warning)") }
        try DataDirectory.prepare(configuration.storage.path)
        // The trail before the store: a second relayd on the same files stops
        // here (the trail's lock names the holder) before it opens the log.
        let audit = try configuration.audit.path.map { path in
            try AuditTrail(path: path, options: configuration.auditOptions,
                           onWriteFailure: { metrics.auditWriteFailures.record($0) })
        }
        let store: any MessageLog
        do {
            store = try openLog(configuration.storeConfiguration, logger)
        } catch {
            audit?.close()
            throw error
        }
        let router = Router(watermark: try store.lastSequence())
        let context = BrokerContext(configuration: configuration, policy: policy, store: store, router: router,
                                    tls: tls, metrics: metrics, audit: audit, logger: logger)
        do {
            try router.followTail(of: store, metrics: metrics)
        } catch {
            store.close()
            audit?.close()
            throw error
        }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: max(1, System.coreCount))
        let server: BrokerServer
        do {
            server = try await BrokerServer.start(context: context, host: configuration.server.host,
                                                  port: configuration.server.port, group: group)
        } catch {
            store.close()
            audit?.close()
            try? await group.shutdownGracefully()
            throw BrokerStartError(message: "cannot listen on \(configuration.server.host):\(configuration.server.port): \(error); is another relayd running? change [server] listen or pass --listen")
        }
        var metricsServer: MetricsHTTPServer?
        if let listen = configuration.metrics.listen, let colon = listen.lastIndex(of: ":"),
           let port = Int(listen[listen.index(after: colon)...]) {
            metricsServer = try await MetricsHTTPServer.start(
                host: String(listen[..<colon]), port: port, group: group, metrics: metrics,
                maxConnections: configuration.metrics.maxConnections,
                requestTimeout: .nanoseconds(configuration.metrics.requestTimeoutNanos), logger: logger,
                notReady: { context.notReadyReason })
        }
        audit?.record("broker_started", ["listen": "\(configuration.server.host):\(server.port)"])
        let broker = Broker(context: context, server: server, metricsServer: metricsServer, group: group, overrides: overrides)
        // `relayctl reload` runs the same reload as SIGHUP.
        context.admin.setReloader { [weak broker] in broker?.reload(trigger: "admin") ?? false }
        return broker
    }

    private init(context: BrokerContext, server: BrokerServer, metricsServer: MetricsHTTPServer?,
                 group: MultiThreadedEventLoopGroup, overrides: (listen: String?, dataDirectory: String?)) {
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
    /// PUB is checked against the new rules. `trigger` ("sighup",
    /// "file_change", "api") goes to the log and audit trail.
    @discardableResult
    public func reload(trigger: String = "api") -> Bool {
        // SIGHUP and the file watcher may fire together; two interleaved
        // reloads could install one's TLS context with the other's policy.
        reloadLock.withLock { reloadLocked(trigger: trigger) }
    }

    private func reloadLocked(trigger: String) -> Bool {
        let current = context.configuration
        do {
            let next = try BrokerConfiguration.load(path: current.sourceFile)
                .applying(listen: overrides.listen, dataDirectory: overrides.dataDirectory)
            let policy = try next.makePolicy()
            let tls = try context.tls.reload(configuration: next.tlsServerConfiguration)
            let sessions = context.install(configuration: next, policy: policy)
            let pending = current.settingsNeedingRestart(comparedWith: next)
            context.metrics.reloads.increment()
            // Recorded before the sessions are re-evaluated, so its timestamp is
            // the moment the new configuration took effect and every
            // session_ended it causes follows it in the trail.
            context.audit?.record("reload", ["result": "applied", "trigger": trigger, "config": next.sourceFile,
                                             "sessions": sessions.count, "restart_required": pending])
            for session in sessions { session.reevaluate(policy: policy, tls: tls) }
            context.logger.notice("configuration reloaded", metadata: [
                "trigger": "\(trigger)", "sessions": "\(sessions.count)",
                "restart_required": "\(pending.isEmpty ? "none" : pending.joined(separator: ","))"])
            return true
        } catch {
            context.metrics.reloadFailures.increment()
            context.audit?.record("reload", ["result": "refused", "trigger": trigger, "config": current.sourceFile,
                                             "reason": "\(error)"])
            context.logger.error("reload refused; the previous configuration stays in force",
                                 metadata: ["trigger": "\(trigger)", "error": "\(error)"])
            return false
        }
    }

    /// Graceful shutdown: stop accepting, drain every session's in-flight
    /// publishes (acks go out), close them, then close the store cleanly.
    public func shutdown() async {
        await server.closeListener()
        let sessions = context.stopAccepting()
        let drains = sessions.map { $0.shutdown() }
        for drain in drains { try? await drain.get() }
        await metricsServer?.stop()
        context.store.close()
        context.audit?.record("broker_stopped")
        context.audit?.close()
        try? await group.shutdownGracefully()
    }
}

extension BrokerConfiguration {
    /// The sections that differ from `next` but only apply at restart:
    /// the listener, storage, retention, limits, metrics, log and audit
    /// settings are fixed when the broker starts. A reload applies `[tls]`
    /// and `[acl]` and reports these so the operator knows to restart.
    func settingsNeedingRestart(comparedWith next: BrokerConfiguration) -> [String] {
        var changed: [String] = []
        if server != next.server { changed.append("server") }
        if storage != next.storage { changed.append("storage") }
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
    public var description: String { message }
}
