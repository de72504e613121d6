import RelayCore

/// What one connection may do, computed once at HELLO (and again on
/// reload) from its verified identity. Immutable and Sendable.
///
/// - Publish to topic T: allowed iff some allow filter matches T and no deny
///   filter matches T.
/// - Subscribe with filter F: allowed iff F is a subset of one allow filter
///   (every topic F can match is matched by that filter) and F intersects no
///   deny filter (no topic F can match is denied).
public struct Permissions: Sendable {
    public let principal: String
    /// Nil unless the identity is refused; then every check is denied.
    public let refusal: String?
    public let publishAllow: [Grant]
    public let subscribeAllow: [Grant]
    public let publishDeny: [Grant]
    public let subscribeDeny: [Grant]
    /// Reported once per connection to the audit trail by the broker.
    public let droppedTemplates: [DroppedTemplate]
    /// Which admin operations this identity may call (`admin` of its rules).
    public let admin: AdminAccess

    public var isRefused: Bool { refusal != nil }

    public init(_ evaluation: Evaluation) {
        principal = evaluation.principal
        refusal = evaluation.refusal
        publishAllow = evaluation.publishAllow
        subscribeAllow = evaluation.subscribeAllow
        publishDeny = evaluation.publishDeny
        subscribeDeny = evaluation.subscribeDeny
        droppedTemplates = evaluation.droppedTemplates
        admin = evaluation.isRefused ? .none : evaluation.admin
    }

    public func canPublish(_ topic: Topic) -> Decision {
        decision(publishVerdict(tokens: topic.tokens))
    }

    public func canSubscribe(_ filter: TopicFilter) -> Decision {
        if isRefused { return .identityRefused }
        for deny in subscribeDeny where filter.intersects(deny.filter) {
            return .denied(rule: deny.rule, filter: deny.filter.value)
        }
        for allow in subscribeAllow where filter.isSubset(of: allow.filter) {
            return .allowed(rule: allow.rule, filter: allow.filter.value)
        }
        return .notAllowed
    }

    /// A publish decision as a trivial value (no strings), which is what
    /// ``PublishCache`` stores.
    enum Verdict: Hashable {
        case allowed(Int)   // index into publishAllow
        case denied(Int)    // index into publishDeny
        case notAllowed
        case refused

        var isAllowed: Bool { if case .allowed = self { true } else { false } }
    }

    func publishVerdict(tokens: [Substring]) -> Verdict {
        if isRefused { return .refused }
        // Deny first: it wins whatever the allows say.
        for i in publishDeny.indices where publishDeny[i].filter.matches(tokens: tokens) {
            return .denied(i)
        }
        for i in publishAllow.indices where publishAllow[i].filter.matches(tokens: tokens) {
            return .allowed(i)
        }
        return .notAllowed
    }

    func decision(_ verdict: Verdict) -> Decision {
        switch verdict {
        case .allowed(let i): return .allowed(rule: publishAllow[i].rule, filter: publishAllow[i].filter.value)
        case .denied(let i): return .denied(rule: publishDeny[i].rule, filter: publishDeny[i].filter.value)
        case .notAllowed: return .notAllowed
        case .refused: return .identityRefused
        }
    }
}
