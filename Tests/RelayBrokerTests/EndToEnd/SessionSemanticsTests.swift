import NIOCore
import RelayCore
import RelayTestSupport
import RelayWire
import Testing

/// What Protocol/relay-v1.md says about publish ids, credit, PONG, ACK on
/// an ephemeral subscription, the reserved namespace and the frames that may
/// come before WELCOME, where the spec used to leave them open (issue #16).
/// Each test pins what relayd does, so the spec's text is checked.
@Suite("relayd end to end: publish ids, credit, PONG, reserved namespace, refusal before WELCOME (relay-v1 §4)", .serialized)
struct SessionSemanticsTests {
    @Test("publish ids: a lower unseen id is stored; a retried id is a duplicate whatever its topic and payload; policy is checked before deduplication")
    func publishIDsAndRetries() async throws {
        let acl = """
        [[acl.rule]]
        name = "p-only"
        publish = ["p.>", "barrier.>"]
        subscribe = [">"]
        """
        try await withRelayd(acl: acl) { relayd in
            let client = try await FrameClient.connect(port: relayd.port, pki: relayd.pki)
            try await client.hello(sessionID: ProducerSessionID(high: 0x5E55, low: 1))
            let first = try #require(try await client.publish("p.a", count: 1, firstID: 5).first)
            #expect(!first.duplicate)
            // Ids that go down are the client's mistake (§4.3), not refused: an id never stored is a new message.
            let lower = try #require(try await client.publish("p.a", count: 1, firstID: 3).first)
            #expect(!lower.duplicate && lower.sequence == first.sequence + 1)
            // Id 5 again, another topic and payload: the original's receipt, nothing stored.
            let retryAcks = try await client.publish("p.other", count: 1, firstID: 5, payload: { _ in "different" })
            let retry = try #require(retryAcks.first)
            #expect(retry.duplicate && retry.sequence == first.sequence && retry.timestamp == first.timestamp)
            // Id 5 to a topic the policy forbids: refused before the store sees it.
            try await client.send(.publish(Publish(publishID: 5, topic: "q.x", payload: ByteBuffer(string: "x"))))
            guard case .publishError(let refused) = try await client.next() else {
                Issue.record("a retried id to a forbidden topic was not refused")
                return
            }
            #expect(refused.publishID == 5 && refused.errorCode == .notAuthorized)
            let next = try #require(try await client.publish("p.a", count: 1, firstID: 6).first)
            #expect(!next.duplicate && next.sequence == lower.sequence + 1, "the retry stored something")
            #expect(try await client.subscribe(1, "p.other", from: .earliest).isAccepted)
            #expect(try await client.expectSilence(), "the retry with another topic was stored")
            await client.close()
        }
    }

    @Test("CREDIT 0 and an unsolicited PONG are accepted silently; a message held back by zero credit is replayed=0 from the live buffer, replayed=1 once the buffer overflowed")
    func zeroCreditPongAndReplayedFlag() async throws {
        try await withRelayd(extra: "[limits]\nsubscription_buffer = 16") { relayd in
            let subscriber = try await FrameClient.connect(port: relayd.port, pki: relayd.pki)
            try await subscriber.hello()
            let publisher = try await FrameClient.connect(port: relayd.port, pki: relayd.pki)
            try await publisher.hello()
            #expect(try await subscriber.subscribe(1, "h.a", from: .latest, credit: 0).isAccepted)
            let held = try await publisher.publish("h.a", count: 1).map(\.sequence)
            try await subscriber.send(.credit(Credit(subscriptionID: 1, credit: 0)), .pong(token: 42))
            #expect(try await subscriber.expectSilence(), "CREDIT 0 or an unsolicited PONG was answered, or a MSG came without credit")
            try await subscriber.send(.credit(Credit(subscriptionID: 1, credit: 1)))
            let one = try await subscriber.messages(1)
            #expect(one.map(\.sequence) == held && one.map(\.replayed) == [false])

            // 40 more than a 16-message live buffer holds while the credit is 0: read back from the store.
            let burst = try await publisher.publish("h.a", count: 40, firstID: 2).map(\.sequence)
            #expect(try await subscriber.expectSilence(), "MSG sent without credit")
            try await subscriber.send(.credit(Credit(subscriptionID: 1, credit: 40)))
            let caughtUp = try await subscriber.messages(40)
            #expect(caughtUp.map(\.sequence) == burst)
            #expect(caughtUp.first?.replayed == true, "a message dropped from the overflowing live buffer was not flagged replayed")
            // The connection still answers.
            try await subscriber.send(.ping(token: 7))
            #expect(try await subscriber.next() == .pong(token: 7))
            await subscriber.close()
            await publisher.close()
        }
    }

