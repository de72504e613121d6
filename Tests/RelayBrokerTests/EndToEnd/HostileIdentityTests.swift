import Foundation
import NIOCore
import RelayBroker
import RelayCore
import RelayTLS
import RelayTestSupport
import RelayWire
import Testing

/// Certificates whose subject is chosen to attack policy, connected to a
/// real relayd over real TLS: names with two values of a templated
/// attribute, bidi and C1 controls in names, and CNs made of topic syntax.
/// Each certificate is issued by the test CA, so only the names are hostile.
@Suite("relayd end to end: hostile certificate names", .serialized)
struct HostileIdentityTests {
    /// Namespaced grants from templates, plus one static grant so an
    /// identity whose templates all drop is still admitted (and the test
    /// sees what it may do, not just a refusal).
    static let namespacedACL = """
    [[acl.rule]]
    name = "own"
    publish = ["clients.{subject.CN}.>"]
    subscribe = ["clients.{subject.CN}.>"]

    [[acl.rule]]
    name = "teams"
    publish = ["teams.{subject.OU}.>"]

    [[acl.rule]]
    name = "services"
    publish = ["svc.{spiffe.path[1]}.>"]

    [[acl.rule]]
    name = "public"
    publish = ["public.>"]
    subscribe = ["public.>"]
    """

    /// The principal is the CN; one static grant.
    static let principalCNACL = """
    [acl]
    principal = "{subject.CN}"

    [[acl.rule]]
    name = "public"
    publish = ["public.>"]
    """

    /// Only templated grants: an identity whose template drops gets nothing.
    static let ownACL = """
    [[acl.rule]]
    name = "own"
    publish = ["clients.{subject.CN}.>"]
    subscribe = ["clients.{subject.CN}.>"]
    """

    static func client(_ subject: [[NameAttribute]], sans: [SubjectAlternativeName] = []) -> CertificateRequest {
        var request = CertificateRequest(subject: subject, subjectAlternativeNames: sans, extendedKeyUsage: [.clientAuth])
        request.setValidity(days: 30)
        return request
    }

    // MARK: Item 11: two values of an attribute used in a template or the principal

