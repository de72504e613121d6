/// An X.509 distinguished name: relative distinguished names (RDNs) in the
/// order they are encoded, each holding one or more attributes.
///
/// Its RFC 4514 text (``rfc4514``) is rendered once, when the name is made
/// or its ``rdns`` change, and kept: an accepted connection shows its
/// subject about nine times (connection log, policy keys, principal,
/// durable owner, audit lines, WELCOME, expiry), and rendering it each time
/// was ~1 % of relayd's instructions per handshake (wave 15). Equality and
/// hashing are those of ``rdns`` alone, as before.
public struct DistinguishedName: Hashable, Sendable {
    public struct Attribute: Hashable, Sendable {
        /// The dotted OID, always present (`2.5.4.3` for CN).
        public var oid: String
        /// The OpenSSL short name (`CN`, `OU`, `DC`, `emailAddress`, …), nil for unknown OIDs.
        public var shortName: String?
        /// The value exactly as encoded, decoded to a String (UTF-8).
        public var value: String

        public init(oid: String, shortName: String?, value: String) {
            self.oid = oid
            self.shortName = shortName
            self.value = value
        }

        /// The name used in RFC 4514 output and policy keys: the short name, else the OID.
        public var key: String { shortName ?? oid }
    }

    /// RDNs in encoding order (for a typical subject: C, O, OU, CN).
    public var rdns: [[Attribute]] {
        didSet { rfc4514 = Self.render(rdns) }
    }

    /// RFC 4514 string form: RDNs in reverse encoding order, joined by `,`,
    /// multi-valued RDNs joined by `+`, values escaped (``escape(_:)``).
    /// Rendered from ``rdns`` whenever they are set.
    public private(set) var rfc4514: String

    public init(rdns: [[Attribute]]) {
        self.rdns = rdns
        self.rfc4514 = Self.render(rdns)
    }

    public static func == (lhs: DistinguishedName, rhs: DistinguishedName) -> Bool { lhs.rdns == rhs.rdns }

    public func hash(into hasher: inout Hasher) { hasher.combine(rdns) }

    /// Every value of an attribute, in encoding order. `name` is a short name
    /// (case-sensitive, as OpenSSL spells it) or a dotted OID.
    public func values(of name: String) -> [String] {
        var out: [String] = []
        for rdn in rdns {
            for attribute in rdn where attribute.shortName == name || attribute.oid == name {
                out.append(attribute.value)
            }
        }
        return out
    }

    /// The text ``rfc4514`` holds: the same as
    /// `rdns.reversed().map { $0.map { "\($0.key)=\(escape($0.value))" }.joined(separator: "+") }.joined(separator: ",")`,
    /// appended into one string.
    static func render(_ rdns: [[Attribute]]) -> String {
        var out = ""
        var first = true
        for rdn in rdns.reversed() {
            if !first { out.append(",") }
            first = false
            for (index, attribute) in rdn.enumerated() {
                if index > 0 { out.append("+") }
                out.append(attribute.key)
                out.append("=")
                out.append(escape(attribute.value))
            }
        }
        return out
    }

    /// Escapes a value per RFC 4514 §2.4: `"+,;<>\` always; `#` and space at
    /// the start; space at the end; every scalar ``DisplayText/isUnsafe(_:)``
    /// names (C0 and C1 controls, bidi and other format characters) as the
    /// `\XX` hex pairs of its UTF-8 bytes, so the string form of a name can
    /// be logged, audited or used as a principal without carrying them raw.
    public static func escape(_ value: String) -> String {
        // A value of printable ASCII without the special characters, not
        // starting with `#` or a space and not ending with a space (a CN like
        // `billing-worker-1`, most O/OU/C values) needs no escape: returned
        // as it is. rfc4514 runs on every accepted connection (policy keys,
        // principal, audit, WELCOME), so this is on the handshake path.
        if let first = value.utf8.first, let last = value.utf8.last,
           first != UInt8(ascii: "#"), first != UInt8(ascii: " "), last != UInt8(ascii: " "),
           value.utf8.allSatisfy(isPlainValueByte) {
            return value
        }
        var out = ""
        out.reserveCapacity(value.utf8.count)
        let scalars = Array(value.unicodeScalars)
        for (i, scalar) in scalars.enumerated() {
            switch scalar {
            case "\"", "+", ",", ";", "<", ">", "\\":
                out.append("\\")
                out.unicodeScalars.append(scalar)
            case "#" where i == 0:
                out.append("\\#")
            case " " where i == 0 || i == scalars.count - 1:
                out.append("\\ ")
            default:
                if DisplayText.isUnsafe(scalar) {
                    // Each UTF-8 byte as a hex pair (RFC 4514 allows escaping
                    // any character so): U+202E is `\E2\80\AE`, LF `\0A`.
                    for byte in String(scalar).utf8 {
                        let hex = String(byte, radix: 16, uppercase: true)
                        out.append("\\" + (hex.count == 1 ? "0" + hex : hex))
                    }
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out
    }

    /// A UTF-8 byte ``escape(_:)`` leaves alone anywhere in a value:
    /// printable ASCII (U+0020...U+007E) other than `"+,;<>\`.
    @inline(__always)
    static func isPlainValueByte(_ byte: UInt8) -> Bool {
        guard byte >= 0x20 && byte <= 0x7E else { return false }
        switch byte {
        case UInt8(ascii: "\""), UInt8(ascii: "+"), UInt8(ascii: ","), UInt8(ascii: ";"),
             UInt8(ascii: "<"), UInt8(ascii: ">"), UInt8(ascii: "\\"):
            return false
        default:
            return true
        }
    }
}
