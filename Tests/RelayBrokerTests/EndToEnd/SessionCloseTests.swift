import Foundation
import NIOCore
import RelayCore
import RelayTestSupport
import RelayWire
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Issue 14 item 13: how a session ends is recorded as a session end (audit
/// `session_closed` with reason and duration, `relay_sessions_closed_total`),
/// never as a refused connection or a handshake failure.
@Suite("relayd end to end: session_closed", .serialized)
struct SessionCloseTests {
    @Test("relay-sub killed mid-session (TCP close without close_notify): session_closed with reason and duration, no handshake failure, no connection_refused")
    func killedSubscriber() async throws {
        try await withRelayd(metrics: true) { relayd in
            let pki = relayd.pki
            let sub = try await ChildProcess(try ProductLocator.executable("relay-sub"), [
                "--server", "127.0.0.1:\(relayd.port)", "--cert", pki.alice.certificate, "--key", pki.alice.key,
                "--ca", pki.ca.certificate, "--topic", "orders.>"])
            defer { sub.signal(SIGKILL) }
            _ = try await Self.auditEvent("connection_accepted", in: relayd)
            sub.signal(SIGKILL)  // the kernel closes its socket: a FIN, no TLS close_notify
            _ = await sub.waitForExit(timeout: 30)

            // The killed client's kernel sends a FIN, or a reset when relayd's last
            // bytes were still unread (seen under TSan): either names the cause.
            let closed = try await Self.auditEvent("session_closed", in: relayd)
            let reason = try #require(closed["reason"] as? String, "\(closed)")
            #expect(["closed_without_close_notify", "connection_reset"].contains(reason), "\(closed)")
            #expect(closed["principal"] as? String != nil && closed["principal"] as? String != "", "\(closed)")
            let duration = try #require(closed["duration_ms"] as? Int, "no duration_ms in \(closed)")
            #expect(duration >= 0)
            let refused = relayd.auditLines().filter { $0.contains("\"connection_refused\"") }
            #expect(refused.isEmpty, "the session's end was audited as a refused connection: \(refused)")
            let metrics = try await relayd.scrapeMetrics()
            #expect(!metrics.contains("relay_handshake_failures_total{"), "a session end counted as a handshake failure:\n\(metrics)")
            #expect(try await relayd.metric("relay_sessions_closed_total{reason=\"\(reason)\"}") == 1)
        }
    }

    @Test("BYE, a clean TLS close and a broker-side ERR each end with session_closed naming the reason")
    func otherReasons() async throws {
        try await withRelayd(metrics: true) { relayd in

            let polite = try await FrameClient.connect(port: relayd.port, pki: relayd.pki)
            try await polite.hello()
            try await polite.send(.bye(.normal))
            #expect(try await polite.next() == .bye(.normal))  // §4.14: the broker answers BYE, then closes
            #expect(try await polite.next() == nil)
            #expect(try await Self.auditEvent("session_closed", in: relayd, count: 1)["reason"] as? String == "bye")

            let clean = try await FrameClient.connect(port: relayd.port, pki: relayd.pki)
            try await clean.hello()
            await clean.close()  // close_notify, then TCP close
            #expect(try await Self.auditEvent("session_closed", in: relayd, count: 2)["reason"] as? String == "peer_closed")

            let rude = try await FrameClient.connect(port: relayd.port, pki: relayd.pki)
            try await rude.hello()
            try await rude.send(.hello(Hello(maxFrameSize: 1 << 20, sessionID: .none, clientName: "again")))
            #expect(try await Self.auditEvent("session_closed", in: relayd, count: 3)["reason"] as? String == "protocol_violation")
            await rude.close()
            #expect(!(try await relayd.scrapeMetrics()).contains("relay_handshake_failures_total{"))
        }
    }

    /// The `count`-th audit event named `event`, parsed; waits for it (the
    /// trail is written asynchronously, so it is polled with a deadline).
    static func auditEvent(_ event: String, in relayd: RelaydFixture, count: Int = 1) async throws -> [String: Any] {
        let line = await eventuallyValue(timeout: 20, every: 0.05) { () -> String? in
            let matching = relayd.auditLines().filter { $0.contains("\"event\":\"\(event)\"") }
            return matching.count >= count ? matching[count - 1] : nil
        }
        guard let line else {
            throw BrokerTestError.refused("no \(count) \(event) audit events in 20 s:\n\(relayd.auditLines().joined(separator: "\n"))")
        }
        let object = try JSONSerialization.jsonObject(with: Data(line.utf8))
        return try #require(object as? [String: Any])
    }
}
