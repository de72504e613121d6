import Foundation
import Logging
import RelayCore
import RelayPolicy
import RelayStore
import RelayTLS
import RelayWire

/// The session's logic, free of NIO and of any one wire protocol: events go
/// in (a request decoded, a commit completed, a timer, writability, a
/// reload), and decisions come out as ``SessionAction``s handed to the
/// ``SessionEnvironment``, in order, as they are made (no array of actions
/// per frame on the hot path). ``SessionHandler`` is the NIO and Relay v1
/// adapter around it; the unit tests drive it with a recording environment.
struct SessionStateMachine {
    private(set) var state = SessionState.awaitingHandshake
    let limits: SessionLimits
    let metrics: BrokerMetrics
    let logger: Logger
    /// Every connection's live buffers together (`[limits] live_buffer_budget`); nil: unbounded (unit tests).
    let liveBuffers: LiveBufferBudget?
    /// The first reason the session ended (nil: the peer closed it cleanly).
    private(set) var closeReason: String?
    /// The peer is not taking its output: read no more requests.
    private(set) var writeBlocked = false

    init(limits: SessionLimits, metrics: BrokerMetrics, logger: Logger, liveBuffers: LiveBufferBudget? = nil) {
        self.limits = limits
        self.metrics = metrics
        self.logger = logger
        self.liveBuffers = liveBuffers
    }

    /// The session past HELLO, while it is active or draining.
    var session: ActiveSession? {
        switch state {
        case .active(let session), .draining(let session, _): return session
        case .awaitingHandshake, .awaitingHello, .closed: return nil
        }
    }

    /// The session past HELLO in any state, closed included (until tear-down).
    var establishedSession: ActiveSession? {
        if case .closed(let session) = state { return session }
        return session
    }

    var isClosed: Bool { if case .closed = state { return true } else { return false } }

    /// Reading stops while the publish window is full, while the peer's
    /// unread output is above the water mark, while a SUB's look-ups are
    /// made off the loop, and for good once draining.
    var readsPaused: Bool {
        switch state {
        case .active(let session): return writeBlocked || session.window.paused || holdsRequests
        case .draining: return true
        case .awaitingHandshake, .awaitingHello, .closed: return writeBlocked
        }
    }

    /// Requests are taken only before HELLO and while active: after BYE
    /// the client sends nothing more, and after ERR nothing is read.
    var takesRequests: Bool {
        switch state {
        case .awaitingHandshake, .awaitingHello, .active: return true
        case .draining, .closed: return false
        }
    }

    /// A SUB whose look-ups are being made off the loop (a log whose reads
    /// wait on a service). Until they are answered the session reads no
    /// other request, so there is at most one. On the machine, not the
    /// session: the read loop asks ``holdsRequests`` once per frame, PUBs
    /// included, and this is a plain field of it.
    var pendingSubscription: PendingSubscription?

    /// A SUB's look-ups are being made off the loop: the requests read
    /// after it wait, unread, until its SUBACK (``startLookedUp(_:_:_:)``).
    var holdsRequests: Bool { pendingSubscription != nil }

    // MARK: Opening

    mutating func handshakeCompleted(_ handshake: TLSHandshakeCompleted) {
        guard case .awaitingHandshake = state else { return }
        state = .awaitingHello(handshake)
    }

    /// A request before the session opened, other than the opening itself.
    mutating func requestBeforeOpening<Env: SessionEnvironment>(_ name: String, _ env: Env) {
        switch state {
        case .awaitingHandshake:
            terminate(.protocolViolation, "\(name) before the TLS handshake completed", env)
        case .awaitingHello:
            terminate(.helloRequired, "the first frame must be HELLO, got \(name)", env)
        case .active, .draining, .closed:
            break
        }
    }

