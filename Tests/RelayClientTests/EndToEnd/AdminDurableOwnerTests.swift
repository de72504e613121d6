import Foundation
import RelayClient
import RelayTestSupport
import Testing

/// `relayctl durables` prints the owner digest's first 16 hex digits, and
/// operations.md says to take the owner "as `relayctl durables` shows it";
/// `durable delete --owner` then refused that with "not a 64-digit hex owner
/// digest", so the table was no use for the one command that needs it.
@Suite("relayctl durable delete: the owner as the table shows it")
struct AdminDurableOwnerTests {
    @Test("durable delete takes the owner column of relayctl durables (a unique prefix of the digest)")
    func ownerFromTheTable() async throws {
        let ids = try AdminTestIdentities()
        try await withRelayd(try ids.fixture()) { relayd in
            let ops = relayd.cliArguments(ids.ops)
            try await publish(relayd, ids, topic: "jobs.a", payloads: ["1"])
            let sub = try await runCLI("relay-sub", ["--topic", "jobs.>", "--durable", "work", "--from", "earliest",
                                                     "--count", "1", "--format", "raw"] + relayd.cliArguments(ids.app))
            #expect(sub.status == 0, "\(sub.stderr)")
            let table = try await runCLI("relayctl", ["durables"] + ops)
            let workRow = table.stdout.first { $0.hasPrefix("work ") }
            let row = try #require(workRow, "\(table.stdout)")
            let shown = try #require(row.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first.map(String.init))
            #expect(shown.count < 64, "the table shows the whole digest now: \(row)")

            // Fewer digits than relayctl looks up went to the broker as a whole
            // digest and came back "not a 64-digit hex owner digest" (wave 17).
            let short = try await runCLI("relayctl", ["durable", "delete", "work", "--owner", String(shown.prefix(4))] + ops)
            #expect(short.status == 64 && short.stderr.joined().contains("at least 8"), "\(short.stderr)")
            let unknown = try await runCLI("relayctl", ["durable", "delete", "work", "--owner", "00000000"] + ops)
            #expect(unknown.status == 1 && unknown.stderr.joined().contains("no durable"), "\(unknown.stderr)")
            let delete = try await runCLI("relayctl", ["durable", "delete", "work", "--owner", shown] + ops)
            #expect(delete.status == 0, "\(delete.stderr)")
            let left = try #require(try await adminJSON(["durables"] + ops)["items"] as? [[String: Any]])
            #expect(left.isEmpty, "\(left)")
        }
    }
}
