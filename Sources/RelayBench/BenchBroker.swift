import Foundation
import RelayTLS

/// Why the bench could not start or read its broker.
public struct BenchError: Error, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// A relayd the bench starts for itself: a throw-away development PKI
/// (RelayTLS's ``DevelopmentPKI``, as `relayctl pki init`), an allow-all ACL
/// and a data directory in a temporary folder, removed by ``stop()``.
public final class BenchBroker: @unchecked Sendable {
    // @unchecked: created and stopped by one task; `process` is not touched concurrently;
    // the stop signal the signal handler records is behind `signalLock`.
    public let directory: URL
    public let port: Int
    public let pid: Int32
    public let caPath: String
    public let certificatePath: String
    public let keyPath: String
    private let process: Process

    private init(directory: URL, port: Int, process: Process, caPath: String, certificatePath: String, keyPath: String) {
        self.directory = directory
        self.port = port
        self.process = process
        self.pid = process.processIdentifier
        self.caPath = caPath
        self.certificatePath = certificatePath
        self.keyPath = keyPath
    }

    /// Writes the PKI and config and starts `relaydPath`; returns once it listens.
    /// - Parameters:
    ///   - parent: where to create the temporary folder (its file system is the store's).
    ///   - durability: `fsync` (the default of relayd) or `async`.
    public static func start(relaydPath: String, parent: URL, durability: String,
                             maxInFlight: Int) throws -> BenchBroker {
        guard FileManager.default.isExecutableFile(atPath: relaydPath) else {
            throw BenchError("relayd is not at \(relaydPath); build it (swift build) or pass --relayd PATH, or use --server with a running broker")
        }
        let directory = parent.appendingPathComponent("relay-bench-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        do {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        } catch {
            throw BenchError("cannot create \(directory.path): \(error.localizedDescription); pass --work-dir with a writable folder")
        }
        func path(_ name: String) -> String { directory.appendingPathComponent(name).path }
        do {
            let ca = try DevelopmentPKI.createCA(commonName: "Relay Bench CA", days: 2)
            try ca.write(certificateTo: path("ca.pem"), keyTo: path("ca.key"))
            let server = try DevelopmentPKI.issue(
                .server(commonName: "localhost", sans: [.dns("localhost"), .ip("127.0.0.1")], days: 2), signedBy: ca)
            try server.write(certificateTo: path("server.pem"), keyTo: path("server.key"))
            // The same subject as the peer harness's client (O/OU/CN and a SPIFFE URI).
            var request = CertificateRequest.client(commonName: "bench-client", organizationalUnits: ["bench"],
                                                    sans: [.uri("spiffe://example.org/bench")], days: 2)
            request.subject.insert([NameAttribute("O", "Example")], at: 0)
            let client = try DevelopmentPKI.issue(request, signedBy: ca)
            try client.write(certificateTo: path("client.pem"), keyTo: path("client.key"))
        } catch {
            try? FileManager.default.removeItem(at: directory)
            throw BenchError("cannot create the bench PKI: \(error)")
        }
        let config = """
        # written by relayctl bench
        [server]
        listen = "127.0.0.1:0"
        hello_timeout = "10s"

        [tls]
        certificate = "\(path("server.pem"))"
        private_key = "\(path("server.key"))"
        client_ca = ["\(path("ca.pem"))"]
        handshake_timeout = "10s"

        [storage]
        path = "\(path("data"))"
        durability = "\(durability)"
        max_size = "16GiB"

        [limits]
        max_connections = 20000
        max_in_flight = \(max(maxInFlight, 1))

        [metrics]
        listen = ""

        [log]
        level = "warning"

        [audit]
        path = "\(path("audit.jsonl"))"

        [[acl.rule]]
        name = "bench-allow-all"
        publish = [">"]
        subscribe = [">"]
        """
        let logPath = path("relayd.log")
        do {
            try config.write(toFile: path("relay.toml"), atomically: true, encoding: .utf8)
            _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        } catch {
            try? FileManager.default.removeItem(at: directory)
            throw BenchError("cannot write the bench config into \(directory.path): \(error.localizedDescription)")
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: relaydPath)
        process.arguments = ["--config", path("relay.toml"), "--init"]  // a fresh data directory
        guard let log = FileHandle(forWritingAtPath: logPath) else {
            try? FileManager.default.removeItem(at: directory)
            throw BenchError("cannot open \(logPath) for relayd's output")
        }
        process.standardOutput = log
        process.standardError = log
        process.standardInput = FileHandle.nullDevice
        do {
            try process.run()
        } catch {
            try? FileManager.default.removeItem(at: directory)
            throw BenchError("cannot start \(relaydPath): \(error.localizedDescription)")
        }
        // relayd logs "relayd listening on HOST:PORT" (in a logfmt or JSON line) once it accepts connections.
        let started = Date()
        while Date().timeIntervalSince(started) < 60 {
            let text = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
            if let line = text.split(separator: "\n").first(where: { $0.contains("relayd listening on ") }),
               let start = line.range(of: "relayd listening on ")?.upperBound,
               let colon = line[start...].prefix(while: { $0 != "\"" && $0 != " " }).lastIndex(of: ":"),
               let port = Int(line[line.index(after: colon)...].prefix(while: \.isNumber)) {
                return BenchBroker(directory: directory, port: port, process: process, caPath: path("ca.pem"),
                                   certificatePath: path("client.pem"), keyPath: path("client.key"))
            }
            if !process.isRunning { break }
            usleep(20_000)
        }
        let text = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
        if process.isRunning { process.terminate() }
        process.waitUntilExit()
        try? FileManager.default.removeItem(at: directory)
        throw BenchError("relayd did not start within 60 s; its output:\n\(text.suffix(2000))")
    }

