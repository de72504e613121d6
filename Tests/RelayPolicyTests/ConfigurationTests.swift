import Testing
import RelayCore
@testable import RelayPolicy

/// What must be refused at load comes first: a config the policy does not
/// fully understand must never be applied.
@Suite("Policy configuration is validated")
struct ConfigurationTests {
    func loadError(_ definition: RuleDefinition) -> PolicyConfigurationError? {
        do {
            _ = try Rule(definition)
            return nil
        } catch {
            return error
        }
    }

    @Test("unknown condition keys are refused, naming the rule and key",
          arguments: ["subject", "san.DNS", "spiffe.id", "serial", "fingerprint", "cn", "subject.", "subject.XYZ", "subject.1."])
    func unknownConditionKey(_ key: String) throws {
        let error = try #require(loadError(RuleDefinition(name: "r1", match: [key: ["x"]], publish: ["a"])))
        #expect(error.rule == "r1")
        #expect(error.key == "match.\(key)")
    }

    @Test("attribute names are case-sensitive and a near miss gets a hint")
    func caseHint() throws {
        let error = try #require(loadError(RuleDefinition(name: "r", match: ["subject.cn": ["x"]], publish: ["a"])))
        #expect(error.message.contains("did you mean 'CN'"))
    }

    @Test("known condition keys load", arguments: [
        "subject.CN", "subject.OU", "issuer.O", "subject.2.5.4.3", "subject.emailAddress", "san.dns", "san.uri",
        "san.email", "san.ip", "spiffe", "spiffe.trust_domain", "spiffe.path", "spiffe.path[0]",
    ])
    func knownConditionKeys(_ key: String) throws {
        _ = try Rule(name: "r", match: [key: ["*"]], publish: ["a"])
    }

    @Test("a condition with no values, or an empty value, is refused")
    func emptyConditionValues() throws {
        let none = try #require(loadError(RuleDefinition(name: "r", match: ["subject.CN": []], publish: ["a"])))
        #expect(none.key == "match.subject.CN")
        let empty = try #require(loadError(RuleDefinition(name: "r", match: ["subject.CN": ["ok", ""]], publish: ["a"])))
        #expect(empty.key == "match.subject.CN[1]")
    }

    @Test("a template must be a whole token", arguments: [
        "a{subject.CN}b", "a.{subject.CN}b", "a.b{subject.CN}", "{subject.CN", "subject.CN}", "a.{{subject.CN}}", "a.{}",
    ])
    func partialTokenTemplate(_ f: String) throws {
        let error = try #require(loadError(RuleDefinition(name: "tmpl", publish: ["ok", f])))
        #expect(error.rule == "tmpl")
        #expect(error.key == "publish[1]")
    }

    @Test("templates that can never be one token or are unknown are refused", arguments: [
        "a.{spiffe}", "a.{spiffe.path}", "a.{serial}", "a.{subject}", "a.{san.ip}", "a.{subject.cn}", "a.{spiffe.path[x]}",
        "a.{spiffe.path[-1]}", "a.{spiffe.path[1000]}", "a.{nope}",
    ])
    func badTemplateKey(_ f: String) throws {
        let error = try #require(loadError(RuleDefinition(name: "r", subscribe: [f])))
        #expect(error.key == "subscribe[0]")
    }

    @Test("invalid filters are refused in every list", arguments: ["a..b", "a.>.b", "a b", "", "a.*x", "#", "a.+"])
    func invalidFilters(_ f: String) throws {
        for (definition, key) in [
            (RuleDefinition(name: "r", publish: [f]), "publish[0]"),
            (RuleDefinition(name: "r", subscribe: ["ok", f]), "subscribe[1]"),
            (RuleDefinition(name: "r", publish: ["ok"], denyPublish: [f]), "deny_publish[0]"),
            (RuleDefinition(name: "r", publish: ["ok"], denySubscribe: [f]), "deny_subscribe[0]"),
        ] {
            let error = try #require(loadError(definition))
            #expect(error.key == key)
        }
    }

    @Test("a rule needs a printable name and at least one filter")
    func nameAndContent() throws {
        #expect(try #require(loadError(RuleDefinition(name: "", publish: ["a"]))).key == "name")
        #expect(try #require(loadError(RuleDefinition(name: "a\nb", publish: ["a"]))).key == "name")
        #expect(try #require(loadError(RuleDefinition(name: "idle"))).rule == "idle")
    }

    @Test("duplicate rule names are refused with the rule's position")
    func duplicateNames() throws {
        #expect {
            try Policy(definitions: [RuleDefinition(name: "a", publish: ["x"]), RuleDefinition(name: "a", publish: ["y"])])
        } throws: { error in
            let e = error as? PolicyConfigurationError
            return e?.rule == "a" && e?.ruleIndex == 1 && e?.key == "name"
        }
    }

    @Test("a policy error names the rule position and renders a useful message")
    func positionInMessage() throws {
        #expect {
            try Policy(definitions: [RuleDefinition(name: "ok", publish: ["x"]),
                                     RuleDefinition(name: "bad", match: ["subject.XX": ["a"]], publish: ["y"])])
        } throws: { error in
            let text = String(describing: error)
            return text.hasPrefix("acl.rule[1] \"bad\": match.subject.XX: unknown attribute")
        }
    }

    @Test("bad principal templates are refused", arguments: ["", "{subject.CN", "subject.CN}", "{nope}", "{subject.cn}", "{{subject.CN}}", "a}{b"])
    func badPrincipal(_ template: String) {
        #expect {
            try PrincipalTemplate(template)
        } throws: { error in
            (error as? PolicyConfigurationError)?.key == "principal"
        }
    }
}
