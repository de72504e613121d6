import Foundation
import RelayTestSupport
import Testing

/// Wave 17: TLS files as an operator receives them from a CA or another
/// tool, and the documented answer to a refused `relayctl purge`.
@Suite("Operator deployment: PEM files and documented refusals", .serialized)
struct OperatorPEMFileTests {
    /// A bundle written root first (`cat ca.pem server.pem`): the leaf is the
    /// second certificate, and relayd said "key does not match certificate",
    /// sending the operator to look for another key.
    @Test("a certificate bundle with the leaf not first says the key matches a later certificate and to put the leaf first")
    func chainInTheWrongOrder() async throws {
        try await withRelayd(start: false) { relayd in
            let ca = try String(contentsOfFile: relayd.pki.ca.certificate, encoding: .utf8)
            let leaf = try String(contentsOfFile: relayd.pki.server.certificate, encoding: .utf8)
            let bundle = relayd.directory.file("bundle.pem")
            try (ca + leaf).write(toFile: bundle, atomically: true, encoding: .utf8)
            let check = try await OperatorDeploymentTests.checkConfig(
                relayd, [("\"\(relayd.pki.server.certificate)\"", "\"\(bundle)\"")])
            #expect(check.status == 78, "status \(check.status.map(String.init) ?? "none"):\n\(check.transcript)")
            #expect(check.transcript.contains("certificate 2 of 2") && check.transcript.contains("first"), "\(check.transcript)")
        }
    }

    /// CAs publish CRLs in DER (the distribution point's format) and often
    /// hand out DER certificates; relayd said only "no CRL in PEM file".
    @Test("a DER CRL or certificate is named as DER, with the openssl command that converts it to PEM")
    func derFilesAreNamed() async throws {
        try await withRelayd(start: false) { relayd in
            let crl = try await OpenSSLCLI.writeCRL(signedBy: relayd.pki.ca, lastUpdate: Date(timeIntervalSinceNow: -60),
                                                    nextUpdate: Date(timeIntervalSinceNow: 86_400), to: relayd.directory.file("crl.pem"))
            let derCRL = relayd.directory.file("crl.der")
            let converted = try await OperatorDeploymentTests.run("/usr/bin/env", ["openssl", "crl", "-in", crl, "-outform", "DER", "-out", derCRL])
            #expect(converted.status == 0, "\(converted.transcript)")
            relayd.tlsExtra = "crl = [\"\(derCRL)\"]"
            try relayd.writeConfig()
            let check = try await OperatorDeploymentTests.checkConfig(relayd)
            #expect(check.status == 78, "status \(check.status.map(String.init) ?? "none"):\n\(check.transcript)")
            #expect(check.transcript.contains("DER") && check.transcript.contains("openssl crl -inform DER -in \(derCRL)"),
                    "\(check.transcript)")

            relayd.tlsExtra = ""
            try relayd.writeConfig()
            let derCertificate = relayd.directory.file("server.der")
            let made = try await OperatorDeploymentTests.run("/usr/bin/env", ["openssl", "x509", "-in", relayd.pki.server.certificate,
                                                                              "-outform", "DER", "-out", derCertificate])
            #expect(made.status == 0, "\(made.transcript)")
            let certificate = try await OperatorDeploymentTests.checkConfig(
                relayd, [("\"\(relayd.pki.server.certificate)\"", "\"\(derCertificate)\"")])
            #expect(certificate.status == 78, "\(certificate.transcript)")
            #expect(certificate.transcript.contains("DER") && certificate.transcript.contains("openssl x509 -inform DER -in \(derCertificate)"),
                    "\(certificate.transcript)")
        }
    }

    /// `--check-config` said 78 for TLS files that do not load, but the
    /// start exited 1, which systemd's `Restart=` retries for ever
    /// (`RestartPreventExitStatus=… 78` never applied).
    @Test("relayd's start exits 78 as --check-config does for TLS files that do not load (a key of another certificate)")
    func startExitsLikeCheckConfig() async throws {
        try await withRelayd(start: false) { relayd in
            let replace = [("\"\(relayd.pki.server.key)\"", "\"\(relayd.pki.alice.key)\"")]
            let check = try await OperatorDeploymentTests.checkConfig(relayd, replace)
            #expect(check.status == 78, "\(check.transcript)")
            let start = try await OperatorDeploymentTests.run(try ProductLocator.executable("relayd"),
                                                              ["--init", "--config", relayd.directory.file("operator.toml")])
            #expect(start.status == 78, "the start exited \(start.status.map(String.init) ?? "none"):\n\(start.transcript)")
            #expect(start.transcript.contains("does not match certificate"), "\(start.transcript)")
        }
    }

    /// operations.md said `relayctl purge` without `--yes` exits 2 (the
    /// CLIs' usage code before wave 4); it exits 64 like every usage error.
    @Test("operations.md's exit status for purge without --yes is the one relayctl gives")
    func purgeWithoutYesExitStatus() async throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent()
        let doc = try String(contentsOf: root.appendingPathComponent("docs/operations.md"), encoding: .utf8)
            .replacingOccurrences(of: "\n", with: " ")
        let sentence = try #require(doc.range(of: #"Without `--yes` relayctl refuses\s+\(exit (\d+)\)"#, options: .regularExpression),
                                    "operations.md no longer states purge's exit status")
        let documented = Int32(doc[sentence].filter(\.isNumber))
        // relayctl refuses before connecting: no broker is needed.
        let purge = try await OperatorDeploymentTests.run(try ProductLocator.executable("relayctl"),
                                                          ["purge", "orders.test.>", "--server", "127.0.0.1:1"])
        #expect(purge.status == documented, "operations.md says \(documented.map(String.init) ?? "?"), relayctl exits \(purge.status.map(String.init) ?? "none"):\n\(purge.transcript)")
        #expect(purge.transcript.contains("--yes"), "\(purge.transcript)")
    }
}

extension OperatorPEMFileTests {
    /// A data directory whose data.mdb is not LMDB (a wrong directory, a
    /// file restored from something else): relayd blamed "an incompatible
    /// LMDB version" and exited 1, which systemd's `Restart=` retries for ever.
    @Test("a data.mdb that is not an LMDB file: exit 66, saying it is not an LMDB file and what to do")
    func dataFileThatIsNotLMDB() async throws {
        try await withRelayd(start: false) { relayd in
            try FileManager.default.createDirectory(atPath: relayd.dataDirectory, withIntermediateDirectories: false,
                                                    attributes: [.posixPermissions: 0o700])
            try Data(repeating: 0x5A, count: 65_536).write(to: URL(fileURLWithPath: relayd.dataDirectory + "/data.mdb"))
            let start = try await OperatorDeploymentTests.run(try ProductLocator.executable("relayd"), ["--config", relayd.configPath])
            #expect(start.status == 66, "the start exited \(start.status.map(String.init) ?? "none"):\n\(start.transcript)")
            let line = start.transcript.split(separator: "\n").first { $0.contains("relayd cannot start") }.map(String.init) ?? ""
            #expect(line.contains("is not an LMDB file") && line.contains("[storage] path") && line.contains("backup"), "\(line)")
            #expect(!line.contains("incompatible LMDB version"), "\(line)")
        }
    }
}
