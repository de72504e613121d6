import RelayCore

/// A templated filter that was not granted as written for one identity.
/// The broker writes these to the audit trail; explain prints them.
public struct DroppedTemplate: Sendable, Hashable, CustomStringConvertible {
    public let rule: String
    /// `publish`, `subscribe`, `deny_publish` or `deny_subscribe`.
    public let list: String
    /// The filter as written, e.g. `clients.{subject.CN}.>`.
    public let filter: String
    /// The template key, e.g. `subject.CN` (all of them, comma-separated, for the expansion cap).
    public let template: String
    /// The offending value, nil when the attribute is absent or for the cap.
    public let value: String?
    public let reason: String
    /// For a deny filter: the wider deny applied instead (fail closed), e.g. `clients.>`.
    public let widenedTo: String?

    public var description: String {
        var text = "rule '\(rule)' \(list) '\(filter)': {\(template)}"
        if let value { text += " value \(DisplayText.quoted(value))" }
        text += ": \(reason)"
        if let widenedTo { text += "; deny widened to '\(widenedTo)'" }
        return text
    }
}

/// Which side of a rule a filter is on decides how a failed substitution
/// fails: an allow is dropped (grants less), a deny is widened (denies more).
/// Either way the identity ends up with no more than it would have without
/// the bad value.
enum FilterSide {
    case allow, deny
}

/// A filter produced by policy, with the rule that produced it.
public struct Grant: Sendable, Hashable {
    public let filter: TopicFilter
    public let rule: String
    /// The filter as written in the rule (before templating).
    public let source: String
}

extension FilterTemplate {
    /// Expands for one identity into `out`; every value that could not be
    /// substituted is reported in `drops`. `budget` is the number of filters
    /// the rule may still produce on this side (the expansion cap).
    func expand(for identity: Identity, side: FilterSide, rule: String, list: String,
                budget: inout Int, into out: inout [Grant], drops: inout [DroppedTemplate]) {
        if let staticFilter {
            out.append(Grant(filter: staticFilter, rule: rule, source: source))
            return
        }
        // Candidate values per token; nil for literal tokens.
        var choices: [[String]?] = []
        var failed = false
        for token in tokens {
            switch token {
            case .literal:
                choices.append(nil)
            case .template(let key):
                let values = key.values(in: identity)
                var good: [String] = []
                if values.isEmpty {
                    failed = true
                    drops.append(drop(rule, list, key.description, nil, "the identity has no \(key) attribute", side))
                }
                for value in values {
                    if let problem = Self.tokenProblem(value) {
                        failed = true
                        drops.append(drop(rule, list, key.description, value, problem, side))
                    } else if !good.contains(value) {
                        good.append(value)
                    }
                }
                choices.append(good)
            }
        }
        // A deny whose exact expansion is unknown fails closed, whole.
        if side == .deny && failed {
            out.append(Grant(filter: widened, rule: rule, source: source))
            return
        }
        let total = choices.reduce(1) { product, choice in
            guard let choice else { return product }
            return product.multipliedReportingOverflow(by: choice.count).overflow ? Int.max : product * choice.count
        }
        if total == 0 { return }
        if total > budget {
            let keys = templateKeys.joined(separator: ",")
            if side == .deny {
                drops.append(drop(rule, list, keys, nil, "expansion needs \(total) filters, over the cap of \(Policy.expansionCapPerRule) per rule", side))
                out.append(Grant(filter: widened, rule: rule, source: source))
                return
            }
            drops.append(DroppedTemplate(
                rule: rule, list: list, filter: source, template: keys, value: nil,
                reason: "expansion needs \(total) filters; only \(budget) granted (cap of \(Policy.expansionCapPerRule) per rule)",
                widenedTo: nil))
        }
        var produced = 0
        let limit = min(total, budget)
        var indices = [Int](repeating: 0, count: tokens.count)
        while produced < limit {
            var parts: [String] = []
            parts.reserveCapacity(tokens.count)
            for (i, token) in tokens.enumerated() {
                switch token {
                case .literal(let text): parts.append(text)
                case .template: parts.append(choices[i]?[indices[i]] ?? "")
                }
            }
            let text = parts.joined(separator: ".")
            if let filter = try? TopicFilter(text) {
                out.append(Grant(filter: filter, rule: rule, source: source))
            } else if side == .deny {
                // Only length can fail here (values are valid tokens): deny wider.
                drops.append(drop(rule, list, templateKeys.joined(separator: ","), nil, "expanded filter is too long", side))
                out.append(Grant(filter: widened, rule: rule, source: source))
                break
            } else {
                drops.append(drop(rule, list, templateKeys.joined(separator: ","), nil,
                                  "expanded filter '\(text.prefix(64))…' breaks the filter grammar (too long)", side))
            }
            produced += 1
            // Next combination: odometer over template positions, last fastest.
            var position = tokens.count - 1
            while position >= 0 {
                if let choice = choices[position] {
                    indices[position] += 1
                    if indices[position] < choice.count { break }
                    indices[position] = 0
                }
                position -= 1
            }
            if position < 0 { break }
        }
        budget -= produced
    }

    /// The deny applied when a templated deny cannot be expanded exactly:
    /// everything from the first template on becomes `>`. A substituted
    /// value would have filled that token and possibly more, so this is a
    /// superset of every exact expansion.
    var widened: TopicFilter {
        var prefix: [String] = []
        for token in tokens {
            guard case .literal(let text) = token else { break }
            prefix.append(text)
        }
        prefix.append(">")
        // Safe: literal prefix tokens passed the grammar at load, and ">" is last.
        return (try? TopicFilter(prefix.joined(separator: "."))) ?? Self.everything
    }

    private static let everything: TopicFilter = {
        guard let all = try? TopicFilter(">") else { preconditionFailure("'>' is a valid filter") }
        return all
    }()

    var templateKeys: [String] {
        tokens.compactMap { if case .template(let key) = $0 { key.description } else { nil } }
    }

    private func drop(_ rule: String, _ list: String, _ template: String, _ value: String?,
                      _ reason: String, _ side: FilterSide) -> DroppedTemplate {
        DroppedTemplate(rule: rule, list: list, filter: source, template: template, value: value,
                        reason: reason, widenedTo: side == .deny ? widened.value : nil)
    }
}
