import RelayCore
import RelayPolicy
import RelayStore
import RelayTLS
import RelayWire
import Testing
@testable import RelayBroker

/// The session's states and the transitions between them (Protocol/relay-v1.md
/// §4.1, §4.13, §4.14), driven without a process or a socket.
@Suite("Session state machine: lifecycle")
struct SessionStateMachineLifecycleTests {
    typealias F = SessionFixture

    @Test("the TLS handshake moves the session to awaiting HELLO")
    func handshakeAwaitsHello() throws {
        var machine = F.machine()
        machine.handshakeCompleted(F.handshake())
        guard case .awaitingHello(let handshake) = machine.state else { Issue.record("state \(machine.state)"); return }
        #expect(handshake.peer == F.identity())
        #expect(machine.takesRequests)
    }

    @Test("a request before the handshake completed is protocol_violation")
    func requestBeforeHandshake() throws {
        let env = try F.environment()
        var machine = F.machine()
        machine.requestBeforeOpening("PUB", env)
        #expect(env.log == ["close protocol_violation"])
        #expect(machine.isClosed)
    }

    @Test("a first frame other than HELLO is hello_required")
    func firstFrameNotHello() throws {
        let env = try F.environment()
        var machine = F.machine()
        machine.handshakeCompleted(F.handshake())
        machine.publish(1, F.publish(1), env)
        #expect(env.log == ["close hello_required"])
        #expect(machine.isClosed && machine.closeReason == "hello_required")
    }

    @Test("an accepted HELLO opens the session: WELCOME with the principal, audited")
    func helloAccepted() throws {
        let env = try F.environment()
        var machine = F.machine()
        machine.handshakeCompleted(F.handshake())
        machine.open(F.opening, env)
        #expect(env.log == ["welcome v1 CN=svc limit 4096"])
        #expect(env.audits == ["connection_accepted"])
        let session = try #require(machine.session)
        #expect(session.principal == "CN=svc")
        #expect(session.peerFrameLimit == 4096)
        #expect(session.producerSession == F.opening.producerSession)
        #expect(session.durableOwner != nil)
    }

    @Test("a second HELLO is protocol_violation")
    func secondHello() throws {
        let env = try F.environment()
        var machine = F.active(env)
        machine.open(F.opening, env)
        #expect(env.log == ["close protocol_violation"])
        #expect(machine.isClosed)
    }

    @Test("an identity the policy grants nothing is identity_refused, audited as connection_refused")
    func identityRefused() throws {
        let env = try F.environment(RuleDefinition(name: "other", match: ["subject.CN": ["someone-else"]], publish: ["t.>"]))
        var machine = F.machine()
        machine.handshakeCompleted(F.handshake())
        machine.open(F.opening, env)
        #expect(env.log == ["close identity_refused"])
        #expect(env.audits == ["connection_refused"])
        #expect(machine.session == nil)
    }

    @Test("a chain a reload revoked between handshake and HELLO is certificate_revoked")
    func revokedBeforeHello() throws {
        let env = try F.environment()
        env.reverifyError = .certificateRejected(code: 23, reason: "certificate revoked")
        var machine = F.machine()
        machine.handshakeCompleted(F.handshake())
        machine.open(F.opening, env)
        #expect(env.log == ["close certificate_revoked"])
        #expect(env.audits == ["connection_refused"])
    }

    @Test("no HELLO in time is hello_timeout; the timer is harmless once active")
    func helloTimeout() throws {
        let env = try F.environment()
        var waiting = F.machine()
        waiting.handshakeCompleted(F.handshake())
        waiting.helloTimedOut(after: 5_000, env)
        #expect(env.log == ["close hello_timeout"])
        env.clear()
        var active = F.active(env)
        active.helloTimedOut(after: 5_000, env)
        #expect(env.log.isEmpty)
        #expect(active.session != nil)
    }

    @Test("a session is closed once: later terminations and requests do nothing")
    func closedOnce() throws {
        let env = try F.environment()
        var machine = F.active(env)
        machine.terminate(.writeStalled, "stalled", env)
        machine.terminate(.internalError, "again", env)
        machine.publish(1, F.publish(1), env)
        machine.subscribe(1, F.subscribe(), env)
        #expect(env.log == ["close write_stalled"])
        #expect(machine.closeReason == "write_stalled")
        #expect(!machine.takesRequests)
    }

