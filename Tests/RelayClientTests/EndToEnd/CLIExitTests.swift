import Foundation
import RelayTestSupport
import Testing

/// relay-pub once exited with SIGSEGV (status 11) after a successful
/// publish in a loaded CI run: its main thread was in the library
/// finalizers that `exit` runs, after OpenSSL's atexit cleanup had freed the
/// locks a NIO thread still used to close the connection's TLS. The CLIs now
/// end with `_exit` after flushing their output (`CLIRunner.end`), so no
/// atexit handler runs while those threads do. The crash itself is a race
/// that cannot be made to happen on demand; what removes it can be checked:
/// a preloaded library registers an atexit handler that writes a marker,
/// and the marker must not appear, after a success or an error, while the
/// output the command wrote must.
@Suite("CLIs end without running atexit handlers")
struct CLIExitTests {
    /// Registers, at load, an atexit handler that writes `atexit-ran` to stderr.
    static let probeSource = """
    #include <stdlib.h>
    #include <unistd.h>
    static void ran(void) { (void)!write(2, "atexit-ran\\n", 11); }
    __attribute__((constructor)) static void probe(void) { atexit(ran); }
    """

    /// Builds the probe library into `directory`; its path.
    static func buildProbe(in directory: TemporaryDirectory) async throws -> String {
        let source = directory.file("atexit_probe.c")
        try probeSource.write(toFile: source, atomically: true, encoding: .utf8)
        let library = directory.file("atexit_probe.so")
        let cc = try await ChildProcess("/bin/sh", ["-c", "cc -O2 -Wall -Werror -shared -fPIC -o '\(library)' '\(source)'"])
        cc.closeStdin()
        let built = await cc.waitForExit(timeout: 60)
        try #require(built == 0, "cannot build the atexit probe:\n\(cc.transcript)")
        return library
    }

    @Test("the probe works: a plain program run with it writes the marker at exit")
    func probeSeesAnOrdinaryExit() async throws {
        let directory = try TemporaryDirectory(prefix: "atexit-probe")
        defer { directory.remove() }
        let probe = try await Self.buildProbe(in: directory)
        let shell = try await ChildProcess("/bin/true", [], environment: ["LD_PRELOAD": probe])
        shell.closeStdin()
        #expect(await shell.waitForExit(timeout: 30) == 0)
        #expect(shell.stderrLines.contains("atexit-ran"), "\(shell.transcript)")
    }

    @Test("relay-pub after a publish, and relay-sub on a usage error: their output comes, no atexit handler runs")
    func cliExitsSkipAtexit() async throws {
        let directory = try TemporaryDirectory(prefix: "atexit-probe")
        defer { directory.remove() }
        let probe = try await Self.buildProbe(in: directory)
        try await withBroker { broker in
            let pub = try await runCLI("relay-pub", broker.cliArguments()
                + ["--topic", "exit.x", "--message", "m", "--count", "2", "--verbose"], environment: ["LD_PRELOAD": probe])
            #expect(pub.status == 0, "\(pub.stderr)")
            let receipts = pub.stdout.filter { $0.hasPrefix("published sequence=") }
            #expect(receipts.count == 2, "\(pub.stdout)")
            #expect(!pub.stderr.contains("atexit-ran"), "relay-pub ran atexit handlers at its end: \(pub.stderr)")
        }
        let usage = try await runCLI("relay-sub", ["--no-such-flag"], environment: ["LD_PRELOAD": probe])
        #expect(usage.status == 64, "\(usage.stderr)")
        let named = usage.stderr.contains { $0.hasPrefix("Error:") }
        #expect(named, "the usage error was not written: \(usage.stderr)")
        #expect(!usage.stderr.contains("atexit-ran"), "relay-sub ran atexit handlers at its end: \(usage.stderr)")
    }

