import NIOCore
import RelayCore
import RelayTestSupport
import RelayWire
import Testing

/// Protocol/relay-v1.md §4.3: a PUB retried in the same producer session
/// (same verified identity, session id and publish id) is stored once and
/// answered with the duplicate flag and the original sequence.
@Suite("relayd end to end: idempotent retries", .serialized)
struct IdempotentRetryTests {
    @Test("a PUB whose PUBACK was lost, retried on a new connection with the same session and publish id, is stored once and acknowledged as a duplicate of the original")
    func lostAckRetried() async throws {
        try await withRelayd { relayd in
            let session = ProducerSessionID.random()

            // The witness shows the commit: the broker routes a message only after storing it.
            let witness = try await FrameClient.connect(port: relayd.port, pki: relayd.pki)
            try await witness.hello()
            #expect(try await witness.subscribe(1, "retry.>", from: .latest).isAccepted)

            // The first attempt: the client stops reading before it sends, so the
            // PUBACK never reaches it, and it drops the connection once the
            // message is committed.
            let first = try await FrameClient.connect(port: relayd.port, pki: relayd.pki)
            try await first.hello(sessionID: session)
            try await first.pauseReading()
            try await first.send(.publish(Publish(publishID: 7, topic: "retry.order", payload: ByteBuffer(string: "once"))))
            let committed = try #require(try await witness.messages(1).first)
            #expect(committed.topic == "retry.order" && payloadString(committed) == "once")
            await first.close()

            // The retry: a new connection, the same producer session, the same publish id.
            let second = try await FrameClient.connect(port: relayd.port, pki: relayd.pki)
            try await second.hello(sessionID: session)
            guard case .publishAck(let retried) = try await second.publishReply(7, "retry.order") else {
                Issue.record("the retry was not acknowledged")
                return
            }
            #expect(retried.duplicate, "the retried PUB was stored again (sequence \(retried.sequence))")
            #expect(retried.sequence == committed.sequence, "the duplicate's receipt names \(retried.sequence), the original is \(committed.sequence)")
            #expect(retried.timestamp == committed.timestamp)
            // Nothing new was routed for the retry.
            #expect(try await witness.expectSilence(.milliseconds(500)), "the witness received a second copy")

            // The next publish id in the session is new, stored and routed.
            let next = try #require(try await second.publish("retry.order", count: 1, firstID: 8).first)
            #expect(!next.duplicate && next.sequence > committed.sequence)
            #expect(try await witness.messages(1).first?.sequence == next.sequence)

            // Read back from the start: the original once, then the next one; nothing in between.
            let reader = try await FrameClient.connect(port: relayd.port, pki: relayd.pki)
            try await reader.hello()
            #expect(try await reader.subscribe(1, "retry.>", from: .earliest).isAccepted)
            let stored = try await reader.messages(2)
            #expect(stored.map(\.sequence) == [committed.sequence, next.sequence])
            #expect(try await reader.expectSilence(), "more than two messages are stored")
            for client in [witness, second, reader] { await client.close() }
        }
    }

    @Test("the same publish id in a different producer session, or with no session, is a new message, not a duplicate")
    func otherSessionsAreNotDuplicates() async throws {
        try await withRelayd { relayd in

            var sequences: [UInt64] = []
            for session in [ProducerSessionID.random(), .random(), .none, .none] {
                let client = try await FrameClient.connect(port: relayd.port, pki: relayd.pki)
                try await client.hello(sessionID: session)
                guard case .publishAck(let ack) = try await client.publishReply(1, "retry.other") else {
                    Issue.record("publish id 1 in session \(session) was not acknowledged")
                    return
                }
                #expect(!ack.duplicate, "publish id 1 in session \(session) was taken for a duplicate")
                sequences.append(ack.sequence)
                await client.close()
            }
            #expect(Set(sequences).count == 4, "four publishes share sequences: \(sequences)")

            let reader = try await FrameClient.connect(port: relayd.port, pki: relayd.pki)
            try await reader.hello()
            #expect(try await reader.subscribe(1, "retry.other", from: .earliest).isAccepted)
            #expect(try await reader.messages(4).map(\.sequence) == sequences)
            await reader.close()
        }
    }

    /// docs/testing.md listed this as a gap: a retry across a broker restart
    /// was a duplicate only when a SIGKILL happened to land in the window.
    /// Here the PUBACK is read, the broker restarts (graceful, then killed),
    /// and the same publish is sent again, as a client does when it cannot
    /// tell whether its PUBACK was the last thing the old broker sent.
    @Test("a PUB acknowledged before relayd restarted (SIGTERM or SIGKILL), sent again in the same producer session, is a duplicate of the stored one", arguments: ["SIGTERM", "SIGKILL"])
    func retriedAcrossRestart(_ stop: String) async throws {
        try await withRelayd { relayd in
            let session = ProducerSessionID.random()
            let before = try await FrameClient.connect(port: relayd.port, pki: relayd.pki)
            try await before.hello(sessionID: session)
            guard case .publishAck(let original) = try await before.publishReply(3, "restart.order") else {
                Issue.record("the first publish was not acknowledged")
                return
            }
            #expect(!original.duplicate)
            await before.close()

            if stop == "SIGTERM" {
                #expect(await relayd.terminate() == 0)
                try await relayd.start()
            } else {
                try await relayd.restart()  // SIGKILL, then start on the same data directory
            }

            let after = try await FrameClient.connect(port: relayd.port, pki: relayd.pki)
            try await after.hello(sessionID: session)
            guard case .publishAck(let retried) = try await after.publishReply(3, "restart.order") else {
                Issue.record("the retry after the restart was not acknowledged")
                return
            }
            #expect(retried.duplicate, "after \(stop) the retry was stored again (sequence \(retried.sequence))")
            #expect(retried.sequence == original.sequence && retried.timestamp == original.timestamp)
            await after.close()

            let reader = try await FrameClient.connect(port: relayd.port, pki: relayd.pki)
            try await reader.hello()
            #expect(try await reader.subscribe(1, "restart.order", from: .earliest).isAccepted)
            #expect(try await reader.messages(1).map(\.sequence) == [original.sequence])
            #expect(try await reader.expectSilence(), "the retry was stored a second time")
            await reader.close()
        }
    }
}
