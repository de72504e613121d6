import Foundation

/// A verified client (or server) identity, as extracted from a certificate
/// that OpenSSL has already verified (RelayTLS builds it; nothing else may).
///
/// Values are kept exactly as encoded in the certificate. Policy reads them
/// through ``Identity/values(of:)`` using attribute keys such as
/// `subject.CN`, `issuer.O`, `san.dns` or `spiffe.path`.
public struct Identity: Hashable, Sendable {
    public var subject: DistinguishedName
    public var issuer: DistinguishedName
    /// The serial number as upper-case hex without leading zeros ("0" for zero).
    public var serialNumber: String
    public var notBefore: Date
    public var notAfter: Date
    /// SHA-256 of the DER certificate (``CertificateFingerprint/hex`` for text).
    public var fingerprintSHA256: CertificateFingerprint
    public var sans: SubjectAlternativeNames
    /// Present when a URI SAN is a well-formed `spiffe://` ID.
    public var spiffe: SPIFFEID?

    public init(subject: DistinguishedName, issuer: DistinguishedName, serialNumber: String,
                notBefore: Date, notAfter: Date, fingerprintSHA256: CertificateFingerprint,
                sans: SubjectAlternativeNames, spiffe: SPIFFEID?) {
        self.subject = subject
        self.issuer = issuer
        self.serialNumber = serialNumber
        self.notBefore = notBefore
        self.notAfter = notAfter
        self.fingerprintSHA256 = fingerprintSHA256
        self.sans = sans
        self.spiffe = spiffe
    }

    /// All values of one attribute key; empty when the identity has none.
    ///
    /// Keys: `subject.<ATTR>` and `issuer.<ATTR>` (short name such as `CN`,
    /// `OU`, `DC`, `emailAddress`, or a dotted OID), `san.dns`, `san.ip`,
    /// `san.uri`, `san.email`, `spiffe` (the whole ID), `spiffe.trust_domain`,
    /// `spiffe.path`, `serial`, `fingerprint`.
    public func values(of key: String) -> [String] {
        if key.hasPrefix("subject.") { return subject.values(of: String(key.dropFirst("subject.".count))) }
        if key.hasPrefix("issuer.") { return issuer.values(of: String(key.dropFirst("issuer.".count))) }
        switch key {
        case "subject": return [subject.rfc4514]
        case "issuer": return [issuer.rfc4514]
        case "san.dns": return sans.dns
        case "san.ip": return sans.ip
        case "san.uri": return sans.uri
        case "san.email": return sans.email
        case "spiffe": return spiffe.map { [$0.uri] } ?? []
        case "spiffe.trust_domain": return spiffe.map { [$0.trustDomain] } ?? []
        case "spiffe.path": return spiffe.map { [$0.path] } ?? []
        case "serial": return [serialNumber]
        case "fingerprint": return [fingerprintSHA256.hex]
        default: return []
        }
    }
}

/// Subject alternative names by type, in certificate order.
public struct SubjectAlternativeNames: Hashable, Sendable {
    public var dns: [String]
    /// IP addresses in their usual text form (dotted quad, or RFC 5952 IPv6).
    public var ip: [String]
    public var uri: [String]
    public var email: [String]

    public init(dns: [String] = [], ip: [String] = [], uri: [String] = [], email: [String] = []) {
        self.dns = dns
        self.ip = ip
        self.uri = uri
        self.email = email
    }
}

/// A SPIFFE ID: `spiffe://<trust domain><path>`.
public struct SPIFFEID: Hashable, Sendable {
    public var trustDomain: String
    /// The path including its leading `/`, or "" for the trust domain itself.
    public var path: String

    public var uri: String { "spiffe://\(trustDomain)\(path)" }

    /// Whether `uri` begins `spiffe://` with the scheme in any letter case
    /// (ASCII letters only; the `://` exactly). RFC 3986 schemes are
    /// case-insensitive, so `SPIFFE://…` names a SPIFFE ID to any consumer
    /// that normalises URIs: RelayTLS counts such URI SANs to decide whether
    /// a certificate has exactly one SPIFFE ID, and policy counts the same
    /// ones to decide whether a `{spiffe…}` template is ambiguous. (The bits
    /// of `|= 0x20` alone would also turn control bytes into `:` and `/`.)
    public static func hasScheme(_ uri: String) -> Bool {
        let head = Array(uri.utf8.prefix(9))
        guard head.count == 9 else { return false }
        return zip(head, "spiffe://".utf8).allSatisfy { byte, expected in
            byte == expected || (expected >= UInt8(ascii: "a") && expected <= UInt8(ascii: "z") && byte == expected - 0x20)
        }
    }
    /// The path's segments, without empty ones: `/ns/prod/sa/api` → ["ns","prod","sa","api"].
    public var segments: [String] { path.split(separator: "/").map(String.init) }

    /// Parses a URI SAN; nil unless it is a valid SPIFFE ID (lower-case
    /// trust domain of `[a-z0-9.-_]`, path segments of `[A-Za-z0-9.-_]`, no
    /// query, fragment, port or user info, no empty, `.` or `..` segment).
    public init?(uri: String) {
        let scheme = "spiffe://"
        guard uri.hasPrefix(scheme) else { return nil }
        let rest = uri.dropFirst(scheme.count)
        let domainEnd = rest.firstIndex(of: "/") ?? rest.endIndex
        let domain = rest[rest.startIndex..<domainEnd]
        let path = rest[domainEnd...]
        let domainOK = !domain.isEmpty && domain.utf8.count <= 255 && domain.utf8.allSatisfy { b in
            (b >= 0x61 && b <= 0x7A) || (b >= 0x30 && b <= 0x39) || b == 0x2E || b == 0x2D || b == 0x5F
        }
        guard domainOK else { return nil }
        if !path.isEmpty {
            let segments = path.dropFirst().split(separator: "/", omittingEmptySubsequences: false)
            for segment in segments {
                if segment.isEmpty || segment == "." || segment == ".." { return nil }
                let ok = segment.utf8.allSatisfy { b in
                    (b >= 0x61 && b <= 0x7A) || (b >= 0x41 && b <= 0x5A) || (b >= 0x30 && b <= 0x39)
                        || b == 0x2E || b == 0x2D || b == 0x5F
                }
                if !ok { return nil }
            }
        }
        self.trustDomain = String(domain)
        self.path = String(path)
    }
}
