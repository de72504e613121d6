import Foundation
import RelayTestSupport
import Testing

/// `scripts/bench-peers.sh`, the side-by-side script: its table and target
/// verdicts from known inputs, and a short run of every Relay scenario it
/// drives (without the peers, which need their own harness and minutes).
@Suite("bench-peers script", .serialized)
struct BenchPeersScriptTests {
    static let repository = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()
    static var script: String { repository.appendingPathComponent("scripts/bench-peers.sh").path }

    func runScript(_ arguments: [String], environment: [String: String], timeout: Double) async throws
        -> (status: Int32, stdout: [String], stderr: [String]) {
        let child = try await ChildProcess("/bin/bash", [Self.script] + arguments, environment: environment)
        child.closeStdin()
        guard let status = await child.waitForExit(timeout: timeout) else {
            child.signal(SIGKILL)
            throw HarnessError.timeout("bench-peers.sh did not finish within \(timeout) s:\n\(child.transcript)")
        }
        return (status, child.stdoutLines, child.stderrLines)
    }

    /// The verdict printed on the target line that contains `name`.
    func verdict(_ lines: [String], _ name: String) -> String? {
        lines.first { $0.contains(name) }?.split(separator: " ").last.map(String.init)
    }

    @Test("--table joins Relay's and the peers' results: ratios per row, and each target met or missed by its threshold")
    func tableFromKnownResults() async throws {
        let directory = try TemporaryDirectory(prefix: "bench-peers-table")
        defer { directory.remove() }
        let relay = directory.url.appendingPathComponent("relay.jsonl")
        let peers = directory.url.appendingPathComponent("peers.jsonl")
        func relayRow(_ scenario: String, _ mode: String, size: Int, subs: Int, pub: Double, deliv: Double, p99: Double,
                      mbs: Double, extra: String = "") -> String {
            "{\"scenario\":\"\(scenario)\",\"durability\":\"\(mode)\",\"size\":\(size),\"subscribers\":\(subs),"
                + "\"published_msgs_per_sec\":\(pub),\"delivered_msgs_per_sec\":\(deliv),\"publish_ack_p50_us\":1000,"
                + "\"publish_ack_p99_us\":\(p99),\"e2e_p50_us\":1000,\"e2e_p99_us\":2000,\"mb_per_sec\":\(mbs),\"lost\":0,"
                + "\"published\":1000,\"broker_cpu_s\":0.004,\"client_cpu_s\":0.003\(extra),\"ok\":true}"
        }
        let relayLines = [
            relayRow("pubsub", "fsync", size: 128, subs: 1, pub: 300_000, deliv: 300_000, p99: 4_000, mbs: 38.4),
            relayRow("pubsub", "fsync", size: 4096, subs: 1, pub: 85_000, deliv: 85_000, p99: 9_000, mbs: 348.2),
            relayRow("fanout", "fsync", size: 128, subs: 4, pub: 300_000, deliv: 1_200_000, p99: 6_000, mbs: 38.4),
            relayRow("pubsub", "async", size: 128, subs: 1, pub: 900_000, deliv: 900_000, p99: 2_000, mbs: 115.2),
            relayRow("pubsub", "fsync", size: 128, subs: 1, pub: 10_000, deliv: 10_000, p99: 1_500, mbs: 1.3,
                     extra: ",\"offered_msgs_per_sec\":10000"),
            relayRow("pubsub", "async", size: 128, subs: 1, pub: 10_000, deliv: 10_000, p99: 800, mbs: 1.3,
                     extra: ",\"offered_msgs_per_sec\":10000"),
            "{\"scenario\":\"replay\",\"durability\":\"fsync\",\"count\":1000000,\"delivered_msgs_per_sec\":2100000,\"ok\":true}",
            "{\"scenario\":\"connect\",\"durability\":\"fsync\",\"count\":2000,\"handshakes_per_sec\":900,\"ok\":true}",
            "{\"scenario\":\"disk\",\"durability\":\"fsync\",\"count\":1000,\"sync_p50_us\":1500,\"sync_p99_us\":4200,\"ok\":true}",
            "{\"scenario\":\"idle\",\"durability\":\"fsync\",\"count\":2000,\"rss_per_connection_bytes\":40000,\"ok\":true}",
        ]
        func peerRow(_ broker: String, _ scenario: String, size: Int, subs: Int, pub: Double) -> String {
            "{\"tool\":\"t\",\"broker\":\"\(broker)\",\"scenario\":\"\(scenario)\",\"size\":\(size),\"subs\":\(subs),"
                + "\"pub_msgs_per_s\":\(pub),\"pub_mb_per_s\":1.0,\"e2e_msgs_per_s\":\(pub * Double(subs)),\"ack_p50_us\":1000,"
                + "\"ack_p99_us\":2000,\"e2e_p50_us\":1000,\"e2e_p99_us\":2000,\"lost\":0,\"published\":1000,"
                + "\"broker_cpu_s\":0.01,\"client_cpu_s\":0.01,\"ok\":true,\"error\":\"\"}"
        }
        let peerLines = [
            peerRow("mosquitto", "mqtt_qos1", size: 128, subs: 1, pub: 40_000),
            peerRow("nats-server", "js_file_async", size: 128, subs: 1, pub: 150_000),
            peerRow("nats-server", "nats_core", size: 128, subs: 1, pub: 1_200_000),
            peerRow("nats-server", "js_file_async", size: 4096, subs: 1, pub: 40_000),
            peerRow("nats-server", "js_file_async_fanout", size: 128, subs: 4, pub: 75_000),
        ]
        try (relayLines.joined(separator: "\n") + "\n").write(to: relay, atomically: true, encoding: .utf8)
        try (peerLines.joined(separator: "\n") + "\n").write(to: peers, atomically: true, encoding: .utf8)

        let run = try await runScript(["--table", relay.path, peers.path],
                                      environment: ["SIZES": "128 4096", "FANOUT": "4"], timeout: 30)
        #expect(run.status == 0, "\(run.stderr)")
        let out = run.stdout
        // Ratios: Relay's acked msg/s over each peer's, on Relay's row.
        let fsyncRow = try #require(out.first { $0.hasPrefix("relay (fsync)") && $0.contains(" 128 ") && $0.contains("300000") })
        #expect(fsyncRow.contains("7.50x"), "\(fsyncRow)")   // 300k / Mosquitto 40k
        #expect(fsyncRow.contains("2.00x"), "\(fsyncRow)")   // 300k / JetStream 150k
        #expect(fsyncRow.contains("0.25x"), "\(fsyncRow)")   // 300k / core 1.2M
        #expect(out.contains { $0.hasPrefix("mosquitto mqtt_qos1") })
        // Targets at and around their thresholds.
        #expect(verdict(out, ">= 2x NATS JetStream") == "met")            // exactly 2.00x
        #expect(verdict(out, ">= 6x Mosquitto") == "met")                 // 7.50x
        #expect(verdict(out, "p99 <= 5 ms at full load") == "met")        // 4 ms
        #expect(verdict(out, "deliveries/s") == "met")                    // 1.2M
        #expect(verdict(out, "4 KiB >= 400 MB/s") == "MISSED")            // 348.2 MB/s
        #expect(verdict(out, "replay of 1000000") == "met")
        #expect(verdict(out, "handshakes >= 1,000/s") == "MISSED")        // 900/s
        #expect(verdict(out, "idle RSS") == "met")                        // 39 KiB
        #expect(verdict(out, "70% of NATS core") == "met")                // 900k / 1.2M = 0.75
        #expect(out.contains { $0.contains("two flushes") && $0.contains("1.50 / 4.20 ms") }, "\(out)")
        let paced = out.filter { $0.contains("p99 <= 1 ms at 10000 msg/s offered") }
        #expect(paced.count == 2, "\(out)")
        #expect(paced.first?.hasSuffix("MISSED") == true)                 // fsync 1.5 ms
        #expect(paced.last?.hasSuffix("met") == true)                     // async 0.8 ms
    }

