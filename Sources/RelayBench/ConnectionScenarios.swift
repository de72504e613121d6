import Foundation
import NIOConcurrencyHelpers
import RelayClient

/// connect (handshake rate) and idle (broker memory per connection).
public enum ConnectionScenarios {
    /// Opens and closes `count` connections, `concurrency` at a time. Each is
    /// a full TCP + mutual TLS 1.3 handshake (no resumption) + HELLO/WELCOME.
    public static func connect(count: Int, concurrency: Int, timeout: Double, target: BenchTarget) async -> BenchResult {
        var result = BenchResult(scenario: "connect", durability: target.durability)
        result.count = count
        let tickets = Tickets(count: count)
        let configuration = target.configuration
        let cpu0 = target.brokerPID.flatMap(ProcessStats.cpuSeconds)
        let client0 = ProcessStats.selfCPUSeconds()
        let began = BenchClock.now()
        let until = began + UInt64(timeout * 1e9)
        let (latency, errors, done) = await withTaskGroup(of: (LatencyRecorder, [String], Int).self) { group in
            for _ in 0..<max(1, concurrency) {
                group.addTask {
                    var latency = LatencyRecorder()
                    var errors: [String] = []
                    var done = 0
                    while BenchClock.now() < until {
                        guard tickets.take() else { break }
                        let t0 = BenchClock.now()
                        do {
                            let connection = try await RelayConnection.connect(configuration)
                            latency.record(nanoseconds: BenchClock.now() - t0)
                            done += 1
                            await connection.close()
                        } catch {
                            if errors.count < 3 { errors.append("connect failed: \(error)") }
                        }
                    }
                    return (latency, errors, done)
                }
            }
            var all = LatencyRecorder()
            var allErrors: [String] = []
            var total = 0
            for await (latency, errors, done) in group {
                all.add(latency)
                allErrors += errors
                total += done
            }
            return (all, allErrors, total)
        }
        let seconds = Double(BenchClock.now() - began) / 1e9
        let cpu1 = target.brokerPID.flatMap(ProcessStats.cpuSeconds)
        if let cpu0, let cpu1 { result.brokerCpuS = cpu1 - cpu0 }
        result.clientCpuS = ProcessStats.selfCPUSeconds() - client0
        result.elapsedS = seconds
        result.handshakesPerSec = seconds > 0 ? Double(done) / seconds : 0
        result.connectP50Us = latency.microseconds(atPercentile: 50)
        result.connectP99Us = latency.microseconds(atPercentile: 99)
        result.errors = errors
        if done < count, errors.isEmpty {
            result.timedOut = true
            result.errors.append("only \(done) of \(count) connections within \(timeout) s")
        }
        result.ok = result.isCorrect && done == count
        return result
    }

    /// Holds `count` idle connections and reports the broker's VmRSS growth per connection.
    public static func idle(count: Int, concurrency: Int, settleSeconds: Double, timeout: Double,
                            target: BenchTarget) async -> BenchResult {
        var result = BenchResult(scenario: "idle", durability: target.durability)
        result.count = count
        guard let pid = target.brokerPID, let before = ProcessStats.residentKiB(pid: pid) else {
            result.errors.append("the broker's memory cannot be read: let the bench start relayd, or pass --broker-pid of a relayd on this machine")
            return result
        }
        result.rssBeforeKb = before
        let configuration = target.configuration
        let tickets = Tickets(count: count)
        let began = BenchClock.now()
        let until = began + UInt64(timeout * 1e9)
        let (connections, errors) = await withTaskGroup(of: ([RelayConnection], [String]).self) { group in
            for _ in 0..<max(1, concurrency) {
                group.addTask {
                    var mine: [RelayConnection] = []
                    var errors: [String] = []
                    while BenchClock.now() < until {
                        guard tickets.take() else { break }
                        do {
                            mine.append(try await RelayConnection.connect(configuration))
                        } catch {
                            if errors.count < 3 { errors.append("connect failed: \(error)") }
                        }
                    }
                    return (mine, errors)
                }
            }
            var all: [RelayConnection] = []
            var allErrors: [String] = []
            for await (mine, errors) in group {
                all += mine
                allErrors += errors
            }
            return (all, allErrors)
        }
        result.elapsedS = Double(BenchClock.now() - began) / 1e9
        // Let the broker finish per-connection setup (audit lines, buffers) before reading.
        try? await Task.sleep(nanoseconds: UInt64(settleSeconds * 1e9))
        let after = ProcessStats.residentKiB(pid: pid)
        result.rssAfterKb = after
        if let after, !connections.isEmpty {
            result.rssPerConnectionBytes = Double(after - before) * 1024 / Double(connections.count)
        }
        result.errors = errors
        if connections.count < count {
            result.errors.append("only \(connections.count) of \(count) connections were opened")
        }
        await LoadScenarios.closeAll(connections)
        result.ok = result.isCorrect
        return result
    }
}

/// `count` connection attempts shared by concurrent tasks: each attempt
/// takes one ticket, and none is left once `count` were taken.
private struct Tickets: Sendable {
    let count: Int
    private let taken = NIOLockedValueBox(0)

    init(count: Int) { self.count = count }

    func take() -> Bool {
        taken.withLockedValue { value in
            guard value < count else { return false }
            value += 1
            return true
        }
    }
}
