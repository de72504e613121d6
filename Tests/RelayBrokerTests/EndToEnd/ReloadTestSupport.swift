import Foundation
import NIOCore
import RelayBroker
import RelayCore
import RelayTLS
import RelayTestSupport
import RelayWire
import Testing

/// One line of relayd's audit trail, every value as text (numbers and
/// booleans as written, arrays joined with ","), with its line number.
struct AuditEvent: Sendable {
    var line: Int
    var fields: [String: String]

    var event: String { fields["event"] ?? "" }
    subscript(key: String) -> String? { fields[key] }

    /// The `ts` field: when relayd recorded the event.
    var timestamp: Date? {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return fields["ts"].flatMap { formatter.date(from: $0) }
    }

    init?(line: Int, text: String) {
        guard let object = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] else { return nil }
        self.line = line
        fields = object.mapValues { value in
            if let list = value as? [Any] { return list.map { "\($0)" }.joined(separator: ",") }
            return "\(value)"
        }
    }
}

extension RelaydFixture {
    func auditEvents() -> [AuditEvent] {
        auditLines().enumerated().compactMap { AuditEvent(line: $0.offset + 1, text: $0.element) }
    }

    /// Polls the audit trail until an event satisfies `predicate` (relayd
    /// writes it asynchronously); nil after `timeout` seconds.
    func waitForAudit(timeout: Double = 20, _ predicate: (AuditEvent) -> Bool) async -> AuditEvent? {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            if let found = auditEvents().first(where: predicate) { return found }
            guard Date() < deadline else { return nil }
            try? await Task.sleep(nanoseconds: 50_000_000)
        }
    }

    /// Polls a metric until `predicate` holds; returns the last value seen.
    func waitForMetric(_ sample: String, timeout: Double = 20, _ predicate: (Double) -> Bool) async throws -> Double? {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            let value = try await metric(sample)
            if let value, predicate(value) { return value }
            guard Date() < deadline else { return value }
            try? await Task.sleep(nanoseconds: 100_000_000)
        }
    }

    /// Stops relayd gracefully (so every audit line is written) and checks
    /// the trail's hash chain with both AuditVerifier and `relayctl audit verify`.
    func verifyAuditChain() async throws {
        let status = await terminate()
        #expect(status == 0, "relayd did not stop cleanly")
        let report = try AuditVerifier.verify(path: auditPath, key: try AuditKey.load(path: auditKeyPath))
        // Every JSON line is in the chain (a torn fragment is not JSON and not counted).
        #expect(report.lines == auditEvents().count)
        #expect(report.recordedLosses.isEmpty)
        let relayctl = try await ChildProcess(try ProductLocator.executable("relayctl"), ["audit", "verify", "--config", configPath])
        let exit = await relayctl.waitForExit(timeout: 60)
        #expect(exit == 0, "relayctl audit verify refused the trail:\n\(relayctl.transcript)")
    }
}

extension FrameClient {
    /// Waits until this client's TLS handshake completed, which means the
    /// broker accepted the connection and answered with its TLS context.
    func waitForHandshake(timeout: Double = 20) async throws -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            let channel = self.channel
            let done = try await channel.eventLoop.submit {
                try channel.pipeline.syncOperations.handler(type: TLSHandler.self).peerChain != nil
            }.get()
            if done { return true }
            try await Task.sleep(nanoseconds: 10_000_000)
        }
        return false
    }

    /// Reads until an ERR arrives; frames read on the way stay queued for
    /// `next`. Nil when the connection closed without one.
    func nextError(timeout: TimeAmount = .seconds(20)) async throws -> ErrorFrame? {
        let frame = try await nextReply(timeout: timeout) { frame in
            if case .error = frame { return true }
            return false
        }
        guard case .error(let error) = frame else { return nil }
        return error
    }

    /// True once the broker closed the connection (clean close or a TLS
    /// error), skipping frames before it; false if it is still open after `within`.
    func waitUntilClosed(within: TimeAmount = .seconds(10)) async -> Bool {
        let deadline = NIODeadline.now() + within
        while NIODeadline.now() < deadline {
            do {
                guard try await next(timeout: deadline - NIODeadline.now()) != nil else { return true }
            } catch FrameClientError.timeout {
                return false
            } catch {
                return true
            }
        }
        return false
    }

    /// Sends one PUB and returns the broker's answer to it (PUBACK or PUBERR).
    func publishReply(_ id: UInt64, _ topic: String) async throws -> Frame? {
        try await send(.publish(Publish(publishID: id, topic: topic, payload: ByteBuffer(string: "p\(id)"))))
        return try await nextReply { frame in
            switch frame {
            case .publishAck(let ack): return ack.publishID == id
            case .publishError(let error): return error.publishID == id
            default: return false
            }
        }
    }
}

/// Seconds from `start` to `end`, for the measured delays the tests print.
func seconds(from start: Date, to end: Date) -> String {
    String(format: "%.3f s", end.timeIntervalSince(start))
}
