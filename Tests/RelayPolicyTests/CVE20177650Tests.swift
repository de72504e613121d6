import Testing
import RelayCore
@testable import RelayPolicy

/// Mosquitto CVE-2017-7650: a client whose username or CN was `+` or `#`
/// had it substituted into an ACL pattern and so gained a wildcard grant.
/// Here a certificate value is substituted only when it is exactly one
/// topic token; anything else grants nothing extra.
@Suite("CVE-2017-7650: certificate values never widen a grant")
struct CVE20177650Tests {
    static let hostile = ["#", "+", "*", ">", "a.b", "a b", "a\nb", "", "a.>", "*.*", "a\u{0}b", "\u{202E}x", "é", " a", "a\t", "../x"]

    let rule = RuleDefinition(name: "own", publish: ["clients.{subject.CN}.out", "clients.{subject.CN}.>"],
                              subscribe: ["clients.{subject.CN}.in"],
                              denyPublish: ["clients.{subject.CN}.locked"])
    /// A static grant, so a hostile identity is not simply refused and the
    /// checks below exercise the filters themselves.
    let base = RuleDefinition(name: "base", publish: ["base.x"], subscribe: ["base.x"])

    @Test("a hostile CN gets no templated allow at all", arguments: hostile)
    func hostileCN(_ cn: String) throws {
        let p = try Fixture.policy(rule, base).permissions(for: Fixture.identity(cn: [cn]))
        #expect(!p.isRefused)
        #expect(p.publishFilters == ["base.x"])
        #expect(p.subscribeFilters == ["base.x"])
        #expect(try p.allows(publish: "base.x"))
        #expect(try Fixture.policy(rule).permissions(for: Fixture.identity(cn: [cn])).isRefused)
        for t in ["clients.x.out", "clients.a.b.out", "clients.a.out", "clients.b.out", "clients.a.b", "clients.x.y.z"] {
            #expect(!(try p.allows(publish: t)), "CN \(cn.debugDescription) must not publish \(t)")
        }
        for f in ["clients.*.in", "clients.>", "clients.a.b.in", ">"] {
            #expect(!(try p.allows(subscribe: f)), "CN \(cn.debugDescription) must not subscribe \(f)")
        }
        // Every template use was reported (two allows' worth of publish, one subscribe, one deny).
        #expect(p.droppedTemplates.count == 4)
    }

    @Test("a hostile value next to a good one: refused by default; with multi_value = all, only the good one's filters", arguments: hostile)
    func hostileBesideGood(_ bad: String) throws {
        // Two CNs make the identity ambiguous for the templates: refused.
        #expect(try Fixture.policy(rule).permissions(for: Fixture.identity(cn: ["good", bad])).isRefused)
        var all = rule
        all.multiValue = .all
        let p = try Fixture.policy(all).permissions(for: Fixture.identity(cn: ["good", bad]))
        #expect(!p.isRefused)
        let clean = try Fixture.policy(rule).permissions(for: Fixture.identity(cn: ["good"]))
        #expect(p.publishFilters == clean.publishFilters)
        #expect(p.subscribeFilters == clean.subscribeFilters)
        #expect(try clean.allows(publish: "clients.good.out"))
        // The deny cannot be computed for the bad value, so it fails closed:
        // it widens to the template's prefix, more denied, never less.
        #expect(p.canPublish(try topic("clients.good.out")) == .denied(rule: "own", filter: "clients.>"))
        #expect(!(try p.allows(publish: "clients.other.out")))
        #expect(!(try p.allows(publish: "clients.good.locked")))
        #expect(p.publishDeny.allSatisfy { deny in clean.publishDeny.contains { $0.filter.isSubset(of: deny.filter) } })
    }

    @Test("hostile OU, DNS SAN and SPIFFE segment are refused the same way")
    func otherAttributes() throws {
        let r = RuleDefinition(name: "r", publish: ["a.{subject.OU}", "b.{san.dns}", "c.{spiffe.path[0]}", "d.{issuer.CN}"])
        let p = try Fixture.policy(r).permissions(
            for: Fixture.identity(ou: [">"], dns: ["*"], spiffe: "spiffe://td/x.y"))
        // issuer.CN "Relay Root" contains a space.
        #expect(p.publishAllow.isEmpty)
        #expect(p.droppedTemplates.count == 4)
    }
}
