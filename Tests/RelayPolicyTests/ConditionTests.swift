import Testing
import RelayCore
@testable import RelayPolicy

@Suite("Match conditions")
struct ConditionTests {
    func applies(_ match: [String: [String]], _ identity: Identity) throws -> Bool {
        try Rule(name: "r", match: match, publish: ["a"]).applies(to: identity)
    }

    @Test("exact values are case-sensitive and must match whole")
    func exact() throws {
        let id = Fixture.identity(cn: ["api"])
        #expect(try applies(["subject.CN": ["api"]], id))
        #expect(try !applies(["subject.CN": ["API"]], id))
        #expect(try !applies(["subject.CN": ["ap"]], id))
        #expect(try !applies(["subject.CN": ["api2"]], id))
    }

    @Test("glob: * matches any run, including empty; nothing else is special", arguments: [
        ("svc-*", "svc-", true), ("svc-*", "svc-orders", true), ("svc-*", "xsvc-a", false),
        ("*.example.com", "a.b.example.com", true), ("*.example.com", "example.com", false),
        ("a*b*c", "abc", true), ("a*b*c", "aXbYc", true), ("a*b*c", "acb", false), ("a*b*c", "abcb", false),
        ("*", "", true), ("**", "x", true), ("a?c", "abc", false), ("a?c", "a?c", true), ("[ab]", "a", false),
        ("*ab*ab*", "abab", true), ("*ab*ab*", "aba", false),
    ])
    func glob(_ pattern: String, _ value: String, _ expected: Bool) {
        #expect(ValuePattern(pattern).matches(value) == expected)
    }

    @Test("comparison is byte-wise: canonically equivalent Unicode is a different value")
    func bytewise() {
        let composed = "caf\u{E9}", decomposed = "cafe\u{301}"
        #expect(composed == decomposed)  // Swift's String equality, which policy must not use
        #expect(!ValuePattern(composed).matches(decomposed))
        #expect(!ValuePattern("caf\u{E9}*").matches(decomposed))
        #expect(ValuePattern(composed).matches(composed))
    }

    @Test("a missing attribute fails even against *")
    func missingAttribute() throws {
        let id = Fixture.identity(cn: ["api"])
        #expect(try !applies(["subject.OU": ["*"]], id))
        #expect(try !applies(["spiffe.trust_domain": ["*"]], id))
        #expect(try !applies(["san.dns": ["*"]], id))
    }

    @Test("all conditions must hold")
    func allConditions() throws {
        let id = Fixture.identity(cn: ["api"], ou: ["orders"])
        #expect(try applies(["subject.CN": ["api"], "subject.OU": ["orders"]], id))
        #expect(try !applies(["subject.CN": ["api"], "subject.OU": ["billing"]], id))
        #expect(try !applies(["subject.CN": ["web"], "subject.OU": ["orders"]], id))
    }

    @Test("a multi-valued attribute matches if any value does; a list matches if any entry does")
    func anyOf() throws {
        let id = Fixture.identity(cn: ["api"], ou: ["orders", "billing"], dns: ["a.example.com", "b.internal"])
        #expect(try applies(["subject.OU": ["billing"]], id))
        #expect(try applies(["subject.OU": ["x", "orders"]], id))
        #expect(try !applies(["subject.OU": ["x", "y"]], id))
        #expect(try applies(["san.dns": ["*.internal"]], id))
        #expect(try !applies(["san.dns": ["*.external"]], id))
    }

    @Test("an empty match table applies to every verified identity")
    func emptyMatch() throws {
        #expect(try applies([:], Fixture.identity()))
        #expect(try applies([:], Fixture.identity(cn: ["x"], spiffe: "spiffe://prod/ns/a")))
    }

    @Test("issuer, SAN and SPIFFE conditions read the right attribute")
    func otherAttributes() throws {
        let id = Fixture.identity(cn: ["api"], issuerO: "Prod CA", email: ["ops@example.com"],
                                  spiffe: "spiffe://prod.example/ns/orders/sa/api")
        #expect(try applies(["issuer.O": ["Prod CA"]], id))
        #expect(try !applies(["issuer.O": ["Dev CA"]], id))
        #expect(try !applies(["subject.O": ["Prod CA"]], id))
        #expect(try applies(["san.email": ["*@example.com"]], id))
        #expect(try applies(["spiffe.trust_domain": ["prod.example"]], id))
        #expect(try applies(["spiffe.path": ["/ns/orders/*"]], id))
        #expect(try applies(["spiffe": ["spiffe://prod.example/ns/orders/sa/api"]], id))
        #expect(try applies(["spiffe.path[1]": ["orders"]], id))
        #expect(try !applies(["spiffe.path[0]": ["orders"]], id))
        #expect(try applies(["san.uri": ["spiffe://prod.example/*"]], id))
        #expect(try applies(["subject.2.5.4.3": ["api"]], id))
    }
}