    /// relayd stops its own threads before it returns, but a library's
    /// (nats.c's, on a cluster edge) or dispatch's may still run when `exit`
    /// runs OpenSSL's atexit cleanup: the race the CLIs had.
    @Test("relayd after SIGTERM: exit 0, its last log line written, no atexit handler runs")
    func relaydExitSkipsAtexit() async throws {
        let directory = try TemporaryDirectory(prefix: "atexit-probe")
        defer { directory.remove() }
        let probe = try await Self.buildProbe(in: directory)
        let relayd = try RelaydFixture()
        relayd.environment["LD_PRELOAD"] = probe
        try await withRelayd(relayd) { relayd in
            let status = await relayd.terminate()
            #expect(status == 0, "\(relayd.log)")
            #expect(!relayd.log.contains("atexit-ran"), "relayd ran atexit handlers at its end: \(relayd.log)")
            #expect(relayd.log.contains("relayd stopped"), "relayd's last line was not written: \(relayd.log)")
        }
    }

    /// relayd writes its lifecycle lines (started, listening, stopped) on
    /// stdout. When what reads it goes away (a log shipper restarted,
    /// `relayd | head`), such a write raised SIGPIPE and killed the broker
    /// with every session; with SIGPIPE ignored, Foundation's non-throwing
    /// `FileHandle.write(_:)` then trapped on EPIPE (SIGILL). Here stdout is
    /// a pipe whose read end is closed before relayd starts, so each of
    /// those lines meets EPIPE.
    @Test("relayd whose stdout reader is gone: it listens, serves, and stops with 0 on SIGTERM")
    func relaydOutlivesAClosedStdout() async throws {
        let fixture = try RelaydFixture()
        defer { fixture.directory.remove() }
        let port = try #require(try StablePorts.reserve().first)
        let stdout = Pipe()
        try stdout.fileHandleForReading.close()
        let stderrPath = fixture.directory.file("stderr.txt")
        #expect(FileManager.default.createFile(atPath: stderrPath, contents: nil))
        let stderr = try #require(FileHandle(forWritingAtPath: stderrPath))
        let relayd = Process()
        relayd.executableURL = URL(fileURLWithPath: try ProductLocator.executable("relayd"))
        relayd.arguments = ["--config", fixture.configPath, "--listen", "127.0.0.1:\(port)", "--init"]
        relayd.standardOutput = stdout.fileHandleForWriting
        relayd.standardError = stderr
        try relayd.run()
        try stdout.fileHandleForWriting.close()
        defer { if relayd.isRunning { relayd.terminate() } }
        func stderrText() -> String { (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? "(no stderr file)" }

        // Its start-up lines went to the closed pipe; a session accepted
        // and welcomed while the process still runs shows it survived them.
        // The stop line after SIGTERM goes there too.
        var client: FrameClient?
        let settled = await eventually(timeout: 60, every: 0.05) {
            guard relayd.isRunning else { return true }
            client = try? await FrameClient.connect(port: port, pki: fixture.pki)
            return client != nil
        }
        let status = relayd.isRunning ? "still running" : "status \(relayd.terminationStatus)"
        let session = try #require(client, "relayd did not serve (\(status), settled \(settled)): \(stderrText())")
        do {
            let welcome = try await session.hello()
            #expect(!welcome.principal.isEmpty)
        } catch {
            let status = relayd.isRunning ? "still running" : "status \(relayd.terminationStatus)"
            Issue.record("HELLO failed (\(error)); relayd \(status): \(stderrText())")
        }
        await session.close()
        #expect(relayd.isRunning, "relayd ended after a session: \(stderrText())")

        relayd.terminate()
        let ended = await eventually(timeout: 60) { !relayd.isRunning }
        try #require(ended, "relayd did not stop after SIGTERM: \(stderrText())")
        #expect(relayd.terminationReason == .exit, "relayd was killed by signal \(relayd.terminationStatus): \(stderrText())")
        #expect(relayd.terminationStatus == 0, "\(stderrText())")
    }
}
