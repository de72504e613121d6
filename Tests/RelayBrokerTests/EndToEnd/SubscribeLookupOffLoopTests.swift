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
    static func startBroker(_ fixture: RelaydFixture, gate: CursorReadGate) async throws -> Broker {
        let configuration = try BrokerConfiguration.load(path: fixture.configPath)
        return try await Broker.start(configuration: configuration, logger: Logger(label: "sub-lookup-off-loop"),
                                      createDataDirectory: true,
                                      openLog: { store, logger in
                                          GatedCursorLog(base: try MessageStore.open(store, logger: logger), gate: gate)
                                      })
    }

    @Test("while a durable SUB's cursor read waits, sessions on every event loop open and get their PUBACKs; the SUB's pipelined CREDIT waits for its SUBACK")
    func cursorReadDoesNotHoldTheLoop() async throws {
        try await withRelayd(acl: Self.rules, start: false) { fixture in
            let gate = CursorReadGate()
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

            // relayd runs one event loop per core and gives connections to
            // them in turn: of four, at least one shares the subscriber's loop.
            var publishers: [FrameClient] = []
            for index in 0..<4 {
                let publisher = try await FrameClient.connect(port: broker.port, pki: fixture.pki)
                publishers.append(publisher)
                let outcome = await publisher.helloOutcome(timeout: .seconds(10))
                guard case .welcome = outcome else {
                    Issue.record("publisher \(index) got no WELCOME while the cursor read waited: \(outcome)")
                    continue
                }
                let reply = try await publisher.publishReply(UInt64(index + 1), "t.p\(index)")
                let acknowledged: Bool
                if case .publishAck? = reply { acknowledged = true } else { acknowledged = false }
                #expect(acknowledged, "publisher \(index) got no PUBACK while the cursor read waited: \(String(describing: reply))")
            }
            #expect(gate.waiting > 0, "the cursor read was still waiting while the publishers were served")

            gate.open()
            let ack = try await subscriber.nextReply { frame in
                if case .subscribeAck = frame { return true }
                if case .error = frame { return true }
                return false
            }
            guard case .subscribeAck(let subscribed)? = ack else {
                Issue.record("no SUBACK after the cursor read: \(String(describing: ack))")
                return
            }
            #expect(subscribed.isAccepted, "SUBACK refused: \(subscribed.message)")
            // The pipelined CREDIT applied: a message published now is delivered.
            #expect(try await StagedReloadTests.accepted(publishers[0], 10, "t.after"))
            let delivered = try await subscriber.nextReply { frame in
                if case .message = frame { return true }
                if case .error = frame { return true }
                return false
            }
            guard case .message(let message)? = delivered else {
                Issue.record("no MSG after the SUBACK (the CREDIT was lost or refused): \(String(describing: delivered))")
                return
            }
            #expect(message.topic == "t.after")
            for publisher in publishers { await publisher.close() }
            await subscriber.close()
            await broker.shutdown()
        }
    }

    @Test("a connection that closes while its durable SUB's look-up waits releases the durable name")
    func closeDuringLookupReleasesTheName() async throws {
        try await withRelayd(acl: Self.rules, start: false) { fixture in
            let gate = CursorReadGate()
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

/// Holds durable cursor reads until ``open()``; counts the reads waiting.
final class CursorReadGate: @unchecked Sendable {
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
}

/// relayd's LMDB store, its durable cursor reads held by `gate`, reporting
/// reads that wait on a service as the JetStream log does.
final class GatedCursorLog: ForwardingMessageLog, @unchecked Sendable {
    let gate: CursorReadGate

    init(base: any MessageLog, gate: CursorReadGate) {
        self.gate = gate
        super.init(base: base)
    }

    override var readsWaitOnService: Bool { true }

    override func durableCursor(owner: DurableOwner, name: String) throws(StoreError) -> DurableCursor? {
        gate.pass()
        return try base.durableCursor(owner: owner, name: name)
    }
}
