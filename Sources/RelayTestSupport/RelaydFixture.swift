import Foundation
import NIOCore
import NIOPosix
import RelayTLS

/// Runs the real `relayd` executable on 127.0.0.1 with a config written into
/// a temporary directory, a real LMDB data directory and the test PKI.
/// `restart()` keeps the port and the data (for crash and resume tests).
public final class RelaydFixture: @unchecked Sendable {
    // @unchecked: mutated only by the test that owns it, between awaits.
    public let pki: TLSTestPKI
    public let directory: TemporaryDirectory
    public private(set) var process: ChildProcess?
    /// The processes of earlier runs (before a `restart()`), for `log`.
    private var earlierProcesses: [ChildProcess] = []
    public private(set) var port = 0
    /// The metrics listener's port, when started with `metrics: true`.
    public private(set) var metricsPort: Int?
    /// Whether the config enables the metrics listener (on a free port).
    public var metrics: Bool
    /// RLIMIT_NOFILE for relayd (e.g. the common default of 1024), or nil to inherit the test's.
    public var openFileLimit: Int?
    /// `[server] hello_timeout`, used by the next `writeConfig`. As long as
    /// ``FrameClient/loadedMachineDeadline``: a test task that connects and
    /// then waits its turn to send HELLO (hundreds of tests share the test
    /// process's two cooperative threads at start-up) must hit its own
    /// deadline first, not the broker's (an in-process broker closed such a
    /// connection with hello_timeout after 10 s once, in a full run).
    /// Tests of the timeout itself set a short one.
    public var helloTimeout = "60s"
    /// More `[tls]` lines used by the next `writeConfig` (e.g. a `crl` list
    /// of several files when `crl` is nil, or the CRL policy).
    public var tlsExtra = ""
    /// `[tls] client_ca` for the next `writeConfig`: the PKI's CA when nil
    /// (client-CA rotation tests list several, then drop one).
    public var clientCAs: [String]?
    /// Environment variables set for relayd from its next start (e.g.
    /// `SSL_CERT_FILE`, to show relayd never trusts the system store).
    public var environment: [String: String] = [:]
    /// More `[storage]` lines used by the next `writeConfig` (e.g. `dedup_window`).
    public var storageExtra = ""
    /// Pass `--init`, so relayd creates the data directory on its first start
    /// (without it relayd refuses a missing one, exit 66).
    public var initializeDataDirectory = true
    public var configPath: String { directory.file("relay.toml") }
    public var dataDirectory: String { directory.file("data") }
    public var auditPath: String { directory.file("audit.jsonl") }

    /// The default policy: every verified identity may publish and subscribe everywhere.
    public static let allowAll = """
    [[acl.rule]]
    name = "allow-all"
    publish = [">"]
    subscribe = [">"]
    """

    /// - Parameters:
    ///   - acl: `[[acl.rule]]` tables (and optionally `[acl]` principal).
    ///   - extra: more TOML appended to the config (e.g. `[limits]`).
    ///   - metrics: enable the metrics listener on 127.0.0.1 (free port; see `metricsPort`).
    public init(pki: TLSTestPKI? = nil, acl: String = RelaydFixture.allowAll, extra: String = "",
                crl: String? = nil, durability: String = "fsync", metrics: Bool = false) throws {
        self.pki = try pki ?? TLSTestPKI()
        self.directory = try TemporaryDirectory(prefix: "relayd")
        self.metrics = metrics
        try writeConfig(acl: acl, extra: extra, crl: crl, durability: durability)
    }

    /// Rewrites the config (atomically: a temporary file renamed over it, so
    /// relayd's file watcher never reads half of it). `metrics` keeps the
    /// fixture's setting unless given.
    public func writeConfig(acl: String = RelaydFixture.allowAll, extra: String = "", crl: String? = nil,
                            durability: String = "fsync", metrics: Bool? = nil) throws {
        if let metrics { self.metrics = metrics }
        let metricsListen = self.metrics ? "127.0.0.1:0" : ""
        let crlLine = crl.map { "crl = [\"\($0)\"]" } ?? ""
        let clientCALine = (clientCAs ?? [pki.ca.certificate]).map { "\"\($0)\"" }.joined(separator: ", ")
        let text = """
        [server]
        listen = "127.0.0.1:0"
        hello_timeout = "\(helloTimeout)"

        [tls]
        certificate = "\(pki.server.certificate)"
        private_key = "\(pki.server.key)"
        client_ca = [\(clientCALine)]
        \(crlLine)
        \(tlsExtra)
        handshake_timeout = "10s"

        [storage]
        path = "\(dataDirectory)"
        durability = "\(durability)"
        max_size = "1GiB"
        \(storageExtra)

        [metrics]
        listen = "\(metricsListen)"

        [log]
        level = "info"

        [audit]
        path = "\(auditPath)"

        \(extra)

        \(acl)
        """
        try text.write(toFile: configPath, atomically: true, encoding: .utf8)
    }

