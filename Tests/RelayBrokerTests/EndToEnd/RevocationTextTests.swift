import Foundation
import RelayCore
import RelayTestSupport
import RelayWire
import Testing

/// What the ERR frames that end a session or a subscription after a reload
/// tell the client: `subscription_revoked`, `identity_refused` ("no longer
/// granted") and `certificate_revoked`. Like the PUB/SUB refusals
/// (`PolicyDecisionEndToEndTests/refusalsRevealNothingElse`), they name no
/// rule, no other identity and none of the policy's filters: the client
/// learns what happened to what it asked for, the audit trail says why.
@Suite("relayd end to end: the ERR texts of a reload reveal nothing else", .serialized)
struct RevocationTextTests {
    @Test("subscription_revoked, identity_refused after a reload and certificate_revoked name no rule, filter or other identity; the audit trail names the rule")
    func reloadRefusalsRevealNothingElse() async throws {
        let acl = PolicyDecisionEndToEndTests.acl
        try await withRelayd(acl: acl, start: false) { relayd in
            let api = try relayd.pki.add("api", .client(commonName: "apiserver", organizationalUnits: ["orders"]))
            let shopper = try relayd.pki.add("shopper", .client(commonName: "shopper", organizationalUnits: ["billing"]))
            let watcher = try relayd.pki.add("watcher", .client(commonName: "watcher", organizationalUnits: ["ops"]))
            try await relayd.start()
            let apiClient = try await FrameClient.connect(port: relayd.port, pki: relayd.pki, as: api)
            try await apiClient.hello()
            let shopperClient = try await FrameClient.connect(port: relayd.port, pki: relayd.pki, as: shopper)
            try await shopperClient.hello()
            let watcherClient = try await FrameClient.connect(port: relayd.port, pki: relayd.pki, as: watcher)
            try await watcherClient.hello()
            #expect(try await apiClient.subscribe(1, "orders.apiserver.>").isAccepted)
            #expect(try await apiClient.subscribe(2, "data.x").isAccepted)

            // Reload 1: orders-team is gone (apiserver's orders subscription ends,
            // its data one stays); everyone-base is gone (the shopper is left with
            // fence-admin's denies alone: refused).
            let narrowed = acl.components(separatedBy: "[[acl.rule]]")
                .filter { !$0.contains("orders-team") && !$0.contains("everyone-base") }
                .joined(separator: "[[acl.rule]]") + """

                [[acl.rule]]
                name = "api-data"
                match = { "subject.CN" = "apiserver" }
                subscribe = ["data.x"]

                [[acl.rule]]
                name = "watch-data"
                match = { "subject.CN" = "watcher" }
                subscribe = ["data.x"]
                """
            try relayd.writeConfig(acl: narrowed)
            relayd.reload()
            let revoked = try #require(try await apiClient.nextError(), "apiserver's orders subscription did not end")
            #expect(revoked.errorCode == .subscriptionRevoked && revoked.subscriptionID == 1, "\(revoked)")
            let refused = try #require(try await shopperClient.nextError(), "the shopper's session did not end")
            #expect(refused.errorCode == .identityRefused, "\(refused)")

            // Reload 2: the watcher's certificate is revoked.
            try relayd.writeConfig(acl: narrowed, crl: try relayd.pki.writeCRL(revoking: [watcher.issued.serialNumber]))
            relayd.reload()
            let certificate = try #require(try await watcherClient.nextError(), "the watcher's session did not end")
            #expect(certificate.errorCode == .certificateRevoked, "\(certificate)")

            // The client's own names and the filter it asked for may appear; nothing else.
            let secrets = PolicyDecisionEndToEndTests.secrets + ["api-data", "watch-data", "apiserver", "watcher", "crl", ".pem"]
            var leaks: [String] = []
            for (error, own) in [(revoked, ["orders.apiserver.>", "apiserver"]), (refused, ["shopper", "billing"]),
                                 (certificate, ["watcher"])] {
                var rest = error.message
                for name in own { rest = rest.replacingOccurrences(of: name, with: "") }
                leaks += secrets.filter { rest.contains($0) }.map { "'\($0)' in \"\(error.message)\"" }
            }
            #expect(leaks.isEmpty, "reload ERR texts reveal: \(leaks)")
            // The reasons exist for the operator: the audit trail names the rule that no longer allows it.
            let ended = await relayd.waitForAudit { $0.event == "subscription_ended" && $0["subscription"] == "1" }
            #expect(ended?["rule"] == "(no rule allows it)" && ended?["filter"] == "orders.apiserver.>",
                    "\(String(describing: ended?.fields))")
            await apiClient.close()
        }
    }
}
