import NIOCore
import RelayCore
import RelayTestSupport
import RelayWire
import Testing

/// Protocol/relay-v1.md §2: the client announces the largest frame it
/// accepts (at least 1,024 bytes). relayd's answers whose size depends on
/// names (a SUBACK quoting a durable and its filter, WELCOME carrying the
/// certificate subject, an admin listing) can exceed it; relayd used to log
/// "could not encode a frame" and send nothing, so the client waited for
/// an answer forever. Now a human `message` is shortened to fit, a WELCOME
/// that cannot fit is ERR `frame_too_large`, and an ADMINREPLY that cannot
/// fit is refused with `payload_too_large`.
@Suite("spec §2: broker answers above the client's frame limit", .serialized)
struct PeerFrameLimitTests {
    static let smallLimit: UInt32 = 1_024
    /// A 255-byte topic (the longest §5 allows) and a 255-byte durable name.
    static let longTopic = "t." + String(repeating: "a", count: 253)
    static let otherLongTopic = "t." + String(repeating: "b", count: 253)
    static let longName = String(repeating: "d", count: 255)

    @Test("SUBACK durable_filter_mismatch quoting long names arrives, shortened to the client's limit")
    func longSubackMessageIsShortened() async throws {
        try await withRelayd { relayd in
            let owner = try await FrameClient.connect(port: relayd.port, pki: relayd.pki)
            try await owner.hello()
            _ = try await owner.publish(Self.longTopic, count: 1)
            // ack_mode 0: the cursor is written once the MSG is sent, and at UNSUB.
            #expect(try await owner.subscribe(1, Self.longTopic, from: .earliest, credit: 10, durable: Self.longName,
                                              ackMode: .none).isAccepted)
            #expect(try await owner.messages(1).count == 1)
            await owner.close()

            let client = try await FrameClient.connect(port: relayd.port, pki: relayd.pki)
            try await client.hello(maxFrameSize: Self.smallLimit)
            let ack = try await client.subscribeDurable(2, Self.otherLongTopic, credit: 1, durable: Self.longName,
                                                        ackMode: .none)
            #expect(ack.errorCode == .durableFilterMismatch)
            let size = try Frame.subscribeAck(ack).encoded().readableBytes - 4
            #expect(size <= Int(Self.smallLimit), "SUBACK of \(size) bytes")
            #expect(ack.message.hasPrefix("durable \"ddd"), "\(ack.message)")
            #expect(ack.message.hasSuffix("…"), "a shortened message says so: \(ack.message)")
            await client.close()
        }
    }

    @Test("a WELCOME above the client's limit (a long certificate subject) is ERR frame_too_large, then close")
    func welcomeAboveTheLimitIsRefused() async throws {
        try await withRelayd { relayd in
            let units = (1...20).map { "unit\($0)-" + String(repeating: "x", count: 50) }
            let files = try relayd.pki.add("longsubject", .client(commonName: "longsubject", organizationalUnits: units))
            let client = try await FrameClient.connect(port: relayd.port, pki: relayd.pki, as: files)
            try await client.send(.hello(Hello(maxFrameSize: Self.smallLimit, clientName: "spec-test")))
            let first = try await client.next()
            guard case .error(let error) = first else {
                Issue.record("expected ERR frame_too_large in place of WELCOME, got \(String(describing: first))")
                return
            }
            #expect(error.errorCode == .frameTooLarge && error.subscriptionID == 0)
            #expect(error.message.contains("WELCOME"), "\(error.message)")
            #expect(try await client.next() == nil, "the connection closes after the ERR")

            // The same certificate with a larger limit is welcomed.
            let roomy = try await FrameClient.connect(port: relayd.port, pki: relayd.pki, as: files)
            #expect(try await roomy.hello().subject.utf8.count > Int(Self.smallLimit))
            await roomy.close()
        }
    }

    @Test("an ADMINREPLY above the client's limit is refused payload_too_large; the session stays open")
    func adminReplyAboveTheLimitIsRefused() async throws {
        try await withSmallLimitAdminClient(#""read""#) { client in
            for index in 0..<8 {
                _ = try await client.publish("t.\(index)." + String(repeating: "x", count: 240), count: 1,
                                             firstID: UInt64(index + 1))
            }
            try await client.send(.admin(AdminRequest(requestID: 7, operation: "topics")))
            let reply = try await client.nextReply { if case .adminReply = $0 { return true }; return false }
            guard case .adminReply(let answer)? = reply else {
                Issue.record("expected an ADMINREPLY, got \(String(describing: reply))")
                return
            }
            #expect(answer.requestID == 7 && answer.errorCode == .payloadTooLarge, "\(answer.code): \(answer.message)")
            #expect(answer.message.contains("max_frame_size"), "\(answer.message)")
            #expect(try await client.pingBarrier().isEmpty, "the session stays open")
        }
    }

    /// §4.15: a backup's chunks are "each at most 256 KiB and within the
    /// client's frame limit". relayd read the copy in pieces of at least
    /// 4,096 bytes whatever the limit, so at 1,024 every chunk failed to
    /// encode ("could not encode a frame", logged and dropped) and the
    /// final reply still said complete with the full byte count.
    @Test("a backup to a client announcing 1,024 bytes arrives whole, in chunks within the limit")
    func backupChunksFitTheLimit() async throws {
        try await withSmallLimitAdminClient(#""read", "write""#) { client in
            _ = try await client.publish("backup.x", count: 3)
            try await client.send(.admin(AdminRequest(requestID: 9, operation: "backup")))
            var received = 0, chunks = 0, largest = 0
            var last: AdminReply?
            while last == nil {
                guard case .adminReply(let reply)? = try await client.nextReply(where: {
                    if case .adminReply = $0 { return true }; return false
                }) else { break }
                largest = max(largest, try Frame.adminReply(reply).encoded().readableBytes - 4)
                if reply.more { received += reply.body.readableBytes; chunks += 1 } else { last = reply }
            }
            let outcome = try #require(last, "no final ADMINREPLY")
            #expect(outcome.requestID == 9 && outcome.code == 0, "\(outcome.code): \(outcome.message)")
            let summary = String(buffer: outcome.body)
            #expect(summary.contains("\"bytes\":\(received)"), "\(chunks) chunks, \(received) bytes; \(summary)")
            #expect(received > 0 && largest <= Int(Self.smallLimit), "largest frame \(largest) bytes")
        }
    }

    /// relayd granting `admin = [access]`, and a client past HELLO announcing ``smallLimit``.
    private func withSmallLimitAdminClient(_ access: String, _ body: (FrameClient) async throws -> Void) async throws {
        try await withRelayd(acl: RelaydFixture.allowAll + "\nadmin = [\(access)]\n") { relayd in
            let client = try await FrameClient.connect(port: relayd.port, pki: relayd.pki)
            try await client.hello(maxFrameSize: Self.smallLimit)
            try await body(client)
            await client.close()
        }
    }
}
