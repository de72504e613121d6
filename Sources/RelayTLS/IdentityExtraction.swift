import Foundation
import RelayCore
internal import COpenSSL

/// Why bytes could not be turned into an ``Identity``.
public enum IdentityExtractionError: Error, Equatable, Sendable, CustomStringConvertible {
    case notACertificate(source: String)
    case malformedField(String)

    public var description: String {
        switch self {
        case .notACertificate(let source): return "\(source): not an X.509 certificate; expected DER or a PEM CERTIFICATE block"
        case .malformedField(let field): return "certificate field \(field) cannot be decoded"
        }
    }
}

extension Identity {
    /// Extracts an identity from one DER certificate, through the same code
    /// path the TLS handler uses for a verified peer. It does not verify the
    /// certificate: callers that authorise on it must verify it first.
    public init(der: [UInt8]) throws(IdentityExtractionError) {
        guard let certificate = OwnedCertificate.fromDER(der) else {
            OpenSSLErrorQueue.clear()
            throw .notACertificate(source: "DER input")
        }
        self = try IdentityExtractor.identity(of: certificate)
    }

    /// Extracts an identity from the first certificate of a PEM text.
    public init(pem: String) throws(IdentityExtractionError) {
        let certificates: [OwnedCertificate]
        do { certificates = try PEMReader.certificates(.pem(pem)) } catch { throw .notACertificate(source: "PEM input") }
        self = try IdentityExtractor.identity(of: certificates[0])
    }
}

/// Reads the identity fields of an X509 with OpenSSL's own parser.
enum IdentityExtractor {
    static func identity(of certificate: OwnedCertificate) throws(IdentityExtractionError) -> Identity {
        let x509 = certificate.ref
        // All getters below return pointers borrowed from `x509`, which
        // `certificate` keeps alive for the whole function.
        guard let subjectName = X509_get_subject_name(x509), let issuerName = X509_get_issuer_name(x509) else {
            throw .malformedField("subject/issuer")
        }
        let subject = try distinguishedName(subjectName)
        let issuer = try distinguishedName(issuerName)
        let serial = try serialHex(X509_get0_serialNumber(x509))
        guard let notBefore = date(X509_get0_notBefore(x509)) else { throw .malformedField("notBefore") }
        guard let notAfter = date(X509_get0_notAfter(x509)) else { throw .malformedField("notAfter") }
        let sans = subjectAlternativeNames(x509)
        // A SPIFFE SVID carries exactly one SPIFFE ID; several are ambiguous.
        // Schemes are case-insensitive (RFC 3986), so `SPIFFE://` counts as
        // one too: a consumer that normalises URIs sees it as a second ID.
        let spiffeURIs = sans.uri.filter(SPIFFEID.hasScheme)
        let spiffe = spiffeURIs.count == 1 ? SPIFFEID(uri: spiffeURIs[0]) : nil
        return Identity(subject: subject, issuer: issuer, serialNumber: serial, notBefore: notBefore, notAfter: notAfter,
                        fingerprintSHA256: try fingerprint(x509), sans: sans, spiffe: spiffe)
    }

    static func distinguishedName(_ name: OpaquePointer) throws(IdentityExtractionError) -> DistinguishedName {
        var rdns: [[DistinguishedName.Attribute]] = []
        var currentSet: Int32 = -1
        let count = X509_NAME_entry_count(name)
        var index: Int32 = 0
        while index < count {
            defer { index += 1 }
            guard let entry = X509_NAME_get_entry(name, index), let object = X509_NAME_ENTRY_get_object(entry),
                  let data = X509_NAME_ENTRY_get_data(entry) else { throw .malformedField("name entry \(index)") }
            let (oid, shortName) = attributeType(object)
            let value = try utf8(data, field: "name entry \(oid)")
            let attribute = DistinguishedName.Attribute(oid: oid, shortName: shortName, value: value)
            // X509_NAME_ENTRY_set is the RDN index: equal indices form one multi-valued RDN.
            let set = X509_NAME_ENTRY_set(entry)
            if set == currentSet, !rdns.isEmpty {
                rdns[rdns.count - 1].append(attribute)
            } else {
                rdns.append([attribute])
                currentSet = set
            }
        }
        return DistinguishedName(rdns: rdns)
    }

