import RelayCore

/// Everything `relayctl acl explain` shows for one identity: its
/// attributes, each rule with whether it matched and why, the effective
/// filters after templating (and what was dropped), and the decisions for
/// an optional publish topic and subscription filter.
///
/// Built from the same ``Evaluation`` and ``Permissions`` as the broker
/// uses, so explain's answer is the broker's answer.
public struct Explanation: Sendable {
    public struct Attribute: Sendable, Hashable {
        public let key: String
        public let values: [String]
    }

    public struct Check: Sendable, Hashable {
        /// The topic or filter checked.
        public let target: String
        public let decision: Decision
    }

    public let attributes: [Attribute]
    public let evaluation: Evaluation
    public let publish: Check?
    public let subscribe: Check?

    public var principal: String { evaluation.principal }
    public var rules: [RuleTrace] { evaluation.ruleTraces }

    /// Allowed when every requested check is allowed; with no check
    /// requested, when the identity is not refused.
    public var isAllowed: Bool {
        if publish == nil && subscribe == nil { return !evaluation.isRefused }
        return (publish?.decision.isAllowed ?? true) && (subscribe?.decision.isAllowed ?? true)
    }

    /// `relayctl acl explain`'s exit status: 0 allowed, 1 denied (2, for a
    /// bad config or certificate, is the CLI's to return).
    public var exitCode: Int32 { isAllowed ? 0 : 1 }
}

extension Policy {
    /// Explains how this policy treats `identity`, and optionally a publish
    /// to `topic` and a subscription with `filter`.
    public func explain(_ identity: Identity, publish topic: Topic? = nil,
                        subscribe filter: TopicFilter? = nil) -> Explanation {
        let evaluation = PolicyEvaluator.evaluate(self, identity, trace: true)
        let permissions = Permissions(evaluation)
        return Explanation(
            attributes: Self.attributes(of: identity),
            evaluation: evaluation,
            publish: topic.map { .init(target: $0.value, decision: permissions.canPublish($0)) },
            subscribe: filter.map { .init(target: $0.value, decision: permissions.canSubscribe($0)) })
    }

    /// The identity's attributes under the keys rules and templates use.
    static func attributes(of identity: Identity) -> [Explanation.Attribute] {
        var out: [Explanation.Attribute] = []
        func add(_ key: String, _ values: [String]) {
            if !values.isEmpty { out.append(.init(key: key, values: values)) }
        }
        for (prefix, name) in [("subject", identity.subject), ("issuer", identity.issuer)] {
            var keys: [String] = []
            for rdn in name.rdns {
                for attribute in rdn where !keys.contains(attribute.key) { keys.append(attribute.key) }
            }
            for key in keys { add("\(prefix).\(key)", name.values(of: key)) }
        }
        add("san.dns", identity.sans.dns)
        add("san.ip", identity.sans.ip)
        add("san.uri", identity.sans.uri)
        add("san.email", identity.sans.email)
        if let spiffe = identity.spiffe {
            add("spiffe", [spiffe.uri])
            add("spiffe.trust_domain", [spiffe.trustDomain])
            add("spiffe.path", [spiffe.path])
            for (i, segment) in spiffe.segments.enumerated() { add("spiffe.path[\(i)]", [segment]) }
        }
        add("serial", [identity.serialNumber])
        add("fingerprint", [identity.fingerprintSHA256.hex])
        return out
    }
}