    /// HELLO (or its equivalent): re-verify the chain if a reload raced the
    /// handshake, evaluate the policy, and open the session.
    mutating func open<Env: SessionEnvironment>(_ opening: SessionOpening, _ env: Env) {
        let handshake: TLSHandshakeCompleted
        switch state {
        case .awaitingHello(let h): handshake = h
        case .awaitingHandshake: return terminate(.protocolViolation, "HELLO before the TLS handshake completed", env)
        case .active, .draining: return terminate(.protocolViolation, "HELLO was already received", env)
        case .closed: return
        }
        let identity = handshake.peer
        if let error = env.reverifyIfReloaded(handshake.peerChain) {
            let failure = CertificateFailure(error)
            env.audit("connection_refused", [
                "subject": identity.subject.rfc4514, "serial": identity.serialNumber,
                "fingerprint": identity.fingerprintSHA256.hex, "cause": failure.code.name,
                "reason": "certificate no longer verifies after a reload: \(error)"])
            return terminate(failure.code, failure.message, env)
        }
        let permissions = env.permissions(for: identity)
        for drop in permissions.droppedTemplates {
            env.audit("template_dropped", ["subject": identity.subject.rfc4514, "serial": identity.serialNumber,
                                           "detail": "\(drop)"])
        }
        if permissions.isRefused {
            // The client learns nothing about the configuration; the log and audit trail say why.
            logger.notice("identity refused", metadata: ["subject": "\(identity.subject.rfc4514)",
                                                         "serial": "\(identity.serialNumber)",
                                                         "reason": "\(permissions.refusal ?? "")"])
            env.audit("connection_refused", ["subject": identity.subject.rfc4514, "serial": identity.serialNumber,
                                             "fingerprint": identity.fingerprintSHA256.hex,
                                             "reason": permissions.refusal ?? "no rule grants anything"])
            return terminate(.identityRefused, "this certificate is not granted any permission by the broker's policy", env)
        }
        if let oversized = Self.welcomeNameProblem(principal: permissions.principal, identity: identity) {
            logger.notice("identity refused", metadata: ["serial": "\(identity.serialNumber)", "reason": "\(oversized)"])
            env.audit("connection_refused", ["subject": identity.subject.rfc4514, "serial": identity.serialNumber,
                                             "fingerprint": identity.fingerprintSHA256.hex, "reason": oversized])
            return terminate(.identityRefused, oversized, env)
        }
        let session = ActiveSession(identity: identity, peerChain: handshake.peerChain, permissions: permissions,
                                    producerSession: opening.producerSession, peerFrameLimit: opening.peerFrameLimit,
                                    liveBuffers: liveBuffers, fallbacks: metrics.slowSubscriberFallbacks)
        state = .active(session)
        env.audit("connection_accepted", ["principal": session.principal, "subject": identity.subject.rfc4514,
                                          "serial": identity.serialNumber, "fingerprint": identity.fingerprintSHA256.hex,
                                          "tls": handshake.protocolVersion])
        env.run(.send(.welcome(version: opening.version, principal: session.principal, identity: identity,
                               peerFrameLimit: opening.peerFrameLimit)))
    }

    /// Why WELCOME cannot carry this identity's names, or nil: its
    /// principal, subject and SPIFFE ID are each a str16 (Protocol/relay-v1.md
    /// §4.2). A certificate can hold a longer name (a 66,000-byte CN fits
    /// OpenSSL's 100 KiB certificate-list limit); the WELCOME then could not
    /// be encoded, and the client was told to announce a larger
    /// max_frame_size, which could never help.
    static func welcomeNameProblem(principal: String, identity: Identity) -> String? {
        for (field, value) in [("principal", principal), ("subject", identity.subject.rfc4514),
                               ("SPIFFE ID", identity.spiffe?.uri ?? "")] where value.utf8.count > Int(UInt16.max) {
            return "this certificate's \(field) is \(value.utf8.count) bytes; WELCOME carries at most 65,535 "
                + "(Protocol/relay-v1.md §4.2): issue the client a certificate with a shorter subject"
        }
        return nil
    }

    mutating func helloTimedOut<Env: SessionEnvironment>(after milliseconds: Int64, _ env: Env) {
        guard case .awaitingHello = state else { return }
        terminate(.helloTimeout, "no HELLO within \(milliseconds) ms of the TLS handshake", env)
    }

    // MARK: Ending

    /// Sends a connection-level error and closes (from any state but closed).
    mutating func terminate<Env: SessionEnvironment>(_ code: RelayErrorCode, _ message: String, _ env: Env) {
        if case .closed = state { return }
        metrics.refusal(code: code.name).increment()
        closeReason = closeReason ?? code.name
        logger.info("closing session", metadata: ["code": "\(code.name)", "reason": "\(message)",
                                                  "principal": "\(session?.principal ?? "")"])
        state = .closed(establishedSession)
        env.run(.close(.error(code, message)))
    }

    /// The connection ended without a goodbye (a TLS or socket error, or the
    /// peer closed it): record why, once.
    mutating func connectionEnded(reason: String?) {
        if let reason { closeReason = closeReason ?? reason }
        state = .closed(establishedSession)
    }

    /// The client's BYE (§4.14): it sends nothing more; the PUBs already
    /// read are answered, then BYE, then close.
    mutating func goodbye<Env: SessionEnvironment>(_ env: Env) {
        guard case .active(let session) = state else { return }
        closeReason = closeReason ?? "bye"
        state = .draining(session, .goodbye)
        readBatchEnded(env)
        finishDrainIfDone(env)
    }

