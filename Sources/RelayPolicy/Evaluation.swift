import RelayCore

/// The result of evaluating a policy for one identity: the effective allow
/// and deny filters after templating, what was dropped, and whether the
/// identity is refused. ``Permissions`` and ``Explanation`` are both built
/// from this one value, so the broker and `relayctl acl explain` cannot
/// disagree.
public struct Evaluation: Sendable {
    public let principal: String
    /// Names of the rules whose conditions all hold, in policy order.
    public let matchedRules: [String]
    public let publishAllow: [Grant]
    public let subscribeAllow: [Grant]
    public let publishDeny: [Grant]
    public let subscribeDeny: [Grant]
    /// Templated filters not granted as written; the broker audits them.
    public let droppedTemplates: [DroppedTemplate]
    /// Why the identity is refused at connect (for the broker's log only:
    /// the client is told `identity_refused`, never which rules exist).
    /// Nil when it is not refused.
    public let refusal: String?
    /// Every rule with the outcome of each condition; filled only for explain.
    public let ruleTraces: [RuleTrace]
    /// The highest admin grant of the matched rules (default `.none`).
    public var admin: AdminAccess = .none

    public var isRefused: Bool { refusal != nil }
}

/// One rule as evaluated for explain: matched or not, and why.
public struct RuleTrace: Sendable, Hashable {
    public let name: String
    public let matched: Bool
    /// Every condition's outcome, in key order; empty for an empty match table.
    public let conditions: [ConditionOutcome]
}

/// The single evaluator. `trace` only adds per-condition detail for explain;
/// whether a rule applies is decided by the same `Rule.applies` either way.
enum PolicyEvaluator {
    static func evaluate(_ policy: Policy, _ identity: Identity, trace: Bool) -> Evaluation {
        var matched: [String] = []
        var traces: [RuleTrace] = []
        var drops: [DroppedTemplate] = []
        var publishAllow = GrantSet(), subscribeAllow = GrantSet()
        var publishDeny = GrantSet(), subscribeDeny = GrantSet()
        // The first rule whose templates the identity is ambiguous for; the
        // filters are still expanded, so explain can show what was at stake.
        var ambiguity: String?
        var admin = AdminAccess.none

        // Explain reports every rule; the broker only looks at the rules the
        // index says can apply. Either way `Rule.applies` decides.
        let positions = trace ? Array(policy.rules.indices) : policy.index.candidates(for: identity)
        for position in positions {
            let rule = policy.rules[position]
            let applies = rule.applies(to: identity)
            if trace {
                traces.append(RuleTrace(name: rule.name, matched: applies,
                                        conditions: rule.conditions.map { $0.evaluate(identity) }))
            }
            guard applies else { continue }
            matched.append(rule.name)
            admin = max(admin, rule.admin)
            if ambiguity == nil { ambiguity = rule.ambiguity(for: identity) }
            var allowBudget = Policy.expansionCapPerRule
            var denyBudget = Policy.expansionCapPerRule
            var scratch: [Grant] = []
            for (templates, side, list) in [(rule.publish, FilterSide.allow, "publish"),
                                            (rule.subscribe, .allow, "subscribe"),
                                            (rule.denyPublish, .deny, "deny_publish"),
                                            (rule.denySubscribe, .deny, "deny_subscribe")] {
                for template in templates {
                    scratch.removeAll(keepingCapacity: true)
                    if side == .allow {
                        template.expand(for: identity, side: side, rule: rule.name, list: list,
                                        budget: &allowBudget, into: &scratch, drops: &drops)
                    } else {
                        template.expand(for: identity, side: side, rule: rule.name, list: list,
                                        budget: &denyBudget, into: &scratch, drops: &drops)
                    }
                    switch list {
                    case "publish": publishAllow.insert(scratch)
                    case "subscribe": subscribeAllow.insert(scratch)
                    case "deny_publish": publishDeny.insert(scratch)
                    default: subscribeDeny.insert(scratch)
                    }
                }
            }
        }

        let refusal: String?
        if let unrenderable = policy.principal.unrenderableReason(identity) {
            refusal = unrenderable
        } else if matched.isEmpty {
            refusal = "no rule matches this identity (the policy has \(policy.rules.count) rules)"
        } else if let ambiguity {
            refusal = ambiguity
        } else if let problem = policy.principal.problem(for: identity) {
            refusal = problem
        } else if publishAllow.grants.isEmpty && subscribeAllow.grants.isEmpty && admin == .none {
            refusal = "rules \(matched.map { "'\($0)'" }.joined(separator: ", ")) match but grant nothing"
                + (drops.isEmpty ? "" : " (\(drops.count) templated filters dropped)")
        } else {
            refusal = nil
        }
        var evaluation = Evaluation(principal: policy.principal.render(identity), matchedRules: matched,
                                    publishAllow: publishAllow.grants, subscribeAllow: subscribeAllow.grants,
                                    publishDeny: publishDeny.grants, subscribeDeny: subscribeDeny.grants,
                                    droppedTemplates: drops, refusal: refusal, ruleTraces: traces)
        evaluation.admin = admin
        return evaluation
    }
}

/// Grants without duplicate filters; the first rule to grant a filter is
/// the one decisions cite.
private struct GrantSet {
    var grants: [Grant] = []
    var seen: Set<String> = []

    mutating func insert(_ new: [Grant]) {
        for grant in new where seen.insert(grant.filter.value).inserted {
            grants.append(grant)
        }
    }
}
