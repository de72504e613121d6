import NIOCore
import RelayCore
import RelayTLS
import RelayTestSupport
import RelayWire
import Testing

/// security.md "Decisions" and "Templates in filters", through a running
/// relayd with real certificates: a deny wins whichever rule it comes from,
/// a template deny that cannot be substituted is widened (never dropped), and
/// a refusal tells the client nothing about rules or other clients (relay-v1 §9).
@Suite("relayd end to end: policy decisions", .serialized)
struct PolicyDecisionEndToEndTests {
    /// security.md's worked example, with a `data.>` namespace whose private
    /// part is fenced per OU by a template deny. Rule names and CNs are
    /// distinctive so a refusal message that leaks them can be spotted.
    static let acl = """
    [[acl.rule]]
    name = "orders-team"
    match = { "subject.OU" = "orders" }
    publish = ["orders.{subject.CN}.>"]
    subscribe = ["orders.>"]
    deny_subscribe = ["orders.audit.>"]

    [[acl.rule]]
    name = "everyone-base"
    match = {}
    publish = ["metrics.{subject.CN}", "data.>"]
    subscribe = ["broadcast.>", "data.>"]

    [[acl.rule]]
    name = "fence-admin"
    match = {}
    deny_publish = ["orders.*.admin", "data.{subject.OU}.private"]
    deny_subscribe = ["data.{subject.OU}.private"]
    """

    /// What no refusal message may contain: rule names, other identities'
    /// names, and the policy's filters.
    static let secrets = ["orders-team", "everyone-base", "fence-admin", "shopper", "opsbot", "billing", "rule",
                          "orders.*.admin", "orders.audit", "{subject", "data.>", "orders.>", "broadcast", "private"]

    @Test("a deny of one rule ('fence-admin') overrides an allow of another ('orders-team', 'everyone-base') for PUB and SUB; the audit names the denying rule; nothing refused is stored")
    func denyOfOneRuleOverridesAllowOfAnother() async throws {
        try await withRelayd(acl: Self.acl, start: false) { relayd in
            let api = try relayd.pki.add("api", .client(commonName: "apiserver", organizationalUnits: ["orders"]))
            try await relayd.start()
            let client = try await FrameClient.connect(port: relayd.port, pki: relayd.pki, as: api)
            try await client.hello()

            // Allowed by orders-team; the same namespace's admin topic is denied by fence-admin.
            #expect(try await Self.publish(client, 1, "orders.apiserver.created") == "ack")
            #expect(try await Self.publish(client, 2, "orders.apiserver.admin") == "not_authorized")
            let denied = await relayd.waitForAudit { $0.event == "publish_denied" && $0["topic"] == "orders.apiserver.admin" }
            #expect(denied?["rule"] == "fence-admin", "publish_denied: \(String(describing: denied?.fields))")
            // everyone-base allows data.>; fence-admin denies data.orders.private.
            #expect(try await Self.publish(client, 3, "data.orders.public") == "ack")
            #expect(try await Self.publish(client, 4, "data.orders.private") == "not_authorized")

            #expect(try await client.subscribe(1, "data.orders.public").isAccepted)
            let privateSub = try await client.subscribe(2, "data.orders.private")
            #expect(privateSub.errorCode == .notAuthorized)
            // data.> is a subset of everyone-base's allow but intersects fence-admin's deny.
            let wideSub = try await client.subscribe(3, "data.>")
            #expect(wideSub.errorCode == .notAuthorized)
            // The first refusal of a kind is written in full (later ones within the
            // aggregation interval may be summarised: security.md "Aggregation").
            let subDenied = await relayd.waitForAudit { $0.event == "subscribe_denied" && $0["filter"] == "data.orders.private" }
            #expect(subDenied?["rule"] == "fence-admin", "subscribe_denied: \(String(describing: subDenied?.fields))")

            let stored = try await Self.storedTopics(relayd, as: api, filter: "orders.apiserver.>", marker: "orders.apiserver.marker")
            #expect(stored == ["orders.apiserver.created"], "stored under orders.apiserver.>: \(stored)")
            await client.close()
        }
    }

