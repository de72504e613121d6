import Foundation
import NIOCore
import RelayClient
import RelayCore
import RelayTestSupport
import RelayWire
import Testing

/// Every admin command end to end: a real relayd (intermediate-CA PKI,
/// real LMDB), the real relayctl, values asserted from its JSON output.
@Suite("relayctl admin commands")
struct AdminCommandTests {
    @Test("status, connections, subscriptions, durables and topics report what is there")
    func listings() async throws {
        let ids = try AdminTestIdentities()
        try await withRelayd(try ids.fixture()) { relayd in
            let app = relayd.cliArguments(ids.app), ops = relayd.cliArguments(ids.ops)
            try await publish(relayd, ids, topic: "jobs.a", payloads: (1...5).map { "job-\($0)" })
            try await publish(relayd, ids, topic: "other.b", payloads: ["x", "y"])
            // A durable that consumed (and acknowledged) 2 of the 5 jobs, then detached.
            let sub = try await runCLI("relay-sub", ["--topic", "jobs.>", "--durable", "work", "--from", "earliest",
                                                     "--count", "2", "--format", "raw"] + app)
            #expect(sub.status == 0 && sub.stdout == ["job-1", "job-2"], "\(sub.stdout) \(sub.stderr)")
            // A live session with a subscription, whose fingerprint WELCOME tells us.
            let live = try await Subscriber.connect(relayd.clientConfiguration(ids.app))
            let subscription = try await live.subscribe(filter: "live.>")
            let session = try await AdminClient.connect(relayd.adminConfiguration(ids.app))
            let fingerprint = session.welcome.fingerprint.hex

            let connections = try await adminJSON(["connections"] + ops)
            let items = try #require(connections["items"] as? [[String: Any]])
            let mine = try #require(row(items, "fingerprint", fingerprint), "\(items)")
            #expect(mine["principal"] as? String == "app")
            let remote = try #require(mine["remote_address"] as? String)
            #expect(remote.hasPrefix("127.0.0.1:") && Int(remote.dropFirst("127.0.0.1:".count)) != nil, "\(remote)")
            for key in ["id", "connected_since", "messages_in", "messages_out", "subscriptions", "bytes_queued"] {
                #expect(mine[key] != nil, "connections lacks \(key)")
            }

            let subscriptions = try #require(try await adminJSON(["subscriptions"] + ops)["items"] as? [[String: Any]])
            let liveRow = row(subscriptions, "filter", "live.>")
            #expect(liveRow?["principal"] as? String == "app", "\(subscriptions)")

            let durables = try #require(try await adminJSON(["durables"] + ops)["items"] as? [[String: Any]])
            let work = try #require(row(durables, "name", "work"), "\(durables)")
            #expect(work["lag_messages"] as? Int == 3, "lag must be the 3 unacknowledged jobs: \(work)")
            #expect(work["cursor"] as? Int == 2)
            #expect(work["filter"] as? String == "jobs.>")
            #expect(work["principal"] as? String == "app")
            #expect((work["lag_seconds"] as? Double ?? -1) >= 0)
            #expect(work["last_ack"] is String, "the detach committed the cursor: \(work)")

            let topics = try #require(try await adminJSON(["topics"] + ops)["items"] as? [[String: Any]])
            let jobs = try #require(row(topics, "topic", "jobs.a"))
            #expect(jobs["messages"] as? Int == 5 && jobs["first_sequence"] as? Int == 1 && jobs["last_sequence"] as? Int == 5)
            #expect(row(topics, "topic", "other.b")?["messages"] as? Int == 2)

            let status = try await adminJSON(["status"] + ops)
            let digest = try await sha256sum(relayd.configPath)
            #expect(digest != nil && status["config_digest"] as? String == digest, "\(status)")
            #expect(status["data_directory"] as? String == relayd.dataDirectory)
            #expect(status["store_messages"] as? Int == 7)
            #expect((status["connections"] as? Int ?? 0) >= 2)
            for key in ["version", "uptime_seconds", "config_loaded_at", "store_used_bytes", "store_limit_bytes",
                        "messages_in_per_second", "messages_out_per_second"] {
                #expect(status[key] != nil, "status lacks \(key)")
            }
            let table = try await runCLI("relayctl", ["connections"] + ops)
            #expect(table.status == 0 && table.stdout.first?.hasPrefix("ID") == true, "\(table.stdout)")
            #expect(line(in: table.stdout, containing: ["app", String(fingerprint.prefix(16))]) != nil, "\(table.stdout)")

            await session.close()
            subscription.cancel()
            await live.connection.close()
        }
    }

