/// One `[[acl.rule]]` exactly as the operator wrote it, before validation.
///
/// The broker's config parser fills this from TOML; ``Rule/init(_:)`` and
/// ``Policy/init(definitions:principal:)`` validate it and throw a
/// ``PolicyConfigurationError`` naming the rule and the bad key.
public struct RuleDefinition: Sendable, Equatable {
    public var name: String
    /// Condition key (`subject.CN`, `san.dns`, `spiffe.path` …) → accepted
    /// values; each value is an exact string or a glob with `*`. The
    /// condition holds when any identity value matches any listed value.
    public var match: [String: [String]]
    public var publish: [String]
    public var subscribe: [String]
    public var denyPublish: [String]
    public var denySubscribe: [String]
    /// `multi_value`: what to do when the identity has several distinct
    /// values of an attribute one of this rule's filter templates uses.
    public var multiValue: MultiValue
    /// `admin`: `["read"]` or `["read", "write"]` grants the broker's admin
    /// operations to the identities this rule matches (``AdminAccess``).
    public var admin: [String] = []

    public init(name: String, match: [String: [String]] = [:], publish: [String] = [],
                subscribe: [String] = [], denyPublish: [String] = [], denySubscribe: [String] = [],
                multiValue: MultiValue = .refuse, admin: [String] = []) {
        self.admin = admin
        self.name = name
        self.match = match
        self.publish = publish
        self.subscribe = subscribe
        self.denyPublish = denyPublish
        self.denySubscribe = denySubscribe
        self.multiValue = multiValue
    }
}
