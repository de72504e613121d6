import Foundation
internal import COpenSSL

/// Material a server context must refuse at load (start, `--check-config`
/// and reload alike), because it would load and then lock out every client:
/// the handshake would fail on the client's side or verify nothing.
extension SSLContextCore {
    /// Every certificate listed as a client CA must be a CA. A client or
    /// server certificate there (the wrong file copied in) loaded, and every
    /// client was then refused with `unknown_ca`; a reload applied it too.
    static func requireCertificateAuthorities(_ certificates: [OwnedCertificate],
                                              from source: PEMSource) throws(TLSConfigurationError) {
        // X509_check_ca: 0 is "not a CA"; 1 is basicConstraints CA:TRUE, 3 a
        // self-signed v1 certificate (an old-style root), 4/5 legacy CA markers.
        for certificate in certificates where X509_check_ca(certificate.ref) == 0 {
            OpenSSLErrorQueue.clear()
            // The name is borrowed from `certificate`, alive for this iteration.
            let subject = X509_get_subject_name(certificate.ref)
                .flatMap { try? IdentityExtractor.distinguishedName($0).rfc4514 } ?? "(subject unreadable)"
            throw .notACertificateAuthority(source: source.description, subject: subject)
        }
    }

    /// The server's own certificate must not have expired: every client
    /// checks it and would refuse the broker. Only notAfter: a notBefore a
    /// little ahead of this host's clock is a clock question, not the file's.
    static func requireUnexpired(_ leaf: OwnedCertificate, source: PEMSource) throws(TLSConfigurationError) {
        // The time is borrowed from `leaf`, which the caller keeps alive.
        guard let notAfter = IdentityExtractor.date(X509_get0_notAfter(leaf.ref)), notAfter < Date() else { return }
        throw .serverCertificateExpired(source: source.description,
                                        notAfter: ISO8601DateFormatter().string(from: notAfter))
    }
}