    @Test("a template deny whose value cannot be substituted (OU 'ops.x', or no OU) is widened to data.>: every data topic is refused, while an OU that substitutes is fenced only at its own private topic")
    func widenedTemplateDeny() async throws {
        try await withRelayd(acl: Self.acl, start: false) { relayd in
            let hostile = try relayd.pki.add("opsbot", .client(commonName: "opsbot", organizationalUnits: ["ops.x"]))
            let noUnit = try relayd.pki.add("nounit", .client(commonName: "nounit"))
            let plain = try relayd.pki.add("shopper", .client(commonName: "shopper", organizationalUnits: ["billing"]))
            try await relayd.start()

            // The control: a substitutable OU is denied only data.billing.private.
            let control = try await FrameClient.connect(port: relayd.port, pki: relayd.pki, as: plain)
            try await control.hello()
            #expect(try await Self.publish(control, 1, "data.billing.public") == "ack")
            #expect(try await Self.publish(control, 2, "data.billing.private") == "not_authorized")
            #expect(try await Self.publish(control, 3, "data.ops.public") == "ack")
            #expect(try await control.subscribe(1, "data.ops.>").isAccepted)
            await control.close()

            for (files, name) in [(hostile, "opsbot"), (noUnit, "nounit")] {
                let client = try await FrameClient.connect(port: relayd.port, pki: relayd.pki, as: files)
                try await client.hello()  // everyone-base still grants metrics.<CN>
                #expect(try await Self.publish(client, 1, "metrics.\(name)") == "ack", "\(name)")
                var id: UInt64 = 2
                for topic in ["data.ops.public", "data.x.private", "data.billing.public", "data.ops.x.private"] {
                    #expect(try await Self.publish(client, id, topic) == "not_authorized", "\(name) publish \(topic)")
                    id += 1
                }
                var subscription: UInt32 = 1
                for filter in ["data.ops.public", "data.*.public", "data.>"] {
                    let ack = try await client.subscribe(subscription, filter)
                    #expect(ack.errorCode == .notAuthorized, "\(name) subscribe \(filter): \(ack)")
                    subscription += 1
                }
                #expect(try await client.subscribe(subscription, "broadcast.>").isAccepted)
                let serial = files.issued.serialNumber
                let denied = await relayd.waitForAudit { $0.event == "publish_denied" && $0["serial"] == serial }
                #expect(denied?["rule"] == "fence-admin", "\(name): \(String(describing: denied?.fields))")
                await client.close()
            }
            let stored = try await Self.storedTopics(relayd, as: plain, filter: "data.*.public", marker: "data.marker.public")
            #expect(stored == ["data.billing.public", "data.ops.public"], "stored under data.*.public: \(stored)")
        }
    }

