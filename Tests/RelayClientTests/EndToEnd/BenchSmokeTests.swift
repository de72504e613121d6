import Foundation
import NIOCore
import RelayBench
import RelayTestSupport
import Testing

/// `relayctl bench` run as a process for every scenario with small counts.
/// These check the bench's correctness accounting (nothing lost, duplicated
/// or reordered; the counts add up), never its speed.
@Suite("relayctl bench smoke", .serialized)
struct BenchSmokeTests {
    /// One scenario's JSON line as a dictionary.
    struct Line {
        let fields: [String: Any]
        func int(_ key: String) -> Int? { (fields[key] as? NSNumber)?.intValue }
        func double(_ key: String) -> Double? { (fields[key] as? NSNumber)?.doubleValue }
        func bool(_ key: String) -> Bool? { (fields[key] as? NSNumber)?.boolValue }
        func string(_ key: String) -> String? { fields[key] as? String }
    }

    /// Runs `relayctl bench ARGS --json` and returns its status and the one JSON line it printed.
    func bench(_ arguments: [String]) async throws -> (status: Int32, line: Line, stderr: [String]) {
        let run = try await runCLI("relayctl", ["bench"] + arguments + ["--json", "--timeout", "60"], timeout: 120)
        let jsonLines = run.stdout.filter { $0.hasPrefix("{") }
        try #require(jsonLines.count == 1, "expected one JSON line; stdout \(run.stdout), stderr \(run.stderr)")
        let object = try JSONSerialization.jsonObject(with: Data(jsonLines[0].utf8)) as? [String: Any]
        let fields = try #require(object, "not a JSON object: \(jsonLines[0])")
        return (run.status, Line(fields: fields), run.stderr)
    }

    func expectCorrect(_ line: Line, expectedDeliveries: Int, published: Int, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(line.int("lost") == 0, sourceLocation: sourceLocation)
        #expect(line.int("duplicated") == 0, sourceLocation: sourceLocation)
        #expect(line.int("out_of_order") == 0, sourceLocation: sourceLocation)
        #expect(line.int("corrupt") == 0, sourceLocation: sourceLocation)
        #expect(line.int("acked") == published, sourceLocation: sourceLocation)
        #expect(line.int("expected_deliveries") == expectedDeliveries, sourceLocation: sourceLocation)
        #expect(line.int("delivered") == expectedDeliveries, sourceLocation: sourceLocation)
        #expect(line.bool("ok") == true, sourceLocation: sourceLocation)
        for key in ["published_msgs_per_sec", "delivered_msgs_per_sec", "mb_per_sec", "publish_ack_p50_us",
                    "publish_ack_p99_us", "publish_ack_p999_us", "e2e_p50_us", "e2e_p99_us"] {
            #expect(line.double(key) != nil, "missing \(key)", sourceLocation: sourceLocation)
        }
    }

    @Test("pubsub with 2 publishers and 2 subscribers: every message delivered once, in order, to each subscriber")
    func pubsub() async throws {
        let run = try await bench(["pubsub", "--publishers", "2", "--subscribers", "2", "--count", "500", "--size", "64"])
        #expect(run.status == 0, "\(run.stderr)")
        expectCorrect(run.line, expectedDeliveries: 2 * 2 * 500, published: 1000)
        #expect(run.line.string("scenario") == "pubsub")
        #expect(run.line.int("size") == 64)
    }

    @Test("pubsub with --rate paces the publisher (open loop) and still checks every delivery")
    func pacedPubsub() async throws {
        let run = try await bench(["pubsub", "--count", "300", "--rate", "2000", "--size", "64"])
        #expect(run.status == 0, "\(run.stderr)")
        expectCorrect(run.line, expectedDeliveries: 300, published: 300)
        #expect(run.line.double("offered_msgs_per_sec") == 2000)
        // 300 messages at 2,000/s cannot finish in less than 149.5 ms (the last is due at 299/2000 s):
        // a closed loop would take a few milliseconds.
        #expect((run.line.double("elapsed_s") ?? 0) >= 0.149, "elapsed \(run.line.double("elapsed_s") ?? -1) s")
        #expect((run.line.double("published_msgs_per_sec") ?? .infinity) <= 2100)
    }

    @Test("a negative or absurd --rate is a usage error")
    func badRate() async throws {
        let run = try await runCLI("relayctl", ["bench", "pubsub", "--rate=-5", "--json"], timeout: 60)
        #expect(run.status == 64)
        #expect(run.stderr.joined(separator: "\n").contains("--rate must be between 0"), "\(run.stderr)")
    }