    @Test("a listing above the default frame limit (1,114,112 bytes) still reaches relayctl", .timeLimit(.minutes(2)))
    func listingAboveTheDefaultFrameLimit() async throws {
        let ids = try AdminTestIdentities()
        let count = 4_000
        let fixture = try RelaydFixture(pki: ids.tree.pki, acl: AdminTestIdentities.acl,
                                        extra: "[limits]\nmax_subscriptions = \(count)\n")
        try await withRelayd(fixture) { relayd in
            // 4,000 subscriptions with 255-byte filters: a listing of about 2 MB.
            let client = try await FrameClient.connect(port: relayd.port, pki: relayd.pki, as: ids.app)
            try await client.hello()
            var frames = ByteBuffer()
            for id in 1...count {
                let filter = "f\(id)." + String(repeating: "x", count: 254 - "f\(id)".utf8.count)
                try frames.writeFrame(.subscribe(Subscribe(subscriptionID: UInt32(id), filter: filter, start: .latest,
                                                           durableName: "", initialCredit: 1, ackMode: .none)))
            }
            try await client.sendRaw(Array(frames.readableBytesView))
            var accepted = 0
            while accepted < count, case .subscribeAck(let ack)? = try await client.next() {
                accepted += ack.code == 0 ? 1 : 0
            }
            #expect(accepted == count)
            // relayd used to drop the too-large ADMINREPLY and relayctl waited forever.
            let run = try await runCLI("relayctl", ["subscriptions", "--format", "json"] + relayd.cliArguments(ids.ops),
                                       timeout: 30)
            #expect(run.status == 0, "relayctl subscriptions: \(run.stderr)")
            let parsed = run.stdout.first.flatMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) }
            let listing = try #require(parsed as? [String: Any], "\(run.stderr)")
            #expect((listing["items"] as? [[String: Any]])?.count == count)
            await client.close()
        }
    }

    @Test("purge needs --yes, then removes the topic's messages: a replay from earliest sees none of them")
    func purge() async throws {
        let ids = try AdminTestIdentities()
        try await withRelayd(try ids.fixture()) { relayd in
            let ops = relayd.cliArguments(ids.ops)
            try await publish(relayd, ids, topic: "jobs.a", payloads: ["old-1", "old-2", "old-3"])
            let unconfirmed = try await runCLI("relayctl", ["purge", "jobs.>"] + ops)
            #expect(unconfirmed.status == 64, "\(unconfirmed.stderr)")
            let purged = try await adminJSON(["purge", "jobs.>", "--yes"] + ops)
            #expect(purged["messages"] as? Int == 3, "\(purged)")
            let topics = try #require(try await adminJSON(["topics"] + ops)["items"] as? [[String: Any]])
            #expect(topics.isEmpty, "\(topics)")
            // A marker after the purge: replaying from earliest must start with it.
            try await publish(relayd, ids, topic: "jobs.a", payloads: ["after"])
            let replay = try await runCLI("relay-sub", ["--topic", "jobs.>", "--from", "earliest", "--count", "1",
                                                        "--format", "raw"] + relayd.cliArguments(ids.app))
            #expect(replay.stdout == ["after"], "\(replay.stdout) \(replay.stderr)")
        }
    }

    @Test("disconnect ends that client's session; durable delete forgets the cursor; reload applies")
    func disconnectDeleteReload() async throws {
        let ids = try AdminTestIdentities()
        try await withRelayd(try ids.fixture()) { relayd in
            let ops = relayd.cliArguments(ids.ops)
            try await publish(relayd, ids, topic: "jobs.a", payloads: ["1", "2"])
            let sub = try await runCLI("relay-sub", ["--topic", "jobs.>", "--durable", "work", "--from", "earliest",
                                                     "--count", "1", "--format", "raw"] + relayd.cliArguments(ids.app))
            #expect(sub.status == 0, "\(sub.stderr)")

            let session = try await AdminClient.connect(relayd.adminConfiguration(ids.app))
            let items = try #require(try await adminJSON(["connections"] + ops)["items"] as? [[String: Any]])
            let target = try #require(row(items, "fingerprint", session.welcome.fingerprint.hex))
            let id = try #require(target["id"] as? Int)
            let disconnect = try await runCLI("relayctl", ["disconnect", "\(id)"] + ops)
            #expect(disconnect.status == 0, "\(disconnect.stderr)")
            let closed: Void? = try? await session.closeFuture.get()
            #expect(closed != nil, "the disconnected session's channel closed")
            let after = try #require(try await adminJSON(["connections"] + ops)["items"] as? [[String: Any]])
            #expect(row(after, "id", id) == nil)

            let durables = try #require(try await adminJSON(["durables"] + ops)["items"] as? [[String: Any]])
            let owner = try #require(row(durables, "name", "work")?["owner"] as? String)
            let delete = try await runCLI("relayctl", ["durable", "delete", "work", "--owner", owner] + ops)
            #expect(delete.status == 0, "\(delete.stderr)")
            let left = try #require(try await adminJSON(["durables"] + ops)["items"] as? [[String: Any]])
            #expect(row(left, "name", "work") == nil)
            let again = try await runCLI("relayctl", ["durable", "delete", "work", "--owner", owner] + ops)
            #expect(again.status == 1 && again.stderr.joined().contains("admin_target_not_found"), "\(again.stderr)")

            let reload = try await adminJSON(["reload"] + ops)
            #expect(reload["result"] as? String == "applied")
            let audited = try await relayd.waitForAuditLine { $0.contains("\"reload\"") && $0.contains("\"admin\"") }
            #expect(audited != nil, "the reload trail line names the admin trigger")
        }
    }

    /// An operator reloading a remote broker has only relayctl's output: it
    /// used to say "refused" and point at the broker's log.
    @Test("reload refused: relayctl prints the broker's reason (table and JSON) and exits 1")
    func reloadRefusedSaysWhy() async throws {
        let ids = try AdminTestIdentities()
        try await withRelayd(try ids.fixture()) { relayd in
            let ops = relayd.cliArguments(ids.ops)
            let good = try String(contentsOfFile: relayd.configPath, encoding: .utf8)
            try (good + "\n[reload_typo]\nwatch = true\n").write(toFile: relayd.configPath, atomically: true, encoding: .utf8)
            let table = try await runCLI("relayctl", ["reload"] + ops)
            #expect(table.status == 1, "\(table.stderr)")
            let output = (table.stdout + table.stderr).joined(separator: "\n")
            #expect(output.contains("reload_typo: unknown key"), "\(output)")
            let json = try await runCLI("relayctl", ["reload", "--format", "json"] + ops)
            let line = try #require(json.stdout.first, "\(json.stderr)")
            let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            #expect(object["result"] as? String == "refused")
            #expect((object["reason"] as? String)?.contains("reload_typo: unknown key") == true, "\(line)")
        }
    }

    @Test("top --iterations prints that many refreshes of status and connections")
    func top() async throws {
        let ids = try AdminTestIdentities()
        try await withRelayd(try ids.fixture()) { relayd in
            let run = try await runCLI("relayctl", ["top", "--iterations", "2", "--interval", "0.2", "--format", "json"]
                                       + relayd.cliArguments(ids.viewer))
            #expect(run.status == 0, "\(run.stderr)")
            #expect(run.stdout.count == 2, "\(run.stdout)")
            for line in run.stdout {
                let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
                #expect(object["status"] is [String: Any] && object["connections"] is [Any], "\(line)")
            }
            let table = try await runCLI("relayctl", ["top", "--iterations", "1"] + relayd.cliArguments(ids.viewer))
            #expect(table.status == 0 && line(in: table.stdout, containing: ["ID", "PRINCIPAL"]) != nil, "\(table.stdout)")
        }
    }
}

