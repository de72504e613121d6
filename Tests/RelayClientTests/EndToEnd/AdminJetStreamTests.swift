import Foundation
import RelayClient
import RelayTestSupport
import Testing

/// relayctl on the cluster backend (`[storage] backend = "jetstream"`): two
/// relayd edges on one real nats-server stream, the real relayctl, relay-pub
/// and relay-sub. What JetStream answers honestly works on every edge
/// (durables, durable delete, topics, purge); what it cannot give is absent
/// from the JSON, not made up; backup says what to use instead
/// (docs/cluster.md, "Operator commands on a cluster edge").
@Suite("relayctl on jetstream edges", .serialized)
struct AdminJetStreamTests {
    /// Every identity of these tests may read and write the admin surface.
    static let adminRule = """
    [[acl.rule]]
    name = "operators"
    admin = ["read", "write"]
    """

    @Test("durables on both edges, a durable delete refused while attached here, and freeing a max_durables slot across edges")
    func durablesAcrossEdges() async throws {
        let nats = try await SingleNATSServer(pki: TLSTestPKI())
        try await withTwoJetStreamEdges(nats, extra: "[limits]\nmax_durables = 2\n\n" + Self.adminRule) { a, b in
            try await publishLines(a, topic: "jobs.a", (1...5).map { "job-\($0)" })
            // A durable that consumed (and acknowledged) 2 of the 5 jobs through edge A, then detached.
            let sub = try await runCLI("relay-sub", ["--topic", "jobs.>", "--durable", "work", "--from", "earliest",
                                                     "--count", "2", "--format", "raw"] + a.cliArguments())
            #expect(sub.status == 0 && sub.stdout == ["job-1", "job-2"], "\(sub.stdout) \(sub.stderr)")
            // Edge B never saw it attached: it lists the cursor from the shared bucket.
            let listed = try await eventuallyValue(timeout: 10, every: 0.05) { () async throws -> [String: Any]? in
                let run = try await runCLI("relayctl", ["durables", "--format", "json"] + b.cliArguments())
                #expect(run.status == 0, "relayctl durables on edge B: \(run.stderr)")
                let items = try Self.items(run)
                return row(items, "name", "work").flatMap { ($0["cursor"] as? Int) == 2 ? $0 : nil }
            }
            let work = try #require(listed, "edge B never listed durable work at cursor 2")
            #expect(work["filter"] as? String == "jobs.>", "\(work)")
            #expect(work["lag_messages"] as? Int == 3 && work["lag_capped"] as? Bool == false, "\(work)")
            #expect(work["attached"] as? Bool == false && (work["lag_seconds"] as? Double ?? -1) >= 0, "\(work)")
            let owner = try #require(work["owner"] as? String)
            #expect(owner.count == 64, "\(owner)")
            let table = try await runCLI("relayctl", ["durables"] + b.cliArguments())
            #expect(table.status == 0 && line(in: table.stdout, containing: ["work", String(owner.prefix(16)), "jobs.>"]) != nil,
                    "\(table.stdout) \(table.stderr)")

            // Attached on edge A: edge A refuses to delete it, as in single-node mode.
            let live = try await Subscriber.connect(a.clientConfiguration())
            let attached = try await live.subscribe(filter: "jobs.>", from: .earliest, durable: "work")
            _ = try await take(1, from: attached)
            let inUse = try await runCLI("relayctl", ["durable", "delete", "work", "--owner", owner] + a.cliArguments())
            #expect(inUse.status == 1 && inUse.stderr.joined().contains("durable_in_use"), "\(inUse.status) \(inUse.stderr)")
            attached.cancel()
            await live.connection.close()

            // max_durables = 2: a second one held, a third refused on edge B ...
            let second = try await runCLI("relay-sub", ["--topic", "jobs.>", "--durable", "second", "--from", "earliest",
                                                        "--count", "1", "--format", "raw"] + a.cliArguments())
            #expect(second.status == 0, "\(second.stderr)")
            // Its cursor is a bucket put after relay-sub's ACK: listed once stored, then edge B counts it.
            let stored = try await eventually(timeout: 10, every: 0.05) {
                row(try Self.items(try await runCLI("relayctl", ["durables", "--format", "json"] + b.cliArguments())),
                    "name", "second") != nil
            }
            #expect(stored, "durable second never listed")
            let third = try await runCLI("relay-sub", ["--topic", "jobs.>", "--durable", "third", "--from", "earliest",
                                                       "--count", "1", "--format", "raw"] + b.cliArguments())
            #expect(third.status != 0 && third.stderr.joined().contains("too_many_durables"), "\(third.stderr)")
            // ... until relayctl on edge B deletes the first (not attached anywhere any more): the slot is free on both edges.
            let deleted = try await runCLI("relayctl", ["durable", "delete", "work", "--owner", String(owner.prefix(16)),
                                                        "--format", "json"] + b.cliArguments())
            #expect(deleted.status == 0, "relayctl durable delete on edge B: \(deleted.stdout) \(deleted.stderr)")
            let gone = try Self.items(try await runCLI("relayctl", ["durables", "--format", "json"] + a.cliArguments()))
            #expect(row(gone, "name", "work") == nil && row(gone, "name", "second") != nil, "\(gone)")
            let again = try await runCLI("relayctl", ["durable", "delete", "work", "--owner", owner] + a.cliArguments())
            #expect(again.status == 1 && again.stderr.joined().contains("admin_target_not_found"), "\(again.stderr)")
            let thirdAgain = try await runCLI("relay-sub", ["--topic", "jobs.>", "--durable", "third", "--from", "earliest",
                                                            "--count", "1", "--format", "raw"] + b.cliArguments())
            #expect(thirdAgain.status == 0 && thirdAgain.stdout == ["job-1"], "\(thirdAgain.stdout) \(thirdAgain.stderr)")
        }
    }

    /// A durable attached on edge B is deleted through edge A: B's next
    /// cursor commit is a compare-and-set on the key's revision, finds the
    /// key purged and ends the subscription with `durable_deleted` instead of
    /// storing the cursor again; B's detach stores nothing either
    /// (docs/cluster.md "Durable cursors").
    @Test("a durable attached on the other edge: the delete holds, and that edge ends the subscription with durable_deleted")
    func deleteWhileAttachedElsewhere() async throws {
        let nats = try await SingleNATSServer(pki: TLSTestPKI())
        try await withTwoJetStreamEdges(nats, extra: Self.adminRule) { a, b in
            try await publishLines(a, topic: "jobs.a", ["j1", "j2"])
            let live = try await Subscriber.connect(b.clientConfiguration())
            let attached = try await live.subscribe(filter: "jobs.>", from: .earliest, durable: "elsewhere")
            let first = try await take(1, from: attached)
            attached.ack(try #require(first.first))
            let listed = try await eventuallyValue(timeout: 10, every: 0.05) { () async throws -> [String: Any]? in
                row(try Self.items(try await runCLI("relayctl", ["durables", "--format", "json"] + a.cliArguments())), "name", "elsewhere")
            }
            let owner = try #require(listed?["owner"] as? String, "durable elsewhere never listed on edge A")
            #expect(listed?["attached"] as? Bool == false, "edge A does not see edge B's sessions: \(String(describing: listed))")
            let deleted = try await runCLI("relayctl", ["durable", "delete", "elsewhere", "--owner", owner] + a.cliArguments())
            #expect(deleted.status == 0, "\(deleted.stderr)")
            let empty = try Self.items(try await runCLI("relayctl", ["durables", "--format", "json"] + a.cliArguments()))
            #expect(row(empty, "name", "elsewhere") == nil, "\(empty)")
            // Edge B's session acknowledges the next message: the commit finds the key gone and ends the subscription.
            let second = try await take(1, from: attached)
            attached.ack(try #require(second.first))
            let ended = await end(of: attached, timeout: 10)
            // The iteration ends with a typed error: usage (64), not retried.
            let error = ended as? RelayClientError
            #expect(error?.code == .durableDeleted && error?.exitCode == 64 && error?.isRetryable == false,
                    "edge B's subscription: \(String(describing: ended))")
            let stillGone = try Self.items(try await runCLI("relayctl", ["durables", "--format", "json"] + a.cliArguments()))
            #expect(row(stillGone, "name", "elsewhere") == nil, "the durable came back: \(stillGone)")
            let said = try await eventually(timeout: 10, every: 0.05) { b.log.contains("durable deleted on another edge") }
            #expect(said, "edge B's log: \(b.log.suffix(2_000))")
            // Closing B's connection stores no cursor either (the detach-time commit).
            await live.connection.close()
            let relisted = try await runCLI("relayctl", ["durables", "--format", "json"] + b.cliArguments())
            #expect(row(try Self.items(relisted), "name", "elsewhere") == nil, "\(relisted.stdout)")
            // A new SUB of the name starts a new durable (here from earliest again).
            let again = try await runCLI("relay-sub", ["--topic", "jobs.>", "--durable", "elsewhere", "--from", "earliest",
                                                       "--count", "1", "--format", "raw"] + b.cliArguments(), timeout: 15)
            #expect(again.status == 0 && again.stdout == ["j1"], "\(again.stdout) \(again.stderr)")
        }
    }

    /// relay-sub attached to a durable on edge B while relayctl deletes it
    /// through edge A: the next ACK's commit ends the subscription with
    /// `durable_deleted`, and relay-sub exits 64 with one line naming the
    /// durable and what to do; it does not subscribe again by itself
    /// (docs/exit-codes.md).
    @Test("relay-sub --durable whose durable is deleted through the other edge exits 64 with one line naming it")
    func relaySubDurableDeleted() async throws {
        let nats = try await SingleNATSServer(pki: TLSTestPKI())
        try await withTwoJetStreamEdges(nats, extra: Self.adminRule) { a, b in
            try await publishLines(a, topic: "jobs.a", ["j1"])
            let sub = try await ChildProcess(try ProductLocator.executable("relay-sub"),
                                             ["--topic", "jobs.>", "--durable", "gone", "--from", "earliest",
                                              "--format", "raw"] + b.cliArguments())
            let first = await sub.waitForLine(timeout: 10) { $0 == "j1" }
            #expect(first != nil, "\(sub.transcript)")
            let listed = try await eventuallyValue(timeout: 10, every: 0.05) { () async throws -> [String: Any]? in
                row(try Self.items(try await runCLI("relayctl", ["durables", "--format", "json"] + a.cliArguments())), "name", "gone")
            }
            let owner = try #require(listed?["owner"] as? String, "durable gone never listed on edge A")
            let deleted = try await runCLI("relayctl", ["durable", "delete", "gone", "--owner", owner] + a.cliArguments())
            #expect(deleted.status == 0, "\(deleted.stderr)")
            // relay-sub prints and acknowledges the next message: that commit finds the durable gone.
            try await publishLines(a, topic: "jobs.a", ["j2"])
            guard let status = await sub.waitForExit(timeout: 15) else {
                sub.signal(SIGKILL)
                Issue.record("relay-sub still runs after its durable was deleted: \(sub.transcript)")
                return
            }
            #expect(status == 64, "\(sub.transcript)")
            #expect(sub.stdoutLines == ["j1", "j2"], "\(sub.transcript)")
            #expect(sub.stderrLines == ["relay-sub: error: durable \"gone\" was deleted by an operator (relayctl durable "
                + "delete, through this broker or another cluster edge) while relay-sub was attached; its cursor is gone. "
                + "Run relay-sub again to start a new durable \"gone\" from --from (default latest), or use another "
                + "--durable name (durable_deleted)"], "\(sub.transcript)")
        }
    }

    /// One durable attached on both edges at once (each edge knows only its
    /// own sessions): the edge whose compare-and-set finds the cursor moved
    /// by the other ends its subscription with `durable_in_use` and stores
    /// nothing, so the cursor never goes back; the other edge goes on.
    @Test("a durable attached on both edges: the edge that finds the cursor moved ends with durable_in_use; the other's cursor stands")
    func attachedOnBothEdges() async throws {
        let nats = try await SingleNATSServer(pki: TLSTestPKI())
        try await withTwoJetStreamEdges(nats, extra: Self.adminRule) { a, b in
            try await publishLines(a, topic: "jobs.a", ["j1", "j2", "j3"])
            let onA = try await Subscriber.connect(a.clientConfiguration())
            let first = try await onA.subscribe(filter: "jobs.>", from: .earliest, durable: "both")
            let fromA = try await take(1, from: first)
            first.ack(try #require(fromA.first))
            #expect(try await cursor("both", on: b) == 1)
            // Edge B attaches it too (it cannot know edge A has it): it resumes after 1.
            let onB = try await Subscriber.connect(b.clientConfiguration())
            let second = try await onB.subscribe(filter: "jobs.>", from: .earliest, durable: "both")
            let fromB = try await take(2, from: second)
            #expect(fromB.map(\.sequence) == [2, 3], "\(fromB.map(\.sequence))")
            // Edge A moves the cursor to 2 first ...
            let nextA = try await take(1, from: first)
            first.ack(try #require(nextA.first))
            #expect(try await cursor("both", on: b, reaching: 2) == 2)
            // ... so edge B's commit of 3 finds a revision it did not write.
            second.ack(try #require(fromB.last))
            let ended = await end(of: second, timeout: 10)
            #expect("\(String(describing: ended))".contains("durable_in_use"), "edge B's subscription: \(String(describing: ended))")
            let said = try await eventually(timeout: 10, every: 0.05) { b.log.contains("durable attached on another edge as well") }
            #expect(said, "edge B's log: \(b.log.suffix(2_000))")
            await onB.connection.close()
            #expect(try await cursor("both", on: a) == 2, "edge B's commit or detach overwrote edge A's cursor")
            // Edge A's subscription goes on.
            let lastA = try await take(1, from: first)
            first.ack(try #require(lastA.first))
            #expect(try await cursor("both", on: a, reaching: 3) == 3)
            await onA.connection.close()
        }
    }

    /// The cursor of durable `name` as relayctl on `edge` lists it, once
    /// listed (and at `reaching` when given); nil when it never is within 10 s.
    private func cursor(_ name: String, on edge: RelaydFixture, reaching: Int? = nil) async throws -> Int? {
        let listed = try await eventuallyValue(timeout: 10, every: 0.05) { () async throws -> Int? in
            let row = row(try Self.items(try await runCLI("relayctl", ["durables", "--format", "json"] + edge.cliArguments())), "name", name)
            guard let value = row?["cursor"] as? Int, reaching.map({ value >= $0 }) ?? true else { return nil }
            return value
        }
        return listed
    }

    @Test("topics gives JetStream's counts, sequences and times and no bytes; purge FILTER --yes removes them on every edge; backup points to NATS snapshots")
    func topicsPurgeBackup() async throws {
        let nats = try await SingleNATSServer(pki: TLSTestPKI())
        try await withTwoJetStreamEdges(nats, extra: Self.adminRule) { a, b in
            try await publishLines(a, topic: "jobs.a", ["j1", "j2", "j3"])
            try await publishLines(b, topic: "other.b", ["o1", "o2"])
            try await publishLines(a, topic: "jobs.a", ["j4"])
            let topics = try Self.items(try await runCLI("relayctl", ["topics", "--format", "json"] + b.cliArguments()))
            let jobs = try #require(row(topics, "topic", "jobs.a"), "\(topics)")
            #expect(jobs["messages"] as? Int == 4 && jobs["first_sequence"] as? Int == 1 && jobs["last_sequence"] as? Int == 6,
                    "\(jobs)")
            #expect(jobs["first_time"] is String && jobs["last_time"] is String, "\(jobs)")
            // JetStream counts messages per subject, not bytes: absent, not a made-up 0.
            #expect(jobs["bytes"] == nil, "\(jobs)")
            let other = try #require(row(topics, "topic", "other.b"), "\(topics)")
            #expect(other["messages"] as? Int == 2 && other["first_sequence"] as? Int == 4 && other["last_sequence"] as? Int == 5)
            let table = try await runCLI("relayctl", ["topics"] + a.cliArguments())
            #expect(table.status == 0 && line(in: table.stdout, containing: ["jobs.a", "4", "-"]) != nil, "\(table.stdout)")

            let unconfirmed = try await runCLI("relayctl", ["purge", "jobs.>"] + a.cliArguments())
            #expect(unconfirmed.status == 64, "\(unconfirmed.stderr)")
            let purge = try await runCLI("relayctl", ["purge", "jobs.>", "--yes", "--format", "json"] + a.cliArguments())
            #expect(purge.status == 0, "relayctl purge on a jetstream edge: \(purge.stderr)")
            let purged = try #require(try JSONSerialization.jsonObject(with: Data((purge.stdout.first ?? "{}").utf8)) as? [String: Any])
            #expect(purged["messages"] as? Int == 4 && purged["bytes"] == nil, "\(purged)")
            let left = try Self.items(try await runCLI("relayctl", ["topics", "--format", "json"] + b.cliArguments()))
            let leftTopics = left.compactMap { $0["topic"] as? String }
            #expect(leftTopics == ["other.b"], "\(left)")
            try await publishLines(a, topic: "jobs.a", ["after"])
            let replay = try await runCLI("relay-sub", ["--topic", "jobs.>", "--from", "earliest", "--count", "1",
                                                        "--format", "raw"] + b.cliArguments())
            #expect(replay.stdout == ["after"], "\(replay.stdout) \(replay.stderr)")

            let target = try TemporaryDirectory(prefix: "admin-js-backup")
            defer { target.remove() }
            let backup = try await runCLI("relayctl", ["backup", "--to", target.file("copy")] + a.cliArguments())
            let said = backup.stderr.joined(separator: "\n")
            #expect(backup.status == 1 && said.contains("admin_not_supported"), "\(backup.status) \(said)")
            #expect(said.contains("nats stream backup") && said.contains("KV_RELAY_CURSORS"), "\(said)")
        }
    }

    static func items(_ run: (status: Int32, stdout: [String], stderr: [String])) throws -> [[String: Any]] {
        let line = try #require(run.stdout.first, "relayctl printed nothing: \(run.stderr)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        return try #require(object["items"] as? [[String: Any]], "\(line)")
    }
}

/// Publishes `payloads` (one message each) with relay-pub through `relayd`.
private func publishLines(_ relayd: RelaydFixture, topic: String, _ payloads: [String]) async throws {
    let run = try await runCLI("relay-pub", ["--topic", topic, "--lines"] + relayd.cliArguments(),
                               stdin: payloads.joined(separator: "\n") + "\n")
    #expect(run.status == 0, "relay-pub: \(run.stderr)")
}