    @Test("disk measures a commit's two flushes on the given directory and reports percentiles")
    func disk() async throws {
        let directory = try TemporaryDirectory(prefix: "bench-disk")
        defer { directory.remove() }
        let run = try await bench(["disk", "--count", "50", "--work-dir", directory.path])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.line.string("scenario") == "disk")
        let p50 = try #require(run.line.double("sync_p50_us"))
        let p99 = try #require(run.line.double("sync_p99_us"))
        #expect(p50 > 0 && p99 >= p50)
        // The probe file is removed afterwards.
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path).isEmpty)
    }

    @Test("disk on a directory that does not exist fails with the path and what to do")
    func diskMissingDirectory() async throws {
        let run = try await runCLI("relayctl", ["bench", "disk", "--count", "5", "--work-dir", "/nonexistent/relay-bench"], timeout: 60)
        #expect(run.status == 1)
        #expect(run.stderr.joined(separator: "\n").contains("cannot create /nonexistent/relay-bench/"), "\(run.stderr)")
    }

    @Test("fanout to 4 subscribers delivers each message 4 times")
    func fanout() async throws {
        let run = try await bench(["fanout", "--count", "500", "--window", "100"])
        #expect(run.status == 0, "\(run.stderr)")
        expectCorrect(run.line, expectedDeliveries: 4 * 500, published: 500)
        #expect(run.line.int("subscribers") == 4)
    }

    @Test("fanin from 4 publishers to one subscriber")
    func fanin() async throws {
        let run = try await bench(["fanin", "--count", "300"])
        #expect(run.status == 0, "\(run.stderr)")
        expectCorrect(run.line, expectedDeliveries: 4 * 300, published: 1200)
        #expect(run.line.int("publishers") == 4)
    }

    @Test("replay reads back every stored message from the earliest, in order")
    func replay() async throws {
        let run = try await bench(["replay", "--count", "1000", "--size", "256"])
        #expect(run.status == 0, "\(run.stderr)")
        expectCorrect(run.line, expectedDeliveries: 1000, published: 1000)
        #expect((run.line.double("delivered_msgs_per_sec") ?? 0) > 0)
    }

    @Test("connect completes every mTLS handshake and reports a rate")
    func connect() async throws {
        let run = try await bench(["connect", "--count", "40", "--concurrency", "4"])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.line.bool("ok") == true)
        #expect((run.line.double("handshakes_per_sec") ?? 0) > 0)
        #expect((run.line.double("connect_p50_us") ?? 0) > 0)
    }

    @Test("idle reads the broker's RSS before and after holding the connections")
    func idle() async throws {
        let run = try await bench(["idle", "--connections", "100", "--settle", "0.5"])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.line.bool("ok") == true)
        #expect((run.line.int("rss_before_kb") ?? 0) > 0)
        #expect((run.line.int("rss_after_kb") ?? 0) > 0)
        #expect(run.line.double("rss_per_connection_bytes") != nil)
    }

    @Test("against an external broker that refuses the publishes, the bench fails its checks and exits 1")
    func refusedPublishesFail() async throws {
        try await withRelayd(acl: """
        [[acl.rule]]
        name = "subscribe-only"
        subscribe = [">"]
        """) { fixture in
            let pid = try #require(fixture.process?.pid)
            let run = try await bench(["pubsub", "--count", "50"] + fixture.cliArguments() + ["--broker-pid", "\(pid)"])
            #expect(run.status == 1)
            #expect(run.line.bool("ok") == false)
            #expect(run.line.int("acked") == 0)
            #expect((run.line.int("failed_publishes") ?? 0) > 0)
            let failedChecks = run.stderr.contains { $0.contains("FAILED its checks") }
            #expect(failedChecks)
        }
    }

    @Test("against an external broker (--server) the same checks pass")
    func externalBroker() async throws {
        try await withRelayd(acl: allowAllACL) { fixture in
            let run = try await bench(["fanout", "--subscribers", "2", "--count", "300"] + fixture.cliArguments())
            #expect(run.status == 0, "\(run.stderr)")
            expectCorrect(run.line, expectedDeliveries: 2 * 300, published: 300)
            #expect(run.line.string("durability") == "unknown")
        }
    }

    @Test("the delivery checker counts duplicates, reordering, gaps and foreign payloads")
    func checkerCountsFaults() {
        var checker = DeliveryChecker(publishers: 2, perPublisher: 5)
        for counter: UInt64 in [0, 1, 3, 2, 3] { checker.record(publisher: 0, counter: counter) }
        for counter: UInt64 in [0, 1] { checker.record(publisher: 1, counter: counter) }
        checker.record(publisher: 2, counter: 0)  // no such publisher
        checker.record(publisher: 1, counter: 5)  // beyond the count
        #expect(checker.distinct == 6)
        #expect(checker.duplicated == 1)
        #expect(checker.outOfOrder == 1)
        #expect(checker.corrupt == 2)
        #expect(checker.lost(expected: 10) == 4)

        let header = BenchPayload.Header(publisher: 7, counter: 42, sentAt: 123_456_789)
        let payload = BenchPayload.make(header, size: 128)
        #expect(payload.readableBytes == 128)
        #expect(BenchPayload.parse(payload) == header)
        #expect(BenchPayload.parse(ByteBuffer(bytes: [1, 2, 3])) == nil)
    }
}
