import RelayCore
@testable import RelayPolicy
import Testing

/// The `admin` grant of `[[acl.rule]]` (docs/security.md, "Admin access"):
/// default deny, the highest grant of the matching rules wins, an
/// admin-only rule admits an operator certificate, bad values name the key.
@Suite("Admin grant")
struct AdminGrantTests {
    static let rules = [
        RuleDefinition(name: "apps", match: ["subject.CN": ["app"]], publish: [">"], subscribe: [">"]),
        RuleDefinition(name: "viewers", match: ["subject.CN": ["viewer", "ops"]], admin: ["read"]),
        RuleDefinition(name: "operators", match: ["subject.CN": ["ops"]], admin: ["read", "write"]),
    ]

    @Test("no admin key on a matching rule: no admin access (default deny)")
    func defaultDeny() throws {
        let policy = try Policy(definitions: Self.rules, principal: nil)
        #expect(policy.permissions(for: Fixture.identity(cn: ["app"])).admin == .none)
        #expect(policy.permissions(for: Fixture.identity(cn: ["stranger"])).admin == .none)
    }

    @Test("read, and the highest grant of several matching rules; an admin-only rule is not a refusal")
    func grants() throws {
        let policy = try Policy(definitions: Self.rules, principal: nil)
        let viewer = policy.permissions(for: Fixture.identity(cn: ["viewer"]))
        #expect(viewer.admin == .read && !viewer.isRefused)
        #expect(policy.permissions(for: Fixture.identity(cn: ["ops"])).admin == .write)
    }

    @Test("an admin value other than read or write is a config error naming admin[i]")
    func invalidValue() throws {
        let bad = RuleDefinition(name: "typo", match: ["subject.CN": ["ops"]], admin: ["read", "delete"])
        var caught: PolicyConfigurationError?
        do { _ = try Rule(bad) } catch { caught = error }
        #expect(caught?.key == "admin")
        #expect(caught?.message.contains("admin[1]") == true, "\(String(describing: caught))")
    }
}
