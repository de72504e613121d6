import Foundation
import NIOConcurrencyHelpers
import Subprocess
import SystemPackage

/// A child process whose stdout and stderr are collected line by line, so a
/// test can wait for a line ("listening on …") and show the output when it fails.
///
/// Launched with swift-subprocess, not Foundation's `Process`: on Linux,
/// Foundation 6.3's `Process.run()` reads past the end of glibc's readdir
/// buffer while it lists /proc/self/fd (swift-corelibs-foundation #5472,
/// fixed upstream after 6.3), and a test process with a thousand descriptors
/// open crashed there with SIGSEGV in CI. swift-subprocess closes the child's
/// other descriptors with close_range(2) in the child and resets its signal
/// mask and handlers, so nothing is read from /proc in this process.
public final class ChildProcess: @unchecked Sendable {
    // @unchecked: every stored property is a constant; the collected output
    // and the exit status are behind `output`'s lock.
    public let pid: Int32
    private let output: NIOLockedValueBox<Output>
    private let stdinWriter: FileHandle
    /// Finishes when the child has exited and been reaped; its value is the status.
    private let exit: Task<Int32, Never>

    /// Starts `executable` with `arguments`; returns once it runs (throws if it cannot be started).
    public init(_ executable: String, _ arguments: [String], environment: [String: String]? = nil,
                currentDirectory: String? = nil) async throws {
        let stdin = try FileDescriptor.pipe()
        let stdout = try FileDescriptor.pipe()
        let stderr = try FileDescriptor.pipe()
        var overrides: [Environment.Key: String?] = [:]
        for (name, value) in environment ?? [:] {
            guard let key = Environment.Key(rawValue: name) else { throw ChildProcessError.badEnvironmentName(name) }
            overrides[key] = value
        }
        // The test process's own process group (Foundation's Process made a new
        // one): Ctrl-C on `swift test`, or a CI timeout that signals the group,
        // then stops relayd and the other children too, where the atexit hook
        // of LiveChildren never runs.
        let options = PlatformOptions()
        let output = NIOLockedValueBox<Output>(Output())
        // The launch reports the pid (or the error) through this one-element stream,
        // then the task stays to await the exit.
        let (launched, report) = AsyncThrowingStream<Int32, any Error>.makeStream()
        let exit = Task { () -> Int32 in
            let status: Int32
            do {
                let result = try await run(
                    .path(FilePath(executable)), arguments: Arguments(arguments),
                    environment: Environment.inherit.updating(overrides),
                    workingDirectory: currentDirectory.map { FilePath($0) }, platformOptions: options,
                    input: .fileDescriptor(stdin.readEnd, closeAfterSpawningProcess: true),
                    output: .fileDescriptor(stdout.writeEnd, closeAfterSpawningProcess: true),
                    error: .fileDescriptor(stderr.writeEnd, closeAfterSpawningProcess: true)
                ) { execution in
                    report.yield(execution.processIdentifier.value)
                    report.finish()
                }
                switch result.terminationStatus {
                case .exited(let code): status = code
                case .signaled(let signal): status = signal  // what Foundation's terminationStatus gave
                }
            } catch {
                report.finish(throwing: error)  // no effect if the pid was reported already
                status = -1
            }
            output.withLockedValue { $0.status = status }
            return status
        }
        let started: Result<Int32?, any Error>
        do {
            started = .success(try await launched.first(where: { _ in true }))
        } catch {
            started = .failure(error)
        }
        guard case .success(let reported) = started, let pid = reported else {
            // Not started: close this side's ends (swift-subprocess closes the child's).
            for end in [stdin.writeEnd, stdout.readEnd, stderr.readEnd] { try? end.close() }
            if case .failure(let error) = started { throw error }
            throw ChildProcessError.notStarted(executable)
        }
        self.pid = pid
        self.output = output
        self.exit = exit
        self.stdinWriter = FileHandle(fileDescriptor: stdin.writeEnd.rawValue, closeOnDealloc: true)
        LiveChildren.shared.add(self)
        collect(stdout.readEnd, index: 0)
        collect(stderr.readEnd, index: 1)
    }