/// The first row whose `key` equals `value` (a JSON string or integer).
func row<Value: Equatable>(_ items: [[String: Any]], _ key: String, _ value: Value) -> [String: Any]? {
    items.first { ($0[key] as? Value) == value }
}

/// The first line containing every one of `parts`.
func line(in lines: [String], containing parts: [String]) -> String? {
    lines.first { line in parts.allSatisfy(line.contains) }
}

/// Publishes `payloads` (one message each) as `app` with relay-pub.
func publish(_ relayd: RelaydFixture, _ ids: AdminTestIdentities, topic: String, payloads: [String]) async throws {
    let run = try await runCLI("relay-pub", ["--topic", topic, "--lines"] + relayd.cliArguments(ids.app),
                               stdin: payloads.joined(separator: "\n") + "\n")
    #expect(run.status == 0, "relay-pub: \(run.stderr)")
}

/// Runs `relayctl ARGS --format json` and parses its one JSON object.
func adminJSON(_ arguments: [String]) async throws -> [String: Any] {
    let run = try await runCLI("relayctl", arguments + ["--format", "json"])
    #expect(run.status == 0, "relayctl \(arguments.first ?? ""): \(run.stderr)")
    let line = try #require(run.stdout.first, "relayctl \(arguments.first ?? "") printed nothing: \(run.stderr)")
    return try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
}

/// The file's SHA-256 by coreutils' sha256sum: a digest computed apart from the broker's code.
func sha256sum(_ path: String) async throws -> String? {
    let child = try await ChildProcess("/usr/bin/sha256sum", [path])
    child.closeStdin()
    guard await child.waitForExit(timeout: 30) == 0 else { return nil }
    return child.stdoutLines.first?.split(separator: " ").first.map(String.init)
}
