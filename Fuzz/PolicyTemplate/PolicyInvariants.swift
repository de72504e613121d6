// Shared by the relay-fuzz-policy-template target and the corpus replay test
// (Tests/RelayPolicyTests/TemplateCorpus/ links to this file): one set of checks.
import RelayCore
import RelayPolicy

/// The checks run for every (policy, identity) pair. They re-derive what
/// templating may produce from the identity's attribute values, independently
/// of RelayPolicy's expansion code:
/// - an allow filter that came from a template is the template with each
///   `{key}` replaced by one value the identity really has for that key, and
///   that value is one topic token (`[A-Za-z0-9_-]+`). So a value holding
///   `.`, `*`, `>`, whitespace or a control character never widens a grant:
///   not by adding tokens, not by becoming a wildcard;
/// - every templated deny of a matched rule is enforced: each exact
///   expansion, or the fail-closed widening when a value cannot be
///   substituted, is covered by an effective deny filter;
/// - the broker's indexed evaluation and explain's full walk agree;
/// - a principal template without control characters renders a non-empty
///   principal without control characters (no forged log lines).
enum PolicyInvariants {
    /// Every broken invariant; empty when all hold.
    static func violations(_ policy: Policy, _ identity: Identity) -> [String] {
        var out: [String] = []
        let evaluation = policy.evaluate(identity)
        let explained = policy.explain(identity).evaluation
        if evaluation.matchedRules != explained.matchedRules
            || summary(evaluation) != summary(explained) || evaluation.isRefused != explained.isRefused {
            out.append("indexed evaluation \(evaluation.matchedRules) \(summary(evaluation)) != explain \(explained.matchedRules) \(summary(explained))")
        }
        for grant in evaluation.publishAllow + evaluation.subscribeAllow {
            if let problem = allowProblem(grant, identity) { out.append(problem) }
        }
        for name in evaluation.matchedRules {
            guard let rule = policy.rules.first(where: { $0.name == name }) else {
                out.append("matched rule '\(name)' is not in the policy")
                continue
            }
            for (templates, denies) in [(rule.denyPublish, evaluation.publishDeny),
                                        (rule.denySubscribe, evaluation.subscribeDeny)] {
                for template in templates where template.isTemplated {
                    out += denyProblems(template.source, rule: name, denies: denies, identity)
                }
            }
        }
        if !policy.principal.source.unicodeScalars.contains(where: isControl) {
            let principal = policy.principal.render(identity)
            if principal.isEmpty || principal.unicodeScalars.contains(where: isControl) {
                out.append("principal \(principal.debugDescription) from template '\(policy.principal.source)'")
            }
        }
        return out
    }

    static func summary(_ e: Evaluation) -> [[String]] {
        [e.publishAllow, e.subscribeAllow, e.publishDeny, e.subscribeDeny].map { $0.map { "\($0.rule):\($0.filter.value)" } }
    }

    static func isControl(_ scalar: Unicode.Scalar) -> Bool { scalar.value < 0x20 || scalar.value == 0x7F }

    /// One topic token by the wire grammar (Protocol/relay-v1.md §Topics).
    static func isToken(_ text: Substring) -> Bool {
        !text.isEmpty && text.utf8.allSatisfy { b in
            (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) || b == 0x5F || b == 0x2D
        }
    }

    /// The `{key}` of a whole-token template, or nil for a literal token.
    static func templateKey(_ token: String) -> String? {
        guard token.count >= 3, token.hasPrefix("{"), token.hasSuffix("}") else { return nil }
        return String(token.dropFirst().dropLast())
    }

    /// Tokens of a filter as written: dots inside `{…}` do not split.
    static func sourceTokens(_ source: String) -> [String] {
        var tokens: [String] = [], current = "", depth = 0
        for character in source {
            if character == "{" { depth += 1 }
            if character == "}" { depth = max(0, depth - 1) }
            if character == "." && depth == 0 {
                tokens.append(current)
                current = ""
            } else {
                current.append(character)
            }
        }
        return tokens + [current]
    }

    /// The identity's values for a template key.
    static func values(_ key: String, _ identity: Identity) -> [String] {
        if key.hasPrefix("spiffe.path["), key.hasSuffix("]"),
           let n = Int(key.dropFirst("spiffe.path[".count).dropLast()) {
            guard let segments = identity.spiffe?.segments, n >= 0, n < segments.count else { return [] }
            return [segments[n]]
        }
        return identity.values(of: key)
    }

    static func allowProblem(_ grant: Grant, _ identity: Identity) -> String? {
        let written = sourceTokens(grant.source)
        guard written.contains(where: { templateKey($0) != nil }) else { return nil }
        let produced = grant.filter.value.split(separator: ".", omittingEmptySubsequences: false)
        guard produced.count == written.count else {
            return "allow '\(grant.filter.value)' from '\(grant.source)' has \(produced.count) tokens, the template \(written.count)"
        }
        for (token, result) in zip(written, produced) {
            if let key = templateKey(token) {
                guard isToken(result) else {
                    return "allow '\(grant.filter.value)' from '\(grant.source)': {\(key)} became '\(result)', not one literal token"
                }
                guard values(key, identity).contains(String(result)) else {
                    return "allow '\(grant.filter.value)' from '\(grant.source)': '\(result)' is not a value of \(key)"
                }
            } else if token != result {
                return "allow '\(grant.filter.value)' from '\(grant.source)': literal '\(token)' became '\(result)'"
            }
        }
        return nil
    }

    static func denyProblems(_ source: String, rule: String, denies: [Grant], _ identity: Identity) -> [String] {
        let written = sourceTokens(source)
        let prefix = written.prefix { templateKey($0) == nil }
        let widened = (prefix + [">"]).joined(separator: ".")
        var choices: [[String]] = []
        var failed = false
        for token in written {
            guard let key = templateKey(token) else {
                choices.append([token])
                continue
            }
            let all = values(key, identity)
            if all.isEmpty || !all.allSatisfy({ isToken($0[...]) }) { failed = true }
            var unique: [String] = []
            for value in all where isToken(value[...]) && !unique.contains(value) { unique.append(value) }
            choices.append(unique)
        }
        var required: [String] = []
        let total = choices.reduce(1) { $0.multipliedReportingOverflow(by: $1.count).overflow ? Int.max : $0 * $1.count }
        if failed || total > Policy.expansionCapPerRule {
            required = [widened]
        } else {
            var combinations: [[String]] = [[]]
            for choice in choices {
                combinations = combinations.flatMap { head in choice.map { head + [$0] } }
            }
            required = combinations.map { $0.joined(separator: ".") }
        }
        var out: [String] = []
        for text in required {
            // An exact expansion over the length limit is denied through the widening.
            let filter = (try? TopicFilter(text)) ?? (try? TopicFilter(widened))
            guard let filter else {
                out.append("rule '\(rule)' deny '\(source)': neither '\(text)' nor '\(widened)' is a filter")
                continue
            }
            if !denies.contains(where: { filter.isSubset(of: $0.filter) }) {
                out.append("rule '\(rule)' deny '\(source)': '\(filter.value)' is not denied (effective denies \(denies.map(\.filter.value)))")
            }
        }
        return out
    }
}