    /// Broker shutdown: read no more, answer the publishes and ADMINs in
    /// flight, then ERR `server_shutting_down`. A backup is not waited for
    /// (a copy can stream for minutes): it ends now with an ADMINREPLY
    /// `server_shutting_down` saying the copy is incomplete.
    mutating func shutdown<Env: SessionEnvironment>(_ env: Env) {
        switch state {
        case .active(let session):
            state = .draining(session, .shutdown)
            for id in session.backupsInFlight.sorted() {
                session.backupsInFlight.remove(id)
                session.backupsEnded.insert(id)
                session.adminInFlight -= 1
                env.run(.send(.adminEnded(requestID: id, .serverShuttingDown,
                                          "the broker is shutting down: the backup stopped before its end and the copy is "
                                              + "incomplete; delete it and take the backup again after the restart")))
            }
            readBatchEnded(env)
            finishDrainIfDone(env)
        case .draining:
            break  // a client's BYE is already being drained; its session ends with BYE
        case .awaitingHandshake, .awaitingHello, .closed:
            terminate(.serverShuttingDown, "the broker is shutting down", env)
        }
    }

    /// An authorized ADMIN was handed to its service (§4.15); `backup`: it is one.
    mutating func adminStarted(requestID: UInt32, backup: Bool = false) {
        guard let session else { return }
        session.adminInFlight += 1
        if backup { session.backupsInFlight.insert(requestID) }
    }

    /// Whether a reply of request `requestID` may be written: not once a
    /// shutdown ended that backup (its outcome was sent). `last`: the
    /// request's final reply, after which the id is forgotten.
    func adminMayReply(requestID: UInt32, last: Bool) -> Bool {
        guard let session = establishedSession, session.backupsEnded.contains(requestID) else { return true }
        if last { session.backupsEnded.remove(requestID) }
        return false
    }

    /// A request's last ADMINREPLY was written: a client's BYE, or a
    /// shutdown, may now be answered.
    mutating func adminAnswered<Env: SessionEnvironment>(requestID: UInt32, _ env: Env) {
        guard let session, session.adminInFlight > 0 else { return }
        session.adminInFlight -= 1
        session.backupsInFlight.remove(requestID)
        finishDrainIfDone(env)
    }

    /// The shutdown's grace (`[limits] shutdown_grace`, `graceNanos`) is
    /// over and the session still waits for answers. With ADMINs running
    /// the first time, the broker asks them to stop (a purge rolls back and
    /// answers `server_shutting_down`): the session waits one grace more for
    /// those answers, and returns true (the caller arms that wait). Else it
    /// ends now, saying how many ADMINs were still running (their outcome
    /// unknown to the caller) and how many PUBs unanswered.
    @discardableResult
    mutating func shutdownGraceEnded<Env: SessionEnvironment>(afterNanos graceNanos: Int64, _ env: Env) -> Bool {
        let grace = graceNanos % 1_000_000_000 == 0 ? "\(graceNanos / 1_000_000_000) s" : "\(graceNanos / 1_000_000) ms"
        guard case .draining(let session, .shutdown) = state else { return false }
        if session.adminInFlight > 0 && !session.adminStopAwaited {
            session.adminStopAwaited = true
            return true
        }
        var unanswered: [String] = []
        if session.adminInFlight > 0 {
            unanswered.append("\(session.adminInFlight) ADMIN request(s) still running, asked to stop after \(grace) "
                + "(whether they completed is unknown: check with relayctl after the restart)")
        }
        if session.window.inFlight > 0 { unanswered.append("\(session.window.inFlight) PUB(s) still unanswered") }
        let waited = session.adminStopAwaited ? "\(grace) and \(grace) more" : grace
        terminate(.serverShuttingDown, "the broker is shutting down; after \(waited) it stopped waiting for "
            + unanswered.joined(separator: " and "), env)
        return false
    }

    mutating func finishDrainIfDone<Env: SessionEnvironment>(_ env: Env) {
        guard case .draining(let session, let reason) = state, session.window.inFlight == 0 else { return }
        // Both a client's BYE and a shutdown wait for the answers of the ADMINs
        // read before: one ran (a purge, say) and its caller must learn the
        // outcome. A shutdown ended its backups already, and waits at most
        // its grace (``shutdownGraceEnded(afterNanos:_:)``).
        if session.adminInFlight > 0 { return }
        switch reason {
        case .goodbye:
            state = .closed(session)
            env.run(.close(.goodbye))
        case .shutdown:
            terminate(.serverShuttingDown, "the broker is shutting down; reconnect after it restarts", env)
        }
    }

    /// A certificate of the client's verified chain has passed its `notAfter`.
    /// `what` names the certificate: "the client certificate", or the CA of its chain that expired first.
    mutating func certificateExpired<Env: SessionEnvironment>(at expiredAt: String, what: String = "the client certificate",
                                                              _ env: Env) {
        guard let session else { return }
        let identity = session.identity
        env.audit("session_ended", [
            "principal": session.principal, "subject": identity.subject.rfc4514, "serial": identity.serialNumber,
            "fingerprint": identity.fingerprintSHA256.hex, "cause": RelayErrorCode.certificateExpired.name,
            "trigger": "expiry", "not_after": expiredAt, "reason": "\(what) expired"])
        terminate(.certificateExpired, "\(what) expired at \(expiredAt); renew it and reconnect", env)
    }

