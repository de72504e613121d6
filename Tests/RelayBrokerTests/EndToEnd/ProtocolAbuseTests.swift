import Foundation
import NIOCore
import RelayCore
import RelayTestSupport
import RelayWire
import Testing

@Suite("relayd end to end: bad input closes only the offender", .serialized)
struct ProtocolAbuseTests {
    /// Expects the connection to end with ERR `code` (or a plain close).
    func expectClosed(_ client: FrameClient, with code: RelayErrorCode) async throws {
        var seen: RelayErrorCode?
        while let frame = try await client.next() {
            if case .error(let error) = frame { seen = error.errorCode }
        }
        #expect(seen == code)
    }

    @Test("malformed, oversized and unknown frames close that connection; another keeps working")
    func badFrames() async throws {
        try await withRelayd { relayd in
            let good = try await FrameClient.connect(port: relayd.port, pki: relayd.pki)
            try await good.hello()
            _ = try await good.publish("ok.a", count: 1)

            // A frame whose length claims 4 GiB.
            let huge = try await FrameClient.connect(port: relayd.port, pki: relayd.pki)
            try await huge.hello()
            try await huge.sendRaw([0xFF, 0xFF, 0xFF, 0xFF, 0x10, 0x00])
            try await expectClosed(huge, with: .frameTooLarge)

            // An undefined frame type.
            let unknown = try await FrameClient.connect(port: relayd.port, pki: relayd.pki)
            try await unknown.hello()
            try await unknown.sendRaw([0, 0, 0, 2, 0x7E, 0])
            try await expectClosed(unknown, with: .unknownFrameType)

            // A PUB truncated inside its topic.
            let truncated = try await FrameClient.connect(port: relayd.port, pki: relayd.pki)
            try await truncated.hello()
            try await truncated.sendRaw([0, 0, 0, 6, 0x10, 0, 0, 0, 0, 1])
            try await expectClosed(truncated, with: .protocolViolation)

            // Anything before HELLO.
            let rude = try await FrameClient.connect(port: relayd.port, pki: relayd.pki)
            try await rude.send(.ping(token: 1))
            try await expectClosed(rude, with: .helloRequired)

            // The good connection never noticed.
            let acks = try await good.publish("ok.a", count: 3, firstID: 10)
            #expect(acks.count == 3)
            await good.close()
        }
    }

    /// Protocol/relay-v1.md §2: before HELLO only `length` ≤ 8,192 is
    /// accepted, decided from the 4-byte length alone (docs/testing.md listed
    /// the relayd side as untested).
    @Test("before HELLO a length of 8,193 is frame_too_large from the length alone; after HELLO the same length waits for its body")
    func preHelloFrameLimit() async throws {
        try await withRelayd { relayd in
            let length: [UInt8] = [0x00, 0x00, 0x20, 0x01]  // 8,193

            // Only the length and the type of a HELLO: relayd must not wait for 8,191 more bytes.
            let early = try await FrameClient.connect(port: relayd.port, pki: relayd.pki)
            try await early.sendRaw(length + [0x01, 0x00])
            try await expectClosed(early, with: .frameTooLarge)

            // After HELLO the limit is the announced one (1,114,112): the same prefix is a frame in progress.
            let greeted = try await FrameClient.connect(port: relayd.port, pki: relayd.pki)
            try await greeted.hello()
            try await greeted.sendRaw(length + [0x40, 0x00])
            #expect(try await greeted.expectSilence(.milliseconds(500)), "relayd answered a frame whose body had not arrived")
            await greeted.close()
        }
    }

    @Test("refused operations keep the connection: invalid topic, wildcard topic, reserved topic, bad filter, bad durable name")
    func operationErrorsKeepConnection() async throws {
        try await withRelayd { relayd in
            let client = try await FrameClient.connect(port: relayd.port, pki: relayd.pki)
            try await client.hello()
            for (id, topic, code) in [(UInt64(1), "a..b", RelayErrorCode.invalidTopic), (2, "a.*", .invalidTopic),
                                      (3, "_relay.x", .reservedTopic)] {
                try await client.send(.publish(Publish(publishID: id, topic: topic, payload: ByteBuffer(string: "x"))))
                guard case .publishError(let error) = try await client.next() else {
                    Issue.record("no PUBERR for \(topic)")
                    continue
                }
                #expect(error.publishID == id && error.errorCode == code)
            }
            let bad = try await client.subscribe(1, "a.>.b")
            #expect(bad.errorCode == .invalidFilter)
            // Durable names are restricted to A-Z a-z 0-9 - _ (they key cursors in the store).
            for (id, name) in [(UInt32(2), "has space"), (3, "dot.ted"), (4, "tab\there"), (5, "ünïcode"),
                               (6, String(repeating: "n", count: 256))] {
                let refused = try await client.subscribe(id, "a.b", durable: name)
                #expect(refused.errorCode == .invalidStartPosition, "durable name \(name.debugDescription) was accepted")
            }
            #expect(try await client.subscribe(7, "a.b", durable: "Worker_1-a").isAccepted)
            // Start positions that name nothing: sequence 0, last 0.
            #expect(try await client.subscribe(8, "a.b", from: .sequence(0)).errorCode == .invalidStartPosition)
            #expect(try await client.subscribe(9, "a.b", from: .last(0)).errorCode == .invalidStartPosition)
            #expect(try await client.publish("fine", count: 1, firstID: 9).count == 1)
            await client.close()
        }
    }

    @Test("no HELLO within the hello timeout closes the connection")
    func helloTimeout() async throws {
        try await withRelayd(start: false) { relayd in
            relayd.helloTimeout = "2s"  // the fixture's default is generous for loaded machines
            try relayd.writeConfig()
            try await relayd.start()
            let client = try await FrameClient.connect(port: relayd.port, pki: relayd.pki)
            try await expectClosed(client, with: .helloTimeout)
        }
    }
}
