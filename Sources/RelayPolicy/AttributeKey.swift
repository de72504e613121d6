import RelayCore

/// An identity attribute named in policy: in a `match` condition, in a
/// `{template}` inside a topic filter, or in the principal template.
///
/// Keys are parsed once at config load, so evaluation never re-parses
/// strings and a typo is a load error instead of a rule that silently
/// never matches.
enum AttributeKey: Hashable, Sendable, CustomStringConvertible {
    case subject(String)            // subject.<ATTR>
    case issuer(String)             // issuer.<ATTR>
    case sanDNS, sanURI, sanEmail, sanIP
    case spiffe                     // the whole spiffe:// ID
    case spiffeTrustDomain
    case spiffePath                 // the whole path, with its leading "/"
    case spiffePathSegment(Int)     // spiffe.path[N], 0-based
    case subjectDN, issuerDN        // the RFC 4514 strings (principal only)
    case serial, fingerprint        // principal only

    /// Where a key is used decides which keys make sense there.
    enum Usage {
        case condition, filterTemplate, principal
    }

    /// OpenSSL short names accepted after `subject.` / `issuer.`, spelled
    /// exactly as OpenSSL does (lookup is case-sensitive, so `cn` would
    /// never match: it is refused with a hint instead). Any dotted OID is
    /// accepted too.
    static let knownShortNames: Set<String> = [
        "C", "ST", "L", "O", "OU", "CN", "SN", "GN", "serialNumber", "title", "initials",
        "pseudonym", "generationQualifier", "dnQualifier", "DC", "UID", "emailAddress", "street",
        "postalCode", "name", "businessCategory", "jurisdictionC", "jurisdictionST",
        "jurisdictionL", "organizationIdentifier", "description", "postOfficeBox",
    ]

    var description: String {
        switch self {
        case .subject(let a): return "subject.\(a)"
        case .issuer(let a): return "issuer.\(a)"
        case .sanDNS: return "san.dns"
        case .sanURI: return "san.uri"
        case .sanEmail: return "san.email"
        case .sanIP: return "san.ip"
        case .spiffe: return "spiffe"
        case .spiffeTrustDomain: return "spiffe.trust_domain"
        case .spiffePath: return "spiffe.path"
        case .spiffePathSegment(let n): return "spiffe.path[\(n)]"
        case .subjectDN: return "subject"
        case .issuerDN: return "issuer"
        case .serial: return "serial"
        case .fingerprint: return "fingerprint"
        }
    }

    /// True for a key read from one attribute, SAN or SPIFFE part, whose
    /// value is as the certificate wrote it (possibly empty); false for the
    /// whole names and numbers the broker renders (`subject`, `issuer`,
    /// `serial`, `fingerprint`).
    var isAttributeValue: Bool {
        switch self {
        case .subjectDN, .issuerDN, .serial, .fingerprint: return false
        default: return true
        }
    }

    /// Every value the identity has for this key, in certificate order.
    func values(in identity: Identity) -> [String] {
        switch self {
        case .subject(let a): return identity.subject.values(of: a)
        case .issuer(let a): return identity.issuer.values(of: a)
        case .sanDNS: return identity.sans.dns
        case .sanURI: return identity.sans.uri
        case .sanEmail: return identity.sans.email
        case .sanIP: return identity.sans.ip
        case .spiffe: return identity.spiffe.map { [$0.uri] } ?? []
        case .spiffeTrustDomain: return identity.spiffe.map { [$0.trustDomain] } ?? []
        case .spiffePath: return identity.spiffe.map { [$0.path] } ?? []
        case .spiffePathSegment(let n):
            guard let segments = identity.spiffe?.segments, n < segments.count else { return [] }
            return [segments[n]]
        case .subjectDN: return [identity.subject.rfc4514]
        case .issuerDN: return [identity.issuer.rfc4514]
        case .serial: return [identity.serialNumber]
        case .fingerprint: return [identity.fingerprintSHA256.hex]
        }
    }

    /// True when some value satisfies `predicate`. Same answer as
    /// `values(in:).contains(where:)`, but for DN attributes it scans the
    /// RDNs in place: match conditions run for every rule at every connect,
    /// and the array `DistinguishedName.values(of:)` builds dominated that.
    func anyValue(in identity: Identity, _ predicate: (String) -> Bool) -> Bool {
        switch self {
        case .subject(let name): return Self.scan(identity.subject, name, predicate)
        case .issuer(let name): return Self.scan(identity.issuer, name, predicate)
        default: return values(in: identity).contains(where: predicate)
        }
    }

