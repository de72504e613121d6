import ArgumentParser
import Foundation
import RelayBench
import RelayCLISupport
import RelayCore

extension Bench {
    /// `relayctl bench serve`: the bench's own relayd (the same PKI, config and
    /// defaults as every other `relayctl bench` scenario), left running for a
    /// load generator written in another language (scripts/relay_bench.c), so
    /// the broker side of a C row and a Swift row is identical.
    struct Serve: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Start the bench's relayd and keep it up until SIGTERM/SIGINT; print its address, pid and PKI files.",
            discussion: """
            Prints one JSON line {"host","port","pid","durability","ca","cert","key","directory"} once relayd \
            accepts connections, then waits. SIGTERM or SIGINT stops relayd and removes the temporary folder. \
            The broker is configured exactly as for `relayctl bench pubsub` (max_in_flight 4096, allow-all ACL).
            """)
        @Option(name: .long, help: ArgumentHelp("The relayd to start (default: the one next to relayctl).", valueName: "path"))
        var relayd: String?
        @Option(name: .long, help: ArgumentHelp("Storage durability: fsync (default) or async.", valueName: "mode"))
        var durability = "fsync"
        @Option(name: .customLong("work-dir"), help: ArgumentHelp("Where relayd keeps its PKI and data (default: $TMPDIR).", valueName: "dir"))
        var workDir: String?

        func validate() throws {
            guard ["fsync", "async"].contains(durability) else {
                throw ValidationError("--durability must be fsync or async, not \(durability)")
            }
        }

        func run() async throws {
            ProcessStats.raiseFileLimit()
            let broker = try BenchTargetOptions.startOwnBroker(relayd: relayd, workDir: workDir, durability: durability)
            // stopOnSignals stops relayd, removes the folder and exits on SIGTERM/SIGINT.
            let sources = broker.stopOnSignals()
            let fields: [String: Any] = [
                "host": "127.0.0.1", "port": broker.port, "pid": Int(broker.pid), "durability": durability,
                "ca": broker.caPath, "cert": broker.certificatePath, "key": broker.keyPath, "directory": broker.directory.path,
            ]
            let data = try JSONSerialization.data(withJSONObject: fields, options: [.sortedKeys, .withoutEscapingSlashes])
            // Written unbuffered: the caller waits for this line while the process keeps running.
            FileHandle.standardOutput.write(data + Data("\n".utf8))
            // Park until a signal ends the process; relayd exiting on its own ends the wait too.
            while Self.isAlive(broker.pid) {
                try? await Task.sleep(nanoseconds: 200_000_000)
            }
            // relayd gone because SIGTERM/SIGINT is stopping it: the signal
            // handler exits 128 + the signal once its stop() returns. Not
            // "exited on its own" (that raced the handler: exit 1).
            while broker.stopSignal != nil {
                try? await Task.sleep(nanoseconds: 50_000_000)
            }
            sources.forEach { $0.cancel() }
            broker.stop()
            printError("relayctl: bench serve: relayd (pid \(broker.pid)) exited on its own")
            throw ExitCode(1)
        }

        /// True while the process exists and is not a zombie (an exited child
        /// not yet reaped still answers kill(pid, 0)).
        static func isAlive(_ pid: Int32) -> Bool {
            guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
                  let close = text.lastIndex(of: ")") else { return false }
            let state = text[text.index(after: close)...].dropFirst().first
            return state != "Z" && state != "X"
        }
    }
}
