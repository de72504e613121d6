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
        #expect(try await runCLI("relayctl", ["pki", "init", "--dir", dir.path]).status == 64)  // refuses to overwrite
        let issue = try await runCLI("relayctl", ["pki", "issue", "--dir", dir.path, "--cn", "reporting", "--ou", "analytics", "--days", "3"])
        #expect(issue.status == 0, "\(issue.stderr)")

        // Run relayd with the generated CA, server certificate and CRL (empty so far).
        try await withRelayd(acl: allowAllACL, crl: dir.file("crl.pem"), start: false) { fixture in
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
            // The CRL `pki init` wrote does not list billing, so the checks below can tell.
            let billingSerial = try await certificateSerial(dir.file("billing.pem"))
            #expect(try await revokedSerials(dir.file("crl.pem"), ca: dir.file("ca.pem")).isEmpty)
            let revoke = try await runCLI("relayctl", ["pki", "revoke", "--dir", dir.path, "--cert", dir.file("billing.pem")])
            #expect(revoke.status == 0, "\(revoke.stderr)")
            // openssl reads the new CRL, its signature verifies against the CA, and it lists billing's serial only.
            #expect(try await revokedSerials(dir.file("crl.pem"), ca: dir.file("ca.pem")) == [billingSerial])
            #expect(try await runCLI("relayctl", ["pki", "revoke", "--dir", dir.path, "--serial", "not-hex"]).status == 64)

            // relayd, restarted on the rewritten CRL, refuses billing and still serves operator.
            await fixture.kill()
            try await fixture.start()
            let refused = try await runCLI("relay-pub", server + ["--cert", dir.file("billing.pem"), "--key", dir.file("billing.key"),
                                                                 "--topic", "pki.billing", "--message", "after revoke"])
            #expect(refused.status == 77, "revoked billing: \(refused.status) \(refused.stderr)")
            #expect(refused.stderr.joined(separator: " ").lowercased().contains("revoked"), "\(refused.stderr)")
            let still = try await runCLI("relay-pub", server + ["--cert", dir.file("operator.pem"), "--key", dir.file("operator.key"),
                                                               "--topic", "pki.operator", "--message", "after revoke"])
            #expect(still.status == 0, "operator after billing's revocation: \(still.stderr)")
        }
    }

    /// Runs the system openssl (an independent reader of what relayctl wrote).
    private func runOpenSSL(_ arguments: [String]) async throws -> (status: Int32, stdout: [String], stderr: [String]) {
        let child = try await ChildProcess("/usr/bin/openssl", arguments)
        child.closeStdin()
        guard let status = await child.waitForExit(timeout: 30) else {
            child.signal(SIGKILL)
            throw HarnessError.timeout("openssl did not exit within 30 s:\n\(child.transcript)")
        }
        return (status, child.stdoutLines, child.stderrLines)
    }

    /// The certificate's serial as openssl prints it (upper-case hex).
    private func certificateSerial(_ path: String) async throws -> String {
        let run = try await runOpenSSL(["x509", "-in", path, "-noout", "-serial"])
        let line = try #require(run.stdout.first { $0.hasPrefix("serial=") }, "openssl x509 -serial: \(run.stderr)")
        return String(line.dropFirst("serial=".count)).uppercased()
    }

    /// The serials `openssl crl -text` lists, after checking the CRL's signature with the CA.
    private func revokedSerials(_ crl: String, ca: String) async throws -> [String] {
        let run = try await runOpenSSL(["crl", "-in", crl, "-CAfile", ca, "-noout", "-text"])
        #expect(run.status == 0, "openssl crl: \(run.stderr)")
        #expect(run.stderr.contains { $0.contains("verify OK") }, "the CRL's signature did not verify: \(run.stderr)")
        return run.stdout.compactMap { line in
            let text = line.trimmingCharacters(in: .whitespaces)
            guard text.hasPrefix("Serial Number:") else { return nil }
            return text.dropFirst("Serial Number:".count).trimmingCharacters(in: .whitespaces).uppercased()
        }
    }

    /// `pki issue --cn ca` used to replace the CA's own key with a leaf's
    /// (and `--cn server` the broker's certificate with a client one): the
    /// development CA was gone, and the next reload locked every client out.
    @Test("pki issue refuses to overwrite a file in DIR: the CA, the CRL, the server certificate, an earlier client")
    func pkiIssueNeverOverwrites() async throws {
        let dir = try TemporaryDirectory(prefix: "relayctl-pki-overwrite")
        defer { dir.remove() }
        #expect(try await runCLI("relayctl", ["pki", "init", "--dir", dir.path]).status == 0)
        var before: [String: Data] = [:]
        for name in ["ca.pem", "ca.key", "crl.pem", "server.pem", "server.key", "billing.pem", "billing.key"] {
            before[name] = FileManager.default.contents(atPath: dir.file(name))
        }
        for arguments in [["--cn", "ca"], ["--cn", "x", "--name", "crl"], ["--cn", "server"], ["--cn", "billing"]] {
            let run = try await runCLI("relayctl", ["pki", "issue", "--dir", dir.path] + arguments)
            #expect(run.status == 64, "\(arguments): \(run.stderr)")
            #expect(run.stderr.joined().contains("already"), "\(arguments): \(run.stderr)")
        }
        for (name, data) in before {
            #expect(FileManager.default.contents(atPath: dir.file(name)) == data, "\(name) was rewritten")
        }
        // --force replaces a client certificate, never the CA or its CRL.
        #expect(try await runCLI("relayctl", ["pki", "issue", "--dir", dir.path, "--cn", "billing", "--force"]).status == 0)
        #expect(FileManager.default.contents(atPath: dir.file("billing.pem")) != before["billing.pem"])
        #expect(try await runCLI("relayctl", ["pki", "issue", "--dir", dir.path, "--cn", "ca", "--force"]).status == 64)
        #expect(FileManager.default.contents(atPath: dir.file("ca.key")) == before["ca.key"])
    }

    @Test("config check: 0 for a valid config, 78 for a broken one")
    func configCheck() async throws {
        try await withRelayd(acl: allowAllACL, start: false) { fixture in
            let ok = try await runCLI("relayctl", ["config", "check", "--config", fixture.configPath])
            #expect(ok.status == 0, "\(ok.stderr)")
            let broken = fixture.directory.file("broken.toml")
            try "[server]\nlisten = 42\n".write(toFile: broken, atomically: true, encoding: .utf8)
            let bad = try await runCLI("relayctl", ["config", "check", "--config", broken])
            #expect(bad.status == 78)
            // It names the file and the key, and says what is wrong with the value.
            let message = bad.stderr.joined(separator: "\n")
            #expect(message.contains(broken) && message.contains("server.listen") && message.contains("expected a string"), "\(message)")
        }
    }

    @Test("acl explain: 0 allowed, 77 denied, 66 when the certificate cannot be read")
    func aclExplain() async throws {
        let acl = """
        [[acl.rule]]
        name = "payments"
        match = { "subject.OU" = "payments" }
        publish = ["payments.>"]
        subscribe = ["payments.>"]
        """
        try await withRelayd(acl: acl, start: false) { fixture in
            let base = ["acl", "explain", "--config", fixture.configPath, "--cert", fixture.pki.alice.certificate]
            let allowed = try await runCLI("relayctl", base + ["--publish", "payments.eu"])
            #expect(allowed.status == 0, "\(allowed.stdout) \(allowed.stderr)")
            // The explanation: the rule that matched, the grant it gives and the verdict.
            #expect(allowed.stdout.contains("  [match] payments"), "\(allowed.stdout)")
            #expect(allowed.stdout.contains("    payments.>  (rule 'payments')"), "\(allowed.stdout)")
            #expect(allowed.stdout.contains("publish payments.eu: allowed by rule 'payments' (filter 'payments.>')"), "\(allowed.stdout)")
            let allowedResult = allowed.stdout.last { !$0.isEmpty }
            #expect(allowedResult == "result: ALLOWED", "\(allowed.stdout)")
            let denied = try await runCLI("relayctl", base + ["--subscribe", "orders.>"])
            #expect(denied.status == 77)
            #expect(denied.stdout.contains("subscribe orders.>: denied: no rule allows it"), "\(denied.stdout)")
            let deniedResult = denied.stdout.last { !$0.isEmpty }
            #expect(deniedResult == "result: DENIED", "\(denied.stdout)")
            let missing = try await runCLI("relayctl", ["acl", "explain", "--config", fixture.configPath, "--cert", "/nonexistent.pem"])
            #expect(missing.status == 66)
        }
    }

    @Test("audit verify: 0 for an intact trail, 1 naming the first broken line after an edit")
    func auditVerify() async throws {
        try await withBroker { broker in
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
}
