import ArgumentParser
import Foundation
import RelayBench
import RelayCLISupport
import RelayClient
import RelayCore

/// Which broker to measure and how to report: an external one (--server and
/// the other client options) or a relayd the bench starts for itself.
struct BenchTargetOptions: ParsableArguments {
    @OptionGroup var client: ClientOptions

    @Option(name: .customLong("broker-pid"), help: ArgumentHelp("The external broker's pid, for CPU and RSS figures.", valueName: "pid"))
    var brokerPID: Int32?

    @Option(name: .long, help: ArgumentHelp("The relayd to start (default: the one next to relayctl).", valueName: "path"))
    var relayd: String?

    @Option(name: .long, help: ArgumentHelp("Storage durability of the relayd the bench starts: fsync (default) or async.", valueName: "mode"))
    var durability: String?

    @Option(name: .customLong("work-dir"), help: ArgumentHelp("Where the bench's own relayd keeps its PKI and data (default: $TMPDIR).", valueName: "dir"))
    var workDir: String?

    @Option(name: .long, help: "Seconds before a scenario is cut short and fails.")
    var timeout = 120.0

    @Flag(name: .long, help: "Print one JSON object per scenario instead of the table.")
    var json = false

    func validate() throws {
        if let durability, !["fsync", "async"].contains(durability) {
            throw ValidationError("--durability must be fsync or async, not \(durability)")
        }
        guard timeout > 0 else { throw ValidationError("--timeout must be positive") }
    }

    var usesExternalBroker: Bool {
        client.server != nil || ProcessInfo.processInfo.environment["RELAY_SERVER"] != nil
    }

    /// Sets up the target, runs `body`, prints the results and exits 1 when a check failed.
    func run(_ body: (BenchTarget) async -> [BenchResult]) async throws {
        ProcessStats.raiseFileLimit()
        let results: [BenchResult]
        if usesExternalBroker {
            let configuration = try client.configuration(clientName: "relayctl-bench")
            results = await body(BenchTarget(configuration: configuration, brokerPID: brokerPID,
                                             durability: durability ?? "unknown"))
        } else {
            let mode = durability ?? "fsync"
            let broker = try Self.startOwnBroker(relayd: relayd, workDir: workDir, durability: mode)
            let configuration = RelayClientConfiguration(host: "127.0.0.1", port: broker.port,
                                                         certificatePath: broker.certificatePath,
                                                         privateKeyPath: broker.keyPath, caPath: broker.caPath)
            let signalSources = broker.stopOnSignals()
            results = await body(BenchTarget(configuration: configuration, brokerPID: broker.pid, durability: mode))
            signalSources.forEach { $0.cancel() }
            broker.stop()
        }
        if json {
            for result in results { print(result.jsonLine()) }
        } else {
            print(BenchTable.render(results))
        }
        let failed = results.filter { !$0.isCorrect }
        if !failed.isEmpty {
            for result in failed {
                printError("relayctl: bench \(result.scenario) FAILED its checks: lost \(result.lost), duplicated \(result.duplicated), "
                           + "out of order \(result.outOfOrder), corrupt \(result.corrupt), failed publishes \(result.failedPublishes)"
                           + (result.timedOut ? ", deadline passed" : "")
                           + (result.errors.isEmpty ? "" : "; " + result.errors.joined(separator: "; ")))
            }
            throw ExitCode(1)
        }
    }

    /// relayd in the same folder as this relayctl.
    /// The relayd every bench scenario without --server starts, and `bench
    /// serve` too, so the C load generator meets the very same broker
    /// (max_in_flight 4096, the bench PKI, config and ACL).
    static func startOwnBroker(relayd: String?, workDir: String?, durability: String) throws -> BenchBroker {
        do {
            return try BenchBroker.start(relaydPath: relayd ?? siblingRelayd(),
                                         parent: URL(fileURLWithPath: workDir ?? NSTemporaryDirectory()),
                                         durability: durability, maxInFlight: 4096)
        } catch {
            printError("relayctl: cannot start a broker for the bench: \(error)")
            throw RelayExit.unavailable.exitCode
        }
    }

    static func siblingRelayd() -> String {
        let executable = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe"))
            ?? CommandLine.arguments.first ?? "relayctl"
        return URL(fileURLWithPath: executable).deletingLastPathComponent().appendingPathComponent("relayd").path
    }
}

/// The shape of a message-moving scenario.
struct BenchLoadOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("Payload bytes per message (at least \(BenchPayload.headerSize)).", valueName: "bytes"))
    var size = 128

    @Option(name: .long, help: ArgumentHelp("Messages per publisher.", valueName: "n"))
    var count = 100_000

    @Option(name: .long, help: ArgumentHelp("Publishes in flight per publisher, and each subscriber's credit.", valueName: "n"))
    var window = 1000

    @Option(name: .long, help: ArgumentHelp("Messages of an unmeasured 1-to-1 run first (0: none).", valueName: "n"))
    var warmup = 0

    @Option(name: .long, help: ArgumentHelp(
        "Offered load per publisher in messages/s: an open loop that sends each message at its due time and measures latency from it (default 0: closed loop, as fast as --window allows).",
        valueName: "msg/s"))
    var rate = 0.0

    func parameters(publishers: Int, subscribers: Int, timeout: Double) throws -> LoadParameters {
        guard size >= BenchPayload.headerSize else {
            throw ValidationError("--size must be at least \(BenchPayload.headerSize) bytes (the bench's check header)")
        }
        guard count > 0, window > 0, publishers > 0, subscribers >= 0, warmup >= 0 else {
            throw ValidationError("--count, --window, --publishers and --subscribers must be at least 1")
        }
        guard rate >= 0, rate.isFinite, rate <= 10_000_000 else {
            throw ValidationError("--rate must be between 0 (closed loop) and 10000000 messages/s")
        }
        return LoadParameters(publishers: publishers, subscribers: subscribers, count: count, size: size,
                              window: window, timeout: timeout, rate: rate)
    }

    /// An unmeasured run on its own topic (the peers' harness does the same).
    func warmUp(_ target: BenchTarget) async {
        guard warmup > 0 else { return }
        let parameters = LoadParameters(publishers: 1, subscribers: 1, count: warmup, size: size, window: window, timeout: 60)
        _ = await LoadScenarios.pubsub(name: "warmup", parameters, target: target)
    }
}
