import Foundation
import NIOCore
import NIOPosix
import RelayBroker
import RelayTestSupport
import Testing

/// Issue 14 item 6 against the real relayd: restarts, SIGKILL, a torn
/// tail and an unauthenticated flood (a second relayd on the same trail:
/// SingleInstanceTests/busyAuditTrail).
// The waits are bound to a name before #expect: written inside
// `#expect(await relayd.waitForAudit { … } != nil)` within a withRelayd
// closure, the next waitForAudit's predicate was the earlier one (this Swift
// toolchain mixed up the two closures): tornTailAfterKill got broker_started
// back when it asked for trail_recovered.
@Suite("Audit trail under relayd", .serialized)
struct AuditRelaydTests {
    static func count(_ events: [AuditEvent], _ kind: String) -> Int {
        events.filter { $0.event == kind }.count
            + events.filter { $0.event == "event_repeated" && $0["repeated_event"] == kind }
                .reduce(0) { $0 + (Int($1["suppressed"] ?? "") ?? -1_000_000) }
    }

    @Test("the chain verifies across a clean restart and a SIGKILL")
    func restartAndKill() async throws {
        try await withRelayd { relayd in
            let status = await relayd.terminate()
            #expect(status == 0, "SIGTERM: exit status \(status.map(String.init) ?? "none (timeout)"):\n\(relayd.process?.transcript ?? "")")
            try await relayd.start()
            let alice = try await FrameClient.connect(port: relayd.port, pki: relayd.pki)
            _ = try await alice.hello()
            let accepted = await relayd.waitForAudit { $0.event == "connection_accepted" }
            #expect(accepted != nil)
            await relayd.kill()
            try await relayd.start()
            let restarted = await relayd.waitForAudit { $0.event == "broker_started" && $0.line > 3 }
            #expect(restarted != nil)
            let starts = relayd.auditEvents().filter { $0.event == "broker_started" }
            #expect(starts.count == 3)
            try await relayd.verifyAuditChain()
        }
    }

    @Test("a torn last line after SIGKILL is recorded as trail_recovered on restart and reported by verify")
    func tornTailAfterKill() async throws {
        try await withRelayd { relayd in
            let started = await relayd.waitForAudit { $0.event == "broker_started" }
            #expect(started != nil)
            await relayd.kill()
            // What a write cut short by the kill (or a full disk) leaves behind.
            let fragment = "{\"ts\":\"2026-12-03T04:00:00.000Z\",\"event\":\"connection_acc"
            let handle = try #require(FileHandle(forWritingAtPath: relayd.auditPath))
            try handle.seekToEnd()
            try handle.write(contentsOf: Data(fragment.utf8))
            try handle.close()
            try await relayd.start()
            let recovered = await relayd.waitForAudit { $0.event == "trail_recovered" }
            #expect(recovered?["torn_bytes"] == String(fragment.utf8.count))
            #expect(recovered?["after_seq"] == "1")
            try await relayd.verifyAuditChain()
            let report = try AuditVerifier.verify(path: relayd.auditPath, key: try AuditKey.load(path: relayd.auditKeyPath))
            let cutShort = report.notices.contains { $0.contains("cut short") }
            #expect(cutShort)
        }
    }

    @Test("relayctl audit verify exits 1 when lines were cut from the end, and when the key is wrong")
    func relayctlRefusesCutEnd() async throws {
        try await withRelayd { relayd in
            let alice = try await FrameClient.connect(port: relayd.port, pki: relayd.pki)
            _ = try await alice.hello()
            let accepted = await relayd.waitForAudit { $0.event == "connection_accepted" }
            #expect(accepted != nil)
            #expect(await relayd.terminate() == 0)
            let lines = relayd.auditLines()
            #expect(lines.count >= 3)
            try (lines.dropLast().joined(separator: "\n") + "\n").write(toFile: relayd.auditPath, atomically: true, encoding: .utf8)
            let cut = try await ChildProcess(try ProductLocator.executable("relayctl"), ["audit", "verify", "--config", relayd.configPath])
            #expect(await cut.waitForExit(timeout: 60) == 1)
            #expect(cut.transcript.contains("truncated"), "\(cut.transcript)")

            let otherKey = relayd.directory.file("other.key")
            try String(repeating: "5a", count: 32).write(toFile: otherKey, atomically: true, encoding: .utf8)
            let wrong = try await ChildProcess(try ProductLocator.executable("relayctl"), ["audit", "verify", "--key", otherKey, relayd.auditPath])
            #expect(await wrong.waitForExit(timeout: 60) == 1)
            #expect(wrong.transcript.contains("line 1"), "\(wrong.transcript)")
        }
    }

    @Test("an unauthenticated connection flood is aggregated: few lines, and the count matches the metric")
    func unauthenticatedFlood() async throws {
        try await withRelayd(metrics: true) { relayd in
            let attempts = 300
            for _ in 0..<attempts {
                let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                    .connect(host: "127.0.0.1", port: relayd.port).get()
                // relayd may close first (it answers garbage with a TLS alert): either way is a refusal.
                try? await channel.writeAndFlush(ByteBuffer(string: "GET / HTTP/1.0\r\n\r\n"))
                try? await channel.close()
            }
            // relayd handles the closes asynchronously: wait until its counter has all of them.
            func failures() async throws -> Int {
                let text = try await relayd.scrapeMetrics()
                return text.split(separator: "\n").filter { $0.hasPrefix("relay_handshake_failures_total{") }
                    .compactMap { $0.split(separator: " ").last.flatMap { Double($0) } }.reduce(0) { $0 + Int($1) }
            }
            // A metric: polled.
            var counted = 0
            _ = try await eventually(timeout: 30, every: 0.1) {
                counted = try await failures()
                return counted >= attempts
            }
            #expect(counted == attempts)
            #expect(await relayd.terminate() == 0)  // close() writes the pending summaries
            let events = relayd.auditEvents()
            let lines = events.filter { $0.event == "connection_refused" || $0["repeated_event"] == "connection_refused" }
            #expect(lines.count <= 6, "\(lines.count) audit lines for \(attempts) refused connections")
            #expect(Self.count(events, "connection_refused") == counted)
        }
    }
}
