import Foundation
import NIOCore
import RelayCore
import RelayTestSupport
import RelayWire
import Testing

/// `[limits] shutdown_grace` (operations.md "Stopping relayd"): how long a
/// SIGTERM waits for a session's answers, and then for admin operations
/// still running, before it goes on. The commits are held back from this
/// process (``StoreWriteLock`` holds LMDB's writer), so a PUB and a purge
/// stay unanswered for as long as the test wants: the grace's end is the
/// event under test, not a race.
@Suite("relayd end to end: the shutdown grace", .serialized)
struct ShutdownGraceTests {
    static let acl = RelaydFixture.allowAll + "\nadmin = [\"read\", \"write\"]\n"

    @Test("shutdown_grace = \"1s\": a PUB and a purge held uncommitted at SIGTERM get no answer; after the grace the session ends server_shutting_down naming both, relayd logs that it closes the store with an admin operation running, and exits 0 once the commits can go through")
    func graceEndsAHeldDrain() async throws {
        try await withRelayd(acl: Self.acl, extra: "[limits]\nshutdown_grace = \"1s\"") { relayd in
            let client = try await FrameClient.connect(port: relayd.port, pki: relayd.pki)
            try await client.hello()
            _ = try await client.publish("grace.x", count: 1, firstID: 1)

            let lock = try await StoreWriteLock.acquire(dataDirectory: relayd.dataDirectory)
            defer { lock.release() }
            var body = ByteBuffer()
            body.writeString(#"{"filter": "grace.>", "confirm": true}"#)
            try await client.send(.admin(AdminRequest(requestID: 9, operation: "purge", body: body)))
            try await client.send(.publish(Publish(publishID: 2, topic: "grace.x", payload: ByteBuffer(string: "held"))))
            // The PONG says both were read (the PUB handed to the blocked writer, the purge to its service).
            let before = try await client.pingBarrier(1)
            #expect(before.isEmpty, "answered while the writer was held: \(before)")

            let stopping = Task { await relayd.terminate() }
            let frames = try await client.framesUntilClosed(timeout: .seconds(30))
            guard case .error(let end)? = frames.last else {
                Issue.record("the session did not end with ERR: \(frames)")
                return
            }
            #expect(frames.count == 1, "answers came while the writer was held: \(frames)")
            #expect(end.errorCode == .serverShuttingDown, "\(end)")
            #expect(end.message.contains("after 1 s it stopped waiting for 1 ADMIN request(s) still running")
                        && end.message.contains("1 PUB(s) still unanswered"), "\(end.message)")
            // The broker then waited the grace for the purge too, and says it closes the store anyway.
            let logged = await eventually(timeout: 30) { relayd.log.contains("closing the store with admin operations still running") }
            #expect(logged, "\(relayd.log)")
            lock.release()
            let status = await stopping.value
            #expect(status == 0, "relayd exit status \(String(describing: status)): \(relayd.log)")
        }
    }
}
