import Foundation
import RelayTestSupport
import Testing

/// `bench-peers.sh --cluster-table`: the rows BENCH_CLUSTER=1 adds (the
/// median of each side's rounds from bench-cluster.sh's JSON lines, and the
/// 80%-of-direct target), from known inputs.
@Suite("bench-peers cluster table")
struct BenchClusterTableTests {
    private func line(_ side: String, round: Int, rate: Double, p99: Double, ok: Bool = true) -> String {
        let field = side == "edge" ? "published_msgs_per_sec" : "acked_msgs_per_sec"
        return "{\"\(field)\":\(rate),\"publish_ack_p50_us\":1000,\"publish_ack_p99_us\":\(p99),\"ok\":\(ok),"
            + "\"side\":\"\(side)\",\"round\":\(round)}"
    }

    private func table(_ lines: [String]) async throws -> (status: Int32, out: [String]) {
        let directory = try TemporaryDirectory(prefix: "bench-cluster-table")
        defer { directory.remove() }
        let file = directory.url.appendingPathComponent("cluster.jsonl")
        try (lines.joined(separator: "\n") + "\n").write(to: file, atomically: true, encoding: .utf8)
        let child = try await ChildProcess("/bin/bash", [BenchPeersScriptTests.script, "--cluster-table", file.path], environment: [:])
        child.closeStdin()
        guard let status = await child.waitForExit(timeout: 30) else {
            child.signal(SIGKILL)
            throw HarnessError.timeout("bench-peers.sh --cluster-table did not finish:\n\(child.transcript)")
        }
        return (status, child.stdoutLines)
    }

    private func row(_ out: [String], _ prefix: String) throws -> [String] {
        try #require(out.first { $0.hasPrefix(prefix) }, "\(out)").split(separator: " ").map(String.init)
    }

    @Test("medians of three rounds per side; the edge at 80% of direct meets the target, below it misses")
    func mediansAndTarget() async throws {
        let rounds = [(30_000.0, 24_000.0, 20_000.0), (40_000, 28_000, 36_000), (20_000, 10_000, 12_000)]
        var lines: [String] = []
        for (index, (direct, withID, edge)) in rounds.enumerated() {
            lines.append(line("direct", round: index + 1, rate: direct, p99: 50_000 + Double(index) * 10_000))
            lines.append(line("direct_id", round: index + 1, rate: withID, p99: 70_000))
            lines.append(line("edge", round: index + 1, rate: edge, p99: 90_000 - Double(index) * 10_000))
        }
        let met = try await table(lines)
        #expect(met.status == 0)
        let edge = try row(met.out, "Relay edge on R3 JetStream")
        let direct = try row(met.out, "direct nats.c R3 ")
        let withID = try row(met.out, "direct nats.c R3, Nats-Msg-Id each")
        #expect(edge.suffix(3) == ["20000", "80.00", "yes"], "\(edge)")      // medians 20k and 80 ms
        #expect(direct.suffix(3) == ["30000", "60.00", "yes"], "\(direct)")
        #expect(withID.suffix(3) == ["24000", "70.00", "yes"], "\(withID)")
        let verdict = try row(met.out, "  edge acked msg/s >= 80%")
        #expect(verdict.suffix(2) == ["0.67x", "MISSED"], "\(verdict)")      // 20k / 30k

        let exactly = try await table([line("direct", round: 1, rate: 25_000, p99: 1), line("edge", round: 1, rate: 20_000, p99: 1)])
        #expect(try row(exactly.out, "  edge acked msg/s >= 80%").suffix(2) == ["0.80x", "met"])

        let failed = try await table([line("direct", round: 1, rate: 25_000, p99: 1),
                                      line("edge", round: 1, rate: 20_000, p99: 1, ok: false)])
        #expect(try row(failed.out, "Relay edge on R3 JetStream").last == "NO")
    }
}
