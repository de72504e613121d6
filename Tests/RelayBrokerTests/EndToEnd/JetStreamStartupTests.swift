import Foundation
import RelayTestSupport
import Testing

/// relayd started while its NATS servers do not answer yet (all hosts
/// booting together, a cluster still electing its JetStream meta leader):
/// it waits for them up to `[storage.jetstream] startup_timeout`, saying so,
/// then serves; past the timeout it exits with an error that says what to
/// check. The CI run that found this: edge B's stream create timed out after
/// 5 s while the 3-node cluster was still settling, and relayd exited with
/// "create stream RELAY: " (no reason at all).
@Suite("relayd start-up against a NATS cluster that is not there yet", .serialized)
struct JetStreamStartupTests {
    /// The warning relayd logs while it waits (the event the test waits for).
    static func isWaitingLine(_ line: String) -> Bool {
        line.contains("level=warning") && line.contains("startup_timeout")
    }

    static func lines(_ relayd: RelaydFixture) -> [String] {
        (relayd.process?.stdoutLines ?? []) + (relayd.process?.stderrLines ?? [])
    }

    @Test("NATS down when relayd starts: relayd waits (and says so), then serves once NATS answers")
    func waitsForNATS() async throws {
        let nats = try await SingleNATSServer(pki: TLSTestPKI())
        await nats.kill()
        let relayd = try RelaydFixture(pki: nats.pki)
        try relayd.useJetStream(nats)  // the default startup_timeout
        try await withRelayd(relayd, start: false) { relayd in
            let starting = Task { try await relayd.start() }
            // Wait for relayd to report that it is waiting, or to exit. Polled
            // (the fixture keeps the lines; no callback per line).
            let waited = await eventuallyValue(timeout: 30, every: 0.05) { () -> Bool? in
                if Self.lines(relayd).contains(where: Self.isWaitingLine) { return true }
                if let process = relayd.process, !process.isRunning, process.outputClosed { return false }
                return nil
            }
            #expect(waited == true, "relayd did not wait for NATS:\n\(relayd.log)")
            try await nats.restart()
            try await starting.value
            let client = try await FrameClient.connect(port: relayd.port, pki: relayd.pki)
            try await client.hello()
            let acks = try await client.publish("boot.t", count: 3)
            #expect(acks.count == 3)
            await client.close()
        }
    }

    @Test("NATS still down after startup_timeout: relayd exits non-zero naming the servers, the reason and the setting")
    func givesUpAfterStartupTimeout() async throws {
        let nats = try await SingleNATSServer(pki: TLSTestPKI())
        await nats.kill()
        let relayd = try RelaydFixture(pki: nats.pki)
        try relayd.useJetStream(nats, extra: "", startupTimeout: "1s")
        try await withRelayd(relayd, start: false) { relayd in
            let started = ContinuousClock.now
            var refused: (any Error)?
            do { try await relayd.start() } catch { refused = error }
            #expect(refused is RelaydFixtureError, "relayd started without NATS: \(String(describing: refused))")
            let exit = await relayd.process?.waitForExit(timeout: 30)
            #expect(exit != nil && exit != 0)
            // 1 s of waiting plus one last attempt's connect timeout (2 s).
            #expect(ContinuousClock.now - started < .seconds(15))
            let fatal = Self.lines(relayd).first { $0.contains("level=critical") }
            let text = try #require(fatal, "no critical line:\n\(relayd.log)")
            #expect(text.contains(nats.url))
            #expect(text.contains("startup_timeout"))
            // The reason is there: nats.c's status, never an empty string after the colon.
            #expect(!text.contains(": )") && !text.contains(": ;"))
            #expect(text.contains("No server available"))
        }
    }
}
