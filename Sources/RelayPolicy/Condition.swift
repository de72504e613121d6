import RelayCore

/// One compiled `match` entry: an identity attribute and the patterns it
/// may match. It holds when any value of the attribute matches any pattern;
/// an attribute the identity does not have never matches (even `*`, which
/// therefore means "present").
/// A final class for the same reason as ``Rule``: no copies on the hot path.
public final class Condition: Sendable {
    let attribute: AttributeKey
    public let patterns: [ValuePattern]

    /// The condition key as written (`subject.CN`, `spiffe.path` …).
    public var key: String { attribute.description }

    init(attribute: AttributeKey, patterns: [ValuePattern]) {
        self.attribute = attribute
        self.patterns = patterns
    }

    /// Evaluates against `identity`; `outcome` carries what was compared so
    /// explain can say why.
    func evaluate(_ identity: Identity) -> ConditionOutcome {
        let values = attribute.values(in: identity)
        for value in values {
            for pattern in patterns where pattern.matches(value) {
                return ConditionOutcome(key: key, patterns: patterns.map(\.source), values: values,
                                        matched: true, matchedValue: value, matchedPattern: pattern.source)
            }
        }
        return ConditionOutcome(key: key, patterns: patterns.map(\.source), values: values,
                                matched: false, matchedValue: nil, matchedPattern: nil)
    }

    /// The fast path for per-connection evaluation: no outcome is built.
    func holds(for identity: Identity) -> Bool {
        attribute.anyValue(in: identity) { value in
            for i in patterns.indices where patterns[i].matches(value) { return true }
            return false
        }
    }
}

/// Why one condition held or not: the values compared and the first match.
public struct ConditionOutcome: Sendable, Hashable {
    public let key: String
    public let patterns: [String]
    /// The identity's values for the key; empty when it has none.
    public let values: [String]
    public let matched: Bool
    public let matchedValue: String?
    public let matchedPattern: String?
}
