import Foundation
internal import COpenSSL

/// Builds X.509 certificates and CRLs with libcrypto for ``DevelopmentPKI``.
enum CertificateBuilder {
    typealias Failure = DevelopmentPKIError

    static func build(_ request: CertificateRequest, issuer: IssuedCertificate?) throws(Failure) -> IssuedCertificate {
        OpenSSLErrorQueue.clear()
        guard let rawKey = relay_EVP_EC_gen_P256() else { throw .openSSL(operation: "EC P-256 key generation", detail: OpenSSLErrorQueue.drain()) }
        let key = OwnedKey(takingOwnership: rawKey)
        guard let rawX509 = X509_new() else { throw .openSSL(operation: "X509_new", detail: OpenSSLErrorQueue.drain()) }
        let certificate = OwnedCertificate(takingOwnership: rawX509)
        let x509 = certificate.ref

        // The issuer's certificate and key (the new certificate itself when self-signed).
        let issuerCertificate: OwnedCertificate
        let issuerKey: OwnedKey
        if let issuer {
            do {
                issuerCertificate = try PEMReader.certificates(.memory(issuer.certificatePEM, name: "issuer certificate"))[0]
                issuerKey = try PEMReader.privateKey(.memory(issuer.privateKeyPEM, name: "issuer key"))
            } catch { throw .invalidIssuer(error.description) }
        } else {
            issuerCertificate = certificate
            issuerKey = key
        }

        try check(X509_set_version(x509, 2) == 1, "X509_set_version")
        let serial = randomSerialHex()
        try withASN1Integer(hex: serial) { (integer) throws(Failure) in
            try check(X509_set_serialNumber(x509, integer) == 1, "X509_set_serialNumber")
        }
        let subject = try makeName(request.subject)
        defer { X509_NAME_free(subject) }
        try check(X509_set_subject_name(x509, subject) == 1, "X509_set_subject_name")  // copies
        try check(X509_set_issuer_name(x509, X509_get_subject_name(issuerCertificate.ref)) == 1, "X509_set_issuer_name")
        try check(ASN1_TIME_set(X509_getm_notBefore(x509), time_t(request.notBefore.timeIntervalSince1970)) != nil, "notBefore")
        try check(ASN1_TIME_set(X509_getm_notAfter(x509), time_t(request.notAfter.timeIntervalSince1970)) != nil, "notAfter")
        try check(X509_set_pubkey(x509, key.ref) == 1, "X509_set_pubkey")

        // Extensions, through an X509V3_CTX naming issuer and subject; it
        // only borrows both certificates for the calls below.
        var v3 = X509V3_CTX()
        X509V3_set_ctx(&v3, issuerCertificate.ref, x509, nil, nil, 0)
        try addExtension(x509, &v3, NID_basic_constraints, request.isCA ? "critical,CA:TRUE" : "critical,CA:FALSE")
        let keyUsage = request.keyUsage.isEmpty ? (request.isCA ? "keyCertSign,cRLSign" : "digitalSignature")
            : request.keyUsage.map(\.rawValue).joined(separator: ",")
        try addExtension(x509, &v3, NID_key_usage, "critical," + keyUsage)
        try addExtension(x509, &v3, NID_subject_key_identifier, "hash")
        if issuer != nil { try addExtension(x509, &v3, NID_authority_key_identifier, "keyid:always") }
        if !request.extendedKeyUsage.isEmpty {
            try addExtension(x509, &v3, NID_ext_key_usage, request.extendedKeyUsage.map(\.rawValue).joined(separator: ","))
        }
        if !request.subjectAlternativeNames.isEmpty { try addSANs(request.subjectAlternativeNames, to: x509) }

        try check(X509_sign(x509, issuerKey.ref, EVP_sha256()) > 0, "X509_sign")
        return IssuedCertificate(certificatePEM: try pem(certificate), privateKeyPEM: try pem(key),
                                 serialNumber: IdentityExtractor.normalizeSerial(serial))
    }

