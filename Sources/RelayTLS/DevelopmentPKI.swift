import Foundation

/// One attribute of a subject RDN: a short name (`CN`, `OU`, `DC`, …) or a
/// dotted OID, and its value (encoded as UTF-8 or the type the attribute
/// requires, e.g. PrintableString for `C`).
public struct NameAttribute: Sendable, Hashable {
    public var name: String
    public var value: String
    /// Set by ``encoded(_:_:bytes:)``: the value is stored byte for byte
    /// under this ASN.1 string type instead of being converted from `value`.
    public var encoding: NameValueEncoding?

    public init(_ name: String, _ value: String) {
        self.name = name
        self.value = value
        self.encoding = nil
    }

    /// An attribute whose value is `bytes` under the ASN.1 string `type`,
    /// stored as given: OpenSSL's size bounds and character-set checks for
    /// the attribute are skipped. Tests build what other CAs issue with it:
    /// an empty or over-long CN, a BMPString or TeletexString, a NUL inside
    /// a value. `value` holds the bytes read as UTF-8, for messages only.
    public static func encoded(_ name: String, _ type: NameValueEncoding.StringType, bytes: [UInt8]) -> NameAttribute {
        var attribute = NameAttribute(name, String(decoding: bytes, as: UTF8.self))
        attribute.encoding = NameValueEncoding(type: type, bytes: bytes)
        return attribute
    }
}

/// A name value's ASN.1 string type and exact content bytes.
public struct NameValueEncoding: Sendable, Hashable {
    /// The ASN.1 universal tag numbers of the string types names use.
    public enum StringType: UInt8, Sendable, Hashable {
        case utf8String = 12
        case printableString = 19
        case teletexString = 20
        case ia5String = 22
        case universalString = 28
        case bmpString = 30
    }

    public var type: StringType
    public var bytes: [UInt8]
}

/// A subject alternative name to put in a certificate.
public enum SubjectAlternativeName: Sendable, Hashable {
    case dns(String)
    /// An IPv4 or IPv6 address in text form.
    case ip(String)
    case uri(String)
    case email(String)
}

/// Extended key usages a development certificate may carry.
public enum ExtendedKeyUsage: String, Sendable, Hashable {
    case serverAuth
    case clientAuth
}

/// Key usages a development certificate may carry.
public enum KeyUsage: String, Sendable, Hashable {
    case digitalSignature
    case keyAgreement
    case keyCertSign
    case cRLSign
}

/// What to put in a certificate issued by ``DevelopmentPKI``.
public struct CertificateRequest: Sendable, Hashable {
    /// RDNs in encoding order; an RDN with several attributes is multi-valued.
    public var subject: [[NameAttribute]]
    public var subjectAlternativeNames: [SubjectAlternativeName]
    public var notBefore: Date
    public var notAfter: Date
    /// Empty means no EKU extension (any usage).
    public var extendedKeyUsage: [ExtendedKeyUsage]
    public var isCA: Bool
    /// Empty means the usual set: keyCertSign and cRLSign for a CA,
    /// digitalSignature otherwise. Tests set it to build odd certificates
    /// (a CA:TRUE certificate that can also sign TLS handshakes).
    public var keyUsage: [KeyUsage] = []

    public init(subject: [[NameAttribute]], subjectAlternativeNames: [SubjectAlternativeName] = [],
                notBefore: Date = Date().addingTimeInterval(-300), notAfter: Date = Date().addingTimeInterval(365 * 86_400),
                extendedKeyUsage: [ExtendedKeyUsage] = [], isCA: Bool = false) {
        self.subject = subject
        self.subjectAlternativeNames = subjectAlternativeNames
        self.notBefore = notBefore
        self.notAfter = notAfter
        self.extendedKeyUsage = extendedKeyUsage
        self.isCA = isCA
    }

    /// Validity of `days` from now (negative `startingInDays` back-dates).
    public mutating func setValidity(days: Int, startingInDays start: Int = 0) {
        let begin = Date().addingTimeInterval(Double(start) * 86_400 - (start == 0 ? 300 : 0))
        notBefore = begin
        notAfter = begin.addingTimeInterval(Double(days) * 86_400)
    }

    /// A client certificate: `CN=<commonName>` (plus `OU`s), EKU clientAuth.
    public static func client(commonName: String, organizationalUnits: [String] = [],
                              sans: [SubjectAlternativeName] = [], days: Int = 365) -> CertificateRequest {
        var subject: [[NameAttribute]] = organizationalUnits.map { [NameAttribute("OU", $0)] }
        subject.append([NameAttribute("CN", commonName)])
        var request = CertificateRequest(subject: subject, subjectAlternativeNames: sans, extendedKeyUsage: [.clientAuth])
        request.setValidity(days: days)
        return request
    }