    /// The dotted OID and OpenSSL short name (nil for an OID OpenSSL does
    /// not know) of a name entry's attribute type. The common ones come from
    /// ``knownAttributeTypes``; anything else is read as
    /// ``attributeTypeUncached(_:)`` does.
    static func attributeType(_ object: OpaquePointer) -> (oid: String, shortName: String?) {
        let nid = OBJ_obj2nid(object)
        if nid != relay_NID_undef(), let known = knownAttributeTypes[nid] { return (known.oid, known.shortName) }
        return attributeTypeUncached(object)
    }

    /// OBJ_obj2txt (numeric) and OBJ_nid2sn of the object itself: ~4,000
    /// instructions per entry with the buffers and strings around them.
    static func attributeTypeUncached(_ object: OpaquePointer) -> (oid: String, shortName: String?) {
        let oid = objectText(object, numeric: true)
        let nid = OBJ_obj2nid(object)
        let shortName = nid == relay_NID_undef() ? nil : OBJ_nid2sn(nid).map { String(cString: $0) }
        return (oid, shortName)
    }

    /// The attribute types of the names certificates carry, by NID, read once
    /// from OpenSSL's object table with the same calls
    /// ``attributeTypeUncached(_:)`` makes (an entry's NID is found by its
    /// OID, so the NID's object has the same OID text). A subject and issuer
    /// are ~7 entries per handshake on each side (wave 15).
    static let knownAttributeTypes: [Int32: (oid: String, shortName: String)] = {
        var table: [Int32: (oid: String, shortName: String)] = [:]
        let names = ["CN", "C", "O", "OU", "L", "ST", "street", "DC", "UID", "emailAddress", "serialNumber", "title",
                     "GN", "SN", "initials", "generationQualifier", "dnQualifier", "pseudonym", "name", "postalCode",
                     "businessCategory", "organizationIdentifier", "jurisdictionC", "jurisdictionST", "jurisdictionL"]
        for name in names {
            let nid = OBJ_sn2nid(name)
            guard nid != relay_NID_undef(), let object = OBJ_nid2obj(nid) else { continue }
            let (oid, shortName) = attributeTypeUncached(object)
            guard !oid.isEmpty, let shortName else { continue }
            table[nid] = (oid, shortName)
        }
        return table
    }()

    /// For tests: a NID's attribute type through the table and read directly (nil: OpenSSL has no object for it).
    static func attributeTypeBothWays(nid: Int32) -> (table: (oid: String, shortName: String?), direct: (oid: String, shortName: String?))? {
        guard let object = OBJ_nid2obj(nid) else { OpenSSLErrorQueue.clear(); return nil }
        return (attributeType(object), attributeTypeUncached(object))
    }

