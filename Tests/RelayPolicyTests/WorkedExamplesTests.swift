import Testing
import RelayCore
@testable import RelayPolicy

/// The worked examples of docs/security.md §Policy, exactly as documented:
/// if this fails, the documentation or the code is wrong.
@Suite("docs/security.md worked examples")
struct WorkedExamplesTests {
    static let rules = [
        RuleDefinition(name: "orders", match: ["subject.OU": ["orders"]], publish: ["orders.{subject.CN}.>"],
                       subscribe: ["orders.>"], denySubscribe: ["orders.audit.>"]),
        RuleDefinition(name: "everyone", publish: ["metrics.{subject.CN}"], subscribe: ["broadcast.>"]),
        RuleDefinition(name: "fence", denyPublish: ["orders.*.admin"]),
    ]

    @Test("CN=api, OU=orders: the table")
    func api() throws {
        let p = try Policy(definitions: Self.rules).permissions(for: Fixture.identity(cn: ["api"], ou: ["orders"]))
        #expect(p.publishFilters == ["orders.api.>", "metrics.api"])
        #expect(p.subscribeFilters == ["orders.>", "broadcast.>"])
        #expect(p.canPublish(try topic("orders.api.created")) == .allowed(rule: "orders", filter: "orders.api.>"))
        #expect(p.canPublish(try topic("orders.web.created")) == .notAllowed)
        #expect(p.canPublish(try topic("orders.api.admin")) == .denied(rule: "fence", filter: "orders.*.admin"))
        #expect(p.canPublish(try topic("orders.api")) == .notAllowed)
        #expect(p.canPublish(try topic("metrics.api")) == .allowed(rule: "everyone", filter: "metrics.api"))
        #expect(p.canSubscribe(try filter("orders.eu.*")) == .allowed(rule: "orders", filter: "orders.>"))
        #expect(p.canSubscribe(try filter("orders.>")) == .denied(rule: "orders", filter: "orders.audit.>"))
        #expect(p.canSubscribe(try filter("orders.*.x")) == .denied(rule: "orders", filter: "orders.audit.>"))
        #expect(p.canSubscribe(try filter(">")) == .denied(rule: "orders", filter: "orders.audit.>"))
        #expect(p.canSubscribe(try filter("broadcast.*")) == .allowed(rule: "everyone", filter: "broadcast.>"))
    }

    @Test("CN=#, OU=orders: no substitution, two drops")
    func hash() throws {
        let p = try Policy(definitions: Self.rules).permissions(for: Fixture.identity(cn: ["#"], ou: ["orders"]))
        #expect(p.publishAllow.isEmpty)
        #expect(p.subscribeFilters == ["orders.>", "broadcast.>"])
        #expect(p.droppedTemplates.count == 2)
    }

    @Test("CN=web, OU=billing and a certificate without CN")
    func others() throws {
        let policy = try Policy(definitions: Self.rules)
        let web = policy.permissions(for: Fixture.identity(cn: ["web"], ou: ["billing"]))
        #expect(web.publishFilters == ["metrics.web"])
        #expect(web.subscribeFilters == ["broadcast.>"])
        let noCN = policy.permissions(for: Fixture.identity(ou: ["billing"]))
        #expect(!noCN.isRefused)
        #expect(noCN.publishAllow.isEmpty)
        var publishOnly = Self.rules
        publishOnly[1].subscribe = []
        let refused = try Policy(definitions: publishOnly).permissions(for: Fixture.identity(ou: ["billing"]))
        #expect(refused.refusal?.hasPrefix("rules 'everyone', 'fence' match but grant nothing") == true)
    }
}
