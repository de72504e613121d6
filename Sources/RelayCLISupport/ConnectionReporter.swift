import Foundation
import NIOConcurrencyHelpers
import RelayClient
import RelayCore

/// What relay-pub and relay-sub tell the user about their connection:
/// one stderr line per reconnect attempt (the reason and the next delay),
/// and, with `--timeout`, a deadline after which they give up with exit 69.
public final class ConnectionReporter: Sendable {
    private struct State {
        var connected = false
        var lastError: RelayClientError?
    }

    private let state = NIOLockedValueBox(State())
    private let program: String

    public init(program: String) { self.program = program }

    /// Whether the connection is up (WELCOME received, not lost since).
    public var isConnected: Bool { state.withLockedValue { $0.connected } }

    /// Makes the connection, prints its reconnect attempts from now on, and
    /// connects (waiting for WELCOME). With a deadline, a failed first
    /// attempt is retried like a lost connection, until the deadline.
    public func connect(_ configuration: RelayClientConfiguration, timeout: Double?) async throws(RelayClientError) -> RelayConnection {
        var configuration = configuration
        if timeout != nil { configuration.reconnect.retryInitialConnection = true }
        let connection = try RelayConnection(configuration: configuration)
        let states = connection.states
        Task { [self] in
            for await change in states { self.observe(change) }
        }
        try await connection.connect()
        state.withLockedValue { $0.connected = true }
        return connection
    }

    func observe(_ change: ConnectionState) {
        switch change {
        case .connected:
            state.withLockedValue { $0.connected = true }
        case .disconnected(let error, let delay):
            state.withLockedValue { $0.connected = false; $0.lastError = error }
            printError("\(program): \(error.message); reconnecting in \(Self.format(delay))")
        case .closed(let error):
            state.withLockedValue { $0.connected = false; $0.lastError = error ?? $0.lastError }
        case .connecting:
            break
        }
    }

    /// The exit-69 error for a deadline that passed while the broker was unreachable.
    public func gaveUp(after seconds: Double, server: String) -> RelayClientError {
        let last = state.withLockedValue { $0.lastError }.map { " (last error: \($0.message))" } ?? ""
        return RelayClientError(category: .connection,
                                message: "gave up after --timeout \(Self.format(seconds: seconds)): the broker at \(server) did not answer in time\(last); check that relayd is running there, or raise --timeout",
                                exitCode: RelayExit.unavailable.rawValue)
    }

    /// With a `timeout`, starts the watchdog: when the time is up and
    /// `giveUp()` says so, the program prints why and exits 69 at once (a
    /// blocked read of stdin or a flush waiting for a lost broker cannot hold
    /// it). relay-pub gives up whenever it is still running; relay-sub only
    /// while it is not connected (connected, the time being up is a normal end).
    public func startWatchdog(timeout: Double?, server: String, giveUp: @escaping @Sendable () -> Bool) {
        guard let timeout else { return }
        Task.detached { [self] in
            try? await Task.sleep(nanoseconds: UInt64(timeout * 1_000_000_000))
            if giveUp() {
                CLIRunner.fail(self.gaveUp(after: timeout, server: server).message, code: RelayExit.unavailable.rawValue)
            }
        }
    }

    static func format(_ delay: Duration) -> String {
        let (seconds, attoseconds) = delay.components
        return format(seconds: Double(seconds) + Double(attoseconds) / 1e18)
    }

    static func format(seconds: Double) -> String {
        seconds < 1 ? "\(Int((seconds * 1000).rounded())) ms" : String(format: "%.1f s", seconds)
    }
}
