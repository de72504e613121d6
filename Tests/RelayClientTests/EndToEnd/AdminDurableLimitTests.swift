import Foundation
import RelayClient
import RelayTestSupport
import Testing

/// `too_many_durables` says what to do: delete durables no longer needed
/// with `relayctl durable delete`, naming the owner column of `relayctl
/// durables`. Done as it says, the deletion frees a slot at once.
@Suite("relayctl durable delete frees a slot under max_durables")
struct AdminDurableLimitTests {
    @Test("max_durables = 2: the third durable is refused naming relayctl durable delete and the owner; deleting one as told lets the third in")
    func deleteFreesASlot() async throws {
        let ids = try AdminTestIdentities()
        let fixture = try RelaydFixture(pki: ids.tree.pki, acl: AdminTestIdentities.acl, extra: "[limits]\nmax_durables = 2")
        try await withRelayd(fixture) { relayd in
            let app = relayd.cliArguments(ids.app), ops = relayd.cliArguments(ids.ops)
            try await publish(relayd, ids, topic: "jobs.a", payloads: ["1"])
            func consume(_ durable: String) async throws -> (status: Int32?, stderr: [String]) {
                let run = try await runCLI("relay-sub", ["--topic", "jobs.>", "--durable", durable, "--from", "earliest",
                                                         "--count", "1", "--format", "raw"] + app)
                return (run.status, run.stderr)
            }
            for name in ["w1", "w2"] {
                let run = try await consume(name)
                #expect(run.status == 0, "\(name): \(run.stderr)")
            }
            let refused = try await consume("w3")
            let text = refused.stderr.joined(separator: "\n")
            #expect(refused.status != 0 && text.contains("too_many_durables") && text.contains("relayctl durable delete"),
                    "\(refused.status.map(String.init) ?? "none"): \(text)")
            let named = text.firstMatch(of: /--owner ([0-9a-f]{16})/)?.output.1
            let owner = String(try #require(named, "\(text)"))
            let delete = try await runCLI("relayctl", ["durable", "delete", "w1", "--owner", owner] + ops)
            #expect(delete.status == 0, "\(delete.stderr)")
            let admitted = try await consume("w3")
            #expect(admitted.status == 0, "after the deletion: \(admitted.stderr)")
        }
    }
}