    /// Stops relayd and exits when this process gets SIGINT or SIGTERM (e.g.
    /// from `timeout`), so an interrupted bench leaves no broker running.
    /// Keep the returned sources alive for as long as the broker runs.
    public func stopOnSignals() -> [any DispatchSourceSignal] {
        [SIGINT, SIGTERM].map { signalNumber in
            signal(signalNumber, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: signalNumber, queue: .global())
            source.setEventHandler { [self] in
                signalLock.withLock { stoppingOnSignal = signalNumber }
                stop()
                exit(128 + signalNumber)
            }
            source.resume()
            return source
        }
    }

    /// The signal `stopOnSignals` is stopping relayd for, once one came: relayd
    /// then exits because of it, not on its own, and the process exits
    /// 128 + that signal as soon as relayd is gone.
    public var stopSignal: Int32? { signalLock.withLock { stoppingOnSignal } }
    private let signalLock = NSLock()
    private var stoppingOnSignal: Int32?

    /// SIGTERM, wait up to 20 s, then SIGKILL; removes the temporary folder.
    public func stop(keepFiles: Bool = false) {
        if process.isRunning {
            kill(pid, SIGTERM)
            let started = Date()
            while process.isRunning, Date().timeIntervalSince(started) < 20 { usleep(20_000) }
            if process.isRunning { kill(pid, SIGKILL) }
            process.waitUntilExit()
        }
        if !keepFiles { try? FileManager.default.removeItem(at: directory) }
    }
}

/// Reads a process's memory and CPU from /proc (Linux).
public enum ProcessStats {
    /// VmRSS in KiB, or nil when the process or /proc is not there.
    public static func residentKiB(pid: Int32) -> Int? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix("VmRSS:") {
            return Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "")
        }
        return nil
    }

    /// User + system CPU seconds, or nil.
    public static func cpuSeconds(pid: Int32) -> Double? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = text.lastIndex(of: ")") else { return nil }
        // Fields after "(comm)": state is field 3; utime and stime are fields 14 and 15.
        let fields = text[text.index(after: close)...].split(separator: " ")
        guard fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]) else { return nil }
        let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
        return (user + system) / (ticks > 0 ? ticks : 100)
    }

    /// This process's user + system CPU seconds (the load generator's own cost).
    public static func selfCPUSeconds() -> Double {
        var usage = rusage()
        guard getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage) == 0 else { return 0 }
        func seconds(_ t: timeval) -> Double { Double(t.tv_sec) + Double(t.tv_usec) / 1e6 }
        return seconds(usage.ru_utime) + seconds(usage.ru_stime)
    }

    /// Raises the open-file limit to the hard limit (idle and connect hold many sockets).
    public static func raiseFileLimit() {
        var limit = rlimit()
        guard getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit) == 0, limit.rlim_cur < limit.rlim_max else { return }
        limit.rlim_cur = limit.rlim_max
        _ = setrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit)
    }
}
