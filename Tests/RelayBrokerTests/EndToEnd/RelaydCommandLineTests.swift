import Foundation
import RelayTestSupport
import Testing

/// relayd's command line and health endpoints against the real binary
/// (configuration.md, operations.md "Metrics"): `--check-config` on a valid
/// config, `--data-dir` overriding `[storage] path`, `/healthz` and `/readyz`.
/// The refusals of `--check-config` (78, 66) are SingleInstanceTests'.
@Suite("relayd end to end: --check-config, --data-dir, /healthz, /readyz", .serialized)
struct RelaydCommandLineTests {
    @Test("--check-config on a valid config says so and exits 0 without starting: nothing listens, no data directory, key or trail is created")
    func checkConfigValid() async throws {
        try await withRelayd(metrics: true, start: false) { relayd in
            let run = try await SingleInstanceTests.runToExit(["--config", relayd.configPath, "--check-config"])
            #expect(run.status == 0, "exit status \(run.status.map(String.init) ?? "none: it started"):\n\(run.transcript)")
            #expect(run.transcript.contains("relayd: configuration \(relayd.configPath) is valid"), "\(run.transcript)")
            #expect(!run.transcript.contains("listening"), "\(run.transcript)")
            for path in [relayd.dataDirectory, relayd.auditPath, relayd.auditPath + ".lock"] {
                #expect(!FileManager.default.fileExists(atPath: path), "--check-config created \(path)")
            }
        }
    }

    @Test("--data-dir overrides [storage] path: the store, its lock and the audit key are created there, and the configured path stays untouched; an empty --data-dir is a usage error (64)")
    func dataDirOverride() async throws {
        try await withRelayd(start: false) { relayd in
            let override = relayd.directory.file("override-data")
            let child = try await ChildProcess(try ProductLocator.executable("relayd"),
                                               ["--config", relayd.configPath, "--listen", "127.0.0.1:0", "--init", "--data-dir", override])
            let listening = await child.waitForLine(timeout: 60) { RelaydLogLine.listeningPort($0) != nil }
            #expect(listening != nil, "relayd did not start:\n\(child.transcript)")
            let lock = (try? String(contentsOfFile: override + "/relayd.lock", encoding: .utf8)) ?? "(no such file)"
            #expect(lock.contains(String(child.pid)), "relayd.lock in --data-dir holds \(lock), not relayd's PID \(child.pid)")
            #expect(FileManager.default.fileExists(atPath: override + "/audit.key"), "the default key_file follows --data-dir")
            let created = (try? FileManager.default.contentsOfDirectory(atPath: override)) ?? []
            let hasStore = created.contains { $0.hasSuffix(".mdb") }
            #expect(hasStore, "no LMDB file in \(override): \(created)")
            #expect(!FileManager.default.fileExists(atPath: relayd.dataDirectory), "[storage] path was created too")
            child.signal(SIGTERM)
            #expect(await child.waitForExit(timeout: 60) == 0)

            let empty = try await SingleInstanceTests.runToExit(["--config", relayd.configPath, "--listen", "127.0.0.1:0", "--data-dir", ""])
            #expect(empty.status == 64, "exit status \(empty.status.map(String.init) ?? "none: it started"):\n\(empty.transcript)")
            #expect(empty.transcript.contains("--data-dir"), "\(empty.transcript)")
        }
    }

    @Test("/healthz answers 200 ok and /readyz 200 ready on the metrics listener of a running relayd; another path is 404 naming the three")
    func healthAndReadiness() async throws {
        try await withRelayd(metrics: true) { relayd in
            let port = try #require(relayd.metricsPort)
            let health = try await HTTPProbe.get(port: port, path: "/healthz")
            #expect(health.status == 200 && health.body == "ok\n", "\(health)")
            let ready = try await HTTPProbe.get(port: port, path: "/readyz")
            #expect(ready.status == 200 && ready.body == "ready\n", "\(ready)")
            let other = try await HTTPProbe.get(port: port, path: "/health")
            #expect(other.status == 404 && other.body.contains("/healthz") && other.body.contains("/readyz"), "\(other)")
        }
    }
}