    @Test("--table with rows of both load generators names the client on every Relay row and checks each target once per client")
    func tableWithBothClients() async throws {
        let directory = try TemporaryDirectory(prefix: "bench-peers-clients")
        defer { directory.remove() }
        let relay = directory.url.appendingPathComponent("relay.jsonl")
        func row(_ client: String, _ scenario: String, pub: Double, deliv: Double, extra: String = "") -> String {
            "{\"scenario\":\"\(scenario)\",\"client\":\"\(client)\",\"durability\":\"fsync\",\"size\":128,\"subscribers\":1,"
                + "\"published_msgs_per_sec\":\(pub),\"delivered_msgs_per_sec\":\(deliv),\"publish_ack_p50_us\":1000,"
                + "\"publish_ack_p99_us\":3000,\"e2e_p50_us\":1000,\"e2e_p99_us\":2000,\"mb_per_sec\":1,\"lost\":0,"
                + "\"published\":1000,\"broker_cpu_s\":0.004,\"client_cpu_s\":0.003\(extra),\"ok\":true}"
        }
        let lines = [
            row("relay-swift", "pubsub", pub: 200_000, deliv: 200_000),
            row("relay-c", "pubsub", pub: 320_000, deliv: 320_000),
            row("relay-swift", "fanout", pub: 200_000, deliv: 800_000),
            row("relay-c", "fanout", pub: 300_000, deliv: 1_200_000),
            "{\"scenario\":\"connect\",\"client\":\"relay-swift\",\"durability\":\"fsync\",\"count\":2000,\"handshakes_per_sec\":800,\"ok\":true}",
            "{\"scenario\":\"connect\",\"client\":\"relay-c\",\"durability\":\"fsync\",\"count\":2000,\"handshakes_per_sec\":1500,\"ok\":true}",
        ]
        try (lines.joined(separator: "\n") + "\n").write(to: relay, atomically: true, encoding: .utf8)
        let run = try await runScript(["--table", relay.path, "/dev/null"], environment: ["SIZES": "128", "FANOUT": "4"], timeout: 30)
        #expect(run.status == 0, "\(run.stderr)")
        let out = run.stdout
        #expect(out.contains { $0.hasPrefix("relay (fsync) swift client") && $0.contains("200000") }, "\(out)")
        #expect(out.contains { $0.hasPrefix("relay (fsync) c client") && $0.contains("320000") }, "\(out)")
        // One block of targets per client, the Swift client's first; each verdict from its own client's figures.
        let swift = try #require(out.firstIndex { $0 == "targets (relay fsync, swift client):" }, "\(out)")
        let c = try #require(out.firstIndex { $0 == "targets (relay fsync, c client):" }, "\(out)")
        #expect(swift < c)
        let swiftBlock = Array(out[swift..<c]), cBlock = Array(out[c...])
        #expect(verdict(swiftBlock, "deliveries/s") == "MISSED")   // 800k
        #expect(verdict(cBlock, "deliveries/s") == "met")          // 1.2M
        #expect(verdict(swiftBlock, "handshakes >= 1,000/s") == "MISSED")
        #expect(verdict(cBlock, "handshakes >= 1,000/s") == "met")
    }