    static func crl(revoking serials: [String], issuer: IssuedCertificate, days: Int) throws(Failure) -> String {
        OpenSSLErrorQueue.clear()
        let caCertificate: OwnedCertificate
        let caKey: OwnedKey
        do {
            caCertificate = try PEMReader.certificates(.memory(issuer.certificatePEM, name: "CA certificate"))[0]
            caKey = try PEMReader.privateKey(.memory(issuer.privateKeyPEM, name: "CA key"))
        } catch { throw .invalidIssuer(error.description) }
        guard let rawCRL = X509_CRL_new() else { throw .openSSL(operation: "X509_CRL_new", detail: OpenSSLErrorQueue.drain()) }
        let crl = OwnedCRL(takingOwnership: rawCRL)
        try check(X509_CRL_set_version(crl.ref, 1) == 1, "X509_CRL_set_version")
        try check(X509_CRL_set_issuer_name(crl.ref, X509_get_subject_name(caCertificate.ref)) == 1, "X509_CRL_set_issuer_name")
        guard let time = ASN1_TIME_new() else { throw .openSSL(operation: "ASN1_TIME_new", detail: "out of memory") }
        defer { ASN1_TIME_free(time) }
        let now = Date().timeIntervalSince1970
        // set1 functions copy the time, so one scratch ASN1_TIME serves all.
        _ = ASN1_TIME_set(time, time_t(now - 60))
        try check(X509_CRL_set1_lastUpdate(crl.ref, time) == 1, "lastUpdate")
        for serial in serials {
            guard let revoked = X509_REVOKED_new() else { throw .openSSL(operation: "X509_REVOKED_new", detail: "out of memory") }
            var ok = false
            try withASN1Integer(hex: serial) { integer in ok = X509_REVOKED_set_serialNumber(revoked, integer) == 1 }
            ok = ok && X509_REVOKED_set_revocationDate(revoked, time) == 1
            // add0 transfers `revoked` to the CRL; free it ourselves on failure.
            guard ok, X509_CRL_add0_revoked(crl.ref, revoked) == 1 else {
                X509_REVOKED_free(revoked)
                throw .openSSL(operation: "revoking \(serial)", detail: OpenSSLErrorQueue.drain())
            }
        }
        _ = ASN1_TIME_set(time, time_t(now + Double(days) * 86_400))
        try check(X509_CRL_set1_nextUpdate(crl.ref, time) == 1, "nextUpdate")
        _ = X509_CRL_sort(crl.ref)
        var v3 = X509V3_CTX()
        X509V3_set_ctx(&v3, caCertificate.ref, nil, nil, crl.ref, 0)
        if let ext = X509V3_EXT_conf_nid(nil, &v3, NID_authority_key_identifier, "keyid:always") {
            defer { X509_EXTENSION_free(ext) }
            try check(X509_CRL_add_ext(crl.ref, ext, -1) == 1, "CRL authorityKeyIdentifier")
        }
        try check(X509_CRL_sign(crl.ref, caKey.ref, EVP_sha256()) > 0, "X509_CRL_sign")
        return try withMemoryBIO { bio in PEM_write_bio_X509_CRL(bio, crl.ref) == 1 }
    }

    // MARK: Pieces

    private static func check(_ ok: Bool, _ operation: String) throws(Failure) {
        if !ok { throw .openSSL(operation: operation, detail: OpenSSLErrorQueue.drain()) }
    }

    /// 16 random bytes, top bit clear so the INTEGER is positive, never zero.
    static func randomSerialHex() -> String {
        var bytes = [UInt8](repeating: 0, count: 16)
        for index in bytes.indices { bytes[index] = UInt8.random(in: 0...255) }
        bytes[0] = (bytes[0] & 0x7F) | 0x10
        return bytes.map { String(format: "%02X", $0) }.joined()
    }

    private static func withASN1Integer(hex: String, _ body: (UnsafeMutablePointer<ASN1_INTEGER>) throws(Failure) -> Void) throws(Failure) {
        guard !hex.isEmpty, hex.allSatisfy(\.isHexDigit) else { throw .invalidSerial(hex) }
        var bn: OpaquePointer? = nil
        guard BN_hex2bn(&bn, hex) > 0, let bn else { throw .invalidSerial(hex) }
        defer { BN_free(bn) }
        guard let integer = BN_to_ASN1_INTEGER(bn, nil) else { throw .invalidSerial(hex) }
        // The INTEGER is ours; the setters copy it.
        defer { ASN1_INTEGER_free(integer) }
        try body(integer)
    }

