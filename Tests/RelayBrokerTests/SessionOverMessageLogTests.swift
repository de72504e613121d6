import NIOCore
import RelayCore
import RelayStore
import RelayWire
import Testing
@testable import RelayBroker

/// The session state machine over a real ``MessageLog`` (the in-memory one):
/// the seam's second user. Sequences, dedup, replays and durable cursors
/// come from the log, not from a script, so these fail if the machine and
/// the log disagree on what an append, a start position or a cursor means.
/// One session over the shared log: its machine and its environment.
final class LogSession {
    var machine: SessionStateMachine
    let env: LogBackedSessionEnvironment

    init(machine: SessionStateMachine, env: LogBackedSessionEnvironment) {
        self.machine = machine
        self.env = env
    }

    var lines: [String] { env.lines }
    var replayed: [UInt64] { env.replayed.map(\.sequence) }

    /// Publishes `topics` (payload "p<id>") as one read batch, ids from
    /// `firstID`, and settles; each must be answered with a PUBACK.
    func publish(_ topics: [String], firstID: UInt64 = 1, headers: HeaderBlock = .empty) throws {
        for (offset, topic) in topics.enumerated() {
            let id = firstID + UInt64(offset)
            let request = PublishRequest(publishID: id, topic: try Topic(topic), headers: headers,
                                         payload: ByteBuffer(string: "p\(id)"))
            machine.publish(id, .success(request), env)
        }
        machine.readBatchEnded(env)
        env.settle(&machine)
        let ids = (0..<UInt64(topics.count)).map { firstID + $0 }
        #expect(lines.suffix(ids.count).map { $0.split(separator: " ").prefix(2).joined(separator: " ") }
                    == ids.map { "puback \($0)" })
    }

    func subscribe(_ id: UInt32, _ request: Result<SubscribeRequest, OperationError>) {
        machine.subscribe(id, request, env)
        env.settle(&machine)
    }
}

@Suite struct SessionOverMessageLogTests {
    typealias Fixture = SessionFixture

    let log = InMemoryMessageLog()

    /// A session past HELLO whose store is `log`, with its set-up forgotten.
    func session(limits: SessionLimits = Fixture.limits, opening: SessionOpening = Fixture.opening) throws -> LogSession {
        let env = LogBackedSessionEnvironment(recording: try Fixture.environment(), log: log)
        var machine = Fixture.machine(limits: limits)
        machine.handshakeCompleted(Fixture.handshake())
        machine.open(opening, env)
        env.recording.clear()
        return LogSession(machine: machine, env: env)
    }

