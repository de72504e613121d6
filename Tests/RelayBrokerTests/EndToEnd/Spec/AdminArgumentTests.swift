import Foundation
import NIOCore
import RelayCore
import RelayTestSupport
import RelayWire
import Testing

/// Protocol/relay-v1.md §4.15: an ADMIN whose body carries a key its
/// operation does not take is refused with `invalid_admin_request`, and
/// nothing is done. relayd ignored such keys, so a purge sent with an
/// option this broker does not have (`"older_than": "1h"`) deleted every
/// message under its filter: the caller asked for less than it got.
@Suite("spec §4.15: an ADMIN argument the operation does not take is refused, and nothing is done", .serialized)
struct AdminArgumentTests {
    private static let acl = RelaydFixture.allowAll + "\nadmin = [\"read\", \"write\"]\n"

    private static func body(_ json: String) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeString(json)
        return buffer
    }

    private static func reply(_ client: FrameClient, to requestID: UInt32) async throws -> AdminReply? {
        let frame = try await client.nextReply { frame in
            if case .adminReply(let reply) = frame { return reply.requestID == requestID }
            return false
        }
        guard case .adminReply(let reply)? = frame else { return nil }
        return reply
    }

    @Test("purge with a key it does not take is invalid_admin_request naming the key, and deletes nothing")
    func unknownPurgeKeyDeletesNothing() async throws {
        try await withRelayd(acl: Self.acl) { relayd in
            let client = try await FrameClient.connect(port: relayd.port, pki: relayd.pki)
            try await client.hello()
            _ = try await client.publish("kept.x", count: 2)
            try await client.send(.admin(AdminRequest(requestID: 1, operation: "purge",
                                                      body: Self.body(#"{"filter": "kept.>", "confirm": true, "older_than": "1h"}"#))))
            let refusedFrame = try await Self.reply(client, to: 1)
            let refused = try #require(refusedFrame, "no ADMINREPLY to the purge")
            #expect(refused.code == RelayErrorCode.invalidAdminRequest.rawValue, "\(refused.code): \(refused.message)")
            #expect(refused.message.contains("older_than"), "\(refused.message)")
            // Nothing was deleted: the same purge without the key finds both messages.
            try await client.send(.admin(AdminRequest(requestID: 2, operation: "purge",
                                                      body: Self.body(#"{"filter": "kept.>", "confirm": true}"#))))
            let purgedFrame = try await Self.reply(client, to: 2)
            let purged = try #require(purgedFrame, "no ADMINREPLY to the second purge")
            #expect(purged.code == 0, "\(purged.code): \(purged.message)")
            let outcome = String(buffer: purged.body)
            #expect(outcome.contains("\"messages\":2"), "\(outcome)")
        }
    }

    @Test("every operation refuses a key it does not take; a listing takes none, and an empty body or {} is answered")
    func everyOperationChecksItsKeys() async throws {
        try await withRelayd(acl: Self.acl) { relayd in
            let client = try await FrameClient.connect(port: relayd.port, pki: relayd.pki)
            try await client.hello()
            let refusedBodies: [(String, String)] = [
                ("status", #"{"verbose": true}"#),
                ("topics", #"{"filter": "a.>"}"#),
                ("durable_delete", #"{"name": "d", "owner": "\#(String(repeating: "0", count: 64))", "force": true}"#),
                ("disconnect", #"{"id": 999999, "reason": "x"}"#),
            ]
            var requestID: UInt32 = 10
            for (operation, json) in refusedBodies {
                requestID += 1
                try await client.send(.admin(AdminRequest(requestID: requestID, operation: operation, body: Self.body(json))))
                let replyFrame = try await Self.reply(client, to: requestID)
                let reply = try #require(replyFrame, "no ADMINREPLY to \(operation)")
                #expect(reply.code == RelayErrorCode.invalidAdminRequest.rawValue, "\(operation): \(reply.code) \(reply.message)")
            }
            for json in ["", "{}"] {
                requestID += 1
                try await client.send(.admin(AdminRequest(requestID: requestID, operation: "status", body: Self.body(json))))
                let replyFrame = try await Self.reply(client, to: requestID)
                let reply = try #require(replyFrame, "no ADMINREPLY to status \(json)")
                #expect(reply.code == 0, "status with \(json.isEmpty ? "no body" : json): \(reply.code) \(reply.message)")
            }
        }
    }
}
