import ArgumentParser
import Foundation
import RelayBench
import RelayCLISupport
import RelayClient

/// `relayctl bench`: load scenarios against a broker, with every delivery checked.
struct Bench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure a broker: throughput, latency, handshakes and memory, checking every delivery.",
        discussion: """
        Without --server the bench starts its own relayd (the one built next to relayctl) with a temporary \
        development PKI, an allow-all ACL and a temporary data directory, and removes them afterwards. \
        With --server (or RELAY_SERVER) it uses that broker and the usual --cert/--key/--ca; \
        pass --broker-pid for CPU and memory figures.

        Every payload carries its publisher, a counter and the send time; each subscriber checks that \
        every acknowledged message arrived exactly once and in order.

        Exit codes: 0 every check passed; 1 a message was lost, duplicated, reordered or corrupt, a publish \
        failed or the deadline passed; 2 usage; 3 the broker could not be reached or started.

        Examples:
          relayctl bench pubsub --size 128 --count 200000 --window 1000
          relayctl bench fanout --subscribers 4 --json
          relayctl bench replay --count 1000000 --window 4096
          relayctl bench connect --count 2000
          relayctl bench idle --connections 2000
          relayctl bench disk --work-dir /var/lib/relay
        """,
        subcommands: [Pubsub.self, Fanout.self, Fanin.self, Replay.self, Connect.self, Idle.self, Disk.self, Serve.self])

    struct Pubsub: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "P publishers and S subscribers on one topic.")
        @OptionGroup var target: BenchTargetOptions
        @OptionGroup var load: BenchLoadOptions
        @Option(name: .long, help: "Publishing connections.") var publishers = 1
        @Option(name: .long, help: "Subscribing connections; each receives every message.") var subscribers = 1

        func run() async throws {
            let parameters = try load.parameters(publishers: publishers, subscribers: subscribers, timeout: target.timeout)
            try await target.run { bench in
                await load.warmUp(bench)
                return [await LoadScenarios.pubsub(name: "pubsub", parameters, target: bench)]
            }
        }
    }

    struct Fanout: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "One publisher, N subscribers.")
        @OptionGroup var target: BenchTargetOptions
        @OptionGroup var load: BenchLoadOptions
        @Option(name: .long, help: "Subscribing connections; each receives every message.") var subscribers = 4

        func run() async throws {
            let parameters = try load.parameters(publishers: 1, subscribers: subscribers, timeout: target.timeout)
            try await target.run { bench in
                await load.warmUp(bench)
                return [await LoadScenarios.pubsub(name: "fanout", parameters, target: bench)]
            }
        }
    }

    struct Fanin: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "N publishers, one subscriber (--count is per publisher).")
        @OptionGroup var target: BenchTargetOptions
        @OptionGroup var load: BenchLoadOptions
        @Option(name: .long, help: "Publishing connections.") var publishers = 4

        func run() async throws {
            let parameters = try load.parameters(publishers: publishers, subscribers: 1, timeout: target.timeout)
            try await target.run { bench in
                await load.warmUp(bench)
                return [await LoadScenarios.pubsub(name: "fanin", parameters, target: bench)]
            }
        }
    }

    struct Replay: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Fill the store with --count messages, then read them back from the earliest with one subscriber.")
        @OptionGroup var target: BenchTargetOptions
        @OptionGroup var load: BenchLoadOptions

        func run() async throws {
            let parameters = try load.parameters(publishers: 1, subscribers: 0, timeout: target.timeout)
            try await target.run { bench in
                [await LoadScenarios.replay(parameters, target: bench)]
            }
        }
    }

    struct Connect: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Full mutual-TLS handshakes (plus HELLO/WELCOME) per second: open and close --count connections.")
        @OptionGroup var target: BenchTargetOptions
        @Option(name: .long, help: "Connections to open and close.") var count = 2000
        @Option(name: .long, help: "Connections being set up at once.") var concurrency = 8

        func run() async throws {
            guard count > 0, concurrency > 0 else { throw ValidationError("--count and --concurrency must be at least 1") }
            try await target.run { bench in
                [await ConnectionScenarios.connect(count: count, concurrency: concurrency, timeout: target.timeout, target: bench)]
            }
        }
    }

    struct Idle: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Hold --connections idle connections and report the broker's RSS per connection (/proc VmRSS).")
        @OptionGroup var target: BenchTargetOptions
        @Option(name: .long, help: "Idle connections to hold.") var connections = 2000
        @Option(name: .long, help: "Connections being set up at once.") var concurrency = 16
        @Option(name: .long, help: "Seconds to wait after the last connect before reading the broker's RSS.") var settle = 2.0

        func run() async throws {
            guard connections > 0, concurrency > 0 else { throw ValidationError("--connections and --concurrency must be at least 1") }
            try await target.run { bench in
                [await ConnectionScenarios.idle(count: connections, concurrency: concurrency, settleSeconds: settle,
                                                timeout: target.timeout, target: bench)]
            }
        }
    }

    struct Disk: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "The disk's price for durability: latency of one LMDB commit's two flushes, without a broker.",
            discussion: "Each sample writes a 4 KiB page and fdatasyncs it, then writes 120 bytes through an O_DSYNC "
                + "descriptor, as an LMDB commit does. Run it on the data directory's disk: an fsync-mode PUBACK "
                + "cannot come back faster than this.")
        @Option(name: .long, help: "Samples.") var count = 1000
        @Option(name: .customLong("work-dir"), help: ArgumentHelp("A directory on the disk to measure (default: $TMPDIR).", valueName: "dir"))
        var workDir: String?
        @Option(name: .long, help: "Accepted for symmetry with the other scenarios; unused.") var timeout = 120.0
        @Flag(name: .long, help: "Print one JSON object instead of the table.") var json = false

        func run() async throws {
            guard count > 0 else { throw ValidationError("--count must be at least 1") }
            let result = DiskScenario.commitSyncs(count: count, directory: URL(fileURLWithPath: workDir ?? NSTemporaryDirectory()))
            print(json ? result.jsonLine() : BenchTable.render([result]))
            if !result.isCorrect {
                printError("relayctl: bench disk failed: " + result.errors.joined(separator: "; "))
                throw ExitCode(1)
            }
        }
    }
}
