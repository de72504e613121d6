import RelayCore

/// Plain-text rendering of an ``Explanation`` for `relayctl acl explain`.
///
/// Every certificate-derived string is quoted and escaped: a CN holding a
/// newline or a terminal control sequence must not forge output lines.
extension Explanation {
    public func renderText() -> String {
        var lines: [String] = []
        lines.append("identity")
        for attribute in attributes {
            lines.append("  \(attribute.key) = \(attribute.values.map(DisplayText.quoted).joined(separator: ", "))")
        }
        lines.append("principal: \(DisplayText.quoted(principal))")
        lines.append("")
        lines.append("rules (\(rules.count); a rule applies when all its conditions hold)")
        for rule in rules {
            lines.append("  [\(rule.matched ? "match" : "no")] \(rule.name)")
            if rule.conditions.isEmpty { lines.append("      (empty match table: applies to every verified identity)") }
            for condition in rule.conditions {
                lines.append("      " + Self.render(condition))
            }
        }
        lines.append("")
        lines.append("effective permissions")
        for (title, grants) in [("publish allow", evaluation.publishAllow), ("publish deny", evaluation.publishDeny),
                                ("subscribe allow", evaluation.subscribeAllow),
                                ("subscribe deny", evaluation.subscribeDeny)] {
            if grants.isEmpty {
                lines.append("  \(title): (none)")
                continue
            }
            lines.append("  \(title):")
            for grant in grants {
                let from = grant.source == grant.filter.value ? "" : " from '\(grant.source)'"
                lines.append("    \(grant.filter.value)  (rule '\(grant.rule)'\(from))")
            }
        }
        if !evaluation.droppedTemplates.isEmpty {
            lines.append("dropped templates (never substituted; allows dropped, denies widened)")
            for drop in evaluation.droppedTemplates { lines.append("  - \(drop)") }
        }
        lines.append("")
        if let refusal = evaluation.refusal { lines.append("identity refused at connect: \(refusal)") }
        if let publish { lines.append("publish \(publish.target): \(publish.decision)") }
        if let subscribe { lines.append("subscribe \(subscribe.target): \(subscribe.decision)") }
        lines.append("result: \(isAllowed ? "ALLOWED" : "DENIED")")
        return lines.joined(separator: "\n") + "\n"
    }

    private static func render(_ c: ConditionOutcome) -> String {
        let patterns = c.patterns.map(DisplayText.quoted).joined(separator: ", ")
        if c.values.isEmpty { return "\(c.key): FAIL, the identity has no such attribute (wanted \(patterns))" }
        let values = c.values.map(DisplayText.quoted).joined(separator: ", ")
        if c.matched, let value = c.matchedValue, let pattern = c.matchedPattern {
            return "\(c.key): ok, \(DisplayText.quoted(value)) matches \(DisplayText.quoted(pattern))"
        }
        return "\(c.key): FAIL, values \(values) match none of \(patterns)"
    }
}
