import Foundation
import Logging
import NIOCore
import RelayCore
import RelayStore
import RelayTestSupport
import RelayWire
import Testing
@testable import RelayBroker

/// A SUB on a cluster edge asks NATS for the durable's cursor, the owner's
/// durables and the start position. A cursor read retries for up to 8 s
/// while the cursor bucket elects a leader, and relayd made those requests
/// on the session's event loop: every other session on that loop (one of
/// one per core) waited that long for its PUBACKs, MSGs and even WELCOME
/// (docs/cluster.md, "Replay: runs of direct gets", the wave 23 text).
/// Now a log whose reads wait on a service (``MessageLog/readsWaitOnService``)
/// gets a SUB's look-ups off the loop; the session holds the frames that
/// follow its SUB until the SUBACK, so their order is the one the spec gives.
///
/// The log here is relayd's own LMDB store (real files, real commits) behind
/// a gate that holds durable cursor reads until the test opens it: the
/// election, made an event the test controls.
@Suite("A SUB's look-ups on a log that waits on a service do not hold the event loop", .serialized)
struct SubscribeLookupOffLoopTests {
    static let rules = """
    [[acl.rule]]
    name = "everything"
    publish = ["t.>"]
    subscribe = ["t.>"]
    """

    /// relayd's broker, in this process, on the fixture's config, over its LMDB store behind `gate`.
    static func startBroker(_ fixture: RelaydFixture, gate: ReadGate?, readGate: ReadGate? = nil) async throws -> Broker {
        let configuration = try BrokerConfiguration.load(path: fixture.configPath)
        return try await Broker.start(configuration: configuration, logger: Logger(label: "sub-lookup-off-loop"),
                                      createDataDirectory: true,
                                      openLog: { store, logger in
                                          GatedLog(base: try MessageStore.open(store, logger: logger), gate: gate, readGate: readGate)
                                      })
    }

    @Test("while a durable SUB's cursor read waits, sessions on every event loop open and get their PUBACKs; the SUB's pipelined CREDIT waits for its SUBACK")
    func cursorReadDoesNotHoldTheLoop() async throws {
        try await withRelayd(acl: Self.rules, start: false) { fixture in
            let gate = ReadGate()
            let broker = try await Self.startBroker(fixture, gate: gate)
            defer { gate.open() }  // never leave a broker thread waiting, whatever failed
            let subscriber = try await FrameClient.connect(port: broker.port, pki: fixture.pki)
            try await subscriber.hello()
            // SUB with no credit, then CREDIT in the same write: the CREDIT
            // must reach the subscription the SUBACK opens, not arrive first.
            var pipelined = ByteBuffer()
            try pipelined.writeFrame(.subscribe(Subscribe(subscriptionID: 1, filter: "t.>", start: .latest, durableName: "d",
                                                          initialCredit: 0, ackMode: .cumulative)))
            try pipelined.writeFrame(.credit(Credit(subscriptionID: 1, credit: 10)))
            try await subscriber.sendRaw(Array(pipelined.readableBytesView))
            let started = await eventually { gate.waiting > 0 }
            #expect(started, "the durable cursor read never started")

            let publishers = try await Self.expectServedOnEveryLoop(port: broker.port, fixture: fixture, firstID: 1)
            #expect(gate.waiting > 0, "the cursor read was still waiting while the publishers were served")

            gate.open()
            let subscribed = try await subscriber.subscribeAck(1)
            #expect(subscribed.isAccepted, "SUBACK refused: \(subscribed.message)")
            // The pipelined CREDIT applied: a message published now is delivered.
            #expect(try await StagedReloadTests.accepted(publishers[0], 10, "t.after"))
            let message = try await subscriber.nextMessage()
            #expect(message.topic == "t.after")
            for publisher in publishers { await publisher.close() }
            await subscriber.close()
            await broker.shutdown()
        }
    }

    @Test("while a replay read waits, sessions on every event loop open and get their PUBACKs; then every message comes once, in order")
    func replayReadDoesNotHoldTheLoop() async throws {
        try await withRelayd(acl: Self.rules, start: false) { fixture in
            let readGate = ReadGate()
            let broker = try await Self.startBroker(fixture, gate: nil, readGate: readGate)
            defer { readGate.open() }
            let stored = try await FrameClient.connect(port: broker.port, pki: fixture.pki)
            try await stored.hello()
            _ = try await stored.publish("t.stored", count: 20)
            let subscriber = try await FrameClient.connect(port: broker.port, pki: fixture.pki)
            try await subscriber.hello()
            let ack = try await subscriber.subscribe(1, "t.>", from: .earliest)
            #expect(ack.isAccepted, "SUBACK refused: \(ack.message)")
            let started = await eventually { readGate.waiting > 0 }
            #expect(started, "the replay read never started")
            let publishers = try await Self.expectServedOnEveryLoop(port: broker.port, fixture: fixture, firstID: 100)
            #expect(readGate.waiting > 0, "the replay read was still waiting while the publishers were served")

            readGate.open()
            let messages = try await subscriber.messages(24)
            #expect(messages.map(\.sequence) == Array(1...24), "not every message once, in order")
            let replayedFirst = messages.prefix(20).allSatisfy { $0.topic == "t.stored" && $0.replayed }
            #expect(replayedFirst, "the 20 stored messages did not come first, replayed")
            for publisher in publishers { await publisher.close() }
            await stored.close()
            await subscriber.close()
            await broker.shutdown()
        }
    }

