import Foundation
import RelayBench
import RelayTestSupport
import Testing

/// scripts/relay_bench.c, the C + OpenSSL load generator written from
/// Protocol/relay-v1.md alone: it compiles, talks to a real relayd (the
/// bench's own, as `relayctl bench serve` starts it) over mTLS 1.3, and its
/// delivery checker both passes a correct run and fails a faulty one.
@Suite("C load generator (scripts/relay_bench.c)", .serialized)
struct CLoadGeneratorTests {
    static let repository = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()

    /// One JSON line of the generator: the same fields as relayctl bench's.
    typealias Line = BenchSmokeTests.Line

    /// Compiles the generator with cc into `directory`; a missing compiler or
    /// OpenSSL headers fail the test (make test installs them), never skip it.
    static func compile(into directory: TemporaryDirectory) async throws -> String {
        let source = repository.appendingPathComponent("scripts/relay_bench.c").path
        let binary = directory.file("relay_bench")
        let child = try await ChildProcess("/bin/sh", ["-c", "cc -O2 -Wall -Werror -o '\(binary)' '\(source)' -lssl -lcrypto -lpthread"])
        child.closeStdin()
        guard let status = await child.waitForExit(timeout: 120) else {
            child.signal(SIGKILL)
            throw HarnessError.timeout("cc did not finish within 120 s:\n\(child.transcript)")
        }
        try #require(status == 0, """
            cannot compile \(source) with cc (exit \(status)); it needs gcc, libc6-dev and libssl-dev, \
            which `make test` installs (APT_PACKAGES in the Makefile):
            \(child.transcript)
            """)
        return binary
    }

    /// Runs the generator against `broker` and returns its exit status and its one JSON line.
    static func run(_ binary: String, _ arguments: [String], broker: ServedBroker,
                    environment: [String: String] = [:]) async throws -> (status: Int32, line: Line, stderr: [String]) {
        let common = ["--port", "\(broker.port)", "--ca", broker.caPath, "--cert", broker.certificatePath,
                      "--key", broker.keyPath, "--broker-pid", "\(broker.pid)", "--durability", "fsync", "--timeout", "30"]
        let child = try await ChildProcess(binary, arguments + common, environment: environment.isEmpty ? nil : environment)
        child.closeStdin()
        guard let status = await child.waitForExit(timeout: 60) else {
            child.signal(SIGKILL)
            throw HarnessError.timeout("relay_bench did not finish within 60 s:\n\(child.transcript)")
        }
        let jsonLines = child.stdoutLines.filter { $0.hasPrefix("{") }
        try #require(jsonLines.count == 1, "expected one JSON line:\n\(child.transcript)")
        let object = try JSONSerialization.jsonObject(with: Data(jsonLines[0].utf8)) as? [String: Any]
        let fields = try #require(object, "not a JSON object: \(jsonLines[0])")
        return (status, Line(fields: fields), child.stderrLines)
    }

    /// The broker `relayctl bench serve` started, as its JSON line describes it.
    struct ServedBroker {
        var port: Int
        var pid: Int32
        var caPath: String
        var certificatePath: String
        var keyPath: String
    }

    /// Runs `body` against `relayctl bench serve`, the very broker
    /// scripts/bench-peers.sh gives the C rows. (relayctl starts relayd, so no
    /// Foundation `Process` runs in the test process: see ChildProcess.)
    static func withBroker<T>(durability: String = "fsync", _ body: (String, ServedBroker) async throws -> T) async throws -> T {
        let directory = try TemporaryDirectory(prefix: "c-load-generator")
        defer { directory.remove() }
        let binary = try await compile(into: directory)
        let serve = try await ChildProcess(try ProductLocator.executable("relayctl"), [
            "bench", "serve", "--relayd", try ProductLocator.executable("relayd"),
            "--durability", durability, "--work-dir", directory.path,
        ])
        // A test that throws still stops relayd: SIGTERM is what bench serve
        // cleans up on (SIGKILL would leave its relayd running), SIGKILL after.
        var stopped = false
        defer {
            if !stopped {
                serve.signal(SIGTERM)
                Task { [serve] in
                    if await serve.waitForExit(timeout: 30) == nil { serve.signal(SIGKILL) }
                }
            }
        }
        guard let line = await serve.waitForLine(timeout: 60, where: { $0.hasPrefix("{") }) else {
            throw HarnessError.timeout("relayctl bench serve printed no JSON line within 60 s:\n\(serve.transcript)")
        }
        let fields = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], "not a JSON object: \(line)")
        let broker = ServedBroker(
            port: try #require(fields["port"] as? Int, "no port: \(line)"),
            pid: Int32(try #require(fields["pid"] as? Int, "no pid: \(line)")),
            caPath: try #require(fields["ca"] as? String, "no ca: \(line)"),
            certificatePath: try #require(fields["cert"] as? String, "no cert: \(line)"),
            keyPath: try #require(fields["key"] as? String, "no key: \(line)"))
        try #require(fields["durability"] as? String == durability, "\(line)")
        let result = try await body(binary, broker)
        // SIGTERM: bench serve stops relayd, removes its folder and exits 128 + 15.
        stopped = true
        serve.signal(SIGTERM)
        let status = await serve.waitForExit(timeout: 30)
        #expect(status == 128 + SIGTERM, "relayctl bench serve after SIGTERM: \(String(describing: status))\n\(serve.transcript)")
        #expect(kill(broker.pid, 0) != 0, "relayd (pid \(broker.pid)) outlived relayctl bench serve")
        return result
    }

    @Test("1:1 and replay: every message published, acknowledged and delivered exactly once, in order")
    func pubsubAndReplay() async throws {
        try await Self.withBroker { binary, broker in
            let pubsub = try await Self.run(binary, ["pubsub", "--count", "2000", "--size", "128", "--window", "100"], broker: broker)
            #expect(pubsub.status == 0, "\(pubsub.stderr)")
            let line = pubsub.line
            #expect(line.string("scenario") == "pubsub")
            #expect(line.string("client") == "relay-c")
            #expect(line.string("tls") == "TLSv1.3")
            #expect(line.bool("ok") == true, "\(line.fields)")
            #expect(line.int("published") == 2000)
            #expect(line.int("acked") == 2000)
            #expect(line.int("expected_deliveries") == 2000)
            #expect(line.int("delivered") == 2000)
            #expect(line.int("lost") == 0)
            #expect(line.int("duplicated") == 0)
            #expect(line.int("out_of_order") == 0)
            #expect(line.int("corrupt") == 0)
            #expect((line.double("published_msgs_per_sec") ?? 0) > 0)
            #expect((line.double("publish_ack_p99_us") ?? 0) >= (line.double("publish_ack_p50_us") ?? .infinity))
            #expect((line.double("e2e_p50_us") ?? 0) > 0)
            // The broker's CPU is read from /proc/<pid>/stat of the pid given; it did work.
            #expect((line.double("broker_cpu_s") ?? -1) >= 0)
            #expect(line.double("client_cpu_s") != nil)

            let replay = try await Self.run(binary, ["replay", "--count", "2000", "--size", "128", "--window", "500"], broker: broker)
            #expect(replay.status == 0, "\(replay.stderr)")
            #expect(replay.line.string("scenario") == "replay")
            #expect(replay.line.bool("ok") == true, "\(replay.line.fields)")
            #expect(replay.line.int("acked") == 2000)
            #expect(replay.line.int("delivered") == 2000)
            #expect(replay.line.int("lost") == 0)
            #expect(replay.line.int("duplicated") == 0)
            #expect((replay.line.double("delivered_msgs_per_sec") ?? 0) > 0)
        }
    }

    @Test("fanout, the open loop and connect report correct runs")
    func fanoutRateConnect() async throws {
        try await Self.withBroker { binary, broker in
            let fanout = try await Self.run(binary, ["fanout", "--subscribers", "3", "--count", "500"], broker: broker)
            #expect(fanout.status == 0, "\(fanout.stderr)")
            #expect(fanout.line.bool("ok") == true, "\(fanout.line.fields)")
            #expect(fanout.line.int("expected_deliveries") == 1500)
            #expect(fanout.line.int("delivered") == 1500)
            let paced = try await Self.run(binary, ["pubsub", "--count", "300", "--rate", "2000"], broker: broker)
            #expect(paced.status == 0, "\(paced.stderr)")
            #expect(paced.line.bool("ok") == true, "\(paced.line.fields)")
            #expect(paced.line.double("offered_msgs_per_sec") == 2000)
            // 300 messages at 2,000/s take at least 149.5 ms (the last is due at 299/2000 s).
            #expect((paced.line.double("elapsed_s") ?? 0) >= 0.149, "\(paced.line.fields)")
            let connect = try await Self.run(binary, ["connect", "--count", "20", "--concurrency", "4"], broker: broker)
            #expect(connect.status == 0, "\(connect.stderr)")
            #expect(connect.line.bool("ok") == true, "\(connect.line.fields)")
            #expect(connect.line.int("count") == 20)
            #expect((connect.line.double("handshakes_per_sec") ?? 0) > 0)
        }
    }

    /// The open loop's wait for the next due time read the clock twice
    /// (`next_due > now_ns() ? next_due - now_ns() : 0`): when the due time
    /// fell between the two reads the difference wrapped around to ~2^64 ns,
    /// and the publisher slept until the next PUBACK arrived, or, with
    /// nothing in flight, until the run's deadline (3 of 3 runs hung so at
    /// 5,000 msg/s against a release relayd in async mode; in fsync mode it
    /// held PUBs back until the next PUBACK, which the latency, counted from
    /// the due time, charged to the broker). The window between two reads is
    /// tens of nanoseconds, so the test widens it: an LD_PRELOAD shim moves
    /// CLOCK_MONOTONIC on by 50 µs at every reading (`clockStepShim`), which
    /// makes a due time between two reads likely in every paced wait.
    @Test("the open loop never sleeps past a due time that passed between two clock readings")
    func openLoopNeverOversleeps() async throws {
        try await Self.withBroker(durability: "async") { binary, broker in
            let directory = try TemporaryDirectory(prefix: "clock-step")
            defer { directory.remove() }
            let source = directory.file("clock_step.c")
            try Self.clockStepShim.write(toFile: source, atomically: true, encoding: .utf8)
            let shim = directory.file("clock_step.so")
            let cc = try await ChildProcess("/bin/sh", ["-c", "cc -O2 -Wall -Werror -shared -fPIC -o '\(shim)' '\(source)' -ldl"])
            cc.closeStdin()
            let built = await cc.waitForExit(timeout: 60)
            try #require(built == 0, "cannot build the clock shim:\n\(cc.transcript)")
            // 2,000 messages at 1,000/s: about 1 s paced right (the shim's steps make time run a
            // little faster); stuck, the run lasts until its --timeout of 30 s and reports ok false.
            let paced = try await Self.run(binary, ["pubsub", "--count", "2000", "--rate", "1000", "--warmup", "0"], broker: broker,
                                           environment: ["LD_PRELOAD": shim])
            #expect(paced.status == 0, "\(paced.stderr)")
            #expect(paced.line.bool("ok") == true, "\(paced.line.fields)")
            #expect(paced.line.int("acked") == 2000, "\(paced.line.fields)")
        }
    }

    /// CLOCK_MONOTONIC, 50 µs later at every reading (see `openLoopNeverOversleeps`).
    static let clockStepShim = """
        #define _GNU_SOURCE
        #include <dlfcn.h>
        #include <stdatomic.h>
        #include <time.h>
        static atomic_ulong readings;
        int clock_gettime(clockid_t id, struct timespec *ts)
        {
            static int (*real)(clockid_t, struct timespec *);
            if (!real) real = (int (*)(clockid_t, struct timespec *))dlsym(RTLD_NEXT, "clock_gettime");
            int r = real(id, ts);
            if (r == 0 && id == CLOCK_MONOTONIC) {
                unsigned long long ns = (unsigned long long)(atomic_fetch_add(&readings, 1) + 1) * 50000ull + (unsigned long long)ts->tv_nsec;
                ts->tv_sec += (time_t)(ns / 1000000000ull);
                ts->tv_nsec = (long)(ns % 1000000000ull);
            }
            return r;
        }
        """

    @Test("the checker fails the run when a delivery is missing or duplicated (--fault)")
    func checkerCanFail() async throws {
        try await Self.withBroker { binary, broker in
            // Each fault must surface as exactly its own count, fail the run and exit 1.
            for (fault, lost, duplicated) in [("missing", 1, 0), ("duplicate", 0, 1)] {
                let run = try await Self.run(binary, ["pubsub", "--count", "500", "--fault", fault], broker: broker)
                #expect(run.status == 1, "--fault \(fault): \(run.stderr)")
                #expect(run.line.bool("ok") == false, "--fault \(fault)")
                #expect(run.line.int("lost") == lost, "--fault \(fault): \(run.line.fields)")
                #expect(run.line.int("duplicated") == duplicated, "--fault \(fault): \(run.line.fields)")
            }
        }
    }
}
