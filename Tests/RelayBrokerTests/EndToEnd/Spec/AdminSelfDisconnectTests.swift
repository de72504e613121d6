import Foundation
import NIOCore
import RelayCore
import RelayTestSupport
import RelayWire
import Testing

/// Protocol/relay-v1.md §4.15: "The answer is one ADMINREPLY." A `disconnect`
/// naming the caller's own connection ran (ERR `disconnected_by_operator`,
/// then close) but its ADMINREPLY never came: the session was closed before
/// the reply was written.
@Suite("spec §4.15: a disconnect of the caller's own connection is answered", .serialized)
struct AdminSelfDisconnectTests {
    @Test("disconnect of the caller's own connection: ADMINREPLY, then ERR disconnected_by_operator, then close")
    func selfDisconnectIsAnswered() async throws {
        try await withRelayd(acl: RelaydFixture.allowAll + "\nadmin = [\"read\", \"write\"]\n") { relayd in
            let client = try await FrameClient.connect(port: relayd.port, pki: relayd.pki)
            try await client.hello()
            try await client.send(.admin(AdminRequest(requestID: 1, operation: "connections")))
            guard case .adminReply(let listing)? = try await client.next() else {
                Issue.record("no ADMINREPLY to connections")
                return
            }
            struct Rows: Decodable { struct Row: Decodable { var id: UInt64 }; var items: [Row] }
            let rows = try JSONDecoder().decode(Rows.self, from: Data(listing.body.readableBytesView))
            let own = try #require(rows.items.first?.id, "no connection listed")
            var body = ByteBuffer()
            body.writeString("{\"id\": \(own)}")
            try await client.send(.admin(AdminRequest(requestID: 2, operation: "disconnect", body: body)))
            let frames = try await client.framesUntilClosed()
            guard frames.count == 2, case .adminReply(let reply) = frames[0], case .error(let error) = frames[1] else {
                Issue.record("expected ADMINREPLY then ERR, got \(frames)")
                return
            }
            #expect(reply.requestID == 2 && reply.code == 0, "\(reply.code): \(reply.message)")
            #expect(error.errorCode == .disconnectedByOperator)
        }
    }
}
