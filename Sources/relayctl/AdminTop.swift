import ArgumentParser
import Foundation
import RelayBroker

struct Top: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "A live view of the broker's connections and message rates, refreshed in the terminal (needs admin read).",
        discussion: """
        Ctrl-C ends it. --iterations N stops after N refreshes (for scripts and tests); with --format json each \
        refresh prints one line {"connections": …, "status": …}.
        """)

    @Option(name: .long, help: "Seconds between refreshes.")
    var interval: Double = 2

    @Option(name: .long, help: "Stop after this many refreshes (0: until interrupted).")
    var iterations: Int = 0

    @OptionGroup var options: AdminOptions

    struct Frame: Codable {
        var status: AdminStatus
        var connections: [AdminConnection]
    }

    func run() async throws {
        let clearScreen = isatty(STDOUT_FILENO) != 0 && options.format == .table
        try await options.withAdmin { admin in
            var done = 0
            while iterations == 0 || done < iterations {
                if done > 0 { try await Task.sleep(for: .milliseconds(Int(max(0.1, interval) * 1000))) }
                let status = try await AdminOptions.call(admin, "status", AdminStatus.self)
                let connections = try await AdminOptions.call(admin, "connections", AdminList<AdminConnection>.self).items
                if clearScreen { print("\u{1B}[H\u{1B}[2J", terminator: "") }
                try options.emit(Frame(status: status, connections: connections)) {
                    print("relayd \(status.version)  up \(Int(status.uptimeSeconds)) s  connections \(status.connections)  "
                          + "in \(String(format: "%.1f", status.messagesInPerSecond))/s  "
                          + "out \(String(format: "%.1f", status.messagesOutPerSecond))/s  "
                          + "store \(humanBytes(status.storeUsedBytes)) of \(humanBytes(status.storeLimitBytes))\n")
                    return Connections.table(connections)
                }
                fflush(nil)  // every stream: `stdout` itself is not concurrency-safe to name
                done += 1
            }
        }
    }
}
