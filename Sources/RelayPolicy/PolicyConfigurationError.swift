/// A policy that cannot be loaded: names the rule, the key inside it and
/// what is wrong, so the operator can fix the config file without guessing.
///
/// The broker refuses to start (or keeps the previous policy on reload) when
/// one of these is thrown: a half-understood policy is never applied.
public struct PolicyConfigurationError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The rule's name, or nil when the problem is not inside a rule
    /// (the principal template, or a rule without a name).
    public var rule: String?
    /// The 0-based position of the rule in the configuration, when known.
    public var ruleIndex: Int?
    /// The key inside the rule: `name`, `match.subject.CN`, `publish[2]`, `principal` …
    public var key: String
    /// What is wrong and what to do about it.
    public var message: String

    public init(rule: String?, ruleIndex: Int? = nil, key: String, message: String) {
        self.rule = rule
        self.ruleIndex = ruleIndex
        self.key = key
        self.message = message
    }

    public var description: String {
        var location = "acl"
        if let ruleIndex { location += ".rule[\(ruleIndex)]" }
        if let rule { location += " \"\(rule)\"" }
        return "\(location): \(key): \(message)"
    }

    /// The same error, placed at a rule position (the rule compiler does not know it).
    func at(index: Int) -> PolicyConfigurationError {
        var copy = self
        copy.ruleIndex = index
        return copy
    }
}
