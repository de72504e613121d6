import RelayCore

/// The validated rule set plus the principal template: everything needed to
/// turn a verified ``Identity`` into ``Permissions``. Immutable; a reload
/// builds a new one and re-evaluates every session.
public struct Policy: Sendable {
    /// At most this many filters per rule and side (allow / deny) come out
    /// of template expansion, so a certificate with many SANs cannot blow
    /// up a connection's permission set. Allows beyond it are not granted;
    /// a deny beyond it is widened (see ``DroppedTemplate``).
    public static let expansionCapPerRule = 256

    public let rules: [Rule]
    public let principal: PrincipalTemplate
    let index: RuleIndex

    /// A policy from validated rules. Rule names must be unique: decisions
    /// and the audit trail cite a rule by name.
    public init(rules: [Rule], principal: PrincipalTemplate = .subject) throws(PolicyConfigurationError) {
        var seen: [String: Int] = [:]
        for (i, rule) in rules.enumerated() {
            if let first = seen[rule.name] {
                throw PolicyConfigurationError(
                    rule: rule.name, ruleIndex: i, key: "name",
                    message: "duplicate rule name (also rule[\(first)]); decisions cite rules by name, so names must be unique")
            }
            seen[rule.name] = i
        }
        self.rules = rules
        self.principal = principal
        self.index = RuleIndex(rules)
    }

    /// Validates rules as written in the configuration (`[[acl.rule]]`) and
    /// the optional `acl.principal` template (nil: the RFC 4514 subject).
    public init(definitions: [RuleDefinition], principal: String? = nil) throws(PolicyConfigurationError) {
        var rules: [Rule] = []
        for (i, definition) in definitions.enumerated() {
            do {
                rules.append(try Rule(definition))
            } catch {
                throw error.at(index: i)
            }
        }
        try self.init(rules: rules, principal: try principal.map(PrincipalTemplate.init) ?? .subject)
    }

    /// Evaluates every rule for `identity` (once per connection).
    public func evaluate(_ identity: Identity) -> Evaluation {
        PolicyEvaluator.evaluate(self, identity, trace: false)
    }

    /// The per-connection permissions for `identity`.
    public func permissions(for identity: Identity) -> Permissions {
        Permissions(evaluate(identity))
    }
}
