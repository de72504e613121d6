import Foundation
import NIOConcurrencyHelpers

/// A child process whose stdout and stderr are collected line by line, so a
/// test can wait for a line ("listening on …") and show the output when it fails.
public final class ChildProcess: @unchecked Sendable {
    // @unchecked: `process` is configured before run() and only read after;
    // the collected output is behind `output`'s lock.
    public let process = Process()
    private let output = NIOLockedValueBox<Output>(Output())
    private let stdoutPipe = Pipe()
    private let stderrPipe = Pipe()
    private let stdinPipe = Pipe()

    public init(_ executable: String, _ arguments: [String], environment: [String: String]? = nil,
                currentDirectory: String? = nil) throws {
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        if let environment {
            process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        }
        if let currentDirectory { process.currentDirectoryURL = URL(fileURLWithPath: currentDirectory) }
        process.standardOutput = stdoutPipe
        process.standardError = stderrPipe
        process.standardInput = stdinPipe
        // Foundation's Process.run() is not safe to call from several threads
        // at once on Linux (a parallel test run crashed inside it): one at a time.
        try ChildProcess.launchLock.withLock { try process.run() }
        LiveChildren.shared.add(process)
        collect(stdoutPipe, index: 0)
        collect(stderrPipe, index: 1)
    }

    /// The lines read so far, the unfinished line of each pipe, and whether each pipe reached EOF.
    private struct Output {
        var stdout: [String] = []
        var stderr: [String] = []
        var partial = ["", ""]
        var closed = [false, false]
    }

    /// Reads `pipe` on a thread of its own until end of file. A blocking read
    /// sees EOF for certain once every writer is gone; Foundation's
    /// readabilityHandler sometimes never reported it after a fast exit.
    private func collect(_ pipe: Pipe, index: Int) {
        let handle = pipe.fileHandleForReading
        let reader = Thread { [output] in
            var chunk = [UInt8](repeating: 0, count: 65536)
            while true {
                // read(2): returns what is there (FileHandle.read(upToCount:) waits for the full count).
                var count: Int
                repeat {
                    count = chunk.withUnsafeMutableBytes { read(handle.fileDescriptor, $0.baseAddress, $0.count) }
                } while count < 0 && errno == EINTR
                let data = Data(chunk.prefix(max(0, count)))
                output.withLockedValue { state in
                    if data.isEmpty {
                        if !state.partial[index].isEmpty { Self.append(state.partial[index], to: &state, index: index) }
                        state.partial[index] = ""
                        state.closed[index] = true
                        return
                    }
                    state.partial[index] += String(decoding: data, as: UTF8.self)
                    while let newline = state.partial[index].firstIndex(of: "\n") {
                        let line = String(state.partial[index][..<newline])
                        state.partial[index] = String(state.partial[index][state.partial[index].index(after: newline)...])
                        Self.append(line, to: &state, index: index)
                    }
                }
                if data.isEmpty { return }
            }
        }
        reader.name = "child-\(process.processIdentifier)-\(index == 0 ? "stdout" : "stderr")"
        reader.start()
    }

    private static func append(_ line: String, to state: inout Output, index: Int) {
        if index == 0 { state.stdout.append(line) } else { state.stderr.append(line) }
    }

    private static let launchLock = NIOLock()

    public var pid: Int32 { process.processIdentifier }
    public var stdoutLines: [String] { output.withLockedValue { $0.stdout } }
    public var stderrLines: [String] { output.withLockedValue { $0.stderr } }
    public var isRunning: Bool { process.isRunning }

    public func writeToStdin(_ text: String) {
        stdinPipe.fileHandleForWriting.write(Data(text.utf8))
    }

    public func closeStdin() {
        try? stdinPipe.fileHandleForWriting.close()
    }

    /// Waits until a stdout line satisfies `predicate`; returns it, or nil on timeout or exit.
    /// (Lines arrive on the reader threads: polled.)
    public func waitForLine(timeout: Double = 30, where predicate: (String) -> Bool) async -> String? {
        let deadline = Date().addingTimeInterval(timeout)
        var exited = false
        let line = await eventuallyValue(timeout: timeout) { () -> String? in
            if let line = stdoutLines.first(where: predicate) { return line }
            exited = !process.isRunning
            return exited ? "" : nil
        }
        guard let line else { return nil }
        guard exited else { return line }
        await waitForOutputClosed(until: deadline)  // every line it wrote has been read
        return stdoutLines.first(where: predicate)
    }

    /// Waits for exit and returns the status, or nil on timeout.
    /// (Foundation reports the exit on its own thread: polled.)
    public func waitForExit(timeout: Double = 30) async -> Int32? {
        let deadline = Date().addingTimeInterval(timeout)
        guard await eventually(timeout: timeout, { !process.isRunning }) else { return nil }
        await waitForOutputClosed(until: deadline)
        return process.terminationStatus
    }

    /// Whether both stdout and stderr reached end of file (all output collected).
    public var outputClosed: Bool { output.withLockedValue { $0.closed == [true, true] } }

    /// Waits for EOF on both pipes: after the child exits, its last lines may
    /// still be in the pipes, and EOF is the event that says they were read.
    /// Polled (1 ms) because the EOF arrives on Foundation's reader thread;
    /// bounded by `deadline` (at least 5 s from now) in case a grandchild
    /// inherited the pipes and keeps them open.
    private func waitForOutputClosed(until deadline: Date) async {
        let end = max(deadline, Date().addingTimeInterval(5))
        _ = await eventually(timeout: end.timeIntervalSinceNow, every: 0.001) { outputClosed }
    }

    public func signal(_ signal: Int32) {
        if process.isRunning { kill(process.processIdentifier, signal) }
    }

    /// Output for failure messages.
    public var transcript: String {
        output.withLockedValue { "stdout:\n" + $0.stdout.joined(separator: "\n") + "\nstderr:\n" + $0.stderr.joined(separator: "\n") }
    }

    deinit {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        LiveChildren.shared.remove(process.processIdentifier)
    }
}

/// Every child a test started and has not released. `withRelayd` awaits
/// relayd's stop, but a test process that exits early (a crash, a timeout,
/// a child started outside a scope) would leave children behind; an atexit
/// hook kills what is left, so no relayd outlives `swift test`.
final class LiveChildren: @unchecked Sendable {
    // @unchecked: `pids` is guarded by the lock.
    static let shared: LiveChildren = {
        let children = LiveChildren()
        atexit { LiveChildren.shared.killAll() }
        return children
    }()

    private let lock = NIOLock()
    private var processes: [Int32: Process] = [:]

    func add(_ process: Process) { lock.withLock { processes[process.processIdentifier] = process } }
    func remove(_ pid: Int32) { lock.withLock { _ = processes.removeValue(forKey: pid) } }

    /// SIGKILL to every registered child that is still running (never to a
    /// pid Foundation already reaped, which the system may have reused).
    func killAll() {
        for process in lock.withLock({ Array(processes.values) }) where process.isRunning {
            kill(process.processIdentifier, SIGKILL)
        }
    }
}
