import RelayCore
@testable import RelayPolicy
import Testing

/// A principal template the certificate cannot fill refuses the identity
/// (docs/security.md, "Principal"): a fallback would give SPIRE SVIDs
/// (`C=US,O=SPIRE`, no CN) one shared principal.
@Suite struct PrincipalRefusalTests {
    let rule = RuleDefinition(name: "all", publish: [">"], subscribe: [">"])

    @Test("two CN-less SVIDs under {subject.CN} are refused, with the missing key named; one with a CN is not")
    func missingKeyRefuses() throws {
        let policy = try Fixture.policy(rule, principal: "{subject.CN}")
        for path in ["billing", "intruder"] {
            let svid = Fixture.identity(o: ["SPIRE"], spiffe: "spiffe://prod/ns/\(path)")
            let permissions = policy.permissions(for: svid)
            #expect(permissions.isRefused)
            #expect(permissions.refusal?.contains("{subject.CN}") == true)
            #expect(permissions.refusal?.contains("subject.CN") == true)
            #expect(try !permissions.allows(publish: "a"))
            // explain agrees with the broker.
            #expect(policy.evaluate(svid).isRefused)
        }
        let named = policy.permissions(for: Fixture.identity(cn: ["api"], o: ["SPIRE"]))
        #expect(!named.isRefused)
        #expect(named.principal == "api")
    }

    @Test("every key of a composite template must be present")
    func everyKeyCounts() throws {
        let policy = try Fixture.policy(rule, principal: "{subject.CN}@{subject.O}")
        #expect(policy.permissions(for: Fixture.identity(cn: ["api"])).isRefused)
        #expect(policy.permissions(for: Fixture.identity(cn: ["api"], o: ["Example"])).principal == "api@Example")
        let spiffe = try Fixture.policy(rule, principal: "{spiffe}")
        #expect(spiffe.permissions(for: Fixture.identity(cn: ["no-svid"])).isRefused)
    }

    @Test("the default {subject} always renders: an empty subject still falls back to the SPIFFE ID or the fingerprint")
    func defaultTemplateNeverRefuses() throws {
        let policy = try Fixture.policy(rule)
        let svid = policy.permissions(for: Fixture.identity(spiffe: "spiffe://prod/x"))
        #expect(!svid.isRefused)
        #expect(svid.principal == "spiffe://prod/x")
        let bare = policy.permissions(for: Fixture.identity())
        #expect(!bare.isRefused)
        #expect(bare.principal == "sha256:ab12000000000000000000000000000000000000000000000000000000000000")
    }
}
