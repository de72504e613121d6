import Foundation
import NIOCore
import RelayCore
import RelayTestSupport
import RelayWire
import Testing

/// operations.md "Health and readiness": a graceful shutdown takes relayd
/// out of a load balancer's rotation at once, while it still drains.
/// The drain is held open by an uncommitted PUB (``StoreWriteLock`` holds
/// LMDB's writer), so the window between SIGTERM and the exit is an event
/// the test controls, not a race.
@Suite("relayd end to end: /readyz during a graceful shutdown", .serialized)
struct ShutdownReadinessTests {
    @Test("while SIGTERM's drain waits for an uncommitted PUB: /readyz 503 'shutting down', /healthz 200, no new session; once the commit goes through the PUB is acknowledged, the session ends server_shutting_down and relayd exits 0")
    func readyzDuringDrain() async throws {
        try await withRelayd(metrics: true) { relayd in
            let port = try #require(relayd.metricsPort)
            let publisher = try await FrameClient.connect(port: relayd.port, pki: relayd.pki)
            try await publisher.hello()
            let before = try await HTTPProbe.get(port: port, path: "/readyz")
            #expect(before.status == 200, "\(before)")

            let lock = try await StoreWriteLock.acquire(dataDirectory: relayd.dataDirectory)
            defer { lock.release() }
            try await publisher.channel.writeAndFlush(try InFlightReadPauseTests.publishes(1...1, then: nil,
                                                                                          allocator: publisher.channel.allocator))
            let read = await eventually { SocketQueues.unreadBytes(localPort: relayd.port) == 0 }
            #expect(read, "relayd did not read the PUB")

            let stopping = Task { await relayd.terminate() }
            // The event: /readyz turns 503 (SIGTERM arrived; the drain cannot end while the PUB is uncommitted).
            let notReady = await eventuallyValue(timeout: 30) { () -> (status: Int, body: String)? in
                guard let answer = try? await HTTPProbe.get(port: port, path: "/readyz"), answer.status != 200 else { return nil }
                return answer
            }
            #expect(notReady?.status == 503 && notReady?.body == "not ready: shutting down\n", "\(String(describing: notReady))")
            let health = try await HTTPProbe.get(port: port, path: "/healthz")
            #expect(health.status == 200 && health.body == "ok\n", "\(health)")
            let early = try await publisher.framesSoFar()
            #expect(early.isEmpty, "the drain answered before the commit: \(early)")
            // The TLS listener is closed: a new client is not served.
            let newcomer = try? await FrameClient.connect(port: relayd.port, pki: relayd.pki)
            let welcomed = try? await newcomer?.hello()
            #expect(welcomed == nil, "a new session was welcomed during the drain")

            lock.release()
            var frames: [Frame] = []
            while let frame = try await publisher.next(timeout: .seconds(30)) {
                frames.append(frame)
                if case .error = frame { break }
            }
            guard frames.count == 2, case .publishAck(let ack) = frames[0], case .error(let end) = frames[1] else {
                Issue.record("expected PUBACK then ERR, got \(frames)")
                return
            }
            #expect(ack.publishID == 1)
            #expect(end.errorCode == .serverShuttingDown, "\(end)")
            let status = await stopping.value
            #expect(status == 0, "relayd exit status \(String(describing: status)): \(relayd.log)")
        }
    }
}
