import Foundation

/// One `nats-server` with JetStream and mutual TLS on 127.0.0.1, in a
/// temporary directory, for the JetStream backend's contract and e2e tests
/// (the 3-node cluster fixture is a separate file). Clients authenticate with
/// a certificate from `pki` (e.g. `pki.alice`); the server presents
/// `pki.server` (IP SAN 127.0.0.1). Fails, never skips, when nats-server is
/// missing: the JetStream backend is part of the product.
public final class SingleNATSServer: @unchecked Sendable {
    // @unchecked: `process` is replaced only by restart(), which tests call from one task.
    public let pki: TLSTestPKI
    public let directory: TemporaryDirectory
    public private(set) var process: ChildProcess
    public let port: Int
    public var url: String { "tls://127.0.0.1:\(port)" }
    /// The CA file that verifies client certificates (`pki.ca` by default):
    /// one PEM file, which may hold several CAs. A change takes effect at
    /// the next ``restart()``.
    public var clientCA: String

    public struct Missing: Error, CustomStringConvertible {
        public var description: String
    }

    /// Starts the server and waits until it accepts clients (JetStream ready).
    public init(pki: TLSTestPKI, clientCA: String? = nil) async throws {
        self.pki = pki
        self.clientCA = clientCA ?? pki.ca.certificate
        directory = try TemporaryDirectory(prefix: "relay-nats")
        // A free port from the kernel: the server then keeps it across restart().
        port = try await Self.freePort()
        process = try await Self.launch(pki: pki, clientCA: self.clientCA, directory: directory, port: port)
    }

    private static func launch(pki: TLSTestPKI, clientCA: String, directory: TemporaryDirectory, port: Int) async throws -> ChildProcess {
        guard let binary = ["/usr/sbin/nats-server", "/usr/bin/nats-server", "/usr/local/bin/nats-server"]
            .first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            throw Missing(description: "nats-server is not installed (apt-get install nats-server, or `make deps`)")
        }
        let config = """
        listen: "127.0.0.1:\(port)"
        server_name: "relay-test-\(port)"
        jetstream { store_dir: "\(directory.file("js"))" }
        tls {
          cert_file: "\(pki.server.certificate)"
          key_file: "\(pki.server.key)"
          ca_file: "\(clientCA)"
          verify: true
          timeout: 2
        }
        """
        let path = directory.file("nats.conf")
        try config.write(toFile: path, atomically: true, encoding: .utf8)
        // nats-server logs to stderr; waitForLine reads stdout: merged by sh, which execs it (same pid).
        let child = try await ChildProcess("/bin/sh", ["-c", "exec \"$0\" -c \"$1\" 2>&1", binary, path])
        // The readiness line: after it, JetStream answers API requests.
        let ready = await child.waitForLine(timeout: 10) { $0.contains("Server is ready") }
        guard ready != nil else {
            child.signal(SIGKILL)
            throw Missing(description: "nats-server did not become ready in 10 s:\n\(child.transcript)")
        }
        return child
    }

    /// Stops the server (SIGKILL: what a crash or a lost quorum looks like to relayd).
    public func kill() async {
        process.signal(SIGKILL)
        _ = await process.waitForExit(timeout: 10)
    }

    /// Starts it again on the same port and data.
    public func restart() async throws {
        process = try await Self.launch(pki: pki, clientCA: clientCA, directory: directory, port: port)
    }

    deinit {
        process.signal(SIGKILL)
        directory.remove()
    }

    /// A free port outside the ephemeral range: `restart()` binds it again,
    /// and no client socket may take it while the server is down (StablePorts).
    private static func freePort() async throws -> Int {
        try StablePorts.reserve()[0]
    }
}

extension RelaydFixture {
    /// Points this relayd at `nats` (`[storage] backend = "jetstream"`),
    /// connecting as `client` (default `pki.alice`), and rewrites the config.
    /// For the JetStream tests. `startupTimeout`: `[storage.jetstream]
    /// startup_timeout`, `tailIdle`: `tail_idle` (relayd's defaults when nil).
    public func useJetStream(_ nats: SingleNATSServer, publishTimeout: String = "10s", extra: String = "",
                             startupTimeout: String? = nil, tailIdle: String? = nil,
                             client: TLSTestPKI.Files? = nil) throws {
        let client = client ?? nats.pki.alice
        storageExtra = """
        backend = "jetstream"

        [storage.jetstream]
        servers = ["\(nats.url)"]
        ca = "\(nats.pki.ca.certificate)"
        certificate = "\(client.certificate)"
        private_key = "\(client.key)"
        replicas = 1
        publish_timeout = "\(publishTimeout)"
        retry_backoff = "100ms"
        """ + (startupTimeout.map { "\nstartup_timeout = \"\($0)\"" } ?? "")
            + (tailIdle.map { "\ntail_idle = \"\($0)\"" } ?? "")
        try writeConfig(extra: extra)
    }

    /// Whether GET /readyz answers 200 (false on 503 or no answer).
    /// Needs the metrics listener (`metrics: true`).
    public func isReady() async -> Bool {
        guard let metricsPort else { return false }
        return (try? await HTTPGet.fetch(host: "127.0.0.1", port: metricsPort, path: "/readyz")) != nil
    }
}

/// Two relayds on one stream of `nats` (two cluster edges), each given
/// `useJetStream(nats, publishTimeout:, extra:)`, both started; stopped at the end.
public func withTwoJetStreamEdges(_ nats: SingleNATSServer, metrics: Bool = false, publishTimeout: String = "10s",
                                  extra: String = "", isolation: isolated (any Actor)? = #isolation,
                                  _ body: (RelaydFixture, RelaydFixture) async throws -> Void) async throws {
    let a = try RelaydFixture(pki: nats.pki, metrics: metrics)
    try a.useJetStream(nats, publishTimeout: publishTimeout, extra: extra)
    let b = try RelaydFixture(pki: nats.pki, metrics: metrics)
    try b.useJetStream(nats, publishTimeout: publishTimeout, extra: extra)
    try await withRelayd(a) { a in
        try await withRelayd(b) { b in try await body(a, b) }
    }
}
