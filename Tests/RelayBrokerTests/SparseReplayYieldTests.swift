import NIOCore
import RelayCore
import RelayStore
import Testing
@testable import RelayBroker

/// A store read examines at most 65,536 records (`maxScan`), so that a
/// wildcard replay over a log where little matches does not hold the event
/// loop for the whole log (SessionIO). The delivery turn (`pump`) read again
/// as long as the replay moved forward, whether or not it had sent anything:
/// one `SUB` of a filter matching nothing, from earliest, walked the whole
/// log in one turn, and every other connection on that event loop waited for
/// it (109-129 ms on 3.5 M records, docs/testing.md "Cheap requests,
/// expensive broker"). A read that sends nothing now ends the turn, and the
/// next turn is asked for after the event loop has served its sockets: a
/// task queued with `execute` would run before them.
@Suite("delivery turns: a sparse replay yields between store reads")
struct SparseReplayYieldTests {
    static let records = 140_000  // more than two scan bounds

    /// A session over an in-memory log of `records` messages on `t.a.x`,
    /// subscribed to `filter` from earliest with `credit`; the SUB's pump
    /// request is taken.
    private static func replaying(_ records: Int, filter: String, credit: UInt32) throws
        -> (machine: SessionStateMachine, env: LogBackedSessionEnvironment) {
        let log = InMemoryMessageLog()
        let publisher = PublisherStamp(principal: "p", fingerprint: CertificateFingerprint(w0: 1, w1: 1, w2: 1, w3: 1))
        let topic = try Topic("t.a.x")  // the fixture policy grants t.>
        log.append((0..<records).map { _ in NewMessage(topic: topic, payload: ByteBuffer(string: "x"), publisher: publisher) }) { _ in }
        #expect(try log.lastSequence() == UInt64(records))
        let env = LogBackedSessionEnvironment(recording: try SessionFixture.environment(), log: log)
        var machine = SessionFixture.machine(limits: SessionFixture.limits)
        machine.handshakeCompleted(SessionFixture.handshake())
        machine.open(SessionFixture.opening, env)
        machine.subscribe(1, SessionFixture.subscribe(filter, start: .earliest, credit: credit), env)
        #expect(env.takePumpRequest())
        return (machine, env)
    }

    @Test("a wildcard replay of 140,000 records matching nothing: one store read per turn, the next turn after I/O")
    func sparseReplayYieldsBetweenReads() throws {
        let replay = try Self.replaying(Self.records, filter: "t.b.*", credit: 10)
        var machine = replay.machine
        let env = replay.env
        // One delivery turn, as the event loop runs it.
        machine.pump(env)
        #expect(env.reads == 1, "one turn read \(env.reads) times, examining up to \(env.reads * 65_536) records")
        let yielded = env.takePumpRequest()
        #expect(yielded, "the turn ended without asking for the next")
        #expect(env.lastPumpYields, "the next turn was asked for before the event loop's sockets")
        // The next turns finish the replay, and nothing matched.
        if yielded {
            repeat { machine.pump(env) } while env.takePumpRequest()
        }
        #expect(env.reads == 3)
        #expect(env.replayed.isEmpty)
    }

    @Test("a dense replay still ends its turn at the delivery budget with an ordinary pump, not a yield")
    func denseReplayKeepsItsTurn() throws {
        let replay = try Self.replaying(20_000, filter: "t.a.*", credit: 20_000)
        var machine = replay.machine
        let env = replay.env
        let written = machine.pump(env)
        #expect(written == SessionFixture.limits.deliveryBudget, "one turn wrote \(written)")
        #expect(env.takePumpRequest())
        #expect(!env.lastPumpYields)
    }
}