    static func objectText(_ object: OpaquePointer, numeric: Bool) -> String {
        var buffer = [CChar](repeating: 0, count: 128)
        let length = OBJ_obj2txt(&buffer, Int32(buffer.count), object, numeric ? 1 : 0)
        guard length > 0 else { return "" }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// The value re-encoded as UTF-8 from whatever string type it has
    /// (ASN1_STRING_to_UTF8), otherwise unchanged: no escaping, no folding.
    static func utf8(_ string: UnsafeMutablePointer<ASN1_STRING>, field: String) throws(IdentityExtractionError) -> String {
        var out: UnsafeMutablePointer<UInt8>? = nil
        let length = ASN1_STRING_to_UTF8(&out, string)
        guard length >= 0, let out else { OpenSSLErrorQueue.clear(); throw .malformedField(field) }
        // `out` is ours (allocated by OpenSSL): copy, then free.
        defer { relay_OPENSSL_free(out) }
        return String(decoding: UnsafeBufferPointer(start: out, count: Int(length)), as: UTF8.self)
    }

    /// Raw bytes of an IA5String (DNS, URI, email SANs), as encoded.
    static func rawString(_ string: UnsafePointer<ASN1_STRING>) -> String {
        let length = Int(ASN1_STRING_length(string))
        guard length > 0, let data = ASN1_STRING_get0_data(string) else { return "" }
        return String(decoding: UnsafeBufferPointer(start: data, count: length), as: UTF8.self)
    }

    static func serialHex(_ serial: UnsafePointer<ASN1_INTEGER>?) throws(IdentityExtractionError) -> String {
        guard let serial, let bn = ASN1_INTEGER_to_BN(serial, nil) else { throw .malformedField("serialNumber") }
        defer { BN_free(bn) }
        guard let hex = BN_bn2hex(bn) else { throw .malformedField("serialNumber") }
        defer { relay_OPENSSL_free(hex) }
        return normalizeSerial(String(cString: hex))
    }

    /// Upper-case hex without leading zeros; "0" for zero.
    static func normalizeSerial(_ hex: String) -> String {
        let negative = hex.hasPrefix("-")
        let digits = (negative ? String(hex.dropFirst()) : hex).uppercased()
        let trimmed = String(digits.drop { $0 == "0" })
        let body = trimmed.isEmpty ? "0" : trimmed
        return negative ? "-" + body : body
    }

    static func date(_ time: UnsafePointer<ASN1_TIME>?) -> Date? {
        guard let time else { return nil }
        var parts = tm()
        guard ASN1_TIME_to_tm(time, &parts) == 1 else { return nil }
        return Date(timeIntervalSince1970: TimeInterval(timegm(&parts)))
    }

    static func fingerprint(_ x509: OpaquePointer) throws(IdentityExtractionError) -> CertificateFingerprint {
        var digest = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: UInt32 = 0
        // X509_digest writes at most EVP_MAX_MD_SIZE bytes (32 for SHA-256) into `digest`.
        guard X509_digest(x509, EVP_sha256(), &digest, &length) == 1,
              let fingerprint = CertificateFingerprint(bytes: digest.prefix(Int(length))) else {
            OpenSSLErrorQueue.clear()
            throw .malformedField("SHA-256 fingerprint")
        }
        return fingerprint
    }

    static func subjectAlternativeNames(_ x509: OpaquePointer) -> SubjectAlternativeNames {
        var sans = SubjectAlternativeNames()
        // X509_get_ext_d2i returns a new GENERAL_NAMES the caller frees.
        guard let raw = X509_get_ext_d2i(x509, relay_NID_subject_alt_name(), nil, nil) else { return sans }
        let names = OpaquePointer(raw)
        defer { relay_GENERAL_NAMES_free(names) }
        for index in 0..<relay_sk_GENERAL_NAME_num(names) {
            guard let name = relay_sk_GENERAL_NAME_value(names, index) else { continue }
            let type = name.pointee.type
            if type == relay_GEN_DNS(), let value = name.pointee.d.dNSName {
                sans.dns.append(rawString(value))
            } else if type == relay_GEN_URI(), let value = name.pointee.d.uniformResourceIdentifier {
                sans.uri.append(rawString(value))
            } else if type == relay_GEN_EMAIL(), let value = name.pointee.d.rfc822Name {
                sans.email.append(rawString(value))
            } else if type == relay_GEN_IPADD(), let value = name.pointee.d.iPAddress {
                sans.ip.append(ipText(value))
            }
        }
        return sans
    }

    /// Dotted quad or RFC 5952 IPv6 (inet_ntop), hex for anything else.
    static func ipText(_ string: UnsafePointer<ASN1_STRING>) -> String {
        let length = Int(ASN1_STRING_length(string))
        guard let data = ASN1_STRING_get0_data(string) else { return "" }
        let bytes = Array(UnsafeBufferPointer(start: data, count: max(0, length)))
        var text = [CChar](repeating: 0, count: 64)
        let family: Int32
        switch bytes.count {
        case 4: family = AF_INET
        case 16: family = AF_INET6
        default: return Hex.encode(bytes)
        }
        let ok = bytes.withUnsafeBytes { inet_ntop(family, $0.baseAddress, &text, socklen_t(text.count)) != nil }
        guard ok else { return "" }
        return String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
