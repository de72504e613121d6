import NIOCore
import NIOEmbedded
@testable import RelayClient
import RelayCore
import RelayTestSupport
import RelayWire
import Testing

/// ``ConnectionCore/delivered(_:)`` finds a MSG's subscription through the
/// last one it delivered to before the dictionary (wave 12): a MSG must
/// still reach its own subscription when MSGs for several interleave, and
/// reach nobody once its subscription was removed (ended by the broker or
/// by the consumer), whichever was found last. Driven on an embedded loop,
/// no broker: the subscriptions are marked attached by hand. These pin the
/// behaviour the dictionary lookup had; they pass on the code before the
/// cache too.
@Suite("Delivery to subscriptions")
struct SubscriptionDeliveryTests {
    /// What the callbacks got, as (subscription name, sequence); touched only on the embedded loop, i.e. this thread.
    final class Inbox: @unchecked Sendable {
        var got: [String] = []
        var ended: [String] = []
    }

    static func message(for id: UInt32, sequence: UInt64) -> Message {
        Message(subscriptionID: id, sequence: sequence, timestamp: 1, topic: "orders.eu", publisherPrincipal: "billing",
                publisherFingerprint: .zero, payload: ByteBuffer(string: "m\(sequence)"))
    }

    static func core(_ pki: TLSTestPKI, loop: EmbeddedEventLoop) throws -> ConnectionCore {
        let configuration = RelayClientConfiguration(host: "127.0.0.1", port: 1, certificatePath: pki.alice.certificate,
                                                     privateKeyPath: pki.alice.key, caPath: pki.ca.certificate)
        return try ConnectionCore(configuration: configuration, eventLoop: loop, sessionID: .none)
    }

    /// Subscribes `name` with a callback sink writing to `inbox`, marked attached; returns its id.
    static func subscribe(_ name: String, on core: ConnectionCore, inbox: Inbox) throws -> UInt32 {
        let sink = MessageSink.callback(onMessage: { inbox.got.append("\(name)#\($0.sequence)") },
                                        onEnd: { _ in inbox.ended.append(name) })
        let (id, _) = core.subscribe(filter: "orders.>", start: .earliest, durableName: "", window: 100, sink: sink)
        let state = try #require(core.subscriptions[id])
        state.attached = true
        return id
    }

    @Test("interleaved MSGs each reach their own subscription; a removed subscription's MSGs reach nobody")
    func deliversByIDAndForgetsRemoved() throws {
        let pki = try TLSTestPKI()
        let loop = EmbeddedEventLoop()
        let core = try Self.core(pki, loop: loop)
        let inbox = Inbox()
        let a = try Self.subscribe("a", on: core, inbox: inbox)
        let b = try Self.subscribe("b", on: core, inbox: inbox)
        core.delivered(Self.message(for: a, sequence: 1))
        core.delivered(Self.message(for: a, sequence: 2))
        core.delivered(Self.message(for: b, sequence: 3))
        core.delivered(Self.message(for: a, sequence: 4))
        #expect(inbox.got == ["a#1", "a#2", "b#3", "a#4"])

        // `a` was the last found; the broker ends it: its next MSG must not reach it.
        core.subscriptionEnded(a, error: .closed)
        core.delivered(Self.message(for: a, sequence: 5))
        core.delivered(Self.message(for: b, sequence: 6))
        #expect(inbox.got == ["a#1", "a#2", "b#3", "a#4", "b#6"])
        #expect(inbox.ended == ["a"])

        // The consumer ends `b` right after a delivery to it.
        core.unsubscribe(b)
        core.delivered(Self.message(for: b, sequence: 7))
        #expect(inbox.got == ["a#1", "a#2", "b#3", "a#4", "b#6"])

        // A MSG for an id never subscribed reaches nobody, and a new subscription gets its own.
        let c = try Self.subscribe("c", on: core, inbox: inbox)
        core.delivered(Self.message(for: c &+ 100, sequence: 8))
        core.delivered(Self.message(for: c, sequence: 9))
        #expect(inbox.got == ["a#1", "a#2", "b#3", "a#4", "b#6", "c#9"])
        core.unsubscribe(c)  // fails its open promise (never answered here), which must not leak
        try loop.syncShutdownGracefully()
    }

    @Test("a received message equals another with the same fields whatever subscription got it; setters change one field")
    func receivedMessageIdentity() {
        let one = ReceivedMessage(Self.message(for: 1, sequence: 7))
        let other = ReceivedMessage(Self.message(for: 2, sequence: 7))
        #expect(one == other)
        #expect(one.hashValue == other.hashValue)
        #expect(one.topic == "orders.eu")
        #expect(one.publisherPrincipal == "billing")
        #expect(one.sequence == 7)
        #expect(one.text == "m7")
        #expect(one.headers.isEmpty)
        var changed = one
        changed.sequence = 8
        changed.topic = "orders.us"
        #expect(changed != one)
        #expect(changed.sequence == 8)
        #expect(changed.topic == "orders.us")
        #expect(changed.payload == one.payload)
    }
}
