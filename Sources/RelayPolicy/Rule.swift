import RelayCore

/// One validated `[[acl.rule]]`: who it applies to (`conditions`, all must
/// hold) and what it allows and denies in each direction.
///
/// A final class, immutable: every connection walks every rule, and copying
/// a struct of six arrays cost six retain/release pairs per rule (measured:
/// most of the per-connection evaluation time).
public final class Rule: Sendable {
    public let name: String
    /// Sorted by key, so evaluation and explain output are deterministic.
    public let conditions: [Condition]
    public let publish: [FilterTemplate]
    public let subscribe: [FilterTemplate]
    public let denyPublish: [FilterTemplate]
    public let denySubscribe: [FilterTemplate]
    /// `multi_value`: refuse an identity with several values of a templated
    /// attribute (the default), or expand every value.
    public let multiValue: MultiValue
    /// The `admin` grant (``AdminAccess``); `.none` unless the rule lists one.
    public let admin: AdminAccess

    /// Builds and validates a rule from plain values.
    /// An empty `match` applies the rule to every verified identity.
    public convenience init(name: String, match: [String: [String]] = [:], publish: [String] = [],
                            subscribe: [String] = [], denyPublish: [String] = [], denySubscribe: [String] = [],
                            multiValue: MultiValue = .refuse)
        throws(PolicyConfigurationError) {
        try self.init(RuleDefinition(name: name, match: match, publish: publish, subscribe: subscribe,
                                     denyPublish: denyPublish, denySubscribe: denySubscribe, multiValue: multiValue))
    }

    /// Validates a rule as the operator wrote it. Every error names the rule
    /// and the key (`match.subject.cn`, `publish[1]` …).
    public init(_ definition: RuleDefinition) throws(PolicyConfigurationError) {
        let name = definition.name
        func fail(_ key: String, _ message: String) -> PolicyConfigurationError {
            PolicyConfigurationError(rule: name.isEmpty ? nil : name, key: key, message: message)
        }
        guard !name.isEmpty else {
            throw fail("name", "every rule needs a non-empty name; decisions and the audit trail cite it")
        }
        guard name.unicodeScalars.allSatisfy({ $0.value >= 0x20 && $0.value != 0x7F }) else {
            throw fail("name", "the rule name contains a control character; use printable text")
        }
        var conditions: [Condition] = []
        for key in definition.match.keys.sorted() {
            let values = definition.match[key] ?? []
            let attribute: AttributeKey
            do {
                attribute = try AttributeKey.parse(key, for: .condition)
            } catch {
                throw fail("match.\(key)", error.message)
            }
            guard !values.isEmpty else {
                throw fail("match.\(key)", "the list of accepted values is empty, so the rule could never match; list at least one value, or \"*\" for any value")
            }
            if let i = values.firstIndex(of: "") {
                throw fail("match.\(key)[\(i)]", "empty value; use \"*\" to accept any value of the attribute")
            }
            conditions.append(Condition(attribute: attribute, patterns: values.map(ValuePattern.init)))
        }
        func filters(_ list: [String], _ key: String) throws(PolicyConfigurationError) -> [FilterTemplate] {
            var out: [FilterTemplate] = []
            for (i, text) in list.enumerated() {
                do {
                    out.append(try FilterTemplate(text))
                } catch {
                    throw fail("\(key)[\(i)]", error.message)
                }
            }
            return out
        }
        let publish = try filters(definition.publish, "publish")
        let subscribe = try filters(definition.subscribe, "subscribe")
        let denyPublish = try filters(definition.denyPublish, "deny_publish")
        let denySubscribe = try filters(definition.denySubscribe, "deny_subscribe")
        let admin: AdminAccess
        switch AdminAccess.parse(definition.admin) {
        case .success(let access): admin = access
        case .failure(let invalid): throw fail("admin", invalid.message)
        }
        guard !(publish.isEmpty && subscribe.isEmpty && denyPublish.isEmpty && denySubscribe.isEmpty && admin == .none) else {
            throw fail("publish", "the rule allows and denies nothing; give it publish, subscribe, deny_publish, deny_subscribe or admin")
        }
        self.admin = admin
        self.name = name
        self.conditions = conditions
        self.publish = publish
        self.subscribe = subscribe
        self.denyPublish = denyPublish
        self.denySubscribe = denySubscribe
        self.multiValue = definition.multiValue
    }

    /// True when every condition holds (always, for an empty match table).
    func applies(to identity: Identity) -> Bool {
        for i in conditions.indices where !conditions[i].holds(for: identity) { return false }
        return true
    }
}
