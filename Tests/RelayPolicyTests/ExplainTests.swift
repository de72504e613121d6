import Testing
import RelayCore
@testable import RelayPolicy

@Suite("Explain shares the broker's evaluation")
struct ExplainTests {
    let policy: Policy = {
        do {
            return try Policy(definitions: [
                RuleDefinition(name: "orders", match: ["subject.OU": ["orders"], "issuer.O": ["Relay CA"]],
                               publish: ["orders.{subject.CN}.>"], subscribe: ["orders.>"],
                               denySubscribe: ["orders.secret.>"]),
                RuleDefinition(name: "svc", match: ["spiffe.trust_domain": ["prod"]],
                               publish: ["svc.{spiffe.path[1]}.>"], subscribe: ["svc.*.events"]),
                RuleDefinition(name: "fence", denyPublish: ["orders.*.admin"]),
            ], principal: "{subject.CN}")
        } catch {
            preconditionFailure("test policy must load: \(error)")
        }
    }()

    static let identities = [
        Fixture.identity(cn: ["api"], ou: ["orders"]),
        Fixture.identity(cn: ["api"], ou: ["orders"], issuerO: "Other CA"),
        Fixture.identity(cn: ["a.b"], ou: ["orders"]),
        Fixture.identity(cn: ["w"], spiffe: "spiffe://prod/ns/billing/sa/w"),
        Fixture.identity(cn: ["nobody"]),
    ]
    static let topics = ["orders.api.new", "orders.api.admin", "orders.a.b.x", "svc.billing.x", "svc.orders.x", "other"]
    static let filters = ["orders.>", "orders.public.x", "orders.secret.k", "svc.*.events", "svc.billing.events", ">"]

    @Test("explain's decisions equal Permissions' on a table of identities, topics and filters")
    func sameDecisions() throws {
        var allowed = 0, denied = 0
        for id in Self.identities {
            let permissions = policy.permissions(for: id)
            for t in Self.topics {
                for f in Self.filters {
                    let tp = try topic(t), fl = try filter(f)
                    let e = policy.explain(id, publish: tp, subscribe: fl)
                    let pub = permissions.canPublish(tp), sub = permissions.canSubscribe(fl)
                    #expect(e.publish?.decision == pub)
                    #expect(e.subscribe?.decision == sub)
                    #expect(e.isAllowed == (pub.isAllowed && sub.isAllowed))
                    #expect(e.exitCode == (e.isAllowed ? 0 : 1))
                    if e.isAllowed { allowed += 1 } else { denied += 1 }
                }
            }
            let e = policy.explain(id)
            #expect(e.rules.filter(\.matched).map(\.name) == policy.evaluate(id).matchedRules)
            #expect(e.evaluation.refusal == permissions.refusal)
            // Each trace's verdict agrees with its own condition outcomes.
            for trace in e.rules { #expect(trace.matched == trace.conditions.allSatisfy(\.matched)) }
        }
        #expect(allowed > 0 && denied > 0)
    }

    @Test("explain says which condition failed and what was compared")
    func why() throws {
        let e = policy.explain(Fixture.identity(cn: ["api"], ou: ["orders"], issuerO: "Other CA"), publish: try topic("orders.api.x"))
        let orders = try #require(e.rules.first { $0.name == "orders" })
        #expect(!orders.matched)
        let issuer = try #require(orders.conditions.first { $0.key == "issuer.O" })
        #expect(!issuer.matched && issuer.values == ["Other CA"] && issuer.patterns == ["Relay CA"])
        #expect(orders.conditions.first { $0.key == "subject.OU" }?.matchedValue == "orders")
        // Only 'fence' (deny-only) applies, so the identity is refused outright.
        #expect(e.publish?.decision == .identityRefused)
        let text = e.renderText()
        #expect(text.contains("issuer.O: FAIL, values \"Other CA\" match none of \"Relay CA\""))
        #expect(text.contains("result: DENIED"))
    }

    @Test("explain reports the effective filters, drops and the deciding rule")
    func effective() throws {
        let e = policy.explain(Fixture.identity(cn: ["a.b"], ou: ["orders"]), publish: try topic("orders.x.y"))
        #expect(e.evaluation.publishAllow.isEmpty)
        #expect(e.evaluation.droppedTemplates.first?.value == "a.b")
        #expect(e.publish?.decision == .notAllowed)
        let ok = policy.explain(Fixture.identity(cn: ["api"], ou: ["orders"]), publish: try topic("orders.api.admin"))
        #expect(ok.publish?.decision == .denied(rule: "fence", filter: "orders.*.admin"))
        #expect(ok.renderText().contains("orders.api.>  (rule 'orders' from 'orders.{subject.CN}.>')"))
    }

    @Test("the text rendering escapes certificate values so they cannot forge lines")
    func escaping() throws {
        let e = policy.explain(Fixture.identity(cn: ["x\nresult: ALLOWED\u{1B}[2J"], ou: ["orders"]),
                               publish: try topic("elsewhere"))
        let text = e.renderText()
        #expect(!text.contains("\u{1B}"))
        #expect(text.components(separatedBy: "\n").filter { $0.hasPrefix("result:") } == ["result: DENIED"])
        #expect(text.contains("\\nresult: ALLOWED\\u{1B}[2J"))
    }

    @Test("with no check requested, explain is allowed iff the identity is not refused")
    func noCheck() {
        #expect(policy.explain(Fixture.identity(cn: ["api"], ou: ["orders"])).isAllowed)
        let refused = policy.explain(Fixture.identity(cn: ["nobody"]))
        #expect(!refused.isAllowed)
        #expect(refused.renderText().contains("identity refused at connect"))
    }

    @Test("explain lists the identity's attributes under policy keys")
    func attributes() {
        let e = policy.explain(Fixture.identity(cn: ["w"], ou: ["a", "b"], spiffe: "spiffe://prod/ns/x"))
        let keys = e.attributes.map(\.key)
        #expect(keys.contains("subject.CN") && keys.contains("spiffe.path[1]") && keys.contains("issuer.O"))
        #expect(e.attributes.first { $0.key == "subject.OU" }?.values == ["a", "b"])
    }
}
