/// Errors loading TLS material. Each names the file (or in-memory source)
/// and the problem, and its description says what to do.
public enum TLSConfigurationError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The file could not be read (missing, permissions, …).
    case unreadableFile(path: String, reason: String)
    /// A PEM source that must hold a certificate holds none.
    case noCertificate(source: String)
    /// A PEM source that must hold a private key holds none (or it cannot be parsed).
    case noPrivateKey(source: String)
    /// A PEM source that must hold a CRL holds none.
    case noCRL(source: String)
    /// A passphrase-protected private key: Relay never prompts for one.
    case encryptedPrivateKey(source: String)
    /// Binary DER where PEM is read; `converter` is the `openssl` command
    /// (`x509`, `crl`, `pkey`) that converts it.
    case derEncoded(source: String, converter: String)
    /// The private key is not the one of the certificate.
    case keyDoesNotMatchCertificate(certificate: String, key: String)
    /// The key belongs to a later certificate of the chain file (`position`
    /// of `count`, from 1), not to its first: the leaf must come first.
    case keyMatchesLaterCertificate(certificate: String, key: String, position: Int, count: Int)
    /// A server's certificate that TLS clients refuse for its purpose (its
    /// extended key usage lacks serverAuth, or its key usage forbids it).
    case notAServerCertificate(source: String)
    /// The server's certificate is past its notAfter (an ISO 8601 time).
    case serverCertificateExpired(source: String, notAfter: String)
    /// A certificate listed as a client CA is not a CA (basicConstraints
    /// CA:TRUE is missing): no client chain can end at it.
    case notACertificateAuthority(source: String, subject: String)
    /// A setting is not allowed (for example an empty client-CA list).
    case invalidSetting(String)
    /// OpenSSL refused an operation; `detail` is its error queue.
    case openSSL(operation: String, detail: String)

    public var description: String {
        switch self {
        case .unreadableFile(let path, let reason):
            return "\(path): cannot read file (\(reason)); check the path and its permissions"
        case .noCertificate(let source):
            return "\(source): no certificate in PEM file; expected a '-----BEGIN CERTIFICATE-----' block"
        case .noPrivateKey(let source):
            return "\(source): no private key in PEM file (or it is encrypted or malformed); expected an unencrypted '-----BEGIN PRIVATE KEY-----' block"
        case .noCRL(source: let source):
            return "\(source): no CRL in PEM file; expected a '-----BEGIN X509 CRL-----' block"
        case .encryptedPrivateKey(let source):
            return "\(source): the private key is encrypted (passphrase-protected), and Relay never asks for a passphrase; "
                + "decrypt it into a file only this user can read (openssl pkey -in \(source) -out \(source).plain, "
                + "then chmod 600 it) and configure that file"
        case .derEncoded(let source, let converter):
            return "\(source): binary DER, but Relay reads PEM; convert it (openssl \(converter) -inform DER -in \(source) "
                + "-out \(source).pem) and configure the .pem file"
        case .keyMatchesLaterCertificate(let certificate, let key, let position, let count):
            return "\(key): the key belongs to certificate \(position) of \(count) in \(certificate), not to the first; "
                + "the file must start with the certificate issued for this key (the leaf), then its intermediate CAs: reorder it"
        case .keyDoesNotMatchCertificate(let certificate, let key):
            return "\(key): key does not match certificate \(certificate); configure the key that was issued with this certificate"
        case .notAServerCertificate(let source):
            return "\(source): not a TLS server certificate (its extended key usage lacks serverAuth, or its key usage forbids a server's use), so every client would refuse the broker; configure a certificate issued for the server"
        case .serverCertificateExpired(let source, let notAfter):
            return "\(source): the server certificate expired at \(notAfter), so every client would refuse the broker; renew it (issue a new one from the same CA) and configure the new files"
        case .notACertificateAuthority(let source, let subject):
            return "\(source): '\(subject)' is not a CA certificate (no basicConstraints CA:TRUE), so no client certificate can be verified against it; list the CA that issues the client certificates, not a client or server certificate"
        case .invalidSetting(let message):
            return "invalid TLS setting: \(message)"
        case .openSSL(let operation, let detail):
            return "OpenSSL refused \(operation): \(detail)"
        }
    }
}

/// Why a TLS connection failed. Each case says which check failed, in the
/// words OpenSSL uses (verification errors from X509_verify_cert_error_string,
/// alerts from SSL_alert_desc_string_long).
public enum TLSError: Error, Equatable, Sendable, CustomStringConvertible {
    /// This side verified the peer's certificate and refused it.
    case certificateRejected(code: Int, reason: String)
    /// The server required a client certificate and the client sent none.
    case noPeerCertificate
    /// The peer sent a fatal alert (it refused us, e.g. "certificate revoked").
    /// With TLS 1.3 a refused client learns this on its first read after its
    /// own handshake completed.
    case alertReceived(code: Int, description: String)
    /// The handshake failed for another protocol reason (OpenSSL's reason
    /// string, e.g. "unsupported protocol", "wrong version number").
    case handshakeFailed(reason: String)
    /// The handshake did not complete within the configured timeout.
    case handshakeTimedOut(milliseconds: Int64)
    /// The connection closed without a TLS close_notify.
    case unexpectedEOF(duringHandshake: Bool)
    /// A TLS record could not be processed after the handshake.
    case protocolError(reason: String)
    /// A write was attempted after the TLS session closed.
    case writeAfterClose

    public var description: String {
        switch self {
        case .certificateRejected(let code, let reason):
            return "peer certificate rejected: \(reason) (X509 verify error \(code)); check the peer's certificate chain, validity, EKU and CRL against the configured CAs"
        case .noPeerCertificate:
            return "the peer did not send a certificate; a client certificate is required"
        case .alertReceived(let code, let description):
            return "the peer refused the connection with TLS alert '\(description)' (\(code)); check our certificate against the peer's trust settings"
        case .handshakeFailed(let reason):
            return "TLS handshake failed: \(reason)"
        case .handshakeTimedOut(let ms):
            return "TLS handshake did not complete within \(ms) ms; the peer stopped half-way"
        case .unexpectedEOF(let duringHandshake):
            return duringHandshake ? "the peer closed the connection during the TLS handshake"
                : "the peer closed the connection without a TLS close_notify (possible truncation)"
        case .protocolError(let reason):
            return "TLS protocol error: \(reason)"
        case .writeAfterClose:
            return "write after the TLS session was closed"
        }
    }
}
