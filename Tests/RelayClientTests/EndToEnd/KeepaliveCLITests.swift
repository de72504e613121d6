import Foundation
import RelayClient
import RelayTestSupport
import Testing

/// `relay-sub --keepalive SECONDS`: an operator's subscriber behind a
/// firewall or NAT that drops idle flows silently must find the dead path
/// sooner than the library's default (15 s, so 30 to 45 s), or turn the
/// check off. The library's keep-alive itself is PartitionTests'.
@Suite("relay-sub --keepalive")
struct KeepaliveCLITests {
    @Test("relay-sub --keepalive 0.5 through a path that goes silent: a reconnect line naming the keep-alive, then it resumes after the path heals")
    func subFindsSilentPath() async throws {
        try await withBroker { broker in
            let proxy = try await TCPProxy.start(to: broker.port)
            defer { Task { await proxy.close() } }
            var arguments = broker.cliArguments()
            arguments[1] = "127.0.0.1:\(proxy.port)"
            // --connect-timeout 5: relay-sub does not retry its first
            // connection (no --timeout), and with 1 s the test failed once in
            // a full parallel run, all three waits in turn, as if that first
            // connection had timed out; after the heal, an attempt still waiting
            // in the partition plus the 5 s backoff ceiling stays inside
            // `resumed`'s 20 s.
            let child = try await ChildProcess(try ProductLocator.executable("relay-sub"),
                                               arguments + ["--topic", "ka.>", "--keepalive", "0.5", "--connect-timeout", "5"])
            let publisher = try await Publisher.connect(broker.clientConfiguration())
            // Subscribed: a message published straight to relayd arrives through the proxy.
            let received = await eventually(timeout: 20) {
                _ = try? await publisher.publish(topic: "ka.x", text: "before")
                return child.stdoutLines.contains { $0.contains("before") }
            }
            #expect(received, "\(child.transcript)")
            proxy.partition()
            // The event: relay-sub's own reconnect line, caused by the keep-alive.
            let detected = await eventually(timeout: 15) {
                child.stderrLines.contains { $0.contains("keep-alive") && $0.contains("reconnecting in") }
            }
            #expect(detected, "no keep-alive reconnect line: \(child.transcript)")
            proxy.heal()
            let resumed = await eventually(timeout: 20) {
                _ = try? await publisher.publish(topic: "ka.x", text: "after")
                return child.stdoutLines.contains { $0.contains("after") }
            }
            #expect(resumed, "\(child.transcript)")
            await publisher.close()
            child.signal(SIGTERM)
            _ = await child.waitForExit(timeout: 30)
        }
    }

    @Test("a bad --keepalive is a usage error, exit 64, naming the flag, for relay-pub and relay-sub")
    func badValue() async throws {
        let pki = try TLSTestPKI()
        defer { pki.remove() }
        let files = ["--server", "127.0.0.1:1", "--cert", pki.alice.certificate, "--key", pki.alice.key, "--ca", pki.ca.certificate]
        let pub = try await runCLI("relay-pub", files + ["--topic", "a.b", "--message", "x", "--keepalive=-2"])
        #expect(pub.status == 64, "\(pub.stderr)")
        // Not ArgumentParser's "unknown option": the range, and how to turn it off.
        #expect(pub.stderr.joined(separator: "\n").contains("--keepalive -2 is out of range"), "\(pub.stderr)")
        let sub = try await runCLI("relay-sub", files + ["--topic", "a.b", "--keepalive", "soon"])
        #expect(sub.status == 64, "\(sub.stderr)")
        #expect(sub.stderr.joined(separator: "\n").contains("0 turns it off"), "\(sub.stderr)")
    }
}