    @Test("refused PUBs and SUBs are told not_authorized naming only what they asked for: no rule, filter or other identity")
    func refusalsRevealNothingElse() async throws {
        try await withRelayd(acl: Self.acl, start: false) { relayd in
            let api = try relayd.pki.add("api", .client(commonName: "apiserver", organizationalUnits: ["orders"]))
            try relayd.pki.add("shopper", .client(commonName: "shopper", organizationalUnits: ["billing"]))
            try await relayd.start()
            let client = try await FrameClient.connect(port: relayd.port, pki: relayd.pki, as: api)
            try await client.hello()
            var leaks: [String] = []
            var id: UInt64 = 1
            // Denied by a rule, outside every allow, another client's namespace.
            for topic in ["orders.apiserver.admin", "orders.shopper.created", "data.orders.private", "secret.topic"] {
                guard case .publishError(let error)? = try await client.publishReply(id, topic) else {
                    Issue.record("PUB \(topic) was not refused")
                    continue
                }
                #expect(error.errorCode == .notAuthorized)
                leaks += Self.leaks(in: error.message, asked: topic)
                id += 1
            }
            var subscription: UInt32 = 1, refusedFilters: [String] = []
            // orders.shopper.> is inside orders-team's subscribe grant: the one accepted.
            for filter in ["orders.>", "orders.audit.x", "data.>", "data.orders.private", "secret.>", "orders.shopper.>"] {
                let ack = try await client.subscribe(subscription, filter)
                subscription += 1
                if ack.isAccepted { continue }
                refusedFilters.append(filter)
                #expect(ack.errorCode == .notAuthorized, "SUB \(filter): \(ack)")
                leaks += Self.leaks(in: ack.message, asked: filter)
            }
            // Messages were read: four PUBs (id ends at 5) and five SUBs refused.
            #expect(id == 5 && refusedFilters == ["orders.>", "orders.audit.x", "data.>", "data.orders.private", "secret.>"],
                    "refused PUBs \(id - 1), SUBs \(refusedFilters)")
            #expect(leaks.isEmpty, "refusal messages reveal: \(leaks)")
            await client.close()
        }
    }

    @Test("an identity refused at HELLO is told identity_refused in a sentence that names no rule, while the audit trail says which rules matched")
    func identityRefusalRevealsNothing() async throws {
        // Without everyone-base, fence-admin (deny only) is all that applies to OU=billing.
        let withoutBase = Self.acl.components(separatedBy: "[[acl.rule]]").filter { !$0.contains("everyone-base") }
            .joined(separator: "[[acl.rule]]")
        try await withRelayd(acl: withoutBase, start: false) { relayd in
            let stranger = try relayd.pki.add("shopper", .client(commonName: "shopper", organizationalUnits: ["billing"]))
            try await relayd.start()
            let client = try await FrameClient.connect(port: relayd.port, pki: relayd.pki, as: stranger)
            var refusal: ErrorFrame?
            do {
                let welcome = try await client.hello()
                Issue.record("an identity only a deny rule applies to got a session: \(welcome.principal)")
            } catch FrameClientError.refused(let error) {
                refusal = error
            }
            let error = try #require(refusal)
            #expect(error.errorCode == .identityRefused)
            let leaks = Self.leaks(in: error.message, asked: "")
            #expect(leaks.isEmpty, "the refusal reveals: \(leaks)")
            // The reason exists (operators see it): it is withheld from the client only.
            let serial = stranger.issued.serialNumber
            let audited = await relayd.waitForAudit { $0.event == "connection_refused" && $0["serial"] == serial }
            #expect(audited?["reason"]?.contains("fence-admin") == true, "connection_refused: \(String(describing: audited?.fields))")
            await client.close()
        }
    }

    // MARK: Helpers

    /// The secrets `message` names, once the client's own topic or filter is taken out.
    static func leaks(in message: String, asked: String) -> [String] {
        let rest = asked.isEmpty ? message : message.replacingOccurrences(of: asked, with: "")
        return secrets.filter { rest.contains($0) }.map { "'\($0)' in \"\(message)\"" }
    }

    /// Publishes one message: "ack" when acknowledged, else the PUBERR's code name.
    static func publish(_ client: FrameClient, _ id: UInt64, _ topic: String) async throws -> String {
        switch try await client.publishReply(id, topic) {
        case .publishAck?: return "ack"
        case .publishError(let error)?: return error.errorCode?.name ?? "code \(error.code)"
        default: throw BrokerTestError.refused("no reply to PUB \(topic)")
        }
    }

    /// The topics stored under `filter`, oldest first (a replay up to a
    /// marker published on `marker`, which `filter` matches).
    static func storedTopics(_ relayd: RelaydFixture, as files: TLSTestPKI.Files, filter: String,
                             marker: String) async throws -> [String] {
        let reader = try await FrameClient.connect(port: relayd.port, pki: relayd.pki, as: files)
        try await reader.hello()
        let stored = try await reader.storedMessages(filter, marker: marker)
        await reader.close()
        return stored.map(\.topic)
    }
}
