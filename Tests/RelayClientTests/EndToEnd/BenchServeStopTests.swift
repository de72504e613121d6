import Foundation
import RelayTestSupport
import Testing

/// `relayctl bench serve` stopped by SIGTERM (as scripts/bench-peers.sh and
/// Ctrl-C stop it) exits 128 + 15 after stopping its relayd. Its main loop
/// used to notice relayd gone before the signal handler's exit and reported
/// "relayd exited on its own" with exit 1 (seen in CI, in
/// CLoadGeneratorTests, once in four stops).
@Suite("relayctl bench serve: stopped by SIGTERM", .serialized)
struct BenchServeStopTests {
    @Test("SIGTERM, eight times: every stop exits 143, never 'exited on its own', and relayd is gone")
    func sigtermExits143() async throws {
        for round in 0..<8 {
            let directory = try TemporaryDirectory(prefix: "bench-serve-stop")
            defer { directory.remove() }
            let serve = try await ChildProcess(try ProductLocator.executable("relayctl"), [
                "bench", "serve", "--relayd", try ProductLocator.executable("relayd"), "--work-dir", directory.path,
            ])
            defer { serve.signal(SIGKILL) }
            let line = await serve.waitForLine(timeout: 60) { $0.hasPrefix("{") }
            let json = try #require(line, "round \(round): no JSON line:\n\(serve.transcript)")
            let fields = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
            let relayd = Int32(try #require(fields["pid"] as? Int, "no pid: \(json)"))
            serve.signal(SIGTERM)
            let status = await serve.waitForExit(timeout: 30)
            #expect(status == 128 + SIGTERM, "round \(round): exit \(String(describing: status)):\n\(serve.transcript)")
            #expect(!serve.stderrLines.contains { $0.contains("exited on its own") }, "round \(round):\n\(serve.transcript)")
            #expect(kill(relayd, 0) != 0, "round \(round): relayd (pid \(relayd)) outlived bench serve")
        }
    }
}