    var owner: DurableOwner {
        get throws { try #require(IdentityScope.durableOwner(Fixture.identity())) }
    }

    @Test func pubacksCarryTheSequencesTheLogAssigned() throws {
        let publisher = try session()
        // Two appends answered together: each PUBACK pairs with its own receipt.
        for id: UInt64 in [10, 11] { publisher.machine.publish(id, Fixture.publish(id, payload: "p\(id)"), publisher.env) }
        publisher.machine.readBatchEnded(publisher.env)
        publisher.machine.publish(12, Fixture.publish(12, payload: "p12"), publisher.env)
        publisher.machine.readBatchEnded(publisher.env)
        publisher.env.settle(&publisher.machine)

        #expect(publisher.lines == ["append 10,11", "append 12", "puback 10 seq 1", "puback 11 seq 2", "puback 12 seq 3"])
        #expect(try log.lastSequence() == 3)
        let stored = try log.read(from: 1, filter: TopicFilter("t.>"), maxMessages: 10, maxBytes: 1 << 20, maxScan: 100)
        #expect(stored.messages.map { String(buffer: $0.payload) } == ["p10", "p11", "p12"])
        #expect(publisher.machine.readsPaused == false)
    }

    @Test func aRetriedPublishIsAnsweredWithTheFirstSequence() throws {
        let publisher = try session()
        try publisher.publish(["t.a"], firstID: 7)
        try publisher.publish(["t.b"], firstID: 8)
        publisher.env.recording.clear()
        // The same publish id again, in this session and from a reconnect with the same producer session.
        try publisher.publish(["t.a"], firstID: 7)
        let reconnected = try session()
        try reconnected.publish(["t.a"], firstID: 7)
        #expect(publisher.lines == ["append 7", "puback 7 seq 1 duplicate"])
        #expect(reconnected.lines == ["append 7", "puback 7 seq 1 duplicate"])
        #expect(try log.lastSequence() == 2)

        // Another producer session's id 7 is a new message.
        var other = Fixture.opening
        other.producerSession = ProducerSessionID(high: 9, low: 9)
        let fresh = try session(opening: other)
        try fresh.publish(["t.a"], firstID: 7)
        #expect(fresh.lines == ["append 7", "puback 7 seq 3"])
    }

    @Test func earliestReplaysTheStoredMessagesWithStampAndHeaders() throws {
        let headers = try Headers([HeaderField(key: "trace", value: "abc"), HeaderField(key: "trace", value: "def")])
        let block = HeaderBlock(count: headers.count, encoded: headers.encoded)
        let publisher = try session()
        try publisher.publish(["t.a", "t.b", "t.a"], headers: block)

        let subscriber = try session()
        subscriber.subscribe(1, Fixture.subscribe("t.a", start: .earliest))

        #expect(subscriber.lines == ["route 1 t.a", "suback 1 first 1", "pump", "msg 1 1 replayed", "msg 1 3 replayed"])
        let stamp = PublisherStamp(principal: try #require(publisher.machine.session).principal,
                                   fingerprint: Fixture.identity().fingerprintSHA256)
        #expect(subscriber.replayed == [1, 3])
        #expect(subscriber.env.replayed.map { String(buffer: $0.payload) } == ["p1", "p3"])
        #expect(subscriber.env.replayed.allSatisfy { $0.publisher == stamp && $0.headers == block })
    }

    @Test func aCumulativeDurableCursorIsCommittedAndResumedAfter() throws {
        try session().publish(["t.a", "t.a", "t.a"])

        let first = try session()
        first.subscribe(1, Fixture.subscribe(start: .earliest, durable: "d", ackMode: .cumulative))
        #expect(first.replayed == [1, 2, 3])
        #expect(try log.cursor(owner: owner, name: "d") == nil)  // sent is not acknowledged

        first.machine.acknowledge(1, through: 2, first.env)
        first.machine.readBatchEnded(first.env)
        #expect(try log.cursor(owner: owner, name: "d") == 2)
        first.machine.tearDown(first.env)
        #expect(first.lines.suffix(2) == ["unroute 1", "detach d 2"])
        #expect(first.env.claimed.isEmpty)
        #expect(first.env.cursorFailures.isEmpty)

        // A new session resumes after the committed cursor, whatever start it asks for.
        let second = try session()
        second.subscribe(1, Fixture.subscribe(start: .earliest, durable: "d", ackMode: .cumulative))
        #expect(second.lines.contains("suback 1 first 3"))
        #expect(second.replayed == [3])
    }

    @Test func ackModeNoneAdvancesTheDurableCursorAsMessagesAreSent() throws {
        let publisher = try session()
        try publisher.publish(["t.a", "t.b", "t.a"])

        let first = try session()
        first.subscribe(1, Fixture.subscribe("t.a", start: .earliest, durable: "n", credit: 1))
        #expect(first.replayed == [1])
        #expect(try log.cursor(owner: owner, name: "n") == 1)

        first.machine.grantCredit(1, 5, first.env)
        first.env.settle(&first.machine)
        #expect(first.replayed == [1, 3])
        #expect(try log.cursor(owner: owner, name: "n") == 3)
        first.machine.tearDown(first.env)

        try publisher.publish(["t.a"], firstID: 4)
        let second = try session()
        second.subscribe(1, Fixture.subscribe("t.a", start: .earliest, durable: "n"))
        #expect(second.replayed == [4])
        #expect(try log.cursor(owner: owner, name: "n") == 4)
    }

    @Test func lastNStartsAtTheNthNewestMatch() throws {
        let publisher = try session()
        try publisher.publish(["t.a", "t.b", "t.a"])
        try publisher.publish(["t.a", "t.b", "t.a"], firstID: 4)  // t.a: 1, 3, 4, 6

        let subscriber = try session()
        subscriber.subscribe(1, Fixture.subscribe("t.a", start: .last(2)))
        subscriber.subscribe(2, Fixture.subscribe("t.>", start: .last(3)))
        subscriber.subscribe(3, Fixture.subscribe("t.a", start: .last(10)))

        #expect(subscriber.lines.filter { $0.hasPrefix("suback") } == ["suback 1 first 4", "suback 2 first 4", "suback 3 first 1"])
        let delivered = Dictionary(grouping: subscriber.lines.filter { $0.hasPrefix("msg") }) { $0.split(separator: " ")[1] }
        #expect(delivered["1"] == ["msg 1 4 replayed", "msg 1 6 replayed"])
        #expect(delivered["2"] == ["msg 2 4 replayed", "msg 2 5 replayed", "msg 2 6 replayed"])
        #expect(delivered["3"]?.count == 4)
    }
}
