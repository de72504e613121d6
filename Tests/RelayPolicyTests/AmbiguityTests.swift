import Foundation
import Testing
import RelayCore
@testable import RelayPolicy

/// A certificate with two values of an attribute a template or the
/// principal uses is ambiguous: which one names the client? By default the
/// identity is refused, naming the attribute; a rule opts in to expanding
/// every value with `multi_value = "all"`.
@Suite("Ambiguous identities (two values of a templated attribute)")
struct AmbiguityTests {
    static let own = RuleDefinition(name: "own", publish: ["clients.{subject.CN}.>"], subscribe: ["clients.{subject.CN}.>"])
    static let open = RuleDefinition(name: "public", publish: ["public.>"])

    static func twoCNs(_ first: String = "mallory", _ second: String = "bob") -> Identity {
        Fixture.identity(cn: [first, second])
    }

    /// A subject with one multi-valued RDN `CN=a+CN=b`.
    static func multiValuedRDN() -> Identity {
        var identity = Fixture.identity()
        identity.subject = DistinguishedName(rdns: [[.init(oid: "2.5.4.3", shortName: "CN", value: "mallory"),
                                                      .init(oid: "2.5.4.3", shortName: "CN", value: "bob")]])
        return identity
    }

    @Test("two CNs used in a filter template: refused, the reason names subject.CN, the rule and the opt-in")
    func twoCommonNames() throws {
        let policy = try Fixture.policy(Self.own, Self.open)
        for identity in [Self.twoCNs(), Self.multiValuedRDN()] {
            let p = policy.permissions(for: identity)
            #expect(p.isRefused)
            let reason = try #require(p.refusal)
            #expect(reason.contains("subject.CN") && reason.contains("'own'") && reason.contains("multi_value"), "\(reason)")
            #expect(!(try p.allows(publish: "clients.bob.x")))
            #expect(!(try p.allows(publish: "public.x")))
        }
    }

    @Test("two OUs in a template, two SPIFFE IDs in a spiffe template: refused")
    func otherAttributes() throws {
        let teams = RuleDefinition(name: "teams", publish: ["teams.{subject.OU}.>"])
        let twoOU = try Fixture.policy(teams, Self.open).permissions(for: Fixture.identity(cn: ["olga"], ou: ["ops", "finance"]))
        #expect(twoOU.refusal?.contains("subject.OU") == true, "\(String(describing: twoOU.refusal))")

        let svc = RuleDefinition(name: "svc", publish: ["svc.{spiffe.path[1]}.>"])
        // Two URI SANs that are both SPIFFE IDs (the extractor then sets no `spiffe`).
        var two = Fixture.identity(cn: ["svc"], uri: ["spiffe://relay.test/ns/orders", "spiffe://relay.test/ns/billing"])
        two.spiffe = nil
        let twoSPIFFE = try Fixture.policy(svc, Self.open).permissions(for: two)
        #expect(twoSPIFFE.refusal?.contains("spiffe.path[1]") == true, "\(String(describing: twoSPIFFE.refusal))")
    }

    @Test("a repeated identical value is not ambiguous; a single value is unaffected")
    func sameValueTwice() throws {
        let policy = try Fixture.policy(Self.own)
        let p = policy.permissions(for: Fixture.identity(cn: ["bob", "bob"]))
        #expect(!p.isRefused)
        #expect(p.publishFilters == ["clients.bob.>"])
        #expect(policy.permissions(for: Fixture.identity(cn: ["bob"])).publishFilters == ["clients.bob.>"])
    }

    @Test("a deny template with two values refuses too (never a partial deny)")
    func ambiguousDeny() throws {
        let fenced = RuleDefinition(name: "fenced", publish: ["data.>"], denyPublish: ["data.{subject.OU}.private"])
        let p = try Fixture.policy(fenced).permissions(for: Fixture.identity(cn: ["x"], ou: ["ops", "dev"]))
        #expect(p.isRefused)
        #expect(p.refusal?.contains("subject.OU") == true)
    }

    @Test("a rule whose conditions do not hold does not make the identity ambiguous")
    func onlyMatchedRules() throws {
        let scoped = RuleDefinition(name: "scoped", match: ["subject.O": ["Other"]], publish: ["x.{subject.CN}"])
        let p = try Fixture.policy(scoped, Self.open).permissions(for: Self.twoCNs())
        #expect(!p.isRefused)
        #expect(p.publishFilters == ["public.>"])
    }

    @Test("conditions keep any-value matching: a second CN still satisfies match (documented)")
    func conditionsAnyValue() throws {
        let byName = RuleDefinition(name: "by-name", match: ["subject.CN": ["bob"]], publish: ["bob.>"])
        let p = try Fixture.policy(byName).permissions(for: Self.twoCNs())
        #expect(!p.isRefused)
        #expect(try p.allows(publish: "bob.x"))
    }

    @Test("principal = {subject.CN} with two CNs: refused instead of taking the first value")
    func ambiguousPrincipal() throws {
        let policy = try Fixture.policy(Self.open, principal: "{subject.CN}")
        let p = policy.permissions(for: Self.twoCNs())
        #expect(p.isRefused)
        let reason = try #require(p.refusal)
        #expect(reason.contains("principal") && reason.contains("subject.CN"), "\(reason)")
        #expect(policy.permissions(for: Fixture.identity(cn: ["bob"])).principal == "bob")
        // The RFC 4514 subject is one string whatever the subject holds.
        #expect(!(try Fixture.policy(Self.open)).permissions(for: Self.twoCNs()).isRefused)
    }

    @Test("multi_value = all opts one rule in: one filter per value, and the identity is admitted")
    func optIn() throws {
        var all = Self.own
        all.multiValue = .all
        let p = try Fixture.policy(all).permissions(for: Self.twoCNs())
        #expect(!p.isRefused)
        #expect(Set(p.publishFilters) == ["clients.mallory.>", "clients.bob.>"])
        #expect(try p.allows(publish: "clients.bob.x") && p.allows(publish: "clients.mallory.x"))
        // Another rule that did not opt in still makes the identity ambiguous.
        let teams = RuleDefinition(name: "teams", publish: ["teams.{subject.CN}"])
        let mixed = try Fixture.policy(all, teams).permissions(for: Self.twoCNs())
        #expect(mixed.refusal?.contains("'teams'") == true, "\(String(describing: mixed.refusal))")
        // The opt-in never covers the principal.
        let principal = try Fixture.policy(all, principal: "{subject.CN}").permissions(for: Self.twoCNs())
        #expect(principal.refusal?.contains("principal") == true)
    }

    @Test("explain shows the refusal and its reason")
    func explainShowsIt() throws {
        let text = try Fixture.policy(Self.own).explain(Self.twoCNs()).renderText()
        #expect(text.contains("identity refused at connect:") && text.contains("subject.CN"), "\(text)")
        #expect(text.contains("result: DENIED"))
    }
}
