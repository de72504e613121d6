import RelayCore

/// Narrows which rules can apply to an identity before their conditions are
/// checked, so a connection does not walk all of a large policy.
///
/// A rule is filed under one of its conditions when every value of that
/// condition is exact (`orders`) or a glob with a literal prefix (`svc-*`):
/// it can then only apply to identities having a value equal to one of the
/// exact values or starting with one of the prefixes. Other rules are always
/// candidates.
///
/// The index only ever removes rules that cannot apply. Lookups use `String`
/// equality, which (canonical equivalence) is looser than the byte-exact
/// comparison `Rule.applies` then makes, so nothing that would match is
/// skipped. Explain does not use the index (it reports every rule), and the
/// tests compare both paths on fixed tables and on generated policies.
struct RuleIndex: Sendable {
    private struct Bucket: Sendable {
        var exact: [String: [Int]] = [:]
        var prefixes: [String: [Int]] = [:]
        /// The distinct prefix lengths in UTF-8 bytes, so a lookup tries only those.
        var prefixLengths: [Int] = []
    }

    private let buckets: [AttributeKey: Bucket]
    /// Rules with no indexable condition, in policy order.
    private let unindexed: [Int]

    init(_ rules: [Rule]) {
        var buckets: [AttributeKey: Bucket] = [:]
        var unindexed: [Int] = []
        for (position, rule) in rules.enumerated() {
            guard let condition = Self.indexCondition(of: rule) else {
                unindexed.append(position)
                continue
            }
            var bucket = buckets[condition.attribute] ?? Bucket()
            for pattern in condition.patterns {
                let prefix = pattern.literalPrefix
                if !pattern.isGlob {
                    bucket.exact[prefix, default: []].append(position)
                } else {
                    bucket.prefixes[prefix, default: []].append(position)
                    if !bucket.prefixLengths.contains(prefix.utf8.count) { bucket.prefixLengths.append(prefix.utf8.count) }
                }
            }
            buckets[condition.attribute] = bucket
        }
        self.buckets = buckets
        self.unindexed = unindexed
    }

    /// The most selective indexable condition: exact before prefix, and
    /// subject / SAN / SPIFFE before issuer (many rules share one issuer).
    private static func indexCondition(of rule: Rule) -> Condition? {
        func rank(_ condition: Condition) -> Int? {
            guard condition.patterns.allSatisfy({ !$0.isGlob || !$0.literalPrefix.isEmpty }) else { return nil }
            let prefixOnly = condition.patterns.contains { $0.isGlob } ? 1 : 0
            let issuer: Int = if case .issuer = condition.attribute { 2 } else { 0 }
            return issuer + prefixOnly
        }
        var best: (Condition, Int)?
        for condition in rule.conditions {
            guard let r = rank(condition) else { continue }
            if best == nil || r < (best?.1 ?? Int.max) { best = (condition, r) }
        }
        return best?.0
    }

    /// Positions of the rules that may apply to `identity`, ascending
    /// (policy order matters: the first rule to grant a filter is cited).
    func candidates(for identity: Identity) -> [Int] {
        var out = unindexed
        for (attribute, bucket) in buckets {
            for value in attribute.values(in: identity) {
                if let positions = bucket.exact[value] { out.append(contentsOf: positions) }
                let utf8 = value.utf8
                for length in bucket.prefixLengths where length <= utf8.count {
                    let prefix = String(decoding: utf8.prefix(length), as: UTF8.self)
                    if let positions = bucket.prefixes[prefix] { out.append(contentsOf: positions) }
                }
            }
        }
        out.sort()
        // A rule found through two values or patterns appears more than once.
        var unique: [Int] = []
        unique.reserveCapacity(out.count)
        for position in out where unique.last != position { unique.append(position) }
        return unique
    }
}
