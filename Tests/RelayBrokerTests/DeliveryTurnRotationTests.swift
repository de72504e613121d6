import NIOCore
import RelayCore
import RelayStore
import Testing
@testable import RelayBroker

/// The delivery turn (`pump`) visits only the subscriptions with work, and
/// takes them in turn. It walked every subscription of the connection from
/// the first on each turn: idle ones cost +481 instructions each per routed
/// batch (docs/testing.md, "Cheap requests, expensive broker"), and a
/// subscription whose replay scanned a sparse log ended every turn before
/// the connection's later subscriptions got theirs (the wave-18 yield only
/// let *other* connections in). A subscription the turn leaves with work
/// now goes to the back of the table's queue.
@Suite("delivery turns: only subscriptions with work, taken in turn")
struct DeliveryTurnRotationTests {
    typealias F = SessionFixture

    @Test("one live message to a connection with 1,000 idle subscriptions: the turn does not visit the idle ones")
    func idleSubscriptionsAreNotVisited() throws {
        let env = try F.environment()
        let idle = 1_000
        var machine = F.active(limits: SessionLimits(maxInFlightPublishes: 4, maxSubscriptions: idle + 1, subscriptionBuffer: 100),
                               env)
        machine.subscribe(1, F.subscribe("t.a"), env)
        for i in 0..<idle { machine.subscribe(UInt32(2 + i), F.subscribe("t.idle.\(i)"), env) }
        machine.pump(env)  // the SUBs' turn
        env.clear()
        let before = env.canDeliverChecks
        machine.deliverLive([F.live(1)], env)
        #expect(env.log == ["msg 1 1"])
        // One for the batch, one for the (empty) turn; one or more per subscription visited.
        #expect(env.canDeliverChecks - before <= 4, "the delivery of one message asked canDeliver \(env.canDeliverChecks - before) times")
        env.clear()
        machine.grantCredit(1, 1, env)
        machine.pump(env)
        machine.deliverLive([F.live(2), F.live(3)], env)
        #expect(env.log == ["pump", "msg 1 2", "msg 1 3"])
    }

    @Test("two replays larger than the turn's budget share the turns instead of the first going to its end")
    func denseReplaysAlternate() throws {
        let env = try F.environment()
        var limits = F.limits
        limits.deliveryBudget = 10  // a store read (up to 1,024 messages) ends the turn
        env.watermark = 6_000
        env.stored = (1...6_000).map { F.stored($0, topic: $0 % 2 == 0 ? "t.a" : "t.b") }
        var machine = F.active(limits: limits, env)
        machine.subscribe(1, F.subscribe("t.a", start: .earliest, credit: 5_000), env)
        machine.subscribe(2, F.subscribe("t.b", start: .earliest, credit: 5_000), env)
        var turns: [Set<String>] = []
        for _ in 0..<6 {
            env.clear()
            machine.pump(env)
            turns.append(Set(env.log.filter { $0.hasPrefix("msg") }.map { String($0.split(separator: " ")[1]) }))
        }
        #expect(turns == [["1"], ["2"], ["1"], ["2"], ["1"], ["2"]] || turns == [["2"], ["1"], ["2"], ["1"], ["2"], ["1"]],
                "subscriptions served per turn: \(turns)")
    }

    static let records = 200_000  // a sparse scan of four store reads (65,536 records each)
    static let liveSubscriptions = 20

    @Test("a live subscription gets its messages while another subscription of its connection scans a sparse log")
    func liveNotBehindSparseScan() throws {
        let log = InMemoryMessageLog()
        let publisher = PublisherStamp(principal: "p", fingerprint: CertificateFingerprint(w0: 1, w1: 1, w2: 1, w3: 1))
        let common = try Topic("t.a.x"), rare = try Topic("t.z")
        log.append((0..<Self.records).map { _ in NewMessage(topic: common, payload: ByteBuffer(string: "x"), publisher: publisher) }
                   + [NewMessage(topic: rare, payload: ByteBuffer(string: "z"), publisher: publisher)]) { _ in }
        let last = UInt64(Self.records + 1)
        #expect(try log.lastSequence() == last)
        // Three sessions: the old turn walked the table in its dictionary's
        // order, which differs between tables, and a scanner that came last
        // held no one back.
        for _ in 0..<3 { try Self.scanBesideLive(log, last: last) }
    }

    /// One session on `log`: subscription 1 scans it from earliest for
    /// `t.z` (its only message is the last, `last`), 20 others each have a
    /// buffered live message and get CREDIT; the turns run until no more is
    /// asked for. Every live message must come before the scanner's.
    private static func scanBesideLive(_ log: InMemoryMessageLog, last: UInt64) throws {
        let env = LogBackedSessionEnvironment(recording: try F.environment(), log: log)
        var machine = F.machine(limits: SessionLimits(maxInFlightPublishes: 4, maxSubscriptions: 30, subscriptionBuffer: 100))
        machine.handshakeCompleted(F.handshake())
        machine.open(F.opening, env)
        machine.subscribe(1, F.subscribe("t.z", start: .earliest, credit: 10), env)
        let live = (2...UInt32(1 + Self.liveSubscriptions))
        for id in live { machine.subscribe(id, F.subscribe("t.b.\(id)", credit: 0), env) }
        // One message each, buffered (no credit yet); then the client's CREDITs.
        machine.deliverLive(live.map { F.live(last + UInt64($0), subscription: $0) }, env)
        for id in live { machine.grantCredit(id, 1, env) }
        var turns = 0
        while env.takePumpRequest() {
            machine.pump(env)
            turns += 1
        }
        let lines = env.lines
        let scannerDone = try #require(lines.firstIndex(of: "msg 1 \(last) replayed"), "the scan never reached its message")
        for id in live {
            let delivered = lines.firstIndex(of: "msg \(id) \(last + UInt64(id))")
            #expect(delivered.map { $0 < scannerDone } == true,
                    "subscription \(id)'s message came \(delivered.map { "at line \($0)" } ?? "never"), the scanner's end at line \(scannerDone)")
        }
        #expect(turns >= 3, "the scan took \(turns) turns")
    }
}