    /// The lookup rule of `DistinguishedName.values(of:)`: short name or OID.
    private static func scan(_ dn: DistinguishedName, _ name: String, _ predicate: (String) -> Bool) -> Bool {
        for rdn in dn.rdns {
            for attribute in rdn where attribute.shortName == name || attribute.oid == name {
                if predicate(attribute.value) { return true }
            }
        }
        return false
    }

    /// Parses `text` for `usage`; the error is a sentence for the operator.
    static func parse(_ text: String, for usage: Usage) throws(KeyError) -> AttributeKey {
        let key = try parseAny(text)
        switch (usage, key) {
        case (.principal, _):
            return key
        case (.condition, .subjectDN), (.condition, .issuerDN), (.condition, .serial), (.condition, .fingerprint):
            throw KeyError("'\(text)' cannot be a match condition; use subject.<ATTR>, issuer.<ATTR>, san.dns, san.uri, san.email, san.ip, spiffe, spiffe.trust_domain or spiffe.path")
        case (.condition, _):
            return key
        case (.filterTemplate, .subject), (.filterTemplate, .issuer), (.filterTemplate, .sanDNS),
             (.filterTemplate, .sanURI), (.filterTemplate, .sanEmail), (.filterTemplate, .spiffeTrustDomain),
             (.filterTemplate, .spiffePathSegment):
            return key
        case (.filterTemplate, .spiffe), (.filterTemplate, .spiffePath):
            throw KeyError("'{\(text)}' always contains '/' or ':' and can never be one topic token; use {spiffe.path[N]} for one path segment")
        case (.filterTemplate, _):
            throw KeyError("'{\(text)}' cannot be used in a topic filter; use subject.<ATTR>, issuer.<ATTR>, san.dns, san.uri, san.email, spiffe.trust_domain or spiffe.path[N]")
        }
    }

    private static func parseAny(_ text: String) throws(KeyError) -> AttributeKey {
        for (prefix, isSubject) in [("subject.", true), ("issuer.", false)] where text.hasPrefix(prefix) {
            let attribute = String(text.dropFirst(prefix.count))
            try validateAttributeName(attribute, in: text)
            return isSubject ? .subject(attribute) : .issuer(attribute)
        }
        switch text {
        case "san.dns": return .sanDNS
        case "san.uri": return .sanURI
        case "san.email": return .sanEmail
        case "san.ip": return .sanIP
        case "spiffe": return .spiffe
        case "spiffe.trust_domain": return .spiffeTrustDomain
        case "spiffe.path": return .spiffePath
        case "subject": return .subjectDN
        case "issuer": return .issuerDN
        case "serial": return .serial
        case "fingerprint": return .fingerprint
        default: break
        }
        if text.hasPrefix("spiffe.path[") && text.hasSuffix("]") {
            let digits = text.dropFirst("spiffe.path[".count).dropLast()
            // Bounded so a typo cannot ask for an absurd index; SPIFFE paths are short.
            guard !digits.isEmpty, digits.count <= 3, digits.allSatisfy({ $0.isASCII && $0.isNumber }),
                  let n = Int(digits) else {
                throw KeyError("'\(text)': the segment index must be a number from 0 to 999 (0 is the first path segment)")
            }
            return .spiffePathSegment(n)
        }
        throw KeyError("unknown attribute '\(text)'; known: subject.<ATTR>, issuer.<ATTR>, san.dns, san.uri, san.email, san.ip, spiffe, spiffe.trust_domain, spiffe.path, spiffe.path[N]")
    }

    private static func validateAttributeName(_ attribute: String, in text: String) throws(KeyError) {
        if knownShortNames.contains(attribute) { return }
        let isOID = attribute.split(separator: ".", omittingEmptySubsequences: false).count >= 2
            && attribute.split(separator: ".", omittingEmptySubsequences: false).allSatisfy {
                !$0.isEmpty && $0.allSatisfy { $0.isASCII && $0.isNumber }
            }
        if isOID { return }
        if let hint = knownShortNames.first(where: { $0.lowercased() == attribute.lowercased() }) {
            throw KeyError("unknown attribute '\(text)': attribute names are case-sensitive; did you mean '\(hint)'?")
        }
        throw KeyError("unknown attribute '\(text)': use an OpenSSL short name (CN, OU, O, DC, emailAddress …) or a dotted OID such as 2.5.4.3")
    }

    struct KeyError: Error {
        var message: String
        init(_ message: String) { self.message = message }
    }
}
