import RelayCore

/// Builds the principal string that subscribers and the audit trail see
/// for a publisher, e.g. `{spiffe}`, `{subject.CN}`, `{subject.CN}@{subject.O}`.
///
/// Each `{key}` takes the attribute's first value. An identity with no
/// value for a key is refused by policy (``unrenderableReason(_:)``). If a
/// value contains a control character, the whole principal
/// falls back to the RFC 4514 subject (which escapes such characters), so a
/// principal is never half-built nor able to forge log lines.
public struct PrincipalTemplate: Sendable, Hashable, CustomStringConvertible {
    enum Part: Sendable, Hashable {
        case literal(String)
        case attribute(AttributeKey)
    }

    public let source: String
    let parts: [Part]

    /// The default: the RFC 4514 subject, e.g. `CN=api,O=Example`.
    public static let subject = PrincipalTemplate(source: "{subject}", parts: [.attribute(.subjectDN)])

    private init(source: String, parts: [Part]) {
        self.source = source
        self.parts = parts
    }

    /// Parses `{key}` placeholders; `{` and `}` are not allowed otherwise.
    public init(_ source: String) throws(PolicyConfigurationError) {
        func fail(_ message: String) -> PolicyConfigurationError {
            PolicyConfigurationError(rule: nil, key: "principal", message: message)
        }
        var parts: [Part] = []
        var rest = Substring(source)
        while !rest.isEmpty {
            guard let open = rest.firstIndex(where: { $0 == "{" || $0 == "}" }) else {
                parts.append(.literal(String(rest)))
                break
            }
            if rest[open] == "}" { throw fail("'}' without a matching '{' in '\(source)'") }
            if open > rest.startIndex { parts.append(.literal(String(rest[..<open]))) }
            let afterOpen = rest.index(after: open)
            guard let close = rest[afterOpen...].firstIndex(of: "}") else {
                throw fail("'{' without a matching '}' in '\(source)'")
            }
            let key = String(rest[afterOpen..<close])
            if key.contains("{") { throw fail("nested '{' in '\(source)'") }
            do {
                parts.append(.attribute(try AttributeKey.parse(key, for: .principal)))
            } catch {
                throw fail(error.message)
            }
            rest = rest[rest.index(after: close)...]
        }
        guard !parts.isEmpty else { throw fail("the principal template is empty; omit it to use the RFC 4514 subject") }
        self.source = source
        self.parts = parts
    }

    public var description: String { source }

    /// The principal for `identity`.
    public func render(_ identity: Identity) -> String {
        var out = ""
        for part in parts {
            switch part {
            case .literal(let text):
                out += text
            case .attribute(let key):
                guard let value = key.values(in: identity).first,
                      !value.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) else {
                    return Self.fallback(identity)
                }
                out += value
            }
        }
        return out.isEmpty ? Self.fallback(identity) : out
    }

    /// Why `identity` is refused under this template, or nil: a key the
    /// certificate has no value for. Falling back to the subject there would
    /// give every such certificate the same principal whenever their
    /// subjects are alike (SPIRE SVIDs: `C=US,O=SPIRE`, no CN), so the
    /// identity is refused instead (docs/security.md, "Principal"). The
    /// `{subject}` / `{issuer}` keys always have a value.
    ///
    /// An empty attribute value (a zero-length CN: X.509 does not allow one,
    /// OpenSSL reads it) counts as none: `{subject.CN}` would render as the
    /// empty string, and ``render(_:)`` then falls back to the subject, which
    /// every such certificate with the same other names shares. (`{subject}`
    /// of an empty subject keeps its documented fallback: the SPIFFE ID, else
    /// the fingerprint, both unique to the certificate.)
    public func unrenderableReason(_ identity: Identity) -> String? {
        for case .attribute(let key) in parts {
            let values = key.values(in: identity)
            let problem: String
            if values.isEmpty {
                problem = "needs \(key), which this certificate does not have"
            } else if key.isAttributeValue, values.contains(where: \.isEmpty) {
                problem = "needs \(key), and this certificate's \(key) is empty"
            } else {
                continue
            }
            return "the principal template '\(source)' \(problem); "
                + "it is refused rather than given a fallback principal another certificate could share "
                + "(use a template every client certificate fills, e.g. '{spiffe}' for SPIFFE SVIDs)"
        }
        return nil
    }

    /// The RFC 4514 subject; when the subject is empty (common for SPIFFE
    /// SVIDs), the SPIFFE ID, else `sha256:<fingerprint>`, so a principal is
    /// never the empty string.
    static func fallback(_ identity: Identity) -> String {
        let subject = identity.subject.rfc4514
        if !subject.isEmpty { return subject }
        if let spiffe = identity.spiffe { return spiffe.uri }
        return "sha256:" + identity.fingerprintSHA256.hex
    }
}