    @Test("two CNs, a CN=a+CN=b RDN, two OUs, two SPIFFE IDs: refused at HELLO, the reason names the attribute")
    func ambiguousNamesRefused() async throws {
        try await withRelayd(acl: Self.namespacedACL, start: false) { relayd in
            let pki = relayd.pki
            let bob = try pki.add("bob", Self.client([[NameAttribute("CN", "bob")]]))
            let cases: [(name: String, attribute: String, files: TLSTestPKI.Files)] = [
                ("two-cn", "subject.CN",
                 try pki.add("two-cn", Self.client([[NameAttribute("CN", "mallory")], [NameAttribute("CN", "bob")]]))),
                ("multi-rdn", "subject.CN",
                 try pki.add("multi-rdn", Self.client([[NameAttribute("CN", "mallory"), NameAttribute("CN", "bob")]]))),
                ("two-ou", "subject.OU",
                 try pki.add("two-ou", Self.client([[NameAttribute("OU", "ops")], [NameAttribute("OU", "finance")],
                                                    [NameAttribute("CN", "olga")]]))),
                ("two-spiffe", "spiffe.path[1]",
                 try pki.add("two-spiffe", Self.client([[NameAttribute("CN", "svc")]],
                                                       sans: [.uri("spiffe://relay.test/ns/orders"), .uri("spiffe://relay.test/ns/billing")]))),
            ]
            try await relayd.start()

            // The control: a single-valued identity gets exactly its namespace.
            let good = try await FrameClient.connect(port: relayd.port, pki: pki, as: bob)
            try await good.hello()
            #expect(try await good.publishReply(1, "clients.bob.x").map(Self.isAck) == true)
            #expect(try await good.publishReply(2, "clients.mallory.x").map(Self.isNotAuthorized) == true)
            await good.close()

            for (name, attribute, files) in cases {
                let refused = try await Self.refusedAtHello(relayd, files, name)
                #expect(refused?["reason"]?.contains(attribute) == true,
                        "\(name): the audit reason must name \(attribute): \(String(describing: refused?["reason"]))")
                #expect(refused?["reason"]?.contains("multi_value") == true, "\(name): the reason names the opt-in")
            }
        }
    }

    @Test("multi_value = \"all\" on the rule: a certificate with two CNs gets both namespaces, as documented")
    func ambiguousNamesOptIn() async throws {
        try await withRelayd(acl: """
        [[acl.rule]]
        name = "own"
        multi_value = "all"
        publish = ["clients.{subject.CN}.>"]
        """, start: false) { relayd in
            let twoCN = try relayd.pki.add("two-cn", Self.client([[NameAttribute("CN", "mallory")], [NameAttribute("CN", "bob")]]))
            try await relayd.start()
            let client = try await FrameClient.connect(port: relayd.port, pki: relayd.pki, as: twoCN)
            defer { Task { await client.close() } }
            try await client.hello()
            #expect(try await client.publishReply(1, "clients.mallory.x").map(Self.isAck) == true)
            #expect(try await client.publishReply(2, "clients.bob.x").map(Self.isAck) == true)
            #expect(try await client.publishReply(3, "clients.eve.x").map(Self.isNotAuthorized) == true)
        }
    }

    @Test("principal = \"{subject.CN}\": a certificate with two CNs is refused instead of taking the first")
    func ambiguousPrincipalRefused() async throws {
        try await withRelayd(acl: Self.principalCNACL, start: false) { relayd in
            let bob = try relayd.pki.add("bob", Self.client([[NameAttribute("CN", "bob")]]))
            let twoCN = try relayd.pki.add("two-cn", Self.client([[NameAttribute("CN", "bob")], [NameAttribute("CN", "mallory")]]))
            try await relayd.start()

            let good = try await FrameClient.connect(port: relayd.port, pki: relayd.pki, as: bob)
            #expect(try await good.hello().principal == "bob")
            await good.close()

            // A second CN must not let the first one be the principal.
            let refused = try await Self.refusedAtHello(relayd, twoCN, "two CNs")
            #expect(refused?["reason"]?.contains("principal") == true && refused?["reason"]?.contains("subject.CN") == true,
                    "\(String(describing: refused?["reason"]))")
        }
    }

    // MARK: Item 12: bidi and C1 controls in names

    @Test("U+202E and U+009B in a CN used as the principal: refused at HELLO; log and audit show them escaped", arguments: [
        ("bidi", "eve\u{202E}gpj.exe"), ("c1", "eve\u{009B}31m"), ("lrm", "eve\u{200E}"), ("isolate", "eve\u{2066}x"),
    ])
    func unsafePrincipalRefused(_ label: String, _ commonName: String) async throws {
        try await withRelayd(acl: Self.principalCNACL, start: false) { relayd in
            let eve = try relayd.pki.add("eve", Self.client([[NameAttribute("CN", commonName)]]))
            try await relayd.start()

            let refused = try await Self.refusedAtHello(relayd, eve, label)
            let firstNonASCII = commonName.unicodeScalars.first { $0.value > 0x7E }
            let scalar = try #require(firstNonASCII)
            let codePoint = String(format: "U+%04X", scalar.value)
            #expect(refused?["reason"]?.contains(codePoint) == true, "\(label): \(String(describing: refused?["reason"]))")
            // The refusal log line carries the subject, escaped.
            let logged = await relayd.waitForStderr { $0.contains("identity refused") }
            #expect(logged != nil, "no 'identity refused' log line:\n\(relayd.process?.transcript ?? "")")
            // The subject as logfmt shows it: RFC 4514 hex pairs, JSON-quoted (so `\E2` is written `\\E2`).
            let subject = String(JSONText.quoted("CN=" + DistinguishedName.escape(commonName)).dropFirst().dropLast())
            #expect(logged?.contains("subject=\"\(subject)\"") == true, "\(String(describing: logged)) lacks \(subject)")
            #expect(logged?.contains(codePoint) == true, "the logged reason names \(codePoint)")
            Self.expectNoUnsafeScalars(in: relayd)
        }
    }

    @Test("U+202E and U+009B in a CN used in a topic template: the grant is never made; nothing raw in audit or log")
    func unsafeTemplateValueRefused() async throws {
        try await withRelayd(acl: Self.ownACL, start: false) { relayd in
            let bidi = try relayd.pki.add("bidi", Self.client([[NameAttribute("CN", "eve\u{202E}")]]))
            let c1 = try relayd.pki.add("c1", Self.client([[NameAttribute("OU", "x\u{009B}y")], [NameAttribute("CN", "eve\u{009B}")]]))
            try await relayd.start()
            for (label, files, scalar) in [("bidi", bidi, "U+202E"), ("c1", c1, "U+009B")] {
                #expect(try await Self.refusedAtHello(relayd, files, label) != nil)
                let serial = files.issued.serialNumber
                let dropped = await relayd.waitForAudit { $0.event == "template_dropped" && $0["serial"] == serial }
                #expect(dropped?["detail"]?.contains(scalar) == true, "\(label): \(String(describing: dropped?["detail"]))")
            }
            // The log quotes the RFC 4514 subject: U+009B is its UTF-8 bytes as hex pairs (backslashes JSON-quoted).
            let logged = await relayd.waitForStderr { $0.contains("identity refused") && $0.contains(#"eve\\C2\\9B"#) }
            #expect(logged != nil, "no escaped subject in the log:\n\(relayd.process?.transcript ?? "")")
            Self.expectNoUnsafeScalars(in: relayd)
        }
    }

    @Test("U+202E in an OU no template uses: admitted; WELCOME, audit and log carry the escaped subject")
    func unsafeUnusedAttributeEscaped() async throws {
        try await withRelayd(acl: Self.ownACL, start: false) { relayd in
            let carol = try relayd.pki.add("carol", Self.client([[NameAttribute("OU", "ops\u{202E}nimda")],
                                                                 [NameAttribute("CN", "carol")]]))
            try await relayd.start()
            let client = try await FrameClient.connect(port: relayd.port, pki: relayd.pki, as: carol)
            defer { Task { await client.close() } }
            let welcome = try await client.hello()
            // The default principal is the RFC 4514 subject; U+202E is written
            // as its UTF-8 bytes in RFC 4514 hex-pair escapes.
            #expect(welcome.principal == "CN=carol,OU=ops\\E2\\80\\AEnimda")
            #expect(welcome.subject == "CN=carol,OU=ops\\E2\\80\\AEnimda")
            #expect(try await client.publishReply(1, "clients.carol.x").map(Self.isAck) == true)
            let serial = carol.issued.serialNumber
            let accepted = await relayd.waitForAudit { $0.event == "connection_accepted" && $0["serial"] == serial }
            #expect(accepted?["subject"] == "CN=carol,OU=ops\\E2\\80\\AEnimda")
            // A second HELLO is a protocol violation: relayd logs "closing session" with the principal.
            try await client.send(.hello(Hello(maxFrameSize: 1 << 20, clientName: "again")))
            let logged = await relayd.waitForStderr { $0.contains("closing session") }
            #expect(logged?.contains("carol") == true, "\(relayd.process?.transcript ?? "")")
            Self.expectNoUnsafeScalars(in: relayd)
        }
    }

    // MARK: Issue 15: topic syntax in a CN never widens a grant

    @Test("a CN of '#', 'a.b', '>' or '*' on a real certificate gets no grant beyond the static one", arguments: ["#", "a.b", ">", "*"])
    func hostileCommonName(_ commonName: String) async throws {
        try await withRelayd(acl: Self.namespacedACL, start: false) { relayd in
            let victim = try relayd.pki.add("victim", Self.client([[NameAttribute("CN", "victim")]]))
            let hostile = try relayd.pki.add("hostile", Self.client([[NameAttribute("CN", commonName)]]))
            try await relayd.start()

            // The control: the same rules give a plain CN its namespace, so the
            // refusals below are the templates' doing, not a policy that grants nothing.
            let owner = try await FrameClient.connect(port: relayd.port, pki: relayd.pki, as: victim)
            try await owner.hello()
            #expect(try await owner.publishReply(1, "clients.victim.x").map(Self.isAck) == true)
            #expect(try await owner.subscribe(1, "clients.victim.>").isAccepted)
            await owner.close()

            let client = try await FrameClient.connect(port: relayd.port, pki: relayd.pki, as: hostile)
            defer { Task { await client.close() } }
            try await client.hello()  // admitted through the static "public" rule only
            var id: UInt64 = 1
            for topic in ["clients.victim.x", "clients.a.b.x", "clients.a.x", "clients.x.y", "teams.ops.x", "svc.orders.x"] {
                let reply = try await client.publishReply(id, topic)
                #expect(reply.map(Self.isNotAuthorized) == true, "CN=\(commonName) publish \(topic): \(String(describing: reply))")
                id += 1
            }
            var subscription: UInt32 = 1
            for filter in [">", "clients.>", "clients.*.x", "clients.victim.>", "clients.a.b.>", "clients.a.>", "*.>"] {
                let ack = try await client.subscribe(subscription, filter)
                #expect(!ack.isAccepted && ack.errorCode == .notAuthorized, "CN=\(commonName) subscribe \(filter): \(ack)")
                subscription += 1
            }
            // In its namespace, as documented: the templated grant was dropped
            // (audited), so the static grant is all it has.
            #expect(try await client.publishReply(id, "public.t").map(Self.isAck) == true)
            #expect(try await client.subscribe(subscription, "public.>").isAccepted)
            let serial = hostile.issued.serialNumber
            let dropped = await relayd.waitForAudit { $0.event == "template_dropped" && $0["serial"] == serial }
            #expect(dropped?["detail"]?.contains("subject.CN") == true, "\(String(describing: dropped?["detail"]))")
        }
    }

    @Test("a CN of '#', 'a.b', '>' or '*' with only templated grants is refused at HELLO", arguments: ["#", "a.b", ">", "*"])
    func hostileCommonNameOnlyTemplates(_ commonName: String) async throws {
        try await withRelayd(acl: Self.ownACL, start: false) { relayd in
            let hostile = try relayd.pki.add("hostile", Self.client([[NameAttribute("CN", commonName)]]))
            try await relayd.start()
            #expect(try await Self.refusedAtHello(relayd, hostile, "CN=\(commonName)") != nil)
        }
    }

    // MARK: Helpers

    static func isAck(_ frame: Frame) -> Bool {
        if case .publishAck = frame { return true }
        return false
    }

    static func isNotAuthorized(_ frame: Frame) -> Bool {
        if case .publishError(let error) = frame { return error.errorCode == .notAuthorized }
        return false
    }

    /// Connects as `files`, expects HELLO to be refused with
    /// `identity_refused`, and returns the audit trail's `connection_refused`
    /// event for the certificate (nil, with a recorded issue, if missing).
    static func refusedAtHello(_ relayd: RelaydFixture, _ files: TLSTestPKI.Files, _ label: String,
                               sourceLocation: SourceLocation = #_sourceLocation) async throws -> AuditEvent? {
        let client = try await FrameClient.connect(port: relayd.port, pki: relayd.pki, as: files)
        defer { Task { await client.close() } }
        let code = await helloRefusal(client)
        #expect(code == .identityRefused, "\(label): HELLO must be refused, got \(String(describing: code))",
                sourceLocation: sourceLocation)
        let serial = files.issued.serialNumber
        let refused = await relayd.waitForAudit { $0.event == "connection_refused" && $0["serial"] == serial }
        #expect(refused != nil, "\(label): no connection_refused audit event", sourceLocation: sourceLocation)
        return refused
    }

    /// The error code relayd refused HELLO with; nil if it sent WELCOME
    /// (or anything else), so a test expecting a refusal fails on it.
    static func helloRefusal(_ client: FrameClient) async -> RelayErrorCode? {
        do {
            _ = try await client.hello()
            return nil
        } catch FrameClientError.refused(let error) {
            return error.errorCode
        } catch {
            return nil
        }
    }

    /// Neither the audit trail nor relayd's output holds a raw bidi, C1 or
    /// other format/control scalar (tabs and newlines between lines aside).
    static func expectNoUnsafeScalars(in relayd: RelaydFixture, sourceLocation: SourceLocation = #_sourceLocation) {
        for line in relayd.auditLines() {
            #expect(!DisplayText.containsUnsafe(line), "raw unsafe scalar in audit: \(DisplayText.escaped(line))",
                    sourceLocation: sourceLocation)
        }
        let output = relayd.process?.transcript ?? ""
        for line in output.split(separator: "\n") {
            #expect(!DisplayText.containsUnsafe(String(line)), "raw unsafe scalar in relayd output: \(DisplayText.escaped(String(line)))",
                    sourceLocation: sourceLocation)
        }
    }
}

extension RelaydFixture {
    /// Polls relayd's stderr (its log) until a line satisfies `predicate`.
    /// Polling, because relayd writes the line asynchronously and the log
    /// line itself is the event waited for; nil after `timeout` seconds.
    func waitForStderr(timeout: Double = 20, _ predicate: (String) -> Bool) async -> String? {
        await eventuallyValue(timeout: timeout, every: 0.05) { () -> String? in
            let transcript = process?.transcript ?? ""
            guard let range = transcript.range(of: "\nstderr:\n") else { return nil }
            return transcript[range.upperBound...].split(separator: "\n").first(where: { predicate(String($0)) }).map(String.init)
        }
    }
}