    /// An X509_NAME the caller frees. The first attribute of each RDN opens
    /// a new RDN (set 0); the others join the previous one (set -1).
    private static func makeName(_ rdns: [[NameAttribute]]) throws(Failure) -> OpaquePointer {
        guard let name = X509_NAME_new() else { throw .openSSL(operation: "X509_NAME_new", detail: "out of memory") }
        for rdn in rdns {
            for (position, attribute) in rdn.enumerated() {
                // An explicit encoding is a plain ASN.1 type (no MBSTRING
                // flag): OpenSSL stores the bytes under it as they are.
                let bytes = attribute.encoding?.bytes ?? Array(attribute.value.utf8)
                let type = attribute.encoding.map { Int32($0.type.rawValue) } ?? relay_MBSTRING_UTF8()
                let ok = X509_NAME_add_entry_by_txt(name, attribute.name, type, bytes, Int32(bytes.count),
                                                    -1, position == 0 ? 0 : -1)
                if ok != 1 {
                    X509_NAME_free(name)
                    throw .invalidAttribute(name: attribute.name, value: attribute.value, detail: OpenSSLErrorQueue.drain())
                }
            }
        }
        return name
    }

    private static func addExtension(_ x509: OpaquePointer, _ v3: inout X509V3_CTX, _ nid: Int32, _ value: String) throws(Failure) {
        guard let ext = X509V3_EXT_conf_nid(nil, &v3, nid, value) else {
            throw .openSSL(operation: "extension \(value)", detail: OpenSSLErrorQueue.drain())
        }
        defer { X509_EXTENSION_free(ext) }  // X509_add_ext copies it
        try check(X509_add_ext(x509, ext, -1) == 1, "X509_add_ext \(value)")
    }

    /// SANs built as GENERAL_NAMEs (not a config string), so values may hold
    /// any character.
    private static func addSANs(_ sans: [SubjectAlternativeName], to x509: OpaquePointer) throws(Failure) {
        guard let names = relay_sk_GENERAL_NAME_new_null() else { throw .openSSL(operation: "GENERAL_NAMES", detail: "out of memory") }
        // The stack owns every GENERAL_NAME pushed; freed with it.
        defer { relay_GENERAL_NAMES_free(names) }
        for san in sans {
            guard let general = GENERAL_NAME_new() else { throw .openSSL(operation: "GENERAL_NAME_new", detail: "out of memory") }
            let value: UnsafeMutablePointer<ASN1_STRING>?
            let type: Int32
            switch san {
            case .ip(let text):
                value = a2i_IPADDRESS(text)
                type = relay_GEN_IPADD()
            case .dns(let text), .uri(let text), .email(let text):
                let string = ASN1_IA5STRING_new()
                let bytes = Array(text.utf8)
                if let string, ASN1_STRING_set(string, bytes, Int32(bytes.count)) != 1 { ASN1_STRING_free(string); value = nil }
                else { value = string }
                if case .dns = san { type = relay_GEN_DNS() } else if case .uri = san { type = relay_GEN_URI() } else { type = relay_GEN_EMAIL() }
            }
            guard let value else {
                GENERAL_NAME_free(general)
                OpenSSLErrorQueue.clear()
                throw .invalidSubjectAlternativeName("\(san)")
            }
            GENERAL_NAME_set0_value(general, type, UnsafeMutableRawPointer(value))  // general owns value
            guard relay_sk_GENERAL_NAME_push(names, general) > 0 else {
                GENERAL_NAME_free(general)
                throw .openSSL(operation: "sk_GENERAL_NAME_push", detail: "out of memory")
            }
        }
        try check(X509_add1_ext_i2d(x509, relay_NID_subject_alt_name(), UnsafeMutableRawPointer(names), 0,
                                UInt(relay_X509V3_ADD_DEFAULT())) == 1, "adding subjectAltName")
    }

    private static func withMemoryBIO(_ body: (OpaquePointer) -> Bool) throws(Failure) -> String {
        guard let bio = BIO_new(BIO_s_mem()) else { throw .openSSL(operation: "BIO_new", detail: "out of memory") }
        defer { BIO_free(bio) }
        try check(body(bio), "PEM encoding")
        return readAllString(from: bio)
    }

    private static func pem(_ certificate: OwnedCertificate) throws(Failure) -> String {
        try withMemoryBIO { PEM_write_bio_X509($0, certificate.ref) == 1 }
    }

    private static func pem(_ key: OwnedKey) throws(Failure) -> String {
        try withMemoryBIO { relay_PEM_write_bio_PrivateKey($0, key.ref) == 1 }
    }
}
