import Foundation
import RelayTestSupport
import Testing

/// `relayctl` admin commands take several `--server` addresses like
/// relay-pub and relay-sub: an address that cannot be reached is skipped
/// for the next one, and when none can be, the exit is 69 with a sentence
/// naming every address tried (docs/exit-codes.md).
@Suite("relayctl admin failover across --server addresses")
struct AdminFailoverTests {
    @Test("status with a dead first address answers from the live second one; every address dead exits 69 naming each")
    func statusFailsOver() async throws {
        let ids = try AdminTestIdentities()
        try await withRelayd(try ids.fixture()) { relayd in
            var ops = relayd.cliArguments(ids.ops)
            #expect(ops[0] == "--server")
            // Ports 1 and 2 on loopback: nothing listens there, so each connect is refused at once.
            ops[1] = "127.0.0.1:1,127.0.0.1:\(relayd.port)"
            let status = try await runCLI("relayctl", ["status", "--format", "json"] + ops, timeout: 15)
            #expect(status.status == 0, "stderr: \(status.stderr)")
            let line = try #require(status.stdout.first, "relayctl status printed nothing: \(status.stderr)")
            let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            #expect(object["data_directory"] as? String == relayd.dataDirectory, "\(object)")

            ops[1] = "127.0.0.1:1,127.0.0.1:2"
            let dead = try await runCLI("relayctl", ["status"] + ops, timeout: 15)
            #expect(dead.status == 69, "stderr: \(dead.stderr)")
            let sentence = dead.stderr.joined(separator: "\n")
            #expect(sentence.contains("127.0.0.1:1") && sentence.contains("127.0.0.1:2"), "stderr: \(sentence)")
            #expect(dead.stdout.isEmpty, "stdout: \(dead.stdout)")
        }
    }
}
