// Shared by the relay-fuzz-policy-template target and the corpus replay test
// (Tests/RelayPolicyTests/TemplateCorpus/ links to this file): one input format.
import RelayCore
import RelayPolicy

/// Decodes one fuzz input (the `key=value` lines described in
/// FuzzPolicyTemplate.swift) into an identity and a policy as written.
/// Lines that mean nothing are skipped: the fuzzer should spend its time on
/// values, not on a format error.
struct FuzzInput {
    var identity: Identity
    var rules: [RuleDefinition] = []
    var principal: String?

    /// Short names the input may use, with their OIDs (the subset of
    /// OpenSSL's table that certificates in practice carry).
    static let oids: [String: String] = [
        "CN": "2.5.4.3", "OU": "2.5.4.11", "O": "2.5.4.10", "C": "2.5.4.6", "L": "2.5.4.7", "ST": "2.5.4.8",
        "serialNumber": "2.5.4.5", "DC": "0.9.2342.19200300.100.1.25", "UID": "0.9.2342.19200300.100.1.1",
        "emailAddress": "1.2.840.113549.1.9.1",
    ]

    init(text: String) {
        var subject: [[DistinguishedName.Attribute]] = []
        var issuer: [[DistinguishedName.Attribute]] = []
        var sans = SubjectAlternativeNames()
        var rules: [RuleDefinition] = []
        var principal: String?
        for line in text.split(separator: "\n", omittingEmptySubsequences: true) {
            guard let equals = line.firstIndex(of: "=") else { continue }
            let key = String(line[..<equals])
            let value = String(line[line.index(after: equals)...])
            if key.hasPrefix("subject."), let attribute = Self.attribute(key.dropFirst(8), value) {
                subject.append([attribute])
            } else if key.hasPrefix("issuer."), let attribute = Self.attribute(key.dropFirst(7), value) {
                issuer.append([attribute])
            } else if key.hasPrefix("match.") {
                if rules.isEmpty { rules.append(RuleDefinition(name: "r0")) }
                rules[rules.count - 1].match[String(key.dropFirst(6)), default: []].append(value)
            } else {
                switch key {
                case "san.dns": sans.dns.append(value)
                case "san.uri", "spiffe": sans.uri.append(value)
                case "san.email": sans.email.append(value)
                case "san.ip": sans.ip.append(value)
                case "principal": principal = value
                case "rule": rules.append(RuleDefinition(name: value))
                case "publish", "subscribe", "deny_publish", "deny_subscribe":
                    if rules.isEmpty { rules.append(RuleDefinition(name: "r0")) }
                    switch key {
                    case "publish": rules[rules.count - 1].publish.append(value)
                    case "subscribe": rules[rules.count - 1].subscribe.append(value)
                    case "deny_publish": rules[rules.count - 1].denyPublish.append(value)
                    default: rules[rules.count - 1].denySubscribe.append(value)
                    }
                default: continue
                }
            }
        }
        // As IdentityExtractor does: exactly one spiffe:// URI SAN (scheme in any case) makes a SPIFFE ID.
        let spiffeURIs = sans.uri.filter(SPIFFEID.hasScheme)
        identity = Identity(
            subject: DistinguishedName(rdns: subject), issuer: DistinguishedName(rdns: issuer),
            serialNumber: "1", notBefore: .distantPast, notAfter: .distantFuture,
            fingerprintSHA256: CertificateFingerprint(w0: 0xabab_abab_abab_abab, w1: 0xabab_abab_abab_abab, w2: 0xabab_abab_abab_abab, w3: 0xabab_abab_abab_abab), sans: sans,
            spiffe: spiffeURIs.count == 1 ? SPIFFEID(uri: spiffeURIs[0]) : nil)
        self.rules = rules
        self.principal = principal
    }

    private static func attribute(_ name: Substring, _ value: String) -> DistinguishedName.Attribute? {
        if let oid = oids[String(name)] { return .init(oid: oid, shortName: String(name), value: value) }
        let arcs = name.split(separator: ".", omittingEmptySubsequences: false)
        guard arcs.count >= 2, arcs.allSatisfy({ !$0.isEmpty && $0.allSatisfy { $0.isASCII && $0.isNumber } }) else {
            return nil
        }
        return .init(oid: String(name), shortName: nil, value: value)
    }
}

/// A policy that templates every attribute a filter may use, in every list
/// and in several positions, and matches every identity: whatever values the
/// fuzzer writes, they go through expansion.
let fixedPolicy: Policy = {
    let templates = ["t.{subject.CN}.>", "t.{subject.OU}.{subject.CN}", "{san.dns}", "u.{san.email}.*",
                     "w.{spiffe.path[0]}.{spiffe.path[1]}.>", "i.{issuer.O}.{issuer.CN}", "d.{subject.DC}.{subject.DC}",
                     "o.{subject.2.5.4.3}.x",
                     "s.{subject.serialNumber}", "*.{subject.UID}"]
    let definitions = [
        RuleDefinition(name: "fixed-all", publish: templates, subscribe: templates,
                       denyPublish: ["t.{subject.CN}.secret", "x.{san.dns}.>", "{subject.OU}.{spiffe.path[0]}"],
                       denySubscribe: ["t.{subject.OU}.*", "{san.email}"]),
        RuleDefinition(name: "fixed-present", match: ["subject.CN": ["*"], "san.dns": ["*.example", "*"]],
                       publish: ["p.{subject.CN}.{san.dns}"], denyPublish: ["p.{subject.CN}.{subject.CN}"]),
    ]
    do {
        return try Policy(definitions: definitions, principal: "{subject.CN}@{subject.O}")
    } catch {
        preconditionFailure("the fixed fuzz policy does not compile: \(error)")
    }
}()
