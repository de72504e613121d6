import Foundation
import RelayClient
import RelayTestSupport
import Testing

@Suite("relayctl")
struct RelayctlTests {
    @Test("pki init writes a CA, a server certificate and clients that work against relayd; issue and revoke rewrite the CRL")
    func pkiInitThenUse() async throws {
        let dir = try TemporaryDirectory(prefix: "relayctl-pki")
        defer { dir.remove() }
        let initRun = try await runCLI("relayctl", ["pki", "init", "--dir", dir.path])
        #expect(initRun.status == 0, "\(initRun.stderr)")
        for name in ["ca", "server", "billing", "operator", "payments"] {
            #expect(FileManager.default.fileExists(atPath: dir.file("\(name).pem")))
            #expect(FileManager.default.fileExists(atPath: dir.file("\(name).key")))
        }
        #expect(try await runCLI("relayctl", ["pki", "init", "--dir", dir.path]).status == 2)  // refuses to overwrite
        let issue = try await runCLI("relayctl", ["pki", "issue", "--dir", dir.path, "--cn", "reporting", "--ou", "analytics", "--days", "3"])
        #expect(issue.status == 0, "\(issue.stderr)")

        // Run relayd with the generated CA and server certificate.
        let fixture = try RelaydFixture(acl: allowAllACL)
        defer { Task { await fixture.stop() } }
        for (from, to) in [("ca.pem", fixture.pki.ca.certificate), ("server.pem", fixture.pki.server.certificate),
                           ("server.key", fixture.pki.server.key)] {
            try FileManager.default.removeItem(atPath: to)
            try FileManager.default.copyItem(atPath: dir.file(from), toPath: to)
        }
        try await fixture.start()
        let server = ["--server", "127.0.0.1:\(fixture.port)", "--ca", dir.file("ca.pem")]
        for client in ["billing", "operator", "payments", "reporting"] {
            let run = try await runCLI("relay-pub", server + ["--cert", dir.file("\(client).pem"), "--key", dir.file("\(client).key"),
                                                             "--topic", "pki.\(client)", "--message", "hi"])
            #expect(run.status == 0, "\(client): \(run.stderr)")
        }
        let revoke = try await runCLI("relayctl", ["pki", "revoke", "--dir", dir.path, "--cert", dir.file("billing.pem")])
        #expect(revoke.status == 0, "\(revoke.stderr)")
        let crl = try String(contentsOfFile: dir.file("crl.pem"), encoding: .utf8)
        #expect(crl.contains("BEGIN X509 CRL"))
        #expect(try await runCLI("relayctl", ["pki", "revoke", "--dir", dir.path, "--serial", "not-hex"]).status == 2)
    }

    @Test("config check: 0 for a valid config, 1 for a broken one")
    func configCheck() async throws {
        let fixture = try RelaydFixture(acl: allowAllACL)
        defer { Task { await fixture.stop() } }
        let ok = try await runCLI("relayctl", ["config", "check", "--config", fixture.configPath])
        #expect(ok.status == 0, "\(ok.stderr)")
        let broken = fixture.directory.file("broken.toml")
        try "[server]\nlisten = 42\n".write(toFile: broken, atomically: true, encoding: .utf8)
        let bad = try await runCLI("relayctl", ["config", "check", "--config", broken])
        #expect(bad.status == 1)
        #expect(!bad.stderr.isEmpty)
    }

    @Test("acl explain: 0 allowed, 1 denied, 2 when the certificate cannot be read")
    func aclExplain() async throws {
        let acl = """
        [[acl.rule]]
        name = "payments"
        match = { "subject.OU" = "payments" }
        publish = ["payments.>"]
        subscribe = ["payments.>"]
        """
        let fixture = try RelaydFixture(acl: acl)
        defer { Task { await fixture.stop() } }
        let base = ["acl", "explain", "--config", fixture.configPath, "--cert", fixture.pki.alice.certificate]
        let allowed = try await runCLI("relayctl", base + ["--publish", "payments.eu"])
        #expect(allowed.status == 0, "\(allowed.stdout) \(allowed.stderr)")
        #expect(!allowed.stdout.isEmpty)
        let denied = try await runCLI("relayctl", base + ["--subscribe", "orders.>"])
        #expect(denied.status == 1)
        let missing = try await runCLI("relayctl", ["acl", "explain", "--config", fixture.configPath, "--cert", "/nonexistent.pem"])
        #expect(missing.status == 2)
    }

    @Test("audit verify: 0 for an intact trail, 1 naming the first broken line after an edit")
    func auditVerify() async throws {
        let broker = try await startBroker()
        defer { Task { await broker.stop() } }
        let publisher = try await Publisher.connect(broker.clientConfiguration())
        _ = try await publisher.publish(topic: "audit.x", text: "x")
        await publisher.close()
        _ = await broker.terminate()
        let intact = try await runCLI("relayctl", ["audit", "verify", "--key", broker.auditKeyPath, broker.auditPath])
        #expect(intact.status == 0, "\(intact.stdout) \(intact.stderr)")
        var lines = try String(contentsOfFile: broker.auditPath, encoding: .utf8).split(separator: "\n").map(String.init)
        try #require(!lines.isEmpty)
        lines[0] = lines[0].replacingOccurrences(of: "\"", with: "'", options: [], range: lines[0].range(of: "\""))
        try (lines.joined(separator: "\n") + "\n").write(toFile: broker.auditPath, atomically: true, encoding: .utf8)
        let broken = try await runCLI("relayctl", ["audit", "verify", "--key", broker.auditKeyPath, broker.auditPath])
        #expect(broken.status == 1)
        #expect(broken.stderr.joined().contains("line 1"), "\(broken.stderr)")
    }
}
