import Logging
import NIOConcurrencyHelpers
import NIOCore
import RelayCore
import RelayPolicy
import RelayStore
import RelayTLS

/// What every session shares: the message log (`store`, only ever seen
/// through ``MessageLog``), the router, the current policy
/// and TLS context, metrics, the audit trail and the live-session registry.
/// Sessions read the policy when they start and after every reload.
public final class BrokerContext: Sendable {
    public let store: any MessageLog
    /// False for a log shared by several edges (JetStream): the router is
    /// then fed from the log's tail (``Router/routeTail(_:metrics:)``), not
    /// from this edge's appends, so every edge delivers one order.
    let routesCommittedAppends: Bool
    public let router: Router
    public let metrics: BrokerMetrics
    public let audit: AuditTrail?
    public let logger: Logger
    public let tls: TLSServerContextHolder
    public let limits: BrokerConfiguration.Limits
    public let helloTimeout: TimeAmount
    /// Start time, config digest, connection ids, totals for the admin operations.
    public let admin = AdminState()
    /// Whether the store can commit (``StoreHealth``): part of /readyz.
    public let storeHealth: StoreHealth
    /// The live-buffer bytes of every connection together (`[limits] live_buffer_budget`).
    let liveBuffers: LiveBufferBudget
    /// Runs SUB look-ups and replay reads off the event loops on a log whose
    /// reads wait on a service, on `[storage.jetstream] read_threads` threads;
    /// the shutdown waits for those running before it closes the store.
    let offLoopReads: OffLoopLogReads
    /// The admin operations running now: the shutdown waits for them before it closes the store.
    let adminOperations = AdminOperationsInFlight()
    private let state: NIOLockedValueBox<State>
    /// Where ``reload(trigger:)`` goes; ``Broker/start`` connects it.
    let reloadEntry = ReloadEntry()

    struct State {
        var configuration: BrokerConfiguration
        var policy: Policy
        var sessions: [ObjectIdentifier: SessionControl] = [:]
        /// (owner, durable name) pairs attached to a live session or still committing its cursor.
        var durables = DurableClaims()
        var accepting = true
        /// Bumped by every applied reload. A session remembers the value at
        /// accept; if it changed by HELLO, the handshake may have used the
        /// previous CA/CRL set and the chain is verified again.
        var generation: UInt64 = 0
        /// Connections whose TLS handshake has not completed, by source address.
        var preAuth: [String: Int] = [:]
        var preAuthTotal = 0
    }

    /// Why a connection was not given a pre-authentication slot.
    enum PreAuthRefusal: String {
        /// `limits.max_preauth_connections` handshakes are already in progress.
        case total = "max_preauth_connections"
        /// `limits.max_preauth_per_address` from this source address.
        case perAddress = "max_preauth_per_address"
    }

    init(configuration: BrokerConfiguration, policy: Policy, store: any MessageLog, router: Router,
         tls: TLSServerContextHolder, metrics: BrokerMetrics, audit: AuditTrail?, logger: Logger) {
        self.store = store
        self.routesCommittedAppends = !(store is any SharedMessageLog)
        self.router = router
        self.metrics = metrics
        self.audit = audit
        self.logger = logger
        self.tls = tls
        self.limits = configuration.limits
        self.helloTimeout = .nanoseconds(configuration.server.helloTimeoutNanos)
        self.storeHealth = StoreHealth(metrics: metrics, logger: logger)
        self.liveBuffers = LiveBufferBudget(limit: configuration.limits.liveBufferBudget)
        self.offLoopReads = OffLoopLogReads(threads: configuration.storage.jetstream?.readThreads
                                                     ?? BrokerConfiguration.JetStream.defaultReadThreads) { running, waiting in
            metrics.storageReadsRunning.record(running)
            metrics.storageReadsWaiting.record(waiting)
        }
        metrics.watchLiveBuffers(liveBuffers)
        self.state = NIOLockedValueBox(State(configuration: configuration, policy: policy))
        admin.configurationLoaded(path: configuration.sourceFile)
    }

    public var policy: Policy { state.withLockedValue { $0.policy } }
    public var configuration: BrokerConfiguration { state.withLockedValue { $0.configuration } }
    public var sessionCount: Int { state.withLockedValue { $0.sessions.count } }
    public var isAccepting: Bool { state.withLockedValue { $0.accepting } }
    /// How many reloads have been applied (see ``State/generation``).
    public var generation: UInt64 { state.withLockedValue { $0.generation } }

    /// Registers a session; false when the connection limit is reached or
    /// the broker is shutting down.
    func register(_ session: SessionControl) -> Bool {
        state.withLockedValue { state in
            guard state.accepting, state.sessions.count < limits.maxConnections else { return false }
            state.sessions[ObjectIdentifier(session)] = session
            return true
        }
    }

