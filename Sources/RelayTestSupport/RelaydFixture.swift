import Foundation
import RelayTLS

/// Runs the real `relayd` executable on 127.0.0.1 with a config written into
/// a temporary directory, a real LMDB data directory and the test PKI.
/// `restart()` keeps the port and the data (for crash and resume tests).
public final class RelaydFixture: @unchecked Sendable {
    // @unchecked: mutated only by the test that owns it, between awaits.
    public let pki: TLSTestPKI
    public let directory: TemporaryDirectory
    public private(set) var process: ChildProcess?
    public private(set) var port = 0
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
    public init(pki: TLSTestPKI? = nil, acl: String = RelaydFixture.allowAll, extra: String = "",
                crl: String? = nil, durability: String = "fsync") throws {
        self.pki = try pki ?? TLSTestPKI()
        self.directory = try TemporaryDirectory(prefix: "relayd")
        try writeConfig(acl: acl, extra: extra, crl: crl, durability: durability)
    }

    public func writeConfig(acl: String = RelaydFixture.allowAll, extra: String = "", crl: String? = nil,
                            durability: String = "fsync") throws {
        let crlLine = crl.map { "crl = [\"\($0)\"]" } ?? ""
        let text = """
        [server]
        listen = "127.0.0.1:0"
        hello_timeout = "2s"

        [tls]
        certificate = "\(pki.server.certificate)"
        private_key = "\(pki.server.key)"
        client_ca = ["\(pki.ca.certificate)"]
        \(crlLine)
        handshake_timeout = "3s"

        [storage]
        path = "\(dataDirectory)"
        durability = "\(durability)"
        max_size = "1GiB"

        [metrics]
        listen = ""

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
    public func start() async throws {
        let listen = "127.0.0.1:\(port)"
        let child = try ChildProcess(try ProductLocator.executable("relayd"), ["--config", configPath, "--listen", listen])
        process = child
        guard let line = await child.waitForLine(timeout: 60, where: { $0.hasPrefix("relayd listening on ") }),
              let colon = line.lastIndex(of: ":"), let bound = Int(line[line.index(after: colon)...]) else {
            throw RelaydFixtureError(message: "relayd did not start:\n\(child.transcript)")
        }
        port = bound
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