    /// A server certificate with the given SANs, EKU serverAuth.
    public static func server(commonName: String, sans: [SubjectAlternativeName], days: Int = 365) -> CertificateRequest {
        var request = CertificateRequest(subject: [[NameAttribute("CN", commonName)]], subjectAlternativeNames: sans,
                                         extendedKeyUsage: [.serverAuth])
        request.setValidity(days: days)
        return request
    }
}

/// A certificate and its key, as PEM.
public struct IssuedCertificate: Sendable, Hashable {
    public var certificatePEM: String
    public var privateKeyPEM: String
    /// Upper-case hex without leading zeros, as ``RelayCore/Identity/serialNumber``.
    public var serialNumber: String

    public init(certificatePEM: String, privateKeyPEM: String, serialNumber: String) {
        self.certificatePEM = certificatePEM
        self.privateKeyPEM = privateKeyPEM
        self.serialNumber = serialNumber
    }

    /// Writes the certificate (mode 0644) and the key (mode 0600).
    public func write(certificateTo certificatePath: String, keyTo keyPath: String) throws(DevelopmentPKIError) {
        try DevelopmentPKI.writeFile(certificatePEM, to: certificatePath, mode: 0o644)
        try DevelopmentPKI.writeFile(privateKeyPEM, to: keyPath, mode: 0o600)
    }
}

/// Why the development PKI could not do what was asked.
public enum DevelopmentPKIError: Error, Equatable, Sendable, CustomStringConvertible {
    case invalidAttribute(name: String, value: String, detail: String)
    case invalidSubjectAlternativeName(String)
    case invalidSerial(String)
    case invalidIssuer(String)
    case writeFailed(path: String, reason: String)
    case openSSL(operation: String, detail: String)

    public var description: String {
        switch self {
        case .invalidAttribute(let name, let value, let detail):
            return "subject attribute \(name)=\(value) rejected: \(detail); use a known short name (CN, OU, O, …) or a dotted OID and a value its type allows"
        case .invalidSubjectAlternativeName(let san): return "invalid subject alternative name \(san)"
        case .invalidSerial(let serial): return "invalid serial number '\(serial)'; expected hex digits"
        case .invalidIssuer(let detail): return "issuer CA unusable: \(detail)"
        case .writeFailed(let path, let reason): return "\(path): cannot write (\(reason)); check the directory exists and is writable"
        case .openSSL(let operation, let detail): return "OpenSSL refused \(operation): \(detail)"
        }
    }
}

/// A small CA for development and tests on the system libcrypto: ECDSA
/// P-256 keys, SHA-256 signatures. `relayctl pki` and the tests use it.
public enum DevelopmentPKI {
    /// A self-signed CA certificate (`CN=<commonName>`).
    public static func createCA(commonName: String, days: Int = 3650) throws(DevelopmentPKIError) -> IssuedCertificate {
        var request = CertificateRequest(subject: [[NameAttribute("CN", commonName)]], isCA: true)
        request.setValidity(days: days)
        return try CertificateBuilder.build(request, issuer: nil)
    }

    /// A self-signed certificate from any request (a CA when `isCA`).
    public static func selfSigned(_ request: CertificateRequest) throws(DevelopmentPKIError) -> IssuedCertificate {
        try CertificateBuilder.build(request, issuer: nil)
    }

    /// A certificate signed by `ca`.
    public static func issue(_ request: CertificateRequest, signedBy ca: IssuedCertificate) throws(DevelopmentPKIError) -> IssuedCertificate {
        try CertificateBuilder.build(request, issuer: ca)
    }

    /// A CRL from `ca` revoking `serials` (hex, as ``IssuedCertificate/serialNumber``), valid `days`.
    public static func crl(revoking serials: [String], signedBy ca: IssuedCertificate, days: Int = 30) throws(DevelopmentPKIError) -> String {
        try CertificateBuilder.crl(revoking: serials, issuer: ca, days: days)
    }

    /// Writes `text` to `path` created with `mode` (also applied if the file existed).
    public static func writeFile(_ text: String, to path: String, mode: mode_t) throws(DevelopmentPKIError) {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode)
        guard fd >= 0 else { throw .writeFailed(path: path, reason: String(cString: strerror(errno))) }
        defer { close(fd) }
        guard fchmod(fd, mode) == 0 else { throw .writeFailed(path: path, reason: String(cString: strerror(errno))) }
        let bytes = Array(text.utf8)
        var offset = 0
        while offset < bytes.count {
            let n = bytes[offset...].withUnsafeBytes { Foundation.write(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw .writeFailed(path: path, reason: String(cString: strerror(errno)))
            }
            offset += n
        }
    }
}
