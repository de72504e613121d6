/// The answer to one publish or subscribe check, with what decided it so
/// the broker can log and audit it (the client only sees `not_authorized`).
public enum Decision: Sendable, Hashable, CustomStringConvertible {
    /// An allow filter of `rule` covers the topic or filter, and no deny matches.
    case allowed(rule: String, filter: String)
    /// A deny filter of `rule` matches the topic (publish) or intersects the
    /// filter (subscribe). Deny wins over every allow.
    case denied(rule: String, filter: String)
    /// No allow filter covers it (default deny).
    case notAllowed
    /// The identity matched no rule, or its rules grant nothing.
    case identityRefused

    public var isAllowed: Bool {
        if case .allowed = self { return true }
        return false
    }

    /// The deciding rule, when one decided.
    public var rule: String? {
        switch self {
        case .allowed(let rule, _), .denied(let rule, _): return rule
        case .notAllowed, .identityRefused: return nil
        }
    }

    public var description: String {
        switch self {
        case .allowed(let rule, let filter): return "allowed by rule '\(rule)' (filter '\(filter)')"
        case .denied(let rule, let filter): return "denied by rule '\(rule)' (deny filter '\(filter)')"
        case .notAllowed: return "denied: no rule allows it"
        case .identityRefused: return "denied: the identity is refused (no rule grants it anything)"
        }
    }
}