    /// relayd runs one event loop per core and gives connections to them in
    /// turn: of four new ones, at least one shares any given session's loop.
    /// Each must get WELCOME and a PUBACK (ids from `firstID`, topics
    /// `t.p<n>`). Returns them, open, for the caller to close.
    static func expectServedOnEveryLoop(port: Int, fixture: RelaydFixture, firstID: UInt64) async throws -> [FrameClient] {
        var publishers: [FrameClient] = []
        for index in 0..<4 {
            let publisher = try await FrameClient.connect(port: port, pki: fixture.pki)
            publishers.append(publisher)
            guard case .welcome = await publisher.helloOutcome(timeout: .seconds(10)) else {
                Issue.record("publisher \(index) got no WELCOME while the read waited")
                continue
            }
            let reply = try await publisher.publishReply(firstID + UInt64(index), "t.p\(index)")
            let acknowledged: Bool
            if case .publishAck? = reply { acknowledged = true } else { acknowledged = false }
            #expect(acknowledged, "publisher \(index) got no PUBACK while the read waited: \(String(describing: reply))")
        }
        return publishers
    }

    @Test("a connection that closes while its durable SUB's look-up waits releases the durable name")
    func closeDuringLookupReleasesTheName() async throws {
        try await withRelayd(acl: Self.rules, start: false) { fixture in
            let gate = ReadGate()
            let broker = try await Self.startBroker(fixture, gate: gate)
            defer { gate.open() }
            let first = try await FrameClient.connect(port: broker.port, pki: fixture.pki)
            try await first.hello()
            try await first.send(.subscribe(Subscribe(subscriptionID: 1, filter: "t.>", start: .latest, durableName: "d",
                                                      initialCredit: 10, ackMode: .cumulative)))
            let started = await eventually { gate.waiting > 0 }
            #expect(started, "the durable cursor read never started")
            await first.close()
            let released = await eventually { !broker.context.attachedDurables().contains { $0.name == "d" } }
            #expect(released, "the closed session still held the durable name")
            gate.open()
            // The same identity attaches the name from a new connection.
            let second = try await FrameClient.connect(port: broker.port, pki: fixture.pki)
            try await second.hello()
            let ack = try await second.subscribe(1, "t.>", from: .latest, durable: "d")
            #expect(ack.isAccepted, "the name was still held: \(ack.message)")
            await second.close()
            await broker.shutdown()
        }
    }
}

/// Holds the reads that pass it until ``open()``; counts those waiting.
final class ReadGate: @unchecked Sendable {
    // Both fields under `condition`'s lock.
    private var isOpen = false
    private var waitingReads = 0
    private let condition = NSCondition()

    var waiting: Int {
        condition.lock()
        defer { condition.unlock() }
        return waitingReads
    }

    func pass() {
        condition.lock()
        defer { condition.unlock() }
        waitingReads += 1
        // Bounded: a test that fails before it opens the gate still ends.
        let bound = Date().addingTimeInterval(60)
        while !isOpen, condition.wait(until: bound) {}
        waitingReads -= 1
    }

    func open() {
        condition.lock()
        isOpen = true
        condition.broadcast()
        condition.unlock()
    }

    /// Holds the reads from now on (a gate starts closed).
    func close() {
        condition.lock()
        isOpen = false
        condition.unlock()
    }
}

/// relayd's LMDB store, its durable cursor reads held by `gate` and its
/// batch reads (a replay's, off the loop) by `readGate`, reporting reads
/// that wait on a service as the JetStream log does.
final class GatedLog: ForwardingMessageLog, @unchecked Sendable {
    let gate: ReadGate?
    let readGate: ReadGate?

    init(base: any MessageLog, gate: ReadGate?, readGate: ReadGate? = nil) {
        self.gate = gate
        self.readGate = readGate
        super.init(base: base)
    }

    override var readsWaitOnService: Bool { true }

    override func durableCursor(owner: DurableOwner, name: String) throws(StoreError) -> DurableCursor? {
        gate?.pass()
        return try base.durableCursor(owner: owner, name: name)
    }

    override func read(from: UInt64, filter: TopicFilter, maxMessages: Int, maxBytes: Int, maxScan: Int) throws(StoreError)
        -> ReadBatch {
        readGate?.pass()
        return try base.read(from: from, filter: filter, maxMessages: maxMessages, maxBytes: maxBytes, maxScan: maxScan)
    }

    /// What a replay read on the event loop calls (a local log's path): held too.
    override func visit(from: UInt64, filter: TopicFilter, maxMessages: Int, maxBytes: Int, maxScan: Int,
                        _ body: (borrowing StoredRecord) -> Bool) throws(StoreError) -> ReadProgress {
        readGate?.pass()
        return try base.visit(from: from, filter: filter, maxMessages: maxMessages, maxBytes: maxBytes, maxScan: maxScan, body)
    }
}
