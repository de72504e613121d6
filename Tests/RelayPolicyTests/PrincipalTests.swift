import Testing
import RelayCore
@testable import RelayPolicy

@Suite("Principal templates")
struct PrincipalTests {
    let id = Fixture.identity(cn: ["api"], ou: ["orders", "ops"], o: ["Example"], spiffe: "spiffe://prod/ns/a")

    @Test("the default principal is the RFC 4514 subject")
    func defaultSubject() throws {
        let policy = try Fixture.policy(RuleDefinition(name: "r", publish: ["a"]))
        #expect(policy.evaluate(id).principal == "CN=api,OU=ops,OU=orders,O=Example")
    }

    @Test("templates substitute each attribute's value (an attribute with two values is refused: AmbiguityTests)", arguments: [
        ("{spiffe}", "spiffe://prod/ns/a"), ("{subject.CN}", "api"), ("{subject.CN}@{subject.O}", "api@Example"),
        ("{subject.O}/{subject.CN}", "Example/api"), ("svc:{spiffe.path[1]}", "svc:a"), ("{issuer.O}", "Relay CA"),
    ])
    func templates(_ template: String, _ expected: String) throws {
        #expect(try PrincipalTemplate(template).render(id) == expected)
    }

    @Test("PrincipalTemplate.render alone: a missing attribute falls back to the RFC 4514 subject (relayd refuses such identities first: PrincipalRefusalTests)")
    func missingFallsBack() throws {
        let plain = Fixture.identity(cn: ["web"], o: ["Example"])
        #expect(try PrincipalTemplate("{spiffe}").render(plain) == "CN=web,O=Example")
        #expect(try PrincipalTemplate("{subject.CN}@{subject.DC}").render(plain) == "CN=web,O=Example")
    }

    @Test("PrincipalTemplate.render alone: a control character falls back to the escaped subject (relayd refuses such identities first: PrincipalRefusalTests)")
    func controlCharacters() throws {
        let hostile = Fixture.identity(cn: ["a\nINFO forged"], o: ["X"])
        let principal = try PrincipalTemplate("{subject.CN}").render(hostile)
        #expect(!principal.contains("\n"))
        #expect(principal == "CN=a\\0AINFO forged,O=X")
    }

    @Test("an empty subject falls back to the SPIFFE ID, then the fingerprint")
    func emptySubject() throws {
        let svid = Fixture.identity(spiffe: "spiffe://prod/x")
        #expect(PrincipalTemplate.subject.render(svid) == "spiffe://prod/x")
        #expect(PrincipalTemplate.subject.render(Fixture.identity()) == "sha256:ab12000000000000000000000000000000000000000000000000000000000000")
    }

    @Test("Policy carries the configured principal template")
    func policyPrincipal() throws {
        let policy = try Fixture.policy(RuleDefinition(name: "r", publish: ["a"]), principal: "{spiffe}")
        #expect(policy.permissions(for: id).principal == "spiffe://prod/ns/a")
    }
}