    @Test("a short run without the peers drives every Relay scenario of the script and every check passes")
    func shortRunWithoutPeers() async throws {
        let work = try TemporaryDirectory(prefix: "bench-peers-run")
        defer { work.remove() }
        let environment = [
            "RELAY_BIN_DIR": ProductLocator.productsDirectory.path, "PEERS": "0", "BENCH_WORKDIR": work.url.path,
            "N": "300", "SIZES": "128 512", "WINDOW": "100", "FANOUT": "2", "WARMUP": "0", "SCEN_TIMEOUT": "30",
            "RELAY_DURABILITY": "fsync async", "REPLAY_N": "500", "CONNECT_N": "10", "IDLE_N": "10",
            "RATE": "2000", "RATE_N": "200",
        ]
        let run = try await runScript([], environment: environment, timeout: 300)
        #expect(run.status == 0, "\(run.stderr)")
        let out = run.stdout
        let rows = out.filter { $0.hasPrefix("relay (") }
        // 1:1 at two sizes and fan-out, once per durability mode and per client (RELAY_CLIENTS="swift c" by default).
        #expect(rows.count == 12, "\(out)")
        #expect(rows.filter { $0.contains(" c client ") }.count == 6, "\(out)")
        #expect(rows.filter { $0.contains(" swift client ") }.count == 6, "\(out)")
        for row in rows { #expect(row.contains(" yes"), "a Relay row failed its checks: \(row)") }
        // Every scenario's JSON line was kept, and none failed.
        let results = try String(contentsOf: try #require(Self.relayResults(in: work.url)), encoding: .utf8)
            .split(separator: "\n").map(String.init)
        let scenarios = results.compactMap { line in
            (try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])?["scenario"] as? String
        }
        // Every case twice (relayctl bench, then relay_bench.c), except disk and idle (relayctl only).
        #expect(scenarios.sorted() == ["connect", "connect", "disk", "fanout", "fanout", "fanout", "fanout", "idle"]
                    + Array(repeating: "pubsub", count: 12) + ["replay", "replay"], "\(results)")
        #expect(results.filter { $0.contains("\"client\":\"relay-c\"") }.count == 10, "\(results)")
        for line in results { #expect(line.contains("\"ok\":true"), "\(line)") }
        for header in ["targets (relay fsync, swift client):", "targets (relay async, swift client):",
                       "targets (relay fsync, c client):", "targets (relay async, c client):"] {
            #expect(out.contains { $0.hasPrefix(header) }, "no '\(header)' in \(out)")
        }
    }

    static func relayResults(in work: URL) -> URL? {
        let runs = work.appendingPathComponent("relay")
        guard let ids = try? FileManager.default.contentsOfDirectory(atPath: runs.path), let id = ids.first else { return nil }
        return runs.appendingPathComponent(id).appendingPathComponent("relay.jsonl")
    }
}
