import Testing
import RelayCore
@testable import RelayPolicy

@Suite("Templates in filters")
struct TemplateTests {
    @Test("{subject.CN} and {subject.OU} expand to one token each")
    func subjectTemplates() throws {
        let rule = RuleDefinition(name: "own", publish: ["clients.{subject.CN}.>"], subscribe: ["teams.{subject.OU}.{subject.CN}"])
        let p = try Fixture.policy(rule).permissions(for: Fixture.identity(cn: ["api"], ou: ["orders"]))
        #expect(p.publishFilters == ["clients.api.>"])
        #expect(p.subscribeFilters == ["teams.orders.api"])
        #expect(try p.allows(publish: "clients.api.x"))
        #expect(!(try p.allows(publish: "clients.web.x")))
        #expect(p.droppedTemplates.isEmpty)
    }

    @Test("with multi_value = all, a multi-valued attribute expands to one filter per value; several templates multiply")
    func cartesian() throws {
        let rule = RuleDefinition(name: "m", publish: ["t.{subject.OU}.{san.dns}"], multiValue: .all)
        let p = try Fixture.policy(rule).permissions(
            for: Fixture.identity(cn: ["c"], ou: ["a", "b"], dns: ["x", "y", "x"]))
        #expect(!p.isRefused)
        #expect(p.publishFilters == ["t.a.x", "t.a.y", "t.b.x", "t.b.y"])
        #expect(try p.allows(publish: "t.b.y"))
    }

    @Test("{spiffe.path[N]} is 0-based; {spiffe.trust_domain} substitutes when it is one token")
    func spiffe() throws {
        let rule = RuleDefinition(name: "svc", match: ["spiffe.trust_domain": ["prod"]],
                                  publish: ["{spiffe.trust_domain}.{spiffe.path[1]}.{spiffe.path[3]}.>"])
        let p = try Fixture.policy(rule).permissions(for: Fixture.identity(spiffe: "spiffe://prod/ns/orders/sa/api"))
        #expect(p.publishFilters == ["prod.orders.api.>"])
    }

    @Test("a path segment index past the end drops the filter and reports it")
    func spiffeIndexOutOfRange() throws {
        let rule = RuleDefinition(name: "svc", publish: ["s.{spiffe.path[7]}", "fixed"])
        let p = try Fixture.policy(rule).permissions(for: Fixture.identity(spiffe: "spiffe://prod/ns/orders"))
        #expect(p.publishFilters == ["fixed"])
        #expect(p.droppedTemplates.count == 1)
        #expect(p.droppedTemplates.first?.template == "spiffe.path[7]")
        #expect(p.droppedTemplates.first?.rule == "svc")
        #expect(p.droppedTemplates.first?.value == nil)
    }

    @Test("a dotted trust domain or DNS name is never substituted")
    func dottedValues() throws {
        let rule = RuleDefinition(name: "d", publish: ["a.{spiffe.trust_domain}", "b.{san.dns}", "keep"], multiValue: .all)
        let p = try Fixture.policy(rule).permissions(
            for: Fixture.identity(dns: ["host.example.com", "solo"], spiffe: "spiffe://prod.example/x"))
        #expect(p.publishFilters == ["b.solo", "keep"])
        #expect(Set(p.droppedTemplates.compactMap(\.value)) == ["prod.example", "host.example.com"])
        #expect(p.droppedTemplates.allSatisfy { $0.reason.contains("'.'") && $0.widenedTo == nil })
    }

    @Test("email and URI values never form a token, so their templates always drop")
    func emailAndURI() throws {
        let rule = RuleDefinition(name: "e", publish: ["a.{san.email}", "b.{san.uri}", "c"])
        let p = try Fixture.policy(rule).permissions(
            for: Fixture.identity(email: ["ops@example.com"], uri: ["https://x"]))
        #expect(p.publishFilters == ["c"])
        #expect(p.droppedTemplates.count == 2)
    }

    @Test("a deny whose template cannot be substituted is widened, never dropped")
    func denyFailsClosed() throws {
        let rule = RuleDefinition(name: "fenced", publish: ["data.>"], denyPublish: ["data.{subject.OU}.private"])
        let policy = try Fixture.policy(rule)
        let good = policy.permissions(for: Fixture.identity(ou: ["ops"]))
        #expect(!(try good.allows(publish: "data.ops.private")))
        #expect(try good.allows(publish: "data.dev.private"))

        let bad = policy.permissions(for: Fixture.identity(ou: ["ops.x"]))
        #expect(bad.publishDeny.map(\.filter.value) == ["data.>"])
        #expect(!(try bad.allows(publish: "data.ops.x.private")))
        #expect(bad.droppedTemplates.first?.widenedTo == "data.>")

        let absent = policy.permissions(for: Fixture.identity(cn: ["n"]))
        #expect(absent.publishDeny.map(\.filter.value) == ["data.>"])
    }

    @Test("a deny template in the first token widens to everything")
    func denyFirstToken() throws {
        let rule = RuleDefinition(name: "r", subscribe: ["a.>"], denySubscribe: ["{subject.CN}.x"])
        let p = try Fixture.policy(rule).permissions(for: Fixture.identity(cn: ["a b"]))
        #expect(p.subscribeDeny.map(\.filter.value) == [">"])
        #expect(!(try p.allows(subscribe: "a.b")))
    }

    @Test("expansion is capped per rule and the cap is reported")
    func cap() throws {
        let many = (0..<40).map { "v\($0)" }
        let rule = RuleDefinition(name: "big", publish: ["t.{subject.OU}.{san.dns}"], denyPublish: ["d.{subject.OU}.{san.dns}"])
        let p = try Fixture.policy(rule).permissions(for: Fixture.identity(ou: many, dns: many))
        #expect(p.publishAllow.count == Policy.expansionCapPerRule)
        #expect(p.droppedTemplates.contains { $0.list == "publish" && $0.reason.contains("1600") })
        // The deny over the cap is widened instead of truncated.
        #expect(p.publishDeny.map(\.filter.value) == ["d.>"])
    }

    @Test("a substituted filter over the length limit is dropped")
    func tooLong() throws {
        let long = String(repeating: "x", count: 250)
        let rule = RuleDefinition(name: "r", publish: ["prefix.{subject.CN}", "ok"])
        let p = try Fixture.policy(rule).permissions(for: Fixture.identity(cn: [long]))
        #expect(p.publishFilters == ["ok"])
        #expect(p.droppedTemplates.count == 1)
    }
}
