import Foundation
import RelayClient
import RelayTestSupport
import Testing

/// A cluster edge refuses a SUB with `storage_unavailable` while it cannot
/// open its tail of the shared log (NATS down, no stream leader: a leader
/// election takes 3-5 s). The library retries such a SUB with backoff
/// (0.1 s doubling, 8 tries, about 25 s), as it does `durable_in_use`, so a
/// subscriber rides out an election instead of failing.
@Suite("RelayClient: a SUB refused storage_unavailable is retried", .serialized)
struct SubscribeStorageUnavailableTests {
    @Test("NATS down for 4 s while the edge must open its tail: subscribe() returns once NATS is back, and delivers")
    func subscribeOutlastsAnOutage() async throws {
        let nats = try await SingleNATSServer(pki: TLSTestPKI())
        let edge = try RelaydFixture(pki: nats.pki)
        try edge.useJetStream(nats, publishTimeout: "2s", tailIdle: "100ms")
        try await withRelayd(edge) { edge in
            let subscriber = try await Subscriber.connect(edge.clientConfiguration())
            await nats.kill()
            let started = ContinuousClock.now
            async let opened = subscriber.subscribe(filter: "outage.>")
            // The outage lasts 4 s (the scenario, not a wait for an event):
            // the edge answers the first SUB within its 2 s request timeout.
            try await Task.sleep(for: .seconds(4))
            try await nats.restart()
            let subscription = try await opened
            #expect(ContinuousClock.now - started >= .seconds(4), "subscribe() returned during the outage")

            let publisher = try await Publisher.connect(edge.clientConfiguration())
            let stored = await eventuallyValue(timeout: 20, every: 0.2) {
                try? await publisher.publish(topic: "outage.t", text: "after")
            }
            #expect(stored != nil, "the edge never stored a publish after NATS came back")
            let got = try await take(1, from: subscription, timeout: 20)
            #expect(got.map(\.text) == ["after"])
            await publisher.connection.close()
            await subscriber.connection.close()
        }
    }
}
