import Foundation
import NIOCore
import RelayCore
import RelayTestSupport
import RelayWire
import Testing

/// A graceful shutdown (SIGTERM) answers the ADMINs it already read, as a
/// client's BYE does (§4.14, §4.15): an operator's `relayctl purge` sent just
/// before the signal learns what it deleted. relayd used to drain the PUBs
/// only, so the purge ran (its messages were gone) while its caller got ERR
/// `server_shutting_down` and never the ADMINREPLY. A backup is not waited
/// for (it can stream for minutes): it ends with an ADMINREPLY
/// `server_shutting_down` saying the copy is incomplete.
@Suite("graceful shutdown answers ADMINs in flight", .serialized)
struct ShutdownAdminTests {
    static let acl = RelaydFixture.allowAll + "\nadmin = [\"read\", \"write\"]\n"

    @Test("a purge read just before SIGTERM is answered (what it deleted), then ERR server_shutting_down")
    func purgeBeforeSigtermIsAnswered() async throws {
        try await withRelayd(acl: Self.acl) { relayd in
            let client = try await FrameClient.connect(port: relayd.port, pki: relayd.pki)
            try await client.hello()
            // Enough messages that the purge is still running when the signal lands.
            let stored = 20_000
            for batch in 0..<(stored / 2_000) {
                _ = try await client.publish("purged.x", count: 2_000, firstID: UInt64(batch * 2_000 + 1))
            }
            var body = ByteBuffer()
            body.writeString(#"{"filter": "purged.>", "confirm": true}"#)
            // The PONG says the ADMIN was read (and handed to its service) before the signal.
            try await client.send(.admin(AdminRequest(requestID: 7, operation: "purge", body: body)))
            let before = try await client.pingBarrier(1)
            #expect(try await relayd.terminate() == 0)
            let frames = before + (try await client.framesUntilClosed())
            let replies = frames.compactMap { frame -> AdminReply? in
                if case .adminReply(let reply) = frame { return reply }
                return nil
            }
            let answer = replies.first { $0.requestID == 7 }
            let purge = try #require(answer, "no ADMINREPLY for the purge; frames: \(frames)")
            #expect(purge.code == 0, "\(purge.code): \(purge.message)")
            #expect(String(buffer: purge.body).contains("\"messages\":\(stored)"), "\(String(buffer: purge.body))")
            guard case .error(let error)? = frames.last else {
                Issue.record("last frame: \(String(describing: frames.last))")
                return
            }
            #expect(error.errorCode == .serverShuttingDown)
        }
    }

    @Test("a backup streaming at SIGTERM ends with ADMINREPLY server_shutting_down (the copy is incomplete), then ERR")
    func backupAtSigtermEndsTyped() async throws {
        try await withRelayd(acl: Self.acl, durability: "async") { relayd in
            let client = try await FrameClient.connect(port: relayd.port, pki: relayd.pki)
            // Small frames: thousands of chunks, so the backup is still streaming at the signal.
            try await client.hello(maxFrameSize: 1_024)
            for batch in 0..<5 {
                _ = try await client.publish("backup.x", count: 500, firstID: UInt64(batch * 500 + 1)) { _ in
                    String(repeating: "b", count: 600)
                }
            }
            try await client.send(.admin(AdminRequest(requestID: 9, operation: "backup")))
            let before = try await client.pingBarrier(2)
            #expect(try await relayd.terminate() == 0)
            let frames = before + (try await client.framesUntilClosed(timeout: .seconds(30)))
            let replies = frames.compactMap { frame -> AdminReply? in
                if case .adminReply(let reply) = frame { return reply }
                return nil
            }
            let chunks = replies.filter(\.more).count
            let outcome = replies.last { !$0.more }
            let final = try #require(outcome, "no final ADMINREPLY after \(chunks) chunks; last frame: \(String(describing: frames.last))")
            #expect(final.requestID == 9 && final.errorCode == .serverShuttingDown, "\(final.code): \(final.message)")
            #expect(final.message.contains("incomplete"), "\(final.message)")
            guard case .error(let error)? = frames.last else {
                Issue.record("last frame: \(String(describing: frames.last))")
                return
            }
            #expect(error.errorCode == .serverShuttingDown)
        }
    }
}