    @Test("BYE with nothing in flight is answered with BYE at once")
    func byeIdle() throws {
        let env = try F.environment()
        var machine = F.active(env)
        machine.goodbye(env)
        #expect(env.log == ["bye"])
        #expect(machine.isClosed && machine.closeReason == "bye")
    }

    @Test("BYE drains: the PUBs read before it are stored and answered, then BYE")
    func byeDrains() throws {
        let env = try F.environment()
        var machine = F.active(env)
        machine.publish(1, F.publish(1), env)
        machine.publish(2, F.publish(2), env)
        machine.goodbye(env)
        #expect(env.log == ["append 1,2"])
        guard case .draining(_, .goodbye) = machine.state else { Issue.record("state \(machine.state)"); return }
        #expect(!machine.takesRequests && machine.readsPaused)
        machine.commitCompleted(ids: [1, 2], results: [F.receipt(7), F.receipt(8)], env)
        #expect(env.log == ["append 1,2", "puback 1 seq 7", "puback 2 seq 8", "bye"])
        #expect(machine.isClosed)
    }

    @Test("shutdown drains the publishes in flight, then server_shutting_down")
    func shutdownDrains() throws {
        let env = try F.environment()
        var machine = F.active(env)
        machine.publish(1, F.publish(1), env)
        machine.readBatchEnded(env)
        machine.shutdown(env)
        #expect(env.log == ["append 1"])
        machine.commitCompleted(ids: [1], results: [F.receipt(3)], env)
        #expect(env.log == ["append 1", "puback 1 seq 3", "close server_shutting_down"])
    }

    @Test("shutdown waits for the ADMINs in flight, ends a backup at once (incomplete), then server_shutting_down")
    func shutdownAnswersAdmins() throws {
        let env = try F.environment()
        var machine = F.active(env)
        machine.adminStarted(requestID: 7)
        machine.adminStarted(requestID: 9, backup: true)
        machine.shutdown(env)
        // The backup's outcome now; its stream's later replies are dropped.
        #expect(env.log == ["adminreply 9 server_shutting_down"])
        #expect(!machine.adminMayReply(requestID: 9, last: false) && !machine.adminMayReply(requestID: 9, last: true))
        #expect(machine.adminMayReply(requestID: 9, last: true), "forgotten after its last reply")
        // The purge's ADMINREPLY is written, then the session ends.
        #expect(machine.adminMayReply(requestID: 7, last: true))
        machine.adminAnswered(requestID: 7, env)
        #expect(env.log == ["adminreply 9 server_shutting_down", "close server_shutting_down"])
    }

    /// An active session with ADMIN 7 running, told to shut down.
    private static func shuttingDownWithAdmin(_ env: RecordingEnvironment) -> SessionStateMachine {
        var machine = F.active(env)
        machine.adminStarted(requestID: 7)
        machine.shutdown(env)
        return machine
    }

    @Test("at the end of the shutdown's grace a session still waiting for an ADMIN waits one grace more for its answer (the broker asks it to stop), then ends, saying so")
    func shutdownGraceEnds() throws {
        let env = try F.environment()
        var machine = Self.shuttingDownWithAdmin(env)
        #expect(env.log.isEmpty && !machine.isClosed)
        let waitsOn = machine.shutdownGraceEnded(afterNanos: 10_000_000_000, env)
        #expect(waitsOn, "waits on for the ADMIN it asked to stop")
        #expect(env.log.isEmpty && !machine.isClosed)
        let again = machine.shutdownGraceEnded(afterNanos: 10_000_000_000, env)
        #expect(again == false)
        #expect(env.log == ["close server_shutting_down"])
        #expect(machine.isClosed)
    }