    /// After a reload: `verification` is the stored chain checked against
    /// the new CA/CRL set (nil: still verifies), `policy` the new policy. Ends the session or the subscriptions no longer allowed.
    mutating func reevaluate<Env: SessionEnvironment>(verification: TLSError?, policy: Policy, _ env: Env) {
        guard case .active(let session) = state else { return }
        let identity = session.identity
        if let error = verification {
            let failure = CertificateFailure(error)
            env.audit("session_ended", [
                "principal": session.principal, "subject": identity.subject.rfc4514, "serial": identity.serialNumber,
                "fingerprint": identity.fingerprintSHA256.hex, "cause": failure.code.name, "trigger": "reload",
                "reason": "certificate no longer verifies after reload: \(error)"])
            return terminate(failure.code, failure.message, env)
        }
        let permissions = policy.permissions(for: identity)
        if permissions.isRefused {
            env.audit("session_ended", [
                "principal": session.principal, "subject": identity.subject.rfc4514, "serial": identity.serialNumber,
                "fingerprint": identity.fingerprintSHA256.hex, "cause": RelayErrorCode.identityRefused.name,
                "trigger": "reload", "reason": permissions.refusal ?? "policy no longer grants anything"])
            return terminate(.identityRefused, "this certificate is no longer granted any permission by the broker's policy", env)
        }
        session.replacePermissions(permissions)
        for id in session.subscriptions.ids.sorted() {
            guard let filter = session.subscriptions[id]?.delivery.filter else { continue }
            let decision = permissions.canSubscribe(filter)
            guard !decision.isAllowed else { continue }
            env.audit("subscription_ended", [
                "principal": session.principal, "serial": identity.serialNumber, "subscription": Int(id),
                "filter": filter.value, "rule": decision.rule ?? "(no rule allows it)",
                "cause": RelayErrorCode.subscriptionRevoked.name, "trigger": "reload",
                "reason": "no longer allowed after reload"])
            endSubscription(id, in: session, code: .subscriptionRevoked,
                            message: "the policy no longer allows subscribing to \(filter)", env)
        }
    }

    /// The peer's output backlog crossed a water mark: no request is read
    /// while it is above (each could add an answer to the backlog).
    mutating func writabilityChanged(isWritable: Bool) {
        writeBlocked = !isWritable
    }

    /// Releases everything the session holds in shared structures: routes,
    /// durable names (after committing their last cursor position). Idempotent.
    mutating func tearDown<Env: SessionEnvironment>(_ env: Env) {
        let session = establishedSession
        state = .closed(nil)
        guard let session else { return }
        // A SUB still waiting for its look-ups holds its durable name's claim;
        // their late answer finds no pending SUB and does nothing.
        if let pending = pendingSubscription {
            pendingSubscription = nil
            if let owner = pending.owner { env.run(.releaseDurable(owner: owner, name: pending.request.durableName)) }
        }
        for entry in session.subscriptions.removeAll() {
            release(entry, owner: session.durableOwner, env)
        }
    }

    /// Stops routing to a removed subscription and lets go of its durable name.
    func release<Env: SessionEnvironment>(_ entry: SubscriptionEntry, owner: DurableOwner?, commitCursor: Bool = true, _ env: Env) {
        env.run(.unroute(entry.delivery.filter, subscriptionID: entry.delivery.id))
        metrics.subscriptions.decrement()
        if let name = entry.durableName, let owner {
            env.run(.detachDurable(owner: owner, name: name, lastAck: commitCursor ? entry.highestAck : nil,
                                   filter: entry.delivery.filter.value))
        }
    }
}

/// Why a stored peer chain stopped verifying, as the connection-level code
/// the client is told: revoked (X509 error 23), expired (10), or anything
/// else (CA removed, CRL missing or stale) as `identity_refused`.
struct CertificateFailure {
    var code: RelayErrorCode
    var message: String

    init(_ error: TLSError) {
        let x509: Int
        if case .certificateRejected(let code, _) = error { x509 = code } else { x509 = -1 }
        switch x509 {
        case 23:
            code = .certificateRevoked
            message = "the client certificate was revoked; ask the operator for a new one"
        case 10:
            code = .certificateExpired
            message = "the client certificate has expired; renew it and reconnect"
        default:
            code = .identityRefused
            message = "the client certificate no longer verifies against the broker's CAs and CRLs; ask the operator"
        }
    }
}
