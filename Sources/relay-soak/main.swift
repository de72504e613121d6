import ArgumentParser
import Foundation
import RelayClient
import RelayTestSupport

/// Soak and leak check against the real relayd (`make soak`; not part of
/// `make test`): many long-lived connections with mixed traffic while
/// relayd's memory is sampled, then thousands of short connections; relayd's
/// open descriptors must return to their baseline after each phase.
struct Soak: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "relay-soak",
        abstract: "Runs relayd under long mixed load and connection churn and checks it leaks neither memory nor descriptors.")

    @Option(help: "How long the mixed-traffic phase runs.")
    var seconds = 300
    @Option(help: "Long-lived connections: half publish, a quarter subscribe, a quarter subscribe durably and ack.")
    var connections = 2_000
    @Option(help: "connect → handshake → HELLO → close cycles in the second phase.")
    var cycles = 10_000
    @Option(help: "Seconds between samples of relayd's memory.")
    var sampleEvery = 10
    @Option(help: "\"fsync\" or \"async\".")
    var durability = "fsync"
    @Option(help: "Fail when relayd's heap (RssAnon) grows by more than this over the connect cycles, in MiB.")
    var maxHeapGrowthMib = 32

    func validate() throws {
        guard seconds > 0, connections >= 4, cycles >= 0, sampleEvery > 0 else {
            throw ValidationError("--seconds and --sample-every must be positive, --connections at least 4, --cycles not negative")
        }
        guard ["fsync", "async"].contains(durability) else { throw ValidationError("--durability is \"fsync\" or \"async\"") }
    }

    func run() async throws { try await runSoak() }

    func runSoak() async throws {
        let limit = try ProcessProbe.ensureOpenFiles(connections + 1_024)
        print("open-file limit: soft \(limit.soft), hard \(limit.hard)")
        let relayd = try RelaydFixture(extra: """
        [[retention]]
        filter = "soak.>"
        max_age = "60s"
        """, durability: durability)
        do {
            try await relayd.start()
            let failures = try await soak(relayd)
            let status = await relayd.terminate()
            print("relayd exited with status \(status.map(String.init) ?? "none (still running)") after SIGTERM")
            await relayd.stop()
            if !failures.isEmpty {
                print("SOAK FAILED:\n" + failures.map { "  - \($0)" }.joined(separator: "\n"))
                throw ExitCode(1)
            }
            print("SOAK PASSED")
        } catch {
            await relayd.stop()
            throw error
        }
    }

    /// Both phases; returns what failed.
    private func soak(_ relayd: RelaydFixture) async throws -> [String] {
        guard let pid = relayd.process?.pid else { throw SoakError("relayd is not running") }
        var configuration = RelayClientConfiguration(host: "127.0.0.1", port: relayd.port, certificatePath: relayd.pki.alice.certificate,
                                                     privateKeyPath: relayd.pki.alice.key, caPath: relayd.pki.ca.certificate)
        configuration.reconnect = .never
        configuration.clientName = "relay-soak"
        var failures: [String] = []
        let counters = SoakCounters()
        // Warm up first: relayd opens a few descriptors once, on first use
        // (two signalfds and a timerfd, run with RELAY_SOAK_LIST_FDS=1 to see).
        print("relayd pid \(pid) at start: \(try ProcessSample(pid: pid).summary)")
        let warmup = Fleet(configuration: configuration, topics: 2, counters: SoakCounters())
        try await warmup.connect(count: 8, concurrency: 8)
        await warmup.run(until: Date().addingTimeInterval(3))
        await warmup.close()
        try await Task.sleep(nanoseconds: 2_000_000_000)
        let baseline = try ProcessSample(pid: pid)
        print("relayd baseline after a warm-up of 8 connections: \(baseline.summary)")
        if ProcessInfo.processInfo.environment["RELAY_SOAK_LIST_FDS"] != nil { listFiles(pid) }

        // Phase 1: long-lived connections with mixed traffic.
        let opening = Date()
        let fleet = Fleet(configuration: configuration, topics: 100, counters: counters)
        try await fleet.connect(count: connections, concurrency: 32)
        print("\(connections) connections open in \(Int(Date().timeIntervalSince(opening))) s: \(try ProcessSample(pid: pid).summary)")
        let deadline = Date().addingTimeInterval(Double(seconds))
        let sampling = Task { () -> [ProcessSample] in
            var samples: [ProcessSample] = []
            let start = Date()
            while true {
                guard let sample = try? ProcessSample(pid: pid) else { break }
                samples.append(sample)
                print(String(format: "  t=%4ds  %@  published %d, delivered %d, refused %d", Int(sample.time.timeIntervalSince(start)),
                             sample.summary, counters.value(counters.published), counters.value(counters.delivered),
                             counters.value(counters.refused)))
                if Date() >= deadline { break }
                try? await Task.sleep(nanoseconds: UInt64(min(Double(sampleEvery), max(0.1, deadline.timeIntervalSinceNow)) * 1e9))
            }
            return samples
        }
        await fleet.run(until: deadline)
        let samples = await sampling.value
        await fleet.close()
        let afterFleet = try await ProcessProbe.waitForFiles(pid: pid, baseline: baseline.openFiles, timeout: 60)
        let first = samples.first, last = samples.last
        print("mixed traffic: \(connections) connections, \(seconds) s, \(counters.value(counters.published)) published, "
              + "\(counters.value(counters.delivered)) delivered, \(counters.value(counters.refused)) refused")
        print("  relayd RssAnon start \(first?.anonKiB ?? 0) KiB → end \(last?.anonKiB ?? 0) KiB, trend "
              + String(format: "%+.1f KiB/min overall, %+.1f KiB/min over the second half", ProcessProbe.anonTrend(samples),
                       ProcessProbe.anonTrend(Array(samples.suffix(max(2, samples.count / 2)))))
              + "; VmRSS start \(first?.rssKiB ?? 0) KiB → end \(last?.rssKiB ?? 0) KiB (includes the store's mapped pages)")
        if ProcessInfo.processInfo.environment["RELAY_SOAK_LIST_FDS"] != nil { listFiles(pid) }
        print("  open fds: baseline \(baseline.openFiles), with \(connections) connections \(first?.openFiles ?? 0), after closing \(afterFleet.openFiles)")
        if afterFleet.openFiles != baseline.openFiles {
            failures.append("open descriptors after closing the fleet: \(afterFleet.openFiles), baseline \(baseline.openFiles)")
        }
        if counters.value(counters.refused) > 0 {
            failures.append("\(counters.value(counters.refused)) publishes failed; last error: \(counters.lastError.withLockedValue { $0 })")
        }

        // Phase 2: short connections.
        if cycles > 0 {
            let before = try ProcessSample(pid: pid)
            let started = Date()
            await connectCycles(cycles, concurrency: 8, configuration: configuration, counters: counters)
            let elapsed = Date().timeIntervalSince(started)
            try await Task.sleep(nanoseconds: 2_000_000_000)
            let after = try await ProcessProbe.waitForFiles(pid: pid, baseline: baseline.openFiles, timeout: 60)
            let growth = after.anonKiB - before.anonKiB
            print(String(format: "connect cycles: %d in %.0f s (%.0f/s), %d failed", cycles, elapsed, Double(cycles) / elapsed,
                         counters.value(counters.connectFailures)))
            print("  relayd before: \(before.summary)")
            print("  relayd after:  \(after.summary)  (RssAnon \(growth >= 0 ? "+" : "")\(growth) KiB)")
            if after.openFiles != baseline.openFiles {
                failures.append("open descriptors after \(cycles) connect cycles: \(after.openFiles), baseline \(baseline.openFiles)")
            }
            if growth > maxHeapGrowthMib << 10 {
                failures.append("relayd's heap grew by \(growth) KiB over \(cycles) connect cycles (limit \(maxHeapGrowthMib) MiB)")
            }
            if counters.value(counters.connectFailures) > 0 {
                failures.append("\(counters.value(counters.connectFailures)) connect cycles failed; last error: \(counters.lastError.withLockedValue { $0 })")
            }
        }
        return failures
    }
}

// Top-level code cannot use @main; this is what AsyncParsableCommand.main does
// (a bare `await Soak.main()` and `run()` resolve to the synchronous overloads here).
do {
    var command = try Soak.parseAsRoot()
    if let soak = command as? Soak {
        try await soak.runSoak()
    } else {
        try command.run()  // --help and other built-in commands
    }
} catch {
    Soak.exit(withError: error)
}

/// Prints and flushes at once, so progress shows when the output goes to a file
/// (`fflush(nil)` flushes every stream; Swift 6 does not allow naming `stdout`).
func print(_ line: String) {
    Swift.print(line)
    fflush(nil)
}

/// Where relayd's descriptors point (RELAY_SOAK_LIST_FDS=1), to tell a leak from a lazily opened file.
func listFiles(_ pid: Int32) {
    let dir = "/proc/\(pid)/fd"
    let names = ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).sorted { (Int($0) ?? 0) < (Int($1) ?? 0) }
    for name in names {
        print("    fd \(name) → \((try? FileManager.default.destinationOfSymbolicLink(atPath: "\(dir)/\(name)")) ?? "?")")
    }
}
