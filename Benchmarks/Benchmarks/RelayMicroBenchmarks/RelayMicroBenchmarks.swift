// Micro-benchmarks of Relay's hot paths with ordo-one/benchmark:
//
//   make bench-micro                                   # all of them, release build
//   swift package --disable-sandbox benchmark --target RelayMicroBenchmarks --filter 'routing.*'
//
// The hand-written executables (relay-bench-wire, -store, -tls) stay: they
// print the figures the docs compare with targets. The policy figures come
// from here (`make bench-policy`).
// These add what they do not: percentiles over many samples, allocations
// per operation, and baselines (`benchmark baseline update/compare`) to
// catch regressions between commits.
//
// Conventions, so every table reads the same way:
// - Fast operations run `benchmark.scaledIterations` (1,000) times per
//   sample with `scalingFactor: .kilo`: the tables are per operation (the
//   `*` rows), and the timer's own cost is spread over 1,000 operations.
// - Heavy state (10k subscriptions, 1,001 policy rules, a TLS session, an
//   LMDB store) is built in `setup`, outside the measurement.
// - Results go to `blackHole` so the optimiser cannot drop the work.
import Benchmark

/// Metrics of every benchmark here: wall clock, operations per second and
/// allocations per operation. Not `.cpuTotal`: on Linux the plugin reads it
/// from /proc/self/stat in scheduler ticks (10 ms), far coarser than any
/// sample here.
let relayMetrics: [BenchmarkMetric] = [.wallClock, .throughput, .mallocCountTotal]

/// Per-operation figures for fast code paths: 1,000 operations per sample.
/// (Computed: Benchmark.Configuration is not Sendable, so it cannot be a global let.)
var perOperation: Benchmark.Configuration {
    .init(metrics: relayMetrics, scalingFactor: .kilo, maxDuration: .seconds(2), maxIterations: 10_000)
}

let benchmarks: @Sendable () -> Void = {
    // Short by default: at most 2 s of samples per benchmark, so `make
    // bench-micro` takes under a minute after the build.
    Benchmark.defaultConfiguration = .init(metrics: relayMetrics, maxDuration: .seconds(2), maxIterations: 10_000)

    registerWireBenchmarks()
    registerRoutingBenchmarks()
    registerPolicyBenchmarks()
    registerStoreBenchmarks()
    registerTLSBenchmarks()
}

/// An error raised by a benchmark's own checks (wrong match count, short
/// read): the runner reports it as the benchmark's failure instead of a figure.
struct MicroBenchmarkError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