    /// Takes a pre-authentication slot for a connection from `address`, or
    /// says which limit refuses it. Held until the TLS handshake completes
    /// or the connection closes; authenticated sessions never hold one, so
    /// they cannot crowd out handshakes, and handshakes never count against
    /// `max_connections`.
    func admitPreAuth(address: String) -> PreAuthRefusal? {
        state.withLockedValue { state in
            guard state.preAuthTotal < limits.maxPreAuthConnections else { return .total }
            let fromAddress = state.preAuth[address, default: 0]
            guard fromAddress < limits.maxPreAuthPerAddress else { return .perAddress }
            state.preAuth[address] = fromAddress + 1
            state.preAuthTotal += 1
            return nil
        }
    }

    func releasePreAuth(address: String) {
        state.withLockedValue { state in
            guard let count = state.preAuth[address] else { return }
            state.preAuth[address] = count > 1 ? count - 1 : nil
            state.preAuthTotal -= 1
        }
    }

    func unregister(_ session: SessionControl) {
        _ = state.withLockedValue { $0.sessions.removeValue(forKey: ObjectIdentifier(session)) }
    }

    /// `holder`: the claiming connection (``SessionIO/connectionID``), nil for an admin operation.
    func claimDurable(owner: DurableOwner, name: String, holder: UInt64? = nil) -> DurableClaims.Outcome {
        state.withLockedValue { $0.durables.claim(DurableClaims.Key(owner: owner, name: name), by: holder) }
    }

    /// A durable subscription ended with `cursor` to commit; pass the token to ``durableDetached(owner:name:detach:)``.
    func detachingDurable(owner: DurableOwner, name: String, cursor: DurableCursor) -> UInt64 {
        state.withLockedValue { $0.durables.detaching(DurableClaims.Key(owner: owner, name: name), cursor: cursor) }
    }

    /// The detach's cursor commit is done.
    func durableDetached(owner: DurableOwner, name: String, detach: UInt64) {
        state.withLockedValue { $0.durables.committed(DurableClaims.Key(owner: owner, name: name), detach: detach) }
    }

    /// How many durables `owner` holds besides `name`: its names attached
    /// to a session or still committing a cursor, and its stored cursors
    /// (at most `limit` + 1 of those are read). The claims are read first: a
    /// claim goes only after its cursor commit is visible, so a durable
    /// moving from one to the other is never missed. Nothing here is a
    /// counter that could drift; after a restart the store alone counts.
    func durablesHeld(owner: DurableOwner, besides name: String, upTo limit: Int) throws(StoreError) -> Int {
        let claimed = state.withLockedValue { $0.durables.names(of: owner) }
        var held = Set(try store.durableNames(owner: owner, limit: limit + 1))
        held.formUnion(claimed)
        held.remove(name)
        return held.count
    }

    /// The durables attached to a session of this broker now.
    func attachedDurables() -> [(owner: DurableOwner, name: String)] {
        state.withLockedValue { $0.durables.attached.map { (owner: $0.owner, name: $0.name) } }
    }

    func releaseDurable(owner: DurableOwner, name: String) {
        state.withLockedValue { $0.durables.release(DurableClaims.Key(owner: owner, name: name)) }
    }

    /// Swaps in a reloaded configuration and policy, and returns the live
    /// sessions so the caller can re-evaluate each. Called after the TLS
    /// context was swapped, so a session registered after this returns was
    /// accepted with the new TLS context or sees a new generation at HELLO.
    func install(configuration: BrokerConfiguration, policy: Policy) -> [SessionControl] {
        let sessions = state.withLockedValue { state in
            state.configuration = configuration
            state.policy = policy
            state.generation &+= 1
            return Array(state.sessions.values)
        }
        admin.configurationLoaded(path: configuration.sourceFile)
        return sessions
    }

    /// The registered sessions now (for the admin listings).
    func liveSessions() -> [SessionControl] {
        state.withLockedValue { Array($0.sessions.values) }
    }

    /// Stops admitting sessions and returns the live ones.
    func stopAccepting() -> [SessionControl] {
        state.withLockedValue { state in
            state.accepting = false
            return Array(state.sessions.values)
        }
    }
}

/// The broker's handle on a live session, callable from any thread: each
/// method hops to the session's event loop.
protocol SessionControl: AnyObject, Sendable {
    /// Re-evaluates the session after a reload, under the policy and TLS
    /// context installed now: disconnect if the peer's certificate no longer
    /// verifies, end subscriptions no longer allowed.
    func catchUpWithReload()
    /// Sends ERR with `code` and closes.
    func terminate(code: RelayErrorCode, message: String)
    /// Drains in-flight publishes, then closes with `server_shutting_down`.
    func shutdown() -> EventLoopFuture<Void>
}
