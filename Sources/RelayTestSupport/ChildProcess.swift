import Foundation
import NIOConcurrencyHelpers

/// A child process whose stdout and stderr are collected line by line, so a
/// test can wait for a line ("listening on …") and show the output when it fails.
public final class ChildProcess: @unchecked Sendable {
    // @unchecked: `process` is configured before run() and only read after;
    // the collected output is behind `output`'s lock.
    public let process = Process()
    private let output = NIOLockedValueBox<(stdout: [String], stderr: [String], partial: [String])>(([], [], ["", ""]))
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
        collect(stdoutPipe, index: 0)
        collect(stderrPipe, index: 1)
        // Foundation's Process.run() is not safe to call from several threads
        // at once on Linux (a parallel test run crashed inside it): one at a time.
        try ChildProcess.launchLock.withLock { try process.run() }
        LiveChildren.shared.add(process)
    }

    private func collect(_ pipe: Pipe, index: Int) {
        pipe.fileHandleForReading.readabilityHandler = { [output] handle in
            let data = handle.availableData
            output.withLockedValue { state in
                if data.isEmpty {
                    if !state.partial[index].isEmpty { Self.append(state.partial[index], to: &state, index: index) }
                    state.partial[index] = ""
                    handle.readabilityHandler = nil
                    return
                }
                state.partial[index] += String(decoding: data, as: UTF8.self)
                while let newline = state.partial[index].firstIndex(of: "\n") {
                    let line = String(state.partial[index][..<newline])
                    state.partial[index] = String(state.partial[index][state.partial[index].index(after: newline)...])
                    Self.append(line, to: &state, index: index)
                }
            }
        }
    }

    private static func append(_ line: String, to state: inout (stdout: [String], stderr: [String], partial: [String]), index: Int) {
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
    public func waitForLine(timeout: Double = 30, where predicate: (String) -> Bool) async -> String? {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if let line = stdoutLines.first(where: predicate) { return line }
            if !process.isRunning {
                try? await Task.sleep(nanoseconds: 50_000_000)  // let the pipe drain
                return stdoutLines.first(where: predicate)
            }
            try? await Task.sleep(nanoseconds: 10_000_000)
        }
        return nil
    }

    /// Waits for exit and returns the status, or nil on timeout.
    public func waitForExit(timeout: Double = 30) async -> Int32? {
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning {
            if Date() > deadline { return nil }
            try? await Task.sleep(nanoseconds: 10_000_000)
        }
        try? await Task.sleep(nanoseconds: 20_000_000)  // let the pipes drain
        return process.terminationStatus
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

/// Every child a test started and has not released. Tests stop relayd from a
/// deferred Task that may not run before the test process exits; an atexit
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
