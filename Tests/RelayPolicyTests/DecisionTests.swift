import Testing
import RelayCore
@testable import RelayPolicy

@Suite("Decisions")
struct DecisionTests {
    let orders = RuleDefinition(name: "orders", match: ["subject.OU": ["orders"]],
                                publish: ["orders.>"], subscribe: ["orders.>"],
                                denyPublish: ["orders.admin.>"], denySubscribe: ["orders.secret"])
    let metrics = RuleDefinition(name: "metrics", match: [:], publish: ["metrics.*"], subscribe: ["metrics.*.cpu"])

    @Test("an identity that matches no rule is refused, and every check says so")
    func noMatch() throws {
        let policy = try Fixture.policy(orders)
        let p = policy.permissions(for: Fixture.identity(cn: ["x"], ou: ["billing"]))
        #expect(p.isRefused)
        #expect(p.refusal?.contains("no rule matches") == true)
        #expect(p.canPublish(try topic("orders.new")) == .identityRefused)
        #expect(p.canSubscribe(try filter("orders.>")) == .identityRefused)
    }

    @Test("an empty policy refuses everyone (default deny)")
    func emptyPolicy() throws {
        let p = try Policy(definitions: []).permissions(for: Fixture.identity(cn: ["root"]))
        #expect(p.isRefused)
        #expect(!(try p.allows(publish: "a")))
    }

    @Test("an identity whose matching rules grant nothing is refused")
    func grantsNothing() throws {
        let denyOnly = RuleDefinition(name: "fence", denyPublish: ["_sys.>"])
        let p = try Fixture.policy(denyOnly).permissions(for: Fixture.identity(cn: ["a"]))
        #expect(p.isRefused)
        #expect(p.refusal?.contains("'fence'") == true)
    }

    @Test("a publish needs an allow; nothing else is allowed")
    func defaultDenyPublish() throws {
        let p = try Fixture.policy(orders).permissions(for: Fixture.identity(ou: ["orders"]))
        #expect(try p.allows(publish: "orders.created"))
        #expect(try p.allows(publish: "orders.eu.created"))
        #expect(p.canPublish(try topic("orders")) == .notAllowed)  // '>' needs at least one token
        #expect(p.canPublish(try topic("billing.x")) == .notAllowed)
    }

    @Test("deny wins over any allow, from the same or another rule")
    func denyWins() throws {
        let wide = RuleDefinition(name: "wide", match: ["subject.CN": ["boss"]], publish: [">"], subscribe: [">"])
        let p = try Fixture.policy(orders, wide).permissions(for: Fixture.identity(cn: ["boss"], ou: ["orders"]))
        #expect(p.canPublish(try topic("orders.admin.reset")) == .denied(rule: "orders", filter: "orders.admin.>"))
        #expect(try p.allows(publish: "anything.else"))
        #expect(p.canSubscribe(try filter("orders.secret")) == .denied(rule: "orders", filter: "orders.secret"))
    }

    @Test("permissions are the union of the allows of every matching rule")
    func union() throws {
        let policy = try Fixture.policy(orders, metrics)
        let both = policy.permissions(for: Fixture.identity(ou: ["orders"]))
        #expect(both.canPublish(try topic("orders.x")) == .allowed(rule: "orders", filter: "orders.>"))
        #expect(both.canPublish(try topic("metrics.cpu")) == .allowed(rule: "metrics", filter: "metrics.*"))
        let onlyMetrics = policy.permissions(for: Fixture.identity(ou: ["billing"]))
        #expect(!(try onlyMetrics.allows(publish: "orders.x")))
        #expect(try onlyMetrics.allows(publish: "metrics.cpu"))
        #expect(both.publishFilters == ["orders.>", "metrics.*"])
    }

    @Test("a subscription must be a subset of one allow filter")
    func subscriptionSubset() throws {
        let p = try Fixture.policy(metrics).permissions(for: Fixture.identity())
        #expect(try p.allows(subscribe: "metrics.host1.cpu"))
        #expect(try p.allows(subscribe: "metrics.*.cpu"))
        #expect(!(try p.allows(subscribe: "metrics.*.*")))     // would also match metrics.h.mem
        #expect(!(try p.allows(subscribe: "metrics.>")))
        #expect(!(try p.allows(subscribe: ">")))
        #expect(!(try p.allows(subscribe: "metrics.host1")))
    }

    @Test("a subscription covered only by the union of two allows is refused (conservative rule)")
    func unionOfAllowsIsNotEnough() throws {
        // x.a and x.b do not cover x.* (x.c exists), so x.* is refused.
        let two = RuleDefinition(name: "two", subscribe: ["x.a", "x.b"])
        let p = try Fixture.policy(two).permissions(for: Fixture.identity())
        #expect(try p.allows(subscribe: "x.a"))
        #expect(!(try p.allows(subscribe: "x.*")))
        // Even when the union truly covers F, one filter must cover it alone.
        let split = RuleDefinition(name: "split", subscribe: ["y.*", "y.*.>"])
        let q = try Fixture.policy(split).permissions(for: Fixture.identity())
        #expect(!(try q.allows(subscribe: "y.>")))
        #expect(try q.allows(subscribe: "y.*"))
    }

    @Test("a subscription that intersects a deny is refused even if partly allowed")
    func denyIntersection() throws {
        let p = try Fixture.policy(orders).permissions(for: Fixture.identity(ou: ["orders"]))
        #expect(p.canSubscribe(try filter("orders.>")) == .denied(rule: "orders", filter: "orders.secret"))
        #expect(p.canSubscribe(try filter("orders.*")) == .denied(rule: "orders", filter: "orders.secret"))
        #expect(p.canSubscribe(try filter("orders.public")) == .allowed(rule: "orders", filter: "orders.>"))
        #expect(try p.allows(subscribe: "orders.*.x"))   // two tokens after orders: never orders.secret
    }

    @Test("publish denies use matching, not intersection")
    func publishDenyMatches() throws {
        let p = try Fixture.policy(orders).permissions(for: Fixture.identity(ou: ["orders"]))
        #expect(try p.allows(publish: "orders.admin"))   // orders.admin.> needs one more token
        #expect(!(try p.allows(publish: "orders.admin.x")))
    }
}