    @Test("an ADMIN asked to stop that answers within the second wait: its reply, then server_shutting_down; PUBs alone do not extend the grace")
    func stoppedAdminAnswers() throws {
        let env = try F.environment()
        var machine = Self.shuttingDownWithAdmin(env)
        let waitsOn = machine.shutdownGraceEnded(afterNanos: 1_000_000_000, env)
        #expect(waitsOn)
        machine.adminAnswered(requestID: 7, env)
        #expect(env.log == ["close server_shutting_down"] && machine.isClosed)

        let pubs = try F.environment()
        var publisher = F.active(pubs)
        publisher.publish(1, F.publish(1), pubs)
        publisher.readBatchEnded(pubs)
        publisher.shutdown(pubs)
        let pubsWaitOn = publisher.shutdownGraceEnded(afterNanos: 1_000_000_000, pubs)
        #expect(pubsWaitOn == false)
        #expect(pubs.log == ["append 1", "close server_shutting_down"] && publisher.isClosed)
    }

    @Test("shutdown before HELLO closes at once with server_shutting_down")
    func shutdownBeforeHello() throws {
        let env = try F.environment()
        var machine = F.machine()
        machine.handshakeCompleted(F.handshake())
        machine.shutdown(env)
        #expect(env.log == ["close server_shutting_down"])
    }

    @Test("an expired client certificate ends the session with certificate_expired, audited")
    func certificateExpired() throws {
        let env = try F.environment()
        var machine = F.active(env)
        machine.certificateExpired(at: "2026-12-03T00:00:00Z", env)
        #expect(env.log == ["close certificate_expired"])
        #expect(env.audits == ["session_ended"])
    }

    @Test("a reload that revokes the certificate ends the session with certificate_revoked")
    func reloadRevokes() throws {
        let env = try F.environment()
        var machine = F.active(env)
        machine.reevaluate(verification: .certificateRejected(code: 23, reason: "revoked"), policy: env.policy, env)
        #expect(env.log == ["close certificate_revoked"])
        #expect(env.audits == ["session_ended"])
    }

    @Test("a reload whose policy grants nothing ends the session with identity_refused")
    func reloadRefuses() throws {
        let env = try F.environment()
        var machine = F.active(env)
        let none = try Policy(definitions: [RuleDefinition(name: "x", match: ["subject.CN": ["other"]], publish: ["t.>"])])
        machine.reevaluate(verification: nil, policy: none, env)
        #expect(env.log == ["close identity_refused"])
    }

    @Test("a reload that withdraws a filter ends that subscription with subscription_revoked; the others stay")
    func reloadRevokesSubscription() throws {
        let env = try F.environment(RuleDefinition(name: "all", publish: ["t.>"], subscribe: ["t.a", "t.b"]))
        var machine = F.active(env)
        machine.subscribe(1, F.subscribe("t.a"), env)
        machine.subscribe(2, F.subscribe("t.b"), env)
        env.clear()
        let narrower = try Policy(definitions: [RuleDefinition(name: "all", publish: ["t.c"], subscribe: ["t.b"])])
        machine.reevaluate(verification: nil, policy: narrower, env)
        #expect(env.log == ["unroute 1", "err 1 subscription_revoked"])
        #expect(env.audits == ["subscription_ended"])
        #expect(machine.session?.subscriptions.count == 1)
        env.clear()
        machine.publish(5, F.publish(5, topic: "t.a"), env)  // the new permissions apply to the next PUB
        #expect(env.log == ["puberr 5 not_authorized"])
    }

    @Test("an unwritable peer pauses reading; writable again resumes it")
    func writability() throws {
        let env = try F.environment()
        var machine = F.active(env)
        #expect(!machine.readsPaused)
        machine.writabilityChanged(isWritable: false)
        #expect(machine.readsPaused)
        machine.writabilityChanged(isWritable: true)
        #expect(!machine.readsPaused)
    }

    @Test("tear-down unroutes every subscription and detaches durables after their last cursor position")
    func tearDown() throws {
        let env = try F.environment()
        var machine = F.active(env)
        machine.subscribe(1, F.subscribe(), env)
        machine.subscribe(2, F.subscribe(durable: "d", ackMode: .cumulative), env)
        machine.deliverLive([F.live(1, subscription: 2), F.live(2, subscription: 2)], env)
        machine.acknowledge(2, through: 2, env)
        env.clear()
        machine.tearDown(env)
        #expect(env.log == ["unroute 1", "unroute 2", "detach d 2"])
        #expect(machine.isClosed)
        machine.tearDown(env)  // idempotent
        #expect(env.log.count == 3)
    }
}