    /// The lines read so far, the unfinished line of each pipe, whether each
    /// pipe reached EOF, and the exit status once the child was reaped.
    private struct Output {
        var stdout: [String] = []
        var stderr: [String] = []
        var partial = ["", ""]
        var closed = [false, false]
        /// Whether the last line collected had no newline (the child died mid-line).
        var unterminated = [false, false]
        var status: Int32?
    }

    /// Reads `descriptor` on a thread of its own until end of file, then closes
    /// it. A blocking read sees EOF for certain once every writer is gone.
    private func collect(_ descriptor: FileDescriptor, index: Int) {
        let reader = Thread { [output] in
            var chunk = [UInt8](repeating: 0, count: 65536)
            while true {
                // read(2) returns what is there; swift-system retries EINTR.
                let count = (try? chunk.withUnsafeMutableBytes { try descriptor.read(into: $0) }) ?? 0
                let data = chunk.prefix(count)
                output.withLockedValue { state in
                    if data.isEmpty {
                        if !state.partial[index].isEmpty {
                            Self.append(state.partial[index], to: &state, index: index)
                            state.unterminated[index] = true
                        }
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
                if data.isEmpty {
                    try? descriptor.close()
                    return
                }
            }
        }
        reader.name = "child-\(pid)-\(index == 0 ? "stdout" : "stderr")"
        reader.start()
    }

    private static func append(_ line: String, to state: inout Output, index: Int) {
        if index == 0 { state.stdout.append(line) } else { state.stderr.append(line) }
    }

    public var stdoutLines: [String] { output.withLockedValue { $0.stdout } }
    public var stderrLines: [String] { output.withLockedValue { $0.stderr } }
    /// Whether stdout ended without a newline: its last line may have been cut short.
    public var stdoutEndedMidLine: Bool { output.withLockedValue { $0.unterminated[0] } }
    /// True until the child has exited and been reaped.
    public var isRunning: Bool { output.withLockedValue { $0.status == nil } }
    /// The exit code, or the signal that ended the child; nil while it runs.
    public var terminationStatus: Int32? { output.withLockedValue { $0.status } }

    /// Writes `text` to the child's stdin; dropped if the child has exited
    /// (EPIPE: `LiveChildren` makes this process ignore SIGPIPE, which would
    /// otherwise end the whole test run).
    public func writeToStdin(_ text: String) {
        try? stdinWriter.write(contentsOf: Data(text.utf8))
    }

    public func closeStdin() {
        try? stdinWriter.close()
    }

    /// Waits until a stdout line satisfies `predicate`; returns it, or nil on timeout or exit.
    /// (Lines arrive on the reader threads: polled.)
    public func waitForLine(timeout: Double = 30, where predicate: (String) -> Bool) async -> String? {
        let deadline = Date().addingTimeInterval(timeout)
        var exited = false
        let line = await eventuallyValue(timeout: timeout) { () -> String? in
            if let line = stdoutLines.first(where: predicate) { return line }
            exited = !isRunning
            return exited ? "" : nil
        }
        guard let line else { return nil }
        guard exited else { return line }
        await waitForOutputClosed(until: deadline)  // every line it wrote has been read
        return stdoutLines.first(where: predicate)
    }

    /// Waits for exit and returns the status, or nil on timeout.
    public func waitForExit(timeout: Double = 30) async -> Int32? {
        let deadline = Date().addingTimeInterval(timeout)
        let exit = self.exit
        // Not a task group: it awaits every task before returning, and the
        // exit's cannot be cancelled, so the timeout never ended the wait for
        // a child that kept running. Two unstructured tasks race; the first
        // to answer resumes the wait and the deadline's is then cancelled.
        let answered = NIOLockedValueBox(false)
        let deadlineTask = NIOLockedValueBox<Task<Void, Never>?>(nil)
        let status: Int32? = await withCheckedContinuation { continuation in
            let finish: @Sendable (Int32?) -> Void = { value in
                let first = answered.withLockedValue { done in
                    defer { done = true }
                    return !done
                }
                if first { continuation.resume(returning: value) }
            }
            // The deadline, not a wait for the exit: time itself is what this
            // sleep measures (the caller's timeout); the exit is the other
            // task's event, and whichever finishes first wins.
            deadlineTask.withLockedValue { task in
                task = Task {
                    try? await Task.sleep(nanoseconds: UInt64(max(0, timeout) * 1_000_000_000))
                    if !Task.isCancelled { finish(nil) }
                }
            }
            Task { finish(await exit.value) }
        }
        deadlineTask.withLockedValue { $0?.cancel() }
        guard let status else { return nil }
        await waitForOutputClosed(until: deadline)
        return status
    }

    /// Whether both stdout and stderr reached end of file (all output collected).
    public var outputClosed: Bool { output.withLockedValue { $0.closed == [true, true] } }

    /// Waits for EOF on both pipes: after the child exits, its last lines may
    /// still be in the pipes, and EOF is the event that says they were read.
    /// Polled (1 ms) because the EOF arrives on a reader thread; bounded by
    /// `deadline` (at least 5 s from now) in case a grandchild inherited the
    /// pipes and keeps them open.
    private func waitForOutputClosed(until deadline: Date) async {
        let end = max(deadline, Date().addingTimeInterval(5))
        _ = await eventually(timeout: end.timeIntervalSinceNow, every: 0.001) { outputClosed }
    }

    /// Sends `signal` unless the child was already reaped (its pid may be reused then).
    public func signal(_ signal: Int32) {
        if isRunning { kill(pid, signal) }
    }

    /// Output for failure messages.
    public var transcript: String {
        output.withLockedValue { "stdout:\n" + $0.stdout.joined(separator: "\n") + "\nstderr:\n" + $0.stderr.joined(separator: "\n") }
    }

    deinit {
        signal(SIGKILL)
        LiveChildren.shared.remove(pid)
    }
}

/// Why a child could not be started (beyond swift-subprocess's own errors).
public enum ChildProcessError: Error, CustomStringConvertible {
    case badEnvironmentName(String)
    case notStarted(String)

    public var description: String {
        switch self {
        case .badEnvironmentName(let name): "\(name.debugDescription) is not a valid environment variable name"
        case .notStarted(let executable): "\(executable) was not started and reported no error"
        }
    }
}

/// Every child a test started and has not released. `withRelayd` awaits
/// relayd's stop, but a test process that exits early (a crash, a timeout,
/// a child started outside a scope) would leave children behind; an atexit
/// hook kills what is left, so no relayd outlives `swift test`.
final class LiveChildren: @unchecked Sendable {
    // @unchecked: `children` is guarded by the lock.
    static let shared: LiveChildren = {
        let children = LiveChildren()
        atexit { LiveChildren.shared.killAll() }
        // A write to the stdin of a child that has exited gets EPIPE, not a
        // SIGPIPE that kills the test process. (Children start with every
        // signal at its default: swift-subprocess resets them.)
        signal(SIGPIPE, SIG_IGN)
        return children
    }()

    private let lock = NIOLock()
    private var children: [Int32: Weak] = [:]

    private struct Weak { weak var child: ChildProcess? }

    func add(_ child: ChildProcess) { lock.withLock { children[child.pid] = Weak(child: child) } }
    func remove(_ pid: Int32) { lock.withLock { _ = children.removeValue(forKey: pid) } }

    /// SIGKILL to every registered child that is still running (never to a
    /// pid already reaped, which the system may have reused).
    func killAll() {
        for child in lock.withLock({ children.values.compactMap(\.child) }) {
            child.signal(SIGKILL)
        }
    }
}