    @Test("an ephemeral subscription with ack_mode 1: ACK is accepted, answered by nothing and grants no credit")
    func ephemeralCumulativeAck() async throws {
        try await withRelayd { relayd in
            let client = try await FrameClient.connect(port: relayd.port, pki: relayd.pki)
            try await client.hello()
            try await client.send(.subscribe(Subscribe(subscriptionID: 1, filter: "e.a", start: .earliest, initialCredit: 1,
                                                       ackMode: .cumulative)))
            guard case .subscribeAck(let ack) = try await client.next() else {
                Issue.record("no SUBACK")
                return
            }
            #expect(ack.isAccepted)
            let sequences = try await client.publish("e.a", count: 2).map(\.sequence)
            let first = try await client.messages(1)
            #expect(first.map(\.sequence) == [sequences[0]])
            try await client.send(.ack(Ack(subscriptionID: 1, sequence: sequences[0])))
            #expect(try await client.expectSilence(), "an ACK was answered or returned credit")
            try await client.send(.credit(Credit(subscriptionID: 1, credit: 1)))
            #expect(try await client.messages(1).map(\.sequence) == [sequences[1]])
            await client.close()
        }
    }

    @Test("a '>' subscribe grant covers the reserved '_' namespace for SUB; PUB there is still reserved_topic")
    func reservedNamespaceSubscribe() async throws {
        try await withRelayd { relayd in  // allow-all: publish and subscribe ">"
            let client = try await FrameClient.connect(port: relayd.port, pki: relayd.pki)
            try await client.hello()
            #expect(try await client.subscribe(1, "_relay.audit", from: .latest).isAccepted)
            #expect(try await client.subscribe(2, ">", from: .latest).isAccepted)
            try await client.send(.publish(Publish(publishID: 1, topic: "_relay.audit", payload: ByteBuffer(string: "x"))))
            guard case .publishError(let refused) = try await client.next() else {
                Issue.record("a PUB to _relay.audit was not refused")
                return
            }
            #expect(refused.errorCode == .reservedTopic)
            await client.close()
        }
    }

    @Test("HELLO with unknown extensions and a PUB behind it in one write: WELCOME acknowledges no extension and announces the fixed limits, then the PUB is answered (relay-v1 §4.1, §4.2, §8)")
    func unknownHelloExtensionsAreIgnored() async throws {
        try await withRelayd { relayd in
            let client = try await FrameClient.connect(port: relayd.port, pki: relayd.pki)
            let extensions = [WireExtension(type: 0xF001, value: ByteBuffer(bytes: [1, 2, 3])), WireExtension(type: 7)]
            try await client.send(.hello(Hello(maxFrameSize: 64 << 20, clientName: "ext-probe", extensions: extensions)),
                                  .publish(Publish(publishID: 1, topic: "ext.a", payload: ByteBuffer(string: "behind HELLO"))))
            guard case .welcome(let welcome) = try await client.next() else {
                Issue.record("a HELLO with unknown extensions was not welcomed")
                return
            }
            #expect(welcome.extensions.isEmpty, "relayd acknowledged extensions it does not implement")
            // Fixed in relayd, not configurable (docs/configuration.md): 16 KiB of header bytes, a 120 s dedup window.
            #expect(welcome.maxHeaderBytes == 16_384 && welcome.dedupWindow == 120_000_000_000)
            guard case .publishAck(let ack) = try await client.next() else {
                Issue.record("the PUB sent behind HELLO was not answered")
                return
            }
            #expect(ack.publishID == 1 && !ack.duplicate)
            await client.close()
        }
    }

    @Test("the pre-HELLO limit counts length, not the 4-byte prefix: a HELLO whose length is exactly 8,192 (8,196 bytes on the wire) is welcomed")
    func helloOfExactlyTheLimit() async throws {
        try await withRelayd { relayd in
            let client = try await FrameClient.connect(port: relayd.port, pki: relayd.pki)
            // type, flags and a 28-byte body before the extension (empty name), 4 bytes of extension header: 34 + value.
            let padding = WireExtension(type: 0xF0F0, value: ByteBuffer(repeating: 0x2A, count: 8_192 - 34))
            let hello = Frame.hello(Hello(maxFrameSize: 64 << 20, extensions: [padding]))
            let bytes = try hello.encoded()
            #expect(bytes.readableBytes == 8_196 && bytes.getInteger(at: bytes.readerIndex, as: UInt32.self) == 8_192)
            try await client.send(hello)
            guard case .welcome = try await client.next() else {
                Issue.record("a HELLO of length 8,192 was refused")
                return
            }
            await client.close()
        }
    }


    @Test("too_many_connections reaches the wire: ERR right after the TLS handshake, before the client sent HELLO")
    func tooManyConnectionsBeforeHello() async throws {
        try await withRelayd(extra: "[limits]\nmax_connections = 1") { relayd in
            let first = try await FrameClient.connect(port: relayd.port, pki: relayd.pki)
            try await first.hello()
            let second = try await FrameClient.connect(port: relayd.port, pki: relayd.pki)
            // No HELLO is sent: the ERR is the broker's first frame, in place of WELCOME.
            guard case .error(let error) = try await second.next() else {
                Issue.record("the connection past max_connections did not get ERR as its first frame")
                return
            }
            #expect(error.errorCode == .tooManyConnections && error.subscriptionID == 0)
            do {
                #expect(try await second.next() == nil, "a frame after the connection-level ERR")
            } catch FrameClientError.timeout {
                Issue.record("the refused connection stayed open")
            } catch {
                // Closed with a TLS or socket error after the ERR: closed is what is required.
            }
            await second.close()
            await first.close()
        }
    }
}
