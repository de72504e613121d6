// relay-bench-tls: the RelayTLS figures in one run (build with -c release).
//   1. `openssl speed -evp aes-128-gcm`, 16384-byte column (the reference)
//   2. bulk throughput through TLSHandler over loopback, 16 KiB writes
//   3. full mTLS 1.3 handshakes per second, server side, ECDSA P-256
//   4. resident memory per idle established connection (2,000, server side;
//      the clients run in a child process so only server memory is counted)
// Targets: bulk >= 40% of AES-GCM, >= 1,000 handshakes/s, <= 64 KiB/connection.
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import RelayTLS

let arguments = CommandLine.arguments
if arguments.count >= 2, arguments[1] == "idle-clients" {
    try await IdleClientChild.run(arguments: Array(arguments.dropFirst(2)))
    exit(0)
}

raiseFileLimit()
let pki = try BenchPKI()
defer { try? FileManager.default.removeItem(atPath: pki.directory) }

report("relay-bench-tls (OpenSSL \(opensslVersion()), \(ProcessInfo.processInfo.activeProcessorCount) cores)")
// Memory first, while the allocator is fresh, so reuse of freed memory from
// the other runs does not hide the per-connection cost.
let selected = Set(arguments.dropFirst())  // e.g. `relay-bench-tls bulk`; none = all
func wants(_ name: String) -> Bool { selected.isEmpty || selected.contains(name) }
if wants("memory") {
    let perConnection = try await measureIdleMemory(pki: pki, connections: 2_000)
    report(String(format: "idle connection memory (2000 conns, server side RSS): %.1f KiB per connection [target <= 64 KiB]", perConnection / 1024))
}
if wants("handshakes") {
    let concurrency = Int(ProcessInfo.processInfo.environment["BENCH_CONCURRENCY"] ?? "") ?? 16
    let handshakes = try await measureHandshakes(pki: pki, seconds: 3, concurrency: concurrency)
    report(String(format: "mTLS handshakes (ECDSA P-256, TLS 1.3): %.0f/s end to end with client in-process on the other core; server CPU %.3f ms each = %.0f/s per server core [target >= 1000/s]",
                  handshakes.wallPerSecond, handshakes.serverCPUMillisecondsEach, 1000 / handshakes.serverCPUMillisecondsEach))
}

if wants("bulk") || wants("aes") {
    // BENCH_AES_MBPS skips the 12 s `openssl speed` run when profiling the bulk path.
    let aes = try Double(ProcessInfo.processInfo.environment["BENCH_AES_MBPS"] ?? "").map { $0 * 1e6 } ?? opensslSpeedAESGCM()
    report(String(format: "openssl speed -evp aes-128-gcm, 16384-byte blocks: %.1f MB/s", aes / 1e6))
    if wants("bulk") {
        // Three runs of 2 GiB: on 2 shared cores the wall-clock figure swings
        // with scheduling, so the median is reported with the range.
        var runs: [BulkFigures] = []
        for _ in 0..<3 { runs.append(try await measureBulk(pki: pki, bytes: 2 << 30)) }
        runs.sort { $0.bytesPerSecond < $1.bytesPerSecond }
        let median = runs[1]
        report(String(format: "bulk throughput over loopback (16 KiB writes, 1 connection, median of 3 x 2 GiB): %.1f MB/s = %.0f%% of AES-128-GCM (range %.0f-%.0f MB/s) [target >= 40%%]; CPU per GB: client %.2f s, server %.2f s, so %.0f%% of AES-128-GCM when each side has a core of its own",
                      median.bytesPerSecond / 1e6, 100 * median.bytesPerSecond / aes, runs[0].bytesPerSecond / 1e6, runs[2].bytesPerSecond / 1e6,
                      median.clientCPU / (median.bytes / 1e9), median.serverCPU / (median.bytes / 1e9),
                      100 * median.bytes / max(median.clientCPU, median.serverCPU) / aes))
    }
}
