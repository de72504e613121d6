import Foundation
import RelayTLS

/// A CA, a server and a client certificate in a temporary directory.
struct BenchPKI {
    let directory: String
    let server: TLSServerConfiguration
    let client: TLSClientConfiguration

    init() throws {
        directory = NSTemporaryDirectory() + "relay-bench-tls-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let ca = try DevelopmentPKI.createCA(commonName: "Bench CA")
        let server = try DevelopmentPKI.issue(.server(commonName: "localhost", sans: [.dns("localhost"), .ip("127.0.0.1")]), signedBy: ca)
        let client = try DevelopmentPKI.issue(.client(commonName: "bench", organizationalUnits: ["bench"]), signedBy: ca)
        try DevelopmentPKI.writeFile(ca.certificatePEM, to: directory + "/ca.pem", mode: 0o644)
        try server.write(certificateTo: directory + "/server.pem", keyTo: directory + "/server.key")
        try client.write(certificateTo: directory + "/client.pem", keyTo: directory + "/client.key")
        self.server = TLSServerConfiguration(certificateChain: .file(directory + "/server.pem"), privateKey: .file(directory + "/server.key"),
                                             clientCAs: [.file(directory + "/ca.pem")])
        self.client = Self.clientConfiguration(directory: directory)
    }

    static func clientConfiguration(directory: String) -> TLSClientConfiguration {
        TLSClientConfiguration(certificateChain: .file(directory + "/client.pem"), privateKey: .file(directory + "/client.key"),
                               trustRoots: [.file(directory + "/ca.pem")], serverName: "localhost")
    }
}

struct BenchError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// Writes a line unbuffered, so figures appear as they are measured even through a pipe.
func report(_ line: String) { FileHandle.standardOutput.write(Data((line + "\n").utf8)) }

/// 2,000 idle connections need more descriptors than the usual soft limit.
func raiseFileLimit() {
    var limit = rlimit()
    getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
    limit.rlim_cur = limit.rlim_max
    setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
}

func opensslVersion() -> String { (try? runTool("/usr/bin/openssl", ["version"]))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? "?" }

/// Runs a tool and returns its stdout. posix_spawn with an empty signal mask
/// and default handlers: Foundation's Process lets the child inherit the
/// spawning thread's blocked signals, and `openssl speed` then never sees
/// its SIGALRM and runs forever.
func runTool(_ path: String, _ arguments: [String]) throws -> String {
    var fds: [Int32] = [0, 0]
    guard pipe(&fds) == 0 else { throw BenchError("pipe failed") }
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_adddup2(&actions, fds[1], 1)
    posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
    posix_spawn_file_actions_addclose(&actions, fds[0])
    var attributes = posix_spawnattr_t()
    posix_spawnattr_init(&attributes)
    defer { posix_spawnattr_destroy(&attributes) }
    var empty = sigset_t()
    sigemptyset(&empty)
    var all = sigset_t()
    sigfillset(&all)
    posix_spawnattr_setsigmask(&attributes, &empty)
    posix_spawnattr_setsigdefault(&attributes, &all)
    posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
    // argv strings live until posix_spawn returns (strdup'd, freed by the defer).
    let argv: [UnsafeMutablePointer<CChar>?] = ([path] + arguments).map { strdup($0) } + [nil]
    defer { argv.forEach { free($0) } }
    var pid: pid_t = 0
    let rc = posix_spawn(&pid, path, &actions, &attributes, argv, environ)
    close(fds[1])
    guard rc == 0 else {
        close(fds[0])
        throw BenchError("cannot run \(path): \(String(cString: strerror(rc)))")
    }
    let output = FileHandle(fileDescriptor: fds[0], closeOnDealloc: true).readDataToEndOfFile()
    var status: Int32 = 0
    waitpid(pid, &status, 0)
    return String(decoding: output, as: UTF8.self)
}

/// Bytes per second of `openssl speed -evp aes-128-gcm` for 16384-byte
/// blocks: the last column of the AES-128-GCM line, in 1000s of bytes.
func opensslSpeedAESGCM() throws -> Double {
    let output = try runTool("/usr/bin/openssl", ["speed", "-seconds", "2", "-evp", "aes-128-gcm"])
    guard let line = output.split(separator: "\n").last(where: { $0.uppercased().hasPrefix("AES-128-GCM") }),
          let last = line.split(separator: " ").last, last.hasSuffix("k"), let kilo = Double(last.dropLast()) else {
        throw BenchError("cannot parse openssl speed output:\n\(output)")
    }
    return kilo * 1000
}

func residentBytes() -> Double {
    guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
          let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
          let kib = Double(line.split(separator: " ").dropFirst().first ?? "") else { return 0 }
    return kib * 1024
}

/// CPU time of the calling thread, in seconds.
func threadCPUSeconds() -> Double {
    var spec = timespec()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &spec)
    return Double(spec.tv_sec) + Double(spec.tv_nsec) / 1e9
}

func monotonicSeconds() -> Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }
