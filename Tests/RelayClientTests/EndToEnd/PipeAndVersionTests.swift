import Foundation
import RelayClient
import RelayCore
import RelayTestSupport
import Testing

/// The CLIs in pipes and scripts: a closed stdout ends relay-sub quietly,
/// and every binary answers --version from the one version source.
@Suite("CLIs in pipes")
struct PipeAndVersionTests {
    @Test("relay-sub | head -2 through /bin/sh: relay-sub exits 0 or 141 with nothing on stderr")
    func headClosesThePipe() async throws {
        try await withBroker { broker in
            let publisher = try await Publisher.connect(broker.clientConfiguration())
            for n in 1...2 { _ = try await publisher.publish(topic: "pipe.x", text: "m\(n)") }
            let sub = try ProductLocator.executable("relay-sub")
            let status = broker.directory.file("sub.status"), errors = broker.directory.file("sub.stderr")
            let quoted = ([sub] + broker.cliArguments() + ["--topic", "pipe.x", "--from", "earliest", "--format", "raw"])
                .map { "'\($0)'" }.joined(separator: " ")
            // relay-sub's own stderr and exit status go to files; the marker on
            // the shell's stderr says head has exited (the pipe's reader is gone).
            let script = "{ \(quoted) 2>'\(errors)'; echo $? >'\(status)'; } | { head -2; echo head-exited >&2; }"
            let shell = try await ChildProcess("/bin/sh", ["-c", script])
            // The marker is on stderr, which ChildProcess reads on its own thread: polled.
            let headExited = await eventually(timeout: 60) { shell.stderrLines.contains("head-exited") }
            #expect(headExited, "\(shell.transcript)")
            #expect(shell.stdoutLines == ["m1", "m2"], "\(shell.transcript)")
            // Now a message arrives for a subscriber whose stdout has no reader: the write fails (EPIPE).
            _ = try await publisher.publish(topic: "pipe.x", text: "m3")
            await publisher.close()
            let exited = await shell.waitForExit(timeout: 60)
            #expect(exited == 0, "\(shell.transcript)")
            let code = try String(contentsOfFile: status, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
            #expect(code == "0" || code == "141", "relay-sub exited \(code)")
            let stderr = try String(contentsOfFile: errors, encoding: .utf8)
            #expect(stderr.isEmpty, "relay-sub wrote to stderr: \(stderr.prefix(400))")
        }
    }

    @Test("--version on relayd, relayctl, relay-pub and relay-sub prints the one RelayVersion and exits 0")
    func versions() async throws {
        for binary in ["relayd", "relayctl", "relay-pub", "relay-sub"] {
            let run = try await runCLI(binary, ["--version"])
            #expect(run.status == 0, "\(binary): \(run.stderr)")
            #expect(run.stdout == [RelayVersion.description], "\(binary): \(run.stdout)")
        }
    }
}