    /// Starts relayd (on a free port the first time, the same port after).
    /// The first port is outside the kernel's ephemeral range (StablePorts),
    /// so no client socket can be given it while relayd is down between a
    /// stop and a restart; if another process bound it since it was found
    /// free, the first start moves to another one.
    public func start() async throws {
        guard port == 0 else { return try await start(on: port) }
        for attempt in 1...5 {
            let candidate = try StablePorts.reserve()[0]
            do {
                return try await start(on: candidate)
            } catch let error as RelaydFixtureError where attempt < 5 && Self.isAddressInUse(error.message) {
                continue
            }
        }
    }

    /// relayd's start-up error for a listen port another socket holds:
    /// "the address is in use by another process" (StartupErrorText), or
    /// NIO's raw "Address already in use (errno: 98)" from older relayds.
    static func isAddressInUse(_ transcript: String) -> Bool {
        let text = transcript.lowercased()
        return text.contains("address is in use") || text.contains("already in use") || text.contains("errno: 98")
    }

    private func start(on requested: Int) async throws {
        let listen = "127.0.0.1:\(requested)"
        let relaydPath = try ProductLocator.executable("relayd")
        let arguments = ["--config", configPath, "--listen", listen] + (initializeDataDirectory ? ["--init"] : [])
        let child: ChildProcess
        if let limit = openFileLimit {
            // Through sh so only relayd gets the lower limit, not this test process.
            child = try await ChildProcess("/bin/sh", ["-c", "ulimit -n \(limit) && exec \"$0\" \"$@\"", relaydPath] + arguments,
                                           environment: environment)
        } else {
            child = try await ChildProcess(relaydPath, arguments, environment: environment)
        }
        if let process { earlierProcesses.append(process) }
        process = child
        guard let line = await child.waitForLine(timeout: 60, where: { RelaydLogLine.listeningPort($0) != nil }),
              let bound = RelaydLogLine.listeningPort(line) else {
            throw RelaydFixtureError(message: "relayd did not start:\n\(child.transcript)")
        }
        port = bound
        metricsPort = nil
        if metrics {
            guard let line = await child.waitForLine(timeout: 30, where: { RelaydLogLine.metricsPort($0) != nil }),
                  let metricsPort = RelaydLogLine.metricsPort(line) else {
                throw RelaydFixtureError(message: "relayd did not report its metrics listener:\n\(child.transcript)")
            }
            self.metricsPort = metricsPort
        }
    }

    /// Every run's stdout and stderr, oldest first (what a failing test shows).
    public var log: String {
        let runs = earlierProcesses + (process.map { [$0] } ?? [])
        if runs.isEmpty { return "(relayd was never started)" }
        return runs.enumerated().map { "relayd run \($0.offset + 1) (pid \($0.element.pid)):\n\($0.element.transcript)" }
            .joined(separator: "\n")
    }

    /// GET /metrics from the metrics listener (Prometheus text).
    public func scrapeMetrics() async throws -> String {
        guard let metricsPort else {
            throw RelaydFixtureError(message: "the metrics listener is off; create the fixture with metrics: true")
        }
        return try await HTTPGet.fetch(host: "127.0.0.1", port: metricsPort, path: "/metrics")
    }

    /// The value of one sample line (`name` or `name{labels}`), or nil when absent.
    public func metric(_ sample: String) async throws -> Double? {
        let text = try await scrapeMetrics()
        for line in text.split(separator: "\n") where line.hasPrefix(sample + " ") {
            return Double(line.dropFirst(sample.count + 1).trimmingCharacters(in: .whitespaces))
        }
        return nil
    }

    /// The audit trail's complete lines so far (a line relayd is still
    /// writing is left out until its newline is there).
    public func auditLines() -> [String] {
        guard let data = FileManager.default.contents(atPath: auditPath) else { return [] }
        var lines = data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
        lines.removeLast()  // empty after the final newline, or an unfinished line
        return lines.map { String(decoding: $0, as: UTF8.self) }
    }

    /// SIGKILL: no shutdown code runs (simulates a crash or power cut).
    public func kill() async {
        process?.signal(SIGKILL)
        _ = await process?.waitForExit(timeout: 30)
    }

    /// SIGTERM and wait; returns the exit status.
    public func terminate() async -> Int32? {
        process?.signal(SIGTERM)
        return await process?.waitForExit(timeout: 60)
    }

    public func reload() { process?.signal(SIGHUP) }

    public func restart() async throws {
        await kill()
        try await start()
    }

    /// Stops relayd and removes the temporary files.
    public func stop() async {
        await kill()
        directory.remove()
        pki.remove()
    }
}

public struct RelaydFixtureError: Error, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}

/// A GET on the metrics listener (which answers one request and closes)
/// that must answer 200: the body.
enum HTTPGet {
    static func fetch(host: String, port: Int, path: String) async throws -> String {
        let response = try await HTTPProbe.get(port: port, path: path, host: host)
        guard response.status == 200 else {
            throw RelaydFixtureError(message: "GET \(path) on \(host):\(port) failed: \(response.status) \(response.body.prefix(200))")
        }
        return response.body
    }
}
