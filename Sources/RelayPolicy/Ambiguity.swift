import RelayCore

/// A rule's `multi_value`: what to do when the identity has several
/// distinct values of an attribute one of the rule's filter templates uses
/// (two CNs, two OUs, two SPIFFE IDs, several DNS names …).
///
/// Which value names the client is then ambiguous. Granting every value
/// (the old behaviour) let a certificate with `CN=mallory` and `CN=bob`
/// into both namespaces, so refusing is the default and expanding every
/// value is an explicit opt-in per rule.
public enum MultiValue: String, Sendable, Hashable, CaseIterable {
    /// Refuse the identity at connect, naming the attribute (the default).
    case refuse
    /// Grant one filter per value (and, for a deny, deny every value), up
    /// to ``Policy/expansionCapPerRule``: for attributes that are lists by
    /// design, such as the DNS names of a multi-homed service.
    case all
}

extension AttributeKey {
    /// The identity's distinct values for this key when there are more than
    /// one (the key is then ambiguous for it), else nil.
    ///
    /// The SPIFFE keys count the URI SANs that are SPIFFE IDs: RelayTLS sets
    /// `Identity.spiffe` only when exactly one is, so a certificate carrying
    /// two would otherwise look like one carrying none. They are counted as
    /// RelayTLS counts them (``SPIFFEID/hasScheme(_:)``, the scheme in any
    /// letter case): with `spiffe://` alone, `SPIFFE://…` next to a SPIFFE
    /// ID dropped the template instead of refusing the identity.
    func ambiguousValues(in identity: Identity) -> [String]? {
        let all: [String]
        switch self {
        case .spiffe, .spiffeTrustDomain, .spiffePath, .spiffePathSegment:
            all = identity.sans.uri.filter(SPIFFEID.hasScheme)
        default:
            all = values(in: identity)
        }
        guard all.count > 1 else { return nil }
        var distinct: [String] = []
        for value in all where !distinct.contains(value) { distinct.append(value) }
        return distinct.count > 1 ? distinct : nil
    }
}

extension Rule {
    /// Why `identity` is ambiguous for this rule's filter templates, or nil
    /// (always nil with `multi_value = "all"`). The reason names the
    /// attribute, the rule, the filter and the opt-in.
    func ambiguity(for identity: Identity) -> String? {
        guard multiValue == .refuse else { return nil }
        for (list, templates) in [("publish", publish), ("subscribe", subscribe),
                                  ("deny_publish", denyPublish), ("deny_subscribe", denySubscribe)] {
            for template in templates where template.isTemplated {
                for token in template.tokens {
                    guard case .template(let key) = token, let values = key.ambiguousValues(in: identity) else { continue }
                    return "the certificate has \(values.count) values of \(key) (\(ambiguityList(values))), used by rule '\(name)' in \(list) '\(template.source)'; which one names the client is ambiguous, so the identity is refused (set multi_value = \"all\" on the rule to grant one filter per value)"
                }
            }
        }
        return nil
    }
}

extension PrincipalTemplate {
    /// Why `identity` cannot be given a principal by this template, or nil:
    /// an attribute with several distinct values (which one would name it?),
    /// or a value holding a control or Unicode format character (a bidi
    /// override makes a principal display as another). Such an identity is
    /// refused rather than given a principal that another certificate could
    /// share or that reads as something it is not. There is no opt-in: a
    /// principal names one identity.
    func problem(for identity: Identity) -> String? {
        for part in parts {
            guard case .attribute(let key) = part else { continue }
            switch key {
            case .subjectDN, .issuerDN, .serial, .fingerprint:
                continue  // one value each, escaped RFC 4514 or hex by construction: nothing to check per connection
            default:
                break
            }
            if let values = key.ambiguousValues(in: identity) {
                return "the principal template '\(source)' needs one value of \(key), and the certificate has \(values.count) (\(ambiguityList(values))); refused rather than picking one (use a single-valued attribute such as {subject}, {spiffe} or {fingerprint})"
            }
            for value in key.values(in: identity) {
                if let scalar = DisplayText.firstUnsafe(value) {
                    return "the principal template '\(source)': \(key) value \(DisplayText.quoted(value)) contains \(DisplayText.codePoint(scalar)), a control or Unicode format character (such as a bidi override) that never becomes part of a principal"
                }
            }
        }
        return nil
    }
}

/// Up to four values, quoted and escaped, for a refusal reason.
private func ambiguityList(_ values: [String]) -> String {
    let shown = values.prefix(4).map(DisplayText.quoted).joined(separator: ", ")
    return values.count > 4 ? shown + ", …" : shown
}
