import Foundation
import RelayClient
import RelayCore
import RelayTestSupport
import Testing

/// The admin surface's authorization, negative cases first (COMMON rule 5):
/// no grant → refused with a typed code and the session stays open; a read
/// grant → write operations refused; a revoked or foreign certificate → no
/// session at all. Every call, allowed or not, is in the audit trail with
/// the verified identity.
@Suite("Admin authorization")
struct AdminAuthorizationTests {
    @Test("no admin grant: status is refused with not_authorized, the session stays open, and the refusal is audited")
    func noGrantRefused() async throws {
        let ids = try AdminTestIdentities()
        try await withRelayd(try ids.fixture()) { relayd in
            let admin = try await AdminClient.connect(relayd.adminConfiguration(ids.app))
            var codes: [UInt16] = []
            for _ in 0..<2 {  // the second call proves the refusal did not close the session
                do {
                    _ = try await admin.call("status")
                } catch let refused as AdminClient.Refused {
                    codes.append(refused.code)
                }
            }
            await admin.close()
            #expect(codes == [RelayErrorCode.notAuthorized.rawValue, RelayErrorCode.notAuthorized.rawValue])
            let cli = try await runCLI("relayctl", ["status"] + relayd.cliArguments(ids.app))
            #expect(cli.status == 77, "\(cli.stderr)")
            #expect(cli.stderr.joined().contains("not_authorized"), "\(cli.stderr)")
            let denied = try await relayd.waitForAuditLine { $0.contains("\"admin\"") && $0.contains("\"denied\"") && $0.contains("\"app\"") }
            #expect(denied != nil, "no audit line for the refused admin call: \(relayd.auditLines())")
        }
    }

    @Test("a read grant lists but may not purge, delete, disconnect, back up or reload")
    func readGrantCannotWrite() async throws {
        let ids = try AdminTestIdentities()
        try await withRelayd(try ids.fixture()) { relayd in
            let viewer = relayd.cliArguments(ids.viewer)
            let status = try await runCLI("relayctl", ["status", "--format", "json"] + viewer)
            #expect(status.status == 0, "\(status.stderr)")
            for command in [["purge", "x.>", "--yes"], ["disconnect", "1"], ["reload"],
                            ["durable", "delete", "d", "--owner", String(repeating: "0", count: 64)]] {
                let run = try await runCLI("relayctl", command + viewer)
                #expect(run.status == 77, "\(command): \(run.status) \(run.stderr)")
                #expect(run.stderr.joined().contains("not_authorized"), "\(command): \(run.stderr)")
            }
            let dir = try TemporaryDirectory(prefix: "admin-backup-denied")
            defer { dir.remove() }
            let backup = try await runCLI("relayctl", ["backup", "--to", dir.file("copy")] + viewer)
            #expect(backup.status == 77, "\(backup.stderr)")
            #expect(!FileManager.default.fileExists(atPath: dir.file("copy/data.mdb")))
            let allowed = try await relayd.waitForAuditLine { $0.contains("\"status\"") && $0.contains("\"allowed\"") && $0.contains("\"viewer\"") }
            #expect(allowed != nil, "no audit line for the allowed status call")
        }
    }

    @Test("every allowed change is written in full: three purges within one repeat interval are three audit lines")
    func everyChangeIsAudited() async throws {
        let ids = try AdminTestIdentities()
        try await withRelayd(try ids.fixture()) { relayd in
            let admin = try await AdminClient.connect(relayd.adminConfiguration(ids.ops))
            let filters = ["a.one.>", "b.two.>", "c.three.>"]
            for filter in filters {
                _ = try await admin.call("purge", arguments: Array("{\"filter\":\"\(filter)\",\"confirm\":true}".utf8))
            }
            await admin.close()
            // The purges were answered, so each was recorded (or counted) before: the
            // trail must name every filter, not one line plus a count of the others.
            let last = try await relayd.waitForAuditLine { $0.contains("filter=\(filters[2])") }
            #expect(last != nil, "the last purge is not in the trail: \(relayd.auditLines())")
            for filter in filters {
                let line = relayd.auditLines().first { $0.contains("\"admin\"") && $0.contains("filter=\(filter)") }
                #expect(line?.contains("\"allowed\"") == true, "purge of \(filter) not in the trail: \(relayd.auditLines())")
            }
        }
    }

    @Test("a grant withdrawn by a reload is refused on the next call of a live admin session")
    func grantWithdrawnByReload() async throws {
        let ids = try AdminTestIdentities()
        try await withRelayd(try ids.fixture()) { relayd in
            let admin = try await AdminClient.connect(relayd.adminConfiguration(ids.viewer))
            _ = try await admin.call("status")
            try relayd.writeConfig(acl: AdminTestIdentities.acl.replacingOccurrences(of: "admin = [\"read\"]\n",
                                                                                  with: "subscribe = [\"dashboards.>\"]\n"))
            relayd.reload()
            let applied = try await relayd.waitForAuditLine { $0.contains("\"reload\"") && $0.contains("\"applied\"") }
            #expect(applied != nil, "the reload was not applied: \(relayd.auditLines())")
            var code: UInt16?
            do { _ = try await admin.call("status") } catch let refused as AdminClient.Refused { code = refused.code }
            await admin.close()
            #expect(code == RelayErrorCode.notAuthorized.rawValue)
        }
    }

    @Test("a revoked certificate and one from another CA get no admin session at all")
    func revokedAndForeignGetNoSession() async throws {
        let ids = try AdminTestIdentities()
        let relayd = try ids.fixture()
        let foreign = try TLSTestPKI()
        let stranger = try foreign.add("stranger-ops", .client(commonName: "ops"))
        try await withRelayd(relayd, start: false) { relayd in
            // Every CA of the tree has a CRL; intermediate A's revokes ops.
            let crls = try ids.tree.emptyCRLs(leaving: ["crl-int-a"])
                + [try ids.tree.pki.writeCRL(revoking: [ids.ops.issued.serialNumber], signedBy: ids.tree.intermediate, name: "crl-int-a")]
            relayd.tlsExtra = "crl = [" + crls.map { "\"\($0)\"" }.joined(separator: ", ") + "]"
            try relayd.writeConfig(acl: AdminTestIdentities.acl)
            try await relayd.start()
            let revoked = try await runCLI("relayctl", ["status"] + relayd.cliArguments(ids.ops))
            #expect(revoked.status == 77, "revoked ops: \(revoked.status) \(revoked.stderr)")
            let strangerRun = try await runCLI("relayctl", ["status"] + relayd.cliArguments(stranger))
            #expect(strangerRun.status == 77, "other CA: \(strangerRun.status) \(strangerRun.stderr)")
            #expect(line(in: relayd.auditLines(), containing: ["\"admin\""]) == nil, "an admin call was audited without a session")
        }
    }
}

extension RelaydFixture {
    /// An admin client configuration for `client`.
    func adminConfiguration(_ client: TLSTestPKI.Files) -> RelayClientConfiguration {
        var configuration = RelayClientConfiguration(host: "127.0.0.1", port: port, certificatePath: client.certificate,
                                                     privateKeyPath: client.key, caPath: pki.ca.certificate)
        configuration.clientName = "admin-tests"
        return configuration
    }

    /// The first audit line matching, polling the trail (the broker writes
    /// it from its own queue: there is no event to wait for); nil after 10 s.
    func waitForAuditLine(_ matches: @escaping (String) -> Bool) async throws -> String? {
        await eventuallyValue(every: 0.05) { self.auditLines().first(where: matches) }
    }
}
