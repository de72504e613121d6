import Foundation
import RelayTestSupport
import Testing

/// relayd prints "relayd listening on …" when it is ready; a supervisor may
/// signal it from then on. A SIGTERM right after that line must still be a
/// graceful stop (exit 0, `broker_stopped` in the audit trail), and a SIGHUP
/// must be a reload, never the default action of the signal (which kills
/// the process). Found under ASan, where the window between that line and
/// the signal handlers was wide enough for `AuditRelaydTests` to hit it.
@Suite("relayd end to end: signals right after start", .serialized)
struct EarlySignalTests {
    static let rounds = 12

    @Test("SIGTERM as soon as relayd says it is listening: a clean stop every time")
    func sigtermAtOnce() async throws {
        try await withRelayd(start: false) { relayd in
            for round in 1...Self.rounds {
                try await relayd.start()
                let status = await relayd.terminate()
                let transcript = relayd.process?.transcript ?? ""
                #expect(status == 0, "round \(round): exit status \(status.map(String.init) ?? "none"):\n\(transcript)")
                #expect(transcript.contains("relayd stopped"), "round \(round): no graceful stop:\n\(transcript)")
                guard status == 0 else { return }
            }
            let stops = relayd.auditEvents().filter { $0.event == "broker_stopped" }.count
            #expect(stops == Self.rounds, "\(stops) broker_stopped events for \(Self.rounds) SIGTERMs")
        }
    }

    @Test("SIGHUP as soon as relayd says it is listening: a reload, and relayd keeps serving")
    func sighupAtOnce() async throws {
        try await withRelayd(start: false) { relayd in
            for round in 1...Self.rounds {
                try await relayd.start()
                relayd.reload()
                // The reload is the event: its audit line (one per round so far).
                let reloaded = await relayd.waitForAudit { event in
                    event.event == "reload" && relayd.auditEvents().filter { $0.event == "reload" }.count >= round
                }
                #expect(reloaded != nil, "round \(round): no reload recorded:\n\(relayd.process?.transcript ?? "")")
                let client = try await FrameClient.connect(port: relayd.port, pki: relayd.pki)
                let welcome = try await client.hello()
                #expect(!welcome.principal.isEmpty)
                await client.close()
                let status = await relayd.terminate()
                #expect(status == 0, "round \(round): exit status \(status.map(String.init) ?? "none"):\n\(relayd.process?.transcript ?? "")")
                guard reloaded != nil, status == 0 else { return }
            }
        }
    }
}
