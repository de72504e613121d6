import Foundation
import Logging
import NIOCore
import RelayCore
import RelayJetStream
import RelayStore
import RelayTestSupport
import RelayWire
import Testing
@testable import RelayBroker

/// A cluster edge follows the shared log only while it has a subscription
/// (`tail_idle`, docs/cluster.md "Live delivery across edges"): the first
/// SUB, and the first after an idle close, opens the tail, which asks NATS
/// for the stream's last sequence and creates a consumer. That ran inside
/// routing, on the session's event loop, so every other session on the loop
/// waited for NATS (seconds while the stream elects a leader). Now a SUB's
/// off-loop look-ups open the tail ahead of routing (`Router.prepareLiveTail`).
/// The log is relayd's JetStream log on a real nats-server, its last-sequence
/// request held by a gate the test opens.
@Suite("A SUB that opens the shared log's tail does not hold the event loop", .serialized)
struct SharedTailOffLoopTests {
    /// relayd's broker, in this process, on the fixture's JetStream config,
    /// its last-sequence requests held by `lastSequenceGate`.
    static func startBroker(_ fixture: RelaydFixture, lastSequenceGate gate: ReadGate) async throws -> Broker {
        let configuration = try BrokerConfiguration.load(path: fixture.configPath)
        let js = try #require(configuration.storage.jetstream, "the fixture wrote no [storage.jetstream]")
        var settings = JetStreamSettings(endpoint: NATSEndpoint(servers: js.servers, caFile: js.ca, certificateFile: js.certificate,
                                                                privateKeyFile: js.privateKey))
        settings.stream = js.stream
        settings.replicas = js.replicas
        return try await Broker.start(configuration: configuration, logger: Logger(label: "shared-tail-off-loop"),
                                      createDataDirectory: true,
                                      openLog: { [settings] store, logger in
                                          GatedSharedLog(base: try JetStreamMessageLog.open(store, settings: settings, logger: logger),
                                                         lastSequenceGate: gate)
                                      })
    }

    @Test("while the first SUB's tail open waits for NATS, sessions on every event loop open and get their PUBACKs; then the SUB gets live messages")
    func tailOpenDoesNotHoldTheLoop() async throws {
        let nats = try await SingleNATSServer(pki: TLSTestPKI())
        let edge = try RelaydFixture(pki: nats.pki, acl: SubscribeLookupOffLoopTests.rules)
        try edge.useJetStream(nats, tailIdle: "60s")
        try await withRelayd(edge, start: false) { fixture in
            let gate = ReadGate()
            gate.open()  // relayd's start asks the last sequence too
            let broker = try await Self.startBroker(fixture, lastSequenceGate: gate)
            defer { gate.open() }
            gate.close()
            let subscriber = try await FrameClient.connect(port: broker.port, pki: fixture.pki)
            try await subscriber.hello()
            try await subscriber.send(.subscribe(Subscribe(subscriptionID: 1, filter: "t.>", start: .latest, initialCredit: 100)))
            let started = await eventually { gate.waiting > 0 }
            #expect(started, "the SUB never asked for the stream's last sequence")

            let publishers = try await SubscribeLookupOffLoopTests.expectServedOnEveryLoop(port: broker.port, fixture: fixture,
                                                                                           firstID: 1)
            #expect(gate.waiting > 0, "the tail open was still waiting while the publishers were served")

            gate.open()
            let subscribed = try await subscriber.subscribeAck(1)
            #expect(subscribed.isAccepted, "SUBACK refused: \(subscribed.message)")
            let acked = try await publishers[0].publish("t.after", count: 3, firstID: 10).map(\.sequence)
            #expect(try await subscriber.messages(3).map(\.sequence) == acked)
            for publisher in publishers { await publisher.close() }
            await subscriber.close()
            await broker.shutdown()
        }
    }
}

extension SharedTailOffLoopTests {
    @Test("a session that closes while its SUB's look-ups open the tail leaves no consumer once tail_idle passed")
    func closedSessionReleasesThePreparedTail() async throws {
        let nats = try await SingleNATSServer(pki: TLSTestPKI())
        let edge = try RelaydFixture(pki: nats.pki, acl: SubscribeLookupOffLoopTests.rules)
        try edge.useJetStream(nats, tailIdle: "2s")
        try await withRelayd(edge, start: false) { fixture in
            let gate = ReadGate()
            gate.open()
            let broker = try await Self.startBroker(fixture, lastSequenceGate: gate)
            defer { gate.open() }
            gate.close()
            let client = try await FrameClient.connect(port: broker.port, pki: fixture.pki)
            try await client.hello()
            try await client.send(.subscribe(Subscribe(subscriptionID: 1, filter: "t.>", start: .latest, initialCredit: 10)))
            let started = await eventually { gate.waiting > 0 }
            #expect(started, "the SUB never asked for the stream's last sequence")
            await client.close()
            let gone = await eventually { broker.context.router.subscriptionCount == 0 && broker.context.sessionCount == 0 }
            #expect(gone, "the client's session did not end")
            gate.open()  // the tail opens now, for a SUB whose session is gone
            let opened = await eventually(timeout: 10, every: 0.05) { (try? nats.streamConsumers()) == 1 }
            #expect(opened, "the tail never opened (the check below would pass without it)")
            let released = await eventually(timeout: 10, every: 0.05) { (try? nats.streamConsumers()) == 0 }
            #expect(released, "a tail opened for a SUB whose session had closed stayed open with no subscription")
            await broker.shutdown()
        }
    }
}

/// relayd's JetStream log with its last-sequence request (what opening the
/// tail asks first) held by `lastSequenceGate`.
final class GatedSharedLog: ForwardingMessageLog, SharedMessageLog, @unchecked Sendable {
    let shared: any SharedMessageLog
    let lastSequenceGate: ReadGate

    init(base: any SharedMessageLog, lastSequenceGate: ReadGate) {
        self.shared = base
        self.lastSequenceGate = lastSequenceGate
        super.init(base: base)
    }

    override func lastSequence() throws(StoreError) -> UInt64 {
        lastSequenceGate.pass()
        return try base.lastSequence()
    }

    func startTail(after sequence: UInt64, deliver: @escaping @Sendable ([StoredMessage]) -> Void) throws(StoreError) {
        try shared.startTail(after: sequence, deliver: deliver)
    }

    func startTail(after sequence: UInt64, skip: @escaping @Sendable (_ sequence: UInt64, _ payloadBytes: Int) -> Bool,
                   deliver: @escaping @Sendable ([StoredMessage]) -> Void) throws(StoreError) {
        try shared.startTail(after: sequence, skip: skip, deliver: deliver)
    }

    func stopTail() { shared.stopTail() }
}
